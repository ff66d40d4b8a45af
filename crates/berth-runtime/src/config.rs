//! What the engine decides about one container run, in Docker's terms; [`crate::build_spec`] turns it
//! into an OCI runtime spec.

use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A user resolved against the image's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedUser {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Supplementary groups (from `/etc/group` membership and `--group-add`).
    pub additional_gids: Vec<u32>,
    /// Home directory from the passwd entry (becomes `HOME` when the environment has none).
    #[serde(default)]
    pub home: String,
}

/// `--security-opt seccomp=...`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum SeccompMode {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`.
    Unconfined,
    /// A custom profile, already converted to the OCI form.
    Custom(LinuxSeccomp),
}

/// `--network`: which network namespace the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// A new, empty namespace (only `lo`, brought up by the runtime).
    #[default]
    New,
    /// The host's namespace (`--network host`).
    Host,
    /// Join an existing namespace (`/proc/<pid>/ns/net` or a bind-mounted netns file).
    Path(PathBuf),
}

/// `--ulimit name=soft:hard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Docker's name: `nofile`, `nproc`, `core`, `memlock`, `stack`, ...
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

pub use berth_types::userns::IdMap;

/// A bind mount into the container (volumes, `/etc/hosts`, `/etc/resolv.conf`, `-v`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path in the container.
    pub destination: String,
    /// Read-only.
    pub readonly: bool,
    /// Extra mount options (`rbind` is implied; e.g. `rprivate`, `nosuid`).
    #[serde(default)]
    pub options: Vec<String>,
}

/// A tmpfs mounted into the container (`--tmpfs`, `--mount type=tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    /// Path in the container.
    pub destination: String,
    /// Mount options (`size=64m`, `mode=1777`, `ro`, `noexec`...), after Docker's defaults
    /// (`nosuid`, `nodev`, `noexec`).
    #[serde(default)]
    pub options: Vec<String>,
}

/// Everything the runtime needs to know about one container run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// Full container ID (names the cgroup).
    pub id: String,
    /// The process: entrypoint + cmd, already combined.
    pub args: Vec<String>,
    /// `KEY=value` environment (image env + `-e`); `PATH` and `HOSTNAME` are added when missing.
    pub env: Vec<String>,
    /// Working directory (`/` when empty); created if missing, as Docker does.
    pub cwd: String,
    /// The resolved user.
    pub user: ResolvedUser,
    /// Hostname (Docker uses the short container ID).
    pub hostname: String,
    /// NIS domain name (`--domainname`).
    pub domainname: Option<String>,
    /// Allocate a terminal (`-t`).
    pub tty: bool,
    /// `--privileged`: all capabilities, host devices, no seccomp, no masked/readonly paths.
    pub privileged: bool,
    /// `--cap-add` (Docker names with or without `CAP_`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` (Docker names with or without `CAP_`, or `ALL`).
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=...`.
    pub seccomp: SeccompMode,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `--memory` in bytes (0 = unlimited).
    pub memory: i64,
    /// `--memory-swap` in bytes (memory + swap; 0 = twice `memory`, -1 = unlimited).
    pub memory_swap: i64,
    /// `--cpus` in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    /// `--cpu-shares` (relative weight; 0 = default).
    pub cpu_shares: u64,
    /// `--cpu-quota` in microseconds (0 = unset).
    pub cpu_quota: i64,
    /// `--cpu-period` in microseconds (0 = unset).
    pub cpu_period: u64,
    /// `--pids-limit` (0 or negative = unlimited).
    pub pids_limit: i64,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--init`: host path of the init binary, bind-mounted at `/sbin/docker-init`.
    pub init: Option<PathBuf>,
    /// `--userns-remap`-style uid mappings (a user namespace is created when not empty).
    pub uid_mappings: Vec<IdMap>,
    /// gid mappings for the user namespace.
    pub gid_mappings: Vec<IdMap>,
    /// `--network`.
    pub network: NetworkMode,
    /// Extra bind mounts, applied after the defaults (a mount on a default destination replaces it).
    pub mounts: Vec<BindMount>,
    /// tmpfs mounts, applied after the bind mounts.
    #[serde(default)]
    pub tmpfs: Vec<TmpfsMount>,
    /// `--cgroup-parent` (default `/berth`).
    pub cgroup_parent: Option<String>,
    /// `--security-opt systempaths=unconfined` or an explicit list: replaces Docker's masked paths.
    pub masked_paths: Option<Vec<String>>,
    /// Replaces Docker's read-only paths.
    pub readonly_paths: Option<Vec<String>>,
    /// `--shm-size` in bytes (0 = Docker's 64 MiB).
    pub shm_size: u64,
    /// `--sysctl`.
    pub sysctls: Vec<(String, String)>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
}
