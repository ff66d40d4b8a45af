//! Layer unpacking and overlayfs snapshots. The snapshotter mounts nothing itself: it returns the
//! overlay options and the runtime mounts them inside the container's mount namespace.
//!
//! On disk (below `root`, normally `<data-root>/snapshots`):
//! `<chain-hex>/fs` (the unpacked layer, ready when it exists), `<chain-hex>/meta.json` (parent, diff ID,
//! size), `rw/<container-id>/{upper,work}`, `empty/` (lower dir of an image without layers), `l/<16 hex>`
//! (short symlinks to `<chain-hex>/fs` for long stacks) and `tmp/`.
//!
//! Public API:
//! - `Snapshotter::open(root: &Path) -> Result<Snapshotter>`; `root(&self) -> &Path`
//! - `Snapshotter::open_with_idmap(root, Option<IdentityMapping>)` for `--userns-remap`: layers are
//!   unpacked with owners shifted into the host range, writable layers belong to the mapped root and
//!   `write_diff` shifts owners back. The mapping is recorded in `idmap.json`; opening a root with a
//!   different one is refused (shifted layers only fit their own mapping). `id_map(&self)`.
//! - `has(&self, chain: &ChainId) -> bool`
//! - `apply_layer(&self, chain, parent: Option<&ChainId>, layer_tar: impl Read + Send) -> Result<u64>`:
//!   the tar may be gzip-compressed; its uncompressed digest (diff ID) must match `chain` given `parent`
//!   (`chain == diff_id` for a base layer, `sha256(parent + " " + diff_id)` otherwise). Unpacked to
//!   `tmp/` then renamed into place; idempotent; concurrent callers for the same chain are safe (the loser
//!   drops its copy). Returns the snapshot's size in bytes.
//! - `prepare_layer(&self, chain, parent, layer_tar) -> Result<PreparedLayer>`: the same unpack and
//!   diff-ID check without the parent having to exist, committed later with `PreparedLayer::commit`.
//! - `lower_dirs(&self, chains_bottom_first: &[ChainId]) -> Result<Vec<PathBuf>>` (top first)
//! - `create_rw(&self, container_id) -> Result<RwLayer>`, `remove_rw(&self, container_id) -> Result<()>`,
//!   `rw_layer(&self, container_id) -> Option<RwLayer>`, `write_diff(&self, container_id, out: impl Write)`
//!   (the upper dir as a layer tar, for commit)
//! - `rootfs_mount(&self, container_id, chains_bottom_first) -> Result<RootfsMount>`: overlay options with
//!   absolute paths, or, when those would not fit the one page the kernel accepts, short paths relative
//!   to `root` (`l/<16 hex>` links, ~200 layers fit) with `RootfsMount::cwd = Some(root)`: the mounter
//!   must `chdir(cwd)` before `mount(2)`.
//! - `read_file(&self, container_id: Option<&str>, chains, path) -> Result<Option<Vec<u8>>>`: reads through
//!   the layer stack like overlayfs would (upper first, whiteouts, opaque dirs, symlinks inside the stack).
//! - `remove(&self, chain) -> Result<()>`, `usage(&self, chain) -> Result<u64>`, `list(&self) -> Result<Vec<ChainId>>`

use berth_archive::ArchiveError;
use berth_types::{ChainId, Digest, ErrorKind, HasErrorKind, IdentityMapping, UsernsError};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The kernel copies mount data into one page; longer overlay option strings fail with EINVAL.
pub const MOUNT_DATA_MAX: usize = 4095;

