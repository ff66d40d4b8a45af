//! A container's changes: `GET /containers/{id}/changes` (`docker diff`) read from its writable
//! layer, and `POST /commit` (`docker commit`), which makes them an image layer.
//!
//! The upper dir is walked by fd (`openat(O_NOFOLLOW)`), and the image's layers are asked with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a running container that swaps directories
//! for symlinks meanwhile cannot make the walk list a host directory.

use super::{blocking, ContainerService};
use crate::error::{EngineError, Result};
use crate::events::{Event, EventType};
use crate::registry::Container;
use berth_store::CommitOptions;
use berth_types::Reference;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;

/// One entry of `docker diff`: Kind 0 modified, 1 added, 2 deleted (the Engine API's
/// `FilesystemChange`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemChange {
    /// Absolute path in the container.
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub kind: u8,
}

/// Files the runtime creates in every container as mount points (Docker keeps them in its "init"
/// layer, so they are neither in `docker diff` nor in a commit).
const INIT_PATHS: &[&str] = &[
    "/.dockerenv",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/proc",
    "/sys",
];

/// Parents of [`INIT_PATHS`]: reported as modified only when something else below them changed.
const INIT_PARENTS: &[&str] = &["/etc", "/dev"];

/// Is there a (non-whiteout) entry at `rel` in one of the image layers (`lowers`, top first)?
fn in_lowers(lowers: &[OwnedFd], rel: &[u8]) -> bool {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    for l in lowers {
        match rustix::fs::openat2(
            l,
            rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        ) {
            Ok(fd) => {
                let Ok(st) = rustix::fs::fstat(&fd) else { return false };
                let whiteout = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0;
                return !whiteout;
            }
            Err(rustix::io::Errno::NOENT) => continue,
            // A symlink or a file on the way: the path does not exist as such in this layer.
            Err(_) => return false,
        }
    }
    false
}

