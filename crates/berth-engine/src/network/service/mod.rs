//! [`Networks`]: the network records, the address pools, and the run hooks.
//!
//! - this file: the service, its state, opening and `/networks` (create, list, inspect, remove,
//!   prune);
//! - `run`: a container run's endpoints (`attach`, `setup`, `teardown`, restore after a restart);
//! - `connect`: `network connect`/`disconnect` of a running container;
//! - `view`: the container's `NetworkSettings` and `Ports` as inspect and ps show them.

mod connect;
mod run;
mod view;

use super::endpoints::{EndpointState, RunEndpoints};
use super::etc::{self, DnsSettings, Resolver};
use super::ports::{PortRequest, Proto, PublishedPort};
use super::record::{validate_name, NetworkRecord, SubnetRecord, PREDEFINED};
use super::{parse_extra_hosts, write_etc_files, Endpoint, NetworkAttachment, NetworkRequest};
use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus, EventType};
use crate::filters::{check_keys, created_before, match_kv_list, prune_labels_match, prune_until, Filters};
use crate::{lock, ContainerRecord};
use berth_api::models::{
    EndpointSettings, Network, NetworkContainer, NetworkCreateRequest, NetworkSettings, Port, PortTypeEnum,
};
use berth_network::dns::{ContainerView, DnsRecords, DnsServer, EndpointRecord, ResolvConf};
use berth_network::driver::{
    BridgeDriver, EndpointSpec, IpvlanDriver, MacvlanDriver, NetworkDriver, NetworkSpec, SubnetSpec,
};
use berth_network::firewall::{Firewall, NetworkRules, PortMapping, PortReservation};
use berth_network::ipam::{AddressPools, DefaultPool, Pool};
use berth_network::netlink::Netlink;
use berth_network::netns::Netns;
use berth_runtime::NetworkMode;
use berth_types::HasErrorKind;
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The default bridge (`bridge` network, `docker0` in Docker) as the daemon's flags describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBridge {
    /// The bridge interface (`berth0`; `-b/--bridge`).
    pub name: String,
    /// The bridge's address and subnet (`--bip 172.17.0.1/16`); `None` picks a free pool.
    pub bip: Option<IpNet>,
    /// The part of the subnet containers get addresses from (`--fixed-cidr`).
    pub fixed_cidr: Option<IpNet>,
}

/// The network service's configuration, from the daemon's flags.
#[derive(Debug, Clone)]
pub struct NetworksConfig {
    /// `<data-root>/network`.
    pub root: PathBuf,
    /// The default bridge; `None` (`--bridge none`) has no `bridge` network.
    pub default_bridge: Option<DefaultBridge>,
    /// Pools new networks take subnets from (`--default-address-pool base=...,size=...`); empty
    /// is Docker's.
    pub default_pools: Vec<(IpNet, u8)>,
    /// Whether berth programs NAT and filter rules (`--iptables`).
    pub firewall: bool,
    /// Daemon-wide `--dns`, `--dns-search`, `--dns-opt`.
    pub dns: DnsSettings,
    /// The host's resolver configuration (`/etc/resolv.conf`).
    pub resolv_conf: PathBuf,
    /// MTU for new bridges and their veths (`--mtu`).
    pub mtu: Option<u32>,
}

impl NetworksConfig {
    /// Docker's defaults under `root`.
    pub fn new(root: PathBuf) -> NetworksConfig {
        NetworksConfig {
            root,
            default_bridge: Some(DefaultBridge {
                name: "berth0".into(),
                bip: None,
                fixed_cidr: None,
            }),
            default_pools: Vec::new(),
            firewall: true,
            dns: DnsSettings::default(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            mtu: None,
        }
    }
}

/// A network request as `POST /networks/create` carries it.
pub type NetworkCreate = NetworkCreateRequest;

struct Net {
    rec: NetworkRecord,
    pools: Vec<Pool>,
}

impl Net {
    fn spec(&self) -> NetworkSpec {
        NetworkSpec {
            id: self.rec.id.clone(),
            name: self.rec.name.clone(),
            driver: self.rec.driver.clone(),
            subnets: self
                .pools
                .iter()
                .map(|p| SubnetSpec {
                    subnet: p.subnet(),
                    gateway: Some(p.gateway()),
                })
                .collect(),
            internal: self.rec.internal,
            enable_ipv6: self.rec.enable_ipv6,
            options: self.rec.options.clone(),
        }
    }