/// Snapshotter errors.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot for this chain ID.
    #[error("snapshot {0} not found")]
    NotFound(ChainId),
    /// The container has no writable layer.
    #[error("no writable layer for container {0}")]
    RwNotFound(String),
    /// A container ID that cannot name a directory.
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    /// The layer's content does not hash to the requested chain ID.
    #[error("layer content does not match chain {chain}: uncompressed digest is {diff_id}")]
    LayerMismatch {
        /// The chain ID asked for.
        chain: ChainId,
        /// The diff ID computed from the content.
        diff_id: Digest,
    },
    /// Unpacking the layer failed.
    #[error("failed to unpack layer {chain}: {source}")]
    Unpack {
        /// The chain being applied.
        chain: ChainId,
        /// The archive error, naming the entry.
        #[source]
        source: ArchiveError,
    },
    /// Writing a container's changes as a tar failed.
    #[error("failed to export changes of container {container_id}: {source}")]
    Diff {
        /// The container.
        container_id: String,
        /// The cause.
        #[source]
        source: ArchiveError,
    },
    /// The snapshot root was created for another `--userns-remap` mapping.
    #[error("snapshot root {root} was created for a different user namespace mapping ({recorded}); use a separate root per mapping")]
    IdMapMismatch {
        /// The snapshot root.
        root: PathBuf,
        /// The mapping recorded there, as JSON.
        recorded: String,
    },
    /// The id mapping does not map the container's root.
    #[error("invalid user namespace mapping for {root}: {source}")]
    IdMap {
        /// The snapshot root.
        root: PathBuf,
        /// The cause.
        #[source]
        source: UsernsError,
    },
    /// Too many layers for one overlay mount, even with relative paths.
    #[error("too many layers ({0}) for an overlay mount")]
    TooManyLayers(usize),
    /// A filesystem operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl HasErrorKind for SnapshotError {
    fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound(_) | SnapshotError::RwNotFound(_) => ErrorKind::NotFound,
            SnapshotError::InvalidId(_)
            | SnapshotError::LayerMismatch { .. }
            | SnapshotError::TooManyLayers(_)
            | SnapshotError::IdMap { .. } => ErrorKind::InvalidArgument,
            SnapshotError::IdMapMismatch { .. } => ErrorKind::Conflict,
            SnapshotError::Unpack { source, .. } | SnapshotError::Diff { source, .. } => source.kind(),
            SnapshotError::Io { .. } => ErrorKind::Internal,
        }
    }
}

type Result<T, E = SnapshotError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

pub use berth_types::RootfsMount;

/// A container's writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RwLayer {
    /// `rw/<container-id>`.
    pub dir: PathBuf,
    /// The overlay upperdir.
    pub upper: PathBuf,
    /// The overlay workdir.
    pub work: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    #[serde(default)]
    parent: Option<ChainId>,
    diff_id: Digest,
    size: u64,
}

/// Removes a temporary directory unless disarmed.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An unpacked, verified layer not yet visible as a snapshot (see [`Snapshotter::prepare_layer`]);
/// dropping it removes the unpacked files.
pub struct PreparedLayer {
    snapshots: Snapshotter,
    chain: ChainId,
    tmp: TempDir,
    size: u64,
}

impl std::fmt::Debug for PreparedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedLayer").field("chain", &self.chain).finish()
    }
}

impl PreparedLayer {
    /// The chain ID the layer will be committed as.
    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// Size of the unpacked layer in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Renames the layer into place as snapshot `chain`; returns its size. A snapshot another caller
    /// committed first is kept (same chain, same content).
    pub fn commit(mut self) -> Result<u64> {
        let Some(tmp_path) = self.tmp.0.clone() else {
            return self.snapshots.usage(&self.chain);
        };
        let target = self.snapshots.dir(&self.chain);
        match std::fs::rename(&tmp_path, &target) {
            Ok(()) => {
                self.tmp.0 = None;
                Ok(self.size)
            }
            // Someone else finished the same chain first: theirs is as good as ours (same digest).
            Err(e) if target.exists() && e.raw_os_error().is_some_and(is_exists_errno) => {
                self.snapshots.usage(&self.chain)
            }
            Err(e) => Err(io_err("rename snapshot into", &target)(e)),
        }
    }
}

/// Overlay snapshots keyed by chain ID.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
    /// `--userns-remap`: owners in snapshots are host ids shifted by this mapping.
    id_map: Option<IdentityMapping>,
    /// Host ids of the container's root when remapped.
    root_pair: Option<(u32, u32)>,
}

/// Records which mapping a snapshot root's layers are shifted by.
const IDMAP_FILE: &str = "idmap.json";

impl Snapshotter {
    /// Opens (creating) the snapshot root and removes temporary dirs left by dead processes.
    pub fn open(root: &Path) -> Result<Snapshotter> {
        Self::open_with_idmap(root, None)
    }

