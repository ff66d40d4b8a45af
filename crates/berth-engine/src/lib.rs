//! The daemon's core, as services that each own their state and their part of the data root:
//!
//! - [`ContainerService`]: container records (`containers/`), writable layers, bundles and shims,
//!   the lifecycle state machine ([`state`]) and the run plan ([`plan`]);
//! - [`ImageService`]: the image store (`image/`) and the snapshotter's layers;
//! - [`Networks`]: networks (bridge, user-defined, macvlan, ipvlan), a run's addresses, ports and DNS;
//! - [`Volumes`]: volumes (`/volumes`) and a run's mounts (binds, volumes, tmpfs);
//! - [`DistributionService`]: pull, push, login and search against registries;
//! - [`SystemService`]: `/info` and `/version`;
//! - the [`EventBus`] every service publishes Docker-shaped events on.
//!
//! `berthd`'s main builds and wires them (see [`Services`]); the API server calls them. No function
//! takes the whole engine: each service holds only the services it calls.

pub mod build;
mod containers;
pub mod distribution;
mod error;
pub mod events;
pub mod filters;
mod images;
pub mod logconfig;
mod logs;
pub mod metrics;
mod names;
pub mod network;
mod plan;
mod record;
mod registry;
pub mod runtimes;
mod shim;
pub mod state;
pub mod stats;
mod system;
pub mod volume;

pub use build::{BuildOptions, BuildService, Secret};
pub use containers::{
    go_file_mode, human_duration, human_status, parse_signal, AttachStream, AttachTicket, BoxFuture, CommitRequest,
    ContainerDeps, ContainerService, ContainerServiceConfig, ExecTicket, ExtractOptions, FilesystemChange, ListOptions,
    PathStat, TopResult, UpdateConfig, WaitCondition,
};
pub use distribution::{DistributionService, Progress};
pub use error::{EngineError, Result};
pub use events::{Event, EventBus, EventFilter, EventQuery, EventStream, EventType};
pub use images::{ImageService, ImageUsers, ImportOptions, LoadOutput};
pub use logconfig::LogDefaults;
pub use logs::{LogFrame, LogOptions, LogStream};
pub use network::{DefaultBridge, Networks, NetworksConfig};
pub use record::ContainerRecord;
pub use registry::{Container, Registry, RunEvent};
pub use runtimes::Runtimes;
pub use state::{State, Status};
pub use system::{DaemonSettings, SystemService, VERSION};
pub use volume::{RunMounts, Volumes};

use std::sync::{Arc, Mutex, RwLock};

/// The services the API server calls, as `berthd`'s main wired them.
#[derive(Clone)]
pub struct Services {
    /// Containers.
    pub containers: Arc<ContainerService>,
    /// Images.
    pub images: Arc<ImageService>,
    /// Pull, push, login, search.
    pub distribution: Arc<DistributionService>,
    /// `POST /build`.
    pub build: Arc<BuildService>,
    /// `/info`, `/version`.
    pub system: Arc<SystemService>,
    /// Networks.
    pub networks: Arc<Networks>,
    /// Volumes.
    pub volumes: Arc<Volumes>,
    /// The event bus.
    pub events: EventBus,
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it (the data is plain state).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
