//! The containers the engine knows, by ID and by name: each [`Container`] holds its record, its
//! run observers and the lock that serialises its lifecycle operations.

use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::state::{Status, Transition};
use crate::{lock, read_lock, write_lock};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
    pub finished: Option<Instant>,
}

/// A client waiting to be attached when the container next starts.
pub(crate) struct PendingAttach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub reply: tokio::sync::oneshot::Sender<Result<crate::containers::AttachStream>>,
}

/// The part of a container that changes, behind one short-lived lock (never held across an await).
pub(crate) struct Inner {
    /// The record, as last changed.
    pub rec: ContainerRecord,
    /// Attach requests waiting for the next start; `accepting` is false while the container runs.
    pub accepting_attaches: bool,
    pub pending_attaches: Vec<PendingAttach>,
    /// `next-exit` waiters registered now (a run started for attached clients with none of them
    /// leaves its exit claimable by one late waiter).
    pub next_exit_waiters: usize,
    /// The current run's exit may be claimed late.
    pub late_wait_ok: bool,
}

/// One container known to the engine.
pub struct Container {
    /// Full ID.
    pub id: String,
    /// `<data-root>/containers/<id>`.
    pub(crate) dir: PathBuf,
    /// `<exec-root>/bundles/<id>`: the OCI bundle of the current run (on tmpfs, rewritten at every start).
    pub(crate) bundle: PathBuf,
    /// The shim's control socket.
    pub(crate) socket: PathBuf,
    pub(crate) inner: Mutex<Inner>,
    /// Serialises lifecycle operations (start, stop, remove); held across awaits.
    pub(crate) op: Arc<tokio::sync::Mutex<()>>,
    /// Run observers (wait, logs -f, stop).
    pub(crate) events: watch::Sender<RunEvent>,
    /// Serialises record saves so the file ends with the latest state.
    save_lock: Mutex<()>,
}

impl Container {
    pub(crate) fn new(dir: PathBuf, bundle: PathBuf, socket: PathBuf, rec: ContainerRecord) -> Arc<Container> {
        let running = rec.state.status == Status::Running;
        let (events, _) = watch::channel(RunEvent {
            running,
            exit_code: rec.state.exit_code,
            ..Default::default()
        });
        Arc::new(Container {
            id: rec.id.clone(),
            dir,
            bundle,
            socket,
            inner: Mutex::new(Inner {
                rec,
                accepting_attaches: !running,
                pending_attaches: Vec::new(),
                next_exit_waiters: 0,
                late_wait_ok: false,
            }),
            op: Arc::new(tokio::sync::Mutex::new(())),
            events,
            save_lock: Mutex::new(()),
        })
    }

    /// A copy of the current record.
    pub fn record(&self) -> ContainerRecord {
        lock(&self.inner).rec.clone()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        lock(&self.inner).rec.state.status
    }

    /// Moves the state machine and changes the record with `f` in one step, or refuses the move.
    /// In memory only: the caller persists with [`Container::save`] or [`Container::save_later`].
    pub(crate) fn transition(&self, t: Transition, f: impl FnOnce(&mut ContainerRecord)) -> Result<()> {
        let mut inner = lock(&self.inner);
        let next = inner.rec.state.status.apply(t, &self.id, &inner.rec.name)?;
        inner.rec.state.status = next;
        f(&mut inner.rec);
        Ok(())
    }

    /// Changes the record in memory.
    pub(crate) fn modify<T>(&self, f: impl FnOnce(&mut ContainerRecord) -> T) -> T {
        f(&mut lock(&self.inner).rec)
    }

    /// Writes the record durably before returning: for changes the API answers.
    pub(crate) async fn save(self: &Arc<Self>) -> Result<()> {
        let c = self.clone();
        tokio::task::spawn_blocking(move || c.persist()).await.map_err(|e| {
            EngineError::Internal(format!("saving the record of {}: {e}", berth_types::short_id(&self.id)))
        })?
    }

