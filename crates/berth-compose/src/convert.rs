//! A service's container as the Engine API's `POST /containers/create` body, mapped the way Docker
//! Compose maps it (compose's `getCreateConfigs`): labels that mark the container as the project's,
//! binds for bind mounts (so a missing host path is created), mounts for volumes, the first network
//! at create and the others connected before start.

use std::collections::BTreeMap;

use berth_types::units::{nano_cpus, parse_go_duration, ram_in_bytes};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::labels;
use crate::model::{FileReference, Model, Service, StrOrNum};

/// What failed while turning a service into a container's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A value the Engine API needs in another shape (a size, a duration, a CPU count).
    #[error("service {service}: {field}: {message}")]
    Invalid {
        /// The service.
        service: String,
        /// The compose key.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A reference to something the project does not define.
    #[error("service {service} refers to undefined {kind} {name}")]
    Undefined {
        /// The service.
        service: String,
        /// `network`, `secret`, `config`.
        kind: &'static str,
        /// The name it uses.
        name: String,
    },
}

/// Everything about a container that is not in the service itself.
#[derive(Debug, Clone)]
pub struct ContainerContext<'a> {
    /// The project's name.
    pub project: &'a str,
    /// The project directory (the `working_dir` label).
    pub working_dir: &'a str,
    /// The compose files, comma-separated (the `config_files` label).
    pub config_files: &'a str,
    /// The container's number within its service.
    pub number: u32,
    /// A one-off container (`compose run`).
    pub oneoff: bool,
    /// The container's name.
    pub name: &'a str,
    /// The service's config hash.
    pub config_hash: &'a str,
    /// The image to run (the service's, or the one a build made for it).
    pub image: &'a str,
    /// That image's ID (the `image` label, which tells Compose the image changed under a tag).
    pub image_id: &'a str,
    /// `network_mode: service:X` and `volumes_from: X` resolved to a container ID.
    pub service_containers: &'a BTreeMap<String, String>,
}

/// The image a service runs: its `image:`, or `<project>-<service>` when it is only built.
pub fn image_name(project: &str, service_name: &str, service: &Service) -> String {
    match &service.image {
        Some(i) => i.clone(),
        None => format!("{project}-{service_name}"),
    }
}

/// The default name of a service's container: `<project>-<service>-<n>`, as Compose v2 names it.
pub fn container_name(project: &str, service_name: &str, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(n) => n.clone(),
        None => format!("{project}-{service_name}-{number}"),
    }
}

/// The network's name on the engine for a key of the project's `networks:`.
pub fn network_name(model: &Model, key: &str) -> String {
    model
        .networks
        .get(key)
        .and_then(|n| n.as_ref())
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", model.name))
}

/// The volume's name on the engine for a key of the project's `volumes:`.
pub fn volume_name(model: &Model, key: &str) -> String {
    model
        .volumes
        .get(key)
        .and_then(|v| v.as_ref())
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", model.name))
}

/// A digest of what a container is made from, so `up` recreates exactly the services whose
/// configuration changed: the service without what does not reach the container (build, scale).
/// From the normalised model it is Docker Compose v2's own hash, so either tool sees the other's
/// containers as up to date.
pub fn config_hash(service: &Service) -> String {
    if !service.raw.is_null() {
        let input = crate::loader::service_hash_input(&service.raw);
        return hex::encode(Sha256::digest(input.as_bytes()));
    }
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    if let Some(d) = s.deploy.as_mut() {
        d.replicas = None;
    }
    let bytes = serde_json::to_vec(&s).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

fn invalid(service: &str, field: &'static str, message: impl Into<String>) -> ConvertError {
    ConvertError::Invalid {
        service: service.to_string(),
        field,
        message: message.into(),
    }
}

fn nanos(service: &str, field: &'static str, v: &Option<String>) -> Result<Option<i64>, ConvertError> {
    match v {
        None => Ok(None),
        Some(s) => parse_go_duration(s)
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| invalid(service, field, format!("invalid duration {s:?}"))),
    }
}

