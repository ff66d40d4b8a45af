//! Network drivers: what turns a network and an endpoint into links.
//!
//! [`NetworkDriver`] is the interface every driver implements (bridge, macvlan and ipvlan here; a
//! VXLAN overlay later). It is synchronous (netlink work runs on a blocking thread) and object-safe,
//! so the engine keeps `Box<dyn NetworkDriver>` per driver name. Drivers keep no state of their own:
//! every name they create is derived from the network and endpoint ids, so after a crash the engine
//! can call [`NetworkDriver::leave`] again and the leftovers are found and removed.
//!
//! A driver acts in its "host" namespace: the caller's by default, or a given one (tests play the
//! host inside a namespace of their own with [`BridgeDriver::in_netns`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::NetError;
use crate::ipam::Pool;
use crate::netlink::{format_mac, parse_mac, IpvlanMode, MacvlanMode, Netlink, VethOptions};
use crate::netns::{run_in, sysctl_key, write_sysctl, Netns};

/// Docker's option naming a bridge's Linux interface.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Docker's option for the MTU of a network's interfaces.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
/// The macvlan/ipvlan option naming the parent interface.
pub const OPT_PARENT: &str = "parent";
/// The macvlan mode option.
pub const OPT_MACVLAN_MODE: &str = "macvlan_mode";
/// The ipvlan mode option.
pub const OPT_IPVLAN_MODE: &str = "ipvlan_mode";

/// One subnet of a network, as the engine's IPAM settled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    /// The subnet.
    pub subnet: IpNet,
    /// The gateway; `None` means the subnet's first host address.
    pub gateway: Option<IpAddr>,
}

/// A network as a driver sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The network's id (64 hex characters).
    pub id: String,
    /// The network's name.
    pub name: String,
    /// The driver name (`bridge`, `macvlan`, `ipvlan`).
    pub driver: String,
    /// IPv4 and IPv6 subnets.
    pub subnets: Vec<SubnetSpec>,
    /// `--internal`: no route to the outside (the engine passes no gateways to endpoints).
    pub internal: bool,
    /// `--ipv6`.
    pub enable_ipv6: bool,
    /// Driver options (`-o`), e.g. [`OPT_BRIDGE_NAME`], [`OPT_PARENT`].
    pub options: BTreeMap<String, String>,
}

impl NetworkSpec {
    fn has_ipv6(&self) -> bool {
        self.enable_ipv6 || self.subnets.iter().any(|s| s.subnet.addr().is_ipv6())
    }

    fn mtu(&self) -> Result<Option<u32>, NetError> {
        match self.options.get(OPT_MTU) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| NetError::InvalidOption(format!("invalid MTU value: {v}"))),
        }
    }

    /// Each subnet's gateway with the subnet's prefix (what the bridge carries).
    fn gateway_cidrs(&self) -> Result<Vec<IpNet>, NetError> {
        self.subnets
            .iter()
            .map(|s| Ok(Pool::new(s.subnet, s.gateway, None, &[])?.gateway_cidr()))
            .collect()
    }
}

/// One container's attachment to a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// The network's id.
    pub network_id: String,
    /// The container's id.
    pub container_id: String,
    /// The interface name inside the container (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// Addresses with the subnet's prefix (`172.18.0.2/16`).
    pub addresses: Vec<IpNet>,
    /// `--mac-address`; when `None` the bridge and macvlan drivers derive one as Docker does.
    pub mac: Option<String>,
    /// Default routes go through these; empty means no default route (internal networks, or a
    /// second network of the container).
    pub gateways: Vec<IpAddr>,
    /// The MTU of the container's interface; `None` keeps the network's or the kernel's.
    pub mtu: Option<u32>,
}

/// What a join produced, for the engine's records and `docker inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The container interface's MAC address (`02:42:ac:11:00:02`).
    pub mac: String,
    /// The host side of a veth pair, when there is one.
    pub host_ifname: Option<String>,
}

