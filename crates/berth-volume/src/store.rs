//! The volume store: the volumes under one root directory, their records on disk, and who uses
//! (and so keeps mounted) each of them.

use crate::copy::{self, WalkError};
use crate::options::{self, DockerOpts, MountOptions};
use crate::{mountinfo, Volume, VolumeError, LOCAL_DRIVER};
use berth_types::time::chrono::{DateTime, SecondsFormat, Utc};
use berth_types::{write_file, Durability};
use nix::mount::{MntFlags, MsFlags};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

type Result<T> = std::result::Result<T, VolumeError>;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The data directory of a volume, as dockerd names it.
const DATA_DIR: &str = "_data";
/// berth's record of a volume.
const RECORD_FILE: &str = "volume.json";
/// dockerd's record of a volume's driver options.
const OPTS_FILE: &str = "opts.json";

/// `volume.json`: what `docker volume inspect` shows that the directory alone cannot tell.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    name: String,
    driver: String,
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

struct Entry {
    volume: Volume,
    /// Users (container ids) → how many times each mounted the volume.
    users: HashMap<String, u32>,
    /// Whether the volume's options are mounted on `_data` (always false without options).
    mounted: bool,
    /// Held during a copy-up, so two containers starting at once do not both fill the volume.
    fill: Arc<Mutex<()>>,
}

