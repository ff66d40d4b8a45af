//! The engine's record of one container (`containers/<id>/config.v2.json`).

use crate::error::{EngineError, Result};
use crate::state::State;
use berth_api::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    /// The networks it is connected to, by name, with the endpoint settings asked for
    /// (`NetworkingConfig.EndpointsConfig`, `network connect`); addresses are the run's.
    #[serde(default)]
    pub networks: crate::network::EndpointsConfig,
    /// Its mounts (binds, volumes, tmpfs), resolved at create: what inspect's `Mounts` shows and
    /// what each run mounts.
    #[serde(default)]
    pub mounts: Vec<crate::volume::spec::MountPoint>,
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
