//! A container's networks as inspect and ps show them.

use super::*;

impl Networks {
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
        let ports = crate::network::ports::port_map(
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
            if let Ok(cp) = crate::network::ports::ContainerPort::parse(k) {
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
}
