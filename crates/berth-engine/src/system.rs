//! `/info` and `/version`.

use crate::events::EventBus;
use crate::images::ImageService;
use crate::registry::Registry;
use crate::runtimes::Runtimes;
use berth_api::models::{SystemInfo, SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};
use std::collections::HashMap;
use std::sync::Arc;

/// berth's version, reported where Docker reports the engine version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn uname() -> (String, String, String) {
    match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.nodename().to_string_lossy().into_owned(),
            u.machine().to_string_lossy().into_owned(),
        ),
        Err(_) => (String::new(), String::new(), String::new()),
    }
}

fn os_name() -> String {
    os_release("PRETTY_NAME").unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
    })
}

/// The filesystem under the data root, named as dockerd names it in `Backing Filesystem`.
fn backing_fs(dir: &std::path::Path) -> String {
    use nix::sys::statfs::*;
    let Ok(st) = statfs(dir) else {
        return "unknown".into();
    };
    let t = st.filesystem_type();
    let name = if t == EXT4_SUPER_MAGIC {
        "extfs"
    } else if t == XFS_SUPER_MAGIC {
        "xfs"
    } else if t == BTRFS_SUPER_MAGIC {
        "btrfs"
    } else if t == TMPFS_MAGIC {
        "tmpfs"
    } else if t == OVERLAYFS_SUPER_MAGIC {
        "overlayfs"
    } else {
        "unknown"
    };
    name.into()
}

/// Whether a `/proc/sys` switch is on (`net/ipv4/ip_forward`).
fn sysctl_on(key: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/{key}")).is_ok_and(|v| v.trim() == "1")
}

/// Whether memory+swap limits work: cgroup v1's `memsw` files (swap accounting), or v2's `memory.swap.max`.
fn swap_limit(v2: bool) -> bool {
    if v2 {
        std::path::Path::new("/sys/fs/cgroup/init.scope/memory.swap.max").exists()
            || std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control").is_ok_and(|c| c.contains("memory"))
    } else {
        std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    }
}

/// An empty commit record (`ContainerdCommit`, `RuncCommit`, `InitCommit`): berth has none of
/// these components; docker prints the ID.
fn commit() -> berth_api::models::Commit {
    berth_api::models::Commit {
        id: Some(String::new()),
        ..Default::default()
    }
}

/// `SecurityOptions` as dockerd lists them.
fn security_options(v2: bool, userns: bool) -> Vec<String> {
    let mut out = vec!["name=seccomp,profile=builtin".to_string()];
    if userns {
        out.push("name=userns".into());
    }
    if v2 {
        out.push("name=cgroupns".into());
    }
    out
}

/// The configuration's warnings, then the host's (as dockerd's `docker info` prints them).
fn warnings(settings: &DaemonSettings, swap_limit: bool, ip_forward: bool) -> Vec<String> {
    let mut out = settings.warnings.clone();
    if !swap_limit {
        out.push("WARNING: No swap limit support".into());
    }
    if !ip_forward {
        out.push("WARNING: IPv4 forwarding is disabled".into());
    }
    out
}

fn go_arch(machine: &str) -> String {
    match machine {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}

/// What the daemon was told (flags and daemon.json) that `/info` reports; replaced whole when the
/// configuration is reloaded (`SIGHUP`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `--label`s of the daemon (`key=value`).
    pub labels: Vec<String>,
    /// `--debug`.
    pub debug: bool,
    /// Whether containers keep running when the daemon stops (`--live-restore`).
    pub live_restore: bool,
    /// Warnings about the configuration, each shown by `docker info`.
    pub warnings: Vec<String>,
    /// The user namespace remapping is on (`--userns-remap`).
    pub userns: bool,
    /// The pools new networks take subnets from: (base CIDR, prefix size).
    pub address_pools: Vec<(String, u8)>,
    /// The daemon's proxy settings (its `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), credentials masked.
    pub proxies: [String; 3],
}

/// The system service: `/version`, `/info` and the daemon's identity, from what the other services
/// report.
pub struct SystemService {
    /// The daemon-wide default log driver (`--log-driver`).
    logging_driver: String,
    data_root: std::path::PathBuf,
    runtimes: Runtimes,
    registry: Arc<Registry>,
    images: Arc<ImageService>,
    events: EventBus,
    started: std::time::Instant,
    settings: std::sync::RwLock<DaemonSettings>,
}

impl SystemService {
    /// The system service of a daemon whose state is under `data_root`.
    pub fn new(
        data_root: std::path::PathBuf,
        runtimes: Runtimes,
        registry: Arc<Registry>,
        images: Arc<ImageService>,
        events: EventBus,
        logging_driver: String,
        settings: DaemonSettings,
    ) -> Arc<SystemService> {
        Arc::new(SystemService {
            logging_driver,
            data_root,
            runtimes,
            registry,
            images,
            events,
            started: std::time::Instant::now(),
            settings: std::sync::RwLock::new(settings),
        })
    }

    /// How many containers are running, paused and stopped.
    pub fn container_counts(&self) -> (i64, i64, i64) {
        self.registry.counts()
    }

