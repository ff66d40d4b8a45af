//! The image service: owns the image store; async wrappers over it, the Engine API views of
//! images, and the image events (`tag`, `untag`, `delete`, `import`, `load`, `save`).

use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus, EventType};
use crate::filters::{check_keys, created_before, prune_labels_match, prune_until, Filters};
use berth_api::models::ContainerConfig;
use berth_snapshot::Snapshotter;
use berth_store::{ImageRecord, ImageStore};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;

pub use berth_store::ImportOptions;

/// Lines `docker load` prints, one per loaded image.
#[derive(Debug, Clone)]
pub struct LoadOutput {
    /// `Loaded image: bb:latest` or `Loaded image ID: sha256:...`.
    pub lines: Vec<String>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("image task failed: {e}")))?
}

/// The container defaults an image carries (its config's `config` object).
pub(crate) fn image_container_config(img: &ImageRecord) -> ContainerConfig {
    img.config
        .get("config")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default()
}

fn created_unix(img: &ImageRecord) -> i64 {
    berth_types::time::unix_seconds(&img.created)
}

/// Who uses an image: asked before an image is deleted (the container registry answers).
pub trait ImageUsers: Send + Sync {
    /// The ID of a container created from image `image_id`, if any.
    fn container_using(&self, image_id: &str) -> Option<String>;
    /// How many containers were created from image `image_id`.
    fn containers_using(&self, image_id: &str) -> usize;
    /// The image snapshots containers stand on (also those of images removed with `rmi -f`).
    fn snapshots_in_use(&self) -> Vec<berth_types::ChainId>;
}

/// How old unreferenced content must be before a prune removes it (see `ImageStore::sweep`).
const SWEEP_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// The image service.
pub struct ImageService {
    store: Arc<ImageStore>,
    snapshots: Arc<Snapshotter>,
    users: Arc<dyn ImageUsers>,
    events: EventBus,
}

/// An image's files, read-only: its layers as an overlay mounted detached (no mount point; reached
/// through the descriptor, at [`ImageView::path`]), leased so no garbage collection takes the
/// layers away while it is open.
pub(crate) struct ImageView {
    root: std::os::fd::OwnedFd,
    _lease: berth_store::Lease,
}

impl ImageView {
    /// The root as a path this process can open (`/proc/self/fd/N/.`: the `.` makes even an
    /// `lstat` of the root itself see the directory, not the descriptor's magic link), valid while
    /// the view lives.
    pub(crate) fn path(&self) -> std::path::PathBuf {
        use std::os::fd::AsRawFd;
        std::path::PathBuf::from(format!("/proc/self/fd/{}/.", self.root.as_raw_fd()))
    }
}

impl ImageService {
    /// A read-only view of the image `id`'s files, or `None` where the layers on disk are not the
    /// image's own files (stored shifted for `--userns-remap`): the caller then reads the image
    /// through a container.
    pub(crate) async fn view(&self, rec: &ImageRecord) -> Result<Option<ImageView>> {
        if self.snapshots.id_map().is_some() {
            return Ok(None);
        }
        let lease = self.store.lease_for(&[], &rec.chain_ids);
        let snapshots = self.snapshots.clone();
        let chains = rec.chain_ids.clone();
        let root = blocking(move || {
            let m = snapshots.view_mount(&chains)?;
            crate::containers::mount_detached(&m)
                .map_err(|e| EngineError::Internal(format!("mounting an image's layers read-only: {e}")))
        })
        .await?;
        Ok(Some(ImageView { root, _lease: lease }))
    }

    /// Serves `store`, whose layers `snapshots` holds; `users` says which container uses an image.
    pub fn new(
        store: Arc<ImageStore>,
        snapshots: Arc<Snapshotter>,
        users: Arc<dyn ImageUsers>,
        events: EventBus,
    ) -> Arc<ImageService> {
        Arc::new(ImageService {
            store,
            snapshots,
            users,
            events,
        })
    }

    /// Resolves a name or ID to its image record.
    pub async fn resolve(self: &Arc<Self>, name: &str) -> Result<ImageRecord> {
        let store = self.store.clone();
        let name = name.to_string();
        blocking(move || Ok(store.resolve(&name)?)).await
    }

    /// Resolves without leaving the calling thread (for filters evaluated under a lock-free scan).
    pub(crate) fn resolve_now(&self, name: &str) -> Result<ImageRecord> {
        Ok(self.store.resolve(name)?)
    }

