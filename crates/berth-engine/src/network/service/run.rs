//! A container run's endpoints: checked at create, allocated before the shim starts, joined once
//! the namespaces exist, released on every exit path, restored after a daemon restart.

use super::*;

impl Networks {
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
            .map(|(k, v)| {
                (
                    if k == "default" {
                        "bridge".to_string()
                    } else {
                        k.clone()
                    },
                    v.clone(),
                )
            })
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
        if statics.iter().any(|a| !n.user_subnet_for(a)) {
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
        // `--add-host` entries, checked before anything is taken (the host's namespace keeps its file).
        let extra = match ep.request {
            NetworkRequest::Host => Vec::new(),
            _ => parse_extra_hosts(ep.extra_hosts, self.host_gateway())?,
        };
        let (mode, hosts, resolv, env) = match &ep.request {
            NetworkRequest::Host => (
                NetworkMode::Host,
                std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
                etc::resolv_conf(Resolver::Host, &host_resolv, &dns),
                Vec::new(),
            ),
            NetworkRequest::Container { pid } => (
                NetworkMode::Path(PathBuf::from(format!("/proc/{pid}/ns/net"))),
                etc::hosts(ep.hostname, ep.domainname, &[], &extra, &[]),
                etc::resolv_conf(Resolver::Direct, &host_resolv, &dns),
                Vec::new(),
            ),
            NetworkRequest::None => (
                NetworkMode::New,
                etc::hosts(ep.hostname, ep.domainname, &[], &extra, &[]),
                etc::resolv_conf(Resolver::Direct, &host_resolv, &dns),
                Vec::new(),
            ),
            NetworkRequest::Networks => {
                let run = self.allocate(ep, &dns)?;
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
                    env.extend(crate::network::links::link_env(ep.name, l));
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
        let mut taken: Vec<EndpointState> = Vec::new();
        let undo = |inner: &mut Inner, taken: &[EndpointState]| {
            for e in taken {
                if let Some(n) = inner.nets.get_mut(&e.network_id) {
                    n.give_back(e);
                }
            }
        };
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
            let Some(net) = inner.nets.get_mut(&nid) else { continue };
            let first_route = !taken.iter().any(|e| e.default_route) && net.rec.driver != "null";
            match net.new_endpoint(ep.id, ep.name, format!("eth{i}"), s, first_route) {
                Ok(e) => {
                    run.embedded_dns |= !e.dns_names.is_empty();
                    taken.push(e);
                }
                Err(e) => {
                    undo(&mut inner, &taken);
                    return Err(e);
                }
            }
        }
        run.endpoints = taken.clone();
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
    pub(super) fn release(&self, id: &str) -> Option<RunEndpoints> {
        let run = {
            let mut inner = lock(&self.inner);
            let run = inner.runs.remove(id);
            if let Some(run) = &run {
                for e in &run.endpoints {
                    if let Some(net) = inner.nets.get_mut(&e.network_id) {
                        net.give_back(e);
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
            let Some((spec, driver)) = self.driver_for(&e.network_id) else {
                continue;
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
        for e in &run.endpoints {
            self.announce("connect", id, &e.network_id);
        }
        Ok(())
    }

    pub(super) fn dns_records(&self, id: &str, run: &RunEndpoints) {
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

    pub(super) fn dns_listen(&self, id: &str, pid: i32) -> Result<()> {
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

    pub(super) fn mappings(&self, run: &RunEndpoints) -> Vec<PortMapping> {
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
        // The links go in the background: deleting a veth waits for an RCU grace period (tens of
        // milliseconds), and `run --rm` would wait for it. The addresses are already free; a start
        // that finds its old veth still there replaces it (the bridge driver's join does).
        let leaves: Vec<_> = run
            .endpoints
            .iter()
            .filter_map(|e| {
                let (spec, driver) = self.driver_for(&e.network_id)?;
                Some((spec, driver, endpoint_spec(id, e), e.network_name.clone()))
            })
            .collect();
        if !leaves.is_empty() {
            let short = berth_types::short_id(id).to_string();
            let spawned = std::thread::Builder::new()
                .name("berth-net-leave".into())
                .spawn(move || {
                    for (spec, driver, ep, name) in leaves {
                        if let Err(err) = driver.leave(&spec, &ep) {
                            tracing::warn!("leaving network {name} for {short}: {err}");
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("leaving the networks of {}: {e}", berth_types::short_id(id));
            }
        }
        for e in &run.endpoints {
            self.announce("disconnect", id, &e.network_id);
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

    /// A renamed running container answers to its new name on its networks.
    pub fn rename(&self, id: &str, old: &str, new: &str) {
        let run = {
            let mut inner = lock(&self.inner);
            let Some(r) = inner.runs.get_mut(id) else { return };
            r.container_name = new.to_string();
            for e in &mut r.endpoints {
                for n in &mut e.dns_names {
                    if n == old {
                        *n = new.to_string();
                    }
                }
            }
            r.clone()
        };
        if let Err(e) = run.save(&self.endpoints_dir(), id) {
            tracing::warn!("{e}");
        }
        if run.embedded_dns {
            self.dns_records(id, &run);
        }
    }
}
