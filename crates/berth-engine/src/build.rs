//! `POST /build`: the classic builder (what `docker build` with `DOCKER_BUILDKIT=0` and the Docker
//! SDK's `images.build` talk to). The context tar is unpacked into a private directory, the
//! Dockerfile parsed (`berth-dockerfile`), and each step of the stage to build made into an image:
//! metadata steps derive an image on the same layers (`empty_layer` in its history), RUN runs in a
//! container of our runtime that is then committed, COPY/ADD of context files are planned with
//! Docker's rules (`berth-build`) and put into a container as one archive, then committed. The
//! output is the classic builder's JSON stream (`Step N/M : ...`, ` ---> <id>`, `aux` with the ID).
//!
//! Stages: only those the target needs (through `FROM <stage>` and `COPY --from`) are built, in
//! order; `COPY --from` takes its sources out of the stage's (or any local image's) filesystem.
//!
//! Also: a layer cache (see [`BuildService::prune`]), HEALTHCHECK, ONBUILD triggers (run after the
//! FROM of an image that has them), RUN with here-documents.
//!
//! ADD unpacks local tar archives (plain or gzip) into its destination (not with
//! `--unpack=false`); COPY and ADD take here-documents as files. ADD of an http(s) URL downloads
//! it (bounded in size and time; the file 0600, its mtime from `Last-Modified`, checked against
//! `--checksum`, extracted only with `--unpack=true`) before the step's cache key is made, whose
//! content it is part of. `--exclude` and `COPY --parents` are the planner's (`berth-build`).
//! `--link` is an ordinary copy whose layer also makes the destination's parent directories
//! fresh (0755), as BuildKit's linked layer does: a symlink there is replaced, not followed, and
//! the destination is not looked at.
//!
//! `FROM scratch` starts from an image with no layers.
//!
//! `RUN --mount`: `cache` (kept across builds under `builder/cache-mounts`, emptied by prune),
//! `tmpfs`, and `bind` of a context path (read-only unless `rw`; its content is part of the step's
//! cache key; never through a symlink).
//!
//! `--chown` takes numbers or the names of the image's own passwd and group files. A FROM image
//! that is not here is pulled (always with `--pull`).
//!
//! Not yet: ADD of git repositories (and `--keep-git-dir`), `RUN --mount` of a stage, secrets and
//! ssh; each is refused with a message naming it.

use crate::containers::{CommitRequest, ContainerService, ExtractOptions, WaitCondition};
use crate::distribution::Progress;
use crate::images::ImageService;
use crate::{EngineError, Result};
use berth_api::models::{ContainerConfig, HostConfig, Mount};
use berth_api::ContainerCreateBody;
use berth_dockerfile::{Command, DockerIgnore, Instruction};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod history;
mod mounts;
use history::CacheSource;
pub use mounts::Secret;
use mounts::{has_bind_mount, mount_fields, run_mounts, MountImage, MountInputs};

/// What `POST /build` asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `t`: names for the result.
    pub tags: Vec<String>,
    /// `dockerfile`: its path in the context (`Dockerfile` when empty).
    pub dockerfile: String,
    /// `buildargs`: values for ARGs.
    pub build_args: BTreeMap<String, String>,
    /// `labels`: set on the result.
    pub labels: BTreeMap<String, String>,
    /// `target`: the stage to build (the last one when unset).
    pub target: Option<String>,
    /// `networkmode` of RUN containers.
    pub network: Option<String>,
    /// `q`: only the ID in the output.
    pub quiet: bool,
    /// `nocache`: run every step again.
    pub no_cache: bool,
    /// `pull`: pull every FROM image even when it is here.
    pub pull: bool,
    /// `platform`: the platform to build for; berth builds for this host's only.
    pub platform: Option<String>,
    /// `cachefrom`: images whose build history may stand in for steps (pulled when missing).
    pub cache_from: Vec<String>,
    /// `X-Registry-Config`: credentials per registry (keyed as config.json keys them) for the
    /// pulls of FROM and `cachefrom` images.
    pub registry_auths: BTreeMap<String, berth_credentials::AuthConfig>,
    /// The client's secrets by id, for `RUN --mount=type=secret` (never in an image, its history
    /// or a cache key).
    pub secrets: BTreeMap<String, Secret>,
    /// The client's ssh agent sockets on this host by id, for `RUN --mount=type=ssh`.
    pub ssh: BTreeMap<String, PathBuf>,
}

/// The builder.
pub struct BuildService {
    containers: Arc<ContainerService>,
    images: Arc<ImageService>,
    distribution: Arc<crate::DistributionService>,
    tmp: PathBuf,
    /// A directory in memory (tmpfs) for small contexts: creating files there costs a fraction of
    /// what it costs on a disk file system that has just deleted as many (the previous build's).
    fast_tmp: Option<PathBuf>,
    cache: std::sync::Mutex<BuildCache>,
}

/// A context tar up to this size is read whole and unpacked in [`BuildService`]'s in-memory scratch
/// space; a larger one (or a compressed one) goes to disk.
const SMALL_CONTEXT: u64 = 32 << 20;

/// The layer cache: a step's key (its parent image, its instruction, what it copies, the build
/// args) to the image it made, kept in `cache.json` beside the scratch space.
struct BuildCache {
    path: PathBuf,
    entries: BTreeMap<String, String>,
    dirty: bool,
}

/// The label that marks a build step's container, so one a crashed daemon left is found again.
const BUILD_STEP_LABEL: &str = "berth.build.step";

/// The key of a step: what it starts from and everything its result depends on.
/// The predefined proxy ARGs: they reach RUN without an ARG and, as Docker does, stay out of the
/// cache key (a proxy is how the network is reached, not what the step makes).
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// This host's platform as `os/arch[/variant]`, its parts, as BuildKit's predefined ARGs name them
/// (`BUILDPLATFORM`, `TARGETPLATFORM`, `…OS`, `…ARCH`, `…VARIANT`).
fn platform_args() -> BTreeMap<String, String> {
    let arch = berth_store::host_architecture();
    let variant = if arch == "arm64" { "v8" } else { "" };
    let platform = if variant.is_empty() {
        format!("linux/{arch}")
    } else {
        format!("linux/{arch}/{variant}")
    };
    let mut m = BTreeMap::new();
    for side in ["BUILD", "TARGET"] {
        m.insert(format!("{side}PLATFORM"), platform.clone());
        m.insert(format!("{side}OS"), "linux".to_string());
        m.insert(format!("{side}ARCH"), arch.to_string());
        m.insert(format!("{side}VARIANT"), variant.to_string());
    }
    m
}

/// A `--platform` berth can build for: this host's (`linux`, `linux/amd64`, `amd64` on x86-64).
fn check_platform(p: &str) -> Result<()> {
    let arch = berth_store::host_architecture();
    let mut parts = p.split('/');
    let (os, a) = match (parts.next(), parts.next()) {
        (Some(os), Some(a)) => (os, a),
        (Some("linux"), None) => ("linux", arch),
        (Some(one), None) => ("linux", one),
        _ => ("", ""),
    };
    let a = if a == "x86_64" { "amd64" } else { a };
    if os.eq_ignore_ascii_case("linux") && a == arch {
        return Ok(());
    }
    Err(bad(format!(
        "berth builds for this host's platform only (linux/{arch}): {p} was asked; build on a {p} machine, or leave the platform out"
    )))
}

