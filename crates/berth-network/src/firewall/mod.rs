//! Kernel NAT and filtering for container networks, in berth's own nftables table (`inet berth`), so
//! the host's rules and Docker's (iptables-nft or legacy) are never touched.
//!
//! The table holds these chains:
//! - `prerouting`/`output` (nat, priority dstnat): `fib daddr type local jump ports`, i.e. Docker's
//!   `-m addrtype --dst-type LOCAL -j DOCKER`, for locally generated traffic too, 127.0.0.1 included
//!   (kernel NAT, no userland proxy; the bridge needs `route_localnet=1`, and its ports hairpin
//!   mode for a container to reach its own published port);
//! - `ports`: one DNAT rule per published port, tagged `container:<id>`;
//! - `postrouting` (nat, srcnat): per network, masquerade of its subnets leaving through another
//!   interface (`ip-masq`), of 127.0.0.0/8 entering the bridge, and of hairpin traffic (a container
//!   reaching a published port on its own bridge);
//! - `forward` (filter) jumps, in this order, to `forward-ct` (replies and DNATed connections into
//!   a bridge: accepted, so published ports work across networks), `forward-networks` (internal
//!   networks cut off, `icc=false`, and a jump to `isolation`, which drops traffic from one berth
//!   bridge to another: Docker's DOCKER-ISOLATION chains) and `forward-accept` (the rest of the
//!   bridges' traffic). Each network adds rules to the three, so no network's accept comes before
//!   another's drop.
//!
//! Every rule carries its owner in its comment (`network:<id>`, `container:<id>`), so the rules of a
//! container are found again by listing the table, also after a daemon crash; [`Firewall::sync`]
//! replaces the whole table in one transaction at daemon start.
//!
//! The backend speaks nf_tables over netlink directly (one datagram per change, no `nft` process);
//! see [`nft`]. On kernels without nf_tables, [`Firewall::new`] falls back to iptables: the same
//! rules in `BERTH-*` chains written with `iptables-restore` (a few milliseconds per change instead
//! of tens of microseconds). The nftables backend keeps an index of each owner's rule handles
//! (learned from the kernel's echo of each added rule, rebuilt by one listing after `sync` or when
//! a deletion finds the table changed), so berthd is assumed to be the table's only writer.
//!
//! Beside dockerd, whose iptables FORWARD policy is DROP (an accept in berth's table cannot undo
//! another table's drop), the nftables backend also puts an accept per bridge into DOCKER-USER
//! with the iptables tool that owns it (`foreign.rs`).
//!
//! Host ports are held by [`PortReservation`]s: a bound (not listening) socket per published port,
//! as Docker's port allocator does, so nothing else takes the port while the container runs.

mod foreign;
mod iptables;
pub mod nft;
mod reserve;
pub mod rule;

pub use reserve::{local_port_range, PortReservation};

use berth_types::{ErrorKind, HasErrorKind};
use ipnet::IpNet;
use nft::{ListedRule, Nft, NftError, Op};
use rule::{Owner, Rule};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    /// Docker's name: `tcp`, `udp`, `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the firewall needs to know about one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The network id (tags its rules).
    pub id: String,
    /// The bridge interface.
    pub bridge: String,
    /// Its subnets, IPv4 and/or IPv6.
    pub subnets: Vec<IpNet>,
    /// `--internal`: no traffic to or from outside the bridge.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade`.
    pub masquerade: bool,
    /// `com.docker.network.bridge.enable_icc`: containers on the bridge may talk to each other.
    pub icc: bool,
}

/// One published port (`-p [host_ip:]host_port:container_port[/proto]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Protocol.
    pub proto: Proto,
    /// The host address it is published on; `None` (or 0.0.0.0/::) for all of the family.
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address on `bridge`.
    pub container_ip: IpAddr,
    /// The port inside the container.
    pub container_port: u16,
    /// The bridge the container is attached to.
    pub bridge: String,
}