/// A network driver. Every method is idempotent where Docker's is: `leave` of an endpoint that is
/// already gone, or whose container namespace no longer exists, succeeds.
pub trait NetworkDriver: Send + Sync {
    /// The driver's name as `docker network create -d` spells it.
    fn name(&self) -> &'static str;
    /// Sets up what the network needs on the host (a bridge, say) and validates its options.
    fn create(&self, net: &NetworkSpec) -> Result<(), NetError>;
    /// Removes what `create` set up.
    fn delete(&self, net: &NetworkSpec) -> Result<(), NetError>;
    /// Gives the container in `ns` an interface on the network, with addresses and routes.
    fn join(&self, net: &NetworkSpec, ep: &EndpointSpec, ns: &Netns) -> Result<EndpointInfo, NetError>;
    /// Removes the endpoint's host-side leftovers; the container side goes with its namespace
    /// (use [`remove_interface`] to detach a running container).
    fn leave(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), NetError>;
}

/// Deletes `ifname` inside `ns` (absent is fine): `docker network disconnect` of a running
/// container, for drivers whose interface lives only in the container's namespace.
pub fn remove_interface(ns: &Netns, ifname: &str) -> Result<bool, NetError> {
    Netlink::open_in(ns)?.delete_link(ifname)
}

/// The built-in driver called `name` (`bridge`, `macvlan`, `ipvlan`) acting in the caller's
/// namespace, or `None` for a name this crate does not implement.
pub fn builtin(name: &str) -> Result<Option<Box<dyn NetworkDriver>>, NetError> {
    Ok(match name {
        "bridge" => Some(Box::new(BridgeDriver::new()?)),
        "macvlan" => Some(Box::new(MacvlanDriver::new()?)),
        "ipvlan" => Some(Box::new(IpvlanDriver::new()?)),
        _ => None,
    })
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not promised to be), so
/// names derived from ids are found again after an upgrade.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn endpoint_hash(ep: &EndpointSpec) -> String {
    let h = format!("{:016x}", fnv1a(&[&ep.container_id, &ep.network_id]));
    h[..7].to_string()
}

/// The host side of an endpoint's veth: `veth` + 7 hex characters derived from the container and
/// network ids, so it can be found (and removed) after a crash.
pub fn host_veth_name(ep: &EndpointSpec) -> String {
    format!("veth{}", endpoint_hash(ep))
}

/// The temporary name of an endpoint's container-side link while it is still in the host
/// namespace (`kind` is a 3-letter tag: `bmv` macvlan, `biv` ipvlan).
fn temp_name(kind: &str, ep: &EndpointSpec) -> String {
    format!("{kind}{}", endpoint_hash(ep))
}

/// The MAC Docker gives an endpoint without `--mac-address`: `02:42` and the IPv4 address; without
/// an IPv4 address, a locally administered one derived from the ids.
pub fn derive_mac(ep: &EndpointSpec) -> [u8; 6] {
    for a in &ep.addresses {
        if let IpAddr::V4(v4) = a.addr() {
            let o = v4.octets();
            return [0x02, 0x42, o[0], o[1], o[2], o[3]];
        }
    }
    let h = fnv1a(&[&ep.container_id, &ep.network_id, "mac"]).to_be_bytes();
    [0x02, h[1], h[2], h[3], h[4], h[5]]
}

fn endpoint_mac(ep: &EndpointSpec) -> Result<[u8; 6], NetError> {
    match &ep.mac {
        Some(m) if !m.is_empty() => parse_mac(m),
        _ => Ok(derive_mac(ep)),
    }
}

/// The namespace a driver treats as the host's.
#[derive(Debug)]
struct Host {
    nl: Netlink,
    ns: Option<Netns>,
}

impl Host {
    fn open(ns: Option<Netns>) -> Result<Host, NetError> {
        let nl = match &ns {
            Some(ns) => Netlink::open_in(ns)?,
            None => Netlink::open()?,
        };
        Ok(Host { nl, ns })
    }

    fn sysctl(&self, key: &str, value: &str) -> Result<(), NetError> {
        write_sysctl(self.ns.as_ref(), key, value)
    }
}