fn cache_key(parent: &str, step: &Instruction, extra: &str, build_args: &BTreeMap<String, String>) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for part in [parent, step.original.trim(), extra] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (k, v) in build_args.iter().filter(|(k, _)| !PROXY_ARGS.contains(&k.as_str())) {
        h.update(k.as_bytes());
        h.update([b'=']);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The stage being built: its current image and config.
#[derive(Clone)]
struct Stage {
    image: String,
    config: Value,
    args: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH` (a build arg): every time the step images record, and no newer file.
    epoch: Option<u64>,
    /// The values of ARGs declared before the first FROM and of the predefined platform ARGs: an
    /// `ARG NAME` without a value in a stage takes them (they are not visible otherwise).
    globals: BTreeMap<String, String>,
}

impl Stage {
    fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.config.is_object() {
            self.config = json!({});
        }
        let slot = &mut self.config["config"];
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        match slot {
            Value::Object(m) => m,
            _ => unreachable!("the stage's config was just made an object"),
        }
    }

    fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let env = self.env();
        let from_env = env.iter().rev().find_map(|e| {
            e.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        from_env.or_else(|| self.args.get(name).cloned())
    }

    fn expand(&self, word: &str) -> Result<String> {
        berth_dockerfile::expand(word, &|n| self.lookup(n), '\\')
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))
    }

    fn workdir(&self) -> String {
        match self.config["config"]["WorkingDir"].as_str() {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => "/".into(),
        }
    }

    fn shell(&self) -> Vec<String> {
        match self.config["config"]["Shell"].as_array() {
            Some(a) if !a.is_empty() => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }
}

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

fn short(id: &str) -> String {
    berth_types::short_id(id.trim_start_matches("sha256:")).to_string()
}

/// The value of flag `--name=` among an instruction's raw flags.
fn flag<'a>(i: &'a Instruction, name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    i.flags.iter().find_map(|f| f.strip_prefix(prefix.as_str()))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("build task failed: {e}")))?
}

/// Removes the build's private directory when the build ends, however it ends.
struct TempDir(PathBuf);

/// Unpacks the build context: a plain tar of at most [`SMALL_CONTEXT`] bytes into `fast` (memory)
/// when there is one and it has room, anything else into `disk`. Answers where it went. The body
/// is read to its end whatever happens (a tar's padding after its end marker, the rest after an
/// error): a server that answers while the client still sends makes the client see a reset
/// instead of the answer.
fn unpack_context(mut context: impl Read + Send, disk: &Path, fast: Option<&Path>) -> Result<PathBuf> {
    let mut head = Vec::new();
    (&mut context)
        .take(SMALL_CONTEXT + 1)
        .read_to_end(&mut head)
        .map_err(|e| bad(format!("reading the build context: {e}")))?;
    let whole = head.len() as u64 <= SMALL_CONTEXT;
    let plain = head.len() >= 263 && &head[257..262] == b"ustar" || head.is_empty();
    if let (true, true, Some(fast)) = (whole, plain, fast) {
        std::fs::create_dir_all(fast).map_err(|e| EngineError::io("creating", fast, e))?;
        match berth_archive::unpack(&head[..], fast, &berth_archive::UnpackOptions::default()) {
            Ok(_) => return Ok(fast.to_path_buf()),
            // Out of room in memory: the same bytes go to disk.
            Err(berth_archive::ArchiveError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOSPC) => {
                let _ = std::fs::remove_dir_all(fast);
                tracing::debug!("build context to disk: the in-memory scratch space is full");
            }
            Err(e) => return Err(bad(format!("unpacking the build context: {e}"))),
        }
    }
    std::fs::create_dir_all(disk).map_err(|e| EngineError::io("creating", disk, e))?;
    let mut stream = std::io::Cursor::new(head).chain(context);
    let unpacked = berth_archive::decompress(&mut stream)
        .map_err(|e| bad(format!("reading the build context: {e}")))
        .and_then(|mut reader| {
            berth_archive::unpack(&mut reader, disk, &berth_archive::UnpackOptions::default())
                .map_err(|e| bad(format!("unpacking the build context: {e}")))?;
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            Ok(())
        });
    let _ = std::io::copy(&mut stream, &mut std::io::sink());
    unpacked.map(|()| disk.to_path_buf())
}

/// Keeps a `COPY --from` source readable while its step runs (see `BuildService::copy_source`).
enum FromGuard {
    /// The image's read-only view.
    View { _view: crate::images::ImageView },
    /// The directory its files were taken out into, removed with the guard.
    Dir { _dir: TempDir },
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl BuildService {
    /// The builder; its scratch space (contexts, archives) is under `tmp`, emptied here: a build
    /// does not outlive the daemon that ran it.
    pub fn new(
        containers: Arc<ContainerService>,
        images: Arc<ImageService>,
        distribution: Arc<crate::DistributionService>,
        tmp: PathBuf,
    ) -> BuildService {
        Self::with_fast_scratch(containers, images, distribution, tmp, None)
    }

    /// [`BuildService::new`] with a tmpfs directory for small build contexts (emptied here too).
    pub fn with_fast_scratch(
        containers: Arc<ContainerService>,
        images: Arc<ImageService>,
        distribution: Arc<crate::DistributionService>,
        tmp: PathBuf,
        fast_tmp: Option<PathBuf>,
    ) -> BuildService {
        let _ = std::fs::remove_dir_all(&tmp);
        if let Some(fast) = &fast_tmp {
            if let Ok(entries) = std::fs::read_dir(fast) {
                for e in entries.flatten() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let path = tmp.parent().unwrap_or(&tmp).join("cache.json");
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        BuildService {
            containers,
            images,
            distribution,
            tmp,
            fast_tmp,
            cache: std::sync::Mutex::new(BuildCache {
                path,
                entries,
                dirty: false,
            }),
        }
    }

    /// Removes the containers of build steps a crashed daemon left behind (their build cannot go
    /// on: it was the crashed daemon's request); what is still running in them is killed.
    pub async fn remove_orphans(&self) {
        let opts = crate::containers::ListOptions {
            all: true,
            limit: 0,
            filters: [("label".to_string(), vec![format!("{BUILD_STEP_LABEL}=true")])].into(),
        };
        let Ok(orphans) = self.containers.list(&opts) else {
            return;
        };
        for c in orphans {
            let Some(id) = c.id else { continue };
            match self.containers.remove(&id, true, false).await {
                Ok(()) => tracing::info!("removed build container {} left by an earlier daemon", short(&id)),
                Err(e) => tracing::warn!("removing build container {} left by an earlier daemon: {e}", short(&id)),
            }
        }
    }

    /// `POST /build/prune`: forgets the cache and removes its step images that are untagged and
    /// unused (their layers stay while another image uses them); answers the removed IDs and the
    /// bytes their images held.
    pub async fn prune(&self) -> Result<(Vec<String>, u64)> {
        let ids: Vec<String> = {
            let mut c = crate::lock(&self.cache);
            c.dirty = true;
            std::mem::take(&mut c.entries).into_values().collect()
        };
        let mut unique = ids;
        unique.sort();
        unique.dedup();
        let out = self.images.remove_step_images(unique).await;
        self.save_cache();
        let _ = std::fs::remove_dir_all(self.cache_mounts());
        out
    }

    /// The cached image of a step, if it is still there.
    async fn cached(&self, key: &str, no_cache: bool) -> Option<String> {
        if no_cache {
            return None;
        }
        let id = crate::lock(&self.cache).entries.get(key).cloned()?;
        match self.images.resolve(&id).await {
            Ok(_) => Some(id),
            Err(_) => {
                let mut c = crate::lock(&self.cache);
                c.entries.remove(key);
                c.dirty = true;
                None
            }
        }
    }

    /// The images `--cache-from` names, pulled when they are not here; one that cannot be had is
    /// said in the build's output and left out (the build goes on without it).
    async fn cache_sources(
        &self,
        opts: &BuildOptions,
        say: &(dyn Fn(String) + Sync),
        out: &Progress,
    ) -> Vec<CacheSource> {
        let mut sources = Vec::new();
        for entry in opts.cache_from.iter().filter(|n| !n.is_empty()) {
            let name = match history::cache_ref(entry) {
                Ok(name) => name,
                Err(why) => {
                    say(format!(
                        "WARNING: cache source {entry} cannot be used, building without it: {why}\n"
                    ));
                    continue;
                }
            };
            match self.base_image(&name, false, &opts.registry_auths, out).await {
                Ok(rec) => sources.push(CacheSource::new(rec.id.to_string(), &rec.config)),
                Err(e) => say(format!(
                    "WARNING: cache image {name} cannot be used, building without it: {e}\n"
                )),
            }
        }
        sources
    }

    /// A step's image taken from a `--cache-from` image whose history goes on from the stage's
    /// image with `created_by`; after a hit only that image is looked at (as Docker does, so a
    /// build does not jump between histories).
    async fn reuse_from_cache_sources(
        &self,
        s: &Stage,
        created_by: &str,
        sources: &std::sync::Mutex<Vec<CacheSource>>,
    ) -> Result<Option<String>> {
        let (source, hit) = {
            let candidates = crate::lock(sources);
            let parent = &s.config;
            match candidates
                .iter()
                .find_map(|c| history::find_step(parent, c, created_by).map(|hit| (c.clone(), hit)))
            {
                Some(found) => found,
                None => return Ok(None),
            }
        };
        let config = history::restored_config(&s.config, &s.config, &source, &hit);
        let bytes = serde_json::to_vec(&config).map_err(|e| EngineError::Internal(e.to_string()))?;
        let from: berth_types::Digest = source
            .id
            .parse()
            .map_err(|e: berth_types::DigestError| EngineError::Internal(e.to_string()))?;
        let store = self.images.store().clone();
        let layers = hit.layers;
        let rec = blocking(move || Ok(store.derive_prefix(&from, Some(layers), &bytes)?)).await?;
        *crate::lock(sources) = vec![source];
        Ok(Some(rec.id.to_string()))
    }

    /// Records what a step made, and marks it a step image (hidden by `images` unless tagged).
    async fn remember(&self, key: String, id: &str) {
        if let Ok(d) = id.parse::<berth_types::Digest>() {
            if let Err(e) = self.images.store().mark_intermediate(&d) {
                tracing::debug!("marking {id} as a build step's image: {e}");
            }
        }
        let mut c = crate::lock(&self.cache);
        c.entries.insert(key, id.to_string());
        c.dirty = true;
    }

    fn save_cache(&self) {
        let mut c = crate::lock(&self.cache);
        if !c.dirty {
            return;
        }
        match serde_json::to_vec(&c.entries) {
            Ok(bytes) => {
                if let Some(dir) = c.path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                if let Err(e) = berth_types::write_atomic(&c.path, &bytes) {
                    tracing::warn!("saving the build cache: {e}");
                } else {
                    c.dirty = false;
                }
            }
            Err(e) => tracing::warn!("encoding the build cache: {e}"),
        }
    }

    /// Where `RUN --mount=type=cache` directories live (kept across builds, emptied by prune).
    fn cache_mounts(&self) -> PathBuf {
        self.tmp.parent().unwrap_or(&self.tmp).join("cache-mounts")
    }

    /// The content checksum of the context directories a RUN bind-mounts: the step's result
    /// depends on them, so the cache must see them change.
    /// The stages and images a RUN's `--mount=type=bind,from=` take their files from (a stage by
    /// name or index, else an image, pulled when missing), by the mount's position.
    async fn mount_images(
        &self,
        s: &Stage,
        step: &Instruction,
        built: &BTreeMap<String, String>,
    ) -> Result<Vec<MountImage>> {
        let mut out = Vec::new();
        for (index, spec) in step.flags.iter().filter_map(|f| f.strip_prefix("--mount=")).enumerate() {
            let kv = mount_fields(spec);
            let Some(from) = kv.get("from") else { continue };
            if kv.get("type").map_or("bind", String::as_str) != "bind" {
                continue;
            }
            let from = s.expand(from)?;
            let image = match built.get(&from.to_ascii_lowercase()) {
                Some(id) => id.clone(),
                None => {
                    let (progress, _rx) = Progress::channel();
                    let auths = BTreeMap::new();
                    let rec = self
                        .base_image(&from, false, &auths, &progress)
                        .await
                        .map_err(|e| bad(format!("RUN --mount from={from}: {e}")))?;
                    rec.id.to_string()
                }
            };
            let src = kv
                .get("source")
                .or_else(|| kv.get("src"))
                .cloned()
                .unwrap_or_else(|| "/".into());
            out.push(MountImage {
                index,
                image,
                source: s.expand(&src)?,
            });
        }
        Ok(out)
    }

    async fn bind_mount_digest(&self, s: &Stage, step: &Instruction, ctx: &BuildContext) -> Result<String> {
        let mut sources = Vec::new();
        for spec in step.flags.iter().filter_map(|f| f.strip_prefix("--mount=")) {
            let kv = mount_fields(spec);
            if kv.get("type").map_or("bind", String::as_str) == "bind" && !kv.contains_key("from") {
                let src = kv
                    .get("source")
                    .or_else(|| kv.get("src"))
                    .cloned()
                    .unwrap_or_else(|| ".".into());
                sources.push(s.expand(&src)?);
            }
        }
        if sources.is_empty() {
            return Ok(String::new());
        }
        let (root, ignore) = (ctx.root.clone(), ctx.ignore.clone());
        blocking(move || {
            let c = berth_build::Context {
                root: &root,
                ignore: ignore.as_ref(),
            };
            let mut all = Vec::new();
            for src in sources {
                let items = berth_build::plan(&c, std::slice::from_ref(&src), "/m/", "/", &|_| true)
                    .map_err(|e| bad(format!("RUN --mount source {src}: {e}")))?;
                all.push(berth_build::content_digest(&root, &items).map_err(|e| bad(e.to_string()))?);
            }
            Ok(all.join(","))
        })
        .await
    }

    /// The content checksum of what a COPY/ADD takes: its context entries (planned with its
    /// flags) and the digests of its downloads.
    async fn context_digest(&self, s: &Stage, spec: &CopySpec, ctx: &BuildContext) -> Result<String> {
        let (root, ignore, workdir) = (ctx.root.clone(), ctx.ignore.clone(), s.workdir());
        let (sources, dest, flags) = (spec.local.clone(), spec.dest.clone(), spec.flags.clone());
        let failed = spec.failed();
        let local = blocking(move || {
            let c = berth_build::Context {
                root: &root,
                ignore: ignore.as_ref(),
            };
            let items = berth_build::plan_with(&c, &sources, &dest, &workdir, &|_| false, &flags).map_err(&failed)?;
            berth_build::content_digest(&root, &items).map_err(&failed)
        })
        .await?;
        let remote: Vec<&str> = spec.fetched.iter().map(|f| f.digest.as_str()).collect();
        Ok(format!("{local}\n{}", remote.join(",")))
    }

    /// Builds the context tar `context` as `opts` asks, streaming the classic builder's messages
    /// to `out`; answers the image ID.
    pub async fn build(
        self: &Arc<Self>,
        context: impl Read + Send + 'static,
        opts: BuildOptions,
        out: &Progress,
    ) -> Result<String> {
        let result = self.build_steps(context, opts, out).await;
        self.save_cache();
        crate::metrics::count(&crate::metrics::metrics().builds, result)
    }

    async fn build_steps(
        self: &Arc<Self>,
        context: impl Read + Send + 'static,
        opts: BuildOptions,
        out: &Progress,
    ) -> Result<String> {
        std::fs::create_dir_all(&self.tmp).map_err(|e| EngineError::io("creating", &self.tmp, e))?;
        let id = berth_types::new_id();
        let dir = self.tmp.join(format!("build-{id}"));
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
        let _cleanup = TempDir(dir.clone());
        let disk_ctx = dir.join("context");
        let fast_ctx = self.fast_tmp.as_ref().map(|f| f.join(format!("context-{id}")));
        let _cleanup_fast = fast_ctx.clone().map(TempDir);
        let ctx_dir = blocking(move || unpack_context(context, &disk_ctx, fast_ctx.as_deref())).await?;
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let rel = berth_dockerfile::clean_path(&format!("/{name}"));
        let path = ctx_dir.join(rel.trim_start_matches('/'));
        let src = std::fs::read_to_string(&path)
            .map_err(|e| bad(format!("Cannot locate specified Dockerfile: {name} ({e})")))?;
        let df = berth_dockerfile::parse(&src).map_err(|e| bad(e.to_string()))?;
        let ignore = match std::fs::read_to_string(ctx_dir.join(".dockerignore")) {
            Ok(text) => Some(DockerIgnore::parse(&text).map_err(|e| bad(format!(".dockerignore: {e}")))?),
            Err(_) => None,
        };
        // Stages: each FROM to the next; global ARGs before the first.
        let froms: Vec<usize> = df
            .instructions
            .iter()
            .enumerate()
            .filter(|(_, i)| i.command == Command::From)
            .map(|(n, _)| n)
            .collect();
        let Some(&first_from) = froms.first() else {
            return Err(bad("no build stage in current context"));
        };
        let stages: Vec<StageSpan> = froms
            .iter()
            .enumerate()
            .map(|(k, &start)| {
                let w = df.instructions[start].words();
                StageSpan {
                    start,
                    end: froms.get(k + 1).copied().unwrap_or(df.instructions.len()),
                    name: (w.len() == 3 && w[1].eq_ignore_ascii_case("as")).then(|| w[2].to_ascii_lowercase()),
                }
            })
            .collect();
        let target = match &opts.target {
            None => stages.len() - 1,
            Some(t) => stages
                .iter()
                .position(|st| st.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| bad(format!("failed to reach build target {t} in Dockerfile")))?,
        };
        // Only the stages the target needs (through FROM <stage> and COPY --from), in order.
        let (needed, deps) = needed_stages(&df.instructions, &stages, target)?;
        let global: Vec<&Instruction> = df.instructions[..first_from]
            .iter()
            .filter(|i| i.command == Command::Arg)
            .collect();
        let total = global.len() + needed.iter().map(|&k| stages[k].end - stages[k].start).sum::<usize>();
        let say = |text: String| {
            if !opts.quiet {
                out.stream(&text);
            }
        };
        let sources = self.cache_sources(&opts, &say, out).await;
        let ctx = BuildContext {
            root: ctx_dir.clone(),
            ignore,
            scratch: dir.clone(),
            sources: Arc::new(std::sync::Mutex::new(sources)),
        };
        let epoch = opts
            .build_args
            .get("SOURCE_DATE_EPOCH")
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("SOURCE_DATE_EPOCH={v}: seconds since 1970 are needed")))
            })
            .transpose()?;
        if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty()) {
            check_platform(p)?;
        }
        let mut n = 0;
        // BuildKit's predefined platform ARGs, usable in FROM and (declared) in stages.
        let mut global_args: BTreeMap<String, String> = platform_args();
        for step in &global {
            n += 1;
            say(format!("Step {n}/{total} : {}\n", step.original.trim()));
            for kv in step.key_values() {
                let v = opts
                    .build_args
                    .get(&kv.key)
                    .cloned()
                    .or_else(|| kv.value.clone())
                    .unwrap_or_default();
                global_args.insert(kv.key.clone(), v);
            }
        }
        // Each stage builds once the stages it uses are built, independent stages at the same
        // time; their output is told in Dockerfile order, as one after the other.
        let run = BuildRun {
            opts: &opts,
            ctx: &ctx,
            global_args: &global_args,
            epoch,
            out,
            total,
        };
        let output = StageOutput::new(needed.len(), &say);
        let mut futures: Vec<futures_util::future::Shared<StageFuture<'_>>> = Vec::new();
        for (pos, &k) in needed.iter().enumerate() {
            let first = n;
            n += stages[k].end - stages[k].start;
            let waits: Vec<(usize, futures_util::future::Shared<StageFuture<'_>>)> = deps[k]
                .iter()
                .filter_map(|d| needed.iter().position(|x| x == d).map(|p| (*d, futures[p].clone())))
                .collect();
            let (run, output, stages, df) = (&run, &output, &stages, &df);
            let fut: StageFuture<'_> = Box::pin(async move {
                let _told = output.finished_on_drop(pos);
                let mut built: BTreeMap<String, String> = BTreeMap::new();
                for (dep, wait) in waits {
                    let st = wait.await?;
                    built.insert(dep.to_string(), st.image.clone());
                    if let Some(name) = &stages[dep].name {
                        built.insert(name.clone(), st.image.clone());
                    }
                }
                let say = |text: String| output.say(pos, text);
                let span = &stages[k];
                self.build_stage(run, &df.instructions[span.start..span.end], first, &built, &say)
                    .await
                    .map_err(Arc::new)
            });
            futures.push(futures_util::FutureExt::shared(fut));
        }
        let results = futures_util::future::join_all(futures).await;
        let mut stage = None;
        for r in results {
            match r {
                Ok(st) => stage = Some(st),
                Err(e) => return Err(Arc::try_unwrap(e).unwrap_or_else(|e| bad(e.to_string()))),
            }
        }
        let Some(mut s) = stage.map(|st| (*st).clone()) else {
            return Err(bad("no build stage in current context"));
        };
        if !opts.labels.is_empty() {
            let labels = s.cfg().entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in &opts.labels {
                labels[k] = json!(v);
            }
            let text: Vec<String> = opts.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            s.image = self
                .derive(&mut s, &format!("/bin/sh -c #(nop)  LABEL {}", text.join(" ")))
                .await?;
        }
        let id = s.image.clone();
        // The result is an image of its own, shown by `images` even untagged.
        if let Ok(d) = id.parse::<berth_types::Digest>() {
            self.images.store().unmark_intermediate(&d);
        }
        out.aux(json!({ "ID": id }));
        if opts.quiet {
            // `-q`: dockerd's classic builder answers with only the ID, in the stream.
            out.stream(&format!("{id}\n"));
        }
        say(format!("Successfully built {}\n", short(&id)));
        for t in &opts.tags {
            let (repo, tag) = split_tag(t);
            self.images.tag_image(&id, repo, tag).await?;
            say(format!("Successfully tagged {}\n", familiar_tag(t)));
        }
        Ok(id)
    }

    /// One stage: its FROM (an image, pulled when missing, or a built stage of `built`), its base
    /// image's ONBUILD triggers and its steps, numbered from `first` + 1.
    async fn build_stage(
        &self,
        run: &BuildRun<'_>,
        steps: &[Instruction],
        first: usize,
        built: &BTreeMap<String, String>,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<Arc<Stage>> {
        let (opts, ctx) = (run.opts, run.ctx);
        let mut n = first;
        let mut stage: Option<Stage> = None;
        for step in steps {
            n += 1;
            say(format!("Step {n}/{} : {}\n", run.total, step.original.trim()));
            match &mut stage {
                None => {
                    let scope = Stage {
                        image: String::new(),
                        config: json!({}),
                        args: run.global_args.clone(),
                        epoch: run.epoch,
                        globals: BTreeMap::new(),
                    };
                    if let Some(p) = flag(step, "platform") {
                        check_platform(&scope.expand(p)?).map_err(|e| bad(format!("FROM --platform: {e}")))?;
                    }
                    let words = step.words();
                    let image = scope.expand(words.first().map(String::as_str).unwrap_or(""))?;
                    let rec = if image == "scratch" {
                        self.scratch().await?
                    } else if let Some(stage_image) = built.get(&image.to_ascii_lowercase()) {
                        self.images.resolve(stage_image).await?
                    } else {
                        self.base_image(&image, opts.pull, &opts.registry_auths, run.out)
                            .await?
                    };
                    let id = rec.id.to_string();
                    if image == "scratch" {
                        say(" ---> \n".into());
                    } else {
                        say(format!(" ---> {}\n", short(&id)));
                    }
                    let mut st = Stage {
                        image: id,
                        config: rec.config.clone(),
                        args: BTreeMap::new(),
                        epoch: run.epoch,
                        globals: run.global_args.clone(),
                    };
                    self.run_triggers(&mut st, opts, ctx, built, say).await?;
                    stage = Some(st);
                }
                Some(s) => self.step(s, step, opts, ctx, built, say).await?,
            }
        }
        stage
            .map(Arc::new)
            .ok_or_else(|| bad("no build stage in current context"))
    }

    /// The image a FROM names: the local one, pulled first when missing (or always with
    /// `--pull`), its progress in the build's stream as dockerd's classic builder shows it.
    async fn base_image(
        &self,
        image: &str,
        always_pull: bool,
        auths: &BTreeMap<String, berth_credentials::AuthConfig>,
        out: &Progress,
    ) -> Result<berth_store::ImageRecord> {
        if !always_pull {
            use berth_types::HasErrorKind;
            match self.images.resolve(image).await {
                Err(e) if e.kind() == berth_types::ErrorKind::NotFound => {}
                other => return other,
            }
        }
        let reference =
            berth_types::Reference::parse(image).map_err(|e| bad(format!("invalid reference format: {e}")))?;
        let auth = berth_credentials::auth_among(auths, reference.domain());
        self.distribution.pull(&reference, false, None, &auth, out).await?;
        self.images.resolve(image).await
    }

    /// `FROM scratch`: an image with no layers and an empty config for this host's platform (a
    /// step image, hidden by `images`).
    async fn scratch(&self) -> Result<berth_store::ImageRecord> {
        let host = berth_distribution::Platform::host();
        let config = json!({
            "architecture": host.architecture,
            "os": host.os,
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [] },
            "history": [],
        });
        let bytes = serde_json::to_vec(&config).map_err(|e| EngineError::Internal(e.to_string()))?;
        let store = self.images.store().clone();
        blocking(move || {
            let rec = store.create_image(&bytes, &[])?;
            store.mark_intermediate(&rec.id)?;
            Ok(rec)
        })
        .await
    }

    /// The uid and gid `--chown=` names, looked up in the step container's own files.
    async fn owner_in_image(&self, container: &str, spec: &str) -> Result<(u64, u64)> {
        let numeric = spec.split(':').all(|p| p.parse::<u64>().is_ok());
        if numeric {
            return resolve_owner(spec, "", "");
        }
        let passwd = self.read_file_of(container, "/etc/passwd").await.unwrap_or_default();
        let group = self.read_file_of(container, "/etc/group").await.unwrap_or_default();
        resolve_owner(spec, &passwd, &group)
    }

    /// A small text file of a (created, not started) container, if it has it.
    async fn read_file_of(&self, container: &str, path: &str) -> Option<String> {
        let spool = self.tmp.join(format!("read-{}.tar", berth_types::new_id()));
        let file = std::fs::File::create(&spool).ok()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let writer = DoneWriter { file, done: Some(tx) };
        let got = self.containers.archive_get(container, path, writer).await.is_ok();
        if got {
            let _ = rx.await;
        }
        let text = got
            .then(|| {
                let f = std::fs::File::open(&spool).ok()?;
                let mut ar = tar::Archive::new(f);
                let mut entry = ar.entries().ok()?.next()?.ok()?;
                let mut out = String::new();
                (&mut entry).take(1 << 20).read_to_string(&mut out).ok()?;
                Some(out)
            })
            .flatten();
        let _ = std::fs::remove_file(&spool);
        text
    }

    /// One step of a stage after its FROM: from the cache when its key is known, else run.
    async fn step(
        &self,
        s: &mut Stage,
        step: &Instruction,
        opts: &BuildOptions,
        ctx: &BuildContext,
        built: &BTreeMap<String, String>,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<()> {
        let command = step.command;
        if matches!(command, Command::Copy | Command::Add) && !step.heredocs.is_empty() {
            // `COPY <<EOF /file`: each document becomes a file of a context of its own.
            let (heredoc_ctx, rewritten) = self.heredoc_context(s, step, ctx)?;
            let result = Box::pin(self.step(s, &rewritten, opts, &heredoc_ctx, built, say)).await;
            let _ = std::fs::remove_dir_all(&heredoc_ctx.root);
            return result;
        }
        if command != Command::Run && command != Command::Copy && command != Command::Add {
            // In memory first: an ARG's value matters to later steps even when this one comes
            // from the cache.
            apply_metadata(s, step, &opts.build_args)?;
        }
        let from = match (command, flag(step, "from")) {
            (Command::Copy | Command::Add, Some(f)) => {
                Some(built.get(&f.to_ascii_lowercase()).cloned().unwrap_or(f.to_string()))
            }
            _ => None,
        };
        // A COPY/ADD's flags and sources, checked before anything runs; its URLs fetched now, as
        // their content is part of the step's cache key.
        let mut spec = match command {
            Command::Copy | Command::Add => Some(CopySpec::parse(s, step)?),
            _ => None,
        };
        if let Some(spec) = &mut spec {
            // (Only ADD has URLs, and ADD has no --from.)
            self.fetch_urls(spec, ctx).await?;
        }
        // A RUN's `bind,from=` images: resolved (or pulled) once, for its key and its mounts.
        let mount_images = if command == Command::Run {
            self.mount_images(s, step, built).await?
        } else {
            Vec::new()
        };
        let extra = match (command, &from, &spec) {
            (Command::Copy | Command::Add, None, Some(spec)) => self.context_digest(s, spec, ctx).await?,
            (_, Some(source), _) => self.images.resolve(source).await?.id.to_string(),
            (Command::Run, _, _) => format!(
                "{}\n{}\n{}",
                flag(step, "network").unwrap_or(""),
                self.bind_mount_digest(s, step, ctx).await?,
                mount_images
                    .iter()
                    .map(|m| m.image.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => String::new(),
        };
        let key = cache_key(&s.image, step, &extra, &opts.build_args);
        if let Some(id) = self.cached(&key, opts.no_cache).await {
            say(" ---> Using cache\n".into());
            self.advance(s, id).await?;
        } else {
            // A COPY --from's files are taken out of their image first: the step's history names
            // their content.
            let from_ctx = match (&from, &spec) {
                (Some(source), Some(spec)) => Some(self.copy_source(&spec.local, source, ctx).await?),
                _ => None,
            };
            let src_ctx = from_ctx.as_ref().map(|(c, _)| c).unwrap_or(ctx);
            let created_by = match &spec {
                _ if command == Command::Run => history::run_created_by(&run_command(s, step), &s.args, &s.env()),
                Some(spec) => {
                    let content = if from.is_some() {
                        self.context_digest(s, spec, src_ctx).await?
                    } else {
                        extra.clone()
                    };
                    spec.created_by(&content, src_ctx)
                }
                None => {
                    let keys = match command {
                        Command::Label => {
                            let mut k = Vec::new();
                            for kv in step.key_values() {
                                k.push(s.expand(&kv.key)?);
                            }
                            k
                        }
                        _ => step.key_values().iter().map(|kv| kv.key.clone()).collect(),
                    };
                    history::metadata_created_by(command, &step.original, &keys, &s.config)
                }
            };
            let reused = if opts.no_cache || (command == Command::Run && has_bind_mount(step)) {
                // A RUN's bind mounts of the context are not in its history: a cache image cannot
                // say it saw the same files.
                None
            } else {
                self.reuse_from_cache_sources(s, &created_by, &src_ctx.sources).await?
            };
            let id = match (reused, command, &spec) {
                (Some(id), _, _) => {
                    say(" ---> Using cache\n".into());
                    id
                }
                (None, Command::Run, _) => {
                    let plan = RunPlan {
                        created_by,
                        images: mount_images,
                    };
                    self.run_step(s, step, opts, ctx, &plan, say).await?
                }
                (None, _, Some(spec)) => self.copy_step(s, step, spec, src_ctx, &created_by).await?,
                (None, _, None) => self.derive(s, &created_by).await?,
            };
            self.remember(key, &id).await;
            self.advance(s, id).await?;
        }
        say(format!(" ---> {}\n", short(&s.image)));
        Ok(())
    }

    /// The here-documents of a COPY/ADD as files (named by their delimiters, variables expanded
    /// unless the delimiter was quoted) in a context of their own, and the step with its `<<NAME`
    /// sources renamed to them.
    fn heredoc_context(
        &self,
        s: &Stage,
        step: &Instruction,
        ctx: &BuildContext,
    ) -> Result<(BuildContext, Instruction)> {
        let root = ctx.scratch.join(format!("heredoc-{}", berth_types::new_id()));
        std::fs::create_dir_all(&root).map_err(|e| EngineError::io("creating", &root, e))?;
        for d in &step.heredocs {
            if d.name.contains('/') || d.name == "." || d.name == ".." {
                return Err(bad(format!("here-document name {:?} cannot be a file name", d.name)));
            }
            let content = if d.expand {
                berth_dockerfile::expand_heredoc(&d.content, &|n| s.lookup(n), '\\').map_err(|e| bad(e.to_string()))?
            } else {
                d.content.clone()
            };
            let p = root.join(&d.name);
            std::fs::write(&p, content).map_err(|e| EngineError::io("writing", &p, e))?;
        }
        let mut rewritten = step.clone();
        rewritten.heredocs.clear();
        if let berth_dockerfile::Args::Words(words) = &mut rewritten.args {
            for w in words.iter_mut() {
                let bare = w
                    .trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(|c| c == '"' || c == '\'');
                if w.starts_with("<<") && step.heredocs.iter().any(|d| d.name == bare) {
                    *w = bare.to_string();
                }
            }
        }
        let heredoc_ctx = BuildContext {
            root,
            ignore: None,
            scratch: ctx.scratch.clone(),
            sources: ctx.sources.clone(),
        };
        Ok((heredoc_ctx, rewritten))
    }

    /// The base image's ONBUILD triggers, run right after FROM as docker's classic builder runs
    /// them (`# Executing N build triggers`); the stage's image then has none of its own.
    async fn run_triggers(
        &self,
        s: &mut Stage,
        opts: &BuildOptions,
        ctx: &BuildContext,
        built: &BTreeMap<String, String>,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<()> {
        let triggers: Vec<String> = s.config["config"]["OnBuild"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        say(format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        ));
        s.cfg().insert("OnBuild".into(), Value::Null);
        for t in triggers {
            let df = berth_dockerfile::parse(&t).map_err(|e| bad(format!("ONBUILD trigger {t:?}: {e}")))?;
            for step in &df.instructions {
                if matches!(step.command, Command::From | Command::Onbuild | Command::Maintainer) {
                    return Err(bad(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        step.command.upper()
                    )));
                }
                self.step(s, step, opts, ctx, built, say).await?;
            }
        }
        Ok(())
    }

    /// The stage now stands on the committed image `id` (its config lists the new layer).
    async fn advance(&self, s: &mut Stage, id: String) -> Result<()> {
        let rec = self.images.resolve(&id).await?;
        s.config = rec.config.clone();
        s.image = id;
        Ok(())
    }

    /// A new image with the stage's config on its current layers, its history entry `created_by`.
    async fn derive(&self, s: &mut Stage, created_by: &str) -> Result<String> {
        let mut config = s.config.clone();
        let now = s
            .epoch
            .map(crate::containers::epoch_rfc3339)
            .unwrap_or_else(berth_types::time::now_rfc3339);
        config["created"] = json!(now);
        if !config["history"].is_array() {
            config["history"] = json!([]);
        }
        if let Some(h) = config["history"].as_array_mut() {
            h.push(json!({
                "created": now,
                "created_by": created_by,
                "empty_layer": true,
            }));
        }
        let bytes = serde_json::to_vec(&config).map_err(|e| EngineError::Internal(e.to_string()))?;
        let parent: berth_types::Digest = s
            .image
            .parse()
            .map_err(|e: berth_types::DigestError| EngineError::Internal(e.to_string()))?;
        let store = self.images.store().clone();
        let rec = blocking(move || Ok(store.derive(&parent, &bytes)?)).await?;
        s.config = rec.config.clone();
        Ok(rec.id.to_string())
    }

    /// A container on the stage's image for a step: `cmd` (none: not started), its env, workdir, user.
    async fn step_container(
        &self,
        s: &Stage,
        cmd: Option<Vec<String>>,
        env: Vec<String>,
        network: Option<String>,
        mounts: Vec<Mount>,
    ) -> Result<String> {
        let c = &s.config["config"];
        let text = |k: &str| c[k].as_str().filter(|v| !v.is_empty()).map(String::from);
        let body = ContainerCreateBody {
            config: ContainerConfig {
                image: Some(s.image.clone()),
                cmd: Some(cmd.unwrap_or_else(|| vec!["/bin/true".into()])),
                entrypoint: Some(Vec::new()),
                env: Some(env),
                working_dir: text("WorkingDir"),
                user: text("User"),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                labels: Some([(BUILD_STEP_LABEL.to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            host_config: Some(HostConfig {
                network_mode: network,
                mounts: (!mounts.is_empty()).then_some(mounts),
                ..Default::default()
            }),
            networking_config: None,
        };
        self.containers.create(None, body).await
    }

    async fn commit(&self, s: &Stage, container: &str, created_by: String) -> Result<String> {
        let config = s.config["config"].as_object().cloned().unwrap_or_default();
        let req = CommitRequest {
            config,
            exact_config: true,
            created_by: Some(created_by),
            source_date_epoch: s.epoch,
            ..Default::default()
        };
        self.containers.commit(container, req).await
    }

    async fn run_step(
        &self,
        s: &Stage,
        step: &Instruction,
        opts: &BuildOptions,
        ctx: &BuildContext,
        plan: &RunPlan,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<String> {
        // `--mount=type=bind,from=`: the source path taken out of its stage or image first.
        let mut from_roots = BTreeMap::new();
        let mut _remove_roots = Vec::new();
        for m in &plan.images {
            let root = self
                .extract_from(std::slice::from_ref(&m.source), &m.image, ctx)
                .await?
                .root;
            _remove_roots.push(TempDir(root.clone()));
            from_roots.insert(m.index, root);
        }
        let secret_dir = ctx.scratch.join(format!("secrets-{}", berth_types::new_id()));
        let _remove_secrets = TempDir(secret_dir.clone());
        let cache_root = self.cache_mounts();
        let inputs = MountInputs {
            ctx,
            cache_root: &cache_root,
            from_roots: &from_roots,
            secrets: &opts.secrets,
            ssh: &opts.ssh,
            secret_dir: &secret_dir,
        };
        let run_mounts = run_mounts(step, s, &inputs)?;
        let cmd = run_command(s, step);
        // Build args reach RUN's environment, not the image's; the predefined proxy ARGs do
        // without being declared.
        let mut env = s.env();
        let proxies = opts.build_args.iter().filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()));
        for (k, v) in s.args.iter().chain(proxies) {
            if !env.iter().any(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k)) {
                env.push(format!("{k}={v}"));
            }
        }
        // The mounts' variables (`secret,env=`, `SSH_AUTH_SOCK`) win.
        for var in run_mounts.env {
            let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k).to_string();
            env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
            env.push(var);
        }
        let network = flag(step, "network").map(String::from).or_else(|| opts.network.clone());
        let id = self
            .step_container(s, Some(cmd.clone()), env, network, run_mounts.mounts)
            .await?;
        say(format!(" ---> Running in {}\n", short(&id)));
        let result = self.run_and_commit(s, &id, &cmd, &plan.created_by, say).await;
        if let Err(e) = self.containers.remove(&id, true, false).await {
            tracing::warn!("removing build container {}: {e}", short(&id));
        } else {
            say(format!("Removing intermediate container {}\n", short(&id)));
        }
        result
    }

    async fn run_and_commit(
        &self,
        s: &Stage,
        id: &str,
        cmd: &[String],
        created_by: &str,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<String> {
        let (ticket, _) = self.containers.prepare_attach(id, false, true, true)?;
        let wait = self.containers.prepare_wait(id, WaitCondition::NextExit)?;
        self.containers.start(id).await?;
        let mut stream = self.containers.finish_attach(ticket).await?;
        forward_output(&mut stream, say).await;
        let (code, _) = wait.await;
        if code != 0 {
            return Err(bad(format!(
                "The command '{}' returned a non-zero code: {code}",
                cmd.join(" ")
            )));
        }
        self.commit(s, id, created_by.to_string()).await
    }

    /// What a `COPY --from=<stage or image>` reads: the image's layers as a read-only view (no
    /// container, no archive), or, where the layers are not the image's own files on disk
    /// (`--userns-remap`) or the view cannot be mounted, the sources taken out through a container
    /// ([`Self::extract_from`]). The guard keeps it readable until the step ends.
    async fn copy_source(
        &self,
        sources: &[String],
        source: &str,
        ctx: &BuildContext,
    ) -> Result<(BuildContext, FromGuard)> {
        let image = self.images.resolve(source).await?;
        match self.images.view(&image).await {
            Ok(Some(view)) => {
                let c = BuildContext {
                    root: view.path(),
                    ignore: None,
                    scratch: ctx.scratch.clone(),
                    sources: ctx.sources.clone(),
                };
                return Ok((c, FromGuard::View { _view: view }));
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("reading {source} through a container: {e}"),
        }
        let c = self.extract_from(sources, &image.id.to_string(), ctx).await?;
        let guard = FromGuard::Dir {
            _dir: TempDir(c.root.clone()),
        };
        Ok((c, guard))
    }

    /// `COPY --from=<stage or image>`: the sources taken out of that image (each source's directory
    /// above its first wildcard, through a container that is not started) into a private root, a
    /// context to copy from as from the build's own (the caller removes its root).
    async fn extract_from(&self, sources: &[String], source: &str, ctx: &BuildContext) -> Result<BuildContext> {
        let image = self.images.resolve(source).await?;
        let root = ctx.scratch.join(format!("from-{}", berth_types::new_id()));
        std::fs::create_dir_all(&root).map_err(|e| EngineError::io("creating", &root, e))?;
        let from = Stage {
            image: image.id.to_string(),
            config: image.config.clone(),
            args: BTreeMap::new(),
            epoch: None,
            globals: BTreeMap::new(),
        };
        let container = self
            .step_container(&from, None, Vec::new(), Some("none".into()), Vec::new())
            .await?;
        let result: Result<()> = async {
            for w in sources {
                let clean = berth_dockerfile::clean_path(&format!("/{w}"));
                let fixed: Vec<&str> = clean
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .take_while(|c| !berth_dockerfile::has_wildcards(c))
                    .collect();
                // The whole root as `./...` members (`/` would name them `/etc`, absolute).
                let path = if fixed.is_empty() {
                    "/.".to_string()
                } else {
                    format!("/{}", fixed.join("/"))
                };
                let parent = match fixed.split_last() {
                    Some((_, up)) => root.join(up.join("/")),
                    None => root.clone(),
                };
                std::fs::create_dir_all(&parent).map_err(|e| EngineError::io("creating", &parent, e))?;
                let spool = ctx.scratch.join(format!("from-{}.tar", berth_types::new_id()));
                let file = std::fs::File::create(&spool).map_err(|e| EngineError::io("creating", &spool, e))?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                let writer = DoneWriter { file, done: Some(tx) };
                // A missing source is the planner's to report ("file not found").
                if self.containers.archive_get(&container, &path, writer).await.is_ok() {
                    let _ = rx.await;
                    let spool2 = spool.clone();
                    blocking(move || {
                        let f = std::fs::File::open(&spool2).map_err(|e| EngineError::io("opening", &spool2, e))?;
                        berth_archive::unpack(f, &parent, &berth_archive::UnpackOptions::default())
                            .map_err(|e| bad(format!("reading {path} from the source image: {e}")))?;
                        Ok(())
                    })
                    .await?;
                }
                let _ = std::fs::remove_file(&spool);
            }
            Ok(())
        }
        .await;
        if let Err(e) = self.containers.remove(&container, true, false).await {
            tracing::warn!("removing build container {}: {e}", short(&container));
        }
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&root);
            return Err(e);
        }
        Ok(BuildContext {
            root,
            ignore: None,
            scratch: ctx.scratch.clone(),
            sources: ctx.sources.clone(),
        })
    }

    /// ADD's URLs downloaded into the build's scratch space, as Docker saves them: mode 0600, the
    /// mtime from `Last-Modified` when the server sent it; checked against `--checksum`.
    async fn fetch_urls(&self, spec: &mut CopySpec, ctx: &BuildContext) -> Result<()> {
        for url in spec.urls.clone() {
            if spec.dir_syntax() && berth_build::remote::file_name_of(&url).is_none() {
                return Err(spec.error(format!(
                    "cannot determine a file name from {url}: give the destination file's name"
                )));
            }
            let dir = ctx.scratch.join(format!("url-{}", berth_types::new_id()));
            let limits = berth_build::remote::FetchLimits::default();
            let got = berth_build::remote::fetch(&url, &dir, spec.checksum.as_ref(), &limits)
                .await
                .map_err(|e| match e {
                    berth_build::remote::FetchError::ChecksumMismatch { .. } => spec.flag_error("checksum", e),
                    e => spec.error(e),
                })?;
            let path = got.path.clone();
            let mtime = got.last_modified;
            blocking(move || {
                use std::os::unix::fs::PermissionsExt;
                let io = |e| EngineError::io("setting the metadata of", &path, e);
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
                if let Some(t) = mtime {
                    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
                    let f = std::fs::File::options().write(true).open(&path).map_err(io)?;
                    f.set_modified(when).map_err(io)?;
                }
                Ok(())
            })
            .await?;
            spec.fetched.push(got);
        }
        Ok(())
    }

    /// A COPY or ADD of context files (or a stage's: see [`Self::copy_from_step`]) and downloads:
    /// planned with Docker's rules, archived at their image paths, extracted into a container of
    /// the stage's image that is then committed.
    async fn copy_step(
        &self,
        s: &Stage,
        step: &Instruction,
        spec: &CopySpec,
        ctx: &BuildContext,
        created_by: &str,
    ) -> Result<String> {
        let container = self
            .step_container(s, None, s.env(), Some("none".into()), Vec::new())
            .await?;
        let result = async {
            let owner = match &spec.chown {
                None => None,
                Some(o) => Some(self.owner_in_image(&container, o).await?),
            };
            let workdir = s.workdir();
            let mut dest = spec.dest.clone();
            let mut dest_abs: String = berth_dockerfile::clean_path(&if dest.starts_with('/') {
                dest.clone()
            } else {
                format!("{workdir}/{dest}")
            });
            if !spec.link {
                // The destination's symlinks are followed inside the image (`/app -> /real`
                // puts the files in `/real`), as Docker's classic builder resolves it.
                let resolved = self.containers.archive_resolve(&container, &dest_abs).await?;
                if resolved != dest_abs {
                    dest = format!("{resolved}{}", if spec.dir_syntax() { "/" } else { "" });
                    dest_abs = resolved;
                }
            }
            // `--link` reads nothing of the image: the destination is made fresh, not looked at.
            let dest_is_dir = !spec.link
                && self
                    .containers
                    .archive_stat(&container, &dest_abs)
                    .await
                    .map(|st| st.mode & (1 << 31) != 0)
                    .unwrap_or(false);
            let root = ctx.root.clone();
            let ignore = ctx.ignore.clone();
            let scratch = ctx.scratch.clone();
            let (local, flags, fetched) = (spec.local.clone(), spec.flags.clone(), spec.fetched.clone());
            // ADD unpacks local tar archives unless `--unpack=false`, remote ones only with
            // `--unpack=true`.
            let is_add = step.command == Command::Add;
            let unpack_local = is_add && spec.unpack != Some(false);
            let unpack_remote = is_add && spec.unpack == Some(true);
            let into_dir = spec.dir_syntax() || dest_is_dir;
            let (link, mode, epoch) = (spec.link, spec.mode.clone(), s.epoch);
            let failed = spec.failed();
            let what = spec.what.clone();
            let spool = ctx.scratch.join(format!("copy-{}.tar", berth_types::new_id()));
            let spool2 = spool.clone();
            let file = blocking(move || {
                let c = berth_build::Context {
                    root: &root,
                    ignore: ignore.as_ref(),
                };
                let items = if local.is_empty() {
                    Vec::new()
                } else {
                    berth_build::plan_with(&c, &local, &dest, &workdir, &|_| dest_is_dir, &flags).map_err(&failed)?
                };
                let mut sets: Vec<(PathBuf, Vec<berth_build::CopyItem>)> = Vec::new();
                let mut plain = Vec::new();
                let unpack = |archive: &Path, label: &str| -> Result<(PathBuf, Vec<berth_build::CopyItem>)> {
                    let dir = scratch.join(format!("add-{}", berth_types::new_id()));
                    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
                    let f = std::fs::File::open(archive).map_err(|e| EngineError::io("opening", archive, e))?;
                    let reader = berth_archive::decompress(f).map_err(|e| bad(format!("{what} {label}: {e}")))?;
                    berth_archive::unpack(reader, &dir, &berth_archive::UnpackOptions::default())
                        .map_err(|e| bad(format!("{what} {label}: {e}")))?;
                    let into = format!("{}/", dest_abs.trim_end_matches('/'));
                    let c = berth_build::Context {
                        root: &dir,
                        ignore: None,
                    };
                    let inner = berth_build::plan(&c, &[".".to_string()], &into, "/", &|_| true)
                        .map_err(|e| bad(format!("{what} {label}: {e}")))?;
                    Ok((dir, inner))
                };
                for item in items {
                    let host = root.join(&item.src);
                    if unpack_local && item.kind == berth_build::EntryKind::File && is_tar_archive(&host)? {
                        sets.push(unpack(&host, &item.src)?);
                    } else {
                        plain.push(item);
                    }
                }
                sets.insert(0, (root.clone(), plain));
                for f in &fetched {
                    if unpack_remote && is_tar_archive(&f.path)? {
                        sets.push(unpack(&f.path, &f.url)?);
                        continue;
                    }
                    let target = if into_dir {
                        format!("{}/{}", dest_abs.trim_end_matches('/'), f.name)
                    } else {
                        dest_abs.clone()
                    };
                    let dir = f.path.parent().map(Path::to_path_buf).unwrap_or_default();
                    let item = berth_build::CopyItem {
                        src: f.name.clone(),
                        dest: target,
                        kind: berth_build::EntryKind::File,
                    };
                    sets.push((dir, vec![item]));
                }
                let fresh = if link { fresh_parents(&sets) } else { Vec::new() };
                write_tar(&sets, &fresh, owner, mode.as_ref(), epoch, &spool2)
            })
            .await?;
            let _ = std::fs::remove_file(&spool);
            self.containers
                .archive_put(
                    &container,
                    "/",
                    file,
                    ExtractOptions {
                        no_overwrite_dir_non_dir: false,
                        copy_uid_gid: true,
                    },
                )
                .await?;
            self.commit(s, &container, created_by.to_string()).await
        }
        .await;
        if let Err(e) = self.containers.remove(&container, true, false).await {
            tracing::warn!("removing build container {}: {e}", short(&container));
        }
        result
    }
}

/// A COPY or ADD as berth's builder runs it: its sources (variables expanded) split into context
/// paths and URLs, its destination and its flags, read and checked once before anything runs,
/// with the downloads of its URLs once fetched.
struct CopySpec {
    /// `COPY` or `ADD`.
    what: String,
    /// Its line in the Dockerfile, for errors.
    line: usize,
    /// Sources in the context (or the `--from` stage).
    local: Vec<String>,
    /// http(s) sources (ADD).
    urls: Vec<String>,
    dest: String,
    chown: Option<String>,
    mode: Option<berth_build::Chmod>,
    /// `--exclude` and `--parents`, for the planner.
    flags: berth_build::CopyFlags,
    /// `--link`: parents of the destination made fresh, the destination not looked at.
    link: bool,
    /// `--unpack` (ADD), when given.
    unpack: Option<bool>,
    /// `--checksum` (ADD of a URL).
    checksum: Option<berth_build::remote::Checksum>,
    fetched: Vec<berth_build::remote::Fetched>,
}

/// The value of boolean flag `--name` (`--name` alone is true), when given.
fn bool_flag(i: &Instruction, name: &str) -> Option<bool> {
    let bare = format!("--{name}");
    i.flags.iter().find_map(|f| {
        if *f == bare {
            Some(true)
        } else {
            f.strip_prefix(bare.as_str())
                .and_then(|v| v.strip_prefix('='))
                .map(|v| v.eq_ignore_ascii_case("true"))
        }
    })
}

impl CopySpec {
    /// Reads a COPY/ADD: what berth's builder cannot do (git sources, `--keep-git-dir`) is refused
    /// here, naming the line and the flag.
    fn parse(s: &Stage, step: &Instruction) -> Result<CopySpec> {
        let what = step.command.upper();
        let is_add = step.command == Command::Add;
        let mut words: Vec<String> = Vec::new();
        for w in step.words() {
            words.push(s.expand(w)?);
        }
        let dest = match words.pop() {
            Some(d) if !words.is_empty() => d,
            _ => {
                return Err(bad(format!(
                    "{what} requires at least two arguments (line {})",
                    step.line
                )))
            }
        };
        let mut spec = CopySpec {
            what,
            line: step.line,
            local: Vec::new(),
            urls: Vec::new(),
            dest,
            chown: None,
            mode: None,
            flags: berth_build::CopyFlags::default(),
            link: bool_flag(step, "link").unwrap_or(false),
            unpack: bool_flag(step, "unpack"),
            checksum: None,
            fetched: Vec::new(),
        };
        if is_add && bool_flag(step, "keep-git-dir").is_some() {
            return Err(spec.flag_error("keep-git-dir", "git sources are not supported by berth's builder"));
        }
        use berth_build::remote::{source_kind, SourceKind};
        for w in words {
            match source_kind(&w) {
                SourceKind::Git if is_add => {
                    return Err(spec.error(format!(
                        "{w} is a git repository: git sources are not supported by berth's builder"
                    )))
                }
                SourceKind::Http | SourceKind::Git if !is_add => {
                    return Err(spec.error(format!("source can't be a URL for COPY: {w}")))
                }
                SourceKind::Http => spec.urls.push(w),
                _ => spec.local.push(w),
            }
        }
        if spec.local.len() + spec.urls.len() > 1 && !spec.dir_syntax() {
            return Err((spec.failed())(berth_build::CopyError::DestinationNotDirectory));
        }
        if let Some(c) = flag(step, "checksum") {
            if !spec.local.is_empty() || spec.urls.len() != 1 {
                return Err(spec.flag_error("checksum", "it verifies one http(s) source, and only that"));
            }
            let c = s.expand(c)?;
            spec.checksum = Some(berth_build::remote::Checksum::parse(&c).map_err(|e| spec.flag_error("checksum", e))?);
        }
        spec.chown = flag(step, "chown").map(|o| s.expand(o)).transpose()?;
        if let Some(m) = flag(step, "chmod") {
            let m = s.expand(m)?;
            spec.mode = Some(berth_build::Chmod::parse(&m).map_err(|e| spec.flag_error("chmod", e))?);
        }
        let mut patterns = Vec::new();
        for p in step.flags.iter().filter_map(|f| f.strip_prefix("--exclude=")) {
            patterns.push(s.expand(p)?);
        }
        spec.flags.exclude = berth_build::exclude_patterns(&patterns).map_err(|e| spec.flag_error("exclude", e))?;
        spec.flags.parents = bool_flag(step, "parents").unwrap_or(false);
        Ok(spec)
    }

    /// Whether the destination is a directory by its syntax (`dir/`, `.`).
    fn dir_syntax(&self) -> bool {
        self.dest.ends_with('/') || self.dest == "." || self.dest.ends_with("/.")
    }

    /// An error of this instruction.
    fn error(&self, msg: impl std::fmt::Display) -> EngineError {
        bad(format!("{} (line {}): {msg}", self.what, self.line))
    }

    /// An error about one of this instruction's flags.
    fn flag_error(&self, flag: &str, msg: impl std::fmt::Display) -> EngineError {
        bad(format!("{} --{flag} (line {}): {msg}", self.what, self.line))
    }

    /// The step's history entry (Docker's `COPY file:<sha256> in /dest `): `content` is the
    /// digest of what it copies from `ctx`, the rest of the digest is how (owner, mode, flags).
    fn created_by(&self, content: &str, ctx: &BuildContext) -> String {
        let kind = match (self.local.as_slice(), self.urls.len()) {
            ([], 1) => "file",
            ([one], 0) if !berth_dockerfile::has_wildcards(one) => {
                let rel = berth_dockerfile::clean_path(&format!("/{one}"));
                if ctx.root.join(rel.trim_start_matches('/')).is_dir() {
                    "dir"
                } else {
                    "file"
                }
            }
            _ => "multi",
        };
        let how = format!(
            "{:?}",
            (
                &self.dest,
                &self.chown,
                &self.mode,
                self.link,
                self.unpack,
                self.flags.parents
            )
        );
        history::copy_created_by(&self.what, kind, content, &how, &self.dest)
    }

    /// How a planning error reads (the classic builder's `COPY failed: ...`, and the line).
    fn failed(&self) -> impl Fn(berth_build::CopyError) -> EngineError + Send + Sync + 'static {
        let (what, line) = (self.what.clone(), self.line);
        move |e| bad(format!("{what} failed: {e} (line {line})"))
    }
}

/// `--link`: the directories above what is copied that the copy does not bring itself, made
/// fresh in the layer (as BuildKit copies into an empty directory and links that on top): a
/// symlink there is replaced, not followed.
fn fresh_parents(sets: &[(PathBuf, Vec<berth_build::CopyItem>)]) -> Vec<String> {
    let brought: std::collections::BTreeSet<&str> = sets
        .iter()
        .flat_map(|(_, items)| items.iter().map(|i| i.dest.trim_end_matches('/')))
        .collect();
    let mut fresh = std::collections::BTreeSet::new();
    for (_, items) in sets {
        for item in items {
            let mut cur = item.dest.trim_end_matches('/');
            while let Some((up, _)) = cur.rsplit_once('/') {
                if !up.is_empty() && !brought.contains(up) {
                    fresh.insert(up.to_string());
                }
                cur = up;
            }
        }
    }
    fresh.into_iter().collect()
}

/// Where a stage's instructions are: `start` is its FROM.
struct StageSpan {
    start: usize,
    end: usize,
    name: Option<String>,
}

/// The stages `target` needs, itself last, in Dockerfile order: those its FROM and its
/// `COPY --from` name (by name or index), and theirs. A stage naming itself or a later one is an
/// error (the classic builder cannot use a stage before it is built).
fn needed_stages(
    instructions: &[Instruction],
    stages: &[StageSpan],
    target: usize,
) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
    let index_of = |name: &str, before: usize| -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        stages[..before]
            .iter()
            .position(|st| st.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
    };
    let mut needed = vec![false; stages.len()];
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); stages.len()];
    let mut todo = vec![target];
    while let Some(k) = todo.pop() {
        if std::mem::replace(&mut needed[k], true) {
            continue;
        }
        let span = &stages[k];
        for (pos, i) in instructions[span.start..span.end].iter().enumerate() {
            let references: Vec<String> = match (pos, i.command) {
                (0, _) => i.words().first().cloned().into_iter().collect(),
                (_, Command::Copy | Command::Add) => flag(i, "from").map(String::from).into_iter().collect(),
                // RUN --mount=...,from=<stage>
                (_, Command::Run) => i
                    .flags
                    .iter()
                    .filter_map(|f| f.strip_prefix("--mount="))
                    .filter_map(|spec| mount_fields(spec).remove("from"))
                    .collect(),
                _ => Vec::new(),
            };
            for r in references {
                if let Some(dep) = index_of(&r, k) {
                    todo.push(dep);
                    if !deps[k].contains(&dep) {
                        deps[k].push(dep);
                    }
                } else if stages[k..]
                    .iter()
                    .any(|st| st.name.as_deref() == Some(r.to_ascii_lowercase().as_str()))
                {
                    return Err(bad(format!(
                        "stage {r:?} is used before it is built (line {}): circular or forward dependency",
                        i.line
                    )));
                }
            }
        }
    }
    Ok(((0..stages.len()).filter(|&k| needed[k]).collect(), deps))
}

