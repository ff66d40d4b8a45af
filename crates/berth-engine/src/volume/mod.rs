//! The volume service: Docker's volumes (`/volumes`), and what a container's mounts become for one
//! run. It owns `<data-root>/volumes/` through the `berth-volume` store (the `local` driver).
//!
//! - At create, the container service hands the mounts it read ([`spec::plan`]) to
//!   [`Volumes::prepare`]: named volumes that do not exist yet are created, anonymous ones get a
//!   name, and the container is counted as a user of each (a volume in use cannot be removed).
//! - At start, [`Volumes::mounts`] turns them into bind mounts of host paths and tmpfs mounts (a
//!   typed local volume is mounted at its first user), after the container service filled new
//!   volumes with the image's content (Docker's copy-up, [`Volumes::fill`]).
//! - At exit, [`Volumes::unmount`]; at removal, [`Volumes::release`] (with `rm -v` and `--rm`, the
//!   anonymous volumes go too).
//!
//! Users are rebuilt from the container records at start-up, so in-use counts survive restarts.

pub mod spec;

use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus, EventType};
use crate::filters::{check_keys, match_kv_list, prune_labels_match, Filters};
use crate::lock;
use berth_api::models::{Volume, VolumeCreateOptions, VolumeUsageData};
use berth_runtime::{BindMount, TmpfsMount};
use berth_types::HasErrorKind;
use berth_volume::VolumeStore;
use spec::{MountKind, MountPoint};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The mounts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMounts {
    /// Bind mounts (host paths and volumes).
    pub binds: Vec<BindMount>,
    /// tmpfs mounts.
    pub tmpfs: Vec<TmpfsMount>,
}

fn vol_err<E: HasErrorKind + std::fmt::Display>(e: E) -> EngineError {
    EngineError::from_kind(e)
}

/// The volume service.
pub struct Volumes {
    store: VolumeStore,
    /// Containers (records, running or not) that use each volume.
    users: Mutex<HashMap<String, BTreeSet<String>>>,
    events: EventBus,
}

impl Volumes {
    /// Opens the store under `root`; `owner` is the remapped root under `--userns-remap`.
    pub fn open(root: &Path, owner: Option<(u32, u32)>, events: EventBus) -> Result<Arc<Volumes>> {
        let store = VolumeStore::open(root, owner).map_err(vol_err)?;
        Ok(Arc::new(Volumes {
            store,
            users: Mutex::new(HashMap::new()),
            events,
        }))
    }

    /// Counts container `id` as a user of the volumes in `points` (at create and when records load).
    pub fn register(&self, id: &str, points: &[MountPoint]) {
        let mut users = lock(&self.users);
        for p in points
            .iter()
            .filter(|p| p.kind == MountKind::Volume && !p.name.is_empty())
        {
            users.entry(p.name.clone()).or_default().insert(id.to_string());
        }
    }