fn walk(dir: BorrowedFd<'_>, rel: &[u8], lowers: &[OwnedFd], out: &mut Vec<FilesystemChange>) -> std::io::Result<()> {
    let mut names: Vec<OsString> = Vec::new();
    {
        let mut d = rustix::fs::Dir::read_from(dir)?;
        while let Some(ent) = d.read() {
            let n = ent?.file_name().to_bytes().to_vec();
            if n != b"." && n != b".." {
                names.push(OsString::from_vec(n));
            }
        }
    }
    names.sort();
    for n in names {
        let mut child = rel.to_vec();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(n.as_bytes());
        let path = format!("/{}", String::from_utf8_lossy(&child));
        let st = match rustix::fs::statat(dir, &n, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            out.push(FilesystemChange { path, kind: 2 });
            continue;
        }
        let kind = if in_lowers(lowers, &child) { 0 } else { 1 };
        out.push(FilesystemChange { path, kind });
        if ft == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(dir, &n, flags, Mode::empty()) {
                Ok(sub) => walk(sub.as_fd(), &child, lowers, out)?,
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Drops the runtime's mount points, and `/etc` or `/dev` when nothing else below them changed.
fn without_init_paths(changes: Vec<FilesystemChange>) -> Vec<FilesystemChange> {
    let kept: Vec<FilesystemChange> = changes
        .into_iter()
        .filter(|c| {
            !INIT_PATHS
                .iter()
                .any(|p| c.path == *p || c.path.starts_with(&format!("{p}/")))
        })
        .collect();
    kept.iter()
        .filter(|c| {
            if c.kind != 0 || !INIT_PARENTS.contains(&c.path.as_str()) {
                return true;
            }
            let prefix = format!("{}/", c.path);
            kept.iter().any(|o| o.path.starts_with(&prefix))
        })
        .cloned()
        .collect()
}

/// Options of `POST /commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// `repo` (and `tag`): the new image's name, if any.
    pub repo: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
    /// `comment` (`-m`).
    pub comment: String,
    /// `author` (`-a`).
    pub author: String,
    /// `changes` (`--change`), one instruction each.
    pub changes: Vec<String>,
    /// The request body: a container config whose set fields override the container's.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Freeze a running container while its changes are read (`pause`, default true).
    pub pause: bool,
    /// The builder's commit: `config` is the image's config as it is, not merged with the
    /// container's (whose command is the RUN step's, not the image's).
    pub exact_config: bool,
    /// What the history entry says created the layer, instead of the container's command.
    pub created_by: Option<String>,
    /// `SOURCE_DATE_EPOCH` of a build: the image's creation time, and no file of the layer newer.
    pub source_date_epoch: Option<u64>,
}

/// Seconds since the epoch as RFC 3339 (a build's `SOURCE_DATE_EPOCH`).
pub(crate) fn epoch_rfc3339(secs: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs.min(i64::MAX as u64) as i64, 0)
        .map(berth_types::time::rfc3339)
        .unwrap_or_else(berth_types::time::now_rfc3339)
}

impl ContainerService {
    /// `GET /containers/{id}/changes`.
    pub async fn changes(&self, name: &str) -> Result<Vec<FilesystemChange>> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let snapshots = self.snapshots.clone();
        let id = c.id.clone();
        blocking(move || {
            let rw = snapshots.rw_layer(&id).ok_or_else(|| {
                EngineError::Conflict(format!(
                    "container {} has no writable layer",
                    berth_types::short_id(&id)
                ))
            })?;
            let open_dir = |p: &PathBuf| {
                rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| EngineError::io("opening", p, e.into()))
            };
            let mut lowers = Vec::new();
            if !rec.chain_ids.is_empty() {
                for p in snapshots.lower_dirs(&rec.chain_ids)? {
                    lowers.push(open_dir(&p)?);
                }
            }
            let upper = open_dir(&rw.upper)?;
            let mut out = Vec::new();
            walk(upper.as_fd(), b"", &lowers, &mut out).map_err(|e| EngineError::io("reading", &rw.upper, e))?;
            Ok(without_init_paths(out))
        })
        .await
    }

    /// `POST /commit`: a new image from the container's image and its changes as one layer.
    /// Answers the new image ID.
    pub async fn commit(self: &Arc<Self>, name: &str, req: CommitRequest) -> Result<String> {
        let c = self.lookup(name)?;
        // A consistent layer: the container's processes are frozen while its changes are read.
        let paused = req.pause && c.status() == crate::state::Status::Running;
        if paused {
            self.pause(&c.id).await?;
        }
        let result = self.commit_unpaused(&c, req).await;
        if paused {
            if let Err(e) = self.unpause(&c.id).await {
                tracing::warn!("unpausing {} after the commit: {e}", berth_types::short_id(&c.id));
            }
        }
        result
    }

    async fn commit_unpaused(self: &Arc<Self>, c: &Arc<Container>, req: CommitRequest) -> Result<String> {
        let rec = c.record();
        let tag = match &req.repo {
            Some(repo) if !repo.is_empty() => {
                let full = match &req.tag {
                    Some(t) if !t.is_empty() => format!("{repo}:{t}"),
                    _ => repo.clone(),
                };
                Some(Reference::parse(&full).map_err(|e| EngineError::InvalidArgument(e.to_string()))?)
            }
            _ => None,
        };
        let mut config = match serde_json::to_value(&rec.config) {
            Ok(serde_json::Value::Object(m)) if !req.exact_config => m,
            _ => serde_json::Map::new(),
        };
        // The request's config wins where it sets something; its empty fields keep the container's
        // (dockerd's `merge`), as the docker CLI sends every field.
        for (k, v) in req.config {
            let empty = match &v {
                serde_json::Value::Null => true,
                serde_json::Value::String(s) => s.is_empty(),
                serde_json::Value::Array(a) => a.is_empty(),
                serde_json::Value::Object(o) => o.is_empty(),
                serde_json::Value::Bool(b) => !b,
                serde_json::Value::Number(_) => false,
            };
            if !empty {
                config.insert(k, v);
            }
        }
        let opts = CommitOptions {
            tag,
            config,
            changes: req.changes,
            comment: req.comment.clone(),
            author: req.author,
            created_by: req.created_by.clone().unwrap_or_else(|| rec.command()),
            created: req.source_date_epoch.map(epoch_rfc3339),
        };
        let clamp = req.source_date_epoch;
        let snapshots = self.snapshots.clone();
        let store = self.images.store().clone();
        let dir = self.containers_dir.clone();
        let id = c.id.clone();
        let parent: berth_types::Digest = rec
            .image
            .parse()
            .map_err(|e: berth_types::DigestError| EngineError::Internal(e.to_string()))?;
        let image = blocking(move || {
            // The layer is written to an unnamed temporary file first: the store hashes it as it
            // copies, and nothing is left behind if either side fails.
            let fd = rustix::fs::open(
                &dir,
                OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| EngineError::io("creating a temporary file in", &dir, e.into()))?;
            let mut f = std::fs::File::from(fd);
            let exclude: Vec<&str> = INIT_PATHS.iter().map(|p| p.trim_start_matches('/')).collect();
            let mut w = std::io::BufWriter::new(&mut f);
            snapshots.write_diff_clamped(&id, &mut w, &exclude, clamp)?;
            std::io::Write::flush(&mut w).map_err(|e| EngineError::io("writing the layer in", &dir, e))?;
            drop(w);
            std::io::Seek::rewind(&mut f).map_err(|e| EngineError::io("rewinding", &dir, e))?;
            Ok(store.commit(&parent, std::io::BufReader::new(f), opts)?)
        })
        .await?;
        let image_id = image.id.to_string();
        let mut e = Event::new(EventType::Container, "commit", &c.id)
            .attr("name", rec.name.clone())
            .attr("image", rec.config.image.clone().unwrap_or_default())
            .attr("imageID", image_id.clone());
        if !req.comment.is_empty() {
            e = e.attr("comment", req.comment);
        }
        self.events.publish(e);
        Ok(image_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_paths_are_hidden() {
        let ch = |p: &str, k: u8| FilesystemChange {
            path: p.into(),
            kind: k,
        };
        let got = without_init_paths(vec![
            ch("/dev", 0),
            ch("/dev/pts", 1),
            ch("/etc", 0),
            ch("/etc/hosts", 1),
            ch("/etc/motd", 1),
            ch("/proc", 1),
            ch("/x", 1),
        ]);
        assert_eq!(got, vec![ch("/etc", 0), ch("/etc/motd", 1), ch("/x", 1)]);
    }
}
