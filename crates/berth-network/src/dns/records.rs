//! The names each container may resolve: endpoints per network, and each container's view.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Length of Docker's short container ID, which every endpoint answers to.
const SHORT_ID_LEN: usize = 12;

/// One container's endpoint on one network, as the DNS server needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointRecord {
    /// The container's full ID; its first 12 characters are added to the names.
    pub container_id: String,
    /// The names it answers to on this network, the container name first (it is the PTR answer),
    /// then network aliases and the hostname, as Docker's `DNSNames` lists them.
    pub names: Vec<String>,
    /// Its IPv4 address on the network.
    pub v4: Option<Ipv4Addr>,
    /// Its IPv6 address on the network.
    pub v6: Option<Ipv6Addr>,
}

/// What one container sees through the embedded DNS server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerView {
    /// The networks (IDs) it is attached to, in the order they are searched.
    pub networks: Vec<String>,
    /// Legacy `--link` aliases: `alias` → the target's address, visible to this container only.
    pub links: Vec<(String, IpAddr)>,
    /// Its search domains (`--dns-search` or the host's), stripped from asked names.
    pub search: Vec<String>,
    /// Its own upstreams (`--dns`); empty means the server's (the host's resolv.conf). A loopback
    /// one is asked from inside the container's namespace (its 127.0.0.1 is the container's, as
    /// Docker does); the others, like the server's, from the daemon's.
    pub upstreams: Vec<SocketAddr>,
    /// The user set `ndots` (`--dns-option ndots:N`): an unknown single-label A/AAAA name is not
    /// forwarded but answered empty, so the client goes on with its search domains (as Docker).
    pub ndots_set: bool,
    /// Nothing is forwarded for this container (it is only on `--internal` networks): unknown names
    /// get SERVFAIL, as Docker's resolver without a proxy answers.
    pub no_forward: bool,
}

/// The address family of an A (v4) or AAAA (v6) question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4, an A record.
    V4,
    /// IPv6, an AAAA record.
    V6,
}

impl Family {
    fn matches(self, ip: &IpAddr) -> bool {
        matches!((self, ip), (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_)))
    }
}

/// What to do with a name the container does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// Ask the upstreams.
    Forward,
    /// NOERROR, no answers.
    Empty,
    /// SERVFAIL.
    Fail,
}

#[derive(Debug)]
struct Endpoint {
    record: EndpointRecord,
    /// Lower-case names without trailing dot, the short ID included.
    names: Vec<String>,
}

impl Endpoint {
    fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.record
            .v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.record.v6.map(IpAddr::V6))
    }

    /// The PTR name: the container name (or its short ID when it has no name).
    fn primary(&self) -> Option<&str> {
        self.record
            .names
            .first()
            .map(|n| n.trim_end_matches('.'))
            .or_else(|| self.names.first().map(String::as_str))
    }
}

#[derive(Debug, Default)]
struct Network {
    name: Option<String>,
    endpoints: HashMap<String, Endpoint>,
}

#[derive(Debug, Default)]
struct Inner {
    networks: HashMap<String, Network>,
    views: HashMap<String, ContainerView>,
}

/// The records of the embedded DNS server, shared between the engine (which updates them) and the
/// server (which reads them for every query). Cloning shares the same records.
#[derive(Debug, Clone, Default)]
pub struct DnsRecords {
    inner: Arc<RwLock<Inner>>,
    /// Rotates answers when several containers share a name (Docker shuffles them).
    turn: Arc<AtomicUsize>,
}

