//! The daemon's core: the container and image services that the API server calls. It ties the image
//! store, the snapshotter, the runtime (OCI spec) and the per-container shims together.
//!
//! Concurrency: each container has a short-lived `std::sync::Mutex` around its record (never held
//! across an await) and a `tokio::sync::Mutex` that serialises lifecycle operations (start, stop,
//! remove). Exits are observed by one monitor task per running container, which talks to the shim.

mod containers;
mod error;
mod images;
mod inspect;
mod logs;
mod names;
mod record;
mod shim;
mod spec;
mod system;

pub use containers::{AttachStream, AttachTicket, BoxFuture, ListOptions, WaitCondition};
pub use error::{EngineError, Result};
pub use images::{ImportOptions, LoadOutput};
pub use logs::{LogFrame, LogOptions, LogStream};
pub use record::{ContainerRecord, State, Status};

use berth_snapshot::Snapshotter;
use berth_store::ImageStore;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// Where the engine keeps its state and which helpers it runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (`/var/lib/berth`).
    pub data_root: PathBuf,
    /// Runtime state: sockets (`/run/berth`).
    pub exec_root: PathBuf,
    /// The `berth-shim` binary.
    pub shim_path: PathBuf,
    /// The static init bind-mounted for `--init` (tini-static, as Docker's docker-init), if available.
    pub init_path: Option<PathBuf>,
    /// External OCI runtimes by name (`runc` -> `/usr/sbin/runc`).
    pub runtimes: HashMap<String, PathBuf>,
    /// `--userns-remap`: containers run in a user namespace with this mapping and image layers are
    /// unpacked shifted into it (`data_root` is then the remapped root, `<data-root>/<uid>.<gid>`).
    pub id_map: Option<berth_types::userns::IdentityMapping>,
}

/// What waiters can observe about a container's runs.
#[derive(Debug, Clone, Default)]
pub struct RunEvent {
    /// The init process runs.
    pub running: bool,
    /// How many runs have ended since the engine loaded the container.
    pub exits: u64,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// The container has been removed.
    pub removed: bool,
    /// Error of the last run, if any.
    pub error: Option<String>,
    /// The last exit may be claimed by one late `next-exit` waiter (see `prepare_wait`).
    pub claimable: bool,
    /// When the last run ended.
    pub finished: Option<std::time::Instant>,
}

/// Attach requests waiting for the next start; `accepting` is false while the container runs.
pub(crate) struct PendingAttaches {
    pub accepting: bool,
    pub list: Vec<PendingAttach>,
}

/// The last words of a removed container, for `wait` requests that arrive after `--rm` removed it.
pub(crate) struct Tombstone {
    pub id: String,
    pub name: String,
    pub exit_code: i64,
    pub error: Option<String>,
    pub at: std::time::Instant,
}

/// A client waiting to be attached when the container next starts.
pub(crate) struct PendingAttach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub reply: tokio::sync::oneshot::Sender<Result<AttachStream>>,
}

/// One container known to the engine.
pub struct Container {
    /// Full ID.
    pub id: String,
    dir: PathBuf,
    bundle_dir: PathBuf,
    rec: Mutex<ContainerRecord>,
    op: tokio::sync::Mutex<()>,
    events: watch::Sender<RunEvent>,
    pending_attach: Mutex<PendingAttaches>,
    next_exit_waiters: std::sync::atomic::AtomicUsize,
    late_wait_ok: std::sync::atomic::AtomicBool,
    save_lock: Mutex<()>,
}

impl Container {
    fn new(dir: PathBuf, bundle_dir: PathBuf, rec: ContainerRecord) -> Arc<Container> {
        let running = rec.state.status == Status::Running;
        let (events, _) = watch::channel(RunEvent {
            running,
            exit_code: rec.state.exit_code,
            ..Default::default()
        });
        Arc::new(Container {
            id: rec.id.clone(),
            dir,
            bundle_dir,
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            events,
            pending_attach: Mutex::new(PendingAttaches {
                accepting: !running,
                list: Vec::new(),
            }),
            next_exit_waiters: std::sync::atomic::AtomicUsize::new(0),
            late_wait_ok: std::sync::atomic::AtomicBool::new(false),
            save_lock: Mutex::new(()),
        })
    }

    /// A copy of the current record.
    pub fn record(&self) -> ContainerRecord {
        lock(&self.rec).clone()
    }

    /// Changes the record and persists it in the background.
    ///
    /// Saves are serialised and each writes the record as it is when the save runs, so the file
    /// always ends with the latest state. What a crash could lose is recovered at the next start:
    /// a running container from its shim, an exit from the `exit.json` the shim wrote durably.
    fn update<T>(self: &Arc<Self>, f: impl FnOnce(&mut ContainerRecord) -> T) -> Result<T> {
        let out = f(&mut lock(&self.rec));
        let c = self.clone();
        tokio::task::spawn_blocking(move || c.persist());
        Ok(out)
    }

    /// Changes the record in memory only (for states a restart never needs to see).
    fn update_in_memory<T>(&self, f: impl FnOnce(&mut ContainerRecord) -> T) -> T {
        f(&mut lock(&self.rec))
    }