    fn pool_for(&mut self, ip: IpAddr) -> Option<&mut Pool> {
        self.pools.iter_mut().find(|p| p.subnet().contains(&ip))
    }

    fn pool_v(&mut self, v6: bool) -> Option<&mut Pool> {
        self.pools.iter_mut().find(|p| p.subnet().addr().is_ipv6() == v6)
    }

    /// An address for an endpoint with its subnet's prefix and the gateway: the one asked for
    /// (`--ip`), or the next free one; `None` when the network has no subnet of that family.
    fn take_address(&mut self, v6: bool, asked: Option<&String>) -> Result<Option<(IpNet, IpAddr)>> {
        if v6 && !self.rec.enable_ipv6 {
            return Ok(None);
        }
        let (pool, ip) = match asked.filter(|a| !a.is_empty()) {
            Some(a) => {
                let ip = parse_ip(a, "IP address")?;
                let pool = self.pool_for(ip).ok_or_else(|| {
                    EngineError::InvalidArgument(format!("no configured subnet or ip-range contain the IP address {a}"))
                })?;
                pool.reserve(ip).map_err(net_err)?;
                (pool, ip)
            }
            None => match self.pool_v(v6) {
                Some(pool) => {
                    let ip = pool.allocate().map_err(net_err)?;
                    (pool, ip)
                }
                None => return Ok(None),
            },
        };
        Ok(Some((pool.with_prefix(ip), pool.gateway())))
    }

    /// Gives an endpoint's addresses back.
    fn give_back(&mut self, e: &EndpointState) {
        for a in e.ipv4.iter().chain(e.ipv6.iter()) {
            if let Some(p) = self.pool_for(a.addr()) {
                p.release(a.addr());
            }
        }
    }

    /// A new endpoint of container `cid` (named `cname`) on this network as interface `ifname`:
    /// its addresses are taken from the pools (and given back if a later step fails).
    fn new_endpoint(
        &mut self,
        cid: &str,
        cname: &str,
        ifname: String,
        s: &EndpointSettings,
        default_route: bool,
    ) -> Result<EndpointState> {
        let cfg = s.ipam_config.clone().unwrap_or_default();
        let v4 = self.take_address(false, cfg.ipv4_address.as_ref())?;
        let v6 = match self.take_address(true, cfg.ipv6_address.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                if let Some((a, _)) = v4 {
                    if let Some(p) = self.pool_for(a.addr()) {
                        p.release(a.addr());
                    }
                }
                return Err(e);
            }
        };
        let mut dns_names = Vec::new();
        if self.rec.embedded_dns() {
            dns_names.push(cname.to_string());
            for a in s.aliases.clone().unwrap_or_default() {
                if !dns_names.contains(&a) {
                    dns_names.push(a);
                }
            }
            dns_names.push(berth_types::short_id(cid).to_string());
        }
        let internal = self.rec.internal;
        Ok(EndpointState {
            network_id: self.rec.id.clone(),
            network_name: self.rec.name.clone(),
            endpoint_id: berth_types::new_id(),
            ifname,
            mac: s
                .mac_address
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| mac_for(v4.map(|(a, _)| a.addr()))),
            ipv4: v4.map(|(a, _)| a),
            ipv6: v6.map(|(a, _)| a),
            gateway4: v4.map(|(_, g)| g).filter(|_| !internal),
            gateway6: v6.map(|(_, g)| g).filter(|_| !internal),
            default_route: default_route && !internal,
            aliases: s.aliases.clone().unwrap_or_default(),
            dns_names,
            host_ifname: None,
        })
    }

    /// Whether the subnet a static address (`--ip`, `--ip6`) belongs to was configured by the user
    /// (Docker refuses static addresses on subnets it chose itself).
    fn user_subnet_for(&self, addr: &str) -> bool {
        let auto_v4 = self.rec.labels.contains_key(AUTO_SUBNET_LABEL);
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => !auto_v4 && !self.rec.subnets.is_empty(),
            Ok(IpAddr::V6(_)) => self.rec.subnets.iter().any(|s| s.subnet.contains(':')),
            Err(_) => true,
        }
    }
}

/// Internal marker (not shown as a label) of networks whose subnet berth picked.
const AUTO_SUBNET_LABEL: &str = "\u{0}berth.auto-subnet";

#[derive(Default)]
struct Inner {
    nets: BTreeMap<String, Net>,
    runs: HashMap<String, RunEndpoints>,
}