/// Runs `f`; on error, deletes the links in `cleanup` (best effort) before returning the error.
fn with_rollback<T>(nl: &Netlink, cleanup: &[&str], f: impl FnOnce() -> Result<T, NetError>) -> Result<T, NetError> {
    let res = f();
    if res.is_err() {
        for l in cleanup {
            if let Err(e) = nl.delete_link(*l) {
                tracing::warn!(link = %l, error = %e, "rollback: could not delete link");
            }
        }
    }
    res
}

/// The container-side setup shared by every driver, on one thread inside `ns`: for a link already
/// there under `temp` (moved in), rename it to the endpoint's ifname first; then MAC, MTU, the IPv6
/// switch, addresses, up, default routes. Returns the interface's MAC. On failure the link is
/// deleted (and a veth's host end with it).
fn configure_in_container(
    ns: &Netns,
    temp: Option<&str>,
    ep: &EndpointSpec,
    set_mac: Option<[u8; 6]>,
    known_mac: Option<[u8; 6]>,
    ipv6: bool,
) -> Result<[u8; 6], NetError> {
    let label = ns.label().to_string();
    run_in(ns, || {
        let nl = Netlink::open_labelled(&label)?;
        // Only our own link may be deleted on failure: when a rename fails, the ifname may belong
        // to another endpoint.
        let index = match temp {
            Some(t) => match nl.rename(t, &ep.ifname) {
                Ok(i) => i,
                Err(e) => {
                    let _ = nl.delete_link(t);
                    return Err(e);
                }
            },
            None => nl.require_index(ep.ifname.as_str())?,
        };
        let res = (|| {
            if let Some(m) = set_mac {
                nl.set_mac(index, m)?;
            }
            if let Some(mtu) = ep.mtu {
                nl.set_mtu(index, mtu)?;
            }
            // Docker: a container gets IPv6 on a network only when the network has it; otherwise
            // the kernel's link-local address would make the interface look dual-stack. This
            // thread is inside `ns`, so /proc/sys/net is the container's.
            let key = sysctl_key("net.ipv6.conf", &ep.ifname, "disable_ipv6");
            match write_sysctl(None, &key, if ipv6 { "0" } else { "1" }) {
                Err(e) if e.is_not_found() => {} // kernel without IPv6
                other => other?,
            }
            for a in &ep.addresses {
                nl.add_address(index, *a)?;
            }
            nl.set_up(index)?;
            for g in &ep.gateways {
                nl.add_default_route(index, *g)?;
            }
            match set_mac.or(known_mac) {
                Some(m) => Ok(m),
                None => nl
                    .link(index)?
                    .and_then(|l| l.mac)
                    .ok_or_else(|| NetError::LinkNotFound {
                        name: ep.ifname.clone(),
                        netns: label.clone(),
                    }),
            }
        })();
        if res.is_err() {
            if let Err(e) = nl.delete_link(index) {
                tracing::warn!(link = %ep.ifname, error = %e, "rollback: could not delete link");
            }
        }
        res
    })?
}

/// Docker's `bridge` driver: a Linux bridge per network, a veth per endpoint.
#[derive(Debug)]
pub struct BridgeDriver {
    host: Host,
}

impl BridgeDriver {
    /// A bridge driver acting in the caller's (the host's) namespace.
    pub fn new() -> Result<BridgeDriver, NetError> {
        Ok(BridgeDriver {
            host: Host::open(None)?,
        })
    }

    /// A bridge driver that treats `ns` as the host (tests; nested setups).
    pub fn in_netns(ns: Netns) -> Result<BridgeDriver, NetError> {
        Ok(BridgeDriver {
            host: Host::open(Some(ns))?,
        })
    }

    /// The Linux name of a network's bridge: option [`OPT_BRIDGE_NAME`], else `br-` and the first
    /// 12 characters of the id.
    pub fn bridge_name(net: &NetworkSpec) -> String {
        match net.options.get(OPT_BRIDGE_NAME) {
            Some(n) if !n.is_empty() => n.clone(),
            _ => format!("br-{}", net.id.chars().take(12).collect::<String>()),
        }
    }
}

