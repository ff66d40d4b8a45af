//! The normalised compose model read into types: what the loader's `config --format json` shape
//! means for a container. Every field follows the compose specification's long form (services.md);
//! fields berth does not act on are still read so that an unknown shape is an error, not a surprise.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A whole project: the top-level sections of a normalised compose file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Model {
    /// The project's name (`name:` after normalisation).
    #[serde(default)]
    pub name: String,
    /// Services by name.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// Networks by their key in the file.
    #[serde(default)]
    pub networks: BTreeMap<String, Option<Network>>,
    /// Volumes by their key in the file.
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<Volume>>,
    /// Secrets by their key in the file.
    #[serde(default)]
    pub secrets: BTreeMap<String, FileObject>,
    /// Configs by their key in the file.
    #[serde(default)]
    pub configs: BTreeMap<String, FileObject>,
}

impl Model {
    /// Reads the loader's normalised JSON into types.
    pub fn from_json(v: &Value) -> Result<Self, serde_json::Error> {
        let mut m = Model::deserialize(v)?;
        for (name, svc) in m.services.iter_mut() {
            svc.raw = v["services"][name].clone();
        }
        Ok(m)
    }
}

/// A service: the template its containers are made from.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)] // the fields are the compose specification's, named as it names them
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub expose: Vec<StrOrNum>,
    #[serde(default)]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default)]
    pub tmpfs: Vec<String>,
    pub networks: Option<BTreeMap<String, Option<ServiceNetwork>>>,
    pub network_mode: Option<String>,
    #[serde(default)]
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    pub deploy: Option<Deploy>,
    pub scale: Option<u32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub container_name: Option<String>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub read_only: bool,
    pub init: Option<bool>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<String>,
    #[serde(default)]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(default)]
    pub sysctls: BTreeMap<String, StrOrNum>,
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub dns: Vec<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_opt: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<FileReference>,
    #[serde(default)]
    pub configs: Vec<FileReference>,
    #[serde(default)]
    pub stdin_open: bool,
    #[serde(default)]
    pub tty: bool,
    pub pid: Option<String>,
    pub ipc: Option<String>,
    pub shm_size: Option<StrOrNum>,
    pub mem_limit: Option<StrOrNum>,
    pub mem_reservation: Option<StrOrNum>,
    pub memswap_limit: Option<StrOrNum>,
    pub cpus: Option<StrOrNum>,
    pub cpu_shares: Option<StrOrNum>,
    pub cpuset: Option<String>,
    pub pids_limit: Option<i64>,
    pub oom_score_adj: Option<i64>,
    #[serde(default)]
    pub security_opt: Vec<String>,
    #[serde(default)]
    pub devices: Vec<Value>,
    #[serde(default)]
    pub group_add: Vec<StrOrNum>,
    pub platform: Option<String>,
    pub pull_policy: Option<String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    pub logging: Option<Logging>,
    pub mac_address: Option<String>,
    pub userns_mode: Option<String>,
    pub cgroup_parent: Option<String>,
    pub runtime: Option<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub external_links: Vec<String>,
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// The service as the normalised model has it (what Compose's config hash is made of).
    #[serde(skip)]
    pub raw: Value,
}

impl Service {
    /// The number of containers `up` keeps: `scale`, else `deploy.replicas`, else one.
    pub fn replicas(&self) -> u32 {
        self.scale
            .or_else(|| self.deploy.as_ref().and_then(|d| d.replicas))
            .unwrap_or(1)
    }

    /// The networks the service joins, by key, in the file's order (BTreeMap order), with the
    /// `default` network when none is named and no network_mode is set.
    pub fn network_keys(&self) -> Vec<String> {
        match &self.networks {
            Some(n) if !n.is_empty() => n.keys().cloned().collect(),
            _ if self.network_mode.is_some() => Vec::new(),
            _ => vec!["default".to_string()],
        }
    }
}

/// A value the model may print as a string or a number (`expose`, sizes, sysctls).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StrOrNum {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl std::fmt::Display for StrOrNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrOrNum::Str(s) => f.write_str(s),
            StrOrNum::Int(i) => write!(f, "{i}"),
            StrOrNum::Float(x) => write!(f, "{x}"),
        }
    }
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::One(s)) => vec![s],
        Some(Either::Many(v)) => v,
    })
}

/// `build:` in its long form.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Build {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    #[serde(default)]
    pub cache_from: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub network: Option<String>,
    #[serde(default)]
    pub no_cache: bool,
    #[serde(default)]
    pub pull: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    pub shm_size: Option<StrOrNum>,
    pub platform: Option<String>,
}

/// A published port in the long syntax.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Port {
    pub target: u16,
    pub published: Option<StrOrNum>,
    pub host_ip: Option<String>,
    pub protocol: Option<String>,
    pub mode: Option<String>,
}

