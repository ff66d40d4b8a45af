//! A container's files: the archive API (`docker cp`: `HEAD`/`GET`/`PUT /containers/{id}/archive`)
//! and `docker export`.
//!
//! Every path is resolved inside the container's root held as a directory fd, never by a host path:
//! a running container's root is `/proc/<init pid>/root` (its rootfs is mounted only inside its own
//! mount namespace); a stopped container's overlay is mounted *detached* with the new mount API
//! (`fsopen`/`fsconfig`/`fsmount`): the mount is attached to no path on the host, nobody else can
//! reach it, and it goes away when the fd is closed. Resolution below that fd is `openat2` with
//! `RESOLVE_IN_ROOT` (berth-archive), so a symlink in the container pointing at `/`, `../../..` or a
//! host path, even one swapped in while the copy runs, resolves inside the container (the
//! CVE-2018-15664 class).
//!
//! While a stopped container's overlay is mounted its lifecycle lock is held, so it cannot start (and
//! mount the same upper dir) until the copy ends.

use super::{blocking, ContainerService};
use crate::error::{EngineError, Result};
use crate::registry::Container;
use crate::state::Status;
use berth_archive::{ContainerPath, TarOptions, UnpackOptions};
use berth_types::{HasErrorKind, IdentityMapping, RootfsMount};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use tokio::sync::OwnedMutexGuard;

/// What `X-Docker-Container-Path-Stat` carries (the Engine API's `ContainerPathStat`), with Go's
/// `os.FileMode` bits in `mode` as the docker CLI decodes them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathStat {
    /// The base name of the path asked for.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go `os.FileMode`: permissions plus type bits (`1<<31` directory, `1<<27` symlink, ...).
    pub mode: u32,
    /// Modification time, RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink, where it leads inside the container (absolute); empty otherwise.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Keep the archive's owners (`docker cp -a`); otherwise files belong to the container's root.
    pub copy_uid_gid: bool,
}

/// Go's `os.FileMode` from a Unix mode (the docker CLI decodes the stat header with Go's types).
pub fn go_file_mode(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    match FileType::from_raw_mode(mode) {
        FileType::Directory => m |= 1 << 31,
        FileType::Symlink => m |= 1 << 27,
        FileType::Fifo => m |= 1 << 25,
        FileType::Socket => m |= 1 << 24,
        FileType::BlockDevice => m |= 1 << 26,
        FileType::CharacterDevice => m |= (1 << 26) | (1 << 21),
        _ => {}
    }
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// A container's root directory, held open for one archive operation.
struct ContainerFs {
    /// The root: `/proc/<pid>/root` or the detached overlay mount.
    root: OwnedFd,
    /// The name the client used (Docker's error messages repeat it).
    name: String,
    /// Held while a stopped container's overlay is mounted.
    _lock: Option<OwnedMutexGuard<()>>,
    /// `--userns-remap`: the container's files belong to shifted host ids.
    id_map: Option<IdentityMapping>,
    /// Roots of the read-only volumes attached to a stopped container's detached root (a running
    /// container's are read-only mounts the kernel enforces).
    readonly_mounts: Vec<OwnedFd>,
}

/// Is `a` the directory `b` or one of its ancestors, walking `..` up from `b` (across mount points,
/// as `..` does) until the tree's `root`?
fn is_ancestor(a: &OwnedFd, b: &OwnedFd, root: &OwnedFd) -> std::io::Result<bool> {
    let id = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|st| (st.st_dev, st.st_ino));
    let want = id(a)?;
    let top = id(root)?;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut cur = rustix::fs::openat(b, ".", flags, Mode::empty())?;
    // Bounded: a path has at most PATH_MAX/2 components.
    for _ in 0..2048 {
        let here = id(&cur)?;
        if here == want {
            return Ok(true);
        }
        if here == top {
            return Ok(false);
        }
        let up = rustix::fs::openat(&cur, "..", flags, Mode::empty())?;
        if id(&up)? == here {
            return Ok(false);
        }
        cur = up;
    }
    Ok(false)
}

/// dockerd's answer to a write into a read-only volume.
fn read_only() -> EngineError {
    EngineError::Forbidden("Permission denied: the volume is marked read-only".into())
}

fn io_error(what: &'static str, path: &str, source: std::io::Error) -> EngineError {
    EngineError::io(what, path, source)
}