    /// The settings `/info` reports.
    pub fn settings(&self) -> DaemonSettings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the settings (a configuration reload).
    pub fn set_settings(&self, settings: DaemonSettings) {
        match self.settings.write() {
            Ok(mut s) => *s = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }

    /// `GET /version` (built as JSON: the generated model cannot carry the components' details).
    pub fn version(&self) -> serde_json::Value {
        let (kernel, _, machine) = uname();
        let arch = go_arch(&machine);
        serde_json::json!({
            "Platform": { "Name": "berth" },
            "Components": [{
                "Name": "Engine",
                "Version": VERSION,
                "Details": {
                    "ApiVersion": berth_api::API_VERSION,
                    "MinAPIVersion": berth_api::MIN_API_VERSION,
                    "Arch": arch,
                    "Os": "linux",
                    "KernelVersion": kernel,
                    "GitCommit": "",
                    "GoVersion": "rust",
                    "BuildTime": "",
                    "Experimental": "false",
                },
            }],
            "Version": VERSION,
            "ApiVersion": berth_api::API_VERSION,
            "MinAPIVersion": berth_api::MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "rust",
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": kernel,
            "BuildTime": "",
        })
    }

    /// `GET /info`.
    pub fn info(&self) -> SystemInfo {
        let settings = self.settings();
        let (kernel, host, machine) = uname();
        let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let (swap, ip_forward) = (swap_limit(v2), sysctl_on("net/ipv4/ip_forward"));
        let (running, paused, stopped) = self.registry.counts();
        let mut runtimes = HashMap::new();
        runtimes.insert(
            "berth".to_string(),
            berth_api::models::Runtime {
                path: Some(self.runtimes.shim.display().to_string()),
                ..Default::default()
            },
        );
        for (name, path) in &self.runtimes.external {
            runtimes.insert(
                name.clone(),
                berth_api::models::Runtime {
                    path: Some(path.display().to_string()),
                    ..Default::default()
                },
            );
        }
        SystemInfo {
            id: Some(self.daemon_id()),
            containers: Some(running + paused + stopped),
            containers_running: Some(running),
            containers_paused: Some(paused),
            containers_stopped: Some(stopped),
            images: Some(self.images.count() as i64),
            driver: Some("overlay2".into()),
            driver_status: Some(vec![
                vec!["Backing Filesystem".into(), backing_fs(&self.data_root)],
                vec!["Supports d_type".into(), "true".into()],
                vec!["Using metacopy".into(), "false".into()],
                vec!["Native Overlay Diff".into(), "true".into()],
                vec!["userxattr".into(), "false".into()],
            ]),
            docker_root_dir: Some(self.data_root.display().to_string()),
            memory_limit: Some(true),
            swap_limit: Some(swap),
            kernel_memory_tcp: Some(!v2),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            oom_kill_disable: Some(!v2),
            ipv4_forwarding: Some(ip_forward),
            bridge_nf_iptables: Some(sysctl_on("net/bridge/bridge-nf-call-iptables")),
            bridge_nf_ip6tables: Some(sysctl_on("net/bridge/bridge-nf-call-ip6tables")),
            debug: Some(settings.debug),
            nfd: Some(
                std::fs::read_dir("/proc/self/fd")
                    .map(|d| d.count() as i64)
                    .unwrap_or(0),
            ),
            n_goroutines: Some(0),
            system_time: Some(berth_types::time::now_rfc3339()),
            logging_driver: Some(self.logging_driver.clone()),
            cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(if v2 {
                SystemInfoCgroupVersionEnum::_2
            } else {
                SystemInfoCgroupVersionEnum::_1
            }),
            n_events_listener: Some(self.events.listeners() as i64),
            kernel_version: Some(kernel),
            operating_system: Some(os_name()),
            os_version: Some(os_release("VERSION_ID").unwrap_or_default()),
            os_type: Some("linux".into()),
            architecture: Some(machine),
            ncpu: Some(
                std::thread::available_parallelism()
                    .map(|n| n.get() as i64)
                    .unwrap_or(1),
            ),
            mem_total: Some(mem_total()),
            index_server_address: Some("https://index.docker.io/v1/".into()),
            name: Some(host),
            labels: Some(settings.labels.clone()),
            http_proxy: Some(settings.proxies[0].clone()),
            https_proxy: Some(settings.proxies[1].clone()),
            no_proxy: Some(settings.proxies[2].clone()),
            experimental_build: Some(false),
            server_version: Some(VERSION.into()),
            runtimes: Some(runtimes),
            default_runtime: Some("berth".into()),
            live_restore_enabled: Some(settings.live_restore),
            swarm: Some(berth_api::models::SwarmInfo {
                node_id: Some(String::new()),
                node_addr: Some(String::new()),
                local_node_state: Some(berth_api::models::LocalNodeState::INACTIVE),
                control_available: Some(false),
                error: Some(String::new()),
                ..Default::default()
            }),
            containerd_commit: Some(commit()),
            runc_commit: Some(commit()),
            init_commit: Some(commit()),
            default_address_pools: Some(
                settings
                    .address_pools
                    .iter()
                    .map(|(base, size)| berth_api::models::SystemInfoDefaultAddressPools {
                        base: Some(base.clone()),
                        size: Some(i64::from(*size)),
                    })
                    .collect(),
            ),
            cdi_spec_dirs: Some(Vec::new()),
            isolation: None,
            init_binary: Some(
                self.runtimes
                    .init
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            security_options: Some(security_options(v2, settings.userns)),
            warnings: Some(warnings(&settings, swap, ip_forward)),
            plugins: Some(berth_api::models::PluginsInfo {
                volume: Some(vec!["local".into()]),
                network: Some(
                    ["bridge", "host", "ipvlan", "macvlan", "null"]
                        .map(String::from)
                        .to_vec(),
                ),
                authorization: None,
                log: Some(["json-file", "local", "none"].map(String::from).to_vec()),
            }),
            ..Default::default()
        }
    }

    /// A stable identifier of this daemon's state directory.
    pub fn daemon_id(&self) -> String {
        let p = self.data_root.join("engine-id");
        if let Ok(id) = std::fs::read_to_string(&p) {
            return id.trim().to_string();
        }
        let id = berth_types::new_id();
        let _ = crate::record::write_replace(&p, id.as_bytes(), true);
        id
    }

    /// Seconds since the engine started.
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