/// A stage being built: its image and config, or why it failed (shared by the stages that use
/// it).
type StageFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<Arc<Stage>, Arc<EngineError>>> + Send + 'a>>;

/// What every stage of one build shares.
struct BuildRun<'a> {
    opts: &'a BuildOptions,
    ctx: &'a BuildContext,
    global_args: &'a BTreeMap<String, String>,
    epoch: Option<u64>,
    out: &'a Progress,
    total: usize,
}

/// The stages' output in Dockerfile order while they build at the same time: the first
/// unfinished stage's output goes out as it comes, a later stage's waits until those before it
/// finish.
struct StageOutput<'a> {
    say: &'a (dyn Fn(String) + Sync),
    state: std::sync::Mutex<OutputState>,
}

struct OutputState {
    current: usize,
    waiting: Vec<Vec<String>>,
    finished: Vec<bool>,
}

impl<'a> StageOutput<'a> {
    fn new(stages: usize, say: &'a (dyn Fn(String) + Sync)) -> StageOutput<'a> {
        StageOutput {
            say,
            state: std::sync::Mutex::new(OutputState {
                current: 0,
                waiting: vec![Vec::new(); stages],
                finished: vec![false; stages],
            }),
        }
    }

    fn say(&self, pos: usize, text: String) {
        let mut st = crate::lock(&self.state);
        if pos == st.current {
            (self.say)(text);
        } else if let Some(w) = st.waiting.get_mut(pos) {
            w.push(text);
        }
    }

    fn finished(&self, pos: usize) {
        let mut st = crate::lock(&self.state);
        if let Some(f) = st.finished.get_mut(pos) {
            *f = true;
        }
        while st.finished.get(st.current).copied().unwrap_or(false) {
            st.current += 1;
            let current = st.current;
            if let Some(w) = st.waiting.get_mut(current) {
                for text in std::mem::take(w) {
                    (self.say)(text);
                }
            }
        }
    }

    /// Marks stage `pos` finished when the guard goes, however the stage ends.
    fn finished_on_drop(&self, pos: usize) -> impl Drop + '_ {
        struct Finished<'o, 'a>(&'o StageOutput<'a>, usize);
        impl Drop for Finished<'_, '_> {
            fn drop(&mut self) {
                self.0.finished(self.1);
            }
        }
        Finished(self, pos)
    }
}