/// A name as compared: lower case, without the trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsRecords {
    /// Empty records.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than refusing to answer, so a poisoned lock is used as is.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names a network, so `<name>.<network-name>` resolves and PTR answers are qualified by it.
    pub fn set_network_name(&self, network_id: &str, name: &str) {
        let mut inner = self.write();
        inner.networks.entry(network_id.to_string()).or_default().name = Some(normalize(name));
    }

    /// Adds (or replaces) a container's endpoint on a network.
    pub fn add_endpoint(&self, network_id: &str, record: EndpointRecord) {
        let mut names: Vec<String> = Vec::new();
        let short_id = record.container_id.get(..SHORT_ID_LEN).map(normalize);
        for name in record.names.iter().map(|n| normalize(n)).chain(short_id) {
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        let mut inner = self.write();
        let network = inner.networks.entry(network_id.to_string()).or_default();
        network
            .endpoints
            .insert(record.container_id.clone(), Endpoint { record, names });
    }

    /// Removes a container's endpoint from a network; true if it was there.
    pub fn remove_endpoint(&self, network_id: &str, container_id: &str) -> bool {
        let mut inner = self.write();
        inner
            .networks
            .get_mut(network_id)
            .is_some_and(|n| n.endpoints.remove(container_id).is_some())
    }

    /// Forgets a network and all its endpoints.
    pub fn remove_network(&self, network_id: &str) {
        self.write().networks.remove(network_id);
    }

    /// Sets which networks a container sees and its `--link` aliases, keeping its search domains and
    /// upstreams.
    pub fn set_view(&self, container_id: &str, networks: Vec<String>, links: Vec<(String, IpAddr)>) {
        let mut inner = self.write();
        let view = inner.views.entry(container_id.to_string()).or_default();
        view.networks = networks;
        view.links = links;
    }

    /// Sets a container's whole view (networks, links, search domains, own upstreams).
    pub fn set_container_view(&self, container_id: &str, view: ContainerView) {
        self.write().views.insert(container_id.to_string(), view);
    }

    /// A container's view, if it has one.
    pub fn view(&self, container_id: &str) -> Option<ContainerView> {
        self.read().views.get(container_id).cloned()
    }

    /// Forgets a container's view (its endpoints are removed with [`Self::remove_endpoint`]).
    pub fn remove_view(&self, container_id: &str) {
        self.write().views.remove(container_id);
    }

    /// The addresses of `family` that `name` resolves to for `container_id`: `None` if the name is
    /// unknown to the container (forward it), `Some(empty)` if it is known without an address of that
    /// family (NOERROR, no answers). Link aliases come first, then the networks in the view's order;
    /// the first network with addresses of that family answers, all of its matching endpoints.
    pub fn lookup(&self, container_id: &str, name: &str, family: Family) -> Option<Vec<IpAddr>> {
        let inner = self.read();
        let view = inner.views.get(container_id)?;
        let asked = normalize(name);
        if asked.is_empty() {
            return None;
        }
        let mut candidates = vec![asked.clone()];
        for domain in &view.search {
            let domain = normalize(domain);
            if domain.is_empty() {
                continue;
            }
            if let Some(stripped) = asked.strip_suffix(&domain).and_then(|s| s.strip_suffix('.')) {
                if !stripped.is_empty() && !candidates.iter().any(|c| c == stripped) {
                    candidates.push(stripped.to_string());
                }
            }
        }

        let mut known = false;
        let linked: Vec<IpAddr> = view
            .links
            .iter()
            .filter(|(alias, _)| candidates.contains(&normalize(alias)))
            .map(|(_, ip)| *ip)
            .collect();
        if !linked.is_empty() {
            known = true;
            let found: Vec<IpAddr> = linked.into_iter().filter(|ip| family.matches(ip)).collect();
            if !found.is_empty() {
                return Some(found);
            }
        }

        for network_id in &view.networks {
            let Some(network) = inner.networks.get(network_id) else {
                continue;
            };
            let mut names: Vec<&str> = candidates.iter().map(String::as_str).collect();
            if let Some(net_name) = &network.name {
                for c in &candidates {
                    if let Some(stripped) = c.strip_suffix(net_name.as_str()).and_then(|s| s.strip_suffix('.')) {
                        if !stripped.is_empty() {
                            names.push(stripped);
                        }
                    }
                }
            }
            let mut found: Vec<IpAddr> = Vec::new();
            for endpoint in network.endpoints.values() {
                if endpoint.names.iter().any(|n| names.contains(&n.as_str())) {
                    known = true;
                    found.extend(endpoint.addrs().filter(|ip| family.matches(ip)));
                }
            }
            if !found.is_empty() {
                found.sort();
                found.dedup();
                let len = found.len();
                found.rotate_left(self.turn.fetch_add(1, Ordering::Relaxed) % len);
                return Some(found);
            }
        }
        known.then(Vec::new)
    }

    /// The PTR name of `ip` for `container_id`: `<container-name>.<network-name>` (without the
    /// network part if the network has no name) of the endpoint with that address on one of the
    /// container's networks; `None` if no such endpoint (forward it).
    pub fn lookup_ptr(&self, container_id: &str, ip: IpAddr) -> Option<String> {
        let inner = self.read();
        let view = inner.views.get(container_id)?;
        for network_id in &view.networks {
            let Some(network) = inner.networks.get(network_id) else {
                continue;
            };
            // Sorted so the answer does not depend on the map's order.
            let mut hits: Vec<&Endpoint> = network
                .endpoints
                .values()
                .filter(|e| e.addrs().any(|a| a == ip))
                .collect();
            hits.sort_by(|a, b| a.record.container_id.cmp(&b.record.container_id));
            if let Some(primary) = hits.first().and_then(|e| e.primary()) {
                return Some(match &network.name {
                    Some(net) => format!("{primary}.{net}"),
                    None => primary.to_string(),
                });
            }
        }
        None
    }

    /// What happens to a name the container does not know: forward, answer empty or fail.
    pub(crate) fn unknown_policy(&self, container_id: &str, name: &str, family: Option<Family>) -> Unknown {
        let inner = self.read();
        let Some(view) = inner.views.get(container_id) else {
            return Unknown::Forward;
        };
        if view.no_forward {
            Unknown::Fail
        } else if view.ndots_set && family.is_some() && !normalize(name).contains('.') {
            Unknown::Empty
        } else {
            Unknown::Forward
        }
    }

    /// The upstreams of the container's own view (`--dns`), empty when it uses the server's.
    pub fn upstreams_of(&self, container_id: &str) -> Vec<SocketAddr> {
        self.read()
            .views
            .get(container_id)
            .map(|v| v.upstreams.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
    const DB: &str = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";
    const DB2: &str = "cccccccccccc3333333333333333333333333333333333333333333333333333";
    const OTHER: &str = "dddddddddddd4444444444444444444444444444444444444444444444444444";

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    fn records() -> DnsRecords {
        let r = DnsRecords::new();
        r.set_network_name("net1", "mynet");
        r.add_endpoint(
            "net1",
            EndpointRecord {
                container_id: WEB.into(),
                names: vec!["web".into(), "frontend".into()],
                v4: Some("172.18.0.2".parse().unwrap()),
                v6: Some("fd00::2".parse().unwrap()),
            },
        );
        r.add_endpoint(
            "net1",
            EndpointRecord {
                container_id: DB.into(),
                names: vec!["db".into(), "store".into()],
                v4: Some("172.18.0.3".parse().unwrap()),
                v6: None,
            },
        );
        r.add_endpoint(
            "net1",
            EndpointRecord {
                container_id: DB2.into(),
                names: vec!["db2".into(), "store".into()],
                v4: Some("172.18.0.4".parse().unwrap()),
                v6: None,
            },
        );
        r.add_endpoint(
            "net2",
            EndpointRecord {
                container_id: OTHER.into(),
                names: vec!["other".into()],
                v4: Some("172.19.0.2".parse().unwrap()),
                v6: None,
            },
        );
        r.set_container_view(
            WEB,
            ContainerView {
                networks: vec!["net1".into()],
                links: vec![("legacy".into(), v4("172.19.0.2"))],
                search: vec!["corp.example".into()],
                ..Default::default()
            },
        );
        r.set_view(OTHER, vec!["net2".into()], vec![]);
        r
    }

    #[test]
    fn lookup_table() {
        let r = records();
        let cases: &[(&str, &str, Family, Option<&[&str]>)] = &[
            (WEB, "db", Family::V4, Some(&["172.18.0.3"])),
            (WEB, "DB.", Family::V4, Some(&["172.18.0.3"])),
            (WEB, "db.corp.example", Family::V4, Some(&["172.18.0.3"])),
            (WEB, "db.mynet", Family::V4, Some(&["172.18.0.3"])),
            (WEB, "db.mynet.corp.example.", Family::V4, Some(&["172.18.0.3"])),
            (WEB, "bbbbbbbbbbbb", Family::V4, Some(&["172.18.0.3"])),
            (WEB, "db", Family::V6, Some(&[])),
            (WEB, "frontend", Family::V6, Some(&["fd00::2"])),
            (WEB, "web", Family::V4, Some(&["172.18.0.2"])),
            (WEB, "legacy", Family::V4, Some(&["172.19.0.2"])),
            (WEB, "legacy", Family::V6, Some(&[])),
            (WEB, "other", Family::V4, None),
            (WEB, "example.com", Family::V4, None),
            (WEB, "", Family::V4, None),
            (WEB, ".", Family::V4, None),
            (WEB, "corp.example", Family::V4, None),
            (OTHER, "db", Family::V4, None),
            (OTHER, "legacy", Family::V4, None),
            (OTHER, "other", Family::V4, Some(&["172.19.0.2"])),
            ("nobody", "db", Family::V4, None),
        ];
        for (who, name, family, want) in cases {
            let got = r.lookup(who, name, *family);
            let want: Option<Vec<IpAddr>> = want.map(|w| w.iter().map(|s| s.parse().unwrap()).collect());
            assert_eq!(got, want, "{name} {family:?} for {}", &who[..4.min(who.len())]);
        }
    }

    #[test]
    fn shared_alias_answers_all_in_rotating_order() {
        let r = records();
        let first = r.lookup(WEB, "store", Family::V4).unwrap();
        let second = r.lookup(WEB, "store", Family::V4).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(second.len(), 2);
        assert_ne!(first, second);
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, vec![v4("172.18.0.3"), v4("172.18.0.4")]);
    }

    #[test]
    fn ptr_names_the_container_on_its_network() {
        let r = records();
        assert_eq!(r.lookup_ptr(WEB, v4("172.18.0.3")).as_deref(), Some("db.mynet"));
        assert_eq!(
            r.lookup_ptr(WEB, "fd00::2".parse().unwrap()).as_deref(),
            Some("web.mynet")
        );
        assert_eq!(r.lookup_ptr(WEB, v4("172.19.0.2")), None);
        assert_eq!(r.lookup_ptr(OTHER, v4("172.19.0.2")).as_deref(), Some("other"));
    }

    #[test]
    fn removal_forgets() {
        let r = records();
        assert!(r.remove_endpoint("net1", DB));
        assert!(!r.remove_endpoint("net1", DB));
        assert_eq!(r.lookup(WEB, "db", Family::V4), None);
        assert_eq!(r.lookup(WEB, "store", Family::V4), Some(vec![v4("172.18.0.4")]));
        r.remove_network("net1");
        assert_eq!(r.lookup(WEB, "web", Family::V4), None);
        r.remove_view(OTHER);
        assert_eq!(r.lookup(OTHER, "other", Family::V4), None);
    }

    #[test]
    fn set_view_keeps_search_and_upstreams() {
        let r = records();
        let up: SocketAddr = "127.0.0.1:53".parse().unwrap();
        r.set_container_view(
            WEB,
            ContainerView {
                upstreams: vec![up],
                search: vec!["s".into()],
                ..Default::default()
            },
        );
        r.set_view(WEB, vec!["net1".into()], vec![]);
        assert_eq!(r.upstreams_of(WEB), vec![up]);
        assert_eq!(r.lookup(WEB, "db.s", Family::V4), Some(vec![v4("172.18.0.3")]));
    }
}
