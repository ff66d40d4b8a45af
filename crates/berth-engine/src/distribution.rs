//! The daemon side of `docker pull`, `push`, `login`, `search` and `manifest inspect`: the
//! [`DistributionService`] drives the registry client (berth-distribution) and the image store, and
//! reports progress as the JSON messages dockerd streams (the docker CLI draws its bars from them).
//!
//! Pull: resolve the manifest for the platform, fetch the config (size-capped), then fetch the missing
//! layers, [`PULL_CONCURRENCY`] at a time. Each layer streams into the content store (hashed while
//! written, [`berth_store::BlobWriter`]) and, through the same bytes, into decompress+unpack
//! ([`berth_snapshot::Snapshotter::prepare_layer`]); nothing becomes visible before the compressed
//! digest (checked by the blob stream and again by the blob writer) and the diff ID (checked by the
//! unpacker against the config's `rootfs.diff_ids`) match. Snapshots are committed once every layer is
//! verified, then the image is registered and tagged. A failed pull removes the snapshots it made and,
//! unless the failure was a network one, the blobs it stored; after a network failure the verified
//! blobs stay so that the next pull does not fetch them again ("Already exists").
//!
//! Push: layers go as stored (a gzip blob as gzip, an uncompressed tar from `load`/`import`/`commit`
//! as an uncompressed layer: no recompression) in a Docker schema 2 manifest, or an OCI manifest when a
//! layer is zstd (schema 2 has no zstd type). Blobs the registry has are skipped (HEAD); a blob this
//! daemon pulled from or pushed to another repository of the same registry is cross-mounted. The
//! source repositories per blob are recorded in `<image-root>/distribution/sources.json`, as dockerd's
//! distribution metadata does.

use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus, EventType};
use berth_distribution::{AuthConfig, Descriptor, DistributionError, Platform, RegistryClient};
use berth_snapshot::PreparedLayer;
use berth_store::{ImageRecord, ImageStore, LayerBlob};
use berth_types::{chain_ids, ChainId, Digest, Reference};
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// The largest image config a pull accepts.
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;
/// Layers downloaded at once (dockerd's `max-concurrent-downloads` default).
pub const PULL_CONCURRENCY: usize = 3;
/// Layers uploaded at once (dockerd's `max-concurrent-uploads` default).
pub const PUSH_CONCURRENCY: usize = 5;
/// Minimum time between two progress messages of one layer.
const THROTTLE: Duration = Duration::from_millis(100);

const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MT_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MT_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("registry task failed: {e}")))?
}

fn dist(e: DistributionError) -> EngineError {
    EngineError::Distribution(Box::new(e))
}

/// Where pull/push progress goes: Docker's JSON messages, one per line on the wire.
#[derive(Debug, Clone)]
pub struct Progress {
    tx: mpsc::UnboundedSender<Value>,
}

impl Progress {
    /// A progress sink and the receiver the HTTP layer streams from.
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<Value>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress { tx }, rx)
    }

    fn send(&self, v: Value) {
        // The client may have gone away; the operation still completes.
        let _ = self.tx.send(v);
    }

    /// Text output (`{"stream": ...}`), as a build's steps print it.
    pub(crate) fn stream(&self, text: &str) {
        self.send(json!({ "stream": text }));
    }

    fn status(&self, status: &str) {
        self.send(json!({ "status": status }));
    }

    fn layer(&self, id: &str, status: &str) {
        self.send(json!({ "status": status, "progressDetail": {}, "id": id }));
    }

    fn bar(&self, id: &str, status: &str, current: u64, total: u64) {
        self.send(json!({
            "status": status,
            "progressDetail": { "current": current, "total": total },
            "progress": progress_bar(current, total),
            "id": id,
        }));
    }

    pub(crate) fn aux(&self, aux: Value) {
        self.send(json!({ "progressDetail": {}, "aux": aux }));
    }
}

/// Docker's progress string: `[=====>      ]  1.2MB/3.4MB`.
fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = match current.min(total).saturating_mul(WIDTH).checked_div(total) {
        Some(f) => f.min(WIDTH),
        None => 0,
    };
    let mut bar = "=".repeat(filled as usize);
    if filled < WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat((WIDTH - filled - 1) as usize));
    }
    format!("[{bar}] {:>8}/{}", human_size(current), human_size(total))
}

/// Docker's `units.HumanSize`: decimal units, four significant digits.
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// Sends a layer's byte counts at most every [`THROTTLE`] or 1% of the total.
struct Throttle {
    last: Option<Instant>,
    last_pct: u64,
}

impl Throttle {
    fn new() -> Throttle {
        Throttle {
            last: None,
            last_pct: 0,
        }
    }

    fn due(&mut self, current: u64, total: u64) -> bool {
        let pct = current.saturating_mul(100).checked_div(total).unwrap_or(100);
        let due = match self.last {
            None => true,
            Some(t) => t.elapsed() >= THROTTLE || pct > self.last_pct,
        };
        if due {
            self.last = Some(Instant::now());
            self.last_pct = pct;
        }
        due
    }
}