/// The network service.
pub struct Networks {
    cfg: NetworksConfig,
    inner: Mutex<Inner>,
    reservations: Mutex<HashMap<String, Vec<PortReservation>>>,
    drivers: BTreeMap<&'static str, Arc<dyn NetworkDriver>>,
    firewall: Option<Firewall>,
    dns: DnsServer,
    records: DnsRecords,
    /// The daemon's runtime: the DNS server's sockets live on it (the service's methods run on
    /// blocking threads and enter it with `block_on`).
    rt: tokio::runtime::Handle,
    events: EventBus,
}

fn net_err<E: HasErrorKind + std::fmt::Display>(e: E) -> EngineError {
    EngineError::from_kind(e)
}

fn parse_net(s: &str) -> Result<IpNet> {
    s.parse::<IpNet>()
        .map_err(|_| EngineError::InvalidArgument(format!("invalid CIDR address: {s}")))
}

fn parse_ip(s: &str, what: &str) -> Result<IpAddr> {
    s.parse::<IpAddr>()
        .map_err(|_| EngineError::InvalidArgument(format!("invalid {what}: {s}")))
}

fn pools_of(rec: &NetworkRecord) -> Result<Vec<Pool>> {
    rec.subnets
        .iter()
        .map(|s| {
            let subnet = parse_net(&s.subnet)?;
            let gw = if s.gateway.is_empty() {
                None
            } else {
                Some(parse_ip(&s.gateway, "gateway")?)
            };
            let range = s.ip_range.as_deref().map(parse_net).transpose()?;
            let aux: Vec<IpAddr> = s.aux_addresses.values().filter_map(|ip| ip.parse().ok()).collect();
            Pool::new(subnet, gw, range, &aux).map_err(net_err)
        })
        .collect()
}

