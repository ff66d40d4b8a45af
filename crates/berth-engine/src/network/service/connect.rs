//! `network connect` and `network disconnect` of a running container.

use super::*;

impl Networks {
    /// Docker's `network connect`/`disconnect` event for a container joining or leaving a network
    /// (also at every start and stop).
    pub(super) fn announce(&self, action: &str, container: &str, network_id: &str) {
        let (name, driver) = match lock(&self.inner).nets.get(network_id) {
            Some(n) => (n.rec.name.clone(), n.rec.driver.clone()),
            None => return,
        };
        self.events.publish(
            Event::new(EventType::Network, action, network_id)
                .attr("container", container)
                .attr("name", name)
                .attr("type", driver),
        );
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
        let first_route = !run.endpoints.iter().any(|e| e.default_route);
        let cname = run.container_name.clone();
        let e = net.new_endpoint(id, &cname, ifname, s, first_route)?;
        let spec = net.spec();
        let driver = self.drivers.get(net.rec.driver.as_str()).cloned();
        let embedded = net.rec.embedded_dns();
        drop(inner);
        let undo = |e: &EndpointState| {
            if let Some(net) = lock(&self.inner).nets.get_mut(&e.network_id) {
                net.give_back(e);
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
        self.announce("connect", id, &nid);
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
            // macvlan and ipvlan interfaces live only in the container: remove it there.
            if let Some(pid) = run.pid {
                let gone =
                    Netns::from_pid(pid as u32).and_then(|ns| berth_network::driver::remove_interface(&ns, &e.ifname));
                if let Err(err) = gone {
                    tracing::warn!("removing {} from {}: {err}", e.ifname, berth_types::short_id(id));
                }
            }
        }
        if !e.dns_names.is_empty() {
            self.records.remove_endpoint(&nid, id);
        }
        {
            let mut inner = lock(&self.inner);
            if let Some(net) = inner.nets.get_mut(&nid) {
                net.give_back(&e);
            }
        }
        if run.embedded_dns {
            self.dns_records(id, &run);
        }
        run.save(&self.endpoints_dir(), id)?;
        lock(&self.inner).runs.insert(id.to_string(), run);
        self.announce("disconnect", id, &nid);
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
}