/// Errors of the firewall; each names the operation and the object.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A netlink change or query failed.
    #[error("firewall: failed to {op}: {source}")]
    Netlink {
        /// The operation and object, e.g. `add rule inet berth ports for container:abc`.
        op: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The kernel has no nf_tables.
    #[error("firewall: nf_tables is not available in this kernel: {source}")]
    Unsupported {
        /// The kernel's answer to the probe.
        #[source]
        source: io::Error,
    },
    /// A network or port mapping that cannot be expressed.
    #[error("firewall: invalid {object}: {reason}")]
    Invalid {
        /// What was invalid, e.g. `port mapping 8080:80/tcp of container abc`.
        object: String,
        /// Why.
        reason: String,
    },
    /// The host port is held by another container or program (Docker's message, word for word).
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated {
        /// `host_ip:host_port`.
        addr: String,
    },
    /// Binding the host port failed otherwise.
    #[error("failed to reserve {proto} port {addr}: {source}")]
    Reserve {
        /// The protocol.
        proto: Proto,
        /// `host_ip:host_port`.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No port of the ephemeral range is free.
    #[error("no free {proto} port on {host_ip} in the range {low}-{high}")]
    NoFreePort {
        /// The protocol.
        proto: Proto,
        /// The host address.
        host_ip: IpAddr,
        /// Range start.
        low: u16,
        /// Range end.
        high: u16,
    },
}

impl From<NftError> for FirewallError {
    fn from(e: NftError) -> Self {
        FirewallError::Netlink {
            op: e.op,
            source: e.source,
        }
    }
}

impl HasErrorKind for FirewallError {
    fn kind(&self) -> ErrorKind {
        match self {
            FirewallError::Invalid { .. } => ErrorKind::InvalidArgument,
            FirewallError::PortAllocated { .. } | FirewallError::NoFreePort { .. } => ErrorKind::Conflict,
            FirewallError::Unsupported { .. } => ErrorKind::Unsupported,
            FirewallError::Netlink { .. } | FirewallError::Reserve { .. } => ErrorKind::Internal,
        }
    }
}

/// A rule as found in berth's table.
pub type FirewallRule = ListedRule;

/// The kernel interface a [`Firewall`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// nf_tables over netlink: berth's `inet berth` table.
    Nftables,
    /// `iptables-restore`/`ip6tables-restore` (legacy tools first): `BERTH-*` chains.
    Iptables,
}

/// The rules of each owner: chain and kernel handle.
type Index = HashMap<Owner, Vec<(String, u64)>>;

enum State {
    Nft {
        nft: Nft,
        /// The table is known to exist (with its chains and fixed rules).
        ready: bool,
        /// Where each owner's rules are (chain, handle); `None` until rebuilt by one listing.
        index: Option<Index>,
    },
    Iptables(iptables::Iptables),
}

/// berth's firewall in one network namespace: the one the constructor ran in.
///
/// Methods are synchronous (one netlink round trip or two) and may be called from any thread;
/// calls are serialised. Each change is one atomic nf_tables transaction.
pub struct Firewall {
    state: Mutex<State>,
    /// Accepts for berth's bridges in another firewall's dropping FORWARD chain (dockerd's).
    foreign: foreign::Foreign,
    /// The network namespace the firewall was opened in (its sysctls are set there).
    netns: Option<std::os::fd::OwnedFd>,
}

fn check_ifname(object: &str, name: &str) -> Result<(), FirewallError> {
    if name.is_empty() || name.len() >= 16 || name.contains('\0') {
        return Err(FirewallError::Invalid {
            object: object.to_string(),
            reason: format!("bad interface name {name:?}"),
        });
    }
    Ok(())
}

fn check_network(net: &NetworkRules) -> Result<(), FirewallError> {
    check_ifname(&format!("network {}", net.id), &net.bridge)
}

