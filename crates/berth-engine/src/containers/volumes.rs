//! A container's mounts: read at create (`-v`, `--mount`, `--tmpfs`, `VOLUME`, `--volumes-from`),
//! and made ready at each start, with Docker's copy-up of the image's content into new volumes.

use super::{blocking, ContainerService};
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::volume::spec::{self, MountKind, MountPoint, MountRequest};
use crate::volume::{RunMounts, Volumes};
use berth_api::models::{ContainerConfig, HostConfig};

impl ContainerService {
    /// The container's mount points from its create request (volumes not created yet).
    pub(crate) fn mount_points(&self, config: &ContainerConfig, hc: &HostConfig) -> Result<Vec<MountPoint>> {
        let mut from = Vec::new();
        for f in hc.volumes_from.clone().unwrap_or_default() {
            let (name, ro) = spec::parse_volumes_from(&f)?;
            let other = self.lookup(&name)?.record();
            for mut m in other.mounts.into_iter().filter(|m| m.kind != MountKind::Tmpfs) {
                if let Some(ro) = ro {
                    m.rw = !ro;
                    m.mode = if ro { "ro".into() } else { "rw".into() };
                }
                // Borrowed volumes belong to their container: never removed with this one.
                m.anonymous = false;
                m.copy = false;
                from.push(m);
            }
        }
        let mut volumes: Vec<String> = config
            .volumes
            .as_ref()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        volumes.sort();
        let req = MountRequest {
            binds: hc.binds.as_deref().unwrap_or_default(),
            mounts: hc.mounts.as_deref().unwrap_or_default(),
            tmpfs: hc.tmpfs.as_ref(),
            volumes,
            from,
            volume_driver: hc.volume_driver.as_deref(),
        };
        spec::plan(&req)
    }

    /// Fills the container's new, empty volumes with the image's content at their destination
    /// (Docker does it at create, and again at start for a volume still empty).
    pub(crate) async fn copy_up_volumes(&self, rec: &ContainerRecord, points: &[MountPoint]) -> Result<()> {
        let copies = self.volumes.needs_copy(points);
        if copies.is_empty() {
            return Ok(());
        }
        let (snapshots, vols, r) = (self.snapshots.clone(), self.volumes.clone(), rec.clone());
        let view_dir = self.shims_dir.with_file_name("copyup").join(&rec.id);
        blocking(move || copy_up(&snapshots, &vols, &view_dir, &r, &copies)).await
    }

    /// The mounts of the next run: new volumes are first filled from the image (copy-up), then
    /// everything is made ready for the runtime.
    pub(crate) async fn run_mounts(&self, rec: &ContainerRecord) -> Result<RunMounts> {
        // Records from before mounts were kept: their binds, read again.
        let points = if rec.mounts.is_empty() && rec.host_config.binds.as_ref().is_some_and(|b| !b.is_empty()) {
            self.mount_points(&rec.config, &rec.host_config)?
                .into_iter()
                .filter(|m| m.kind == MountKind::Bind)
                .collect()
        } else {
            rec.mounts.clone()
        };
        self.copy_up_volumes(rec, &points).await?;
        let (vols, id) = (self.volumes.clone(), rec.id.clone());
        blocking(move || vols.mounts(&id, &points)).await
    }
}

/// Fills each `(volume, container path)` from the container's file system as it is before its
/// run: a read-only overlay of its writable layer over the image's layers, mounted on a private
/// directory for the copy and unmounted after.
fn copy_up(
    snapshots: &berth_snapshot::Snapshotter,
    volumes: &Volumes,
    view_dir: &std::path::Path,
    rec: &ContainerRecord,
    copies: &[(String, String)],
) -> Result<()> {
    let mut lowers = Vec::new();
    if let Some(rw) = snapshots.rw_layer(&rec.id) {
        lowers.push(rw.upper);
    }
    let mut image = snapshots.lower_dirs(&rec.chain_ids)?;
    lowers.append(&mut image);
    std::fs::create_dir_all(view_dir).map_err(|e| EngineError::io("creating", view_dir, e))?;
    let root = match lowers.as_slice() {
        [] => return Ok(()),
        // One layer is its own view.
        [one] => one.clone(),
        _ => {
            let opts = berth_snapshot::lowerdir_option(&lowers);
            nix::mount::mount(
                Some("overlay"),
                view_dir,
                Some("overlay"),
                nix::mount::MsFlags::MS_RDONLY,
                Some(opts.as_str()),
            )
            .map_err(|e| EngineError::Internal(format!("mounting the image for a volume copy: {e}")))?;
            view_dir.to_path_buf()
        }
    };
    let mut result = Ok(());
    for (name, dest) in copies {
        let src = match safe_join(&root, dest) {
            Some(p) => p,
            None => continue,
        };
        if let Err(e) = volumes.fill(name, &src) {
            result = Err(e);
            break;
        }
    }
    if root == view_dir {
        let _ = nix::mount::umount2(view_dir, nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = std::fs::remove_dir(view_dir);
    result
}

/// `root` + a container path, resolved component by component without leaving `root`: a symlink in
/// the image that points outside makes the copy-up skip that mount (Docker copies nothing there).
fn safe_join(root: &std::path::Path, path: &str) -> Option<std::path::PathBuf> {
    let mut cur = root.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return None;
        }
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return None,
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    Some(cur)
}
