//! Remove, prune and rename. A removal moves the container's directory to the trash in one rename
//! before it answers (so it survives a crash), then deletes it and the writable layer in the
//! background: deleting is slow on some disks (online discard) and `run --rm` waits for the removal.
//! The trash is emptied again at the next start if the daemon dies first.

use super::lifecycle::wait_not_running;
use super::ContainerService;
use crate::error::{EngineError, Result};
use crate::events::{Event, EventType};
use crate::filters::{check_keys, created_before, prune_labels_match, prune_until, Filters};
use crate::shim;
use crate::state::{Status, Transition};
use berth_shim::protocol::Request;
use std::sync::Arc;
use std::time::Duration;

impl ContainerService {
    /// `DELETE /containers/{id}`; `volumes` (`rm -v`, and `--rm`) removes its anonymous volumes too.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        if force && rec.state.status.is_running() {
            let mut rx = c.events.subscribe();
            c.modify(|r| r.state.stopped_by_user = true);
            self.publish(&c, "kill", &[("signal", libc::SIGKILL.to_string())]);
            self.cancel_restart(&c);
            let _ = shim::simple(&c.id, &c.socket, Request::Kill { signal: libc::SIGKILL }).await;
            self.thaw_if_paused(&c).await;
            if tokio::time::timeout(Duration::from_secs(15), wait_not_running(&mut rx))
                .await
                .is_err()
            {
                return Err(EngineError::Internal(format!(
                    "could not kill running container {}, cannot remove",
                    c.id
                )));
            }
        }
        c.transition(Transition::Remove, |_| {})?;
        self.fail_pending_attaches(&c, "the container is being removed");
        let trash = self.trash_dir.join(&c.id);
        if let Err(e) = c.retire_dir(&trash) {
            let _ = c.transition(Transition::RemoveFailed, |_| {});
            return Err(EngineError::io("moving to the trash", &c.dir, e));
        }
        let _ = std::fs::remove_dir_all(&c.bundle);
        let _ = std::fs::remove_file(&c.socket);
        self.teardown_network(&c.id).await;
        self.volumes.release(&c.id, &rec.mounts, volumes);
        let svc = self.clone();
        tokio::task::spawn_blocking(move || svc.empty_trash());
        self.registry.remove(&c);
        self.backoff.forget(&c.id);
        c.mark_removed();
        self.publish(&c, "destroy", &[]);
        Ok(())
    }

    /// Deletes what the trash holds: each entry is a removed container's directory, named by its ID,
    /// whose writable layer goes with it.
    pub(crate) fn empty_trash(&self) {
        let _serial = crate::lock(&self.trash_lock);
        let Ok(entries) = std::fs::read_dir(&self.trash_dir) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Err(err) = self.snapshots.remove_rw(&id) {
                tracing::warn!("removing the writable layer of {id}: {err}");
                continue;
            }
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                tracing::warn!("removing {}: {err}", e.path().display());
            }
        }
    }

    /// `POST /containers/prune`: removes stopped containers that pass `label`, `label!` and `until`
    /// (an unknown filter is a 400); returns their IDs and the bytes of their writable layers.
    pub async fn prune(self: &Arc<Self>, filters: &Filters) -> Result<(Vec<String>, u64)> {
        check_keys(filters, &["label", "label!", "until"])?;
        let until = prune_until(filters)?;
        let mut removed = Vec::new();
        let mut space = 0;
        for c in self.registry.all() {
            let rec = c.record();
            if !matches!(rec.state.status, Status::Exited | Status::Created | Status::Dead)
                || !prune_labels_match(filters, &rec.config.labels.clone().unwrap_or_default())
                || !created_before(&rec.created, until)
            {
                continue;
            }
            let size = self.snapshots.rw_usage(&c.id);
            if self.remove(&c.id, false, false).await.is_ok() {
                removed.push(c.id.clone());
                space += size;
            }
        }
        // dockerd announces a prune with what it reclaimed.
        self.events
            .publish(Event::new(EventType::Container, "prune", "").attr("reclaimed", space.to_string()));
        Ok((removed, space))
    }

    /// `POST /containers/{id}/rename`: durable before it answers.
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        let old = c.record().name;
        self.registry.rename(&c.id, &old, new_name)?;
        c.modify(|r| r.name = new_name.to_string());
        if let Err(e) = c.save().await {
            // Not on disk: undo, so what the daemon says matches what a restart would load.
            c.modify(|r| r.name = old.clone());
            let _ = self.registry.rename(&c.id, new_name, &old);
            return Err(e);
        }
        let (nets, id, new) = (self.networks.clone(), c.id.clone(), new_name.to_string());
        let old_dns = old.clone();
        let _ = tokio::task::spawn_blocking(move || nets.rename(&id, &old_dns, &new)).await;
        self.publish(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}