    /// Writes the current record to disk.
    fn persist(&self) {
        let _serial = lock(&self.save_lock);
        let rec = self.record();
        if rec.state.status == Status::Removing || !self.dir.exists() {
            return;
        }
        if let Err(e) = rec.save(&self.dir) {
            tracing::warn!("saving the record of container {}: {e}", self.id);
        }
    }

    /// The OCI bundle of the current run. It lives under the exec root (tmpfs on a normal host, as
    /// containerd keeps its bundles) because it is rewritten at every start.
    fn bundle(&self) -> PathBuf {
        self.bundle_dir.clone()
    }
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it (the data is plain state).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The engine.
pub struct Engine {
    cfg: EngineConfig,
    images: Arc<ImageStore>,
    snapshots: Arc<Snapshotter>,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    names: Mutex<HashMap<String, String>>,
    removed: Mutex<std::collections::VecDeque<Tombstone>>,
    trash_lock: Mutex<()>,
    started: std::time::Instant,
}

impl Engine {
    /// Opens the state under `cfg.data_root`, loads the container records and re-adopts running
    /// containers whose shims are still alive.
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
        for d in [
            cfg.data_root.join("containers"),
            cfg.data_root.join("trash"),
            cfg.exec_root.join("shims"),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| EngineError::io("creating", &d, e))?;
        }
        let snapshots = Arc::new(Snapshotter::open_with_idmap(
            &cfg.data_root.join("snapshots"),
            cfg.id_map.clone(),
        )?);
        let images = Arc::new(ImageStore::open(&cfg.data_root.join("image"), (*snapshots).clone())?);
        let engine = Arc::new(Engine {
            cfg,
            images,
            snapshots,
            containers: RwLock::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            removed: Mutex::new(std::collections::VecDeque::new()),
            trash_lock: Mutex::new(()),
            started: std::time::Instant::now(),
        });
        engine.reconcile().await?;
        // Bundles of containers that no longer exist (removed while the daemon died half-way).
        if let Ok(entries) = std::fs::read_dir(engine.cfg.exec_root.join("bundles")) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !read_lock(&engine.containers).contains_key(&id) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let e = engine.clone();
        tokio::task::spawn_blocking(move || e.empty_trash());
        Ok(engine)
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    fn containers_dir(&self) -> PathBuf {
        self.cfg.data_root.join("containers")
    }

    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("bundles").join(id)
    }

    fn shim_socket(&self, id: &str) -> PathBuf {
        self.cfg
            .exec_root
            .join("shims")
            .join(format!("{}.sock", berth_types::short_id(id)))
    }

    /// Loads every container record; re-adopts running ones, settles the ones that ended meanwhile.
    async fn reconcile(self: &Arc<Self>) -> Result<()> {
        let dir = self.containers_dir();
        let entries = std::fs::read_dir(&dir).map_err(|e| EngineError::io("listing", &dir, e))?;
        for entry in entries.flatten() {
            let cdir = entry.path();
            let rec = match ContainerRecord::load(&cdir) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("skipping container directory {}: {e}", cdir.display());
                    continue;
                }
            };
            let bundle = self.bundle_dir(&rec.id);
            let c = Container::new(cdir, bundle, rec);
            lock(&self.names).insert(c.record().name.clone(), c.id.clone());
            write_lock(&self.containers).insert(c.id.clone(), c.clone());
            let status = c.record().state.status;
            if matches!(status, Status::Running | Status::Paused | Status::Restarting) {
                let socket = self.shim_socket(&c.id);
                let alive = shim::simple(&c.id, &socket, berth_shim::protocol::Request::State)
                    .await
                    .is_ok();
                if alive {
                    tracing::info!("re-adopted running container {}", berth_types::short_id(&c.id));
                    self.spawn_monitor(c.clone());
                } else {
                    let st = containers::read_exit_file(&c.bundle());
                    tracing::info!(
                        "container {} ended while the daemon was away",
                        berth_types::short_id(&c.id)
                    );
                    self.on_exit(c.clone(), st).await;
                }
            }
        }
        Ok(())
    }

    /// Resolves a container by full ID, name, or unique ID prefix (Docker's rules).
    pub fn lookup(&self, name_or_id: &str) -> Result<Arc<Container>> {
        let key = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        let containers = read_lock(&self.containers);
        if let Some(c) = containers.get(key) {
            return Ok(c.clone());
        }
        if let Some(id) = lock(&self.names).get(key) {
            if let Some(c) = containers.get(id) {
                return Ok(c.clone());
            }
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = containers.values().filter(|c| c.id.starts_with(key));
            if let Some(c) = found.next() {
                if found.next().is_some() {
                    return Err(EngineError::Ambiguous(key.to_string()));
                }
                return Ok(c.clone());
            }
        }
        Err(EngineError::NoSuchContainer(name_or_id.to_string()))
    }

    /// All containers, newest first.
    pub fn all_containers(&self) -> Vec<Arc<Container>> {
        let mut v: Vec<_> = read_lock(&self.containers).values().cloned().collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.record().created));
        v
    }

    /// The ID of a container using image `image_id`, if any (for `rmi`).
    fn container_using_image(&self, image_id: &str) -> Option<String> {
        read_lock(&self.containers)
            .values()
            .find(|c| c.record().image == image_id)
            .map(|c| c.id.clone())
    }
}

pub(crate) fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Creates `p` and its parents.
pub(crate) fn mkdir_all(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| EngineError::io("creating", p, e))
}
