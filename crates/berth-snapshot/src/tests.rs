use super::*;

fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    // (path, Some(content)) = file, (path/, None) = dir, (path, None) = empty file.
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, path, io::empty()).unwrap();
        } else if let Some(target) = path.strip_prefix("@") {
            let (name, to) = target.split_once("->").unwrap();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, to).unwrap();
        } else {
            let data = content.unwrap_or("").as_bytes();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, path, data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn setup() -> (tempfile::TempDir, Snapshotter) {
    let dir = tempfile::Builder::new()
        .prefix("berth-snapshot-test")
        .tempdir_in("/var/tmp")
        .unwrap();
    let s = Snapshotter::open(&dir.path().join("snapshots")).unwrap();
    (dir, s)
}

/// Applies layers bottom first, returning their chain IDs.
fn apply_all(s: &Snapshotter, layers: &[Vec<u8>]) -> Vec<ChainId> {
    let diffs: Vec<Digest> = layers.iter().map(|l| Digest::sha256(l)).collect();
    let chains = berth_types::chain_ids(&diffs);
    for (i, l) in layers.iter().enumerate() {
        let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
        s.apply_layer(&chains[i], parent, &l[..]).unwrap();
    }
    chains
}

fn tmp_is_empty(s: &Snapshotter) -> bool {
    std::fs::read_dir(s.root().join("tmp")).unwrap().next().is_none()
}

#[test]
fn layers_stack_and_read_through() {
    let (_d, s) = setup();
    let base = tar_of(&[
        ("etc/", None),
        ("etc/passwd", Some("root:x:0:0::/root:/bin/sh\n")),
        ("etc/group", Some("root:x:0:\n")),
        ("etc/motd", Some("hi")),
        ("opt/", None),
        ("opt/old", Some("old")),
        ("private/", None),
        ("private/f", Some("private")),
        ("@link->private", None),
    ]);
    let top = tar_of(&[
        ("etc/", None),
        ("etc/.wh.motd", None),
        ("etc/group", Some("root:x:0:\napp:x:1000:\n")),
        ("opt/", None),
        ("opt/.wh..wh..opq", None),
        ("opt/new", Some("new")),
    ]);
    let chains = apply_all(&s, &[base.clone(), top.clone()]);
    assert!(s.has(&chains[0]) && s.has(&chains[1]));
    assert_eq!(s.usage(&chains[0]).unwrap(), 26 + 10 + 2 + 3 + 7);
    let lowers = s.lower_dirs(&chains).unwrap();
    assert_eq!(lowers, vec![s.fs_dir(&chains[1]), s.fs_dir(&chains[0])]);
    assert_eq!(s.list().unwrap().len(), 2);

    let read = |cid: Option<&str>, p: &str| {
        s.read_file(cid, &chains, p)
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    };
    assert_eq!(
        read(None, "/etc/passwd").as_deref(),
        Some("root:x:0:0::/root:/bin/sh\n")
    );
    assert_eq!(read(None, "/etc/group").as_deref(), Some("root:x:0:\napp:x:1000:\n"));
    assert_eq!(read(None, "/etc/motd"), None, "whiteout hides the lower file");
    assert_eq!(read(None, "/opt/old"), None, "opaque dir hides lower contents");
    assert_eq!(read(None, "/opt/new").as_deref(), Some("new"));
    assert_eq!(
        read(None, "/link/f").as_deref(),
        Some("private"),
        "symlinks resolve inside the stack"
    );
    assert_eq!(read(None, "/nope"), None);
    assert_eq!(read(None, "/etc"), None);

    // The container's upper layer comes first.
    let rw = s.create_rw("c1").unwrap();
    std::fs::create_dir_all(rw.upper.join("etc")).unwrap();
    std::fs::write(rw.upper.join("etc/passwd"), "changed").unwrap();
    assert_eq!(read(Some("c1"), "etc/passwd").as_deref(), Some("changed"));
    assert_eq!(
        read(Some("c2"), "etc/passwd").as_deref(),
        Some("root:x:0:0::/root:/bin/sh\n")
    );

    let m = s.rootfs_mount("c1", &chains).unwrap();
    assert_eq!(m.fstype, "overlay");
    assert_eq!(m.cwd, None);
    assert_eq!(
        m.options[0],
        format!(
            "lowerdir={}:{}",
            s.fs_dir(&chains[1]).display(),
            s.fs_dir(&chains[0]).display()
        )
    );
    assert_eq!(m.options[1], format!("upperdir={}", rw.upper.display()));
    assert_eq!(m.options[2], format!("workdir={}", rw.work.display()));
    assert!(matches!(
        s.rootfs_mount("nope", &chains),
        Err(SnapshotError::RwNotFound(_))
    ));
    let empty = s.rootfs_mount("c1", &[]).unwrap();
    assert!(empty.options[0].ends_with("/empty"), "{:?}", empty.options);

    rustix::fs::mknodat(
        rustix::fs::CWD,
        rw.upper.join("etc/motd2"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    let mut diff = Vec::new();
    s.write_diff("c1", &mut diff).unwrap();
    let names: Vec<String> = tar::Archive::new(&diff[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, vec!["etc/", "etc/.wh.motd2", "etc/passwd"]);

    s.remove_rw("c1").unwrap();
    assert!(!rw.dir.exists());
    s.remove_rw("c1").unwrap();
    assert!(matches!(s.create_rw("../x"), Err(SnapshotError::InvalidId(_))));

    s.remove(&chains[1]).unwrap();
    assert!(!s.has(&chains[1]));
    assert!(tmp_is_empty(&s));
}

#[test]
fn mismatched_or_hostile_layers_leave_nothing() {
    let (_d, s) = setup();
    let good = tar_of(&[("a", Some("a"))]);
    let wrong_chain = Digest::sha256(b"something else");
    let err = s.apply_layer(&wrong_chain, None, &good[..]).unwrap_err();
    assert!(matches!(err, SnapshotError::LayerMismatch { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(!s.root().join(wrong_chain.hex()).exists());

    // A parent that does not exist.
    let err = s
        .apply_layer(&Digest::sha256(&good), Some(&wrong_chain), &good[..])
        .unwrap_err();
    assert!(matches!(err, SnapshotError::NotFound(_)), "{err}");

    // A truncated layer: error names the entry, nothing left behind.
    let mut bad = tar_of(&[("big", Some(&"x".repeat(5000)))]);
    bad.truncate(2048);
    let chain = Digest::sha256(&bad);
    let err = s.apply_layer(&chain, None, &bad[..]).unwrap_err();
    assert!(err.to_string().contains("big"), "{err}");
    assert!(!s.has(&chain) && !s.root().join(chain.hex()).exists());
    assert!(tmp_is_empty(&s));
}

#[test]
fn gzip_layers_and_concurrent_apply() {
    let (_d, s) = setup();
    let layer = tar_of(&[("data", Some(&"y".repeat(100_000)))]);
    let chain = Digest::sha256(&layer);
    let mut gz = flate2_gz(&layer);
    std::thread::scope(|sc| {
        let a = sc.spawn(|| s.apply_layer(&chain, None, &layer[..]));
        let b = sc.spawn(|| s.apply_layer(&chain, None, &layer[..]));
        assert_eq!(a.join().unwrap().unwrap(), 100_000);
        assert_eq!(b.join().unwrap().unwrap(), 100_000);
    });
    assert!(tmp_is_empty(&s));
    s.remove(&chain).unwrap();
    assert_eq!(s.apply_layer(&chain, None, gz.as_slice()).unwrap(), 100_000);
    gz.clear();
}

fn flate2_gz(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn long_stacks_fall_back_to_relative_paths() {
    let (_d, s) = setup();
    s.create_rw("c").unwrap();
    let mut chains = Vec::new();
    for i in 0..50u32 {
        let c = Digest::sha256(&i.to_le_bytes());
        std::fs::create_dir_all(s.fs_dir(&c)).unwrap();
        chains.push(c);
    }
    let m = s.rootfs_mount("c", &chains).unwrap();
    assert_eq!(m.cwd.as_deref(), Some(s.root().to_str().unwrap()));
    assert!(m.data().len() <= MOUNT_DATA_MAX);
    assert!(
        m.options[0].starts_with(&format!("lowerdir=l/{}:", &chains[49].hex()[..16])),
        "{}",
        m.options[0]
    );
    assert_eq!(
        std::fs::read_link(s.root().join("l").join(&chains[49].hex()[..16])).unwrap(),
        PathBuf::from(format!("../{}/fs", chains[49].hex()))
    );
    assert_eq!(m.options[1], "upperdir=rw/c/upper");
    s.remove(&chains[49]).unwrap();
    assert!(!s.root().join("l").join(&chains[49].hex()[..16]).exists());
    chains.pop();

    for i in 50..300u32 {
        let c = Digest::sha256(&i.to_le_bytes());
        std::fs::create_dir_all(s.fs_dir(&c)).unwrap();
        chains.push(c);
    }
    assert!(matches!(
        s.rootfs_mount("c", &chains),
        Err(SnapshotError::TooManyLayers(299))
    ));
}

/// Unmounts on drop so a failing assertion does not leave a mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Mounts `m` at `target` the way the runtime will: chdir to `cwd` (if any), then mount(2) with the
/// joined options. `None` (with the reason printed) when this machine cannot mount overlays.
fn mount(m: &MountSpec, target: &Path) -> Option<Mounted> {
    let mut cmd = std::process::Command::new("mount");
    cmd.args(["-t", &m.fstype, &m.source, "-o", &m.data()]).arg(target);
    if let Some(cwd) = &m.cwd {
        cmd.current_dir(cwd);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Some(Mounted(target.to_path_buf())),
        Ok(o) => {
            eprintln!(
                "SKIP: cannot mount overlay here: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("SKIP: cannot run mount: {e}");
            None
        }
    }
}

#[test]
fn mount_specs_work_with_overlayfs() {
    let (d, s) = setup();
    let base = tar_of(&[
        ("etc/", None),
        ("etc/motd", Some("hi")),
        ("opt/", None),
        ("opt/old", Some("old")),
    ]);
    let top = tar_of(&[
        ("etc/", None),
        ("etc/.wh.motd", None),
        ("opt/", None),
        ("opt/.wh..wh..opq", None),
        ("opt/new", Some("n")),
    ]);
    let chains = apply_all(&s, &[base, top]);
    let rw = s.create_rw("c").unwrap();
    let target = d.path().join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    let Some(m) = mount(&s.rootfs_mount("c", &chains).unwrap(), &target) else {
        return;
    };
    assert!(!target.join("etc/motd").exists(), "whiteout hides the lower file");
    assert!(!target.join("opt/old").exists(), "opaque dir hides lower contents");
    assert_eq!(std::fs::read(target.join("opt/new")).unwrap(), b"n");
    std::fs::write(target.join("etc/written"), "w").unwrap();
    assert!(
        rw.upper.join("etc/written").is_file(),
        "writes land in the container's upper dir"
    );
    drop(m);

    // A stack long enough to need relative paths still mounts, from `cwd`.
    let mut layers = Vec::new();
    for i in 0..120 {
        layers.push(tar_of(&[(&format!("f{i}"), Some("x"))]));
    }
    let chains = apply_all(&s, &layers);
    s.create_rw("long").unwrap();
    let spec = s.rootfs_mount("long", &chains).unwrap();
    assert!(spec.cwd.is_some(), "{} bytes of options", spec.data().len());
    let Some(_m) = mount(&spec, &target) else { return };
    assert!(target.join("f0").is_file() && target.join("f119").is_file());
}