/// What a RUN step needs beyond its instruction: its history entry and its `from=` images.
struct RunPlan {
    created_by: String,
    images: Vec<MountImage>,
}

/// The unpacked context.
struct BuildContext {
    root: PathBuf,
    ignore: Option<DockerIgnore>,
    scratch: PathBuf,
    /// The `--cache-from` images still in the running (after a hit, only the image it came from).
    sources: Arc<std::sync::Mutex<Vec<CacheSource>>>,
}

/// Whether `path` is a tar archive ADD unpacks: plain or gzip (zstd where built in); xz and bzip2
/// archives are refused with a message, anything else is copied as a file.
fn is_tar_archive(path: &Path) -> Result<bool> {
    let mut head = [0u8; 6];
    let n = {
        let mut f = std::fs::File::open(path).map_err(|e| EngineError::io("opening", path, e))?;
        std::io::Read::read(&mut f, &mut head).map_err(|e| EngineError::io("reading", path, e))?
    };
    if head[..n].starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) || head[..n].starts_with(b"BZh") {
        return Err(bad(format!(
            "ADD {}: xz and bzip2 archives are not supported by berth's builder yet",
            path.display()
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| EngineError::io("opening", path, e))?;
    let Ok(mut reader) = berth_archive::decompress(f) else {
        return Ok(false);
    };
    let mut block = vec![0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match reader.read(&mut block[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    Ok(got == 512 && &block[257..262] == b"ustar")
}

/// A file that tells when the writer is done with it (dropped).
struct DoneWriter {
    file: std::fs::File,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::io::Write for DoneWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for DoneWriter {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
    }
}

/// Copies a container's multiplexed output to the build's stream, line by line as it comes.
async fn forward_output(stream: &mut crate::AttachStream, say: &(dyn Fn(String) + Sync)) {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; berth_api::stream::HEADER_LEN];
    while stream.read_exact(&mut header).await.is_ok() {
        let Ok(h) = berth_api::stream::parse_header(&header) else {
            return;
        };
        let mut buf = vec![0u8; h.len as usize];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        say(String::from_utf8_lossy(&buf).into_owned());
    }
}

/// `--chown=UID[:GID]` with numbers (names need the image's passwd: not yet).
/// `--chown=USER[:GROUP]`: numbers as they are, names through the image's `/etc/passwd` and
/// `/etc/group` (given as their text); a user alone also gives its primary group (numeric: the
/// same number), as Docker resolves them.
fn resolve_owner(o: &str, passwd: &str, group: &str) -> Result<(u64, u64)> {
    let (u, g) = match o.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (o, None),
    };
    let find = |text: &str, name: &str, gid_field: usize| -> Option<(u64, u64)> {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| {
                let id = f.get(2)?.parse().ok()?;
                let gid = f.get(gid_field)?.parse().ok()?;
                Some((id, gid))
            })?
        })
    };
    let (uid, primary) = match u.parse::<u64>() {
        Ok(n) => (n, n),
        Err(_) => find(passwd, u, 3).ok_or_else(|| {
            bad(format!(
                "--chown={o}: unable to find user {u}: no matching entries in passwd file"
            ))
        })?,
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => find(group, g, 2).map(|(id, _)| id).ok_or_else(|| {
                bad(format!(
                    "--chown={o}: unable to find group {g}: no matching entries in group file"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}

/// The planned entries as a tar at their image paths, owned by root (or `owner`), modes kept (or
/// changed by `--chmod`'s `mode`).
fn write_tar(
    sets: &[(PathBuf, Vec<berth_build::CopyItem>)],
    fresh_dirs: &[String],
    owner: Option<(u64, u64)>,
    mode: Option<&berth_build::Chmod>,
    clamp_mtime: Option<u64>,
    spool: &Path,
) -> Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let io = |what: &'static str, p: &Path, e: std::io::Error| EngineError::io(what, p, e);
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(spool)
        .map_err(|e| io("creating", spool, e))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.follow_symlinks(false);
    let (uid, gid) = owner.unwrap_or((0, 0));
    // `--link`'s fresh parent directories, parents first (as BuildKit's `MkdirAll`: 0755, the
    // `--chown` owner).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for dir in fresh_dirs {
        let mut h = tar::Header::new_gnu();
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(clamp_mtime.map_or(now, |c| now.min(c)));
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, format!("{}/", dir.trim_start_matches('/')), std::io::empty())
            .map_err(|e| io("archiving", Path::new(dir), e))?;
    }
    for (root, item) in sets
        .iter()
        .flat_map(|(root, items)| items.iter().map(move |i| (root, i)))
    {
        let src = if item.src == "." {
            root.to_path_buf()
        } else {
            root.join(&item.src)
        };
        let meta = std::fs::symlink_metadata(&src).map_err(|e| io("reading", &src, e))?;
        let name = item.dest.trim_start_matches('/');
        if name.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_uid(uid);
        h.set_gid(gid);
        let mtime = meta.mtime().max(0) as u64;
        h.set_mtime(clamp_mtime.map_or(mtime, |c| mtime.min(c)));
        let own = meta.mode() & 0o7777;
        let perm = mode.map_or(own, |m| m.apply(own, item.kind == berth_build::EntryKind::Dir));
        match item.kind {
            berth_build::EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(perm);
                h.set_size(0);
                tar.append_data(&mut h, name, std::io::empty())
                    .map_err(|e| io("archiving", &src, e))?;
            }
            berth_build::EntryKind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(perm);
                h.set_size(meta.len());
                let f = std::fs::File::open(&src).map_err(|e| io("opening", &src, e))?;
                tar.append_data(&mut h, name, f).map_err(|e| io("archiving", &src, e))?;
            }
            berth_build::EntryKind::Symlink => {
                let target = std::fs::read_link(&src).map_err(|e| io("reading", &src, e))?;
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, name, &target)
                    .map_err(|e| io("archiving", &src, e))?;
            }
            berth_build::EntryKind::Other => {}
        }
    }
    let writer = tar.into_inner().map_err(|e| io("writing", spool, e))?;
    let mut file = writer.into_inner().map_err(|e| io("writing", spool, e.into_error()))?;
    std::io::Seek::rewind(&mut file).map_err(|e| io("rewinding", spool, e))?;
    Ok(file)
}