/// Docker's MAC for an IPv4 address: `02:42` and the address's four bytes.
fn mac_for(ip: Option<IpAddr>) -> String {
    let b = match ip {
        Some(IpAddr::V4(v4)) => v4.octets(),
        _ => {
            let mut r = [0u8; 4];
            let _ = getrandom::getrandom(&mut r);
            r
        }
    };
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

impl Networks {
    /// Opens the network service: loads the records, creates the predefined networks that are
    /// missing, and brings every network's bridge up. Containers are restored by [`Networks::restore`].
    pub fn open(cfg: NetworksConfig, events: EventBus) -> Result<Arc<Networks>> {
        for d in ["networks", "endpoints"] {
            let p = cfg.root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| EngineError::io("creating", &p, e))?;
        }
        let firewall = if cfg.firewall {
            Some(Firewall::new().map_err(net_err)?)
        } else {
            None
        };
        let mut drivers: BTreeMap<&'static str, Arc<dyn NetworkDriver>> = BTreeMap::new();
        drivers.insert("bridge", Arc::new(BridgeDriver::new().map_err(net_err)?));
        drivers.insert("macvlan", Arc::new(MacvlanDriver::new().map_err(net_err)?));
        drivers.insert("ipvlan", Arc::new(IpvlanDriver::new().map_err(net_err)?));
        let host = ResolvConf::parse(&std::fs::read_to_string(&cfg.resolv_conf).unwrap_or_default());
        let records = DnsRecords::new();
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| EngineError::Internal(format!("the network service needs the daemon's runtime: {e}")))?;
        let dns = {
            let _enter = rt.enter();
            DnsServer::start(records.clone(), host.upstreams())
        };
        let svc = Networks {
            dns,
            records,
            rt,
            cfg,
            inner: Mutex::new(Inner::default()),
            reservations: Mutex::new(HashMap::new()),
            drivers,
            firewall,
            events,
        };
        svc.load()?;
        Ok(Arc::new(svc))
    }

    fn networks_dir(&self) -> PathBuf {
        self.cfg.root.join("networks")
    }

    fn endpoints_dir(&self) -> PathBuf {
        self.cfg.root.join("endpoints")
    }

    fn load(&self) -> Result<()> {
        let records = NetworkRecord::load_all(&self.networks_dir())?;
        let mut inner = lock(&self.inner);
        for rec in records {
            let pools = match pools_of(&rec) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("network {}: {e}; its addresses cannot be handed out", rec.name);
                    Vec::new()
                }
            };
            inner.nets.insert(rec.id.clone(), Net { rec, pools });
        }
        for name in PREDEFINED {
            if inner.nets.values().any(|n| n.rec.name == name) {
                continue;
            }
            let rec = match name {
                "bridge" => match self.default_bridge_record(&inner)? {
                    Some(r) => r,
                    None => continue,
                },
                _ => NetworkRecord {
                    id: berth_types::new_id(),
                    name: name.into(),
                    driver: if name == "host" { "host" } else { "null" }.into(),
                    created: berth_types::time::now_rfc3339(),
                    internal: false,
                    attachable: false,
                    enable_ipv6: false,
                    ipam_driver: "default".into(),
                    ipam_options: BTreeMap::new(),
                    subnets: Vec::new(),
                    options: BTreeMap::new(),
                    labels: BTreeMap::new(),
                },
            };
            rec.save(&self.networks_dir())?;
            let pools = pools_of(&rec)?;
            inner.nets.insert(rec.id.clone(), Net { rec, pools });
        }
        // A changed `--bip` or `--bridge` moves the default bridge.
        if let Some(b) = &self.cfg.default_bridge {
            if let Some(net) = inner.nets.values_mut().find(|n| n.rec.name == "bridge") {
                let want_name = b.name.clone();
                let mut changed = net.rec.options.get(BRIDGE_NAME_OPT) != Some(&want_name);
                net.rec.options.insert(BRIDGE_NAME_OPT.into(), want_name);
                if let Some(bip) = b.bip {
                    let subnet = bip.trunc().to_string();
                    if net.rec.subnets.first().map(|s| &s.subnet) != Some(&subnet) {
                        net.rec.subnets = vec![SubnetRecord {
                            subnet,
                            gateway: bip.addr().to_string(),
                            ip_range: b.fixed_cidr.map(|c| c.to_string()),
                            aux_addresses: BTreeMap::new(),
                        }];
                        changed = true;
                    }
                }
                if changed {
                    net.rec.save(&self.networks_dir())?;
                    net.pools = pools_of(&net.rec)?;
                }
            }
        }
        for net in inner.nets.values() {
            if let Err(e) = self.bring_up(net) {
                tracing::warn!("network {}: {e}", net.rec.name);
            }
        }
        Ok(())
    }

    fn default_bridge_record(&self, inner: &Inner) -> Result<Option<NetworkRecord>> {
        let Some(b) = &self.cfg.default_bridge else {
            return Ok(None);
        };
        let (subnet, gateway) = match b.bip {
            Some(bip) => (bip.trunc(), bip.addr()),
            None => {
                let subnet = self.free_subnet(inner, false)?;
                let gw = Pool::new(subnet, None, None, &[]).map_err(net_err)?.gateway();
                (subnet, gw)
            }
        };
        let mut options = BTreeMap::new();
        for (k, v) in [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            ("com.docker.network.driver.mtu", "1500"),
        ] {
            options.insert(k.to_string(), v.to_string());
        }
        options.insert(BRIDGE_NAME_OPT.into(), b.name.clone());
        Ok(Some(NetworkRecord {
            id: berth_types::new_id(),
            name: "bridge".into(),
            driver: "bridge".into(),
            created: berth_types::time::now_rfc3339(),
            internal: false,
            attachable: false,
            enable_ipv6: false,
            ipam_driver: "default".into(),
            ipam_options: BTreeMap::new(),
            subnets: vec![SubnetRecord {
                subnet: subnet.to_string(),
                gateway: gateway.to_string(),
                ip_range: b.fixed_cidr.map(|c| c.to_string()),
                aux_addresses: BTreeMap::new(),
            }],
            options,
            labels: BTreeMap::new(),
        }))
    }

    /// A subnet from the default pools that overlaps no network and no host route.
    fn free_subnet(&self, inner: &Inner, v6: bool) -> Result<IpNet> {
        if v6 {
            // A unique-local /64 of our own, as Docker's default IPv6 pool hands out.
            let mut r = [0u8; 7];
            let _ = getrandom::getrandom(&mut r);
            let s = format!(
                "fd{:02x}:{:02x}{:02x}:{:02x}{:02x}:{:02x}{:02x}::/64",
                r[0], r[1], r[2], r[3], r[4], r[5], r[6]
            );
            return parse_net(&s);
        }
        let mut taken: Vec<IpNet> = inner
            .nets
            .values()
            .flat_map(|n| n.pools.iter().map(|p| p.subnet()))
            .collect();
        taken.extend(Netlink::open().and_then(|n| n.route_destinations()).unwrap_or_default());
        let pools = if self.cfg.default_pools.is_empty() {
            AddressPools::docker_default()
        } else {
            AddressPools::new(
                self.cfg
                    .default_pools
                    .iter()
                    .map(|(b, s)| DefaultPool::new(*b, *s))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(net_err)?,
            )
        };
        pools.next_subnet(&taken, false).map_err(|_| {
            EngineError::Forbidden(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
                    .into(),
            )
        })
    }

    /// The network's spec and driver, for a join or a leave.
    pub(super) fn driver_for(&self, network_id: &str) -> Option<(NetworkSpec, Arc<dyn NetworkDriver>)> {
        let inner = lock(&self.inner);
        let net = inner.nets.get(network_id)?;
        let d = self.drivers.get(net.rec.driver.as_str())?;
        Some((net.spec(), d.clone()))
    }

    /// Creates the network's links (a bridge) and its firewall rules.
    fn bring_up(&self, net: &Net) -> Result<()> {
        let Some(d) = self.drivers.get(net.rec.driver.as_str()) else {
            return Ok(());
        };
        d.create(&net.spec()).map_err(net_err)?;
        if let (Some(fw), "bridge") = (&self.firewall, net.rec.driver.as_str()) {
            fw.setup_network(&self.rules(net)).map_err(net_err)?;
        }
        Ok(())
    }

    fn rules(&self, net: &Net) -> NetworkRules {
        NetworkRules {
            id: net.rec.id.clone(),
            bridge: bridge_name(&net.rec),
            subnets: net.pools.iter().map(|p| p.subnet()).collect(),
            internal: net.rec.internal,
            masquerade: net
                .rec
                .options
                .get("com.docker.network.bridge.enable_ip_masquerade")
                .is_none_or(|v| v != "false"),
            icc: net
                .rec
                .options
                .get("com.docker.network.bridge.enable_icc")
                .is_none_or(|v| v != "false"),
        }
    }

    // ---- the /networks endpoints ----

    fn find<'a>(inner: &'a Inner, name: &str) -> Result<&'a Net> {
        if let Some(n) = inner.nets.values().find(|n| n.rec.name == name) {
            return Ok(n);
        }
        if let Some(n) = inner.nets.get(name) {
            return Ok(n);
        }
        let matches: Vec<&Net> = inner.nets.values().filter(|n| n.rec.id.starts_with(name)).collect();
        match matches.as_slice() {
            [one] if !name.is_empty() => Ok(one),
            [] | [_] => Err(EngineError::NotFound(format!("network {name} not found"))),
            _ => Err(EngineError::InvalidArgument(format!(
                "network {name} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    /// The network's ID and name, for a name, ID or ID prefix.
    pub fn resolve(&self, name: &str) -> Result<(String, String)> {
        let inner = lock(&self.inner);
        let n = Self::find(&inner, name)?;
        Ok((n.rec.id.clone(), n.rec.name.clone()))
    }

    /// The gateway of the default bridge (`host-gateway` in `--add-host`).
    pub fn host_gateway(&self) -> Option<IpAddr> {
        let inner = lock(&self.inner);
        let n = inner.nets.values().find(|n| n.rec.name == "bridge")?;
        n.pools
            .iter()
            .find(|p| p.subnet().addr().is_ipv4())
            .map(|p| p.gateway())
    }

    /// `POST /networks/create`.
    pub fn create(&self, req: NetworkCreate) -> Result<(String, String)> {
        validate_name(&req.name)?;
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        if PREDEFINED.contains(&req.name.as_str()) {
            return Err(EngineError::Forbidden(format!(
                "{} is a pre-defined network and cannot be created",
                req.name
            )));
        }
        match driver.as_str() {
            "host" | "null" => {
                return Err(EngineError::Forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )))
            }
            d if !self.drivers.contains_key(d) => {
                return Err(EngineError::NotFound(format!("plugin \"{d}\" not found")));
            }
            _ => {}
        }
        if req.config_only.unwrap_or(false)
            || req
                .config_from
                .as_ref()
                .and_then(|c| c.network.as_ref())
                .is_some_and(|n| !n.is_empty())
        {
            return Err(EngineError::Unsupported(
                "config-only networks are not supported".into(),
            ));
        }
        let ipam = req.ipam.clone().unwrap_or_default();
        let ipam_driver = ipam
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "default".into());
        if ipam_driver != "default" {
            return Err(EngineError::NotFound(format!("plugin \"{ipam_driver}\" not found")));
        }
        let enable_ipv6 = req.enable_ipv6.unwrap_or(false);
        let mut inner = lock(&self.inner);
        if inner.nets.values().any(|n| n.rec.name == req.name) {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let mut subnets = Vec::new();
        let mut labels: BTreeMap<String, String> = req.labels.clone().unwrap_or_default().into_iter().collect();
        for c in ipam.config.clone().unwrap_or_default() {
            let subnet = match c.subnet.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => {
                    let n = parse_net(s)?;
                    if n != n.trunc() {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid subnet {s}: it should be {}",
                            n.trunc()
                        )));
                    }
                    n
                }
                None => {
                    return Err(EngineError::InvalidArgument(
                        "ipam configuration without a subnet is not supported: give --subnet".into(),
                    ))
                }
            };
            let gw = c
                .gateway
                .as_deref()
                .filter(|g| !g.is_empty())
                .map(|g| parse_ip(g, "gateway address"))
                .transpose()?;
            let range = c
                .ip_range
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(parse_net)
                .transpose()?;
            let mut aux = BTreeMap::new();
            for (k, v) in c.auxiliary_addresses.clone().unwrap_or_default() {
                let ip = parse_ip(&v, "auxiliary address")?;
                if !subnet.contains(&ip) {
                    return Err(EngineError::InvalidArgument(format!(
                        "auxiliary address {k}={v} is not in subnet {subnet}"
                    )));
                }
                aux.insert(k, v);
            }
            let aux_ips: Vec<IpAddr> = aux.values().filter_map(|v| v.parse().ok()).collect();
            let pool = Pool::new(subnet, gw, range, &aux_ips).map_err(net_err)?;
            subnets.push(SubnetRecord {
                subnet: subnet.to_string(),
                gateway: pool.gateway().to_string(),
                ip_range: range.map(|r| r.to_string()),
                aux_addresses: aux,
            });
        }
        // Overlaps with each other and with other networks of a driver that owns its subnet.
        let mut seen: Vec<IpNet> = Vec::new();
        for s in &subnets {
            let n = parse_net(&s.subnet)?;
            let clash = seen
                .iter()
                .any(|o| o.contains(&n.network()) || n.contains(&o.network()))
                || (driver == "bridge"
                    && inner.nets.values().any(|other| {
                        other.rec.driver == "bridge"
                            && other
                                .pools
                                .iter()
                                .any(|p| p.subnet().contains(&n.network()) || n.contains(&p.subnet().network()))
                    }));
            if clash {
                return Err(EngineError::Forbidden(
                    "Pool overlaps with other one on this address space".into(),
                ));
            }
            seen.push(n);
        }
        let mut auto = false;
        if !subnets.iter().any(|s| s.subnet.contains('.')) {
            let subnet = self.free_subnet(&inner, false)?;
            let gw = Pool::new(subnet, None, None, &[]).map_err(net_err)?.gateway();
            subnets.insert(
                0,
                SubnetRecord {
                    subnet: subnet.to_string(),
                    gateway: gw.to_string(),
                    ip_range: None,
                    aux_addresses: BTreeMap::new(),
                },
            );
            auto = true;
        }
        if enable_ipv6 && !subnets.iter().any(|s| s.subnet.contains(':')) {
            let subnet = self.free_subnet(&inner, true)?;
            let gw = Pool::new(subnet, None, None, &[]).map_err(net_err)?.gateway();
            subnets.push(SubnetRecord {
                subnet: subnet.to_string(),
                gateway: gw.to_string(),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            });
        }
        if !enable_ipv6 && subnets.iter().any(|s| s.subnet.contains(':')) {
            return Err(EngineError::InvalidArgument(
                "an IPv6 subnet was given but IPv6 is not enabled on the network: add --ipv6".into(),
            ));
        }
        if auto {
            labels.insert(AUTO_SUBNET_LABEL.into(), String::new());
        }
        let id = berth_types::new_id();
        let options: BTreeMap<String, String> = req.options.clone().unwrap_or_default().into_iter().collect();
        if driver == "bridge" {
            if let Some(b) = options.get(BRIDGE_NAME_OPT) {
                if b.is_empty() || b.len() > 15 || b.contains('/') || b.contains(char::is_whitespace) {
                    return Err(EngineError::InvalidArgument(format!("invalid bridge name \"{b}\"")));
                }
                if inner.nets.values().any(|n| bridge_name(&n.rec) == *b) {
                    return Err(EngineError::Conflict(format!(
                        "bridge name {b} is already used by another network"
                    )));
                }
            }
        } else if (driver == "macvlan" || driver == "ipvlan") && !options.contains_key("parent") {
            return Err(EngineError::InvalidArgument(format!(
                "the {driver} driver needs a parent interface: give -o parent=<interface>"
            )));
        }
        // A user bridge's Linux name (`br-` and the id's first 12 characters, as dockerd names it)
        // is not written into its options: dockerd answers only the options it was given, and
        // docker-compose 1.29 recreates a network whose options differ from its file's.
        let rec = NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            driver: driver.clone(),
            created: berth_types::time::now_rfc3339(),
            internal: req.internal.unwrap_or(false),
            attachable: req.attachable.unwrap_or(false),
            enable_ipv6,
            ipam_driver,
            ipam_options: ipam.options.clone().unwrap_or_default().into_iter().collect(),
            subnets,
            options,
            labels,
        };
        let net = Net {
            pools: pools_of(&rec)?,
            rec,
        };
        // Links first, then the record: a crash in between leaves a bridge that the next
        // `network create` of that name reuses or that `br-<id>` names uniquely.
        if let Err(e) = self.bring_up(&net) {
            self.bring_down(&net);
            return Err(e);
        }
        if let Err(e) = net.rec.save(&self.networks_dir()) {
            self.bring_down(&net);
            return Err(e);
        }
        self.events.publish(
            Event::new(EventType::Network, "create", &id)
                .attr("name", &req.name)
                .attr("type", &driver),
        );
        inner.nets.insert(id.clone(), net);
        Ok((id, String::new()))
    }

    fn bring_down(&self, net: &Net) {
        if let Some(fw) = &self.firewall {
            if let Err(e) = fw.remove_network(&net.rec.id) {
                tracing::warn!("removing the rules of network {}: {e}", net.rec.name);
            }
        }
        if let Some(d) = self.drivers.get(net.rec.driver.as_str()) {
            if let Err(e) = d.delete(&net.spec()) {
                tracing::warn!("removing network {}: {e}", net.rec.name);
            }
        }
    }

    fn containers_on(inner: &Inner, id: &str) -> HashMap<String, NetworkContainer> {
        inner
            .runs
            .iter()
            .filter_map(|(cid, run)| {
                let ep = run.on(id)?;
                Some((
                    cid.clone(),
                    NetworkContainer {
                        name: Some(run.container_name.clone()),
                        endpoint_id: Some(ep.endpoint_id.clone()),
                        mac_address: Some(ep.mac.clone()),
                        ipv4_address: Some(ep.ipv4.map(|a| a.to_string()).unwrap_or_default()),
                        ipv6_address: Some(ep.ipv6.map(|a| a.to_string()).unwrap_or_default()),
                    },
                ))
            })
            .collect()
    }

    fn api(net: &Net, containers: HashMap<String, NetworkContainer>) -> Network {
        let mut n = net.rec.to_api(containers);
        if let Some(l) = n.labels.as_mut() {
            l.remove(AUTO_SUBNET_LABEL);
        }
        n
    }

    /// `GET /networks/{id}`.
    pub fn inspect(&self, name: &str) -> Result<Network> {
        let inner = lock(&self.inner);
        let n = Self::find(&inner, name)?;
        Ok(Self::api(n, Self::containers_on(&inner, &n.rec.id)))
    }

    /// `GET /networks`, with Docker's filters (`driver`, `id`, `label`, `name`, `scope`, `type`,
    /// `dangling`).
    pub fn list(&self, filters: &Filters) -> Result<Vec<Network>> {
        check_keys(filters, &["dangling", "driver", "id", "label", "name", "scope", "type"])?;
        for t in filters.get("type").into_iter().flatten() {
            if t != "custom" && t != "builtin" {
                return Err(EngineError::InvalidArgument(format!("invalid filter: 'type'='{t}'")));
            }
        }
        let dangling = match filters.get("dangling").map(Vec::as_slice) {
            None | Some([]) => None,
            Some([v]) if v == "true" || v == "1" => Some(true),
            Some([v]) if v == "false" || v == "0" => Some(false),
            Some(v) => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'dangling={}'",
                    v.join(",")
                )))
            }
        };
        let inner = lock(&self.inner);
        let any = |key: &str, f: &dyn Fn(&str) -> bool| {
            filters.get(key).is_none_or(|v| v.is_empty() || v.iter().any(|x| f(x)))
        };
        let mut out = Vec::new();
        for n in inner.nets.values() {
            let r = &n.rec;
            let labels: HashMap<String, String> = r.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let used = inner.runs.values().any(|run| run.on(&r.id).is_some());
            let ok = any("driver", &|d| r.driver == d)
                && any("id", &|i| r.id.starts_with(i))
                && any("name", &|x| r.name.contains(x))
                && any("scope", &|s| s == "local")
                && any("type", &|t| (t == "builtin") == r.predefined())
                && match_kv_list(filters, "label", &labels)
                && dangling.is_none_or(|d| d == (!used && !r.predefined()));
            if ok {
                out.push(Self::api(n, HashMap::new()));
            }
        }
        Ok(out)
    }

    /// `DELETE /networks/{id}`.
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut inner = lock(&self.inner);
        let n = Self::find(&inner, name)?;
        if n.rec.predefined() {
            return Err(EngineError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.rec.name
            )));
        }
        let id = n.rec.id.clone();
        if inner.runs.values().any(|r| r.on(&id).is_some()) {
            return Err(EngineError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.rec.name, id
            )));
        }
        NetworkRecord::delete(&self.networks_dir(), &id)?;
        if let Some(net) = inner.nets.remove(&id) {
            self.bring_down(&net);
            self.records.remove_network(&id);
            self.events.publish(
                Event::new(EventType::Network, "destroy", &id)
                    .attr("name", &net.rec.name)
                    .attr("type", &net.rec.driver),
            );
        }
        Ok(())
    }

    /// `POST /networks/prune`: user-defined networks no running container uses.
    pub fn prune(&self, filters: &Filters) -> Result<Vec<String>> {
        check_keys(filters, &["label", "label!", "until"])?;
        let until = prune_until(filters)?;
        let candidates: Vec<(String, String)> = {
            let inner = lock(&self.inner);
            inner
                .nets
                .values()
                .filter(|n| {
                    let labels: HashMap<String, String> =
                        n.rec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    !n.rec.predefined()
                        && !inner.runs.values().any(|r| r.on(&n.rec.id).is_some())
                        && prune_labels_match(filters, &labels)
                        && created_before(&n.rec.created, until)
                })
                .map(|n| (n.rec.id.clone(), n.rec.name.clone()))
                .collect()
        };
        let mut removed = Vec::new();
        for (id, name) in candidates {
            if self.remove(&id).is_ok() {
                removed.push(name);
            }
        }
        // dockerd announces a network prune with nothing reclaimed (networks take no space).
        self.events
            .publish(Event::new(EventType::Network, "prune", "").attr("reclaimed", "0"));
        Ok(removed)
    }
}