/// The reference a `POST /images/create` asks for: `fromImage` and `tag` (a tag or a digest). The
/// boolean is true when every tag of the repository is asked (`docker pull --all-tags`).
pub fn pull_reference(from_image: &str, tag: &str) -> Result<(Reference, bool)> {
    let bad = |e: berth_types::ReferenceError| EngineError::InvalidArgument(format!("invalid reference format: {e}"));
    let name = Reference::parse_name_only(from_image).map_err(bad)?;
    if tag.is_empty() {
        let all = name.tag().is_none() && name.digest().is_none();
        return Ok((name, all));
    }
    // As dockerd: `tag` replaces a tag or digest `fromImage` carries.
    let name = Reference::parse_name_only(&name.familiar_repository()).map_err(bad)?;
    if tag.contains(':') {
        let d: Digest = tag
            .parse()
            .map_err(|_| EngineError::InvalidArgument(format!("invalid reference format: bad digest {tag}")))?;
        return Ok((name.with_digest(d), false));
    }
    Ok((name.with_tag(tag).map_err(bad)?, false))
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

fn auth_opt(a: &AuthConfig) -> Option<&AuthConfig> {
    (!a.is_anonymous()).then_some(a)
}

/// The source repositories (`domain/path`) of each blob, for cross-repository mounts.
#[derive(Debug)]
struct BlobSources {
    path: PathBuf,
    lock: Mutex<()>,
}

impl BlobSources {
    const MAX_PER_BLOB: usize = 5;

    fn load(&self) -> BTreeMap<String, Vec<String>> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn get(&self, d: &Digest) -> Vec<String> {
        let _l = crate::lock(&self.lock);
        self.load().remove(&d.to_string()).unwrap_or_default()
    }

    fn add(&self, digests: &[Digest], repo: &str) {
        let _l = crate::lock(&self.lock);
        let mut all = self.load();
        for d in digests {
            let v = all.entry(d.to_string()).or_default();
            v.retain(|r| r != repo);
            v.insert(0, repo.to_string());
            v.truncate(Self::MAX_PER_BLOB);
        }
        let res = serde_json::to_vec(&all)
            .map_err(io::Error::other)
            .and_then(|data| berth_types::write_atomic(&self.path, &data).map_err(|e| e.source));
        if let Err(e) = res {
            tracing::warn!("recording blob sources in {}: {e}", self.path.display());
        }
    }
}

/// Pulls, pushes, logins and searches.
pub struct DistributionService {
    /// Replaced whole when the daemon's registry settings are reloaded (`SIGHUP`); an operation
    /// keeps the client it started with.
    client: std::sync::RwLock<RegistryClient>,
    store: Arc<ImageStore>,
    events: EventBus,
    sources: BlobSources,
}

impl std::fmt::Debug for DistributionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributionService")
            .field("store", &self.store)
            .finish()
    }
}

/// One layer a pull downloads.
#[derive(Debug, Clone)]
struct PullJob {
    desc: Descriptor,
    chain: ChainId,
    parent: Option<ChainId>,
    /// Unpack while downloading (the snapshot is missing).
    unpack: bool,
    id: String,
}

impl DistributionService {
    /// Serves pulls into and pushes from `store` through `client`; `meta_dir` holds the blob sources
    /// (created when missing).
    pub fn new(
        client: RegistryClient,
        store: Arc<ImageStore>,
        events: EventBus,
        meta_dir: PathBuf,
    ) -> Result<Arc<DistributionService>> {
        std::fs::create_dir_all(&meta_dir).map_err(|e| EngineError::io("create", &meta_dir, e))?;
        Ok(Arc::new(DistributionService {
            client: std::sync::RwLock::new(client),
            store,
            events,
            sources: BlobSources {
                path: meta_dir.join("sources.json"),
                lock: Mutex::new(()),
            },
        }))
    }