/// Applies a metadata instruction to the stage's config.
fn apply_metadata(s: &mut Stage, step: &Instruction, build_args: &BTreeMap<String, String>) -> Result<()> {
    let words: Vec<String> = step.words().to_vec();
    match step.command {
        Command::Env => {
            for kv in step.key_values() {
                let v = s.expand(kv.value.as_deref().unwrap_or(""))?;
                let mut env = s.env();
                env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(kv.key.as_str()));
                env.push(format!("{}={v}", kv.key));
                s.cfg().insert("Env".into(), json!(env));
            }
        }
        Command::Label => {
            for kv in step.key_values() {
                let k = s.expand(&kv.key)?;
                let v = s.expand(kv.value.as_deref().unwrap_or(""))?;
                let labels = s.cfg().entry("Labels").or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                labels[k] = json!(v);
            }
        }
        Command::Arg => {
            for kv in step.key_values() {
                let v = build_args
                    .get(&kv.key)
                    .cloned()
                    .or_else(|| kv.value.clone())
                    .or_else(|| s.globals.get(&kv.key).cloned())
                    .unwrap_or_default();
                s.args.insert(kv.key.clone(), v);
            }
        }
        Command::Workdir => {
            let w = s.expand(words.first().map(String::as_str).unwrap_or(""))?;
            let abs = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", s.workdir())
            };
            s.cfg()
                .insert("WorkingDir".into(), json!(berth_dockerfile::clean_path(&abs)));
        }
        Command::User => {
            let u = s.expand(words.first().map(String::as_str).unwrap_or(""))?;
            s.cfg().insert("User".into(), json!(u));
        }
        Command::Cmd | Command::Entrypoint => {
            let v = if step.json {
                words.clone()
            } else {
                let mut c = s.shell();
                c.push(words.join(" "));
                c
            };
            let key = if step.command == Command::Cmd {
                "Cmd"
            } else {
                "Entrypoint"
            };
            s.cfg().insert(key.into(), json!(v));
            if step.command == Command::Entrypoint && !s.config["config"]["Cmd"].is_null() {
                // A new ENTRYPOINT resets an inherited CMD (as Docker does).
                s.cfg().insert("Cmd".into(), Value::Null);
            }
        }
        Command::Shell => {
            s.cfg().insert("Shell".into(), json!(words));
        }
        Command::Expose => {
            let ports = s.cfg().entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for w in &words {
                let p = if w.contains('/') { w.clone() } else { format!("{w}/tcp") };
                ports[p] = json!({});
            }
        }
        Command::Volume => {
            let vols = s.cfg().entry("Volumes").or_insert_with(|| json!({}));
            if !vols.is_object() {
                *vols = json!({});
            }
            for w in words.iter().flat_map(|w| w.split_whitespace()) {
                vols[w] = json!({});
            }
        }
        Command::Stopsignal => {
            let sig = s.expand(words.first().map(String::as_str).unwrap_or(""))?;
            s.cfg().insert("StopSignal".into(), json!(sig));
        }
        Command::Maintainer => {
            s.config["author"] = json!(words.join(" "));
        }
        Command::Onbuild => {
            let berth_dockerfile::Args::OnBuild(next) = &step.args else {
                return Err(bad("ONBUILD needs an instruction"));
            };
            let mut triggers: Vec<Value> = s.config["config"]["OnBuild"].as_array().cloned().unwrap_or_default();
            triggers.push(json!(next.original.trim()));
            s.cfg().insert("OnBuild".into(), json!(triggers));
        }
        Command::Healthcheck => {
            let berth_dockerfile::Args::Healthcheck { kind, command } = &step.args else {
                return Err(bad("HEALTHCHECK needs CMD or NONE"));
            };
            let hc = if kind.eq_ignore_ascii_case("NONE") {
                json!({ "Test": ["NONE"] })
            } else {
                let mut test = if step.json {
                    vec![json!("CMD")]
                } else {
                    vec![json!("CMD-SHELL")]
                };
                if step.json {
                    test.extend(command.iter().map(|c| json!(c)));
                } else {
                    test.push(json!(command.join(" ")));
                }
                let mut hc = json!({ "Test": test });
                for (flag_name, key) in [
                    ("interval", "Interval"),
                    ("timeout", "Timeout"),
                    ("start-period", "StartPeriod"),
                    ("start-interval", "StartInterval"),
                ] {
                    if let Some(v) = flag(step, flag_name) {
                        hc[key] = json!(go_duration_nanos(v).ok_or_else(|| bad(format!(
                            "HEALTHCHECK --{flag_name}={v}: not a duration (e.g. 30s, 1m30s)"
                        )))?);
                    }
                }
                if let Some(v) = flag(step, "retries") {
                    let n: i64 = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad(format!("HEALTHCHECK --retries={v}: not a non-negative number")))?;
                    hc["Retries"] = json!(n);
                }
                hc
            };
            s.cfg().insert("Healthcheck".into(), hc);
        }
        other => return Err(bad(format!("{} cannot be used here", other.upper()))),
    }
    Ok(())
}