    /// The image store (for `commit`, which makes an image from a container's layer).
    pub(crate) fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }

    /// How many images the store holds.
    pub fn count(&self) -> usize {
        self.store.list().map(|l| l.len()).unwrap_or(0)
    }

    /// Publishes an image event with the image's labels as attributes (as dockerd, so `label`
    /// filters see image events too; a deleted image has none left).
    fn publish(&self, action: &str, id: &str, name: &str) {
        let labels = self
            .store
            .resolve(id)
            .map(|img| image_container_config(&img).labels.unwrap_or_default())
            .unwrap_or_default();
        self.events.publish(
            Event::new(EventType::Image, action, id)
                .attrs(&labels)
                .attr("name", name),
        );
    }

    /// Publishes `untag`/`delete` for what a removal or prune reported.
    fn publish_deletions(&self, items: &Value) {
        for item in items.as_array().into_iter().flatten() {
            if let Some(r) = item.get("Untagged").and_then(Value::as_str) {
                self.publish("untag", r, r);
            }
            if let Some(id) = item.get("Deleted").and_then(Value::as_str) {
                self.publish("delete", id, id);
            }
        }
    }
}

impl ImageService {
    /// `GET /images/json`: without `all`, the build cache's untagged step images are left out (as
    /// dockerd leaves out intermediate images).
    pub async fn list_images(
        self: &Arc<Self>,
        all: bool,
        filters: std::collections::HashMap<String, Vec<String>>,
    ) -> Result<Vec<Value>> {
        check_keys(
            &filters,
            &["before", "dangling", "label", "reference", "since", "until"],
        )?;
        let engine = self.clone();
        blocking(move || {
            let mut out = Vec::new();
            for img in engine.store.list()? {
                let id = img.id.to_string();
                if !all && img.repo_tags.is_empty() && engine.store.is_intermediate(&img.id) {
                    continue;
                }
                if let Some(refs) = filters.get("reference") {
                    let familiar: Vec<String> = img.repo_tags.clone();
                    if !refs.iter().any(|r| familiar.iter().any(|t| reference_matches(r, t))) {
                        continue;
                    }
                }
                if let Some(d) = filters.get("dangling").and_then(|v| v.first()) {
                    let dangling = img.repo_tags.is_empty();
                    if (d == "true" || d == "1") != dangling {
                        continue;
                    }
                }
                if let Some(labels) = filters.get("label") {
                    let l = image_container_config(&img).labels.unwrap_or_default();
                    if !labels.iter().all(|f| match f.split_once('=') {
                        Some((k, v)) => l.get(k).is_some_and(|x| x == v),
                        None => l.contains_key(f.as_str()),
                    }) {
                        continue;
                    }
                }
                let containers = engine.users.containers_using(&id) as i64;
                out.push(json!({
                    "Id": id,
                    "ParentId": "",
                    "RepoTags": img.repo_tags,
                    "RepoDigests": img.repo_digests,
                    "Created": created_unix(&img),
                    "Size": img.size,
                    "SharedSize": -1,
                    "VirtualSize": img.size,
                    "Labels": image_container_config(&img).labels.unwrap_or_default(),
                    "Containers": containers,
                }));
            }
            out.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
            Ok(out)
        })
        .await
    }