    fn in_use_by(&self, name: &str) -> Vec<String> {
        lock(&self.users)
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// At create: creates the named volumes that do not exist yet and the anonymous ones, fills in
    /// their names and mount points, and counts the container as their user.
    pub fn prepare(&self, id: &str, mut points: Vec<MountPoint>) -> Result<Vec<MountPoint>> {
        let mut created: Vec<String> = Vec::new();
        let undo = |created: &[String]| {
            for n in created {
                let _ = self.store.remove(n);
            }
        };
        for p in points.iter_mut().filter(|p| p.kind == MountKind::Volume) {
            let existing = if p.name.is_empty() {
                None
            } else {
                self.store.get(&p.name).ok()
            };
            let v = match existing {
                Some(v) => v,
                None => {
                    let labels = if p.anonymous {
                        let mut l = p.labels.clone();
                        l.insert("com.docker.volume.anonymous".into(), String::new());
                        l
                    } else {
                        p.labels.clone()
                    };
                    let name = (!p.name.is_empty()).then_some(p.name.as_str());
                    match self.store.create(name, &p.driver, p.driver_opts.clone(), labels) {
                        Ok(v) => {
                            created.push(v.name.clone());
                            self.events
                                .publish(Event::new(EventType::Volume, "create", &v.name).attr("driver", &v.driver));
                            v
                        }
                        Err(e) => {
                            undo(&created);
                            return Err(vol_err(e));
                        }
                    }
                }
            };
            p.name = v.name.clone();
            p.driver = v.driver.clone();
            p.source = v.mountpoint.display().to_string();
        }
        self.register(id, &points);
        Ok(points)
    }

    /// After a daemon restart: the running containers still have their volumes mounted.
    pub fn restore(&self, running: &[(String, Vec<MountPoint>)]) {
        let mut by_volume: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (id, points) in running {
            for p in points.iter().filter(|p| p.kind == MountKind::Volume) {
                by_volume.entry(p.name.as_str()).or_default().push(id.clone());
            }
        }
        for (name, ids) in by_volume {
            if let Err(e) = self.store.restore_users(name, &ids) {
                tracing::warn!("volume {name}: {e}");
            }
        }
    }

    /// The volumes of `points` whose content must first come from the image (new and empty, and
    /// not `nocopy`): `(volume name, container path)`.
    pub fn needs_copy(&self, points: &[MountPoint]) -> Vec<(String, String)> {
        points
            .iter()
            .filter(|p| p.kind == MountKind::Volume && p.copy && p.subpath.is_empty())
            .filter(|p| self.store.get(&p.name).is_ok_and(|v| dir_is_empty(&v.mountpoint)))
            .map(|p| (p.name.clone(), p.destination.clone()))
            .collect()
    }

    /// Docker's copy-up: fills an empty volume from `src`, the image's directory at the mount's
    /// destination. Returns whether anything was copied.
    pub fn fill(&self, name: &str, src: &Path) -> Result<bool> {
        if !src.is_dir() {
            return Ok(false);
        }
        self.store.fill_from(name, src).map_err(vol_err)
    }

    /// At start: the run's mounts. Volumes are mounted for this container (a typed local volume at
    /// its first user); missing `-v` bind sources are created as Docker does.
    pub fn mounts(&self, id: &str, points: &[MountPoint]) -> Result<RunMounts> {
        let mut out = RunMounts::default();
        let mut mounted: Vec<String> = Vec::new();
        let fail = |mounted: &[String], e: EngineError| {
            for n in mounted {
                let _ = self.store.unmount(n, id);
            }
            e
        };
        for p in points {
            match p.kind {
                MountKind::Bind => {
                    let src = PathBuf::from(&p.source);
                    if !src.exists() {
                        if !p.create_source {
                            return Err(fail(
                                &mounted,
                                EngineError::InvalidArgument(format!(
                                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                    p.source
                                )),
                            ));
                        }
                        if let Err(e) = std::fs::create_dir_all(&src) {
                            return Err(fail(&mounted, EngineError::io("creating bind source", &src, e)));
                        }
                    }
                    out.binds.push(bind(src, p));
                }
                MountKind::Volume => {
                    let path = match self.store.mount(&p.name, id) {
                        Ok(path) => path,
                        Err(e) => return Err(fail(&mounted, vol_err(e))),
                    };
                    mounted.push(p.name.clone());
                    let src = if p.subpath.is_empty() {
                        path
                    } else {
                        match subpath(&path, &p.subpath) {
                            Ok(s) => s,
                            Err(e) => return Err(fail(&mounted, e)),
                        }
                    };
                    out.binds.push(bind(src, p));
                }
                MountKind::Tmpfs => out.tmpfs.push(TmpfsMount {
                    destination: p.destination.clone(),
                    options: p.tmpfs_options.clone(),
                }),
            }
        }
        Ok(out)
    }

    /// The binds and volumes of `points` as host paths, without mounting anything (`cp`, `export`
    /// see a stopped container's volumes through them).
    pub fn paths(&self, points: &[MountPoint]) -> Vec<BindMount> {
        points
            .iter()
            .filter_map(|p| match p.kind {
                MountKind::Bind => Some(bind(PathBuf::from(&p.source), p)),
                MountKind::Volume => {
                    let root = self.store.get(&p.name).ok()?.mountpoint;
                    let src = if p.subpath.is_empty() {
                        root
                    } else {
                        subpath(&root, &p.subpath).ok()?
                    };
                    Some(bind(src, p))
                }
                MountKind::Tmpfs => None,
            })
            .collect()
    }

    /// At exit: the container no longer has its volumes mounted.
    pub fn unmount(&self, id: &str, points: &[MountPoint]) {
        for p in points.iter().filter(|p| p.kind == MountKind::Volume) {
            if let Err(e) = self.store.unmount(&p.name, id) {
                tracing::warn!("unmounting volume {} of {}: {e}", p.name, berth_types::short_id(id));
            }
        }
    }

    /// At removal: the container stops counting as a user; with `remove_anonymous` (`rm -v`,
    /// `--rm`) its anonymous volumes that nobody else uses are removed.
    pub fn release(&self, id: &str, points: &[MountPoint], remove_anonymous: bool) {
        self.unmount(id, points);
        let mut gone = Vec::new();
        {
            let mut users = lock(&self.users);
            for p in points.iter().filter(|p| p.kind == MountKind::Volume) {
                if let Some(set) = users.get_mut(&p.name) {
                    set.remove(id);
                    if set.is_empty() {
                        users.remove(&p.name);
                        if remove_anonymous && p.anonymous {
                            gone.push(p.name.clone());
                        }
                    }
                }
            }
        }
        for name in gone {
            match self.store.remove(&name) {
                Ok(()) => self.events.publish(Event::new(EventType::Volume, "destroy", &name)),
                Err(e) => tracing::warn!("removing anonymous volume {name}: {e}"),
            }
        }
    }

    /// `POST /volumes/create`.
    pub fn create(&self, req: VolumeCreateOptions) -> Result<Volume> {
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "local".into());
        let name = req.name.clone().filter(|n| !n.is_empty());
        let opts: BTreeMap<String, String> = req.driver_opts.clone().unwrap_or_default().into_iter().collect();
        let labels: BTreeMap<String, String> = req.labels.clone().unwrap_or_default().into_iter().collect();
        let existed = name.as_deref().is_some_and(|n| self.store.get(n).is_ok());
        let v = self
            .store
            .create(name.as_deref(), &driver, opts, labels)
            .map_err(vol_err)?;
        if !existed {
            self.events
                .publish(Event::new(EventType::Volume, "create", &v.name).attr("driver", &v.driver));
        }
        Ok(v.to_api())
    }

