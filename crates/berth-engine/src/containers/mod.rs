//! The container service: owns `<data-root>/containers`, the writable layers it asks the snapshotter
//! for, the bundles and shim sockets under the exec root, and every container's lifecycle. It asks
//! the image service for images, the network and volume services for a run's namespace and mounts,
//! and publishes container events on the bus.
//!
//! Concurrency: each container has a short-lived `std::sync::Mutex` around its record (never held
//! across an await) and a `tokio::sync::Mutex` that serialises lifecycle operations (start, stop,
//! remove). Exits are observed by one monitor task per running container, which talks to the shim.

mod archive;
mod attach;
mod changes;
mod create;
mod exec;
mod health;
mod inspect;
mod lifecycle;
mod networking;
mod reconcile;
mod remove;
mod resources;
mod restart;
mod runs;
mod usage;
mod validate;
mod volumes;

pub(crate) use archive::mount_detached;
pub use archive::{go_file_mode, ExtractOptions, PathStat};
pub use attach::{AttachStream, AttachTicket, BoxFuture, WaitCondition};
pub(crate) use changes::epoch_rfc3339;
pub use changes::{CommitRequest, FilesystemChange};
pub use exec::ExecTicket;
pub use inspect::{human_duration, human_status};
pub use lifecycle::parse_signal;
pub use resources::{TopResult, UpdateConfig};

use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus, EventType};
use crate::images::ImageService;
use crate::network::Networks;
use crate::record::ContainerRecord;
use crate::registry::{Container, Registry};
use crate::runtimes::Runtimes;
use crate::volume::Volumes;
use berth_snapshot::Snapshotter;
use berth_types::userns::IdentityMapping;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where the container service keeps its state and what it runs containers with.
#[derive(Debug, Clone)]
pub struct ContainerServiceConfig {
    /// Persistent state (`/var/lib/berth`, or the remapped root under `--userns-remap`).
    pub data_root: PathBuf,
    /// Runtime state on tmpfs: bundles and shim sockets (`/run/berth`).
    pub exec_root: PathBuf,
    /// The shim, the external runtimes and the init.
    pub runtimes: Runtimes,
    /// `--userns-remap`: containers run in a user namespace with this mapping.
    pub id_map: Option<IdentityMapping>,
    /// `--log-driver`/`--log-opt`: the log config of containers that ask for none.
    pub log_defaults: crate::logconfig::LogDefaults,
    /// `--default-ulimit`: limits of containers that set none of that name.
    pub default_ulimits: Vec<berth_runtime::Ulimit>,
}

/// The services the container service calls.
pub struct ContainerDeps {
    /// The containers known, shared with the image service (which asks who uses an image).
    pub registry: Arc<Registry>,
    /// Images to create containers from.
    pub images: Arc<ImageService>,
    /// Writable layers and rootfs mounts.
    pub snapshots: Arc<Snapshotter>,
    /// Networks: a run's namespace, addresses and ports.
    pub networks: Arc<Networks>,
    /// A run's mounts.
    pub volumes: Arc<Volumes>,
    /// Where container events go.
    pub events: EventBus,
}

/// Options of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Include stopped containers.
    pub all: bool,
    /// Only the n most recently created (`-n`), 0 for no limit.
    pub limit: usize,
    /// Filters (`status`, `name`, `id`, `label`, `exited`, `ancestor`, `before`, `since`).
    pub filters: std::collections::HashMap<String, Vec<String>>,
}

/// The container service.
pub struct ContainerService {
    containers_dir: PathBuf,
    trash_dir: PathBuf,
    bundles_dir: PathBuf,
    shims_dir: PathBuf,
    runtimes: Runtimes,
    id_map: Option<IdentityMapping>,
    registry: Arc<Registry>,
    images: Arc<ImageService>,
    snapshots: Arc<Snapshotter>,
    networks: Arc<Networks>,
    volumes: Arc<Volumes>,
    events: EventBus,
    trash_lock: Mutex<()>,
    backoff: restart::Backoff,
    log_defaults: crate::logconfig::LogDefaults,
    default_ulimits: std::sync::RwLock<Vec<berth_runtime::Ulimit>>,
    execs: exec::Execs,
    health: health::HealthMonitors,
}

