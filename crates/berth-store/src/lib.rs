//! The image store: content-addressed blobs, image records, tags and repo digests; images are unpacked
//! through the [`Snapshotter`] (one snapshot per chain ID).
//!
//! On disk (below `root`, normally `<data-root>/image`): `blobs/sha256/<hex>` (configs, manifests, layer
//! tars as received), `images/<id-hex>.json` (record: layer blobs, size), `repositories.json` (Docker's
//! format), `tmp/`. Image ID = sha256 of the config bytes, stored verbatim and never re-serialised.
//!
//! Public API (`ImageStore`):
//! - `open(root: &Path, snapshots: Snapshotter) -> Result<ImageStore>`; `snapshotter(&self) -> &Snapshotter`;
//!   `blobs(&self) -> &ContentStore` (`put`, `put_file`, `read`, `open_blob`, `path`, `has`, `size`)
//! - `import(&self, rootfs_tar: impl Read + Send, opts: ImportOptions) -> Result<ImageRecord>`
//! - `load(&self, tar: impl Read + Send, on_progress: &mut dyn FnMut(&str)) -> Result<Vec<LoadedImage>>`
//!   (`docker save` legacy and Docker 25+ formats, OCI image layout); progress lines read like Docker's.
//! - `save(&self, names: &[String], out: impl Write) -> Result<()>` (OCI layout + manifest.json + repositories)
//! - `create_image(&self, config: &[u8], layers: &[LayerBlob]) -> Result<ImageRecord>`: registers an image
//!   whose layer blobs are already in `blobs()` (for pull/commit/build).
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
mod content;
mod refs;
pub mod userns;

pub use changes::apply_changes;
pub use content::ContentStore;

use berth_archive::ArchiveError;
use berth_snapshot::{SnapshotError, Snapshotter};
use berth_types::{chain_ids, short_id, ChainId, Digest, ErrorKind, HasErrorKind, Reference, ReferenceError};
use content::write_atomic;
use refs::Refs;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
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

/// Image store errors; each maps to an [`ErrorKind`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Docker's wording.
    #[error("No such image: {0}")]
    NotFound(String),
    /// A 409 with Docker's message (rmi conflicts).
    #[error("{0}")]
    Conflict(String),
    /// A bad reference.
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// An image archive (load) that is malformed: the message names the file.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    /// Content whose digest is not the one announced.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob or file concerned.
        what: String,
        /// Announced digest.
        expected: Digest,
        /// Computed digest.
        actual: Digest,
    },
    /// A `--change` line we cannot apply (Docker's message).
    #[error("{0}")]
    InvalidChange(String),
    /// Other bad arguments (tagging with a digest, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A blob the store should have is missing.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// Reading an input stream failed.
    #[error("failed to read {what}: {source}")]
    Read {
        /// What was being read.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Unpacking or reading a tar failed.
    #[error("{what}: {source}")]
    Archive {
        /// Context (`invalid image archive`, `import`).
        what: String,
        /// The archive error naming the entry.
        #[source]
        source: ArchiveError,
    },
    /// A snapshot operation failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The store's own state is unreadable.
    #[error("image store is corrupt: {0}")]
    Corrupt(String),
    /// A filesystem operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// Path concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl HasErrorKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::InvalidReference(_)
            | StoreError::InvalidArchive(_)
            | StoreError::DigestMismatch { .. }
            | StoreError::InvalidChange(_)
            | StoreError::InvalidArgument(_)
            | StoreError::Read { .. } => ErrorKind::InvalidArgument,
            StoreError::Archive { source, .. } => source.kind(),
            StoreError::Snapshot(e) => e.kind(),
            StoreError::BlobNotFound(_) | StoreError::Corrupt(_) | StoreError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One layer blob of an image, as stored in the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// Digest of the blob as stored (compressed or not).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An image as the engine sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRecord {
    /// Image ID: digest of the config.
    pub id: Digest,
    /// The image config (parsed from the stored, verbatim bytes).
    pub config: Value,
    /// `repo:tag` references, familiar form (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `repo@sha256:...` references.
    pub repo_digests: Vec<String>,
    /// `created` from the config (RFC 3339), empty when absent.
    pub created: String,
    /// Sum of the unpacked layer sizes.
    pub size: u64,
    /// Layer diff IDs, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Layer chain IDs, bottom first (snapshot keys).
    pub chain_ids: Vec<ChainId>,
    /// Layer blobs in the content store, bottom first.
    pub layers: Vec<LayerBlob>,
}