/// The `local` volumes under one root directory (`/var/lib/berth/volumes`).
pub struct VolumeStore {
    root: PathBuf,
    owner: Option<(u32, u32)>,
    volumes: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for VolumeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeStore")
            .field("root", &self.root)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl VolumeStore {
    /// Opens (creating it if needed) the volumes directory `root` and loads its volumes. `owner` is
    /// the `--userns-remap` root uid/gid that new `_data` directories belong to. Temporary
    /// directories a crash left are removed; volumes whose options are still mounted (berthd
    /// restarted) are known as mounted, with no users until [`VolumeStore::restore_users`].
    pub fn open(root: &Path, owner: Option<(u32, u32)>) -> Result<VolumeStore> {
        if !root.exists() {
            // 0701: the remapped root may traverse to its volumes but not list them.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o701)
                .create(root)
                .map_err(|e| VolumeError::io("creating volumes directory", root, e))?;
        }
        let root = std::fs::canonicalize(root).map_err(|e| VolumeError::io("resolving volumes directory", root, e))?;
        let points = mountinfo::mount_points().map_err(mountinfo_error)?;
        let mut volumes = HashMap::new();
        let dir = std::fs::read_dir(&root).map_err(|e| VolumeError::io("reading volumes directory", &root, e))?;
        for entry in dir {
            let entry = entry.map_err(|e| VolumeError::io("reading volumes directory", &root, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Volume names start with a letter or digit: a leading dot is one of ours, temporary.
            if name.starts_with('.') {
                remove_leftover(&path, &points);
                continue;
            }
            // Not `path.is_dir()`: a symlink in the volumes directory is not a volume.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if options::validate_name(&name).is_err() || !is_dir {
                continue;
            }
            match load(&name, &path, owner) {
                Ok(volume) => {
                    let mounted = volume.needs_mount() && points.contains(&volume.mountpoint);
                    volumes.insert(
                        name,
                        Entry {
                            volume,
                            users: HashMap::new(),
                            mounted,
                            fill: Arc::default(),
                        },
                    );
                }
                Err(e) => tracing::warn!(volume = %name, error = %e, "skipping unreadable volume"),
            }
        }
        Ok(VolumeStore {
            root,
            owner,
            volumes: Mutex::new(volumes),
        })
    }

    /// The volumes directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a volume, as `POST /volumes/create`. `None` (or an empty name) makes an anonymous
    /// volume with a 64-hex name; an empty driver means `local`. Creating a name that exists returns
    /// the existing volume unchanged, whatever the options and labels (Docker is idempotent), unless
    /// it belongs to another driver (409).
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let driver = if driver.is_empty() { LOCAL_DRIVER } else { driver };
        let name = match name {
            Some(n) if !n.is_empty() => {
                options::validate_name(n)?;
                n.to_string()
            }
            _ => berth_types::new_id(),
        };
        let mut volumes = self.lock();
        if let Some(e) = volumes.get(&name) {
            if e.volume.driver != driver {
                return Err(VolumeError::Conflict(format!(
                    "driver '{}' already has volume '{name}': volume name must be unique",
                    e.volume.driver
                )));
            }
            return Ok(e.volume.clone());
        }
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::DriverNotFound {
                driver: driver.to_string(),
            });
        }
        options::validate_options(&opts)?;
        let volume = Volume {
            mountpoint: self.root.join(&name).join(DATA_DIR),
            name: name.clone(),
            driver: driver.to_string(),
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            labels,
            options: opts,
            scope: "local".into(),
        };
        self.make(&volume)?;
        volumes.insert(
            name,
            Entry {
                volume: volume.clone(),
                users: HashMap::new(),
                mounted: false,
                fill: Arc::default(),
            },
        );
        Ok(volume)
    }

    /// Builds `<root>/.create-<pid>-<n>` (not named after the volume, so a name near NAME_MAX
    /// still fits) completely, then renames it to `<root>/<name>`.
    fn make(&self, v: &Volume) -> Result<()> {
        let tmp = self.root.join(format!(
            ".create-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let res = (|| {
            let data = tmp.join(DATA_DIR);
            for dir in [&tmp, &data] {
                std::fs::create_dir(dir).map_err(|e| VolumeError::io("creating volume directory", dir, e))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| VolumeError::io("setting mode of", dir, e))?;
                if let Some((uid, gid)) = self.owner {
                    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                        .map_err(|e| VolumeError::io("changing owner of", dir, e))?;
                }
            }
            if !v.options.is_empty() {
                let opts = serde_json::to_vec(&DockerOpts::from_options(&v.options)).map_err(|source| {
                    VolumeError::Encode {
                        name: v.name.clone(),
                        source,
                    }
                })?;
                write_file(&tmp.join(OPTS_FILE), &opts, Durability::Durable)?;
            }
            let record = Record {
                name: v.name.clone(),
                driver: v.driver.clone(),
                created_at: v.created_at.clone(),
                labels: v.labels.clone(),
                options: v.options.clone(),
            };
            let json = serde_json::to_vec_pretty(&record).map_err(|source| VolumeError::Encode {
                name: v.name.clone(),
                source,
            })?;
            // Durable: fsyncs the temporary directory too, so `_data` and `opts.json` are in it.
            write_file(&tmp.join(RECORD_FILE), &json, Durability::Durable)?;
            let dest = self.root.join(&v.name);
            std::fs::rename(&tmp, &dest).map_err(|e| {
                let taken = matches!(e.raw_os_error(),
                    Some(c) if c == nix::libc::EEXIST || c == nix::libc::ENOTEMPTY);
                if taken {
                    VolumeError::Conflict(format!("volume already exists under {}", dest.display()))
                } else {
                    VolumeError::io("renaming volume directory into", &dest, e)
                }
            })?;
            sync_dir(&self.root)
        })();
        if res.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        res
    }

    /// A volume by name.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.lock()
            .get(name)
            .map(|e| e.volume.clone())
            .ok_or_else(|| not_found(name))
    }

    /// All volumes, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = self.lock().values().map(|e| e.volume.clone()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The users (container ids) that have the volume mounted, sorted.
    pub fn users(&self, name: &str) -> Result<Vec<String>> {
        let volumes = self.lock();
        let e = volumes.get(name).ok_or_else(|| not_found(name))?;
        let mut out: Vec<String> = e.users.keys().cloned().collect();
        out.sort();
        Ok(out)
    }

    /// Removes a volume and its data. The engine has already refused (409) if containers use it;
    /// this refuses too while users are counted or something is still mounted under the volume,
    /// because removing the data would then delete what the mount shows (a bind's host directory).
    /// The directory is first renamed away, so the name is free at once and a crash mid-removal
    /// leaves a temporary directory that [`VolumeStore::open`] removes.
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut volumes = self.lock();
        let e = volumes.get_mut(name).ok_or_else(|| not_found(name))?;
        if !e.users.is_empty() {
            let mut users: Vec<&str> = e.users.keys().map(String::as_str).collect();
            users.sort();
            return Err(VolumeError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let data = e.volume.mountpoint.clone();
        if e.volume.needs_mount() && (e.mounted || mountinfo::is_mounted(&data).map_err(mountinfo_error)?) {
            unmount_volume(&e.volume)?;
            e.mounted = false;
        }
        let dir = self.root.join(name);
        let left = mountinfo::mounts_under(&dir).map_err(mountinfo_error)?;
        if let Some(m) = left.first() {
            return Err(VolumeError::Conflict(format!(
                "remove {name}: {} is still mounted",
                m.display()
            )));
        }
        let tmp = self.root.join(format!(
            ".remove-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::rename(&dir, &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                volumes.remove(name);
                return Ok(());
            }
            Err(e) => return Err(VolumeError::io("removing volume directory", &dir, e)),
        }
        volumes.remove(name);
        drop(volumes);
        if let Err(e) = sync_dir(&self.root) {
            tracing::warn!(volume = %name, error = %e, "syncing volumes directory after remove");
        }
        // remove_dir_all unlinks symlinks rather than following them.
        if let Err(e) = std::fs::remove_dir_all(&tmp) {
            tracing::warn!(volume = %name, path = %tmp.display(), error = %e,
                "removing volume data; what is left is removed at the next start");
        }
        Ok(())
    }

    /// Takes the volume for `user_id` (a container id) and returns the host directory to bind into
    /// the container (`_data`). A volume with `type`/`device`/`o` options is mounted there at its
    /// first user; a mount already present (after a restart) is adopted, not repeated.
    pub fn mount(&self, name: &str, user_id: &str) -> Result<PathBuf> {
        let mut volumes = self.lock();
        let e = volumes.get_mut(name).ok_or_else(|| not_found(name))?;
        ensure_mounted(e)?;
        *e.users.entry(user_id.to_string()).or_default() += 1;
        Ok(e.volume.mountpoint.clone())
    }

    /// Releases one [`VolumeStore::mount`] of `user_id`; the last user's release unmounts the
    /// volume's options. Releasing what `user_id` does not hold does nothing, unless the volume has
    /// no user at all and is still mounted (adopted at start), which it then unmounts.
    pub fn unmount(&self, name: &str, user_id: &str) -> Result<()> {
        let mut volumes = self.lock();
        let e = volumes.get_mut(name).ok_or_else(|| not_found(name))?;
        if let Some(n) = e.users.get_mut(user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                e.users.remove(user_id);
            }
        }
        if e.users.is_empty() && e.mounted {
            // Forget the mount even if unmounting fails (as dockerd does): the count must not stay
            // held forever; the next mount re-checks mountinfo.
            e.mounted = false;
            unmount_volume(&e.volume)?;
        }
        Ok(())
    }

    /// After a restart, records that these users (the running containers that have the volume)
    /// hold it, once each, and makes sure the volume's options are mounted (adopting a mount that
    /// survived the restart).
    pub fn restore_users<I, S>(&self, name: &str, user_ids: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut volumes = self.lock();
        let e = volumes.get_mut(name).ok_or_else(|| not_found(name))?;
        let mut any = false;
        for id in user_ids {
            let n = e.users.entry(id.as_ref().to_string()).or_default();
            *n = (*n).max(1);
            any = true;
        }
        if any || !e.users.is_empty() {
            ensure_mounted(e)?;
        }
        Ok(())
    }

    /// The size of the volume's data for `system df` (see [`copy`]'s `usage`: file sizes, hard
    /// links once, symlinks not followed).
    pub fn usage(&self, name: &str) -> Result<u64> {
        let data = self.get(name)?.mountpoint;
        copy::usage(&data).map_err(|e| walk_error("measuring volume", &data, e))
    }

    /// Docker's copy-up: when the volume's `_data` is empty, copies the tree at `src` (a directory of
    /// the container's rootfs, resolved by the engine) into it, keeping modes, owners, times,
    /// symlinks, hard links and xattrs; returns whether it copied. A volume with options must be
    /// mounted first ([`VolumeStore::mount`]) so the copy lands in the mount.
    pub fn fill_from(&self, name: &str, src: &Path) -> Result<bool> {
        let (data, fill) = {
            let volumes = self.lock();
            let e = volumes.get(name).ok_or_else(|| not_found(name))?;
            (e.volume.mountpoint.clone(), Arc::clone(&e.fill))
        };
        let _filling = fill.lock().unwrap_or_else(PoisonError::into_inner);
        copy::copy_up(src, &data).map_err(|e| walk_error("copying into volume from", src, e))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.volumes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn not_found(name: &str) -> VolumeError {
    VolumeError::NotFound { name: name.to_string() }
}

fn walk_error(op: &'static str, top: &Path, e: WalkError) -> VolumeError {
    VolumeError::io(op, top.join(e.path), e.source)
}

fn mountinfo_error(e: std::io::Error) -> VolumeError {
    VolumeError::io("reading", "/proc/self/mountinfo", e)
}

/// Mounts the volume's options on `_data` unless they are (known or found to be) mounted already.
fn ensure_mounted(e: &mut Entry) -> Result<()> {
    if !e.volume.needs_mount() || e.mounted {
        return Ok(());
    }
    if !mountinfo::is_mounted(&e.volume.mountpoint).map_err(mountinfo_error)? {
        mount_volume(&e.volume)?;
    }
    e.mounted = true;
    Ok(())
}

/// Mounts `device` of type `type` with options `o` on `_data`, as `moby/sys/mount.Mount` does: the
/// mount, then the propagation type, then (for a bind) a remount that applies `ro`, `nosuid`…,
/// which a first bind mount ignores.
fn mount_volume(v: &Volume) -> Result<()> {
    let opt = |k: &str| v.options.get(k).map(String::as_str).unwrap_or("");
    let o = MountOptions::parse(opt("o"));
    let (device, fstype) = (opt("device"), opt("type"));
    let target = &v.mountpoint;
    let fail = |e: nix::Error| VolumeError::Mount {
        op: "mount",
        name: v.name.clone(),
        source: e.into(),
    };
    let resolved = resolve_addr(fstype, &o.data).map_err(|source| VolumeError::Mount {
        op: "mount",
        name: v.name.clone(),
        source,
    })?;
    let data = (!resolved.is_empty()).then_some(resolved.as_str());
    let fstype = (!fstype.is_empty()).then_some(fstype);
    if !o.flags.contains(MsFlags::MS_REMOUNT) || data.is_some() {
        nix::mount::mount(Some(device), target, fstype, o.flags, data).map_err(fail)?;
    }
    let after = (|| {
        if !o.propagation.is_empty() {
            nix::mount::mount(None::<&str>, target, None::<&str>, o.propagation, None::<&str>)?;
        }
        let per_mount = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if o.flags.contains(MsFlags::MS_BIND) && !per_mount.is_empty() {
            nix::mount::mount(
                None::<&str>,
                target,
                None::<&str>,
                o.flags | MsFlags::MS_REMOUNT,
                None::<&str>,
            )?;
        }
        Ok(())
    })();
    if let Err(e) = after {
        let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
        return Err(fail(e));
    }
    Ok(())
}

/// The kernel's nfs and cifs clients take an IP address in `addr=`, so dockerd resolves a host name
/// there before mounting (IPv4 first, as Go's `ResolveIPAddr("ip", …)`).
fn resolve_addr(fstype: &str, data: &str) -> std::io::Result<String> {
    if !matches!(fstype, "nfs" | "nfs4" | "cifs") {
        return Ok(data.to_string());
    }
    let Some(addr) = data.split(',').find_map(|o| o.strip_prefix("addr=")) else {
        return Ok(data.to_string());
    };
    if addr.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(data.to_string());
    }
    let resolve_error = |detail: String| format!("error resolving passed in network volume address {addr}: {detail}");
    let ips: Vec<std::net::IpAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(addr, 0))
        .map_err(|e| std::io::Error::new(e.kind(), resolve_error(e.to_string())))?
        .map(|a| a.ip())
        .collect();
    let ip = ips
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(ips.first())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, resolve_error("no address".into())))?;
    Ok(data.replacen(&format!("addr={addr}"), &format!("addr={ip}"), 1))
}

