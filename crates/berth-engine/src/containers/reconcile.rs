//! Start-up reconciliation: what berthd finds on disk and running is made to agree with its
//! records, whatever moment a crash (kill -9) of the previous daemon interrupted.
//!
//! - A container directory without a committed record (a crash inside `create`) is removed with its
//!   writable layer; temporary files of interrupted writes are removed.
//! - A container whose shim answers and has started its process runs: it is re-adopted as running,
//!   even if the record of the start never reached the disk.
//! - A shim that never started its process (a crash inside `start`) is stopped and its bundle
//!   removed: the container stays as its record says.
//! - A running container whose shim is gone ended while the daemon was away: its exit comes from
//!   the shim's `exit.json`. A created container whose bundle holds an `exit.json` newer than its
//!   record ran and ended: both are recorded.
//! - Shims, writable layers and bundles of containers that have no record are stopped and removed.
//! - Stopped `--rm` containers are removed, and the trash is emptied.

use super::lifecycle::{lost_exit, read_exit_file};
use super::ContainerService;
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::shim;
use crate::state::{Status, Transition};
use std::collections::HashSet;
use std::sync::Arc;

const RECORD: &str = "config.v2.json";

impl ContainerService {
    pub(crate) async fn reconcile(self: &Arc<Self>) -> Result<()> {
        self.load_records()?;
        self.networks.preload();
        let mut sockets = HashSet::new();
        for c in self.registry.all() {
            sockets.insert(c.socket.clone());
            let status = c.status();
            match shim::state(&c.id, &c.socket).await {
                Some(st) if st.started && !st.running => {
                    // It ran and just ended: the shim is finishing. Record the run and its exit.
                    let exit = match shim::wait(&c.id, &c.socket).await {
                        Ok(Some(exit)) => exit,
                        _ => read_exit_file(&c.bundle).unwrap_or_else(lost_exit),
                    };
                    if !status.is_running() {
                        let _ = c.transition(Transition::Start, |r| r.state.started_at = exit.finished_at.clone());
                    }
                    self.on_exit(c.clone(), exit).await;
                }
                Some(st) if st.started => {
                    tracing::info!("re-adopted running container {}", berth_types::short_id(&c.id));
                    if status.is_running() {
                        c.mark_running();
                        self.spawn_monitor(c.clone());
                    } else {
                        self.adopt(&c, st.pid.unwrap_or(0));
                    }
                }
                Some(_) => {
                    tracing::info!(
                        "stopping the shim of {}: the daemon died before the container started",
                        berth_types::short_id(&c.id)
                    );
                    shim::kill_and_wait(&c.id, &c.socket).await;
                    let _ = std::fs::remove_dir_all(&c.bundle);
                    if status.is_running() {
                        self.on_exit(c.clone(), lost_exit()).await;
                    }
                }
                None if status.is_running() => {
                    tracing::info!(
                        "container {} ended while the daemon was away",
                        berth_types::short_id(&c.id)
                    );
                    let st = read_exit_file(&c.bundle).unwrap_or_else(lost_exit);
                    self.on_exit(c.clone(), st).await;
                }
                None => {
                    // A run whose start was answered but not saved, and which ended meanwhile.
                    let rec = c.record();
                    if let Some(st) = read_exit_file(&c.bundle).filter(|st| st.finished_at > rec.state.finished_at) {
                        let began = c.transition(Transition::Start, |r| {
                            if r.state.started_at.is_empty() {
                                r.state.started_at = st.finished_at.clone();
                            }
                        });
                        if began.is_ok() {
                            self.on_exit(c.clone(), st).await;
                        }
                    } else if rec.host_config.auto_remove.unwrap_or(false) && status != Status::Removing {
                        if let Err(e) = self.remove(&c.id, true, true).await {
                            tracing::warn!("removing --rm container {}: {e}", berth_types::short_id(&c.id));
                        }
                    }
                }
            }
        }
        self.stop_orphan_shims(&sockets).await;
        let live: Vec<(String, i32)> = self
            .registry
            .all()
            .iter()
            .map(|c| c.record())
            .filter(|r| r.state.status.is_running() && r.state.pid > 0)
            .map(|r| (r.id, r.state.pid as i32))
            .collect();
        let nets = self.networks.clone();
        let running: Vec<(String, Vec<crate::volume::spec::MountPoint>)> = self
            .registry
            .all()
            .iter()
            .map(|c| c.record())
            .filter(|r| r.state.status.is_running())
            .map(|r| (r.id, r.mounts))
            .collect();
        let _ = tokio::task::spawn_blocking(move || nets.restore(&live)).await;
        self.volumes.restore(&running);
        self.remove_orphans()?;
        let svc = self.clone();
        tokio::task::spawn_blocking(move || svc.empty_trash());
        Ok(())
    }

    /// Loads every committed record; removes directories a crash left without one.
    fn load_records(&self) -> Result<()> {
        let dir = &self.containers_dir;
        let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io("listing", dir, e))?;
        for entry in entries.flatten() {
            let cdir = entry.path();
            let id = entry.file_name().to_string_lossy().into_owned();
            remove_temp_files(&cdir);
            if !cdir.join(RECORD).exists() {
                tracing::info!("removing {}: its create never completed", cdir.display());
                if let Err(e) = std::fs::remove_dir_all(&cdir) {
                    tracing::warn!("removing {}: {e}", cdir.display());
                }
                if let Err(e) = self.snapshots.remove_rw(&id) {
                    tracing::warn!("removing the writable layer of {id}: {e}");
                }
                continue;
            }
            match ContainerRecord::load(&cdir) {
                Ok(rec) => {
                    self.volumes.register(&rec.id, &rec.mounts);
                    self.registry.insert(self.container(cdir, rec))
                }
                Err(e) => tracing::warn!("skipping container directory {}: {e}", cdir.display()),
            }
        }
        Ok(())
    }

    /// Stops shims that serve no known container.
    async fn stop_orphan_shims(&self, known: &HashSet<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(&self.shims_dir) else {
            return;
        };
        for e in entries.flatten() {
            let socket = e.path();
            if known.contains(&socket) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if shim::state(&name, &socket).await.is_some() {
                tracing::info!("stopping shim {}: no container record", socket.display());
                shim::kill_and_wait(&name, &socket).await;
            }
            let _ = std::fs::remove_file(&socket);
        }
    }

    /// Removes writable layers and bundles that belong to no container (and are not in the trash).
    fn remove_orphans(&self) -> Result<()> {
        let trashed: HashSet<String> = std::fs::read_dir(&self.trash_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for id in self.snapshots.rw_layer_ids()? {
            if !self.registry.contains(&id) && !trashed.contains(&id) {
                tracing::info!("removing the writable layer of unknown container {id}");
                if let Err(e) = self.snapshots.remove_rw(&id) {
                    tracing::warn!("removing the writable layer of {id}: {e}");
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.bundles_dir) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !self.registry.contains(&id) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }
}

/// Removes the temporary files of interrupted atomic writes in a container's directory.
fn remove_temp_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        // Today's temp names, and those of berth versions that wrote `config.v2.tmpNNNN`.
        if berth_types::fs::is_temp_name(&name) || name.starts_with("config.v2.tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