    /// The registry client in use now.
    fn client(&self) -> RegistryClient {
        match self.client.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The registry client's configuration.
    pub fn client_config(&self) -> berth_distribution::ClientConfig {
        self.client().config().clone()
    }

    /// Uses a new registry configuration (insecure registries, mirrors) from now on; operations
    /// under way finish with the old one.
    pub fn reconfigure(&self, config: berth_distribution::ClientConfig) {
        let client = RegistryClient::new(config);
        match self.client.write() {
            Ok(mut c) => *c = client,
            Err(poisoned) => *poisoned.into_inner() = client,
        }
    }

    /// `/info`'s `RegistryConfig`, shaped as dockerd's (`--insecure-registry` CIDRs and hosts,
    /// `--registry-mirror`s; loopback is always insecure, as in dockerd).
    pub fn registry_config(&self) -> Value {
        registry_config_json(self.client().config())
    }

    // ---- pull ----------------------------------------------------------------------------------

    /// `POST /images/create?fromImage=`: pulls `r` (every tag of its repository when `all_tags`) for
    /// `platform` (`os/arch[/variant]`, the host's when `None`).
    pub async fn pull(
        self: &Arc<Self>,
        r: &Reference,
        all_tags: bool,
        platform: Option<&str>,
        auth: &AuthConfig,
        progress: &Progress,
    ) -> Result<()> {
        let result = self.pull_all(r, all_tags, platform, auth, progress).await;
        crate::metrics::count(&crate::metrics::metrics().pulls, result)
    }

    async fn pull_all(
        self: &Arc<Self>,
        r: &Reference,
        all_tags: bool,
        platform: Option<&str>,
        auth: &AuthConfig,
        progress: &Progress,
    ) -> Result<()> {
        let asked = platform.filter(|p| !p.is_empty());
        let platform = match asked {
            Some(p) => Platform::parse(p).map_err(dist)?,
            None => Platform::host(),
        };
        let want = PlatformWanted {
            platform: &platform,
            explicit: asked.is_some(),
        };
        if !all_tags {
            let newer = self.pull_one(r, &want, auth, progress).await?;
            let what = if newer {
                "Downloaded newer image for"
            } else {
                "Image is up to date for"
            };
            progress.status(&format!("Status: {what} {}", r.familiar()));
            return Ok(());
        }
        let tags = self.client().tags(r, auth_opt(auth)).await.map_err(dist)?;
        let mut newer = false;
        for t in &tags {
            let tagged = r
                .with_tag(t)
                .map_err(|e| EngineError::InvalidArgument(format!("registry tag {t:?}: {e}")))?;
            newer |= self.pull_one(&tagged, &want, auth, progress).await?;
        }
        let what = if newer {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        progress.status(&format!("Status: {what} {}", r.familiar_repository()));
        Ok(())
    }

    /// Pulls one tag or digest; true when the reference now names an image it did not name before.
    async fn pull_one(
        self: &Arc<Self>,
        r: &Reference,
        want: &PlatformWanted<'_>,
        auth: &AuthConfig,
        progress: &Progress,
    ) -> Result<bool> {
        let a = auth_opt(auth);
        let resolved = self.client().resolve(r, want.platform, a).await.map_err(dist)?;
        let shown_id = r.manifest_reference();
        progress.send(json!({ "status": format!("Pulling from {}", r.path()), "id": shown_id }));
        let config = self
            .client()
            .fetch_blob_bytes(r, &resolved.config, MAX_CONFIG_SIZE, a)
            .await
            .map_err(dist)?;
        let diff_ids = config_diff_ids(&config)?;
        // An index chose by platform already; a single image asked for with `--platform` must be
        // of that platform (dockerd's graphdriver store refuses it with this message), and
        // nothing of it is stored.
        if want.explicit && resolved.index.is_none() {
            if let Some(actual) = config_platform(&config) {
                if !want.platform.matches(&actual) {
                    return Err(EngineError::NotFound(format!(
                        "image with reference {} was found but does not match the specified platform: wanted {}, actual: {}",
                        r.familiar(),
                        want.platform,
                        actual
                    )));
                }
            }
        }
        if diff_ids.len() != resolved.layers.len() {
            return Err(EngineError::InvalidArgument(format!(
                "image {}: the config lists {} layers but the manifest has {}",
                r.familiar(),
                diff_ids.len(),
                resolved.layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        let id = Digest::sha256(&config);
        let mut leased: Vec<Digest> = resolved.layers.iter().map(|l| l.digest.clone()).collect();
        leased.push(id.clone());
        let lease = self.store.lease_for(&leased, &chains);

        // Which layers to fetch: a blob already stored is not fetched again ("Already exists").
        let mut jobs: Vec<PullJob> = Vec::new();
        let mut seen_blobs = HashSet::new();
        let mut seen_chains = HashSet::new();
        for (i, l) in resolved.layers.iter().enumerate() {
            let lid = short(&l.digest);
            if self.store.blobs().has(&l.digest) {
                progress.layer(&lid, "Already exists");
                continue;
            }
            if !seen_blobs.insert(l.digest.clone()) {
                continue;
            }
            let unpack = !self.store.snapshotter().has(&chains[i]) && seen_chains.insert(chains[i].clone());
            jobs.push(PullJob {
                desc: l.clone(),
                chain: chains[i].clone(),
                parent: (i > 0).then(|| chains[i - 1].clone()),
                unpack,
                id: lid,
            });
        }
        for j in &jobs {
            progress.layer(&j.id, "Pulling fs layer");
        }
        let sem = Arc::new(Semaphore::new(PULL_CONCURRENCY));
        let futures = jobs.iter().map(|j| {
            let (this, sem, j) = (self.clone(), sem.clone(), j.clone());
            async move { this.fetch_layer(r, j, a, &sem, progress).await }
        });
        let outcome = futures_util::future::try_join_all(futures).await;

        let mut created_chains = Vec::new();
        let created_blobs: Vec<Digest> = jobs.iter().map(|j| j.desc.digest.clone()).collect();
        let result = match outcome {
            Ok(prepared) => {
                let verified: HashSet<Digest> = jobs
                    .iter()
                    .filter(|j| j.unpack)
                    .map(|j| j.desc.digest.clone())
                    .collect();
                self.finish_pull(r, &resolved, config, prepared, verified, &mut created_chains, progress)
                    .await
            }
            Err(e) => Err(e),
        };
        drop(lease);
        match result {
            Ok(id_now) => {
                let newer = id_now.0;
                self.sources.add(&created_blobs, &r.repository());
                self.events
                    .publish(Event::new(EventType::Image, "pull", r.familiar()).attr("name", r.familiar_repository()));
                Ok(newer)
            }
            Err(e) => {
                let transient = matches!(&e, EngineError::Distribution(d) if d.is_transient());
                let blobs: &[Digest] = if transient { &[] } else { &created_blobs };
                let store = self.store.clone();
                let (chains, blobs) = (created_chains.clone(), blobs.to_vec());
                let _ = blocking(move || Ok(store.discard(&chains, &blobs)?)).await;
                Err(e)
            }
        }
    }

    /// Commits the prepared snapshots, registers the image and sets its references. Returns whether
    /// the reference changed (a newer image) and the image ID.
    #[allow(clippy::too_many_arguments)]
    async fn finish_pull(
        self: &Arc<Self>,
        r: &Reference,
        resolved: &berth_distribution::Resolved,
        config: Vec<u8>,
        prepared: Vec<(PullJob, Option<PreparedLayer>)>,
        verified: HashSet<Digest>,
        created_chains: &mut Vec<ChainId>,
        progress: &Progress,
    ) -> Result<(bool, Digest)> {
        let store = self.store.clone();
        let layers: Vec<LayerBlob> = resolved
            .layers
            .iter()
            .map(|l| LayerBlob {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            })
            .collect();
        let manifest_digest = match &resolved.index {
            Some((d, _)) => d.clone(),
            None => resolved.digest.clone(),
        };
        let r2 = r.clone();
        let progress2 = progress.clone();
        let (tx, rx) = std::sync::mpsc::channel::<ChainId>();
        let res = tokio::task::spawn_blocking(move || -> Result<(bool, Digest)> {
            for (job, p) in prepared {
                if let Some(p) = p {
                    let chain = p.chain().clone();
                    p.commit()?;
                    let _ = tx.send(chain);
                }
                progress2.layer(&job.id, "Pull complete");
            }
            let before = if r2.digest().is_none() {
                store.resolve(&r2.to_string()).ok().map(|img| img.id)
            } else {
                store.resolve(&r2.familiar()).ok().map(|img| img.id)
            };
            let img = store.create_image_trusting(&config, &layers, &verified)?;
            if r2.digest().is_none() {
                store.set_reference(&r2, &img.id)?;
            }
            let by_digest = Reference::parse(&r2.familiar_repository())
                .map_err(|e| EngineError::Internal(e.to_string()))?
                .with_digest(manifest_digest.clone());
            store.set_reference(&by_digest, &img.id)?;
            progress2.status(&format!("Digest: {manifest_digest}"));
            Ok((before.as_ref() != Some(&img.id), img.id))
        })
        .await
        .map_err(|e| EngineError::Internal(format!("pull task failed: {e}")))?;
        created_chains.extend(rx.try_iter());
        res
    }

    /// Downloads one layer into the content store, unpacking it on the way when `job.unpack`.
    async fn fetch_layer(
        self: Arc<Self>,
        r: &Reference,
        job: PullJob,
        auth: Option<&AuthConfig>,
        sem: &Semaphore,
        progress: &Progress,
    ) -> Result<(PullJob, Option<PreparedLayer>)> {
        let _permit = match sem.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                progress.layer(&job.id, "Waiting");
                sem.acquire()
                    .await
                    .map_err(|e| EngineError::Internal(format!("download slots: {e}")))?
            }
        };
        let mut stream = self.client().fetch_blob(r, &job.desc, 0, auth).await.map_err(dist)?;
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let complete = Arc::new(AtomicBool::new(false));
        let store = self.store.clone();
        let (j, done) = (job.clone(), complete.clone());
        let unpacker = tokio::task::spawn_blocking(move || -> Result<Option<PreparedLayer>> {
            let writer = store.blobs().writer(&format!("layer {}", j.desc.digest))?;
            let mut tee = Tee {
                inner: ChannelReader {
                    rx,
                    buf: Bytes::new(),
                    complete: done,
                },
                writer,
            };
            let prepared = if j.unpack {
                let p = store
                    .snapshotter()
                    .prepare_layer(&j.chain, j.parent.as_ref(), &mut tee)
                    .map_err(|e| match e {
                        berth_snapshot::SnapshotError::LayerMismatch { diff_id, .. } => {
                            EngineError::InvalidArgument(format!(
                                "filesystem layer verification failed for digest {}: its content has diff ID {diff_id}, not the one the image config lists",
                                j.desc.digest
                            ))
                        }
                        e => EngineError::from(e),
                    })?;
                Some(p)
            } else {
                None
            };
            // The tar may end before the compressed stream does: read to the end, which is where the
            // download's digest is checked.
            io::copy(&mut tee, &mut io::sink())
                .map_err(|e| EngineError::Internal(format!("downloading layer {}: {e}", j.desc.digest)))?;
            tee.writer.commit(Some(&j.desc.digest))?;
            Ok(prepared)
        });
        let total = job.desc.size;
        let mut got = 0u64;
        let mut throttle = Throttle::new();
        let mut stream_err = None;
        let mut receiver_gone = false;
        let mut ended = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(b) => {
                    got += b.len() as u64;
                    if !receiver_gone && tx.send(b).await.is_err() {
                        // The unpacker failed; read on to learn whether the blob itself was bad.
                        receiver_gone = true;
                    }
                    if !receiver_gone && throttle.due(got, total) {
                        progress.bar(&job.id, "Downloading", got, total);
                    }
                }
                Err(e) => {
                    stream_err = Some(e);
                    break;
                }
            }
        }
        if stream_err.is_none() {
            ended = true;
        }
        if ended && !receiver_gone {
            progress.bar(&job.id, "Downloading", got, total);
            progress.layer(&job.id, "Verifying Checksum");
            progress.layer(&job.id, "Download complete");
        }
        complete.store(ended, Ordering::SeqCst);
        drop(tx);
        let res = unpacker
            .await
            .map_err(|e| EngineError::Internal(format!("layer task failed: {e}")))?;
        if let Some(e) = stream_err {
            return Err(dist(e));
        }
        let prepared = res?;
        progress.bar(&job.id, "Extracting", total, total);
        Ok((job, prepared))
    }

    // ---- push ----------------------------------------------------------------------------------

    /// The tagged references `POST /images/{name}/push?tag=` pushes: `name:tag`, or every tag of the
    /// repository when neither `name` nor `tag` has one. Called before the progress stream starts, so
    /// a missing image is answered with dockerd's 404.
    pub async fn push_targets(self: &Arc<Self>, name: &str, tag: &str) -> Result<Vec<Reference>> {
        let bad =
            |e: berth_types::ReferenceError| EngineError::InvalidArgument(format!("invalid reference format: {e}"));
        let r = Reference::parse_name_only(name).map_err(bad)?;
        if r.digest().is_some() {
            return Err(EngineError::InvalidArgument(format!(
                "cannot push a digest reference: {}",
                r.familiar()
            )));
        }
        let store = self.store.clone();
        let tag = tag.to_string();
        tokio::task::spawn_blocking(move || {
            let missing = || {
                EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_repository()
                ))
            };
            if !tag.is_empty() || r.tag().is_some() {
                let t = if tag.is_empty() {
                    r.clone()
                } else {
                    r.with_tag(&tag).map_err(bad)?
                };
                store.resolve(&t.familiar()).map_err(|_| missing())?;
                return Ok(vec![t]);
            }
            let repo = r.familiar_repository();
            let mut out = Vec::new();
            for img in store.list()? {
                for t in &img.repo_tags {
                    if let Ok(tr) = Reference::parse(t) {
                        if tr.familiar_repository() == repo {
                            out.push(tr);
                        }
                    }
                }
            }
            out.sort_by_key(|r| r.familiar());
            if out.is_empty() {
                return Err(missing());
            }
            Ok(out)
        })
        .await
        .map_err(|e| EngineError::Internal(format!("push task failed: {e}")))?
    }