fn check_ports(container_id: &str, ports: &[PortMapping]) -> Result<(), FirewallError> {
    for p in ports {
        let object = || {
            format!(
                "port mapping {}:{}/{} of container {container_id}",
                p.host_port, p.container_port, p.proto
            )
        };
        check_ifname(&object(), &p.bridge)?;
        if let Some(h) = p.host_ip {
            if !h.is_unspecified() && h.is_ipv4() != p.container_ip.is_ipv4() {
                return Err(FirewallError::Invalid {
                    object: object(),
                    reason: format!(
                        "host address {h} and container address {} differ in family",
                        p.container_ip
                    ),
                });
            }
        }
        if p.host_port == 0 || p.container_port == 0 {
            return Err(FirewallError::Invalid {
                object: object(),
                reason: "port 0".into(),
            });
        }
    }
    Ok(())
}

impl Firewall {
    /// Opens the firewall of the calling thread's network namespace: nf_tables if the kernel has
    /// it, else iptables.
    pub fn new() -> Result<Firewall, FirewallError> {
        match Self::with_backend(Backend::Nftables) {
            Err(FirewallError::Unsupported { source }) => {
                tracing::warn!(error = %source, "nf_tables unavailable, falling back to iptables");
                Self::with_backend(Backend::Iptables)
            }
            r => r,
        }
    }

    /// Opens the firewall with a given backend (in the calling thread's network namespace).
    pub fn with_backend(backend: Backend) -> Result<Firewall, FirewallError> {
        let state = match backend {
            Backend::Nftables => {
                let mut nft = Nft::open()?;
                let ready = match nft.table_exists() {
                    Ok(exists) => exists,
                    Err(e) => {
                        let errno = e.source.raw_os_error();
                        if errno == Some(libc::EOPNOTSUPP) || errno == Some(libc::EPROTONOSUPPORT) {
                            return Err(FirewallError::Unsupported { source: e.source });
                        }
                        return Err(e.into());
                    }
                };
                State::Nft {
                    nft,
                    ready,
                    index: None,
                }
            }
            Backend::Iptables => State::Iptables(iptables::Iptables::open()?),
        };
        let foreign = match backend {
            Backend::Nftables => foreign::Foreign::open(),
            Backend::Iptables => foreign::Foreign::disabled(),
        };
        Ok(Firewall {
            state: Mutex::new(state),
            foreign,
            netns: std::fs::File::open("/proc/thread-self/ns/net").ok().map(Into::into),
        })
    }