/// A mount in the long syntax.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    pub bind: Option<BindOptions>,
    pub volume: Option<VolumeOptions>,
    pub tmpfs: Option<TmpfsOptions>,
    pub consistency: Option<String>,
}

/// Options of a bind mount.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct BindOptions {
    pub propagation: Option<String>,
    #[serde(default)]
    pub create_host_path: bool,
    pub selinux: Option<String>,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct VolumeOptions {
    #[serde(default)]
    pub nocopy: bool,
    pub subpath: Option<String>,
}

/// Options of a tmpfs mount.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct TmpfsOptions {
    pub size: Option<StrOrNum>,
    pub mode: Option<StrOrNum>,
}

/// How a service joins one network.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct ServiceNetwork {
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub mac_address: Option<String>,
    pub priority: Option<i64>,
}

/// One `depends_on` entry in the long syntax.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Dependency {
    #[serde(default = "started")]
    pub condition: String,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub restart: bool,
}

fn started() -> String {
    "service_started".to_string()
}

fn yes() -> bool {
    true
}

/// `healthcheck:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Healthcheck {
    pub test: Option<Vec<String>>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u64>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    #[serde(default)]
    pub disable: bool,
}

/// `deploy:` as far as one host uses it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Deploy {
    pub replicas: Option<u32>,
    pub resources: Option<Resources>,
    pub restart_policy: Option<DeployRestartPolicy>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Resources {
    pub limits: Option<ResourceValues>,
    pub reservations: Option<ResourceValues>,
}

/// Limits or reservations.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct ResourceValues {
    pub cpus: Option<StrOrNum>,
    pub memory: Option<StrOrNum>,
    pub pids: Option<i64>,
}

/// `deploy.restart_policy`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct DeployRestartPolicy {
    pub condition: Option<String>,
    pub max_attempts: Option<i64>,
}

/// A ulimit: one number for both, or soft and hard.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum Ulimit {
    Single(i64),
    Pair { soft: i64, hard: i64 },
}

impl Ulimit {
    /// The (soft, hard) pair.
    pub fn pair(&self) -> (i64, i64) {
        match self {
            Ulimit::Single(n) => (*n, *n),
            Ulimit::Pair { soft, hard } => (*soft, *hard),
        }
    }
}

/// A secret or config a service uses, in the long syntax.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct FileReference {
    pub source: String,
    pub target: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<StrOrNum>,
}

/// `logging:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Logging {
    pub driver: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, Option<String>>,
}

/// A top-level network.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Network {
    pub name: Option<String>,
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, StrOrNum>,
    pub ipam: Option<Ipam>,
    pub external: Option<bool>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    pub enable_ipv6: Option<bool>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A network's IPAM section.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Ipam {
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Vec<IpamPool>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// One IPAM pool.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct IpamPool {
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, String>,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct Volume {
    pub name: Option<String>,
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, StrOrNum>,
    pub external: Option<bool>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret or config: a file, an environment variable or inline content.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs)]
pub struct FileObject {
    pub name: Option<String>,
    pub file: Option<String>,
    pub environment: Option<String>,
    pub content: Option<String>,
    pub external: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_normalised_model() {
        let v: Value = serde_json::from_str(
            r#"{"name":"cs","services":{"web":{"image":"busybox","command":["httpd","-f"],
            "environment":{"A":"b","C":null},"ports":[{"mode":"ingress","target":80,"published":"8080","protocol":"tcp"}],
            "expose":["5432", 80],"ulimits":{"nofile":1024,"nproc":{"soft":10,"hard":20}},
            "deploy":{"replicas":2,"resources":{"limits":{"cpus":0.5,"memory":"67108864"}}},
            "networks":{"default":null},"depends_on":{"db":{"condition":"service_healthy","required":true}}},
            "db":{"image":"busybox","entrypoint":null,"dns":"1.1.1.1"}},
            "networks":{"default":{"name":"cs_default","ipam":{}}},"volumes":{"cache":{"name":"cs_cache"}}}"#,
        )
        .unwrap();
        let m = Model::from_json(&v).unwrap();
        let web = &m.services["web"];
        assert_eq!(web.replicas(), 2);
        assert_eq!(web.ulimits["nproc"].pair(), (10, 20));
        assert_eq!(web.ulimits["nofile"].pair(), (1024, 1024));
        assert_eq!(web.expose[1].to_string(), "80");
        assert_eq!(web.network_keys(), vec!["default"]);
        assert_eq!(web.depends_on["db"].condition, "service_healthy");
        assert_eq!(m.services["db"].dns, vec!["1.1.1.1"]);
        assert_eq!(m.services["db"].replicas(), 1);
    }
}