impl BridgeDriver {
    /// Deletes leaked host veths after a crash: links named `veth…` attached to one of `nets`'
    /// bridges whose name belongs to none of the `live` endpoints. Veths on other bridges (another
    /// engine's, Docker's) are left alone. Returns the names deleted.
    pub fn reconcile(&self, nets: &[NetworkSpec], live: &[EndpointSpec]) -> Result<Vec<String>, NetError> {
        let nl = &self.host.nl;
        let mut bridges = Vec::new();
        for n in nets {
            if let Some(i) = nl.link_index(&Self::bridge_name(n))? {
                bridges.push(i);
            }
        }
        let keep: std::collections::BTreeSet<String> = live.iter().map(host_veth_name).collect();
        let mut deleted = Vec::new();
        for l in nl.links("veth")? {
            let ours = l.master.is_some_and(|m| bridges.contains(&m));
            if ours && !keep.contains(&l.name) && nl.delete_link(l.index)? {
                deleted.push(l.name);
            }
        }
        Ok(deleted)
    }
}

impl NetworkDriver for BridgeDriver {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn create(&self, net: &NetworkSpec) -> Result<(), NetError> {
        let br = Self::bridge_name(net);
        if br.len() > 15 {
            return Err(NetError::InvalidOption(format!(
                "bridge name {br} is longer than 15 characters"
            )));
        }
        let addrs = net.gateway_cidrs()?;
        let mtu = net.mtu()?;
        let nl = &self.host.nl;
        let existed = nl.link_index(&br)?.is_some();
        let cleanup: &[&str] = if existed { &[] } else { &[br.as_str()] };
        with_rollback(nl, cleanup, || {
            // Docker gives every bridge, internal ones too, its gateway addresses.
            nl.ensure_bridge(&br, &[], mtu)?;
            if net.has_ipv6() {
                self.host
                    .sysctl(&sysctl_key("net.ipv6.conf", &br, "disable_ipv6"), "0")?;
            }
            for a in addrs {
                nl.ensure_address(&br, a)?;
            }
            self.host.sysctl("net.ipv4.ip_forward", "1")?;
            // Published ports on 127.0.0.1 are DNATed to the container: the kernel must route
            // loopback-sourced packets out of the bridge.
            self.host
                .sysctl(&sysctl_key("net.ipv4.conf", &br, "route_localnet"), "1")?;
            if net.has_ipv6() {
                self.host.sysctl("net.ipv6.conf.all.forwarding", "1")?;
            }
            Ok(())
        })
    }

    fn delete(&self, net: &NetworkSpec) -> Result<(), NetError> {
        self.host.nl.delete_link(&Self::bridge_name(net))?;
        Ok(())
    }

    fn join(&self, net: &NetworkSpec, ep: &EndpointSpec, ns: &Netns) -> Result<EndpointInfo, NetError> {
        let nl = &self.host.nl;
        let br = Self::bridge_name(net);
        let host_if = host_veth_name(ep);
        let mac = endpoint_mac(ep)?;
        let mtu = match ep.mtu {
            Some(m) => Some(m),
            None => net.mtu()?,
        };
        let br_index = nl.link_index(&br)?.ok_or_else(|| NetError::LinkNotFound {
            name: br.clone(),
            netns: nl.netns_label().to_string(),
        })?;
        // One request: the host end enslaved and up, the container end made directly in the
        // container's namespace under its final name with its MAC.
        let opts = VethOptions {
            mtu,
            master: Some(br_index),
            up: true,
            peer_mac: Some(mac),
        };
        match nl.create_veth_into(&host_if, &ep.ifname, ns, opts) {
            // A join of this endpoint that crashed half-way left the pair: remove it, try again.
            // (When the host end is not ours to remove, the ifname is taken: a Conflict.)
            Err(e) if e.is_exists() && nl.delete_link(&host_if)? => {
                nl.create_veth_into(&host_if, &ep.ifname, ns, opts)?
            }
            other => other?,
        }
        let ep_cfg = EndpointSpec {
            mtu: None,
            ..ep.clone()
        };
        with_rollback(nl, &[&host_if], || nl.set_hairpin(host_if.as_str(), true))?;
        let got = with_rollback(nl, &[&host_if], || {
            configure_in_container(ns, None, &ep_cfg, None, Some(mac), net.has_ipv6())
        })?;
        Ok(EndpointInfo {
            mac: format_mac(got),
            host_ifname: Some(host_if),
        })
    }

