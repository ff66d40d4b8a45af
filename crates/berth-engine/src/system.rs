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
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        })
        .unwrap_or_else(|| "Linux".into())
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

fn go_arch(machine: &str) -> String {
    match machine {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
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
    ) -> Arc<SystemService> {
        Arc::new(SystemService {
            logging_driver,
            data_root,
            runtimes,
            registry,
            images,
            events,
            started: std::time::Instant::now(),
        })
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
        let (kernel, host, machine) = uname();
        let (running, paused, stopped) = self.registry.counts();
        let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
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
            driver_status: Some(vec![vec!["Backing Filesystem".into(), "extfs".into()]]),
            docker_root_dir: Some(self.data_root.display().to_string()),
            memory_limit: Some(true),
            swap_limit: Some(true),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            oom_kill_disable: Some(!v2),
            ipv4_forwarding: Some(true),
            debug: Some(false),
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
            os_version: Some(String::new()),
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
            labels: Some(Vec::new()),
            experimental_build: Some(false),
            server_version: Some(VERSION.into()),
            runtimes: Some(runtimes),
            default_runtime: Some("berth".into()),
            live_restore_enabled: Some(true),
            isolation: None,
            init_binary: Some(
                self.runtimes
                    .init
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            warnings: Some(Vec::new()),
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
    fn daemon_id(&self) -> String {
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
