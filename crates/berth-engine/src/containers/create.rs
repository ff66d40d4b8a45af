//! `POST /containers/create`: the image's config merged under the request's (Docker's rules), the
//! host config checked, a name reserved, the writable layer made, and the record written durably
//! before the API answers.

use super::{blocking, mkdir_all, ContainerService};
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::state::State;
use berth_api::models::{ContainerConfig, HostConfig, RestartPolicyNameEnum};
use berth_api::ContainerCreateBody;
use berth_types::time::now_rfc3339;
use std::sync::Arc;

/// Merges the image's config under the request's, following Docker's rules.
fn merge_image_config(c: &mut ContainerConfig, image: &ContainerConfig) {
    // Env: image first, the request's values override by key.
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in c.env.clone().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    c.env = Some(env);
    // Entrypoint/Cmd: a request entrypoint drops the image's Cmd; `--entrypoint ""` resets it.
    match &c.entrypoint {
        Some(ep) if ep.len() == 1 && ep[0].is_empty() => {
            c.entrypoint = None;
            if c.cmd.as_ref().is_none_or(|v| v.is_empty()) {
                c.cmd = image.cmd.clone();
            }
        }
        Some(ep) if !ep.is_empty() => {}
        _ => {
            c.entrypoint = image.entrypoint.clone();
            if c.cmd.as_ref().is_none_or(|v| v.is_empty()) {
                c.cmd = image.cmd.clone();
            }
        }
    }
    if c.working_dir.as_deref().unwrap_or("").is_empty() {
        c.working_dir = image.working_dir.clone().filter(|w| !w.is_empty());
    }
    if c.user.as_deref().unwrap_or("").is_empty() {
        c.user = image.user.clone();
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(c.labels.clone().unwrap_or_default());
    c.labels = Some(labels);
    // Exposed ports: the image's and the request's together, as Docker merges them.
    if let Some(img) = &image.exposed_ports {
        let ports = c.exposed_ports.get_or_insert_with(Default::default);
        for k in img.keys() {
            ports.entry(k.clone()).or_default();
        }
    }
    if c.volumes.is_none() {
        c.volumes = image.volumes.clone();
    }
    if c.stop_signal.is_none() {
        c.stop_signal = image.stop_signal.clone();
    }
    super::health::merge_config(&mut c.healthcheck, image.healthcheck.as_ref());
    if c.shell.is_none() {
        c.shell = image.shell.clone();
    }
    if c.on_build.is_none() {
        c.on_build = image.on_build.clone();
    }
}

impl ContainerService {
    /// `POST /containers/create`.
    pub async fn create(self: &Arc<Self>, name: Option<&str>, body: ContainerCreateBody) -> Result<String> {
        let mut config = body.config;
        let host_config = body.host_config.unwrap_or_default();
        let image_name = config.image.clone().unwrap_or_default();
        if image_name.is_empty() {
            return Err(EngineError::InvalidArgument(
                "config cannot be empty in order to create a container".into(),
            ));
        }
        super::validate::validate_settings(&config, &host_config, &super::validate::host_sysctl_exists)?;
        let image = self.images.resolve(&image_name).await?;
        let image_config = crate::images::image_container_config(&image);
        merge_image_config(&mut config, &image_config);
        let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(EngineError::InvalidArgument("no command specified".into()));
        }
        validate_host_config(&host_config)?;
        let mut host_config = host_config;
        let (networks, links) = self.create_networking(&mut host_config, &config, body.networking_config.as_ref())?;
        host_config.log_config = Some(self.log_defaults.resolve(host_config.log_config.as_ref())?);
        self.runtimes.validate(host_config.runtime.as_deref())?;
        let points = self.mount_points(&config, &host_config)?;

        let id = berth_types::new_id();
        if config.hostname.as_deref().unwrap_or("").is_empty() {
            config.hostname = Some(berth_types::short_id(&id).to_string());
        }
        let name = self.registry.reserve_name(name, &id)?;
        if !links.is_empty() {
            host_config.links = Some(links.iter().map(|(t, a)| format!("/{t}:/{name}/{a}")).collect());
        }
        let dir = self.containers_dir.join(&id);
        let rec = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: now_rfc3339(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            image: image.id.to_string(),
            chain_ids: image.chain_ids.clone(),
            log_path: crate::logconfig::log_path(&dir, &id, host_config.log_config.as_ref()),
            runtime: host_config
                .runtime
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| crate::runtimes::OWN.into()),
            host_config,
            state: State::default(),
            restart_count: 0,
            networks,
            mounts: Vec::new(),
        };
        // The directory, then the writable layer, then the record: a crash before the record is
        // committed leaves a directory without one, which the next start removes with its layer.
        // Volumes first (named ones that do not exist yet, anonymous ones): the record names them.
        let mut rec = rec;
        let (vols, vid) = (self.volumes.clone(), id.clone());
        rec.mounts = match blocking(move || vols.prepare(&vid, points)).await {
            Ok(m) => m,
            Err(e) => {
                self.registry.release_name(&name);
                return Err(e);
            }
        };
        let (snapshots, d, r) = (self.snapshots.clone(), dir.clone(), rec.clone());
        let made = blocking(move || {
            mkdir_all(&d)?;
            snapshots.create_rw(&r.id)?;
            r.save(&d)
        })
        .await;
        if let Err(e) = made {
            self.registry.release_name(&name);
            self.volumes.release(&id, &rec.mounts, true);
            let _ = std::fs::remove_dir_all(&dir);
            let _ = self.snapshots.remove_rw(&id);
            return Err(e);
        }
        if let Err(e) = self.copy_up_volumes(&rec, &rec.mounts).await {
            tracing::warn!(
                "filling the new volumes of {} from its image: {e}",
                berth_types::short_id(&id)
            );
        }
        let c = self.container(dir, rec);
        self.registry.insert(c.clone());
        self.publish(&c, "create", &[]);
        Ok(id)
    }
}