fn bytes(service: &str, field: &'static str, v: &Option<StrOrNum>) -> Result<Option<i64>, ConvertError> {
    match v {
        None => Ok(None),
        Some(StrOrNum::Int(i)) => Ok(Some(*i)),
        Some(StrOrNum::Float(f)) => Ok(Some(*f as i64)),
        Some(StrOrNum::Str(s)) => ram_in_bytes(s).map(Some).map_err(|e| invalid(service, field, e)),
    }
}

/// The `POST /containers/create` body for one container of `service`, and the networks (engine
/// names, with their endpoint settings) to connect after create, beyond the first.
pub fn create_body(
    model: &Model,
    service_name: &str,
    service: &Service,
    ctx: &ContainerContext<'_>,
) -> Result<(Value, Vec<(String, Value)>), ConvertError> {
    let sn = service_name;
    let mut labels: BTreeMap<String, String> = service.labels.clone();
    for (k, v) in [
        (labels::PROJECT, ctx.project.to_string()),
        (labels::SERVICE, sn.to_string()),
        (labels::CONTAINER_NUMBER, ctx.number.to_string()),
        (labels::ONEOFF, if ctx.oneoff { "True" } else { "False" }.to_string()),
        (labels::WORKING_DIR, ctx.working_dir.to_string()),
        (labels::CONFIG_FILES, ctx.config_files.to_string()),
        (labels::CONFIG_HASH, ctx.config_hash.to_string()),
        (labels::VERSION, labels::COMPOSE_VERSION.to_string()),
        (labels::IMAGE, ctx.image_id.to_string()),
        (labels::DEPENDS_ON, depends_on_label(service)),
    ] {
        labels.insert(k.to_string(), v);
    }

    let env: Vec<String> = service
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();

    let mut exposed = Map::new();
    for e in &service.expose {
        let e = e.to_string();
        let key = if e.contains('/') { e } else { format!("{e}/tcp") };
        exposed.insert(key, json!({}));
    }
    let mut port_bindings: Map<String, Value> = Map::new();
    for p in &service.ports {
        let proto = p.protocol.clone().unwrap_or_else(|| "tcp".into());
        let key = format!("{}/{proto}", p.target);
        exposed.insert(key.clone(), json!({}));
        let binding = json!({
            "HostIp": p.host_ip.clone().unwrap_or_default(),
            "HostPort": p.published.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        });
        match port_bindings.get_mut(&key) {
            Some(Value::Array(a)) => a.push(binding),
            _ => {
                port_bindings.insert(key, json!([binding]));
            }
        }
    }

    let healthcheck = match &service.healthcheck {
        None => Value::Null,
        Some(h) if h.disable => json!({"Test": ["NONE"]}),
        Some(h) => json!({
            "Test": h.test,
            "Interval": nanos(sn, "healthcheck.interval", &h.interval)?,
            "Timeout": nanos(sn, "healthcheck.timeout", &h.timeout)?,
            "Retries": h.retries,
            "StartPeriod": nanos(sn, "healthcheck.start_period", &h.start_period)?,
            "StartInterval": nanos(sn, "healthcheck.start_interval", &h.start_interval)?,
        }),
    };
    let stop_timeout = nanos(sn, "stop_grace_period", &service.stop_grace_period)?.map(|n| n / 1_000_000_000);

    let (binds, mounts) = mounts(model, sn, service)?;
    let mut tmpfs = Map::new();
    for t in &service.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(path.to_string(), json!(opts));
    }

    let limits = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let memory = match limits.and_then(|l| l.memory.clone()) {
        Some(m) => bytes(sn, "deploy.resources.limits.memory", &Some(m))?,
        None => bytes(sn, "mem_limit", &service.mem_limit)?,
    };
    let reservation = match reservations.and_then(|l| l.memory.clone()) {
        Some(m) => bytes(sn, "deploy.resources.reservations.memory", &Some(m))?,
        None => bytes(sn, "mem_reservation", &service.mem_reservation)?,
    };
    let cpus = limits.and_then(|l| l.cpus.clone()).or_else(|| service.cpus.clone());
    let nano_cpus = match cpus {
        None => None,
        Some(c) => Some(nano_cpus(&c.to_string()).map_err(|e| invalid(sn, "cpus", e))?),
    };
    let pids_limit = limits.and_then(|l| l.pids).or(service.pids_limit);

    let restart = restart_policy(service);
    let ulimits: Vec<Value> = service
        .ulimits
        .iter()
        .map(|(name, u)| {
            let (soft, hard) = u.pair();
            json!({"Name": name, "Soft": soft, "Hard": hard})
        })
        .collect();
    let sysctls: Map<String, Value> = service
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.to_string())))
        .collect();
    let extra_hosts: Vec<String> = service
        .extra_hosts
        .iter()
        .map(|h| match h.split_once('=') {
            Some((host, ip)) => format!("{host}:{ip}"),
            None => h.clone(),
        })
        .collect();
    let log_config = service.logging.as_ref().map(|l| {
        let opts: Map<String, Value> = l
            .options
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), json!(v))))
            .collect();
        json!({"Type": l.driver.clone().unwrap_or_else(|| "json-file".into()), "Config": opts})
    });

    // Networks: the first (by priority, then name, as Compose orders them) at create.
    let mut nets: Vec<(i64, String, Value)> = Vec::new();
    for key in service.network_keys() {
        if key != "default" && !model.networks.contains_key(&key) {
            return Err(ConvertError::Undefined {
                service: sn.into(),
                kind: "network",
                name: key,
            });
        }
        let cfg = service
            .networks
            .as_ref()
            .and_then(|n| n.get(&key))
            .and_then(|c| c.clone());
        let mut aliases = vec![sn.to_string()];
        let mut endpoint = Map::new();
        if let Some(c) = &cfg {
            aliases.extend(c.aliases.iter().cloned());
            let mut ipam = Map::new();
            if let Some(ip) = &c.ipv4_address {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip) = &c.ipv6_address {
                ipam.insert("IPv6Address".into(), json!(ip));
            }
            if !ipam.is_empty() {
                endpoint.insert("IPAMConfig".into(), Value::Object(ipam));
            }
            if let Some(m) = &c.mac_address {
                endpoint.insert("MacAddress".into(), json!(m));
            }
        }
        endpoint.insert("Aliases".into(), json!(aliases));
        let priority = cfg.as_ref().and_then(|c| c.priority).unwrap_or(0);
        nets.push((priority, network_name(model, &key), Value::Object(endpoint)));
    }
    nets.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let network_mode = match &service.network_mode {
        Some(m) => match m.strip_prefix("service:") {
            Some(other) => match ctx.service_containers.get(other) {
                Some(id) => format!("container:{id}"),
                None => {
                    return Err(invalid(
                        sn,
                        "network_mode",
                        format!("service {other} has no container to share"),
                    ))
                }
            },
            None => m.clone(),
        },
        None => nets.first().map(|n| n.1.clone()).unwrap_or_else(|| "default".into()),
    };
    let mut endpoints = Map::new();
    let mut later = Vec::new();
    for (i, (_, name, ep)) in nets.into_iter().enumerate() {
        if i == 0 {
            endpoints.insert(name, ep);
        } else {
            later.push((name, ep));
        }
    }

    let volumes_from: Vec<String> = service
        .volumes_from
        .iter()
        .map(|v| {
            let (src, mode) = match v.rsplit_once(':') {
                Some((s, m)) if m == "ro" || m == "rw" => (s, Some(m)),
                _ => (v.as_str(), None),
            };
            let src = match src.strip_prefix("container:") {
                Some(c) => c.to_string(),
                None => ctx
                    .service_containers
                    .get(src)
                    .cloned()
                    .unwrap_or_else(|| src.to_string()),
            };
            match mode {
                Some(m) => format!("{src}:{m}"),
                None => src,
            }
        })
        .collect();

    let mut host = json!({
        "Binds": binds,
        "Mounts": mounts,
        "NetworkMode": network_mode,
        "PortBindings": port_bindings,
        "RestartPolicy": restart,
        "CapAdd": service.cap_add,
        "CapDrop": service.cap_drop,
        "Privileged": service.privileged,
        "ReadonlyRootfs": service.read_only,
        "Init": service.init,
        "Ulimits": ulimits,
        "Sysctls": sysctls,
        "ExtraHosts": extra_hosts,
        "Dns": service.dns,
        "DnsSearch": service.dns_search,
        "DnsOptions": service.dns_opt,
        "Tmpfs": tmpfs,
        "Memory": memory.unwrap_or(0),
        "MemoryReservation": reservation.unwrap_or(0),
        "NanoCpus": nano_cpus.unwrap_or(0),
        "PidsLimit": pids_limit,
        "ShmSize": bytes(sn, "shm_size", &service.shm_size)?,
        "PidMode": service.pid,
        "IpcMode": service.ipc,
        "SecurityOpt": service.security_opt,
        "GroupAdd": service.group_add.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        "UsernsMode": service.userns_mode,
        "CgroupParent": service.cgroup_parent,
        "OomScoreAdj": service.oom_score_adj,
        "Runtime": service.runtime,
        "VolumesFrom": volumes_from,
        "Links": service.links.iter().chain(&service.external_links).cloned().collect::<Vec<_>>(),
    });
    if let (Some(lc), Some(h)) = (log_config, host.as_object_mut()) {
        h.insert("LogConfig".into(), lc);
    }
    if let Some(m) = &service.memswap_limit {
        let v = bytes(sn, "memswap_limit", &Some(m.clone()))?;
        if let Some(h) = host.as_object_mut() {
            h.insert("MemorySwap".into(), json!(v));
        }
    }
    if let Some(h) = host.as_object_mut() {
        h.retain(|_, v| !v.is_null());
    }

    let mut body = json!({
        "Image": ctx.image,
        "Hostname": service.hostname,
        "Domainname": service.domainname,
        "User": service.user,
        "WorkingDir": service.working_dir,
        "Env": env,
        "Cmd": service.command,
        "Entrypoint": service.entrypoint,
        "Labels": labels,
        "ExposedPorts": exposed,
        "Tty": service.tty,
        "OpenStdin": service.stdin_open,
        "AttachStdin": service.stdin_open,
        "AttachStdout": true,
        "AttachStderr": true,
        "StopSignal": service.stop_signal,
        "StopTimeout": stop_timeout,
        "Healthcheck": healthcheck,
        "MacAddress": service.mac_address,
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    if let Some(b) = body.as_object_mut() {
        b.retain(|_, v| !v.is_null());
    }
    Ok((body, later))
}

/// `com.docker.compose.depends_on`: `service:condition:restart` entries, comma-separated.
fn depends_on_label(service: &Service) -> String {
    service
        .depends_on
        .iter()
        .map(|(name, d)| format!("{name}:{}:{}", d.condition, d.restart))
        .collect::<Vec<_>>()
        .join(",")
}

/// `restart:` (or `deploy.restart_policy`) as the API's restart policy.
fn restart_policy(service: &Service) -> Value {
    if let Some(r) = &service.restart {
        let (name, count) = r.split_once(':').unwrap_or((r.as_str(), "0"));
        let name = if name == "no" { "" } else { name };
        return json!({"Name": name, "MaximumRetryCount": count.parse::<i64>().unwrap_or(0)});
    }
    if let Some(p) = service.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
        let name = match p.condition.as_deref() {
            Some("none") => "no",
            Some("on-failure") => "on-failure",
            _ => "always",
        };
        return json!({"Name": name, "MaximumRetryCount": p.max_attempts.unwrap_or(0)});
    }
    json!({"Name": "", "MaximumRetryCount": 0})
}