    /// Opens a snapshot root whose layers are shifted by `id_map` (`--userns-remap`; `None` or an empty
    /// mapping: the same as [`Snapshotter::open`]). A root holds layers for one mapping only: opening it
    /// with another (or a remapped root without one, or the reverse) is [`SnapshotError::IdMapMismatch`].
    pub fn open_with_idmap(root: &Path, id_map: Option<IdentityMapping>) -> Result<Snapshotter> {
        let id_map = id_map.filter(|m| !m.is_empty());
        let root_pair = id_map
            .as_ref()
            .map(|m| m.root_pair())
            .transpose()
            .map_err(|source| SnapshotError::IdMap {
                root: root.to_path_buf(),
                source,
            })?;
        for d in ["", "rw", "tmp", "empty", "l"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        let s = Snapshotter {
            root: root.to_path_buf(),
            id_map,
            root_pair,
        };
        s.check_idmap()?;
        if let Some((uid, gid)) = s.root_pair {
            // The lower dir of an image without layers is the container's `/` too.
            let empty = s.root.join("empty");
            std::os::unix::fs::chown(&empty, Some(uid), Some(gid)).map_err(io_err("set owner of", &empty))?;
        }
        s.clean_tmp();
        Ok(s)
    }

    /// The `--userns-remap` mapping snapshots are shifted by, if any.
    pub fn id_map(&self) -> Option<&IdentityMapping> {
        self.id_map.as_ref()
    }

    /// Compares the mapping with the one recorded in the root (recording it on first use). A root
    /// with snapshots but no record was made without remapping.
    fn check_idmap(&self) -> Result<()> {
        let path = self.root.join(IDMAP_FILE);
        let recorded: Option<IdentityMapping> = match std::fs::read(&path) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| io_err("parse", &path)(io::Error::other(e)))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let mismatch = |recorded: String| SnapshotError::IdMapMismatch {
            root: self.root.clone(),
            recorded,
        };
        match (recorded, &self.id_map) {
            (Some(r), Some(m)) if &r == m => Ok(()),
            (Some(r), _) => Err(mismatch(serde_json::to_string(&r).unwrap_or_default())),
            (None, None) => Ok(()),
            (None, Some(m)) => {
                if !self.list()?.is_empty() {
                    return Err(mismatch("none".into()));
                }
                let bytes = serde_json::to_vec(m).map_err(|e| io_err("encode", &path)(io::Error::other(e)))?;
                write_atomic(&path, &bytes)
            }
        }
    }