    fn leave(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), NetError> {
        // Deleting the host end removes the container end wherever it is.
        self.host.nl.delete_link(&host_veth_name(ep))?;
        Ok(())
    }
}

/// Checks `parent` exists in the host namespace, with Docker's message when it does not.
fn require_parent(nl: &Netlink, net: &NetworkSpec) -> Result<String, NetError> {
    let parent = match net.options.get(OPT_PARENT) {
        Some(p) if !p.is_empty() => p.clone(),
        _ => {
            return Err(NetError::InvalidOption(format!(
                "the {} driver needs a parent interface: -o parent=<host interface>",
                net.driver
            )))
        }
    };
    if nl.link_index(&parent)?.is_none() {
        return Err(NetError::InvalidOption(format!(
            "-o parent interface was not found on the host: {parent}"
        )));
    }
    Ok(parent)
}

/// Docker's `macvlan` driver: each endpoint is a macvlan sub-interface of `-o parent`.
#[derive(Debug)]
pub struct MacvlanDriver {
    host: Host,
}

impl MacvlanDriver {
    /// A macvlan driver acting in the caller's (the host's) namespace.
    pub fn new() -> Result<MacvlanDriver, NetError> {
        Ok(MacvlanDriver {
            host: Host::open(None)?,
        })
    }

    /// A macvlan driver that treats `ns` as the host.
    pub fn in_netns(ns: Netns) -> Result<MacvlanDriver, NetError> {
        Ok(MacvlanDriver {
            host: Host::open(Some(ns))?,
        })
    }
}

fn macvlan_mode(net: &NetworkSpec) -> Result<MacvlanMode, NetError> {
    MacvlanMode::parse(net.options.get(OPT_MACVLAN_MODE).map_or("", String::as_str))
}

/// A macvlan or ipvlan join: the sub-interface is made in the host's namespace under a temporary
/// name by `create`, moved into the container's and set up there (or removed if that fails).
fn join_sub_interface(
    nl: &Netlink,
    temp: &str,
    create: impl Fn() -> Result<(), NetError>,
    ns: &Netns,
    ep: &EndpointSpec,
    mac: Option<[u8; 6]>,
    net: &NetworkSpec,
) -> Result<EndpointInfo, NetError> {
    match create() {
        // Left by a join that crashed before moving it.
        Err(e) if e.is_exists() && nl.delete_link(temp)? => create()?,
        other => other?,
    }
    let got = with_rollback(nl, &[temp], || {
        nl.move_to_netns(temp, ns)?;
        configure_in_container(ns, Some(temp), ep, mac, None, net.has_ipv6())
    })?;
    Ok(EndpointInfo {
        mac: format_mac(got),
        host_ifname: None,
    })
}

fn ipvlan_mode(net: &NetworkSpec) -> Result<IpvlanMode, NetError> {
    IpvlanMode::parse(net.options.get(OPT_IPVLAN_MODE).map_or("", String::as_str))
}

impl NetworkDriver for MacvlanDriver {
    fn name(&self) -> &'static str {
        "macvlan"
    }

    fn create(&self, net: &NetworkSpec) -> Result<(), NetError> {
        macvlan_mode(net)?;
        require_parent(&self.host.nl, net)?;
        net.gateway_cidrs()?;
        Ok(())
    }

    fn delete(&self, _net: &NetworkSpec) -> Result<(), NetError> {
        Ok(())
    }

    fn join(&self, net: &NetworkSpec, ep: &EndpointSpec, ns: &Netns) -> Result<EndpointInfo, NetError> {
        let nl = &self.host.nl;
        let parent = require_parent(nl, net)?;
        let mode = macvlan_mode(net)?;
        let mac = endpoint_mac(ep)?;
        let temp = temp_name("bmv", ep);
        join_sub_interface(
            nl,
            &temp,
            || nl.create_macvlan(&temp, parent.as_str(), mode),
            ns,
            ep,
            Some(mac),
            net,
        )
    }

    fn leave(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), NetError> {
        self.host.nl.delete_link(&temp_name("bmv", ep))?;
        Ok(())
    }
}

