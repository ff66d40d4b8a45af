#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Volumes with mount options, against the real kernel: needs root (CAP_SYS_ADMIN). Each test has
//! its own root under /tmp and a guard that detaches every mount under it and removes it.

use berth_types::{ErrorKind, HasErrorKind};
use berth_volume::VolumeStore;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

struct TestRoot(PathBuf);

impl TestRoot {
    fn new(test: &str) -> Option<TestRoot> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP {test}: needs root to mount volumes");
            return None;
        }
        let p = PathBuf::from(format!("/tmp/berth-volume-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Some(TestRoot(p.canonicalize().unwrap()))
    }

    fn volumes(&self) -> PathBuf {
        self.0.join("volumes")
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let mut points: Vec<PathBuf> = mount_points().into_iter().filter(|p| p.starts_with(&self.0)).collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in points {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

fn mounts_at(p: &Path) -> usize {
    mount_points().iter().filter(|m| *m == p).count()
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn tmpfs(size: &str) -> BTreeMap<String, String> {
    map(&[
        ("type", "tmpfs"),
        ("device", "tmpfs"),
        ("o", &format!("size={size},uid=1000")),
    ])
}

#[test]
fn tmpfs_volume_is_mounted_at_first_user_and_unmounted_at_last() {
    let Some(t) = TestRoot::new("tmpfs") else { return };
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    let v = store
        .create(Some("cache"), "local", tmpfs("1m"), BTreeMap::new())
        .unwrap();
    assert_eq!(mounts_at(&v.mountpoint), 0, "create mounts nothing");

    let p = store.mount("cache", "c1").unwrap();
    assert_eq!(p, v.mountpoint);
    assert_eq!(mounts_at(&p), 1);
    assert_eq!(std::fs::metadata(&p).unwrap().uid(), 1000, "o=uid= reached tmpfs");
    store.mount("cache", "c2").unwrap();
    store.mount("cache", "c1").unwrap();
    assert_eq!(mounts_at(&p), 1, "later users share the mount");
    std::fs::write(p.join("f"), b"in tmpfs").unwrap();

    store.unmount("cache", "c1").unwrap();
    store.unmount("cache", "c2").unwrap();
    assert_eq!(mounts_at(&p), 1, "c1 still holds it once");
    store.unmount("cache", "c1").unwrap();
    assert_eq!(mounts_at(&p), 0, "last user gone");
    assert!(!p.join("f").exists(), "tmpfs content went with the mount");
}

#[test]
fn tmpfs_size_limit_is_enforced() {
    let Some(t) = TestRoot::new("size") else { return };
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    store
        .create(Some("small"), "local", tmpfs("1m"), BTreeMap::new())
        .unwrap();
    let p = store.mount("small", "c1").unwrap();
    std::fs::write(p.join("fits"), vec![7u8; 512 * 1024]).unwrap();
    let mut f = std::fs::File::create(p.join("too-big")).unwrap();
    let err = f
        .write_all(&vec![7u8; 2 * 1024 * 1024])
        .and_then(|()| f.sync_all())
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC), "{err}");
    drop(f);
    assert!(store.usage("small").unwrap() >= 512 * 1024);
    store.unmount("small", "c1").unwrap();
}

#[test]
fn bind_volume_shows_the_host_directory_and_remove_keeps_it() {
    let Some(t) = TestRoot::new("bind") else { return };
    let host = t.0.join("host-dir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("from-host"), b"hi").unwrap();
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    let opts = map(&[("type", "none"), ("device", host.to_str().unwrap()), ("o", "bind")]);
    let v = store.create(Some("shared"), "local", opts, BTreeMap::new()).unwrap();
    assert!(!v.mountpoint.join("from-host").exists());

    let p = store.mount("shared", "c1").unwrap();
    assert_eq!(std::fs::read(p.join("from-host")).unwrap(), b"hi");
    std::fs::write(p.join("from-container"), b"yo").unwrap();
    assert!(host.join("from-container").exists());
    store.unmount("shared", "c1").unwrap();
    assert_eq!(mounts_at(&p), 0);
    assert!(!p.join("from-host").exists());

    // Mounted again and forgotten by a restart, then removed: unmounted first, host data kept.
    store.mount("shared", "c1").unwrap();
    drop(store);
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    store.remove("shared").unwrap();
    assert_eq!(mounts_at(&p), 0);
    assert!(!t.volumes().join("shared").exists());
    assert_eq!(std::fs::read(host.join("from-host")).unwrap(), b"hi");
    assert!(host.join("from-container").exists());

    // A bind of a missing host directory is refused at create.
    let missing = map(&[("type", "none"), ("device", "/nonexistent-berth-dir"), ("o", "bind")]);
    let e = store
        .create(Some("bad"), "local", missing, BTreeMap::new())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

#[test]
fn read_only_bind_is_read_only() {
    let Some(t) = TestRoot::new("bind-ro") else { return };
    let host = t.0.join("host-dir");
    std::fs::create_dir(&host).unwrap();
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    let opts = map(&[("type", "none"), ("device", host.to_str().unwrap()), ("o", "bind,ro")]);
    store.create(Some("ro"), "local", opts, BTreeMap::new()).unwrap();
    let p = store.mount("ro", "c1").unwrap();
    let err = std::fs::write(p.join("x"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{err}");
    store.unmount("ro", "c1").unwrap();
    assert_eq!(mounts_at(&p), 0);
}

#[test]
fn restore_users_after_restart_does_not_mount_twice() {
    let Some(t) = TestRoot::new("restore") else { return };
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    store
        .create(Some("kept"), "local", tmpfs("4m"), BTreeMap::new())
        .unwrap();
    let p = store.mount("kept", "c1").unwrap();
    store.mount("kept", "c2").unwrap();
    std::fs::write(p.join("state"), b"survives").unwrap();
    // berthd stops; the containers (and so the mount) keep running.
    drop(store);

    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    store.restore_users("kept", ["c1", "c2"]).unwrap();
    assert_eq!(mounts_at(&p), 1, "the surviving mount is adopted");
    assert_eq!(store.mount("kept", "c3").unwrap(), p);
    assert_eq!(mounts_at(&p), 1);
    assert_eq!(std::fs::read(p.join("state")).unwrap(), b"survives");
    assert_eq!(store.users("kept").unwrap(), ["c1", "c2", "c3"]);
    let e = store.remove("kept").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    for c in ["c3", "c1", "c2"] {
        store.unmount("kept", c).unwrap();
    }
    assert_eq!(mounts_at(&p), 0);

    // A restart where the mount did not survive: restore_users mounts it again.
    drop(store);
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    store.restore_users("kept", ["c1"]).unwrap();
    assert_eq!(mounts_at(&p), 1);
    store.unmount("kept", "c1").unwrap();
    assert_eq!(mounts_at(&p), 0);
}

#[test]
fn remove_unmounts_and_deletes() {
    let Some(t) = TestRoot::new("remove") else { return };
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    let v = store
        .create(Some("tmp"), "local", tmpfs("1m"), BTreeMap::new())
        .unwrap();
    store.mount("tmp", "c1").unwrap();
    assert_eq!(store.remove("tmp").unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(mounts_at(&v.mountpoint), 1, "a refused remove leaves the mount");
    store.unmount("tmp", "c1").unwrap();
    store.remove("tmp").unwrap();
    assert!(!t.volumes().join("tmp").exists());
    assert_eq!(store.get("tmp").unwrap_err().kind(), ErrorKind::NotFound);
    assert!(store.list().is_empty());

    // Something else mounted inside the volume: refused, nothing deleted.
    let plain = store
        .create(Some("plain"), "local", BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let inner = plain.mountpoint.join("inner");
    std::fs::create_dir(&inner).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &inner,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let e = store.remove("plain").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("still mounted"), "{e}");
    nix::mount::umount2(&inner, nix::mount::MntFlags::MNT_DETACH).unwrap();
    store.remove("plain").unwrap();
    assert!(store.list().is_empty());
}

#[test]
fn copy_up_lands_in_the_mounted_volume() {
    let Some(t) = TestRoot::new("fill") else { return };
    let src = t.0.join("rootfs/var/lib/app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("seed"), b"from image").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("outside")).unwrap();
    std::os::unix::fs::chown(src.join("seed"), Some(999), Some(999)).unwrap();
    let store = VolumeStore::open(&t.volumes(), None).unwrap();
    store
        .create(Some("seeded"), "local", tmpfs("1m"), BTreeMap::new())
        .unwrap();
    let p = store.mount("seeded", "c1").unwrap();
    assert!(store.fill_from("seeded", &src).unwrap());
    assert_eq!(std::fs::read(p.join("seed")).unwrap(), b"from image");
    assert_eq!(std::fs::metadata(p.join("seed")).unwrap().uid(), 999);
    assert!(std::fs::symlink_metadata(p.join("outside"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!store.fill_from("seeded", &src).unwrap(), "only into an empty volume");
    store.unmount("seeded", "c1").unwrap();
    // The copy was in the tmpfs: the directory under it stayed empty.
    assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0);
}