    /// The snapshot root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn clean_tmp(&self) {
        let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            // Only a dead process's leftovers: a concurrent snapshotter may be unpacking right now.
            let alive = pid.is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(ent.path());
            }
        }
    }

    fn tmp_dir(&self) -> Result<TempDir> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = self
            .root
            .join("tmp")
            .join(format!("{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        Ok(TempDir(Some(p)))
    }

    fn dir(&self, chain: &ChainId) -> PathBuf {
        self.root.join(chain.hex())
    }

    /// The unpacked layer directory of `chain`.
    pub fn fs_dir(&self, chain: &ChainId) -> PathBuf {
        self.dir(chain).join("fs")
    }

    /// Whether the snapshot for `chain` is complete.
    pub fn has(&self, chain: &ChainId) -> bool {
        self.fs_dir(chain).is_dir()
    }

    /// Unpacks a layer (plain or gzip tar) as the snapshot `chain` on top of `parent`. See the crate docs.
    pub fn apply_layer(&self, chain: &ChainId, parent: Option<&ChainId>, layer_tar: impl Read + Send) -> Result<u64> {
        if self.has(chain) {
            return self.usage(chain);
        }
        if let Some(p) = parent {
            if !self.has(p) {
                return Err(SnapshotError::NotFound(p.clone()));
            }
        }
        self.prepare_layer(chain, parent, layer_tar)?.commit()
    }

    /// Unpacks a layer into a temporary directory and checks its diff ID against `chain`, without
    /// making it visible: [`PreparedLayer::commit`] renames it into place, dropping it removes it.
    /// The parent need not exist yet (a layer unpacks independently of its parent's content; only the
    /// chain ID depends on it), so a pull can unpack its layers in parallel while they download and
    /// commit them once every digest is verified.
    pub fn prepare_layer(
        &self,
        chain: &ChainId,
        parent: Option<&ChainId>,
        layer_tar: impl Read + Send,
    ) -> Result<PreparedLayer> {
        let tmp = self.tmp_dir()?;
        let tmp_path = tmp.0.clone().unwrap_or_default();
        let fs = tmp_path.join("fs");
        let unpack_err = |source| SnapshotError::Unpack {
            chain: chain.clone(),
            source,
        };
        let mut reader = berth_archive::DigestReader::new(berth_archive::decompress(layer_tar).map_err(unpack_err)?);
        let opts = berth_archive::UnpackOptions {
            id_map: self.id_map.clone(),
            ..berth_archive::UnpackOptions::default()
        };
        berth_archive::unpack(&mut reader, &fs, &opts).map_err(unpack_err)?;
        let (diff_id, _) = reader.finish().map_err(|e| unpack_err(ArchiveError::Read(e)))?;
        let want = match parent {
            None => diff_id.clone(),
            Some(p) => Digest::sha256(format!("{p} {diff_id}").as_bytes()),
        };
        if &want != chain {
            return Err(SnapshotError::LayerMismatch {
                chain: chain.clone(),
                diff_id,
            });
        }
        let size = dir_usage(&fs)?;
        let meta = Meta {
            parent: parent.cloned(),
            diff_id,
            size,
        };
        let meta_path = tmp_path.join("meta.json");
        let bytes = serde_json::to_vec(&meta).map_err(|e| io_err("encode", &meta_path)(io::Error::other(e)))?;
        let mut f = std::fs::File::create(&meta_path).map_err(io_err("create", &meta_path))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(io_err("write", &meta_path))?;
        Ok(PreparedLayer {
            snapshots: self.clone(),
            chain: chain.clone(),
            tmp,
            size,
        })
    }

    /// Lower dirs for overlay, top first. An empty stack gets the shared empty directory.
    pub fn lower_dirs(&self, chains_bottom_first: &[ChainId]) -> Result<Vec<PathBuf>> {
        if chains_bottom_first.is_empty() {
            return Ok(vec![self.root.join("empty")]);
        }
        let mut out = Vec::with_capacity(chains_bottom_first.len());
        for c in chains_bottom_first.iter().rev() {
            if !self.has(c) {
                return Err(SnapshotError::NotFound(c.clone()));
            }
            out.push(self.fs_dir(c));
        }
        Ok(out)
    }

    fn rw_dir(&self, container_id: &str) -> Result<PathBuf> {
        if container_id.is_empty()
            || container_id == "."
            || container_id == ".."
            || container_id.contains('/')
            || container_id.contains('\0')
        {
            return Err(SnapshotError::InvalidId(container_id.to_string()));
        }
        Ok(self.root.join("rw").join(container_id))
    }

    /// The writable layer of a container, if it exists.
    pub fn rw_layer(&self, container_id: &str) -> Option<RwLayer> {
        let dir = self.rw_dir(container_id).ok()?;
        let rw = RwLayer {
            upper: dir.join("upper"),
            work: dir.join("work"),
            dir,
        };
        (rw.upper.is_dir() && rw.work.is_dir()).then_some(rw)
    }

    /// Bytes in a container's writable layer (`SizeRw`; what removing the container reclaims); 0 when
    /// it has none.
    pub fn rw_usage(&self, container_id: &str) -> u64 {
        self.rw_layer(container_id)
            .and_then(|rw| dir_usage(&rw.upper).ok())
            .unwrap_or(0)
    }

    /// The container IDs that have a writable layer (for the daemon's start-up reconciliation).
    pub fn rw_layer_ids(&self) -> Result<Vec<String>> {
        let dir = self.root.join("rw");
        match std::fs::read_dir(&dir) {
            Ok(entries) => Ok(entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err("list", &dir)(e)),
        }
    }

    /// Creates (or returns the existing) writable layer of a container.
    pub fn create_rw(&self, container_id: &str) -> Result<RwLayer> {
        let dir = self.rw_dir(container_id)?;
        let rw = RwLayer {
            upper: dir.join("upper"),
            work: dir.join("work"),
            dir,
        };
        for p in [&rw.upper, &rw.work] {
            std::fs::create_dir_all(p).map_err(io_err("create", p))?;
            // Overlay's `/` takes the upper dir's owner: the container's root must own it to write
            // there (moby's overlay2 creates `diff` and `work` owned by the remapped root).
            if let Some((uid, gid)) = self.root_pair {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(io_err("set owner of", p))?;
            }
        }
        Ok(rw)
    }

    /// Writes a container's changes (its upper dir) as a layer tar, overlay whiteouts as `.wh.` entries
    /// (for `docker commit` / `docker diff`).
    pub fn write_diff(&self, container_id: &str, out: impl Write) -> Result<()> {
        let rw = self
            .rw_layer(container_id)
            .ok_or_else(|| SnapshotError::RwNotFound(container_id.to_string()))?;
        berth_archive::layer_from_dir_idmap(&rw.upper, out, self.id_map.as_ref()).map_err(|source| {
            SnapshotError::Diff {
                container_id: container_id.to_string(),
                source,
            }
        })
    }

    /// [`Snapshotter::write_diff`] leaving out `exclude` (paths relative to the root, no leading `/`)
    /// and everything below them (`docker commit` leaves out the runtime's mount points).
    pub fn write_diff_excluding(&self, container_id: &str, out: impl Write, exclude: &[&str]) -> Result<()> {
        self.write_diff_clamped(container_id, out, exclude, None)
    }

    /// [`Snapshotter::write_diff_excluding`] with no mtime later than `clamp_mtime` (reproducible
    /// builds with `SOURCE_DATE_EPOCH`).
    pub fn write_diff_clamped(
        &self,
        container_id: &str,
        out: impl Write,
        exclude: &[&str],
        clamp_mtime: Option<u64>,
    ) -> Result<()> {
        let rw = self
            .rw_layer(container_id)
            .ok_or_else(|| SnapshotError::RwNotFound(container_id.to_string()))?;
        berth_archive::layer_from_dir_clamped(&rw.upper, out, self.id_map.as_ref(), exclude, clamp_mtime).map_err(
            |source| SnapshotError::Diff {
                container_id: container_id.to_string(),
                source,
            },
        )
    }

    /// Removes a container's writable layer; nothing to do if it does not exist.
    pub fn remove_rw(&self, container_id: &str) -> Result<()> {
        let dir = self.rw_dir(container_id)?;
        self.remove_dir_atomically(&dir)
    }

    fn remove_dir_atomically(&self, dir: &Path) -> Result<()> {
        if std::fs::symlink_metadata(dir).is_err() {
            return Ok(());
        }
        // Rename first so a crash never leaves a half-removed snapshot that looks complete; the guard
        // deletes the renamed tree when it goes out of scope.
        let tmp = self.tmp_dir()?;
        let grave = tmp.0.clone().unwrap_or_default().join("x");
        match std::fs::rename(dir, &grave) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", dir)(e)),
        }
    }

    /// A read-only overlay of an image's layers alone (no writable layer), for reading its files
    /// (a build's `COPY --from`). Overlay needs two lower dirs without an upper one: a one-layer
    /// image gets the shared empty directory under it. The options carry absolute paths, one
    /// `lowerdir` each, for `fsconfig`.
    pub fn view_mount(&self, chains_bottom_first: &[ChainId]) -> Result<RootfsMount> {
        let mut lowers = self.lower_dirs(chains_bottom_first)?;
        if lowers.len() == 1 {
            let empty = self.root.join("empty");
            std::fs::create_dir_all(&empty).map_err(io_err("create", &empty))?;
            if lowers[0] != empty {
                lowers.push(empty);
            }
        }
        if lowers.len() == 1 {
            // An image of no layers: two views of the empty directory.
            lowers.push(lowers[0].clone());
        }
        Ok(RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![lowerdir_option(&lowers)],
            cwd: None,
        })
    }

    /// The overlay mount for a container: its writable layer over the image's layers.
    pub fn rootfs_mount(&self, container_id: &str, chains_bottom_first: &[ChainId]) -> Result<RootfsMount> {
        let rw = self
            .rw_layer(container_id)
            .ok_or_else(|| SnapshotError::RwNotFound(container_id.to_string()))?;
        let lowers = self.lower_dirs(chains_bottom_first)?;
        let mut extra = Vec::new();
        // Docker turns the overlay index off when the kernel has the knob: with it on, reusing a lower
        // dir under a different upper fails with EBUSY.
        if Path::new("/sys/module/overlay/parameters/index").exists() {
            extra.push("index=off".to_string());
        }
        let build = |lower: String, upper: String, work: String| -> Vec<String> {
            let mut o = vec![
                format!("lowerdir={lower}"),
                format!("upperdir={upper}"),
                format!("workdir={work}"),
            ];
            o.extend(extra.iter().cloned());
            o
        };
        let abs = build(
            lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            rw.upper.display().to_string(),
            rw.work.display().to_string(),
        );
        if abs.join(",").len() <= MOUNT_DATA_MAX {
            return Ok(RootfsMount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: abs,
                cwd: None,
            });
        }
        // Too long for one page: short names relative to the root, as Docker's overlay2 does
        // (`l/<16 hex>` symlinks to `<chain>/fs`), mounted from `cwd`.
        let mut short = Vec::with_capacity(chains_bottom_first.len());
        for c in chains_bottom_first.iter().rev() {
            short.push(self.short_link(c)?);
        }
        let rel_path = |p: &Path| p.strip_prefix(&self.root).unwrap_or(p).display().to_string();
        let rel = build(short.join(":"), rel_path(&rw.upper), rel_path(&rw.work));
        if rel.join(",").len() <= MOUNT_DATA_MAX {
            return Ok(RootfsMount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: rel,
                cwd: Some(self.root.clone()),
            });
        }
        Err(SnapshotError::TooManyLayers(lowers.len()))
    }

    /// `l/<first 16 hex>`, a symlink to `../<chain>/fs` created on first use; the full relative path if
    /// that name is taken by another chain.
    fn short_link(&self, chain: &ChainId) -> Result<String> {
        let name = format!("l/{}", &chain.hex()[..16]);
        let path = self.root.join(&name);
        let target = PathBuf::from(format!("../{}/fs", chain.hex()));
        for _ in 0..2 {
            match std::fs::read_link(&path) {
                Ok(t) if t == target => return Ok(name),
                Ok(_) => return Ok(format!("{}/fs", chain.hex())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match std::os::unix::fs::symlink(&target, &path) {
                    Ok(()) => return Ok(name),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io_err("create link", &path)(e)),
                },
                Err(e) => return Err(io_err("read link", &path)(e)),
            }
        }
        Ok(format!("{}/fs", chain.hex()))
    }

    /// Removes a snapshot (nothing to do if absent). The caller makes sure no image or container uses it.
    pub fn remove(&self, chain: &ChainId) -> Result<()> {
        let link = self.root.join("l").join(&chain.hex()[..16]);
        if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(&format!("../{}/fs", chain.hex()))) {
            let _ = std::fs::remove_file(&link);
        }
        self.remove_dir_atomically(&self.dir(chain))
    }

    /// Disk usage of a snapshot in bytes (regular file sizes, hard links once).
    pub fn usage(&self, chain: &ChainId) -> Result<u64> {
        if !self.has(chain) {
            return Err(SnapshotError::NotFound(chain.clone()));
        }
        let p = self.dir(chain).join("meta.json");
        match std::fs::read(&p) {
            Ok(b) => match serde_json::from_slice::<Meta>(&b) {
                Ok(m) => Ok(m.size),
                Err(_) => dir_usage(&self.fs_dir(chain)),
            },
            Err(_) => dir_usage(&self.fs_dir(chain)),
        }
    }

    /// All complete snapshots.
    pub fn list(&self) -> Result<Vec<ChainId>> {
        let rd = std::fs::read_dir(&self.root).map_err(io_err("read", &self.root))?;
        let mut out = Vec::new();
        for ent in rd.flatten() {
            if let Ok(d) = Digest::from_sha256_hex(&ent.file_name().to_string_lossy()) {
                if self.has(&d) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads `path` through the stack (container upper first, then the image layers top first), as the
    /// mounted overlay would show it, without mounting. `None` when absent, deleted or not a file.
    pub fn read_file(
        &self,
        container_id: Option<&str>,
        chains_bottom_first: &[ChainId],
        path: &str,
    ) -> Result<Option<Vec<u8>>> {
        let mut layers = Vec::new();
        if let Some(id) = container_id {
            if let Some(rw) = self.rw_layer(id) {
                layers.push(rw.upper);
            }
        }
        layers.extend(self.lower_dirs(chains_bottom_first)?);
        let mut comps = normalize(Vec::new(), path);
        for _ in 0..40 {
            match lookup(&layers, &comps) {
                Lookup::Missing => return Ok(None),
                Lookup::Found(p) => {
                    return match std::fs::read(&p) {
                        Ok(b) => Ok(Some(b)),
                        Err(e) if e.kind() == io::ErrorKind::IsADirectory => Ok(None),
                        Err(e) => Err(io_err("read", &p)(e)),
                    };
                }
                Lookup::Symlink { at, target } => {
                    let base = if target.as_bytes().first() == Some(&b'/') {
                        Vec::new()
                    } else {
                        comps[..at].to_vec()
                    };
                    let rest = comps[at + 1..].to_vec();
                    let mut next = normalize(base, &target.to_string_lossy());
                    next.extend(rest);
                    comps = next;
                }
            }
        }
        Ok(None)
    }
}

/// Write to a temp file, fsync, rename (DESIGN.md: never a half-written JSON file).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    berth_types::write_atomic(path, bytes).map_err(|e| io_err("write", path)(e.source))
}

fn is_exists_errno(e: i32) -> bool {
    e == rustix::io::Errno::NOTEMPTY.raw_os_error() || e == rustix::io::Errno::EXIST.raw_os_error()
}

/// Joins `path` onto `base` lexically, `..` stopping at the root (as inside a container's `/`).
fn normalize(mut base: Vec<OsString>, path: &str) -> Vec<OsString> {
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                base.pop();
            }
            c => base.push(OsString::from(c)),
        }
    }
    base
}