    /// `GET /images/{name}/json`.
    pub async fn inspect_image(self: &Arc<Self>, name: &str) -> Result<Value> {
        let engine = self.clone();
        let name = name.to_string();
        blocking(move || {
            let img = engine.store.resolve(&name)?;
            let c = &img.config;
            let lower: Vec<String> = engine
                .snapshots
                .lower_dirs(&img.chain_ids)
                .unwrap_or_default()
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            let mut v = json!({
                "Id": img.id.to_string(),
                "RepoTags": img.repo_tags,
                "RepoDigests": img.repo_digests,
                "Parent": "",
                "Comment": c.get("comment").cloned().unwrap_or(json!("")),
                "Created": img.created,
                "DockerVersion": c.get("docker_version").cloned().unwrap_or(json!("")),
                "Author": c.get("author").cloned().unwrap_or(json!("")),
                "Config": c.get("config").cloned().unwrap_or(Value::Null),
                "Architecture": c.get("architecture").cloned().unwrap_or(json!("amd64")),
                "Os": c.get("os").cloned().unwrap_or(json!("linux")),
                "Size": img.size,
                "VirtualSize": img.size,
                "GraphDriver": { "Name": "overlay2", "Data": { "LowerDir": lower.join(":") } },
                "RootFS": { "Type": "layers", "Layers": img.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>() },
                "Metadata": { "LastTagTime": berth_types::time::ZERO_TIME },
            });
            if let Some(variant) = c.get("variant") {
                v["Variant"] = variant.clone();
            }
            Ok(v)
        })
        .await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(self: &Arc<Self>, name: &str) -> Result<Value> {
        let engine = self.clone();
        let name = name.to_string();
        blocking(move || Ok(serde_json::to_value(engine.store.history(&name)?).unwrap_or(Value::Null))).await
    }

    /// `POST /images/{name}/tag`.
    pub async fn tag_image(self: &Arc<Self>, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        let reference =
            berth_types::Reference::parse(&target).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let engine = self.clone();
        let name = name.to_string();
        let target_name = reference.familiar();
        let id = blocking(move || {
            engine.store.tag(&name, &reference)?;
            Ok(engine.store.resolve(&reference.to_string())?.id.to_string())
        })
        .await?;
        self.publish("tag", &id, &target_name);
        Ok(())
    }

    /// `DELETE /images/{name}`.
    pub async fn remove_image(self: &Arc<Self>, name: &str, force: bool, noprune: bool) -> Result<Value> {
        let engine = self.clone();
        let name = name.to_string();
        let items = blocking(move || {
            let in_use = |id: &str| engine.users.container_using(id);
            let items = engine.store.remove(&name, force, !noprune, &in_use)?;
            Ok(serde_json::to_value(items).unwrap_or(Value::Null))
        })
        .await?;
        self.publish_deletions(&items);
        Ok(items)
    }

    /// Removes the build cache's images `ids` that are untagged and no container uses; answers
    /// those removed and the bytes freed.
    pub(crate) async fn remove_step_images(self: &Arc<Self>, ids: Vec<String>) -> Result<(Vec<String>, u64)> {
        let engine = self.clone();
        blocking(move || {
            let mut removed = Vec::new();
            let mut space = 0;
            for id in ids {
                let Ok(rec) = engine.store.resolve(&id) else { continue };
                if !rec.repo_tags.is_empty() || engine.users.container_using(&id).is_some() {
                    continue;
                }
                match engine.store.remove(&id, false, true, &|_| None) {
                    Ok(_) => {
                        space += rec.size;
                        removed.push(id);
                    }
                    Err(e) => tracing::debug!("removing build cache image {id}: {e}"),
                }
            }
            Ok((removed, space))
        })
        .await
    }

    /// `POST /images/prune`: images no container uses that are dangling (or all of them with
    /// `dangling=false`), narrowed by `label`, `label!` and `until` as dockerd narrows them.
    pub async fn prune_images(self: &Arc<Self>, filters: Filters) -> Result<Value> {
        check_keys(&filters, &["dangling", "label", "label!", "until"])?;
        let dangling_only = match filters.get("dangling").map(Vec::as_slice) {
            None | Some([]) => true,
            Some([v]) if matches!(v.to_ascii_lowercase().as_str(), "true" | "1") => true,
            Some([v]) if matches!(v.to_ascii_lowercase().as_str(), "false" | "0") => false,
            Some(v) => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'dangling={}'",
                    v.join(",")
                )))
            }
        };
        let until = prune_until(&filters)?;
        let engine = self.clone();
        let items = blocking(move || {
            // Images the filters leave out are spared the way images in use are.
            let spared: HashSet<String> = engine
                .store
                .list()?
                .into_iter()
                .filter(|img| {
                    let labels = image_container_config(img).labels.unwrap_or_default();
                    !prune_labels_match(&filters, &labels) || !created_before(&img.created, until)
                })
                .map(|img| img.id.to_string())
                .collect();
            let in_use = |id: &str| {
                engine
                    .users
                    .container_using(id)
                    .or_else(|| spared.contains(id).then(String::new))
            };
            let report = engine.store.prune(dangling_only, &in_use)?;
            // Then what no image uses at all: layers of interrupted pulls and failed loads.
            let swept = engine.store.sweep(&engine.users.snapshots_in_use(), SWEEP_GRACE)?;
            Ok(json!({ "ImagesDeleted": report.deleted, "SpaceReclaimed": report.space_reclaimed + swept }))
        })
        .await?;
        self.publish_deletions(&items["ImagesDeleted"]);
        let reclaimed = items["SpaceReclaimed"].as_u64().unwrap_or(0);
        self.events
            .publish(Event::new(EventType::Image, "prune", "").attr("reclaimed", reclaimed.to_string()));
        Ok(items)
    }

    /// `GET /system/df`'s image part: every image with how many containers use it and the bytes it
    /// shares with other images, and the size of all layers counted once (`LayersSize`).
    pub async fn disk_usage(self: &Arc<Self>) -> Result<(Vec<Value>, u64)> {
        let engine = self.clone();
        blocking(move || {
            let images = engine.store.list()?;
            let mut users: HashMap<&berth_types::ChainId, usize> = HashMap::new();
            for img in &images {
                for c in img.chain_ids.iter().collect::<HashSet<_>>() {
                    *users.entry(c).or_default() += 1;
                }
            }
            let usage = |c: &berth_types::ChainId| engine.snapshots.usage(c).unwrap_or(0);
            let layers_size: u64 = users.keys().map(|c| usage(c)).sum();
            let mut out = Vec::new();
            for img in &images {
                let id = img.id.to_string();
                let shared: u64 = img
                    .chain_ids
                    .iter()
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .filter(|c| users.get(c).copied().unwrap_or(0) > 1)
                    .map(usage)
                    .sum();
                out.push(json!({
                    "Id": id,
                    "ParentId": "",
                    "RepoTags": img.repo_tags,
                    "RepoDigests": img.repo_digests,
                    "Created": created_unix(img),
                    "Size": img.size,
                    "SharedSize": shared,
                    "VirtualSize": img.size,
                    "Labels": image_container_config(img).labels.unwrap_or_default(),
                    "Containers": engine.users.containers_using(&id) as i64,
                }));
            }
            out.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
            Ok((out, layers_size))
        })
        .await
    }

    /// `POST /images/create?fromSrc=-`: imports a root filesystem tarball; returns the image ID.
    pub async fn import_image(
        self: &Arc<Self>,
        reader: impl Read + Send + 'static,
        opts: ImportOptions,
    ) -> Result<String> {
        let engine = self.clone();
        let id = blocking(move || Ok(engine.store.import(reader, opts)?.id.to_string())).await?;
        self.publish("import", &id, &id);
        Ok(id)
    }

    /// `POST /images/load`.
    pub async fn load_images(self: &Arc<Self>, reader: impl Read + Send + 'static) -> Result<LoadOutput> {
        let engine = self.clone();
        blocking(move || {
            let loaded = engine.store.load(reader, &mut |_| {})?;
            for l in &loaded {
                let id = l.id.to_string();
                engine.publish("load", &id, l.tags.first().map(String::as_str).unwrap_or(&id));
            }
            Ok(LoadOutput {
                lines: loaded.iter().flat_map(|l| l.messages()).collect(),
            })
        })
        .await
    }

    /// `GET /images/get`: writes a `docker save` archive of `names` to `out`. Callers that stream the
    /// archive call [`ImageService::resolve_images`] first, so a bad name is a 404 before any byte is sent.
    pub async fn save_images(self: &Arc<Self>, names: Vec<String>, out: impl Write + Send + 'static) -> Result<()> {
        let engine = self.clone();
        blocking(move || {
            engine.store.save(&names, out)?;
            for n in &names {
                if let Ok(img) = engine.store.resolve(n) {
                    engine.publish("save", &img.id.to_string(), n);
                }
            }
            Ok(())
        })
        .await
    }

    /// Checks that every name resolves (for `save`).
    pub async fn resolve_images(self: &Arc<Self>, names: Vec<String>) -> Result<()> {
        let engine = self.clone();
        blocking(move || {
            for n in &names {
                engine.store.resolve(n)?;
            }
            Ok(())
        })
        .await
    }
}

/// Docker's `reference` filter: a familiar name, optionally with a glob-free tag.
fn reference_matches(filter: &str, tag: &str) -> bool {
    if filter == tag {
        return true;
    }
    match tag.rsplit_once(':') {
        Some((repo, _)) => filter == repo,
        None => false,
    }
}