impl ContainerService {
    /// The container's networks (the `NetworkMode` one first) with their settings checked, and its
    /// legacy links in Docker's `/target:/container/alias` form. `default` is the `bridge` network.
    fn create_networking(
        &self,
        hc: &mut HostConfig,
        config: &ContainerConfig,
        nc: Option<&berth_api::models::NetworkingConfig>,
    ) -> Result<(crate::network::EndpointsConfig, Vec<(String, String)>)> {
        let mode = hc.network_mode.clone().filter(|m| !m.is_empty() && m != "default");
        // The default is the default bridge; a daemon without one (`--bridge none`) gives
        // containers no network unless they ask for one, as dockerd does.
        let mode = mode.unwrap_or_else(|| {
            if self.networks.resolve("bridge").is_ok() {
                "bridge".into()
            } else {
                "none".into()
            }
        });
        if let Some(other) = mode.strip_prefix("container:") {
            self.lookup(other)?;
        }
        let mut endpoints = nc.and_then(|n| n.endpoints_config.clone()).unwrap_or_default();
        // Before API 1.44 the MAC address was a container setting; it applies to the main network.
        #[allow(deprecated)]
        if let Some(mac) = config.mac_address.clone().filter(|m| !m.is_empty()) {
            let e = endpoints.entry(mode.clone()).or_default();
            if e.mac_address.as_deref().unwrap_or("").is_empty() {
                e.mac_address = Some(mac);
            }
        }
        let list = self.networks.validate_endpoints(&mode, &endpoints)?;
        if let Some(hosts) = &hc.extra_hosts {
            crate::network::validate_extra_hosts(hosts)?;
        }
        crate::network::ports::requests(
            hc.port_bindings.as_ref(),
            config.exposed_ports.as_ref(),
            hc.publish_all_ports.unwrap_or(false),
        )?;
        let mut links = Vec::new();
        for l in hc.links.clone().unwrap_or_default() {
            let (target, alias) = parse_link(&l)?;
            let t = self
                .lookup(&target)
                .map_err(|_| EngineError::InvalidArgument(format!("could not get container for {target}")))?;
            let name = t.record().name;
            links.push((name, alias));
        }
        hc.network_mode = Some(mode);
        Ok((list.into_iter().collect(), links))
    }
}

/// Parses a `--link` entry: `name`, `name:alias` or Docker's stored `/name:/container/alias`.
pub(crate) fn parse_link(l: &str) -> Result<(String, String)> {
    let (target, alias) = l.split_once(':').unwrap_or((l, l));
    let target = target.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    if target.is_empty() || alias.is_empty() {
        return Err(EngineError::InvalidArgument(format!("invalid link: {l}")));
    }
    Ok((target.to_string(), alias.to_string()))
}

/// Rejects host configs Docker would reject.
fn validate_host_config(h: &HostConfig) -> Result<()> {
    if let Some(m) = h.memory {
        if m != 0 && m < 6 * 1024 * 1024 {
            return Err(EngineError::InvalidArgument(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
    }
    if let (Some(m), Some(s)) = (h.memory, h.memory_swap) {
        if s > 0 && m > 0 && s < m {
            return Err(EngineError::InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
    }
    if let Some(n) = h.nano_cpus {
        if n < 0 || (n > 0 && n < 10_000_000) {
            return Err(EngineError::InvalidArgument(
                "Range of CPUs is from 0.01 to the number of CPUs available".into(),
            ));
        }
        if n > 0 && (h.cpu_quota.unwrap_or(0) > 0 || h.cpu_period.unwrap_or(0) > 0) {
            return Err(EngineError::InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
    }
    if h.auto_remove.unwrap_or(false) {
        if let Some(p) = &h.restart_policy {
            if matches!(
                p.name,
                Some(RestartPolicyNameEnum::ALWAYS)
                    | Some(RestartPolicyNameEnum::UNLESS_STOPPED)
                    | Some(RestartPolicyNameEnum::ON_FAILURE)
            ) {
                return Err(EngineError::InvalidArgument(
                    "can't create 'AutoRemove' container with restart policy".into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_follows_docker() {
        let image = ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        // Request Cmd replaces the image Cmd; env overrides by key.
        let mut c = ContainerConfig {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert_eq!(c.cmd.as_deref(), Some(&["echo".to_string(), "hi".to_string()][..]));
        assert_eq!(
            c.env.as_deref(),
            Some(&["PATH=/bin".to_string(), "A=2".to_string()][..])
        );
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        // A request entrypoint drops the image Cmd.
        let mut c = ContainerConfig {
            entrypoint: Some(vec!["ls".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert_eq!(c.cmd, None);
        // No request command: the image's.
        let mut c = ContainerConfig::default();
        merge_image_config(&mut c, &image);
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
    }
}