    /// Writes the record in the background: only for changes a restarted daemon recovers from the
    /// shim (a start: the shim runs; an exit: the shim's `exit.json`), so `run` stays fast.
    pub(crate) fn save_later(self: &Arc<Self>) {
        let c = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = c.persist() {
                tracing::warn!("{e}");
            }
        });
    }

    /// Moves the container's directory to `to` (the trash) under the save lock, so a save running in
    /// the background either finishes before the move or finds the directory gone and writes nothing
    /// (no warning, no half-written file in the trash, no directory made again).
    pub(crate) fn retire_dir(&self, to: &std::path::Path) -> std::io::Result<()> {
        let _serial = lock(&self.save_lock);
        std::fs::rename(&self.dir, to)
    }

    /// Writes the current record. A removed container (its directory moved to the trash) is not
    /// written again.
    fn persist(&self) -> Result<()> {
        let _serial = lock(&self.save_lock);
        let rec = self.record();
        if rec.state.status == Status::Removing || !self.dir.exists() {
            return Ok(());
        }
        rec.save(&self.dir)
    }
}

/// The last words of a removed container, for `wait` requests that arrive after `--rm` removed it.
struct Tombstone {
    id: String,
    name: String,
    exit_code: i64,
    error: Option<String>,
    at: Instant,
}

/// Containers by ID, their names, and the tombstones of recently removed ones.
#[derive(Default)]
pub struct Registry {
    containers: RwLock<HashMap<String, Arc<Container>>>,
    names: Mutex<HashMap<String, String>>,
    removed: Mutex<VecDeque<Tombstone>>,
}