/// What `images/<hex>.json` holds; everything else comes from the config blob and the references.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredImage {
    id: Digest,
    layers: Vec<LayerBlob>,
    size: u64,
}

/// Options for [`ImageStore::import`] (`docker import`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag for the new image.
    pub tag: Option<Reference>,
    /// Dockerfile-style changes (`CMD ["sh"]`, `ENV A=B`, ...).
    pub changes: Vec<String>,
    /// History comment; Docker's default is `Imported from -`.
    pub message: String,
    /// `os` of the config (default `linux`).
    pub os: Option<String>,
    /// `architecture` of the config (default: this machine's, in Go's names).
    pub architecture: Option<String>,
}

/// One image a `load` brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Its ID.
    pub id: Digest,
    /// Tags it got (familiar form).
    pub tags: Vec<String>,
}

impl LoadedImage {
    /// Docker's result lines: `Loaded image: bb:latest` per tag, or `Loaded image ID: sha256:...`.
    pub fn messages(&self) -> Vec<String> {
        if self.tags.is_empty() {
            vec![format!("Loaded image ID: {}", self.id)]
        } else {
            self.tags.iter().map(|t| format!("Loaded image: {t}")).collect()
        }
    }
}

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteItem {
    /// A reference removed.
    Untagged(String),
    /// An image or layer (chain ID) deleted.
    Deleted(String),
}

/// `docker image prune` result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// What was untagged and deleted.
    pub deleted: Vec<DeleteItem>,
    /// Bytes of snapshots removed.
    pub space_reclaimed: u64,
}

/// One `docker history` row, with the Engine API's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID for the top row, `<missing>` below it (Docker keeps no IDs for parent layers).
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The instruction that made the row.
    pub created_by: String,
    /// Tags of the image, on the top row only.
    pub tags: Vec<String>,
    /// Unpacked size of the layer this row made (0 for `empty_layer` rows).
    pub size: u64,
    /// Comment.
    pub comment: String,
}

/// Held while reading-modifying-writing records and references: an in-process mutex plus an `flock` on
/// `<root>/lock` so two processes sharing a data root do not interleave.
struct MetaLock<'a> {
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

