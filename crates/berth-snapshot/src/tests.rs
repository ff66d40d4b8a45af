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
    assert_eq!(m.cwd.as_deref(), Some(s.root()));
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
fn mount(m: &RootfsMount, target: &Path) -> Option<Mounted> {
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

/// A layer tar whose members carry owners: (path, uid, gid, mode); a path ending in `/` is a directory.
fn owned_tar(entries: &[(&str, u64, u64, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, uid, gid, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mode(*mode);
        h.set_uid(*uid);
        h.set_gid(*gid);
        h.set_size(0);
        b.append_data(&mut h, path, io::empty()).unwrap();
    }
    b.into_inner().unwrap()
}

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid(), md.mode() & 0o7777)
}

/// Runs `sh -c script` as host uid/gid `id` (no capabilities): what the container's root is allowed
/// on files the user namespace does not give it capabilities over is at least this.
fn run_as(id: u32, cwd: &Path, script: &str) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "sh",
            "-c",
            script,
        ])
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn remapped_layers_mount_with_shifted_owners() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("berth-snapshot-userns")
        .tempdir_in("/var/tmp")
        .unwrap();
    // The mapped root walks to the mount below like a container process would see it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let map = IdentityMapping::single(100_000, 100_000, 65_536);
    let s = Snapshotter::open_with_idmap(&dir.path().join("snapshots"), Some(map.clone())).unwrap();
    assert_eq!(s.id_map(), Some(&map));
    let base = owned_tar(&[
        ("etc/", 0, 0, 0o755),
        ("etc/motd", 0, 0, 0o644),
        ("root/", 0, 0, 0o700),
        ("tmp/", 0, 0, 0o1777),
        ("home/u/", 1000, 1000, 0o750),
        ("home/u/notes", 1000, 1000, 0o600),
        ("var/www/", 33, 33, 0o755),
    ]);
    let top = owned_tar(&[
        ("etc/", 0, 0, 0o755),
        ("etc/.wh.motd", 0, 0, 0o644),
        ("etc/shadow", 0, 42, 0o640),
    ]);
    let chains = apply_all(&s, &[base, top]);
    assert_eq!(owner_mode(&s.fs_dir(&chains[0])).0, 100_000, "layer root");
    assert_eq!(
        owner_mode(&s.fs_dir(&chains[1]).join("etc/motd")).0,
        100_000,
        "whiteout"
    );
    let rw = s.create_rw("c").unwrap();
    for p in [&rw.upper, &rw.work] {
        assert_eq!(owner_mode(p).0, 100_000, "{}", p.display());
        assert_eq!(owner_mode(p).1, 100_000, "{}", p.display());
    }
    let target = dir.path().join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    let Some(m) = mount(&s.rootfs_mount("c", &chains).unwrap(), &target) else {
        return;
    };
    let cases: &[(&str, (u32, u32, u32))] = &[
        ("", (100_000, 100_000, 0o755)),
        ("etc", (100_000, 100_000, 0o755)),
        ("etc/shadow", (100_000, 100_042, 0o640)),
        ("root", (100_000, 100_000, 0o700)),
        ("tmp", (100_000, 100_000, 0o1777)),
        ("home", (100_000, 100_000, 0o755)),
        ("home/u", (101_000, 101_000, 0o750)),
        ("home/u/notes", (101_000, 101_000, 0o600)),
        ("var/www", (100_033, 100_033, 0o755)),
    ];
    for (p, want) in cases {
        assert_eq!(owner_mode(&target.join(p)), *want, "/{p}");
    }
    assert!(!target.join("etc/motd").exists(), "whiteout hides the lower file");

    // The mapped root, without any capability, can write at `/`, in `/root` and `/tmp`; the copy-up
    // keeps the shifted owners.
    let out = run_as(
        100_000,
        &target,
        "echo a > ./at-root && echo b > root/in-root && echo c > tmp/in-tmp && echo d >> etc/shadow",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(owner_mode(&rw.upper.join("root")), (100_000, 100_000, 0o700));
    assert_eq!(owner_mode(&rw.upper.join("root/in-root")).0, 100_000);
    // Another container user cannot.
    let out = run_as(101_000, &target, "echo x > ./denied");
    assert!(!out.status.success(), "uid 1000 wrote to /");
    drop(m);

    // `write_diff` gives back a normal layer: container ids.
    let mut diff = Vec::new();
    s.write_diff("c", &mut diff).unwrap();
    let mut owners = std::collections::HashMap::new();
    for e in tar::Archive::new(&diff[..]).entries().unwrap() {
        let e = e.unwrap();
        owners.insert(
            e.path().unwrap().display().to_string(),
            (e.header().uid().unwrap(), e.header().gid().unwrap()),
        );
    }
    for (p, want) in [("at-root", (0, 0)), ("root/in-root", (0, 0)), ("etc/shadow", (0, 42))] {
        assert_eq!(owners.get(p), Some(&want), "{p} in {owners:?}");
    }

    // A root holds layers of one mapping only.
    let root = dir.path().join("snapshots");
    let other = IdentityMapping::single(200_000, 200_000, 65_536);
    for m in [Some(other), None] {
        let e = Snapshotter::open_with_idmap(&root, m).unwrap_err();
        assert!(matches!(e, SnapshotError::IdMapMismatch { .. }), "{e}");
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }
    Snapshotter::open_with_idmap(&root, Some(map)).unwrap();
}