    /// Pushes the images `targets` (from [`DistributionService::push_targets`]) to their registry.
    pub async fn push(self: &Arc<Self>, targets: &[Reference], auth: &AuthConfig, progress: &Progress) -> Result<()> {
        let result = self.push_all(targets, auth, progress).await;
        crate::metrics::count(&crate::metrics::metrics().pushes, result)
    }

    async fn push_all(self: &Arc<Self>, targets: &[Reference], auth: &AuthConfig, progress: &Progress) -> Result<()> {
        let Some(first) = targets.first() else {
            return Ok(());
        };
        progress.status(&format!("The push refers to repository [{}]", first.repository()));
        for t in targets {
            self.push_one(t, auth, progress).await?;
        }
        Ok(())
    }

    async fn push_one(self: &Arc<Self>, r: &Reference, auth: &AuthConfig, progress: &Progress) -> Result<()> {
        let a = auth_opt(auth);
        let store = self.store.clone();
        let name = r.familiar();
        let img: ImageRecord = blocking(move || Ok(store.resolve(&name)?)).await?;
        // Layer media types from the stored bytes, not from labels: the blob is pushed as is.
        let store = self.store.clone();
        let blobs: Vec<Digest> = img.layers.iter().map(|l| l.digest.clone()).collect();
        let kinds = tokio::task::spawn_blocking(move || -> Result<Vec<(Compression, u64)>> {
            blobs
                .iter()
                .map(|d| {
                    let mut head = [0u8; 4];
                    let mut f = store.blobs().open_blob(d)?;
                    let n =
                        read_head(&mut f, &mut head).map_err(|e| EngineError::io("read", store.blobs().path(d), e))?;
                    Ok((Compression::sniff(&head[..n]), store.blobs().size(d)?))
                })
                .collect()
        })
        .await
        .map_err(|e| EngineError::Internal(format!("push task failed: {e}")))??;
        let oci = kinds.iter().any(|(c, _)| *c == Compression::Zstd);
        let layer_descs: Vec<Descriptor> = img
            .layers
            .iter()
            .zip(&kinds)
            .map(|(l, (c, size))| Descriptor {
                media_type: c.media_type(oci).to_string(),
                digest: l.digest.clone(),
                size: *size,
                urls: Vec::new(),
                annotations: None,
            })
            .collect();
        let ids: Vec<String> = img
            .diff_ids
            .iter()
            .map(short)
            .chain(std::iter::repeat(String::new()))
            .take(layer_descs.len())
            .collect();
        // Top layer first, as dockerd lists them.
        for (d, id) in layer_descs.iter().zip(&ids).rev() {
            let _ = d;
            progress.layer(id, "Preparing");
        }
        let sem = Arc::new(Semaphore::new(PUSH_CONCURRENCY));
        let uploads = layer_descs.iter().zip(&ids).rev().map(|(d, id)| {
            let (this, sem) = (self.clone(), sem.clone());
            async move { this.push_layer(r, d, id, a, &sem, progress).await }
        });
        futures_util::future::try_join_all(uploads).await?;

        let config = self.store.blobs().read(&img.id)?;
        let config_desc = Descriptor {
            media_type: if oci { MT_OCI_CONFIG } else { MT_DOCKER_CONFIG }.to_string(),
            digest: img.id.clone(),
            size: config.len() as u64,
            urls: Vec::new(),
            annotations: None,
        };
        if self.client().blob_exists(r, &img.id, a).await.map_err(dist)?.is_none() {
            self.client()
                .push_blob(r, &config_desc, &config[..], &|_| {}, a)
                .await
                .map_err(dist)?;
        }
        let manifest_type = if oci { MT_OCI_MANIFEST } else { MT_DOCKER_MANIFEST };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": descriptor_json(&config_desc),
            "layers": layer_descs.iter().map(descriptor_json).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| EngineError::Internal(e.to_string()))?;
        let tag = r.tag().unwrap_or(berth_distribution::DEFAULT_TAG).to_string();
        let digest = self
            .client()
            .put_manifest(r, &tag, manifest_type, &bytes, a)
            .await
            .map_err(dist)?;
        progress.status(&format!("{tag}: digest: {digest} size: {}", bytes.len()));
        progress.aux(json!({ "Tag": tag, "Digest": digest.to_string(), "Size": bytes.len() }));
        let mut pushed: Vec<Digest> = layer_descs.iter().map(|d| d.digest.clone()).collect();
        pushed.push(img.id.clone());
        self.sources.add(&pushed, &r.repository());
        let store = self.store.clone();
        let by_digest = Reference::parse(&r.familiar_repository())
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .with_digest(digest);
        let id = img.id.clone();
        blocking(move || Ok(store.set_reference(&by_digest, &id)?)).await?;
        self.events
            .publish(Event::new(EventType::Image, "push", r.familiar()).attr("name", r.familiar_repository()));
        Ok(())
    }

    async fn push_layer(
        self: Arc<Self>,
        r: &Reference,
        desc: &Descriptor,
        id: &str,
        auth: Option<&AuthConfig>,
        sem: &Semaphore,
        progress: &Progress,
    ) -> Result<()> {
        let _permit = match sem.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                progress.layer(id, "Waiting");
                sem.acquire()
                    .await
                    .map_err(|e| EngineError::Internal(format!("upload slots: {e}")))?
            }
        };
        if self
            .client()
            .blob_exists(r, &desc.digest, auth)
            .await
            .map_err(dist)?
            .is_some()
        {
            progress.layer(id, "Layer already exists");
            return Ok(());
        }
        let here = r.repository();
        let domain_prefix = format!("{}/", r.domain());
        for src in self.sources.get(&desc.digest) {
            let Some(from) = src.strip_prefix(&domain_prefix) else {
                continue;
            };
            if src == here {
                continue;
            }
            match self.client().mount_blob(r, &desc.digest, from, auth).await {
                Ok(true) => {
                    progress.layer(id, &format!("Mounted from {from}"));
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) => tracing::debug!("mounting {} from {from}: {e}", desc.digest),
            }
        }
        let path = self.store.blobs().path(&desc.digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| EngineError::io("open", &path, e))?;
        let throttle = Mutex::new(Throttle::new());
        let total = desc.size;
        let report = |sent: u64| {
            if crate::lock(&throttle).due(sent, total) {
                progress.bar(id, "Pushing", sent, total);
            }
        };
        self.client()
            .push_blob(r, desc, tokio::io::BufReader::new(file), &report, auth)
            .await
            .map_err(dist)?;
        progress.layer(id, "Pushed");
        Ok(())
    }

    // ---- login, search, distribution inspect ---------------------------------------------------

    /// `POST /auth`: checks the credentials against the registry; returns the status and identity
    /// token (empty when the registry gave none).
    pub async fn login(&self, auth: &AuthConfig) -> Result<(String, String)> {
        let server = if auth.serveraddress.is_empty() {
            "https://index.docker.io/v1/"
        } else {
            auth.serveraddress.as_str()
        };
        let out = self.client().login(server, auth).await.map_err(dist)?;
        Ok((out.status, out.identity_token.unwrap_or_default()))
    }

    /// `GET /images/search`: `term` may start with a registry (`localhost:5000/name`).
    pub async fn search(&self, term: &str, limit: u32, auth: &AuthConfig) -> Result<Vec<Value>> {
        let (registry, q) = match term.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => (first, rest),
            _ => ("docker.io", term),
        };
        let results = self
            .client()
            .search(registry, q, limit, auth_opt(auth))
            .await
            .map_err(|e| match e {
                DistributionError::Unsupported(_) => {
                    EngineError::Unsupported(format!("registry {registry} does not support search"))
                }
                e => dist(e),
            })?;
        Ok(results
            .into_iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "description": s.description,
                    "star_count": s.star_count,
                    "is_official": s.is_official,
                    "is_automated": s.is_automated,
                })
            })
            .collect())
    }

    /// `GET /distribution/{name}/json`: the descriptor the reference resolves to and the platforms
    /// it offers.
    pub async fn inspect_distribution(&self, name: &str, auth: &AuthConfig) -> Result<Value> {
        let r = Reference::parse(name)
            .map_err(|e| EngineError::InvalidArgument(format!("invalid reference format: {e}")))?;
        let a = auth_opt(auth);
        let reference = r.manifest_reference();
        let (bytes, media_type, digest) = self.client().get_manifest(&r, &reference, a).await.map_err(dist)?;
        let shown = r.familiar();
        let platforms: Vec<Value> = if media_type.contains("index") || media_type.contains("list") {
            berth_distribution::manifest::parse_index(&shown, &bytes)
                .map_err(dist)?
                .into_iter()
                .filter_map(|e| e.platform)
                .map(|p| platform_json(&p.os, &p.architecture, p.variant.as_deref()))
                .collect()
        } else {
            let (config, _) = berth_distribution::manifest::parse_image_manifest(&shown, &bytes).map_err(dist)?;
            let cfg = self
                .client()
                .fetch_blob_bytes(&r, &config, MAX_CONFIG_SIZE, a)
                .await
                .map_err(dist)?;
            let v: Value = serde_json::from_slice(&cfg)
                .map_err(|e| EngineError::InvalidArgument(format!("image config of {shown}: {e}")))?;
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let variant = s("variant");
            vec![platform_json(
                &s("os"),
                &s("architecture"),
                (!variant.is_empty()).then_some(variant.as_str()),
            )]
        };
        Ok(json!({
            "Descriptor": { "mediaType": media_type, "digest": digest.to_string(), "size": bytes.len() },
            "Platforms": platforms,
        }))
    }
}

