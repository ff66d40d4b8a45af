//! Container views in the Engine API's shapes: inspect and list (`ps`), with Docker's filters.

use super::{ContainerService, ListOptions};
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::state::Status;
use berth_api::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, DriverData,
};
use berth_types::time::{parse_rfc3339, unix_seconds, ZERO_TIME};
use std::collections::HashMap;

fn api_status(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

fn or_zero(s: &str) -> String {
    if s.is_empty() {
        ZERO_TIME.to_string()
    } else {
        s.to_string()
    }
}

/// Docker's human status: `Up 3 seconds`, `Exited (0) 5 minutes ago`, `Created`.
pub fn human_status(rec: &ContainerRecord) -> String {
    let since = |t: &str| {
        parse_rfc3339(t)
            .map(|t| human_duration((chrono::Utc::now() - t).num_seconds().max(0)))
            .unwrap_or_default()
    };
    match rec.state.status {
        Status::Running => format!("Up {}", since(&rec.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&rec.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            rec.state.exit_code,
            since(&rec.state.finished_at)
        ),
        Status::Exited if rec.state.finished_at.is_empty() => "Created".into(),
        Status::Exited => format!("Exited ({}) {} ago", rec.state.exit_code, since(&rec.state.finished_at)),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let mins = secs / 60;
    let hours = mins / 60;
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if mins == 1 => "About a minute".into(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

impl ContainerService {
    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name: &str) -> Result<ContainerInspectResponse> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let s = &rec.state;
        let state = ContainerState {
            status: Some(api_status(s.status)),
            running: Some(matches!(s.status, Status::Running | Status::Paused)),
            paused: Some(s.status == Status::Paused),
            restarting: Some(s.status == Status::Restarting),
            oom_killed: Some(s.oom_killed),
            dead: Some(s.status == Status::Dead),
            pid: Some(s.pid),
            exit_code: Some(s.exit_code),
            error: Some(s.error.clone()),
            started_at: Some(or_zero(&s.started_at)),
            finished_at: Some(or_zero(&s.finished_at)),
            health: self.health(&rec.id),
        };
        let mut graph = HashMap::new();
        if let Some(rw) = self.snapshots.rw_layer(&rec.id) {
            graph.insert("UpperDir".to_string(), rw.upper.display().to_string());
            graph.insert("WorkDir".to_string(), rw.work.display().to_string());
        }
        let dir = self.containers_dir.join(&rec.id);
        let network_mode = rec
            .host_config
            .network_mode
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "bridge".into());
        let mut host_config = rec.host_config.clone();
        host_config.network_mode = Some(network_mode);
        // The runtime asked for (`runc` stays `runc`), else the default one (`DefaultRuntime` in /info).
        if host_config.runtime.as_deref().is_none_or(str::is_empty) {
            host_config.runtime = Some(rec.runtime.clone());
        }
        Ok(ContainerInspectResponse {
            id: Some(rec.id.clone()),
            created: Some(rec.created.clone()),
            path: Some(rec.path.clone()),
            args: Some(rec.args.clone()),
            state: Some(state),
            image: Some(rec.image.clone()),
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            log_path: Some(rec.log_path.clone()),
            name: Some(format!("/{}", rec.name)),
            restart_count: Some(rec.restart_count),
            driver: Some("overlay2".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: self.exec_ids(&rec.id),
            host_config: Some(host_config),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data: graph,
            }),
            size_rw: None,
            size_root_fs: None,
            mounts: Some(rec.mounts.iter().filter(|m| m.listed()).map(|m| m.to_api()).collect()),
            config: Some(rec.config.clone()),
            network_settings: Some({
                let running = rec.state.status.is_running();
                let mut ns = self.networks.settings(&rec, running);
                if running && rec.state.pid > 0 {
                    ns.sandbox_key = Some(format!("/proc/{}/ns/net", rec.state.pid));
                }
                ns
            }),
        })
    }

    /// `GET /containers/json`.
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
        for key in opts.filters.keys() {
            if !matches!(
                key.as_str(),
                "id" | "name"
                    | "status"
                    | "label"
                    | "exited"
                    | "ancestor"
                    | "before"
                    | "since"
                    | "isolation"
                    | "health"
                    | "network"
                    | "volume"
                    | "publish"
                    | "expose"
                    | "is-task"
            ) {
                return Err(EngineError::InvalidArgument(format!("invalid filter '{key}'")));
            }
        }
        if let Some(st) = opts.filters.get("status") {
            for s in st {
                if !matches!(
                    s.as_str(),
                    "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
                ) {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter 'status={s}': Invalid filter value, must be one of: created, restarting, running, removing, paused, exited, dead"
                    )));
                }
            }
        }
        let resolve_boundary = |key: &str| -> Result<Option<String>> {
            match opts.filters.get(key).and_then(|v| v.first()) {
                Some(n) => Ok(Some(self.lookup(n)?.record().created)),
                None => Ok(None),
            }
        };
        let before = resolve_boundary("before")?;
        let since = resolve_boundary("since")?;
        let all =
            opts.all || opts.filters.contains_key("status") || opts.filters.contains_key("exited") || opts.limit > 0;
        let mut out = Vec::new();
        for c in self.registry.all() {
            let rec = c.record();
            if !all && !matches!(rec.state.status, Status::Running | Status::Paused | Status::Restarting) {
                continue;
            }
            if before.as_ref().is_some_and(|b| rec.created >= *b) || since.as_ref().is_some_and(|s| rec.created <= *s) {
                continue;
            }
            if !self.matches_filters(&rec, &opts.filters) {
                continue;
            }
            out.push(self.summary(&rec));
            if opts.limit > 0 && out.len() >= opts.limit {
                break;
            }
        }
        Ok(out)
    }

    fn matches_filters(&self, rec: &ContainerRecord, filters: &HashMap<String, Vec<String>>) -> bool {
        let any = |key: &str, f: &dyn Fn(&str) -> bool| filters.get(key).is_none_or(|vals| vals.iter().any(|v| f(v)));
        let labels = rec.config.labels.clone().unwrap_or_default();
        any("id", &|v| rec.id.starts_with(v))
            && any("name", &|v| rec.name.contains(v.trim_start_matches('/')))
            && any("status", &|v| v == rec.state.status.as_str())
            && any("exited", &|v| {
                rec.state.status == Status::Exited && v.parse::<i64>().is_ok_and(|n| n == rec.state.exit_code)
            })
            && filters.get("label").is_none_or(|vals| {
                vals.iter().all(|v| match v.split_once('=') {
                    Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
                    None => labels.contains_key(v.as_str()),
                })
            })
            && any("health", &|v| v == self.health_filter_value(&rec.id))
            && any("network", &|v| {
                rec.networks.iter().any(|(name, s)| {
                    name == v
                        || s.network_id
                            .as_deref()
                            .is_some_and(|id| id == v || (v.len() >= 12 && id.starts_with(v)))
                })
            })
            && any("publish", &|v| {
                port_key_in(v, rec.host_config.port_bindings.as_ref().map(|b| b.keys()))
            })
            && any("expose", &|v| {
                port_key_in(v, rec.config.exposed_ports.as_ref().map(|e| e.keys()))
            })
            && any("ancestor", &|v| {
                let image = rec.config.image.clone().unwrap_or_default();
                image == v
                    || rec.image == v
                    || rec.image.trim_start_matches("sha256:").starts_with(v)
                    || self
                        .images
                        .resolve_now(v)
                        .is_ok_and(|img| img.id.to_string() == rec.image)
            })
    }

    pub(super) fn summary(&self, rec: &ContainerRecord) -> ContainerSummary {
        let image = rec.config.image.clone().unwrap_or_default();
        ContainerSummary {
            id: Some(rec.id.clone()),
            names: Some(vec![format!("/{}", rec.name)]),
            image: Some(image),
            image_id: Some(rec.image.clone()),
            command: Some(rec.command()),
            created: Some(unix_seconds(&rec.created)),
            ports: Some(self.networks.summary_ports(rec, rec.state.status.is_running())),
            size_rw: None,
            size_root_fs: None,
            labels: Some(rec.config.labels.clone().unwrap_or_default()),
            state: Some(rec.state.status.as_str().to_string()),
            status: Some(match rec.state.status {
                Status::Running => human_status(rec) + &self.health_suffix(&rec.id),
                _ => human_status(rec),
            }),
            host_config: Some(ContainerSummaryHostConfig {
                network_mode: Some(
                    rec.host_config
                        .network_mode
                        .clone()
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| "bridge".into()),
                ),
                annotations: None,
            }),
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: self.networks.settings(rec, rec.state.status.is_running()).networks,
            }),
            mounts: Some(rec.mounts.iter().filter(|m| m.listed()).map(|m| m.to_api()).collect()),
        }
    }
}

/// Whether the `publish`/`expose` filter value (`80`, `80/udp`) names one of the ports.
fn port_key_in<'a>(v: &str, keys: Option<impl Iterator<Item = &'a String>>) -> bool {
    let Ok(want) = crate::network::ports::ContainerPort::parse(v) else {
        return false;
    };
    keys.into_iter()
        .flatten()
        .any(|k| crate::network::ports::ContainerPort::parse(k).is_ok_and(|p| p == want))
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_like_docker() {
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (45, "45 seconds"),
            (60, "About a minute"),
            (150, "2 minutes"),
            (3600, "About an hour"),
            (7200, "2 hours"),
            (3 * 86400, "3 days"),
        ] {
            assert_eq!(human_duration(s), want);
        }
    }
}