/// The command a RUN runs: its JSON words, or its line (here-documents made a script) through the
/// stage's shell.
fn run_command(s: &Stage, step: &Instruction) -> Vec<String> {
    let words = step.words().to_vec();
    if step.json {
        words
    } else {
        let line = words.join(" ");
        let mut c = s.shell();
        c.push(heredoc_script(&line, &step.heredocs));
        c
    }
}

/// The shell script of a RUN line with here-documents: a line that is only `<<EOF` runs the
/// document itself; otherwise the line with its documents after it, for the shell to feed them.
fn heredoc_script(line: &str, docs: &[berth_dockerfile::Heredoc]) -> String {
    let Some(first) = docs.first() else {
        return line.to_string();
    };
    let only = line.trim().trim_start_matches("<<").trim_start_matches('-');
    if docs.len() == 1 && only.trim_matches(|c| c == '"' || c == '\'') == first.name {
        return first.content.clone();
    }
    let mut script = line.to_string();
    script.push('\n');
    for d in docs {
        script.push_str(&d.content);
        if !d.content.is_empty() && !d.content.ends_with('\n') {
            script.push('\n');
        }
        script.push_str(&d.name);
        script.push('\n');
    }
    script
}

/// A non-negative Go duration (`30s`, `1m30s`, `500ms`, `1h`) in nanoseconds.
fn go_duration_nanos(v: &str) -> Option<i64> {
    crate::filters::parse_go_duration(v).filter(|n| *n >= 0)
}

