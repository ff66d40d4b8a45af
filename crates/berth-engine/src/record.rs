//! The engine's record of one container (`containers/<id>/config.v2.json`) and its state machine.

use crate::error::{EngineError, Result};
use berth_api::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A container's lifecycle status, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or reset).
    #[default]
    Created,
    /// The init process runs.
    Running,
    /// Frozen (cgroup freezer).
    Paused,
    /// Waiting to be restarted by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// The init process ended.
    Exited,
    /// Removal failed half-way.
    Dead,
}

impl Status {
    /// Docker's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// The mutable run state of a container.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    /// Lifecycle status.
    pub status: Status,
    /// Host PID of the init process while running, else 0.
    pub pid: i64,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// Error text of the last failed start.
    pub error: String,
    /// The last run was ended by the OOM killer.
    pub oom_killed: bool,
    /// RFC 3339 time of the last start (empty when never started).
    pub started_at: String,
    /// RFC 3339 time of the last exit (empty when never exited).
    pub finished_at: String,
    /// Set by `stop`/`kill` through the API so restart policies know it was deliberate.
    #[serde(default)]
    pub stopped_by_user: bool,
}

/// Everything the engine knows about a container; persisted as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Full 64-hex ID.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// The resolved executable (first element of entrypoint+cmd).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The container's config (image defaults merged in), as the API shows it.
    pub config: ContainerConfig,
    /// Host configuration from the create request.
    pub host_config: HostConfig,
    /// The image ID (`sha256:...`).
    pub image: String,
    /// The image's layer chain IDs, bottom first.
    pub chain_ids: Vec<berth_types::ChainId>,
    /// Run state.
    pub state: State,
    /// How often the restart policy restarted it.
    #[serde(default)]
    pub restart_count: i64,
    /// Path of the json-file log.
    pub log_path: String,
    /// Runtime name (`berth`, `runc`, ...).
    #[serde(default)]
    pub runtime: String,
}

/// Writes `data` to `path` atomically; `durable` adds the fsyncs. Files regenerated at every start
/// (the bundle, `/etc/hosts`) skip them: a crash cannot lose them, and `run` is a hot path.
pub(crate) fn write_replace(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let d = if durable {
        berth_types::Durability::Durable
    } else {
        berth_types::Durability::Atomic
    };
    berth_types::write_file(path, data, d).map_err(|e| EngineError::io("writing", path, e.source))
}

impl ContainerRecord {
    /// Saves the record to `dir/config.v2.json`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let data =
            serde_json::to_vec(self).map_err(|e| EngineError::Internal(format!("encoding container record: {e}")))?;
        write_replace(&dir.join("config.v2.json"), &data, true)
    }

    /// Loads a record from `dir/config.v2.json`.
    pub fn load(dir: &Path) -> Result<ContainerRecord> {
        let p = dir.join("config.v2.json");
        let data = std::fs::read(&p).map_err(|e| EngineError::io("reading", &p, e))?;
        serde_json::from_slice(&data).map_err(|e| EngineError::Internal(format!("parsing {}: {e}", p.display())))
    }

    /// The command line Docker shows in `ps` (`path args...`).
    pub fn command(&self) -> String {
        std::iter::once(self.path.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