fn registry_config_json(cfg: &berth_distribution::ClientConfig) -> Value {
    let mirrors: Vec<String> = cfg
        .mirrors
        .iter()
        .map(|m| if m.ends_with('/') { m.clone() } else { format!("{m}/") })
        .collect();
    let mut cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({ "Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true }),
    );
    for r in &cfg.insecure_registries {
        if r.parse::<ipnet::IpNet>().is_ok() {
            if !cidrs.contains(r) {
                cidrs.push(r.clone());
            }
        } else {
            index.insert(
                r.clone(),
                json!({ "Name": r, "Mirrors": [], "Secure": false, "Official": false }),
            );
        }
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": null,
        "AllowNondistributableArtifactsHostnames": null,
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index,
        "Mirrors": mirrors,
    })
}

fn platform_json(os: &str, arch: &str, variant: Option<&str>) -> Value {
    let mut p = json!({ "architecture": arch, "os": os });
    if let Some(v) = variant {
        p["variant"] = json!(v);
    }
    p
}

fn descriptor_json(d: &Descriptor) -> Value {
    json!({ "mediaType": d.media_type, "size": d.size, "digest": d.digest.to_string() })
}

/// The `rootfs.diff_ids` of an image config.
/// The platform a pull asks for, and whether the user named it (`--platform`) or it is the host's.
struct PlatformWanted<'a> {
    platform: &'a Platform,
    explicit: bool,
}