/// Bind mounts as `Binds` (their host path is created when missing, as `create_host_path` says) and
/// everything else as `Mounts`; secrets and configs from files are read-only binds.
fn mounts(model: &Model, sn: &str, service: &Service) -> Result<(Vec<String>, Vec<Value>), ConvertError> {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for v in &service.volumes {
        match v.kind.as_str() {
            "bind" if v.bind.as_ref().map(|b| b.create_host_path).unwrap_or(false) => {
                let mut opts = Vec::new();
                if v.read_only {
                    opts.push("ro".to_string());
                }
                if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.clone()) {
                    opts.push(p);
                }
                let src = v.source.clone().unwrap_or_default();
                binds.push(if opts.is_empty() {
                    format!("{src}:{}", v.target)
                } else {
                    format!("{src}:{}:{}", v.target, opts.join(","))
                });
            }
            "bind" => mounts.push(json!({
                "Type": "bind", "Source": v.source, "Target": v.target, "ReadOnly": v.read_only,
                "BindOptions": v.bind.as_ref().and_then(|b| b.propagation.clone()).map(|p| json!({"Propagation": p})),
            })),
            "volume" => {
                let source = match &v.source {
                    Some(key) if model.volumes.contains_key(key) => Some(volume_name(model, key)),
                    Some(key) => {
                        return Err(ConvertError::Undefined {
                            service: sn.into(),
                            kind: "volume",
                            name: key.clone(),
                        })
                    }
                    None => None,
                };
                let mut m = json!({"Type": "volume", "Target": v.target, "ReadOnly": v.read_only});
                if let Some(o) = m.as_object_mut() {
                    if let Some(s) = source {
                        o.insert("Source".into(), json!(s));
                    }
                    if let Some(vo) = &v.volume {
                        let mut opts = Map::new();
                        if vo.nocopy {
                            opts.insert("NoCopy".into(), json!(true));
                        }
                        if let Some(sp) = &vo.subpath {
                            opts.insert("Subpath".into(), json!(sp));
                        }
                        if !opts.is_empty() {
                            o.insert("VolumeOptions".into(), Value::Object(opts));
                        }
                    }
                }
                mounts.push(m);
            }
            "tmpfs" => {
                let mut m = json!({"Type": "tmpfs", "Target": v.target, "ReadOnly": v.read_only});
                if let (Some(t), Some(o)) = (&v.tmpfs, m.as_object_mut()) {
                    let mut opts = Map::new();
                    if let Some(size) = bytes(sn, "volumes.tmpfs.size", &t.size)? {
                        opts.insert("SizeBytes".into(), json!(size));
                    }
                    if let Some(mode) = &t.mode {
                        let mode = match mode {
                            StrOrNum::Str(s) => i64::from_str_radix(s, 8).unwrap_or(0o1777),
                            StrOrNum::Int(i) => *i,
                            StrOrNum::Float(f) => *f as i64,
                        };
                        opts.insert("Mode".into(), json!(mode));
                    }
                    o.insert("TmpfsOptions".into(), Value::Object(opts));
                }
                mounts.push(m);
            }
            other => {
                mounts.push(json!({"Type": other, "Source": v.source, "Target": v.target, "ReadOnly": v.read_only}))
            }
        }
    }
    for (kind, refs, base) in [
        ("secret", &service.secrets, "/run/secrets"),
        ("config", &service.configs, ""),
    ] {
        for r in refs.iter() {
            let objects = if kind == "secret" {
                &model.secrets
            } else {
                &model.configs
            };
            let Some(obj) = objects.get(&r.source) else {
                return Err(ConvertError::Undefined {
                    service: sn.into(),
                    kind,
                    name: r.source.clone(),
                });
            };
            if let Some(file) = &obj.file {
                binds.push(format!("{file}:{}:ro", file_target(r, base)));
            }
        }
    }
    for m in mounts.iter_mut() {
        if let Some(o) = m.as_object_mut() {
            o.retain(|_, v| !v.is_null());
        }
    }
    Ok((binds, mounts))
}

