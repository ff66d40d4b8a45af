//! The image store: content-addressed blobs, image records, tags and repo digests; images are unpacked
//! through the [`Snapshotter`] (one snapshot per chain ID).
//!
//! On disk (below `root`, normally `<data-root>/image`): `blobs/sha256/<hex>` (configs, manifests, layer
//! tars as received), `images/<id-hex>.json` (record: layer blobs, size), `repositories.json` (Docker's
//! format), `tmp/`. Image ID = sha256 of the config bytes, stored verbatim and never re-serialised.
//!
//! Public API (`ImageStore`):
//! - `open(root: &Path, snapshots: Snapshotter) -> Result<ImageStore>`; `snapshotter(&self) -> &Snapshotter`;
//!   `blobs(&self) -> &ContentStore` (`put`, `writer` (hash while writing), `put_file`, `read`, `open_blob`, `path`, `has`, `size`)
//! - `import(&self, rootfs_tar: impl Read + Send, opts: ImportOptions) -> Result<ImageRecord>`
//! - `load(&self, tar: impl Read + Send, on_progress: &mut dyn FnMut(&str)) -> Result<Vec<LoadedImage>>`
//!   (`docker save` legacy and Docker 25+ formats, OCI image layout); progress lines read like Docker's.
//! - `save(&self, names: &[String], out: impl Write) -> Result<()>` (OCI layout + manifest.json + repositories)
//! - `create_image(&self, config: &[u8], layers: &[LayerBlob]) -> Result<ImageRecord>`: registers an image
//!   whose layer blobs are already in `blobs()` (for pull/commit/build); `lease_for(blobs, chains) -> Lease`
//!   guards what a pull is creating, `discard(chains, blobs)` removes it again after a failure.
//! - `resolve(&self, name_or_id) -> Result<ImageRecord>`, `get(&self, id: &Digest) -> Result<ImageRecord>`,
//!   `list(&self) -> Result<Vec<ImageRecord>>`
//! - `tag(&self, source: &str, target: &Reference) -> Result<()>`;
//!   `set_reference(&self, r: &Reference, id: &Digest) -> Result<Option<Digest>>` (also `repo@digest`)
//! - `remove(&self, name, force, prune_children, in_use: &dyn Fn(&str) -> Option<String>) -> Result<Vec<DeleteItem>>`
//! - `history(&self, name) -> Result<Vec<HistoryItem>>`
//! - `prune(&self, dangling_only, in_use) -> Result<PruneReport>`
//! - `size(&self, id) -> Result<u64>` (sum of the unpacked layer sizes)
//!
//! `in_use(image_id)` answers the ID of a container using that image (`sha256:<hex>` is passed).
//!
//! `--userns-remap`: open the store over `Snapshotter::open_with_idmap` below the remapped data root
//! ([`userns::prepare_remapped_root`]); snapshots are then shifted while blobs stay the bytes received,
//! so `save` and pushes are unchanged. [`userns`] also resolves the flag and creates `dockremap`.
mod archive_io;
mod changes;
mod commit;
mod content;
mod create;
mod error;
mod import;
mod record;
mod refs;
mod remove;
mod resolve;
pub mod userns;

pub use changes::apply_changes;
pub use commit::CommitOptions;
pub use content::{BlobWriter, ContentStore};
pub use create::Lease;
pub use error::{Result, StoreError};
pub use import::{host_architecture, ImportOptions};
pub use record::{HistoryItem, ImageRecord, LayerBlob, LoadedImage};
pub use remove::{DeleteItem, PruneReport};

use berth_snapshot::Snapshotter;
use error::io_err;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Media type of an uncompressed Docker layer.
pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Media type of a gzip Docker layer.
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Media type of an uncompressed OCI layer.
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip OCI layer.
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Held while reading-modifying-writing records and references: an in-process mutex plus an `flock` on
/// `<root>/lock` so two processes sharing a data root do not interleave.
pub(crate) struct MetaLock<'a> {
    _guard: std::sync::MutexGuard<'a, ()>,
    _file: std::fs::File,
}

/// The image store.
pub struct ImageStore {
    root: PathBuf,
    blobs: ContentStore,
    snapshots: Snapshotter,
    lock: Mutex<()>,
    /// Blobs and snapshots an unfinished `create_image` relies on, so a failing one does not clean up
    /// what a concurrent one is about to reference.
    leases: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore").field("root", &self.root).finish()
    }
}

impl ImageStore {
    /// Opens (creating) the store at `root` and removes temporary files of dead processes.
    pub fn open(root: &Path, snapshots: Snapshotter) -> Result<ImageStore> {
        for d in ["images", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        let blobs = ContentStore::open(root.join("blobs"), root.join("tmp"))?;
        let s = ImageStore {
            root: root.to_path_buf(),
            blobs,
            snapshots,
            lock: Mutex::new(()),
            leases: Mutex::new(HashMap::new()),
        };
        s.clean_tmp();
        Ok(s)
    }

    fn clean_tmp(&self) {
        let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let p = ent.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }

    /// The snapshotter images are unpacked with.
    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// The content store.
    pub fn blobs(&self) -> &ContentStore {
        &self.blobs
    }

    pub(crate) fn meta_lock(&self) -> Result<MetaLock<'_>> {
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let p = self.root.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err("open", &p))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &p)(e.into()))?;
        Ok(MetaLock {
            _guard: guard,
            _file: file,
        })
    }

    pub(crate) fn refs_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }
}

#[cfg(test)]
mod tests;
