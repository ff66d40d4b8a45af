//! A container's networks: the order it joins them in, its legacy links, and `network connect` /
//! `network disconnect`, which change its record and, while it runs, its interfaces.

use super::create::parse_link;
use super::{blocking, ContainerService};
use crate::error::{EngineError, Result};
use crate::network::ports::ContainerPort;
use crate::network::LinkTarget;
use crate::record::ContainerRecord;
use berth_api::models::EndpointSettings;
use std::collections::HashMap;
use std::sync::Arc;

impl ContainerService {
    /// The container's networks for a run: the `NetworkMode` one first (`eth0`), then the others by
    /// name.
    pub(crate) fn run_networks(&self, rec: &ContainerRecord) -> Vec<(String, EndpointSettings)> {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let mode = if mode.is_empty() || mode == "default" {
            "bridge".to_string()
        } else {
            mode
        };
        let primary = self.networks.resolve(&mode).ok();
        let mut out: Vec<(String, EndpointSettings)> = Vec::new();
        // A record from before networks were kept joins its NetworkMode network with defaults.
        if rec.networks.is_empty() {
            if let Some((id, name)) = primary {
                let s = EndpointSettings {
                    network_id: Some(id),
                    ..Default::default()
                };
                out.push((name, s));
            }
            return out;
        }
        let primary = primary.map(|(_, name)| name);
        if let Some(p) = &primary {
            if let Some(s) = rec.networks.get(p) {
                out.push((p.clone(), s.clone()));
            }
        }
        for (name, s) in &rec.networks {
            if Some(name) != primary.as_ref() {
                out.push((name.clone(), s.clone()));
            }
        }
        out
    }

    /// The containers `--link` points at, which must run, with their address on a network the
    /// two share.
    pub(crate) fn resolve_links(
        &self,
        rec: &ContainerRecord,
        networks: &[(String, EndpointSettings)],
    ) -> Result<Vec<LinkTarget>> {
        let mut out = Vec::new();
        for l in rec.host_config.links.clone().unwrap_or_default() {
            let (target, alias) = parse_link(&l)?;
            let t = self
                .lookup(&target)
                .map_err(|_| EngineError::InvalidArgument(format!("could not get container for {target}")))?;
            let trec = t.record();
            if !trec.state.status.is_running() {
                return Err(EngineError::InvalidArgument(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    trec.name, rec.name
                )));
            }
            let ip = networks
                .iter()
                .filter_map(|(_, s)| s.network_id.as_deref())
                .find_map(|nid| self.networks.address_on(&trec.id, nid))
                .or_else(|| self.networks.any_address(&trec.id).map(|(_, ip)| ip));
            let exposed = trec
                .config
                .exposed_ports
                .iter()
                .flat_map(|e| e.keys())
                .filter_map(|k| ContainerPort::parse(k).ok())
                .collect();
            out.push(LinkTarget {
                name: trec.name.clone(),
                alias,
                id: trec.id.clone(),
                ip,
                exposed,
                env: trec.config.env.clone().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect(self: &Arc<Self>, container: &str, network: &str, settings: EndpointSettings) -> Result<()> {
        let c = self.lookup(container)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(EngineError::InvalidArgument(format!(
                "container cannot be connected to network {network}: it uses the {} network mode",
                if mode.starts_with("container:") {
                    "container"
                } else {
                    mode.as_str()
                }
            )));
        }
        let net = self.networks.network_record(network)?;
        if rec.networks.contains_key(&net.name) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        let mut map = HashMap::new();
        map.insert(net.name.clone(), settings);
        let (name, settings) = self
            .networks
            .validate_endpoints(&net.name, &map)?
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Internal(format!("network {} vanished", net.name)))?;
        if rec.state.status.is_running() && rec.state.pid > 0 {
            let (nets, id, pid, n, s) = (
                self.networks.clone(),
                c.id.clone(),
                rec.state.pid as i32,
                name.clone(),
                settings.clone(),
            );
            blocking(move || nets.connect_running(&id, pid, &n, &s)).await?;
        }
        c.modify(|r| {
            r.networks.insert(name.clone(), settings.clone());
        });
        c.save().await
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(self: &Arc<Self>, container: &str, network: &str, force: bool) -> Result<()> {
        let c = match self.lookup(container) {
            Ok(c) => c,
            Err(e) if force => {
                // A forced disconnect of a container that is gone is a no-op, as Docker's.
                tracing::debug!("disconnecting {container}: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let _op = c.op.lock().await;
        let rec = c.record();
        let (nid, name) = self.networks.resolve(network)?;
        if !rec.networks.contains_key(&name) && !self.networks.is_connected(&c.id, &nid) {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {name}",
                c.id
            )));
        }
        if rec.state.status.is_running() {
            let (nets, id, n) = (self.networks.clone(), c.id.clone(), name.clone());
            blocking(move || nets.disconnect_running(&id, &n)).await?;
        }
        c.modify(|r| {
            r.networks.remove(&name);
        });
        c.save().await
    }

    /// `DELETE /containers/{name}?link=1`: removes the legacy link `/<container>/<alias>` from the
    /// container's record (the running container keeps its `/etc/hosts`, as with Docker).
    pub async fn remove_link(self: &Arc<Self>, link: &str) -> Result<()> {
        let trimmed = link.trim_start_matches('/');
        let (parent, alias) = trimmed.rsplit_once('/').ok_or_else(|| {
            EngineError::InvalidArgument(format!("Conflict, cannot remove the default link name: {link}"))
        })?;
        let c = self.lookup(parent)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        let links = rec.host_config.links.clone().unwrap_or_default();
        let keep: Vec<String> = links
            .iter()
            .filter(|l| parse_link(l).map(|(_, a)| a != alias).unwrap_or(true))
            .cloned()
            .collect();
        if keep.len() == links.len() {
            return Err(EngineError::NotFound(format!("Could not find link {link}")));
        }
        c.modify(|r| r.host_config.links = (!keep.is_empty()).then_some(keep));
        c.save().await
    }
}