/// Where a secret or config appears in the container: its target, relative targets under `base`,
/// the source's name by default.
pub fn file_target(r: &FileReference, base: &str) -> String {
    let t = r.target.clone().unwrap_or_else(|| r.source.clone());
    if t.starts_with('/') {
        t
    } else {
        format!("{base}/{t}")
    }
}

/// Secrets and configs whose content is not a file (`environment:`, `content:`): (path in the
/// container, content, mode), copied into the container before it starts.
pub fn inline_files(
    model: &Model,
    service: &Service,
    environment: &BTreeMap<String, String>,
) -> Vec<(String, Vec<u8>, u32)> {
    let mut out = Vec::new();
    for (kind, refs, base) in [
        ("secret", &service.secrets, "/run/secrets"),
        ("config", &service.configs, ""),
    ] {
        let objects = if kind == "secret" {
            &model.secrets
        } else {
            &model.configs
        };
        for r in refs {
            let Some(obj) = objects.get(&r.source) else { continue };
            let content = match (&obj.environment, &obj.content) {
                (Some(var), _) => environment.get(var).cloned().unwrap_or_default(),
                (None, Some(c)) => c.clone(),
                _ => continue,
            };
            let mode = match &r.mode {
                Some(StrOrNum::Int(i)) => *i as u32,
                Some(StrOrNum::Str(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8).unwrap_or(0o444),
                _ => 0o444,
            };
            out.push((file_target(r, base), content.into_bytes(), mode));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::from_json(&json!({
            "name": "shop",
            "services": {
                "web": {
                    "image": "busybox", "command": ["httpd", "-f"],
                    "environment": {"A": "b", "C": null},
                    "ports": [{"mode":"ingress","target":80,"published":"8080","protocol":"tcp"},
                              {"mode":"ingress","host_ip":"127.0.0.1","target":53,"protocol":"udp"}],
                    "expose": ["9000"],
                    "volumes": [
                        {"type":"bind","source":"/srv/data","target":"/data","read_only":true,"bind":{"create_host_path":true}},
                        {"type":"volume","source":"cache","target":"/cache","volume":{}},
                        {"type":"volume","target":"/anon","volume":{}}],
                    "networks": {"front": {"aliases": ["www"]}, "back": {"ipv4_address": "172.28.0.5"}},
                    "healthcheck": {"test": ["CMD", "true"], "interval": "1m30s", "retries": 3},
                    "deploy": {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": "67108864"}}},
                    "ulimits": {"nofile": 1024},
                    "extra_hosts": ["db.local=10.0.0.2"],
                    "stop_grace_period": "1m",
                    "read_only": true, "init": true, "cap_drop": ["NET_RAW"],
                    "restart": "on-failure:3",
                    "secrets": [{"source": "token"}],
                    "depends_on": {"db": {"condition": "service_healthy", "required": true}}
                },
                "db": {"image": "busybox"}
            },
            "networks": {"front": {"name": "shop_front"}, "back": {"name": "shop_back"}, "default": {"name": "shop_default"}},
            "volumes": {"cache": {"name": "shop_cache"}},
            "secrets": {"token": {"name": "shop_token", "file": "/srv/token"}}
        }))
        .unwrap()
    }

    #[test]
    fn a_service_becomes_a_create_body() {
        let m = model();
        let web = &m.services["web"];
        let ids = BTreeMap::new();
        let ctx = ContainerContext {
            project: "shop",
            working_dir: "/srv",
            config_files: "/srv/compose.yaml",
            number: 1,
            oneoff: false,
            name: "shop-web-1",
            config_hash: "abc",
            image: "busybox",
            image_id: "sha256:1234",
            service_containers: &ids,
        };
        let (body, later) = create_body(&m, "web", web, &ctx).unwrap();
        assert_eq!(body["Labels"]["com.docker.compose.project"], "shop");
        assert_eq!(body["Labels"]["com.docker.compose.service"], "web");
        assert_eq!(body["Labels"]["com.docker.compose.container-number"], "1");
        assert_eq!(body["Labels"]["com.docker.compose.oneoff"], "False");
        assert_eq!(
            body["Labels"]["com.docker.compose.depends_on"],
            "db:service_healthy:false"
        );
        assert_eq!(body["Env"], json!(["A=b"]));
        assert_eq!(
            body["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "9000/tcp": {}})
        );
        let h = &body["HostConfig"];
        assert_eq!(h["PortBindings"]["80/tcp"], json!([{"HostIp": "", "HostPort": "8080"}]));
        assert_eq!(
            h["PortBindings"]["53/udp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": ""}])
        );
        assert_eq!(
            h["Binds"],
            json!(["/srv/data:/data:ro", "/srv/token:/run/secrets/token:ro"])
        );
        assert_eq!(
            h["Mounts"][0],
            json!({"Type": "volume", "Source": "shop_cache", "Target": "/cache", "ReadOnly": false})
        );
        assert_eq!(
            h["Mounts"][1],
            json!({"Type": "volume", "Target": "/anon", "ReadOnly": false})
        );
        assert_eq!(h["NetworkMode"], "shop_back");
        assert_eq!(h["Memory"], 64 << 20);
        assert_eq!(h["NanoCpus"], 500_000_000);
        assert_eq!(h["Ulimits"], json!([{"Name": "nofile", "Soft": 1024, "Hard": 1024}]));
        assert_eq!(h["ExtraHosts"], json!(["db.local:10.0.0.2"]));
        assert_eq!(
            (&h["ReadonlyRootfs"], &h["Init"], &h["CapDrop"]),
            (&json!(true), &json!(true), &json!(["NET_RAW"]))
        );
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(body["Healthcheck"]["Interval"], 90_000_000_000i64);
        assert_eq!(body["StopTimeout"], 60);
        let ep = &body["NetworkingConfig"]["EndpointsConfig"]["shop_back"];
        assert_eq!(ep["Aliases"], json!(["web"]));
        assert_eq!(ep["IPAMConfig"]["IPv4Address"], "172.28.0.5");
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].0, "shop_front");
        assert_eq!(later[0].1["Aliases"], json!(["web", "www"]));
        // the body is what the API's types accept
        let _: berth_api::ContainerCreateBody = serde_json::from_value(body).unwrap();
    }

    #[test]
    fn the_hash_is_compose_v2s_own() {
        // Hashes Docker Compose v2.40.3 put on containers of these services (see tests/compose.rs
        // for the round trip with the real tool).
        let m = Model::from_json(&json!({"name": "st", "services": {
            "plain": {"command": ["sleep", "1000"], "entrypoint": null, "image": "bb", "networks": {"default": null}},
            "web": {"command": ["sh", "-c", "exec httpd -f -p 8080 -h /"],
                    "deploy": {"replicas": 1, "resources": {}, "placement": {}}, "entrypoint": null,
                    "environment": {"A": "b"}, "image": "bb", "networks": {"default": null},
                    "ports": [{"mode": "ingress", "target": 8080, "published": "8080", "protocol": "tcp"}]}
        }}))
        .unwrap();
        assert_eq!(
            config_hash(&m.services["plain"]),
            "036bde22c30c103bdee407481c300b89df4c1b45c7986f9249b4efe02c17aec8"
        );
        assert_eq!(
            config_hash(&m.services["web"]),
            "826e59b16798fd0bbc67f63e708d8cebd79abceb0384e5c98ecc5f376bcf5f3f"
        );
    }

    #[test]
    fn the_hash_ignores_scale_but_not_configuration() {
        let m = model();
        let mut web = m.services["web"].clone();
        let h = config_hash(&web);
        web.raw["deploy"]["replicas"] = json!(5);
        web.raw["scale"] = json!(5);
        assert_eq!(config_hash(&web), h);
        web.raw["command"] = json!(["true"]);
        assert_ne!(config_hash(&web), h);
        // Without the normalised model (a one-off's changed copy), the typed service is hashed.
        web.raw = Value::Null;
        let typed = config_hash(&web);
        web.command = Some(vec!["false".into()]);
        assert_ne!(config_hash(&web), typed);
    }

    #[test]
    fn network_mode_service_shares_the_other_container() {
        let mut m = model();
        let mut db = m.services["db"].clone();
        db.network_mode = Some("service:web".into());
        m.services.insert("db".into(), db.clone());
        let ids = BTreeMap::new();
        let ctx = ContainerContext {
            project: "shop",
            working_dir: "/srv",
            config_files: "",
            number: 1,
            oneoff: false,
            name: "shop-db-1",
            config_hash: "",
            image: "busybox",
            image_id: "sha256:1234",
            service_containers: &ids,
        };
        assert!(create_body(&m, "db", &db, &ctx).is_err());
        let ids2 = BTreeMap::from([("web".to_string(), "abc123".to_string())]);
        let ctx = ContainerContext {
            service_containers: &ids2,
            ..ctx
        };
        let (body, later) = create_body(&m, "db", &db, &ctx).unwrap();
        assert_eq!(body["HostConfig"]["NetworkMode"], "container:abc123");
        assert!(later.is_empty());
    }
}