/// Mounts an overlay detached (no mount point on the host) and returns its root fd.
pub(crate) fn mount_detached(m: &RootfsMount) -> std::io::Result<OwnedFd> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let abs = |p: &str| -> String {
        match &m.cwd {
            Some(cwd) if !p.starts_with('/') => cwd.join(p).display().to_string(),
            _ => p.to_string(),
        }
    };
    for opt in &m.options {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            // One layer at a time (`lowerdir+`, Linux 6.5): fsconfig takes at most 256 bytes a value.
            ("lowerdir", Some(v)) => {
                for l in v.split(':') {
                    rustix::mount::fsconfig_set_string(&fs, "lowerdir+", abs(l))?;
                }
            }
            ("upperdir" | "workdir", Some(v)) => rustix::mount::fsconfig_set_string(&fs, key, abs(v))?,
            (k, Some(v)) => rustix::mount::fsconfig_set_string(&fs, k, v)?,
            (k, None) => rustix::mount::fsconfig_set_flag(&fs, k)?,
        }
    }
    rustix::mount::fsconfig_create(&fs)?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    Ok(mnt)
}

/// Attaches a stopped container's volumes to its detached root, as a run would mount them, so a
/// copy into `/data` reaches the volume and not the mount point hidden under it. Each source is
/// cloned with `open_tree` and moved onto its destination resolved inside the root; a destination
/// that does not exist yet (never started) or a kernel that refuses is left as it is (logged).
/// Returns the roots of the read-only ones (a clone cannot be made read-only without
/// `mount_setattr`, so writes below them are refused by [`ContainerFs::extract`]).
fn attach_binds(root: &OwnedFd, binds: &[berth_runtime::BindMount]) -> Vec<OwnedFd> {
    use rustix::mount::{MoveMountFlags, OpenTreeFlags};
    let mut sorted: Vec<&berth_runtime::BindMount> = binds.iter().collect();
    sorted.sort_by_key(|b| b.destination.len());
    let mut readonly = Vec::new();
    for b in sorted {
        let attach = || -> std::io::Result<OwnedFd> {
            let tree = rustix::mount::open_tree(
                rustix::fs::CWD,
                &b.source,
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE,
            )?;
            let target = berth_archive::open_in_root(root.as_fd(), &ContainerPath::parse(&b.destination), true)?;
            rustix::mount::move_mount(
                &tree,
                "",
                &target,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )?;
            Ok(tree)
        };
        match attach() {
            Ok(tree) if b.readonly => readonly.push(tree),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                "attaching volume {} at {} for a copy: {e}",
                b.source.display(),
                b.destination
            ),
        }
    }
    readonly
}

impl ContainerFs {
    fn not_found(&self, path: &str) -> EngineError {
        EngineError::NotFound(format!("Could not find the file {path} in container {}", self.name))
    }

    /// Opens `path` (the last component followed if `follow` or the path ends in `/`), mapping a
    /// missing file to Docker's 404.
    fn open(&self, path: &str, follow: bool) -> Result<(ContainerPath, OwnedFd, rustix::fs::Stat)> {
        let cp = ContainerPath::parse(path);
        let fd = match berth_archive::open_in_root(self.root.as_fd(), &cp, follow || cp.trailing_sep) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(self.not_found(path)),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(EngineError::InvalidArgument(format!("{path}: not a directory")))
            }
            Err(e) => return Err(io_error("resolving", path, e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_error("stat", path, e.into()))?;
        if cp.trailing_sep && FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(EngineError::InvalidArgument(format!("{path}: not a directory")));
        }
        Ok((cp, fd, st))
    }

    fn stat(&self, path: &str) -> Result<(PathStat, OwnedFd, ContainerPath)> {
        let (cp, fd, st) = self.open(path, false)?;
        let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            berth_archive::link_target_in_root(self.root.as_fd(), &cp).map_err(|e| io_error("resolving", path, e))?
        } else {
            String::new()
        };
        let mtime = chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let stat = PathStat {
            name: cp.base_name(),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime,
            link_target,
        };
        Ok((stat, fd, cp))
    }

    fn extract(&self, path: &str, archive: std::fs::File, opts: ExtractOptions) -> Result<()> {
        // The extraction point is followed to the end, inside the container (Docker's
        // `GetResourcePath`).
        let (_, _, st) = self.open(path, true)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(EngineError::InvalidArgument(
                "extraction point is not a directory".into(),
            ));
        }
        let cp = ContainerPath::parse(path);
        let dir = berth_archive::open_dir_in_root(self.root.as_fd(), &cp).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => self.not_found(path),
            _ => io_error("opening", path, e),
        })?;
        // Into a read-only volume, or into a directory above one (the archive could enter it).
        for ro in &self.readonly_mounts {
            let inside = is_ancestor(ro, &dir, &self.root).map_err(|e| io_error("resolving", path, e))?;
            let above = is_ancestor(&dir, ro, &self.root).map_err(|e| io_error("resolving", path, e))?;
            if inside || above {
                return Err(read_only());
            }
        }
        let uopts = UnpackOptions {
            whiteouts: false,
            preserve_owners: true,
            chown_to: (!opts.copy_uid_gid).then_some((0, 0)),
            id_map: self.id_map.clone(),
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            rebase: None,
        };
        let reader = std::io::BufReader::new(archive);
        berth_archive::unpack_at(reader, dir, path, &uopts).map_err(|e| {
            let message = format!("extracting into {path}: {e}");
            // A bad archive is the client's (400); a read-only volume or root is a 403 as in dockerd;
            // a failing disk is ours (500).
            match &e {
                berth_archive::ArchiveError::Io { source, .. } if source.raw_os_error() == Some(libc::EROFS) => {
                    read_only()
                }
                _ if e.kind() == berth_types::ErrorKind::InvalidArgument => EngineError::InvalidArgument(message),
                _ => EngineError::Internal(message),
            }
        })?;
        Ok(())
    }
}