const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";

fn bridge_name(rec: &NetworkRecord) -> String {
    rec.options
        .get(BRIDGE_NAME_OPT)
        .cloned()
        .unwrap_or_else(|| format!("br-{}", berth_types::short_id(&rec.id)))
}

fn fw_proto(p: Proto) -> berth_network::firewall::Proto {
    match p {
        Proto::Tcp => berth_network::firewall::Proto::Tcp,
        Proto::Udp => berth_network::firewall::Proto::Udp,
        Proto::Sctp => berth_network::firewall::Proto::Sctp,
    }
}

fn endpoint_spec(container_id: &str, e: &EndpointState) -> EndpointSpec {
    EndpointSpec {
        network_id: e.network_id.clone(),
        container_id: container_id.to_string(),
        ifname: e.ifname.clone(),
        addresses: e.ipv4.iter().chain(e.ipv6.iter()).copied().collect(),
        mac: Some(e.mac.clone()),
        gateways: if e.default_route {
            e.gateway4.iter().chain(e.gateway6.iter()).copied().collect()
        } else {
            Vec::new()
        },
        mtu: None,
    }
}

fn is_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(mac_for(Some("172.17.0.2".parse().unwrap())), "02:42:ac:11:00:02");
        assert!(is_mac("02:42:ac:11:00:02"));
        assert!(!is_mac("02:42:ac:11:00"));
        assert!(!is_mac("zz:42:ac:11:00:02"));
    }
}