    /// [`bridge_netfilter`] in the firewall's network namespace (from a thread of its own that
    /// joins it, when the caller is elsewhere).
    fn bridge_netfilter(&self) -> Result<(), FirewallError> {
        use std::os::fd::AsRawFd;
        let Some(ns) = &self.netns else {
            return bridge_netfilter();
        };
        let fd = ns.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on this short-lived thread only; `fd` is a namespace descriptor
                // owned by `self`, which outlives the scope.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(FirewallError::Netlink {
                        op: "join the firewall's network namespace".into(),
                        source: io::Error::last_os_error(),
                    });
                }
                bridge_netfilter()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(FirewallError::Netlink {
                    op: "set net.bridge sysctls".into(),
                    source: io::Error::other("the thread setting them panicked"),
                })
            })
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match &*self.lock() {
            State::Nft { .. } => Backend::Nftables,
            State::Iptables(_) => Backend::Iptables,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-done in the kernel (batches are
        // atomic), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the rules of `owner` with `rules` in one transaction, creating the table first (in
    /// the same batch) if it does not exist.
    fn replace(&self, owner: Owner, rules: Vec<Rule>) -> Result<(), FirewallError> {
        let mut state = self.lock();
        let (nft, ready, index) = match &mut *state {
            State::Iptables(ipt) => return ipt.replace(&owner, &rules),
            State::Nft { nft, ready, index } => (nft, ready, index),
        };
        for attempt in 0..2 {
            if !*ready {
                *index = Some(Index::new());
            }
            let ix = match index {
                Some(ix) => ix,
                None => index.insert(build_index(nft.list_rules(None)?)),
            };
            let old = ix.get(&owner).cloned().unwrap_or_default();
            let mut ops = if *ready { Vec::new() } else { nft::skeleton() };
            ops.extend(old.iter().map(|(chain, handle)| Op::DeleteRule {
                chain: chain.clone(),
                handle: *handle,
            }));
            ops.extend(rules.iter().cloned().map(Op::AddRule));
            match nft.commit_echo(&ops) {
                Ok(added) => {
                    *ready = true;
                    ix.remove(&owner);
                    for (o, place) in index_entries(added) {
                        ix.entry(o).or_default().push(place);
                    }
                    return Ok(());
                }
                // The table changed behind our back (deleted, or rules removed by hand): look
                // again, once.
                Err(e) if attempt == 0 && e.source.raw_os_error() == Some(libc::ENOENT) => {
                    *index = None;
                    *ready = nft.table_exists()?;
                }
                Err(e) => {
                    *index = None;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Installs a network's rules (masquerade, isolation, icc, internal), replacing earlier ones
    /// of the same id.
    pub fn setup_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        check_network(net)?;
        if !net.icc {
            self.bridge_netfilter()?;
        }
        self.replace(Owner::Network(net.id.clone()), rule::network_rules(net))?;
        self.foreign
            .sync(&[(net.id.clone(), net.bridge.clone())], Some(&net.id));
        Ok(())
    }

    /// Removes a network's rules (nothing to do if it has none).
    pub fn remove_network(&self, id: &str) -> Result<(), FirewallError> {
        self.replace(Owner::Network(id.to_string()), Vec::new())?;
        self.foreign.sync(&[], Some(id));
        Ok(())
    }

    /// Publishes a container's ports (DNAT from the host's addresses, 127.0.0.1 included),
    /// replacing any earlier mappings of the same container.
    pub fn add_ports(&self, container_id: &str, ports: &[PortMapping]) -> Result<(), FirewallError> {
        check_ports(container_id, ports)?;
        self.replace(
            Owner::Container(container_id.to_string()),
            rule::port_rules(container_id, ports),
        )
    }

    /// Removes a container's published ports.
    pub fn remove_ports(&self, container_id: &str) -> Result<(), FirewallError> {
        self.replace(Owner::Container(container_id.to_string()), Vec::new())
    }

    /// Replaces berth's whole table with exactly these networks and ports, in one transaction
    /// (daemon start: whatever a crashed daemon left behind is gone).
    pub fn sync(
        &self,
        networks: &[NetworkRules],
        containers: &[(String, Vec<PortMapping>)],
    ) -> Result<(), FirewallError> {
        let mut seen = HashSet::new();
        for n in networks {
            check_network(n)?;
            if !seen.insert(n.id.as_str()) {
                return Err(FirewallError::Invalid {
                    object: format!("network {}", n.id),
                    reason: "listed twice".into(),
                });
            }
        }
        for (id, ports) in containers {
            check_ports(id, ports)?;
        }
        if networks.iter().any(|n| !n.icc) {
            self.bridge_netfilter()?;
        }
        let bridges: Vec<(String, String)> = networks.iter().map(|n| (n.id.clone(), n.bridge.clone())).collect();
        let rules = networks
            .iter()
            .flat_map(rule::network_rules)
            .chain(containers.iter().flat_map(|(id, ports)| rule::port_rules(id, ports)));
        let mut state = self.lock();
        let synced = match &mut *state {
            State::Iptables(ipt) => ipt.sync(&rules.collect::<Vec<_>>()),
            State::Nft { nft, ready, index } => {
                *index = None; // rebuilt by one listing when next needed
                               // `add table; delete table; add table ...`: the delete never fails on a missing table.
                let mut ops = vec![Op::AddTable, Op::DeleteTable];
                ops.extend(nft::skeleton());
                ops.extend(rules.map(Op::AddRule));
                nft.commit(&ops).map(|()| *ready = true).map_err(FirewallError::from)
            }
        };
        drop(state);
        synced?;
        self.foreign.sync(&bridges, None);
        Ok(())
    }

    /// An empty table: no networks, no ports.
    pub fn reset(&self) -> Result<(), FirewallError> {
        self.sync(&[], &[])
    }

    /// Deletes berth's table, or chains (uninstall, tests).
    pub fn remove_all(&self) -> Result<(), FirewallError> {
        self.foreign.sync(&[], None);
        match &mut *self.lock() {
            State::Iptables(ipt) => ipt.remove_all(),
            State::Nft { nft, ready, index } => {
                *index = None;
                nft.commit(&[Op::AddTable, Op::DeleteTable])?;
                *ready = false;
                Ok(())
            }
        }
    }

    /// Every rule in berth's table, with its owner (diagnostics, tests).
    pub fn list(&self) -> Result<Vec<FirewallRule>, FirewallError> {
        match &mut *self.lock() {
            State::Iptables(ipt) => ipt.list(),
            State::Nft { nft, .. } => Ok(nft.list_rules(None)?),
        }
    }
}

fn index_entries(rules: Vec<ListedRule>) -> impl Iterator<Item = (Owner, (String, u64))> {
    rules
        .into_iter()
        .filter_map(|r| r.owner.map(|o| (o, (r.chain, r.handle))))
}

fn build_index(rules: Vec<ListedRule>) -> Index {
    let mut ix = Index::new();
    for (o, place) in index_entries(rules) {
        ix.entry(o).or_default().push(place);
    }
    ix
}

/// Sets `net.ipv4.conf.<bridge>.route_localnet=1` (in the calling thread's namespace), which
/// DNAT from 127.0.0.1 into the bridge needs.
pub fn enable_route_localnet(bridge: &str) -> Result<(), FirewallError> {
    check_ifname("route_localnet", bridge)?;
    let path = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&path, "1").map_err(|source| FirewallError::Netlink {
        op: format!("write {path}"),
        source,
    })
}

/// Makes traffic between the ports of a bridge pass the IP firewall hooks in the calling thread's
/// network namespace (`net.bridge.bridge-nf-call-ip{,6}tables=1`, loading `br_netfilter` if need
/// be, as dockerd does): without it frames between two containers on one bridge never reach the
/// `forward` chain, and `icc=false` would not hold.
pub fn bridge_netfilter() -> Result<(), FirewallError> {
    const DIR: &str = "/proc/sys/net/bridge";
    if !std::path::Path::new(DIR).exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    if !std::path::Path::new(DIR).exists() {
        return Err(FirewallError::Invalid {
            object: "network option com.docker.network.bridge.enable_icc=false".into(),
            reason: "it needs the kernel's br_netfilter module, which is not loaded and could not be \
                     loaded: run `modprobe br_netfilter`"
                .into(),
        });
    }
    for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        let path = format!("{DIR}/{key}");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            continue;
        }
        std::fs::write(&path, "1").map_err(|source| FirewallError::Netlink {
            op: format!("write {path}"),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firewall_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Firewall>();
        shared::<PortReservation>();
    }

    #[test]
    fn mappings_are_checked_before_any_kernel_call() {
        let p = |host_ip: &str, bridge: &str| PortMapping {
            proto: Proto::Tcp,
            host_ip: Some(host_ip.parse().unwrap()),
            host_port: 8080,
            container_ip: "10.0.0.2".parse().unwrap(),
            container_port: 80,
            bridge: bridge.into(),
        };
        assert!(check_ports("c", &[p("127.0.0.1", "br0"), p("::", "br0")]).is_ok());
        let e = check_ports("c", &[p("::1", "br0")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("8080:80/tcp of container c"), "{e}");
        assert!(check_ports("c", &[p("127.0.0.1", "a-very-long-bridge-name")]).is_err());
    }
}