/// Docker's `ipvlan` driver: each endpoint is an ipvlan sub-interface of `-o parent` (sharing the
/// parent's MAC address).
#[derive(Debug)]
pub struct IpvlanDriver {
    host: Host,
}

impl IpvlanDriver {
    /// An ipvlan driver acting in the caller's (the host's) namespace.
    pub fn new() -> Result<IpvlanDriver, NetError> {
        Ok(IpvlanDriver {
            host: Host::open(None)?,
        })
    }

    /// An ipvlan driver that treats `ns` as the host.
    pub fn in_netns(ns: Netns) -> Result<IpvlanDriver, NetError> {
        Ok(IpvlanDriver {
            host: Host::open(Some(ns))?,
        })
    }
}

impl NetworkDriver for IpvlanDriver {
    fn name(&self) -> &'static str {
        "ipvlan"
    }

    fn create(&self, net: &NetworkSpec) -> Result<(), NetError> {
        ipvlan_mode(net)?;
        require_parent(&self.host.nl, net)?;
        net.gateway_cidrs()?;
        Ok(())
    }

    fn delete(&self, _net: &NetworkSpec) -> Result<(), NetError> {
        Ok(())
    }

    fn join(&self, net: &NetworkSpec, ep: &EndpointSpec, ns: &Netns) -> Result<EndpointInfo, NetError> {
        let nl = &self.host.nl;
        let parent = require_parent(nl, net)?;
        let mode = ipvlan_mode(net)?;
        let temp = temp_name("biv", ep);
        // ipvlan links carry the parent's MAC; it cannot be set.
        join_sub_interface(
            nl,
            &temp,
            || nl.create_ipvlan(&temp, parent.as_str(), mode),
            ns,
            ep,
            None,
            net,
        )
    }

    fn leave(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), NetError> {
        self.host.nl.delete_link(&temp_name("biv", ep))?;
        Ok(())
    }
}

/// Runs `f` in `ns` when given, else on the calling thread: for callers that need a socket or a
/// file in the driver's host namespace.
pub fn in_host<T: Send>(ns: Option<&Netns>, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
    match ns {
        Some(ns) => run_in(ns, f),
        None => Ok(f()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ep(c: &str, n: &str, addrs: &[&str]) -> EndpointSpec {
        EndpointSpec {
            network_id: n.into(),
            container_id: c.into(),
            ifname: "eth0".into(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_deterministic_and_short() {
        let a = ep("c1", "n1", &[]);
        assert_eq!(host_veth_name(&a), host_veth_name(&a.clone()));
        assert_ne!(host_veth_name(&a), host_veth_name(&ep("c2", "n1", &[])));
        assert_ne!(host_veth_name(&a), host_veth_name(&ep("c1", "n2", &[])));
        assert_eq!(host_veth_name(&a).len(), 11);
        assert!(temp_name("bmv", &a).len() <= 15);
    }

    #[test]
    fn mac_from_ipv4_like_docker() {
        assert_eq!(
            format_mac(derive_mac(&ep("c", "n", &["172.17.0.2/16"]))),
            "02:42:ac:11:00:02"
        );
        let m = derive_mac(&ep("c", "n", &["fd00::2/64"]));
        assert_eq!(m[0], 0x02);
        let mut e = ep("c", "n", &["172.17.0.2/16"]);
        e.mac = Some("02:00:00:00:00:09".into());
        assert_eq!(endpoint_mac(&e).unwrap(), [2, 0, 0, 0, 0, 9]);
    }

    #[test]
    fn bridge_names() {
        let mut n = NetworkSpec {
            id: "0123456789abcdef0123".into(),
            ..Default::default()
        };
        assert_eq!(BridgeDriver::bridge_name(&n), "br-0123456789ab");
        n.options.insert(OPT_BRIDGE_NAME.into(), "berth0".into());
        assert_eq!(BridgeDriver::bridge_name(&n), "berth0");
    }

    #[test]
    fn drivers_are_objects() {
        fn takes(_: Option<Box<dyn NetworkDriver>>) {}
        takes(None);
    }
}