    /// `GET /volumes/{name}`.
    pub fn inspect(&self, name: &str) -> Result<Volume> {
        Ok(self.store.get(name).map_err(vol_err)?.to_api())
    }

    /// `GET /volumes` with Docker's filters (`dangling`, `driver`, `label`, `name`).
    pub fn list(&self, filters: &Filters) -> Result<Vec<Volume>> {
        check_keys(filters, &["dangling", "driver", "label", "name"])?;
        let dangling = match filters.get("dangling").map(Vec::as_slice) {
            None | Some([]) => None,
            Some([v]) if v == "true" || v == "1" => Some(true),
            Some([v]) if v == "false" || v == "0" => Some(false),
            Some(v) => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'dangling={}'",
                    v.join(",")
                )))
            }
        };
        let any = |key: &str, f: &dyn Fn(&str) -> bool| {
            filters.get(key).is_none_or(|v| v.is_empty() || v.iter().any(|x| f(x)))
        };
        let mut out = Vec::new();
        for v in self.store.list() {
            let labels: HashMap<String, String> = v.labels.iter().map(|(k, x)| (k.clone(), x.clone())).collect();
            let used = !self.in_use_by(&v.name).is_empty();
            if any("driver", &|d| v.driver == d)
                && any("name", &|n| v.name.contains(n))
                && match_kv_list(filters, "label", &labels)
                && dangling.is_none_or(|d| d != used)
            {
                out.push(v.to_api());
            }
        }
        Ok(out)
    }

    /// `DELETE /volumes/{name}`: refused while a container uses it (409), even with `force`, as
    /// Docker; `force` only ignores a missing volume.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let users = self.in_use_by(name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        match self.store.remove(name) {
            Ok(()) => {
                self.events.publish(Event::new(EventType::Volume, "destroy", name));
                Ok(())
            }
            Err(e) if force && e.kind() == berth_types::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(vol_err(e)),
        }
    }

    /// `POST /volumes/prune`: unused volumes — anonymous ones only, unless `all=true` — matching the
    /// `label`/`label!` filters. Returns the names and the bytes freed.
    pub fn prune(&self, filters: &Filters) -> Result<(Vec<String>, u64)> {
        check_keys(filters, &["label", "label!", "all"])?;
        let all = match filters.get("all").map(Vec::as_slice) {
            None | Some([]) => false,
            Some([v]) if v == "true" || v == "1" => true,
            Some([v]) if v == "false" || v == "0" => false,
            Some(v) => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'all={}'",
                    v.join(",")
                )))
            }
        };
        let mut removed = Vec::new();
        let mut space = 0;
        for v in self.store.list() {
            let labels: HashMap<String, String> = v.labels.iter().map(|(k, x)| (k.clone(), x.clone())).collect();
            let anonymous = labels.contains_key("com.docker.volume.anonymous");
            if (!all && !anonymous) || !prune_labels_match(filters, &labels) || !self.in_use_by(&v.name).is_empty() {
                continue;
            }
            let size = self.store.usage(&v.name).unwrap_or(0);
            if self.store.remove(&v.name).is_ok() {
                self.events.publish(Event::new(EventType::Volume, "destroy", &v.name));
                removed.push(v.name.clone());
                space += size;
            }
        }
        self.events
            .publish(Event::new(EventType::Volume, "prune", "").attr("reclaimed", space.to_string()));
        Ok((removed, space))
    }

    /// Volumes with `UsageData` for `GET /system/df`.
    pub fn disk_usage(&self) -> Vec<Volume> {
        self.store
            .list()
            .into_iter()
            .map(|v| {
                let mut api = v.to_api();
                api.usage_data = Some(VolumeUsageData {
                    size: self.store.usage(&v.name).map(|s| s as i64).unwrap_or(-1),
                    ref_count: self.in_use_by(&v.name).len() as i64,
                });
                api
            })
            .collect()
    }
}

fn bind(source: PathBuf, p: &MountPoint) -> BindMount {
    let mut options = Vec::new();
    if !p.propagation.is_empty() {
        options.push(p.propagation.clone());
    }
    BindMount {
        source,
        destination: p.destination.clone(),
        readonly: !p.rw,
        options,
    }
}

/// The volume's `subpath`, which must exist and stay inside the volume (no symlink out).
fn subpath(root: &Path, sub: &str) -> Result<PathBuf> {
    let p = root.join(sub);
    let real = std::fs::canonicalize(&p)
        .map_err(|e| EngineError::InvalidArgument(format!("cannot access path {}: {e}", p.display())))?;
    let real_root = std::fs::canonicalize(root).map_err(|e| EngineError::io("resolving", root, e))?;
    if !real.starts_with(&real_root) {
        return Err(EngineError::InvalidArgument(format!("subpath {sub} leaves the volume")));
    }
    Ok(real)
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}