fn unmount_volume(v: &Volume) -> Result<()> {
    match nix::mount::umount2(&v.mountpoint, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Not mounted (any more) is what we wanted.
            if mountinfo::is_mounted(&v.mountpoint).unwrap_or(true) {
                Err(VolumeError::Mount {
                    op: "unmount",
                    name: v.name.clone(),
                    source: e.into(),
                })
            } else {
                Ok(())
            }
        }
    }
}

/// Reads a volume from its directory: berth's `volume.json`, or for a volume dockerd made, its
/// `opts.json` and the directory's change time. A missing `_data` is recreated.
fn load(name: &str, dir: &Path, owner: Option<(u32, u32)>) -> Result<Volume> {
    let data = dir.join(DATA_DIR);
    let record_path = dir.join(RECORD_FILE);
    let record = match std::fs::read(&record_path) {
        Ok(bytes) => serde_json::from_slice::<Record>(&bytes).map_err(|e| {
            VolumeError::io(
                "parsing",
                &record_path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let options = match std::fs::read(dir.join(OPTS_FILE)) {
                Ok(b) => serde_json::from_slice::<DockerOpts>(&b)
                    .map(|o| o.to_options())
                    .unwrap_or_default(),
                Err(_) => BTreeMap::new(),
            };
            let ctime = std::fs::metadata(dir)
                .map(|m| m.ctime())
                .map_err(|e| VolumeError::io("reading", dir, e))?;
            Record {
                name: name.to_string(),
                driver: LOCAL_DRIVER.into(),
                created_at: DateTime::<Utc>::from_timestamp(ctime, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                labels: BTreeMap::new(),
                options,
            }
        }
        Err(e) => return Err(VolumeError::io("reading", &record_path, e)),
    };
    if std::fs::symlink_metadata(&data).is_err() {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&data)
            .map_err(|e| VolumeError::io("creating volume directory", &data, e))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                .map_err(|e| VolumeError::io("changing owner of", &data, e))?;
        }
    }
    Ok(Volume {
        name: name.to_string(),
        driver: record.driver,
        mountpoint: data,
        created_at: record.created_at,
        labels: record.labels,
        options: record.options,
        scope: "local".into(),
    })
}

/// Removes a temporary directory or file a crash left, unless something is mounted in it.
fn remove_leftover(path: &Path, points: &[PathBuf]) {
    if points.iter().any(|p| p.starts_with(path)) {
        tracing::warn!(path = %path.display(), "leaving leftover volume directory: something is mounted in it");
        return;
    }
    let res = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return,
    };
    if let Err(e) = res {
        tracing::warn!(path = %path.display(), error = %e, "removing leftover volume directory");
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| VolumeError::io("syncing", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::{ErrorKind, HasErrorKind};

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("berth-volume-store").tempdir().unwrap()
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn create_persists_and_reopens() {
        let t = tmp();
        let root = t.path().join("volumes");
        let store = VolumeStore::open(&root, None).unwrap();
        let root = store.root().to_path_buf();
        let v = store
            .create(
                Some("data"),
                "local",
                map(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]),
                map(&[("app", "web")]),
            )
            .unwrap();
        assert_eq!(v.mountpoint, root.join("data/_data"));
        assert_eq!(v.scope, "local");
        assert!(
            berth_types::time::parse_rfc3339(&v.created_at).is_some(),
            "{}",
            v.created_at
        );
        let meta = std::fs::metadata(&v.mountpoint).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o755);
        let opts: DockerOpts = serde_json::from_slice(&std::fs::read(root.join("data/opts.json")).unwrap()).unwrap();
        assert_eq!(opts.mount_type, "tmpfs");
        assert_eq!(opts.mount_opts, "size=1m");
        let plain = store
            .create(Some("plain"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(plain.driver, "local");
        assert!(
            !root.join("plain/opts.json").exists(),
            "no options, no opts.json (as dockerd)"
        );
        // Nothing temporary is left next to the volumes.
        let mut names: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["data", "plain"]);
        drop(store);

        // A crash mid-create and mid-remove left temporary directories; a dockerd volume has no
        // volume.json.
        std::fs::create_dir_all(root.join(".create-1-1/_data")).unwrap();
        std::fs::create_dir_all(root.join(".remove-1-1/_data")).unwrap();
        std::fs::create_dir_all(root.join("fromdocker/_data")).unwrap();
        std::fs::write(
            root.join("fromdocker/opts.json"),
            r#"{"MountType":"none","MountOpts":"bind","MountDevice":"/srv","Quota":{"Size":0}}"#,
        )
        .unwrap();
        std::fs::write(root.join("not-a-dir"), b"").unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("symlinked")).unwrap();

        let store = VolumeStore::open(&root, None).unwrap();
        let again = store.get("data").unwrap();
        assert_eq!(again, v);
        let docker = store.get("fromdocker").unwrap();
        assert_eq!(
            docker.options,
            map(&[("type", "none"), ("o", "bind"), ("device", "/srv")])
        );
        assert_eq!(docker.driver, "local");
        assert!(!root.join(".create-1-1").exists());
        assert!(!root.join(".remove-1-1").exists());
        let names: Vec<String> = store.list().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["data", "fromdocker", "plain"]);
    }

    #[test]
    fn anonymous_names_and_idempotent_create() {
        let t = tmp();
        let store = VolumeStore::open(t.path(), None).unwrap();
        let a = store.create(None, "local", BTreeMap::new(), BTreeMap::new()).unwrap();
        let b = store
            .create(Some(""), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        for v in [&a, &b] {
            assert_eq!(v.name.len(), 64);
            assert!(v.name.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_ne!(a.name, b.name);

        let first = store
            .create(Some("same"), "local", BTreeMap::new(), map(&[("a", "1")]))
            .unwrap();
        std::fs::write(first.mountpoint.join("kept"), b"x").unwrap();
        // Same name again, other labels: the existing volume, unchanged, data kept.
        let second = store
            .create(Some("same"), "", BTreeMap::new(), map(&[("b", "2")]))
            .unwrap();
        assert_eq!(first, second);
        assert!(second.mountpoint.join("kept").exists());
        let e = store
            .create(Some("same"), "other", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert_eq!(store.list().len(), 3);
    }

    #[test]
    fn errors_are_docker_worded() {
        let t = tmp();
        let store = VolumeStore::open(t.path(), None).unwrap();
        let e = store.get("nope").unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::NotFound, "get nope: no such volume".into())
        );
        assert_eq!(store.remove("nope").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(store.mount("nope", "c").unwrap_err().kind(), ErrorKind::NotFound);
        let e = store
            .create(Some("v1"), "flocker", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("plugin \"flocker\" not found"), "{e}");
        let e = store
            .create(Some("../x"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e
            .to_string()
            .contains("includes invalid characters for a local volume name"));
        let e = store
            .create(Some("v1"), "local", map(&[("color", "red")]), BTreeMap::new())
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::InvalidArgument, "invalid option: \"color\"".into())
        );
        assert!(store.list().is_empty(), "failed creates leave nothing");
        assert_eq!(std::fs::read_dir(store.root()).unwrap().count(), 0);
    }

    #[test]
    fn remove_deletes_data_without_following_symlinks() {
        let t = tmp();
        let store = VolumeStore::open(&t.path().join("v"), None).unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let v = store
            .create(Some("gone"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        std::fs::create_dir(v.mountpoint.join("d")).unwrap();
        std::os::unix::fs::symlink(&outside, v.mountpoint.join("d/link")).unwrap();
        store.mount("gone", "c1").unwrap();
        let e = store.remove("gone").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("volume is in use - [c1]"), "{e}");
        store.unmount("gone", "c1").unwrap();
        store.remove("gone").unwrap();
        assert!(!store.root().join("gone").exists());
        assert!(outside.join("keep").exists());
        assert_eq!(store.get("gone").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(std::fs::read_dir(store.root()).unwrap().count(), 0);
    }

    #[test]
    fn users_are_counted_per_id() {
        let t = tmp();
        let store = VolumeStore::open(t.path(), None).unwrap();
        let v = store
            .create(Some("vol"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(store.mount("vol", "a").unwrap(), v.mountpoint);
        store.mount("vol", "a").unwrap();
        store.mount("vol", "b").unwrap();
        assert_eq!(store.users("vol").unwrap(), ["a", "b"]);
        store.unmount("vol", "a").unwrap();
        assert_eq!(store.users("vol").unwrap(), ["a", "b"]);
        store.unmount("vol", "a").unwrap();
        store.unmount("vol", "nobody").unwrap();
        assert_eq!(store.users("vol").unwrap(), ["b"]);
        store.restore_users("vol", ["c", "b"]).unwrap();
        assert_eq!(store.users("vol").unwrap(), ["b", "c"]);
    }

    #[test]
    fn fill_from_copies_once_and_usage_measures() {
        let t = tmp();
        let store = VolumeStore::open(&t.path().join("v"), None).unwrap();
        let src = t.path().join("image-dir");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), vec![1u8; 300]).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("s")).unwrap();
        let v = store
            .create(Some("web"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(store.usage("web").unwrap(), 0);
        assert!(store.fill_from("web", &src).unwrap());
        assert!(!store.fill_from("web", &src).unwrap());
        assert_eq!(
            std::fs::read_link(v.mountpoint.join("s")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert_eq!(store.usage("web").unwrap(), 300 + "/etc/shadow".len() as u64);
        assert_eq!(store.fill_from("nope", &src).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn owner_is_applied_to_new_volumes() {
        let t = tmp();
        let store = VolumeStore::open(t.path(), Some((100000, 100000))).unwrap();
        let v = store
            .create(Some("remapped"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        let m = std::fs::metadata(&v.mountpoint).unwrap();
        assert_eq!((m.uid(), m.gid()), (100000, 100000));
    }

    #[test]
    fn network_addresses_are_resolved_for_nfs_and_cifs() {
        assert_eq!(resolve_addr("tmpfs", "addr=localhost").unwrap(), "addr=localhost");
        assert_eq!(resolve_addr("nfs", "rw,addr=10.0.0.1").unwrap(), "rw,addr=10.0.0.1");
        assert_eq!(resolve_addr("nfs", "rw,vers=4").unwrap(), "rw,vers=4");
        let r = resolve_addr("nfs", "addr=localhost,rw").unwrap();
        assert!(r == "addr=127.0.0.1,rw" || r == "addr=::1,rw", "{r}");
        assert!(resolve_addr("cifs", "addr=no-such-host.invalid").is_err());
    }

    #[test]
    fn store_is_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<VolumeStore>();
    }

    #[test]
    fn long_names_fit_in_the_temporary_directory() {
        let t = tmp();
        let store = VolumeStore::open(t.path(), None).unwrap();
        let name = "a".repeat(255);
        store
            .create(Some(&name), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(store.get(&name).is_ok());
    }

    #[test]
    fn to_api_fills_the_model() {
        let t = tmp();
        let store = VolumeStore::open(t.path(), None).unwrap();
        let v = store
            .create(Some("api"), "local", BTreeMap::new(), map(&[("k", "v")]))
            .unwrap();
        let m = v.to_api();
        assert_eq!(m.name, "api");
        assert_eq!(m.driver, "local");
        assert_eq!(m.mountpoint, v.mountpoint.to_string_lossy());
        assert_eq!(m.created_at.as_deref(), Some(v.created_at.as_str()));
        assert_eq!(m.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(m.scope, Some(berth_api::models::VolumeScopeEnum::LOCAL));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["Scope"], "local");
        assert_eq!(json["Options"], serde_json::json!({}));
    }
}