/// The `os`/`architecture`/`variant` an image config declares, when it declares both of the first.
fn config_platform(config: &[u8]) -> Option<Platform> {
    let v: Value = serde_json::from_slice(config).ok()?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    Some(Platform {
        os: field("os")?,
        architecture: field("architecture")?,
        variant: field("variant"),
    })
}

fn config_diff_ids(config: &[u8]) -> Result<Vec<Digest>> {
    let bad = |m: String| EngineError::InvalidArgument(format!("invalid image config: {m}"));
    let v: Value = serde_json::from_slice(config).map_err(|e| bad(e.to_string()))?;
    match v.get("rootfs").and_then(|r| r.get("diff_ids")) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|d| {
                d.as_str()
                    .ok_or_else(|| bad("rootfs.diff_ids holds a non-string".into()))?
                    .parse::<Digest>()
                    .map_err(|e| bad(format!("rootfs.diff_ids: {e}")))
            })
            .collect(),
        Some(_) => Err(bad("rootfs.diff_ids is not an array".into())),
    }
}

/// How a stored layer blob is compressed (from its first bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn media_type(self, oci: bool) -> &'static str {
        match (self, oci) {
            (Compression::None, false) => berth_store::MEDIA_DOCKER_LAYER,
            (Compression::Gzip, false) => berth_store::MEDIA_DOCKER_LAYER_GZIP,
            (Compression::None, true) => berth_store::MEDIA_OCI_LAYER,
            (Compression::Gzip, true) => berth_store::MEDIA_OCI_LAYER_GZIP,
            (Compression::Zstd, _) => MT_OCI_LAYER_ZSTD,
        }
    }
}

fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A blocking reader over the chunks a download task sends. The end of the channel is the end of the
/// blob only when the download completed (and verified); otherwise it is an error, so an interrupted
/// download can never look like a short, complete layer.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
    complete: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.buf = b,
                None if self.complete.load(Ordering::SeqCst) => return Ok(0),
                None => return Err(io::Error::other("the download did not complete")),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        Ok(n)
    }
}

/// Passes bytes through to the unpacker while writing them to the content store.
struct Tee<R> {
    inner: R,
    writer: berth_store::BlobWriter,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.writer.write_all(&out[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_follow_dockerd() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("bb", "latest", "docker.io/library/bb:latest", false),
            ("bb", "", "docker.io/library/bb", true),
            ("localhost:5000/a/b", "v1", "localhost:5000/a/b:v1", false),
            ("bb:1", "", "docker.io/library/bb:1", false),
        ];
        for (img, tag, want, all) in cases {
            let (r, a) = pull_reference(img, tag).unwrap();
            assert_eq!(r.to_string(), *want, "{img} {tag}");
            assert_eq!(a, *all);
        }
        let d = format!("sha256:{}", "a".repeat(64));
        let (r, a) = pull_reference("bb", &d).unwrap();
        assert_eq!(r.digest().map(|x| x.to_string()), Some(d.clone()));
        assert!(!a);
        assert_eq!(
            pull_reference("bb:1", "2").unwrap().0.to_string(),
            "docker.io/library/bb:2"
        );
        assert!(pull_reference("bb", "sha256:zz").is_err());
    }