impl ContainerService {
    /// Opens the root of a container: its running init's root, or its overlay mounted detached.
    async fn container_fs(&self, c: &Arc<Container>, name: &str) -> Result<ContainerFs> {
        let id_map = crate::plan::userns(&c.record(), self.id_map.as_ref())?;
        let mut tries = 0;
        let (guard, rec) = loop {
            let guard = c.op.clone().lock_owned().await;
            let rec = c.record();
            let running = matches!(rec.state.status, Status::Running | Status::Paused) && rec.state.pid > 0;
            if !running {
                break (guard, rec);
            }
            let pid = rec.state.pid;
            let root = blocking(move || {
                let p = format!("/proc/{pid}/root");
                rustix::fs::open(&p, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| io_error("opening", &p, e.into()))
            })
            .await;
            // The process may have exited between the check and the open (its root is then gone),
            // or exited and its PID been reused: look again now that the root is held.
            match root {
                Ok(root) if c.record().state.pid == pid => {
                    return Ok(ContainerFs {
                        root,
                        name: name.to_string(),
                        _lock: None,
                        id_map,
                        readonly_mounts: Vec::new(),
                    })
                }
                Ok(_) | Err(_) if tries < 100 => {
                    // Its exit is being recorded: let the monitor finish, then take the stopped path.
                    drop(guard);
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Ok(_) => return Err(EngineError::Conflict(format!("container {name} is restarting"))),
                Err(e) => return Err(e),
            }
        };
        if matches!(rec.state.status, Status::Removing | Status::Dead) {
            return Err(EngineError::Conflict(format!(
                "container {} is marked for removal and cannot be used",
                berth_types::short_id(&c.id)
            )));
        }
        let snapshots = self.snapshots.clone();
        let id = c.id.clone();
        let chains = rec.chain_ids.clone();
        let binds = self.volumes.paths(&rec.mounts);
        let (root, readonly_mounts) = blocking(move || {
            let m = snapshots.rootfs_mount(&id, &chains)?;
            let root = mount_detached(&m).map_err(|e| io_error("mounting the root filesystem of", &id, e))?;
            let ro = attach_binds(&root, &binds);
            Ok((root, ro))
        })
        .await?;
        Ok(ContainerFs {
            root,
            name: name.to_string(),
            _lock: Some(guard),
            id_map,
            readonly_mounts,
        })
    }

    /// `HEAD /containers/{id}/archive`: stat of a path inside the container.
    pub async fn archive_stat(&self, name: &str, path: &str) -> Result<PathStat> {
        let c = self.lookup(name)?;
        let fs = self.container_fs(&c, name).await?;
        let path = path.to_string();
        blocking(move || fs.stat(&path).map(|(s, _, _)| s)).await
    }

    /// `path` with the symlinks of its existing part resolved inside the container (the path a
    /// build's COPY writes to, as Docker's `ResolveScopedPath` gives it).
    pub async fn archive_resolve(&self, name: &str, path: &str) -> Result<String> {
        let c = self.lookup(name)?;
        let fs = self.container_fs(&c, name).await?;
        let p = path.to_string();
        blocking(move || {
            berth_archive::resolve_in_root(fs.root.as_fd(), &ContainerPath::parse(&p))
                .map_err(|e| io_error("resolving", &p, e))
        })
        .await
    }

    /// `GET /containers/{id}/archive`: the path's stat; a background task then writes the path as a
    /// tar to `out` (members named by its base name: `name/...`, `./...` for `dir/.`, `/...` for the
    /// root), keeping the root open (and a stopped container's lock held) until it is done. An error
    /// after the stat ends `out` early (the client sees a truncated archive, as with dockerd).
    pub async fn archive_get<W: Write + Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        out: W,
    ) -> Result<PathStat> {
        let c = self.lookup(name)?;
        let fs = self.container_fs(&c, name).await?;
        let p = path.to_string();
        let (stat, fd, cp, fs) = blocking(move || {
            let (s, fd, cp) = fs.stat(&p)?;
            Ok((s, fd, cp, fs))
        })
        .await?;
        // The root's members are `/etc`, ... as dockerd names them (the docker CLI prefixes them
        // with the destination's name).
        let rebase = cp.base_name();
        let p = path.to_string();
        tokio::task::spawn_blocking(move || {
            // `fs` moves here: the root stays open until the tar is written.
            let opts = TarOptions {
                id_map: fs.id_map.clone(),
                ..TarOptions::default()
            };
            if let Err(e) = berth_archive::tar_at(fd, &rebase, out, opts) {
                tracing::warn!("archiving {p}: {e}");
            }
            drop(fs);
        });
        self.publish(&c, "archive-path", &[]);
        Ok(stat)
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into the directory `path`. The archive is
    /// spooled and checked whole first, so a hostile or broken archive changes nothing.
    pub async fn archive_put(
        &self,
        name: &str,
        path: &str,
        reader: impl Read + Send + 'static,
        opts: ExtractOptions,
    ) -> Result<()> {
        // The body is read whole before any answer: a server that answers early and closes the
        // connection with unread data makes the client see a reset instead of the error.
        let dir = self.containers_dir.clone();
        let spool = blocking(move || {
            let mut reader = reader;
            let fd = rustix::fs::open(
                &dir,
                OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| io_error("creating a temporary file in", &dir.display().to_string(), e.into()))?;
            let mut f = std::fs::File::from(fd);
            std::io::copy(&mut reader, &mut f)
                .map_err(|e| EngineError::InvalidArgument(format!("reading the archive: {e}")))?;
            f.rewind().map_err(|e| io_error("rewinding", "archive", e))?;
            berth_archive::check_archive(std::io::BufReader::new(&mut f))
                .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
            f.rewind().map_err(|e| io_error("rewinding", "archive", e))?;
            Ok(f)
        })
        .await?;
        let c = self.lookup(name)?;
        if c.record().host_config.readonly_rootfs == Some(true) {
            // dockerd's ErrRootFSReadOnly (volumes below a read-only root are not told apart yet).
            return Err(EngineError::Forbidden("container rootfs is marked read-only".into()));
        }
        let fs = self.container_fs(&c, name).await?;
        let p = path.to_string();
        blocking(move || fs.extract(&p, spool, opts)).await?;
        self.publish(&c, "extract-to-dir", &[]);
        Ok(())
    }

    /// `GET /containers/{id}/export`: the container's whole filesystem as a tar (mounts inside a
    /// running container, such as `/proc` and volumes, are left out as Docker does).
    pub async fn export<W: Write + Send + 'static>(self: &Arc<Self>, name: &str, out: W) -> Result<()> {
        let c = self.lookup(name)?;
        let fs = self.container_fs(&c, name).await?;
        tokio::task::spawn_blocking(move || {
            let fd = match berth_archive::open_in_root(fs.root.as_fd(), &ContainerPath::parse("/"), false) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::warn!("exporting container {}: {e}", fs.name);
                    return;
                }
            };
            let opts = TarOptions {
                one_file_system: true,
                id_map: fs.id_map.clone(),
            };
            if let Err(e) = berth_archive::tar_at(fd, "", out, opts) {
                tracing::warn!("exporting container {}: {e}", fs.name);
            }
        });
        self.publish(&c, "export", &[]);
        Ok(())
    }
}
