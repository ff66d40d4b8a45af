//! Container networking, the mechanisms without the engine's bookkeeping:
//!
//! - [`ipam`]: address pools and allocation (never the same address twice; state is rebuilt from
//!   what the engine recorded, so it survives restarts without a file of its own);
//! - [`netlink`] and [`netns`]: links, addresses and routes through rtnetlink, in the host's or a
//!   container's network namespace;
//! - [`driver`]: the driver interface (bridge, macvlan, ipvlan; a VXLAN overlay later) that turns a
//!   network and an endpoint into links in the container's namespace;
//! - [`firewall`]: berth's own nftables table (iptables where only it exists): masquerade, isolation
//!   and published ports through kernel NAT;
//! - [`dns`]: the embedded DNS server answering on 127.0.0.11 inside each container's namespace.

pub mod dns;
pub mod driver;
mod error;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;

pub use error::NetError;