    #[test]
    fn progress_bar_and_sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(2_222_222), "2.222MB");
        let b = progress_bar(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("50B/100B"), "{b}");
        assert!(progress_bar(100, 100).starts_with(&format!("[{}]", "=".repeat(50))));
    }

    #[test]
    fn registry_config_reads_like_dockerd() {
        let cfg = berth_distribution::ClientConfig {
            insecure_registries: vec!["10.0.0.0/8".into(), "reg.local:5000".into()],
            mirrors: vec!["https://mirror.example".into()],
            ..Default::default()
        };
        let v = registry_config_json(&cfg);
        assert_eq!(
            v["InsecureRegistryCIDRs"],
            json!(["::1/128", "127.0.0.0/8", "10.0.0.0/8"])
        );
        assert_eq!(v["IndexConfigs"]["reg.local:5000"]["Secure"], false);
        assert_eq!(
            v["IndexConfigs"]["docker.io"]["Mirrors"],
            json!(["https://mirror.example/"])
        );
        assert_eq!(v["Mirrors"], json!(["https://mirror.example/"]));
    }

    #[test]
    fn throttle_lets_through_first_and_percent_steps() {
        let mut t = Throttle::new();
        assert!(t.due(0, 1000));
        assert!(!t.due(5, 1000));
        assert!(t.due(20, 1000));
    }

    #[test]
    fn compression_is_sniffed_and_typed_consistently() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(Compression::sniff(b"bin/"), Compression::None);
        assert_eq!(Compression::None.media_type(false), berth_store::MEDIA_DOCKER_LAYER);
        assert_eq!(Compression::Gzip.media_type(true), berth_store::MEDIA_OCI_LAYER_GZIP);
    }

    #[test]
    fn channel_reader_refuses_an_incomplete_end() {
        let (tx, rx) = mpsc::channel(2);
        let complete = Arc::new(AtomicBool::new(false));
        let mut r = ChannelReader {
            rx,
            buf: Bytes::new(),
            complete: complete.clone(),
        };
        tx.try_send(Bytes::from_static(b"abc")).unwrap();
        drop(tx);
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert_eq!(out, b"abc");
    }

    #[test]
    fn diff_ids_are_parsed_defensively() {
        let d = format!("sha256:{}", "b".repeat(64));
        let cfg = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#);
        assert_eq!(config_diff_ids(cfg.as_bytes()).unwrap().len(), 1);
        assert!(config_diff_ids(br#"{"rootfs":{"diff_ids":[1]}}"#).is_err());
        assert!(config_diff_ids(b"not json").is_err());
        assert!(config_diff_ids(br#"{"rootfs":{}}"#).unwrap().is_empty());
    }
}
