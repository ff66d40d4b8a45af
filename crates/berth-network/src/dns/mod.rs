//! Docker's embedded DNS server: containers on user-defined networks get `nameserver 127.0.0.11` in
//! their `/etc/resolv.conf`, and the daemon answers there, inside each container's network namespace.
//!
//! - [`DnsRecords`]: what each container may resolve. Per network, each endpoint's names (container
//!   name, network aliases, hostname; the 12-hex short ID is always added, as Docker's `DNSNames`
//!   lists it) and addresses; per container, a [`ContainerView`]: the networks it is on, its legacy
//!   `--link` aliases, its search domains and its own `--dns` upstreams. Shared and cheap to update
//!   (`Arc` + `RwLock`); the engine updates it as endpoints come and go.
//! - [`DnsServer`]: `listen(container_id, netns)` binds UDP and TCP on `127.0.0.11:53` inside the
//!   container's namespace (the sockets are made on a short-lived thread that entered it, then
//!   handed to tokio, and stay in that namespace). A/AAAA/PTR for names the container's networks
//!   know are answered from the records (TTL 600, as Docker); everything else is forwarded from the
//!   daemon's namespace to the upstreams (UDP, TCP on truncation or for a TCP query), SERVFAIL when
//!   none answers in time.
//! - [`ResolvConf`] and [`container_resolv_conf`]: the host's resolv.conf read for upstreams, search
//!   domains and options, and the container's file written as Docker writes it.
//!
//! Docker's behaviour followed (libnetwork's resolver): names are case-insensitive, with or without
//! the trailing dot, with a search domain of the container's stripped, and `<name>.<network-name>`
//! works too; a name known with no address of the asked family answers NOERROR with no answers (not
//! NXDOMAIN); several containers sharing an alias all answer, in rotating order; a PTR for a
//! container's address answers `<container-name>.<network-name>`.
//!
//! How the engine wires it (the order matters only in that `listen` needs the namespace with `lo`
//! up):
//!
//! ```text
//! daemon start:    records = DnsRecords::new();
//!                  host = ResolvConf::parse(&read("/etc/resolv.conf"));
//!                  dns = DnsServer::start(records.clone(), host.upstreams());
//! network create:  records.set_network_name(&net_id, &net_name);
//! endpoint join:   records.add_endpoint(&net_id, EndpointRecord { container_id, names, v4, v6 });
//!                  records.set_container_view(&cid, ContainerView { networks, links, search,
//!                      upstreams: upstreams_from_ips(&dns), ndots_set, no_forward });
//! container start: write container_resolv_conf(&host, &dns_search, &dns_options) as its
//!                  /etc/resolv.conf; dns.listen(&cid, &netns_path_of_pid(pid)).await?;
//! container stop:  dns.stop(&cid).await; records.remove_endpoint(..); records.remove_view(&cid);
//! ```

mod error;
mod records;
mod resolvconf;
mod server;

pub use error::DnsError;
pub use records::{ContainerView, DnsRecords, EndpointRecord, Family};
pub use resolvconf::{container_resolv_conf, upstreams_from_ips, ResolvConf};
pub use server::{answer_query, netns_path_of_pid, DnsServer, Reply, DNS_ADDR, DNS_PORT};