impl ContainerService {
    /// Replaces the daemon's default ulimits (a configuration reload); containers started from
    /// now on get them.
    pub fn set_default_ulimits(&self, ulimits: Vec<berth_runtime::Ulimit>) {
        match self.default_ulimits.write() {
            Ok(mut u) => *u = ulimits,
            Err(poisoned) => *poisoned.into_inner() = ulimits,
        }
    }

    fn default_ulimits(&self) -> Vec<berth_runtime::Ulimit> {
        match self.default_ulimits.read() {
            Ok(u) => u.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Opens the state under `cfg.data_root` and reconciles it with what runs: records are loaded,
    /// running shims re-adopted, leftovers of a crash cleaned (see `reconcile`).
    pub async fn open(cfg: ContainerServiceConfig, deps: ContainerDeps) -> Result<Arc<ContainerService>> {
        let svc = Arc::new(ContainerService {
            containers_dir: cfg.data_root.join("containers"),
            trash_dir: cfg.data_root.join("trash"),
            bundles_dir: cfg.exec_root.join("bundles"),
            shims_dir: cfg.exec_root.join("shims"),
            runtimes: cfg.runtimes,
            id_map: cfg.id_map,
            registry: deps.registry,
            images: deps.images,
            snapshots: deps.snapshots,
            networks: deps.networks,
            volumes: deps.volumes,
            events: deps.events,
            trash_lock: Mutex::new(()),
            backoff: restart::Backoff::default(),
            log_defaults: cfg.log_defaults,
            default_ulimits: std::sync::RwLock::new(cfg.default_ulimits),
            execs: Default::default(),
            health: Default::default(),
        });
        for d in [&svc.containers_dir, &svc.trash_dir, &svc.shims_dir, &svc.bundles_dir] {
            mkdir_all(d)?;
        }
        svc.reconcile().await?;
        svc.restart_on_boot();
        Ok(svc)
    }

    /// The registry of containers.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Resolves a container by full ID, name, or unique ID prefix (Docker's rules).
    pub fn lookup(&self, name_or_id: &str) -> Result<Arc<Container>> {
        self.registry.lookup(name_or_id)
    }

    /// A container object for a record.
    fn container(&self, dir: PathBuf, rec: ContainerRecord) -> Arc<Container> {
        let bundle = self.bundles_dir.join(&rec.id);
        let socket = self.shim_socket(&rec.id);
        Container::new(dir, bundle, socket, rec)
    }

    /// The shim's control socket (short: unix socket paths are limited to 108 bytes).
    fn shim_socket(&self, id: &str) -> PathBuf {
        self.shims_dir.join(format!("{}.sock", berth_types::short_id(id)))
    }

    /// Publishes a container event with Docker's attributes (name, image, labels).
    fn publish(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let rec = c.record();
        let mut e = Event::new(EventType::Container, action, &c.id)
            .attrs(rec.config.labels.iter().flatten())
            .attr("name", rec.name.clone())
            .attr("image", rec.config.image.clone().unwrap_or_default());
        for (k, v) in extra {
            e = e.attr(*k, v.clone());
        }
        self.events.publish(e);
    }
}

/// Creates `p` and its parents.
pub(crate) fn mkdir_all(p: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| EngineError::io("creating", p, e))
}

/// Runs blocking work (file system, snapshotter) off the async executor.
impl ContainerService {
    /// Releases what the container's run holds on its networks, off the executor.
    pub(crate) async fn teardown_network(&self, id: &str) {
        let (nets, id) = (self.networks.clone(), id.to_string());
        let _ = tokio::task::spawn_blocking(move || nets.teardown(&id)).await;
    }
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("container task failed: {e}")))?
}