enum Lookup {
    Missing,
    Found(PathBuf),
    /// Component `at` is a symlink to `target` (in the topmost layer that has it).
    Symlink {
        at: usize,
        target: OsString,
    },
}

fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    matches!(rustix::fs::lgetxattr(p, berth_archive::OPAQUE_XATTR, &mut buf), Ok(1) if buf[0] == b'y')
}

/// Overlay's merge rules: the topmost layer that has a name decides; a whiteout hides it; an opaque dir
/// hides everything below it in lower layers.
fn lookup(layers: &[PathBuf], comps: &[OsString]) -> Lookup {
    if comps.is_empty() {
        return Lookup::Missing;
    }
    // For each prefix depth, whether a higher layer already made the directory opaque.
    let mut hidden_below_depth: Option<usize> = None;
    for layer in layers {
        let mut cur = layer.clone();
        let mut opaque_here: Option<usize> = None;
        for (i, c) in comps.iter().enumerate() {
            if let Some(d) = hidden_below_depth {
                if i >= d {
                    return Lookup::Missing;
                }
            }
            cur.push(c);
            let md = match std::fs::symlink_metadata(&cur) {
                Ok(md) => md,
                Err(_) => break,
            };
            if is_whiteout(&md) {
                return Lookup::Missing;
            }
            if md.file_type().is_symlink() {
                return match std::fs::read_link(&cur) {
                    Ok(t) => Lookup::Symlink {
                        at: i,
                        target: t.into_os_string(),
                    },
                    Err(_) => Lookup::Missing,
                };
            }
            if i + 1 == comps.len() {
                return if md.is_file() {
                    Lookup::Found(cur)
                } else {
                    Lookup::Missing
                };
            }
            if !md.is_dir() {
                return Lookup::Missing;
            }
            if is_opaque(&cur) && opaque_here.is_none() {
                opaque_here = Some(i + 1);
            }
        }
        // An opaque directory hides what lower layers have below it, not what this layer has.
        if let Some(d) = opaque_here {
            hidden_below_depth = Some(hidden_below_depth.map_or(d, |h| h.min(d)));
        }
    }
    Lookup::Missing
}

/// Sum of regular file sizes below `dir`, each inode once.
fn dir_usage(dir: &Path) -> Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(io_err("read", &d))?;
        for ent in rd {
            let ent = ent.map_err(io_err("read", &d))?;
            let md = ent.metadata().map_err(io_err("stat", &ent.path()))?;
            if md.is_dir() {
                stack.push(ent.path());
            } else if md.is_file() && (md.nlink() == 1 || seen.insert((md.dev(), md.ino()))) {
                total += md.len();
            }
        }
    }
    Ok(total)
}

/// Overlay's `lowerdir=` option for `lowers` (top first), absolute paths joined with `:`.
pub fn lowerdir_option(lowers: &[PathBuf]) -> String {
    let joined: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    format!("lowerdir={}", joined.join(":"))
}

#[cfg(test)]
mod tests;
