//! [`Networks`]: the network records, the address pools, and the run hooks.

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
    EndpointIpamConfig, EndpointSettings, Network, NetworkContainer, NetworkCreateRequest, NetworkSettings, Port,
    PortTypeEnum,
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
use std::path::{Path, PathBuf};
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

    fn user_subnets(&self) -> bool {
        !self.rec.labels.contains_key(AUTO_SUBNET_LABEL) && !self.rec.subnets.is_empty()
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
    use berth_types::ErrorKind as K;
    let m = e.to_string();
    match e.kind() {
        K::NotFound => EngineError::NotFound(m),
        K::Conflict => EngineError::Conflict(m),
        K::InvalidArgument => EngineError::InvalidArgument(m),
        K::Forbidden => EngineError::Forbidden(m),
        K::NotModified => EngineError::NotModified(m),
        _ => EngineError::Internal(m),
    }
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
        let mut options: BTreeMap<String, String> = req.options.clone().unwrap_or_default().into_iter().collect();
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
        if driver == "bridge" && !options.contains_key(BRIDGE_NAME_OPT) {
            options.insert(BRIDGE_NAME_OPT.into(), format!("br-{}", berth_types::short_id(&id)));
        }
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

    // ---- containers' endpoints ----

    /// Checks a container's network settings at create (and at connect) and fills in each
    /// endpoint's `NetworkID`. Returns the settings keyed by network name.
    pub fn validate_endpoints(
        &self,
        mode: &str,
        endpoints: &HashMap<String, EndpointSettings>,
    ) -> Result<Vec<(String, EndpointSettings)>> {
        let inner = lock(&self.inner);
        let mut out: Vec<(String, EndpointSettings)> = Vec::new();
        let primary = match mode {
            "" | "default" => Some("bridge"),
            "host" | "none" => None,
            m if m.starts_with("container:") => None,
            m => Some(m),
        };
        if primary.is_none() {
            if !endpoints.is_empty() && !endpoints.keys().all(|k| k == mode || k == "default") {
                return Err(EngineError::InvalidArgument(
                    "container sharing network namespace with another container or host cannot be connected to any other network".into(),
                ));
            }
            return Ok(out);
        }
        // Docker's CLI names the default network `default`.
        let endpoints: HashMap<String, EndpointSettings> = endpoints
            .iter()
            .map(|(k, v)| (if k == "default" { "bridge".to_string() } else { k.clone() }, v.clone()))
            .collect();
        let endpoints = &endpoints;
        let mut names: Vec<&String> = endpoints.keys().collect();
        names.sort();
        let mut order: Vec<String> = primary.into_iter().map(str::to_string).collect();
        for n in names {
            order.push(n.clone());
        }
        for key in order {
            let n = Self::find(&inner, &key)?;
            if out.iter().any(|(name, _)| *name == n.rec.name) {
                continue;
            }
            if n.rec.driver == "host" || n.rec.driver == "null" {
                return Err(EngineError::InvalidArgument(format!(
                    "container cannot be connected to the {} network together with others",
                    n.rec.name
                )));
            }
            let mut s = endpoints
                .get(&key)
                .or_else(|| endpoints.get(&n.rec.name))
                .or_else(|| endpoints.get(&n.rec.id))
                .cloned()
                .unwrap_or_default();
            Self::check_endpoint(n, &s)?;
            s.network_id = Some(n.rec.id.clone());
            out.push((n.rec.name.clone(), s));
        }
        Ok(out)
    }

    fn check_endpoint(n: &Net, s: &EndpointSettings) -> Result<()> {
        let cfg = s.ipam_config.clone().unwrap_or_default();
        let statics: Vec<&String> = [cfg.ipv4_address.as_ref(), cfg.ipv6_address.as_ref()]
            .into_iter()
            .flatten()
            .filter(|a| !a.is_empty())
            .collect();
        if n.rec.predefined() {
            if !statics.is_empty() {
                return Err(EngineError::InvalidArgument(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            if s.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(EngineError::InvalidArgument(
                    "network-scoped alias is supported only for containers in user defined networks".into(),
                ));
            }
        }
        if !statics.is_empty() && !n.user_subnets() {
            return Err(EngineError::InvalidArgument(
                "user specified IP address is supported only when connecting to networks with user configured subnets"
                    .into(),
            ));
        }
        for (a, v6) in [(cfg.ipv4_address.as_ref(), false), (cfg.ipv6_address.as_ref(), true)] {
            let Some(a) = a.filter(|a| !a.is_empty()) else { continue };
            let ip = parse_ip(a, if v6 { "IPv6 address" } else { "IPv4 address" })?;
            if ip.is_ipv6() != v6 {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid IPv{} address: {a}",
                    if v6 { 6 } else { 4 }
                )));
            }
            if !n.pools.iter().any(|p| p.subnet().contains(&ip)) {
                return Err(EngineError::InvalidArgument(format!(
                    "no configured subnet or ip-range contain the IP address {a}"
                )));
            }
        }
        if let Some(m) = s.mac_address.as_deref().filter(|m| !m.is_empty()) {
            if !is_mac(m) {
                return Err(EngineError::InvalidArgument(format!("invalid MAC address: {m}")));
            }
        }
        Ok(())
    }

    /// Before the shim starts: addresses, ports and the `/etc` files.
    pub fn attach(&self, ep: &Endpoint<'_>) -> Result<NetworkAttachment> {
        let host_resolv = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        let dns = self.merge_dns(&ep.dns);
        let (mode, hosts, resolv, env) = match &ep.request {
            NetworkRequest::Host => (
                NetworkMode::Host,
                std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
                etc::resolv_conf(Resolver::Host, &host_resolv, &dns),
                Vec::new(),
            ),
            NetworkRequest::Container { pid } => (
                NetworkMode::Path(PathBuf::from(format!("/proc/{pid}/ns/net"))),
                etc::hosts(ep.hostname, ep.domainname, &[], &[], &[]),
                etc::resolv_conf(Resolver::Direct, &host_resolv, &dns),
                Vec::new(),
            ),
            NetworkRequest::None => (
                NetworkMode::New,
                etc::hosts(ep.hostname, ep.domainname, &[], &[], &[]),
                etc::resolv_conf(Resolver::Direct, &host_resolv, &dns),
                Vec::new(),
            ),
            NetworkRequest::Networks => {
                let run = self.allocate(ep, &dns)?;
                let extra = parse_extra_hosts(ep.extra_hosts, self.host_gateway());
                let extra = match extra {
                    Ok(e) => e,
                    Err(e) => {
                        self.release(ep.id);
                        return Err(e);
                    }
                };
                let own: Vec<IpAddr> = run
                    .endpoints
                    .first()
                    .map(|e| e.ipv4.iter().chain(e.ipv6.iter()).map(|a| a.addr()).collect())
                    .unwrap_or_default();
                let mut links = Vec::new();
                let mut env = Vec::new();
                for l in &ep.links {
                    let Some(ip) = l.ip else { continue };
                    let mut names = vec![l.alias.clone()];
                    names.push(berth_types::short_id(&l.id).to_string());
                    if l.name != l.alias {
                        names.push(l.name.clone());
                    }
                    links.push((ip, names));
                    env.extend(super::links::link_env(ep.name, l));
                }
                let resolver = if run.embedded_dns {
                    Resolver::Embedded
                } else {
                    Resolver::Direct
                };
                (
                    NetworkMode::New,
                    etc::hosts(ep.hostname, ep.domainname, &own, &extra, &links),
                    etc::resolv_conf(resolver, &host_resolv, &dns),
                    env,
                )
            }
        };
        if let NetworkRequest::Host = ep.request {
        } else if let Err(e) = parse_extra_hosts(ep.extra_hosts, self.host_gateway()) {
            self.release(ep.id);
            return Err(e);
        }
        let mut hosts = hosts;
        if matches!(ep.request, NetworkRequest::None | NetworkRequest::Container { .. }) {
            if let Ok(extra) = parse_extra_hosts(ep.extra_hosts, self.host_gateway()) {
                for (name, ip) in extra {
                    hosts.push_str(&format!("{ip}\t{name}\n"));
                }
            }
        }
        let mounts = match write_etc_files(ep.dir, ep.hostname, hosts, resolv) {
            Ok(m) => m,
            Err(e) => {
                self.release(ep.id);
                return Err(e);
            }
        };
        if let Some((uid, gid)) = ep.owner {
            // Root in the container must own what the engine writes for it, as Docker does.
            for m in &mounts {
                std::os::unix::fs::chown(&m.source, Some(uid), Some(gid))
                    .map_err(|e| EngineError::io("giving to the remapped root", &m.source, e))?;
            }
        }
        Ok(NetworkAttachment { mode, mounts, env })
    }

    fn merge_dns(&self, asked: &DnsSettings) -> DnsSettings {
        let pick = |a: &Vec<String>, b: &Vec<String>| if a.is_empty() { b.clone() } else { a.clone() };
        DnsSettings {
            servers: pick(&asked.servers, &self.cfg.dns.servers),
            search: pick(&asked.search, &self.cfg.dns.search),
            options: pick(&asked.options, &self.cfg.dns.options),
        }
    }

    /// Takes addresses and host ports for a run and records them (memory and the endpoints file).
    fn allocate(&self, ep: &Endpoint<'_>, dns: &DnsSettings) -> Result<RunEndpoints> {
        // A run left over (a start that failed half-way) is released first.
        self.release(ep.id);
        let mut run = RunEndpoints {
            container_name: ep.name.to_string(),
            dns_servers: dns.servers.clone(),
            dns_search: dns.search.clone(),
            dns_options: dns.options.clone(),
            ..Default::default()
        };
        let mut inner = lock(&self.inner);
        let mut taken: Vec<(String, IpAddr)> = Vec::new();
        let undo = |inner: &mut Inner, taken: &[(String, IpAddr)]| {
            for (nid, ip) in taken {
                if let Some(p) = inner.nets.get_mut(nid).and_then(|n| n.pool_for(*ip)) {
                    p.release(*ip);
                }
            }
        };
        let mut has_default_route = false;
        for (i, (name, s)) in ep.networks.iter().enumerate() {
            let nid = match s.network_id.as_deref().filter(|id| inner.nets.contains_key(*id)) {
                Some(id) => id.to_string(),
                None => match Self::find(&inner, name) {
                    Ok(n) => n.rec.id.clone(),
                    Err(_) => {
                        undo(&mut inner, &taken);
                        return Err(EngineError::NotFound(format!("network {name} not found")));
                    }
                },
            };
            let cfg = s.ipam_config.clone().unwrap_or_default();
            let Some(net) = inner.nets.get_mut(&nid) else { continue };
            let mut addr = |v6: bool, asked: Option<&String>| -> Result<Option<(IpNet, IpAddr)>> {
                if v6 && !net.rec.enable_ipv6 {
                    return Ok(None);
                }
                let pool = match asked.filter(|a| !a.is_empty()) {
                    Some(a) => {
                        let ip = parse_ip(a, "IP address")?;
                        let pool = net.pool_for(ip).ok_or_else(|| {
                            EngineError::InvalidArgument(format!(
                                "no configured subnet or ip-range contain the IP address {a}"
                            ))
                        })?;
                        pool.reserve(ip).map_err(net_err)?;
                        return Ok(Some((
                            IpNet::new(ip, pool.subnet().prefix_len())
                                .map_err(|e| EngineError::Internal(e.to_string()))?,
                            pool.gateway(),
                        )));
                    }
                    None => match net.pool_v(v6) {
                        Some(p) => p,
                        None => return Ok(None),
                    },
                };
                let ip = pool.allocate().map_err(net_err)?;
                Ok(Some((
                    IpNet::new(ip, pool.subnet().prefix_len()).map_err(|e| EngineError::Internal(e.to_string()))?,
                    pool.gateway(),
                )))
            };
            let v4 = match addr(false, cfg.ipv4_address.as_ref()) {
                Ok(a) => a,
                Err(e) => {
                    undo(&mut inner, &taken);
                    return Err(e);
                }
            };
            if let Some((a, _)) = v4 {
                taken.push((nid.clone(), a.addr()));
            }
            let v6 = match addr(true, cfg.ipv6_address.as_ref()) {
                Ok(a) => a,
                Err(e) => {
                    undo(&mut inner, &taken);
                    return Err(e);
                }
            };
            if let Some((a, _)) = v6 {
                taken.push((nid.clone(), a.addr()));
            }
            let Some(net) = inner.nets.get(&nid) else { continue };
            let default_route = !has_default_route && !net.rec.internal && net.rec.driver != "null";
            has_default_route |= default_route;
            let mut dns_names = Vec::new();
            if net.rec.embedded_dns() {
                run.embedded_dns = true;
                dns_names.push(ep.name.to_string());
                for a in s.aliases.clone().unwrap_or_default() {
                    if !dns_names.contains(&a) {
                        dns_names.push(a);
                    }
                }
                dns_names.push(berth_types::short_id(ep.id).to_string());
            }
            run.endpoints.push(EndpointState {
                network_id: nid.clone(),
                network_name: net.rec.name.clone(),
                endpoint_id: berth_types::new_id(),
                ifname: format!("eth{i}"),
                mac: s
                    .mac_address
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| mac_for(v4.map(|(a, _)| a.addr()))),
                ipv4: v4.map(|(a, _)| a),
                ipv6: v6.map(|(a, _)| a),
                gateway4: v4.map(|(_, g)| g).filter(|_| !net.rec.internal),
                gateway6: v6.map(|(_, g)| g).filter(|_| !net.rec.internal),
                default_route,
                aliases: s.aliases.clone().unwrap_or_default(),
                dns_names,
                host_ifname: None,
            });
        }
        // Links resolve to the linked container's address on a shared network.
        for l in &ep.links {
            if let Some(ip) = l.ip {
                run.links.push((l.alias.clone(), ip));
            }
        }
        // Host ports: reserved now so a clash fails the start before anything runs.
        let target = run
            .endpoints
            .iter()
            .find(|e| {
                e.ipv4.is_some()
                    && inner
                        .nets
                        .get(&e.network_id)
                        .is_some_and(|n| n.rec.driver == "bridge" && !n.rec.internal)
            })
            .cloned();
        let mut reservations = Vec::new();
        if let Some(_t) = &target {
            for req in &ep.ports {
                match self.reserve(req) {
                    Ok((port, r)) => {
                        run.ports.push(port);
                        reservations.push(r);
                    }
                    Err(e) => {
                        undo(&mut inner, &taken);
                        return Err(e);
                    }
                }
            }
        }
        if let Err(e) = run.save(&self.endpoints_dir(), ep.id) {
            undo(&mut inner, &taken);
            return Err(e);
        }
        inner.runs.insert(ep.id.to_string(), run.clone());
        drop(inner);
        lock(&self.reservations).insert(ep.id.to_string(), reservations);
        Ok(run)
    }

    fn reserve(&self, req: &PortRequest) -> Result<(PublishedPort, PortReservation)> {
        let proto = fw_proto(req.container.proto);
        let (port, r) = match req.host_ports {
            None => {
                let r = PortReservation::allocate_ephemeral(proto, req.host_ip).map_err(net_err)?;
                (r.port(), r)
            }
            Some((a, b)) => {
                let mut last = None;
                let mut found = None;
                for p in a..=b {
                    match PortReservation::reserve(proto, req.host_ip, p) {
                        Ok(r) => {
                            found = Some((p, r));
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match (found, last) {
                    (Some(f), _) => f,
                    (None, Some(e)) => {
                        return Err(EngineError::Internal(format!(
                            "driver failed programming external connectivity on endpoint: {e}"
                        )))
                    }
                    (None, None) => return Err(EngineError::InvalidArgument("empty host port range".into())),
                }
            }
        };
        Ok((
            PublishedPort {
                container: req.container,
                host_ip: req.host_ip,
                host_port: port,
            },
            r,
        ))
    }

    /// Gives back what `allocate` took, in memory and on disk (not the links: see `teardown`).
    fn release(&self, id: &str) -> Option<RunEndpoints> {
        let run = {
            let mut inner = lock(&self.inner);
            let run = inner.runs.remove(id);
            if let Some(run) = &run {
                for e in &run.endpoints {
                    if let Some(net) = inner.nets.get_mut(&e.network_id) {
                        for a in e.ipv4.iter().chain(e.ipv6.iter()) {
                            if let Some(p) = net.pool_for(a.addr()) {
                                p.release(a.addr());
                            }
                        }
                    }
                }
            }
            run
        };
        lock(&self.reservations).remove(id);
        RunEndpoints::delete(&self.endpoints_dir(), id);
        run
    }

    /// Once the container's namespaces exist (its init is `pid`) and before its process runs: the
    /// interfaces, the embedded DNS server and the published ports.
    pub fn setup(&self, id: &str, pid: i32) -> Result<()> {
        let run = {
            let mut inner = lock(&self.inner);
            match inner.runs.get_mut(id) {
                Some(r) => {
                    r.pid = Some(pid);
                    r.clone()
                }
                None => return Ok(()),
            }
        };
        let netns = Netns::from_pid(pid as u32).map_err(net_err)?;
        let mut joined = Vec::new();
        for e in &run.endpoints {
            let (spec, driver) = {
                let inner = lock(&self.inner);
                let Some(net) = inner.nets.get(&e.network_id) else {
                    continue;
                };
                let Some(d) = self.drivers.get(net.rec.driver.as_str()) else {
                    continue;
                };
                (net.spec(), d.clone())
            };
            let ep = endpoint_spec(id, e);
            match driver.join(&spec, &ep, &netns) {
                Ok(info) => {
                    joined.push(e.network_id.clone());
                    let mut inner = lock(&self.inner);
                    if let Some(r) = inner.runs.get_mut(id) {
                        if let Some(x) = r.endpoints.iter_mut().find(|x| x.network_id == e.network_id) {
                            x.host_ifname = info.host_ifname.clone();
                        }
                    }
                }
                Err(err) => {
                    self.teardown(id);
                    return Err(EngineError::Internal(format!(
                        "failed to set up container networking on network {}: {err}",
                        e.network_name
                    )));
                }
            }
        }
        if let Err(e) = self.publish(id, &run) {
            self.teardown(id);
            return Err(e);
        }
        if run.embedded_dns {
            self.dns_records(id, &run);
            if let Err(e) = self.dns_listen(id, pid) {
                self.teardown(id);
                return Err(e);
            }
        }
        if let Some(r) = lock(&self.inner).runs.get(id) {
            let _ = r.save(&self.endpoints_dir(), id);
        }
        Ok(())
    }

    fn dns_records(&self, id: &str, run: &RunEndpoints) {
        let mut nets = Vec::new();
        for e in &run.endpoints {
            if e.dns_names.is_empty() {
                continue;
            }
            nets.push(e.network_id.clone());
            self.records.set_network_name(&e.network_id, &e.network_name);
            self.records.add_endpoint(
                &e.network_id,
                EndpointRecord {
                    container_id: id.to_string(),
                    names: e.dns_names.clone(),
                    v4: match e.ipv4.map(|a| a.addr()) {
                        Some(IpAddr::V4(a)) => Some(a),
                        _ => None,
                    },
                    v6: match e.ipv6.map(|a| a.addr()) {
                        Some(IpAddr::V6(a)) => Some(a),
                        _ => None,
                    },
                },
            );
        }
        let upstreams: Vec<SocketAddr> = run
            .dns_servers
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
            .collect();
        let search = if run.dns_search.is_empty() {
            ResolvConf::parse(&std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default()).search
        } else {
            run.dns_search.clone()
        };
        let no_forward = {
            let inner = lock(&self.inner);
            run.endpoints
                .iter()
                .all(|e| inner.nets.get(&e.network_id).is_none_or(|n| n.rec.internal))
        };
        self.records.set_container_view(
            id,
            ContainerView {
                networks: nets,
                links: run.links.clone(),
                search,
                upstreams,
                ndots_set: run.dns_options.iter().any(|o| o.starts_with("ndots:")),
                no_forward,
            },
        );
    }

    fn dns_listen(&self, id: &str, pid: i32) -> Result<()> {
        let path = berth_network::dns::netns_path_of_pid(pid as u32);
        self.rt
            .block_on(self.dns.listen(id, &path))
            .map_err(|e| EngineError::Internal(format!("starting the embedded DNS server: {e}")))
    }

    fn publish(&self, id: &str, run: &RunEndpoints) -> Result<()> {
        let (Some(fw), false) = (&self.firewall, run.ports.is_empty()) else {
            return Ok(());
        };
        let maps = self.mappings(run);
        fw.add_ports(id, &maps).map_err(|e| {
            EngineError::Internal(format!(
                "driver failed programming external connectivity on endpoint {}: {e}",
                run.container_name
            ))
        })
    }

    fn mappings(&self, run: &RunEndpoints) -> Vec<PortMapping> {
        let inner = lock(&self.inner);
        let Some((ip, bridge)) = run.endpoints.iter().find_map(|e| {
            let net = inner.nets.get(&e.network_id)?;
            (net.rec.driver == "bridge" && !net.rec.internal)
                .then(|| e.ipv4.map(|a| (a.addr(), bridge_name(&net.rec))))
                .flatten()
        }) else {
            return Vec::new();
        };
        run.ports
            .iter()
            .map(|p| PortMapping {
                proto: fw_proto(p.container.proto),
                host_ip: p.host_ip,
                host_port: p.host_port,
                container_ip: ip,
                container_port: p.container.port,
                bridge: bridge.clone(),
            })
            .collect()
    }

    /// On every exit path: the interfaces, DNS entries, NAT rules, addresses and host ports of the
    /// container's run. Idempotent.
    pub fn teardown(&self, id: &str) {
        let run = self
            .release(id)
            .or_else(|| RunEndpoints::load(&self.endpoints_dir(), id));
        let Some(run) = run else { return };
        RunEndpoints::delete(&self.endpoints_dir(), id);
        if run.embedded_dns {
            self.rt.block_on(self.dns.stop(id));
            self.records.remove_view(id);
        }
        for e in &run.endpoints {
            if !e.dns_names.is_empty() {
                self.records.remove_endpoint(&e.network_id, id);
            }
        }
        if let Some(fw) = &self.firewall {
            if !run.ports.is_empty() {
                if let Err(e) = fw.remove_ports(id) {
                    tracing::warn!("removing the published ports of {}: {e}", berth_types::short_id(id));
                }
            }
        }
        for e in &run.endpoints {
            let (spec, driver) = {
                let inner = lock(&self.inner);
                let Some(net) = inner.nets.get(&e.network_id) else {
                    continue;
                };
                let Some(d) = self.drivers.get(net.rec.driver.as_str()) else {
                    continue;
                };
                (net.spec(), d.clone())
            };
            if let Err(err) = driver.leave(&spec, &endpoint_spec(id, e)) {
                tracing::warn!(
                    "leaving network {} for {}: {err}",
                    e.network_name,
                    berth_types::short_id(id)
                );
            }
        }
    }

    /// At daemon start, before any container starts again: every run recorded in an endpoints file
    /// keeps its addresses until [`Networks::restore`] knows which containers still run, so a
    /// container restarted meanwhile cannot take a live one's address.
    pub fn preload(&self) {
        let dir = self.endpoints_dir();
        let mut inner = lock(&self.inner);
        for id in RunEndpoints::list(&dir) {
            let Some(run) = RunEndpoints::load(&dir, &id) else {
                continue;
            };
            for e in &run.endpoints {
                if let Some(net) = inner.nets.get_mut(&e.network_id) {
                    for a in e.ipv4.iter().chain(e.ipv6.iter()) {
                        if let Some(p) = net.pool_for(a.addr()) {
                            let _ = p.reserve(a.addr());
                        }
                    }
                }
            }
            inner.runs.insert(id, run);
        }
    }

    /// After a daemon restart: the containers still running (`live`, ID and init pid) keep their
    /// addresses, ports and DNS entries; whatever other runs left behind is released; the firewall
    /// is made to hold exactly the rules of the networks and of the running containers.
    pub fn restore(&self, live: &[(String, i32)]) {
        let preloaded: Vec<String> = lock(&self.inner).runs.keys().cloned().collect();
        for id in preloaded {
            let Some(pid) = live.iter().find(|(l, _)| *l == id).map(|(_, p)| *p) else {
                self.teardown(&id);
                continue;
            };
            let run = {
                let mut inner = lock(&self.inner);
                let Some(run) = inner.runs.get_mut(&id) else { continue };
                if run.pid.is_some() {
                    // Started again by this daemon already.
                    continue;
                }
                run.pid = Some(pid);
                run.clone()
            };
            let mut held = Vec::new();
            for p in &run.ports {
                match PortReservation::reserve(fw_proto(p.container.proto), p.host_ip, p.host_port) {
                    Ok(r) => held.push(r),
                    Err(e) => tracing::warn!("holding host port {} again: {e}", p.host_port),
                }
            }
            lock(&self.reservations).insert(id.clone(), held);
            if run.embedded_dns {
                self.dns_records(&id, &run);
                if let Err(e) = self.dns_listen(&id, pid) {
                    tracing::warn!("embedded DNS for {}: {e}", berth_types::short_id(&id));
                }
            }
        }
        self.sync_firewall();
    }

    fn sync_firewall(&self) {
        let Some(fw) = &self.firewall else { return };
        let (nets, runs): (Vec<NetworkRules>, Vec<(String, RunEndpoints)>) = {
            let inner = lock(&self.inner);
            (
                inner
                    .nets
                    .values()
                    .filter(|n| n.rec.driver == "bridge")
                    .map(|n| self.rules(n))
                    .collect(),
                inner.runs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )
        };
        let ports: Vec<(String, Vec<PortMapping>)> = runs
            .iter()
            .filter(|(_, r)| !r.ports.is_empty())
            .map(|(id, r)| (id.clone(), self.mappings(r)))
            .collect();
        if let Err(e) = fw.sync(&nets, &ports) {
            tracing::warn!("restoring the firewall rules: {e}");
        }
    }

    /// Connects a running container (init `pid`) to one more network.
    pub fn connect_running(&self, id: &str, pid: i32, name: &str, s: &EndpointSettings) -> Result<()> {
        let (mut run, nid) = {
            let inner = lock(&self.inner);
            let n = Self::find(&inner, name)?;
            let run = inner.runs.get(id).cloned().unwrap_or_default();
            if run.on(&n.rec.id).is_some() {
                return Err(EngineError::Forbidden(format!(
                    "endpoint with name {} already exists in network {}",
                    run.container_name, n.rec.name
                )));
            }
            (run, n.rec.id.clone())
        };
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !run.endpoints.iter().any(|e| e.ifname == *n))
            .unwrap_or_else(|| "eth9".into());
        // Allocate through a one-network endpoint, then merge into the run.
        let mut inner = lock(&self.inner);
        let Some(net) = inner.nets.get_mut(&nid) else {
            return Err(EngineError::NotFound(format!("network {name} not found")));
        };
        let cfg = s.ipam_config.clone().unwrap_or_default();
        let mut take = |v6: bool, asked: Option<&String>| -> Result<Option<(IpNet, IpAddr)>> {
            if v6 && !net.rec.enable_ipv6 {
                return Ok(None);
            }
            let pool = match asked.filter(|a| !a.is_empty()) {
                Some(a) => {
                    let ip = parse_ip(a, "IP address")?;
                    let pool = net.pool_for(ip).ok_or_else(|| {
                        EngineError::InvalidArgument(format!(
                            "no configured subnet or ip-range contain the IP address {a}"
                        ))
                    })?;
                    pool.reserve(ip).map_err(net_err)?;
                    return Ok(Some((
                        IpNet::new(ip, pool.subnet().prefix_len()).map_err(|e| EngineError::Internal(e.to_string()))?,
                        pool.gateway(),
                    )));
                }
                None => match net.pool_v(v6) {
                    Some(p) => p,
                    None => return Ok(None),
                },
            };
            let ip = pool.allocate().map_err(net_err)?;
            Ok(Some((
                IpNet::new(ip, pool.subnet().prefix_len()).map_err(|e| EngineError::Internal(e.to_string()))?,
                pool.gateway(),
            )))
        };
        let v4 = take(false, cfg.ipv4_address.as_ref())?;
        let v6 = match take(true, cfg.ipv6_address.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                if let Some((a, _)) = v4 {
                    if let Some(p) = net.pool_for(a.addr()) {
                        p.release(a.addr());
                    }
                }
                return Err(e);
            }
        };
        let mut dns_names = Vec::new();
        if net.rec.embedded_dns() {
            dns_names.push(run.container_name.clone());
            for a in s.aliases.clone().unwrap_or_default() {
                if !dns_names.contains(&a) {
                    dns_names.push(a);
                }
            }
            dns_names.push(berth_types::short_id(id).to_string());
        }
        let e = EndpointState {
            network_id: nid.clone(),
            network_name: net.rec.name.clone(),
            endpoint_id: berth_types::new_id(),
            ifname,
            mac: s
                .mac_address
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| mac_for(v4.map(|(a, _)| a.addr()))),
            ipv4: v4.map(|(a, _)| a),
            ipv6: v6.map(|(a, _)| a),
            gateway4: v4.map(|(_, g)| g).filter(|_| !net.rec.internal),
            gateway6: v6.map(|(_, g)| g).filter(|_| !net.rec.internal),
            default_route: !run.endpoints.iter().any(|e| e.default_route) && !net.rec.internal,
            aliases: s.aliases.clone().unwrap_or_default(),
            dns_names,
            host_ifname: None,
        };
        let spec = net.spec();
        let driver = self.drivers.get(net.rec.driver.as_str()).cloned();
        let embedded = net.rec.embedded_dns();
        drop(inner);
        let undo = |e: &EndpointState| {
            let mut inner = lock(&self.inner);
            if let Some(net) = inner.nets.get_mut(&e.network_id) {
                for a in e.ipv4.iter().chain(e.ipv6.iter()) {
                    if let Some(p) = net.pool_for(a.addr()) {
                        p.release(a.addr());
                    }
                }
            }
        };
        let mut e = e;
        if let Some(d) = driver {
            let netns = match Netns::from_pid(pid as u32) {
                Ok(n) => n,
                Err(err) => {
                    undo(&e);
                    return Err(net_err(err));
                }
            };
            match d.join(&spec, &endpoint_spec(id, &e), &netns) {
                Ok(info) => e.host_ifname = info.host_ifname,
                Err(err) => {
                    undo(&e);
                    return Err(EngineError::Internal(format!(
                        "failed to connect to network {name}: {err}"
                    )));
                }
            }
            let had_dns = run.embedded_dns;
            run.endpoints.push(e);
            run.pid = Some(pid);
            if embedded {
                run.embedded_dns = true;
                self.dns_records(id, &run);
                if !had_dns {
                    if let Err(err) = self.dns_listen(id, pid) {
                        tracing::warn!("embedded DNS for {}: {err}", berth_types::short_id(id));
                    }
                }
            }
        } else {
            run.endpoints.push(e);
        }
        run.save(&self.endpoints_dir(), id)?;
        lock(&self.inner).runs.insert(id.to_string(), run);
        self.events.publish(
            Event::new(EventType::Network, "connect", &nid)
                .attr("container", id)
                .attr("name", name)
                .attr("type", &spec.driver),
        );
        Ok(())
    }

    /// Disconnects a running container from a network.
    pub fn disconnect_running(&self, id: &str, name: &str) -> Result<()> {
        let (nid, nname, driver_name) = {
            let inner = lock(&self.inner);
            let n = Self::find(&inner, name)?;
            (n.rec.id.clone(), n.rec.name.clone(), n.rec.driver.clone())
        };
        let mut run = match lock(&self.inner).runs.get(id).cloned() {
            Some(r) => r,
            None => return Ok(()),
        };
        let Some(pos) = run.endpoints.iter().position(|e| e.network_id == nid) else {
            return Ok(());
        };
        let e = run.endpoints.remove(pos);
        let spec = lock(&self.inner).nets.get(&nid).map(|n| n.spec());
        if let (Some(spec), Some(d)) = (spec, self.drivers.get(driver_name.as_str())) {
            if let Err(err) = d.leave(&spec, &endpoint_spec(id, &e)) {
                tracing::warn!("leaving network {nname}: {err}");
            }
        }
        if !e.dns_names.is_empty() {
            self.records.remove_endpoint(&nid, id);
        }
        {
            let mut inner = lock(&self.inner);
            if let Some(net) = inner.nets.get_mut(&nid) {
                for a in e.ipv4.iter().chain(e.ipv6.iter()) {
                    if let Some(p) = net.pool_for(a.addr()) {
                        p.release(a.addr());
                    }
                }
            }
        }
        if run.embedded_dns {
            self.dns_records(id, &run);
        }
        run.save(&self.endpoints_dir(), id)?;
        lock(&self.inner).runs.insert(id.to_string(), run);
        self.events.publish(
            Event::new(EventType::Network, "disconnect", &nid)
                .attr("container", id)
                .attr("name", &nname)
                .attr("type", &driver_name),
        );
        Ok(())
    }

    /// The address a running container has on a network (`--link` targets).
    pub fn address_on(&self, id: &str, network_id: &str) -> Option<IpAddr> {
        let inner = lock(&self.inner);
        inner.runs.get(id)?.on(network_id)?.ipv4.map(|a| a.addr())
    }

    /// The first address of a running container on any network.
    pub fn any_address(&self, id: &str) -> Option<(String, IpAddr)> {
        let inner = lock(&self.inner);
        let e = inner.runs.get(id)?.endpoints.iter().find(|e| e.ipv4.is_some())?.clone();
        Some((e.network_id.clone(), e.ipv4?.addr()))
    }

    /// `NetworkSettings` of a container for inspect: its networks (the record's settings, with the
    /// addresses of the current run) and its ports.
    pub fn settings(&self, rec: &ContainerRecord, running: bool) -> NetworkSettings {
        let inner = lock(&self.inner);
        let run = inner.runs.get(&rec.id).filter(|_| running);
        let mut networks = HashMap::new();
        for (name, s) in &rec.networks {
            let mut s = s.clone();
            if let Some(e) = run.and_then(|r| s.network_id.as_deref().and_then(|nid| r.on(nid))) {
                fill_endpoint(&mut s, e);
            } else {
                clear_endpoint(&mut s);
            }
            networks.insert(name.clone(), s);
        }
        let ports = super::ports::port_map(
            rec.config.exposed_ports.as_ref(),
            run.map(|r| r.ports.as_slice()).unwrap_or_default(),
        );
        let default = rec.networks.get("bridge").and_then(|s| {
            let nid = s.network_id.as_deref()?;
            run?.on(nid)
        });
        let mut ns = NetworkSettings {
            bridge: Some(String::new()),
            sandbox_id: Some(run.map(|_| rec.id.clone()).unwrap_or_default()),
            sandbox_key: Some(
                run.and_then(|r| r.pid)
                    .filter(|_| running)
                    .map(|p| format!("/proc/{p}/ns/net"))
                    .unwrap_or_default(),
            ),
            hairpin_mode: Some(false),
            link_local_ipv6_address: Some(String::new()),
            link_local_ipv6_prefix_len: Some(0),
            ports: Some(if running { ports } else { HashMap::new() }),
            secondary_ip_addresses: None,
            secondary_ipv6_addresses: None,
            endpoint_id: Some(String::new()),
            gateway: Some(String::new()),
            global_ipv6_address: Some(String::new()),
            global_ipv6_prefix_len: Some(0),
            ip_address: Some(String::new()),
            ip_prefix_len: Some(0),
            ipv6_gateway: Some(String::new()),
            mac_address: Some(String::new()),
            networks: Some(networks),
        };
        if let Some(e) = default {
            ns.endpoint_id = Some(e.endpoint_id.clone());
            ns.gateway = Some(e.gateway4.map(|g| g.to_string()).unwrap_or_default());
            ns.ip_address = Some(e.ipv4.map(|a| a.addr().to_string()).unwrap_or_default());
            ns.ip_prefix_len = Some(e.ipv4.map(|a| a.prefix_len() as i64).unwrap_or(0));
            ns.global_ipv6_address = Some(e.ipv6.map(|a| a.addr().to_string()).unwrap_or_default());
            ns.global_ipv6_prefix_len = Some(e.ipv6.map(|a| a.prefix_len() as i64).unwrap_or(0));
            ns.ipv6_gateway = Some(e.gateway6.map(|g| g.to_string()).unwrap_or_default());
            ns.mac_address = Some(e.mac.clone());
        }
        ns
    }

    /// `Ports` of a container in `GET /containers/json`.
    pub fn summary_ports(&self, rec: &ContainerRecord, running: bool) -> Vec<Port> {
        let inner = lock(&self.inner);
        let published = inner
            .runs
            .get(&rec.id)
            .filter(|_| running)
            .map(|r| r.ports.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        let typ = |p: Proto| match p {
            Proto::Tcp => PortTypeEnum::TCP,
            Proto::Udp => PortTypeEnum::UDP,
            Proto::Sctp => PortTypeEnum::SCTP,
        };
        for p in &published {
            out.push(Port {
                ip: Some(p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into())),
                private_port: p.container.port,
                public_port: Some(p.host_port),
                typ: Some(typ(p.container.proto)),
            });
        }
        for k in rec.config.exposed_ports.iter().flat_map(|e| e.keys()) {
            if let Ok(cp) = super::ports::ContainerPort::parse(k) {
                if !published.iter().any(|p| p.container == cp) {
                    out.push(Port {
                        ip: None,
                        private_port: cp.port,
                        public_port: None,
                        typ: Some(typ(cp.proto)),
                    });
                }
            }
        }
        out
    }

    /// Whether a container is attached to a network in its current run.
    pub fn is_connected(&self, id: &str, network_id: &str) -> bool {
        lock(&self.inner)
            .runs
            .get(id)
            .is_some_and(|r| r.on(network_id).is_some())
    }

    /// The network's record, for the container service (validation at connect).
    pub fn network_record(&self, name: &str) -> Result<NetworkRecord> {
        let inner = lock(&self.inner);
        Ok(Self::find(&inner, name)?.rec.clone())
    }

    /// The root of the network service's files (for tests and diagnostics).
    pub fn root(&self) -> &Path {
        &self.cfg.root
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

fn fill_endpoint(s: &mut EndpointSettings, e: &EndpointState) {
    s.network_id = Some(e.network_id.clone());
    s.endpoint_id = Some(e.endpoint_id.clone());
    s.gateway = Some(e.gateway4.map(|g| g.to_string()).unwrap_or_default());
    s.ip_address = Some(e.ipv4.map(|a| a.addr().to_string()).unwrap_or_default());
    s.ip_prefix_len = Some(e.ipv4.map(|a| a.prefix_len() as i64).unwrap_or(0));
    s.ipv6_gateway = Some(e.gateway6.map(|g| g.to_string()).unwrap_or_default());
    s.global_ipv6_address = Some(e.ipv6.map(|a| a.addr().to_string()).unwrap_or_default());
    s.global_ipv6_prefix_len = Some(e.ipv6.map(|a| a.prefix_len() as i64).unwrap_or(0));
    s.mac_address = Some(e.mac.clone());
    s.dns_names = (!e.dns_names.is_empty()).then(|| e.dns_names.clone());
}

fn clear_endpoint(s: &mut EndpointSettings) {
    s.endpoint_id = Some(String::new());
    s.gateway = Some(String::new());
    s.ip_address = Some(String::new());
    s.ip_prefix_len = Some(0);
    s.ipv6_gateway = Some(String::new());
    s.global_ipv6_address = Some(String::new());
    s.global_ipv6_prefix_len = Some(0);
    if s.mac_address.is_none() {
        s.mac_address = Some(String::new());
    }
    if s.ipam_config.is_none() {
        s.ipam_config = None::<EndpointIpamConfig>;
    }
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