#[test]
fn plain_root_refuses_a_mapping_and_bad_mappings_are_refused() {
    let (d, s) = setup();
    apply_all(&s, &[tar_of(&[("f", Some("x"))])]);
    let map = IdentityMapping::single(100_000, 100_000, 65_536);
    let e = Snapshotter::open_with_idmap(s.root(), Some(map)).unwrap_err();
    assert!(matches!(e, SnapshotError::IdMapMismatch { .. }), "{e}");
    // An empty mapping is no mapping.
    Snapshotter::open_with_idmap(s.root(), Some(IdentityMapping::default())).unwrap();
    let no_root = IdentityMapping {
        uids: vec![berth_types::IdMap {
            container_id: 1,
            host_id: 100_000,
            size: 10,
        }],
        gids: vec![],
    };
    let e = Snapshotter::open_with_idmap(&d.path().join("other"), Some(no_root)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

#[test]
fn rw_layers_are_listed_for_reconciliation() {
    let (_d, s) = setup();
    assert!(s.rw_layer_ids().unwrap().is_empty());
    s.create_rw("c1").unwrap();
    s.create_rw("c2").unwrap();
    let mut ids = s.rw_layer_ids().unwrap();
    ids.sort();
    assert_eq!(ids, ["c1", "c2"]);
    s.remove_rw("c1").unwrap();
    assert_eq!(s.rw_layer_ids().unwrap(), ["c2"]);
}

#[test]
fn prepared_layer_needs_no_parent_and_is_invisible_until_committed() {
    let (dir, s) = setup();
    let base = tar_of(&[("a", Some("1"))]);
    let top = tar_of(&[("b", Some("2"))]);
    let base_chain = Digest::sha256(&base);
    let top_diff = Digest::sha256(&top);
    let top_chain = Digest::sha256(format!("{base_chain} {top_diff}").as_bytes());
    // The top layer unpacks before its parent exists.
    let p = s.prepare_layer(&top_chain, Some(&base_chain), &top[..]).unwrap();
    assert!(!s.has(&top_chain));
    assert_eq!(p.chain(), &top_chain);
    p.commit().unwrap();
    assert!(s.has(&top_chain));
    // A dropped preparation leaves nothing behind.
    let p = s.prepare_layer(&base_chain, None, &base[..]).unwrap();
    drop(p);
    assert!(!s.has(&base_chain));
    let tmp = std::fs::read_dir(dir.path().join("snapshots/tmp")).unwrap().count();
    assert_eq!(tmp, 0);
    // A wrong chain is refused before anything is visible.
    let wrong = Digest::sha256(b"other");
    assert!(matches!(
        s.prepare_layer(&wrong, None, &base[..]),
        Err(SnapshotError::LayerMismatch { .. })
    ));
    assert!(!s.has(&wrong));
}