/// Go's name for this machine's architecture, as image configs use.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Docker's `isSingleReference`: at most one tag, and any digest references in that tag's repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical_repos = HashSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical_repos.insert(r.repository());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical_repos.len() == 1 && canonical_repos.contains(&single.repository())
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

    fn meta_lock(&self) -> Result<MetaLock<'_>> {
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

    fn refs_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    fn stored(&self, id: &Digest) -> Result<Option<StoredImage>> {
        let p = self.record_path(id);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    fn all_stored(&self) -> Result<Vec<StoredImage>> {
        let dir = self.root.join("images");
        let rd = std::fs::read_dir(&dir).map_err(io_err("read", &dir))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(io_err("read", &dir))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            let Ok(id) = Digest::from_sha256_hex(hex) else { continue };
            if let Some(s) = self.stored(&id)? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn build_record(&self, s: &StoredImage, refs: &Refs) -> Result<ImageRecord> {
        let bytes = self.blobs.read(&s.id)?;
        let config: Value =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("config {}: {e}", s.id)))?;
        let diff_ids = diff_ids_of(&config).map_err(StoreError::Corrupt)?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for r in refs.for_image(&s.id) {
            if r.digest().is_some() {
                repo_digests.push(r.familiar());
            } else {
                repo_tags.push(r.familiar());
            }
        }
        Ok(ImageRecord {
            id: s.id.clone(),
            created: config
                .get("created")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            chain_ids: chain_ids(&diff_ids),
            diff_ids,
            config,
            repo_tags,
            repo_digests,
            size: s.size,
            layers: s.layers.clone(),
        })
    }

    /// The image with this ID.
    pub fn get(&self, id: &Digest) -> Result<ImageRecord> {
        let s = self.stored(id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let refs = Refs::load(&self.refs_path())?;
        self.build_record(&s, &refs)
    }

    /// All images.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let refs = Refs::load(&self.refs_path())?;
        self.all_stored()?.iter().map(|s| self.build_record(s, &refs)).collect()
    }

    /// Sum of the unpacked layer sizes of an image.
    pub fn size(&self, id: &Digest) -> Result<u64> {
        Ok(self.get(id)?.size)
    }

    fn resolve_id(&self, name: &str) -> Result<Digest> {
        let not_found = || StoreError::NotFound(name.to_string());
        if name.is_empty() {
            return Err(not_found());
        }
        let full = name.strip_prefix("sha256:").unwrap_or(name);
        if full.len() == 64 && is_hex(full) {
            let id = Digest::from_sha256_hex(full).map_err(|_| not_found())?;
            return if self.record_path(&id).is_file() {
                Ok(id)
            } else {
                Err(not_found())
            };
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(id) = Refs::load(&self.refs_path())?.get(&r) {
                if self.record_path(id).is_file() {
                    return Ok(id.clone());
                }
            }
        }
        if is_hex(full) {
            let matches: Vec<Digest> = self
                .all_stored()?
                .into_iter()
                .map(|s| s.id)
                .filter(|id| id.hex().starts_with(full))
                .collect();
            if matches.len() == 1 {
                return Ok(matches[0].clone());
            }
        }
        Err(not_found())
    }

    /// Finds an image by reference (`bb`, `bb:latest`, `docker.io/library/bb`, `bb@sha256:..`), full ID,
    /// `sha256:` ID or unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord> {
        let id = self.resolve_id(name_or_id)?;
        let s = self
            .stored(&id)?
            .ok_or_else(|| StoreError::NotFound(name_or_id.to_string()))?;
        let refs = Refs::load(&self.refs_path())?;
        self.build_record(&s, &refs)
    }

    /// Points `target` at the image `source` names.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest().is_some() {
            return Err(StoreError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let id = self.resolve_id(source)?;
        let _l = self.meta_lock()?;
        let mut refs = Refs::load(&self.refs_path())?;
        refs.set(target, &id);
        refs.save()
    }

    /// Adds a reference (tag, or `repo@digest` as a pull records) to an image; returns the image the
    /// reference was taken from, if another.
    pub fn set_reference(&self, r: &Reference, id: &Digest) -> Result<Option<Digest>> {
        if !self.record_path(id).is_file() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let _l = self.meta_lock()?;
        let mut refs = Refs::load(&self.refs_path())?;
        let old = refs.set(r, id);
        refs.save()?;
        Ok(old)
    }

    fn lease(&self, keys: &[String]) {
        let mut l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            *l.entry(k.clone()).or_default() += 1;
        }
    }

    fn unlease(&self, keys: &[String]) {
        let mut l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if let Some(n) = l.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    l.remove(k);
                }
            }
        }
    }

    fn leased(&self, key: &str) -> bool {
        self.leases.lock().unwrap_or_else(|e| e.into_inner()).contains_key(key)
    }

    /// Registers an image from its config bytes (stored verbatim) and layer blobs already in the content
    /// store, unpacking each missing layer into its snapshot (verifying each diff ID). On failure the
    /// blobs and snapshots this call created are removed again unless another image uses them.
    pub fn create_image(&self, config: &[u8], layers: &[LayerBlob]) -> Result<ImageRecord> {
        let id = Digest::sha256(config);
        let cfg: Value = serde_json::from_slice(config)
            .map_err(|e| StoreError::InvalidArchive(format!("image config {id} is not valid JSON: {e}")))?;
        let diff_ids = diff_ids_of(&cfg).map_err(|m| StoreError::InvalidArchive(format!("image config {id}: {m}")))?;
        if diff_ids.len() != layers.len() {
            return Err(StoreError::InvalidArchive(format!(
                "image {id}: config lists {} layers but the manifest has {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        let mut keys: Vec<String> = chains.iter().map(|c| format!("snap:{c}")).collect();
        keys.extend(layers.iter().map(|l| format!("blob:{}", l.digest)));
        keys.push(format!("blob:{id}"));
        self.lease(&keys);
        let mut created_snaps = Vec::new();
        let res = self.create_image_leased(config, &id, layers, &diff_ids, &chains, &mut created_snaps);
        self.unlease(&keys);
        if res.is_err() {
            // Leave no trace of a failed image: remove what we created that nothing else references.
            let _ = self.collect_garbage(&created_snaps, &[], &[]);
        }
        res
    }

    fn create_image_leased(
        &self,
        config: &[u8],
        id: &Digest,
        layers: &[LayerBlob],
        diff_ids: &[Digest],
        chains: &[ChainId],
        created_snaps: &mut Vec<ChainId>,
    ) -> Result<ImageRecord> {
        let mut size = 0u64;
        for (i, layer) in layers.iter().enumerate() {
            let chain = &chains[i];
            let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
            if self.snapshots.has(chain) {
                if layer.digest != diff_ids[i] {
                    // Known snapshot, compressed blob: still check the blob really is that layer.
                    let f = self.blobs.open_blob(&layer.digest)?;
                    let what = format!("layer {}", layer.digest);
                    let r = berth_archive::decompress(f).map_err(|source| StoreError::Archive {
                        what: what.clone(),
                        source,
                    })?;
                    let (d, _) = berth_archive::DigestReader::new(r)
                        .finish()
                        .map_err(|source| StoreError::Read {
                            what: what.clone(),
                            source,
                        })?;
                    if d != diff_ids[i] {
                        return Err(StoreError::DigestMismatch {
                            what,
                            expected: diff_ids[i].clone(),
                            actual: d,
                        });
                    }
                }
                size += self.snapshots.usage(chain)?;
            } else {
                let f = self.blobs.open_blob(&layer.digest)?;
                created_snaps.push(chain.clone());
                size += self.snapshots.apply_layer(chain, parent, f).map_err(|e| match e {
                    SnapshotError::LayerMismatch { diff_id, .. } => StoreError::DigestMismatch {
                        what: format!("layer {} (uncompressed)", layer.digest),
                        expected: diff_ids[i].clone(),
                        actual: diff_id,
                    },
                    e => StoreError::Snapshot(e),
                })?;
            }
        }
        self.blobs.put(config, Some(id), "image config")?;
        let stored = StoredImage {
            id: id.clone(),
            layers: layers.to_vec(),
            size,
        };
        let data = serde_json::to_vec(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let previous = {
            let _l = self.meta_lock()?;
            let previous = self.stored(id)?;
            write_atomic(&self.record_path(id), &data)?;
            previous
        };
        // The same image loaded again from other blobs (say gzip before, plain tar now): the old blobs
        // are no longer referenced.
        if let Some(prev) = previous {
            let stale: Vec<Digest> = prev
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .filter(|d| !layers.iter().any(|l| &l.digest == d))
                .collect();
            if !stale.is_empty() {
                self.collect_garbage(&[], &stale, &[])?;
            }
        }
        self.get(id)
    }

    /// Removes snapshots `chains` and blobs `blobs` that no image record references and no in-flight
    /// operation holds. Returns the chains removed and the bytes they used.
    fn collect_garbage(&self, chains: &[ChainId], blobs: &[Digest], keep: &[ChainId]) -> Result<(Vec<ChainId>, u64)> {
        let _l = self.meta_lock()?;
        let mut used_chains = HashSet::new();
        let mut used_blobs = HashSet::new();
        for s in self.all_stored()? {
            used_blobs.insert(s.id.clone());
            for l in &s.layers {
                used_blobs.insert(l.digest.clone());
            }
            if let Ok(cfg) = self.blobs.read(&s.id) {
                if let Ok(cfg) = serde_json::from_slice::<Value>(&cfg) {
                    if let Ok(d) = diff_ids_of(&cfg) {
                        used_chains.extend(chain_ids(&d));
                    }
                }
            }
        }
        let mut removed = Vec::new();
        let mut space = 0;
        // Top first, as Docker lists released layers.
        for c in chains.iter().rev() {
            if used_chains.contains(c)
                || keep.contains(c)
                || self.leased(&format!("snap:{c}"))
                || !self.snapshots.has(c)
            {
                continue;
            }
            space += self.snapshots.usage(c).unwrap_or(0);
            self.snapshots.remove(c)?;
            removed.push(c.clone());
        }
        for b in blobs {
            if !used_blobs.contains(b) && !self.leased(&format!("blob:{b}")) {
                self.blobs.delete(b)?;
            }
        }
        Ok((removed, space))
    }

    /// `docker import`: one layer from a root filesystem tar (plain or gzip), config from `opts.changes`.
    pub fn import(&self, rootfs_tar: impl Read + Send, opts: ImportOptions) -> Result<ImageRecord> {
        if opts.tag.as_ref().is_some_and(|t| t.digest().is_some()) {
            return Err(StoreError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let reader = berth_archive::decompress(rootfs_tar).map_err(|source| StoreError::Archive {
            what: "import".into(),
            source,
        })?;
        // Docker stores an imported layer uncompressed, so its blob digest is its diff ID.
        let (diff_id, size) = self.blobs.put(reader, None, "imported root filesystem")?;
        let now = berth_types::time::now_rfc3339();
        let mut cfg = serde_json::Map::new();
        apply_changes(&mut cfg, &opts.changes)?;
        let message = if opts.message.is_empty() {
            "Imported from -".to_string()
        } else {
            opts.message.clone()
        };
        let config = json!({
            "architecture": opts.architecture.clone().unwrap_or_else(|| host_architecture().to_string()),
            "comment": message,
            "config": Value::Object(cfg),
            "created": now,
            "history": [{"created": now, "comment": message}],
            "os": opts.os.clone().unwrap_or_else(|| "linux".to_string()),
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        });
        let bytes = serde_json::to_vec(&config).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let layer = LayerBlob {
            digest: diff_id.clone(),
            media_type: MEDIA_DOCKER_LAYER.into(),
            size,
        };
        let rec = match self.create_image(&bytes, std::slice::from_ref(&layer)) {
            Ok(r) => r,
            Err(e) => {
                let _ = self.collect_garbage(&[], &[diff_id], &[]);
                return Err(e);
            }
        };
        if let Some(t) = &opts.tag {
            self.set_reference(t, &rec.id)?;
            return self.get(&rec.id);
        }
        Ok(rec)
    }

    /// `docker history`: newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let img = self.resolve(name)?;
        let mut rows = Vec::new();
        let mut layer = 0usize;
        let hist = img
            .config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let layer_size = |i: usize| {
            img.chain_ids
                .get(i)
                .and_then(|c| self.snapshots.usage(c).ok())
                .unwrap_or(0)
        };
        for h in &hist {
            let empty = h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false);
            let size = if empty {
                0
            } else {
                layer += 1;
                layer_size(layer - 1)
            };
            let s = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            rows.push(HistoryItem {
                id: "<missing>".into(),
                created: berth_types::time::unix_seconds(&s("created")),
                created_by: s("created_by"),
                tags: Vec::new(),
                size,
                comment: s("comment"),
            });
        }
        // Layers without history entries (some OCI images have none) still get a row each.
        while layer < img.chain_ids.len() {
            rows.push(HistoryItem {
                id: "<missing>".into(),
                created: berth_types::time::unix_seconds(&img.created),
                created_by: String::new(),
                tags: Vec::new(),
                size: layer_size(layer),
                comment: String::new(),
            });
            layer += 1;
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = img.id.to_string();
            top.tags = img.repo_tags.clone();
        }
        Ok(rows)
    }

    /// `docker rmi`: untags by reference, deletes by ID, with Docker's conflict rules and messages.
    /// `prune_children` has no effect: berth records no parent links between images.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        _prune_children: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<DeleteItem>> {
        let id = self.resolve_id(name)?;
        let id_s = id.to_string();
        let short = short_id(id.hex()).to_string();
        let mut items = Vec::new();
        let refs_now = Refs::load(&self.refs_path())?.for_image(&id);
        let by_id = id_s.starts_with(name) || id.hex().starts_with(name);
        if !by_id {
            let r = Reference::parse(name)?;
            if !force && is_single_reference(&refs_now) {
                if let Some(c) = in_use(&id_s) {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {short}",
                        short_id(&c)
                    )));
                }
            }
            let remaining = {
                let _l = self.meta_lock()?;
                let mut refs = Refs::load(&self.refs_path())?;
                if refs.remove(&r).is_some() {
                    items.push(DeleteItem::Untagged(r.familiar()));
                }
                // Removing the last tag of a repository also drops its digest references (Docker does).
                if r.tag().is_some() {
                    let rest = refs.for_image(&id);
                    let same_repo = |x: &Reference| x.repository() == r.repository();
                    if !rest.iter().any(|x| same_repo(x) && x.tag().is_some()) {
                        for d in rest.iter().filter(|x| same_repo(x) && x.digest().is_some()) {
                            refs.remove(d);
                            items.push(DeleteItem::Untagged(d.familiar()));
                        }
                    }
                }
                refs.save()?;
                refs.for_image(&id)
            };
            if !remaining.is_empty() {
                return Ok(items);
            }
            // The last reference is gone: the image goes too unless a container uses it (which, without
            // force, was refused above).
        } else if is_single_reference(&refs_now) {
            if !force {
                if let Some(c) = in_use(&id_s) {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                        short_id(&c)
                    )));
                }
            }
        } else if !force {
            if !refs_now.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if let Some(c) = in_use(&id_s) {
                return Err(StoreError::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                    short_id(&c)
                )));
            }
        }
        items.extend(self.delete_image(&id, in_use(&id_s).is_some())?.0);
        Ok(items)
    }

    /// Drops all references and the record of `id`, then the snapshots and blobs nothing else uses
    /// (snapshots are kept when a container still runs on them).
    fn delete_image(&self, id: &Digest, keep_snapshots: bool) -> Result<(Vec<DeleteItem>, u64)> {
        let mut items = Vec::new();
        let stored = self.stored(id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let chains = match self
            .blobs
            .read(id)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            Some(cfg) => diff_ids_of(&cfg).map(|d| chain_ids(&d)).unwrap_or_default(),
            None => Vec::new(),
        };
        {
            let _l = self.meta_lock()?;
            let mut refs = Refs::load(&self.refs_path())?;
            for r in refs.for_image(id) {
                refs.remove(&r);
                items.push(DeleteItem::Untagged(r.familiar()));
            }
            refs.save()?;
            let p = self.record_path(id);
            std::fs::remove_file(&p).map_err(io_err("remove", &p))?;
        }
        items.push(DeleteItem::Deleted(id.to_string()));
        let mut blobs: Vec<Digest> = stored.layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(id.clone());
        let keep: Vec<ChainId> = if keep_snapshots { chains.clone() } else { Vec::new() };
        let (removed, space) = self.collect_garbage(&chains, &blobs, &keep)?;
        items.extend(removed.iter().map(|c| DeleteItem::Deleted(c.to_string())));
        Ok((items, space))
    }

    /// `docker image prune`: images no container uses that are dangling (no references), or all of them
    /// when `dangling_only` is false.
    pub fn prune(&self, dangling_only: bool, in_use: &dyn Fn(&str) -> Option<String>) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let refs = Refs::load(&self.refs_path())?;
        for s in self.all_stored()? {
            if in_use(&s.id.to_string()).is_some() {
                continue;
            }
            if dangling_only && !refs.for_image(&s.id).is_empty() {
                continue;
            }
            let (items, space) = self.delete_image(&s.id, false)?;
            report.deleted.extend(items);
            report.space_reclaimed += space;
        }
        Ok(report)
    }
}

/// `rootfs.diff_ids` of a config.
fn diff_ids_of(cfg: &Value) -> std::result::Result<Vec<Digest>, String> {
    let Some(obj) = cfg.as_object() else {
        return Err("config is not a JSON object".into());
    };
    let rootfs = obj.get("rootfs").ok_or("config has no rootfs")?;
    let ids = rootfs.get("diff_ids").and_then(Value::as_array);
    let Some(ids) = ids else {
        return match rootfs.get("diff_ids") {
            None | Some(Value::Null) => Ok(Vec::new()),
            _ => Err("rootfs.diff_ids is not an array".into()),
        };
    };
    ids.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| "rootfs.diff_ids holds a non-string".to_string())?
                .parse::<Digest>()
                .map_err(|e| format!("rootfs.diff_ids: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