/// `name:tag` into the repository and the tag (`latest` when none).
fn split_tag(t: &str) -> (&str, Option<&str>) {
    match t.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (t, None),
    }
}

fn familiar_tag(t: &str) -> String {
    match split_tag(t) {
        (repo, Some(tag)) => format!("{repo}:{tag}"),
        (repo, None) => format!("{repo}:latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn small_plain_contexts_go_to_memory_others_to_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let (disk, fast) = (tmp.path().join("disk"), tmp.path().join("fast"));
        let small = tar_of(&[("Dockerfile", b"FROM bb\n")]);
        let got = unpack_context(&small[..], &disk, Some(&fast)).unwrap();
        assert_eq!(got, fast);
        assert_eq!(std::fs::read(fast.join("Dockerfile")).unwrap(), b"FROM bb\n");
        let got = unpack_context(&small[..], &disk, None).unwrap();
        assert_eq!(got, disk);
        assert!(disk.join("Dockerfile").exists());
        // Larger than SMALL_CONTEXT: on disk, every byte there.
        let big = vec![7u8; (SMALL_CONTEXT + 10) as usize];
        let large = tar_of(&[("Dockerfile", b"FROM bb\n"), ("big", &big)]);
        let disk2 = tmp.path().join("disk2");
        let fast2 = tmp.path().join("fast2");
        let got = unpack_context(&large[..], &disk2, Some(&fast2)).unwrap();
        assert_eq!(got, disk2);
        assert_eq!(std::fs::metadata(disk2.join("big")).unwrap().len(), big.len() as u64);
        assert!(!fast2.join("big").exists());
        // Compressed: on disk.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &small).unwrap();
        let gz = gz.finish().unwrap();
        let disk3 = tmp.path().join("disk3");
        let got = unpack_context(&gz[..], &disk3, Some(&fast)).unwrap();
        assert_eq!(got, disk3);
        assert!(disk3.join("Dockerfile").exists());
    }

    #[test]
    fn owners_resolve_by_number_and_name() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1234:4321::/app:/bin/sh\n";
        let group = "root:x:0:\ngrp:x:999:app\n";
        assert_eq!(resolve_owner("7", passwd, group).unwrap(), (7, 7));
        assert_eq!(resolve_owner("7:8", passwd, group).unwrap(), (7, 8));
        assert_eq!(resolve_owner("app", passwd, group).unwrap(), (1234, 4321));
        assert_eq!(resolve_owner("app:grp", passwd, group).unwrap(), (1234, 999));
        assert_eq!(resolve_owner("0:grp", passwd, group).unwrap(), (0, 999));
        let e = resolve_owner("nobody", passwd, group).unwrap_err().to_string();
        assert!(e.contains("unable to find user nobody"), "{e}");
        let e = resolve_owner("app:nogroup", passwd, group).unwrap_err().to_string();
        assert!(e.contains("unable to find group nogroup"), "{e}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_nanos("30s"), Some(30_000_000_000));
        assert_eq!(go_duration_nanos("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_nanos("500ms"), Some(500_000_000));
        assert_eq!(go_duration_nanos("1h"), Some(3_600_000_000_000));
        assert_eq!(go_duration_nanos("5"), None);
        assert_eq!(go_duration_nanos(""), None);
    }
}