/// Docker's conflict message for a name in use.
fn name_in_use(name: &str, other: &str) -> EngineError {
    EngineError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

fn check_name(n: &str) -> Result<()> {
    if berth_types::is_valid_container_name(n) {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

impl Registry {
    /// Adds a container whose name is already reserved (or, at load, reserves it).
    pub(crate) fn insert(&self, c: Arc<Container>) {
        lock(&self.names).insert(c.record().name, c.id.clone());
        write_lock(&self.containers).insert(c.id.clone(), c);
    }

    /// Forgets a container and frees its name; keeps its last exit for late `wait`s.
    pub(crate) fn remove(&self, c: &Container) {
        let rec = c.record();
        write_lock(&self.containers).remove(&c.id);
        lock(&self.names).remove(&rec.name);
        let mut t = lock(&self.removed);
        t.push_back(Tombstone {
            id: c.id.clone(),
            name: rec.name,
            exit_code: rec.state.exit_code,
            error: c.events.borrow().error.clone(),
            at: Instant::now(),
        });
        while t.len() > 256 {
            t.pop_front();
        }
    }

    /// Reserves `name` (or a generated one) for container `id`.
    pub(crate) fn reserve_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        let mut names = lock(&self.names);
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                check_name(n)?;
                let n = n.strip_prefix('/').unwrap_or(n).to_string();
                if let Some(other) = names.get(&n) {
                    return Err(name_in_use(&n, other));
                }
                names.insert(n.clone(), id.to_string());
                Ok(n)
            }
            None => {
                for retry in 0..20 {
                    let n = crate::names::random_name(retry);
                    if !names.contains_key(&n) {
                        names.insert(n.clone(), id.to_string());
                        return Ok(n);
                    }
                }
                let n = format!("berth_{}", berth_types::short_id(id));
                names.insert(n.clone(), id.to_string());
                Ok(n)
            }
        }
    }

    /// Frees a reserved name (a create that failed).
    pub(crate) fn release_name(&self, name: &str) {
        lock(&self.names).remove(name);
    }

    /// Moves container `id` from `old` to `new` (Docker's rename rules and messages).
    pub(crate) fn rename(&self, id: &str, old: &str, new: &str) -> Result<()> {
        check_name(new)?;
        if old == new {
            return Err(EngineError::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        let mut names = lock(&self.names);
        if let Some(other) = names.get(new) {
            return Err(name_in_use(new, other));
        }
        names.remove(old);
        names.insert(new.to_string(), id.to_string());
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

    /// Whether a container with this full ID is known.
    pub(crate) fn contains(&self, id: &str) -> bool {
        read_lock(&self.containers).contains_key(id)
    }

    /// All containers, newest first.
    pub fn all(&self) -> Vec<Arc<Container>> {
        let mut v: Vec<_> = read_lock(&self.containers).values().cloned().collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.record().created));
        v
    }

    /// The last exit of a container removed in the last 30 seconds, by ID, prefix or name.
    pub(crate) fn tombstone(&self, name: &str) -> Option<(i64, Option<String>)> {
        let key = name.strip_prefix('/').unwrap_or(name);
        let mut t = lock(&self.removed);
        t.retain(|x| x.at.elapsed() < Duration::from_secs(30));
        t.iter()
            .rev()
            .find(|x| x.id == key || x.name == key || (key.len() >= 4 && x.id.starts_with(key)))
            .map(|x| (x.exit_code, x.error.clone()))
    }

    /// Number of containers per state (running, paused, stopped) for `/info`.
    pub fn counts(&self) -> (i64, i64, i64) {
        let mut counts = (0, 0, 0);
        for c in read_lock(&self.containers).values() {
            match c.status() {
                Status::Running | Status::Restarting => counts.0 += 1,
                Status::Paused => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }
}

/// The image service asks which container uses an image before deleting it.
impl crate::images::ImageUsers for Registry {
    fn container_using(&self, image_id: &str) -> Option<String> {
        read_lock(&self.containers)
            .values()
            .find(|c| c.record().image == image_id)
            .map(|c| c.id.clone())
    }

    fn containers_using(&self, image_id: &str) -> usize {
        read_lock(&self.containers)
            .values()
            .filter(|c| c.record().image == image_id)
            .count()
    }

    fn snapshots_in_use(&self) -> Vec<berth_types::ChainId> {
        read_lock(&self.containers)
            .values()
            .flat_map(|c| c.record().chain_ids.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: "c".into(),
            created: berth_types::time::now_rfc3339(),
            path: "sh".into(),
            args: Vec::new(),
            config: Default::default(),
            host_config: Default::default(),
            image: String::new(),
            chain_ids: Vec::new(),
            state: Default::default(),
            restart_count: 0,
            networks: Default::default(),
            mounts: Vec::new(),
            log_path: String::new(),
            runtime: String::new(),
        }
    }

    #[test]
    fn saves_racing_a_removal_write_nothing_and_make_no_directory() {
        let root = std::env::temp_dir().join(format!("berth-registry-{}", berth_types::new_id()));
        for round in 0..50 {
            let dir = root.join(format!("c{round}"));
            let trash = root.join(format!("trash{round}"));
            std::fs::create_dir_all(&dir).unwrap();
            let c = Container::new(
                dir.clone(),
                root.join("b"),
                root.join("s"),
                record(&format!("id{round}")),
            );
            let savers: Vec<_> = (0..4)
                .map(|_| {
                    let c = c.clone();
                    std::thread::spawn(move || (0..5).map(|_| c.persist()).collect::<Vec<_>>())
                })
                .collect();
            c.retire_dir(&trash).unwrap();
            for s in savers {
                for r in s.join().unwrap() {
                    assert!(r.is_ok(), "a save racing the removal failed: {r:?}");
                }
            }
            assert!(!dir.exists(), "a save made the removed directory again");
            // Nothing half-written was left beside the record in the trash.
            for e in std::fs::read_dir(&trash).unwrap().flatten() {
                assert_eq!(e.file_name(), "config.v2.json");
            }
            assert!(c.persist().is_ok());
            assert!(!dir.exists());
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
