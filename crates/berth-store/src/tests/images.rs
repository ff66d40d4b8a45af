//! Import, resolve, tag, rmi, prune, leases and `--userns-remap`.

use super::*;

#[test]
fn import_with_changes_and_tag() {
    let e = env();
    let rootfs = berth_testkit::busybox_rootfs_tar().unwrap();
    let opts = ImportOptions {
        tag: Some(Reference::parse("imported:v1").unwrap()),
        changes: vec![
            r#"CMD ["sh"]"#.into(),
            "ENV A=B".into(),
            "WORKDIR /app".into(),
            "EXPOSE 80".into(),
        ],
        message: String::new(),
        ..Default::default()
    };
    let rec = e.store.import(&gzip(&rootfs)[..], opts).unwrap();
    assert_eq!(rec.repo_tags, vec!["imported:v1"]);
    assert_eq!(rec.config["config"]["Cmd"], json!(["sh"]));
    assert_eq!(rec.config["config"]["Env"], json!(["A=B"]));
    assert_eq!(rec.config["config"]["WorkingDir"], json!("/app"));
    assert_eq!(rec.config["config"]["ExposedPorts"], json!({"80/tcp": {}}));
    assert_eq!(rec.diff_ids, vec![sha(&rootfs)]);
    // The stored config is exactly what hashes to the ID.
    assert_eq!(sha(&e.store.blobs().read(&rec.id).unwrap()), rec.id);
    let snap = e.store.snapshotter().fs_dir(&rec.chain_ids[0]);
    assert!(snap.join("bin/busybox").is_file());
    assert!(rec.size >= std::fs::metadata(snap.join("bin/busybox")).unwrap().len());
    let h = e.store.history("imported:v1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].comment, "Imported from -");
    assert_eq!(h[0].id, rec.id.to_string());
    assert_eq!(h[0].size, rec.size);

    let err = e
        .store
        .import(
            &rootfs[..],
            ImportOptions {
                changes: vec!["RUN x".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "RUN is not a valid change command");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.store.list().unwrap().len(), 1);
}

#[test]
fn resolve_table() {
    let e = env();
    let (base, _) = two_layers();
    let config = config_for(&[&base], json!([]));
    load(
        &e.store,
        &legacy_save(&[&base], &config, &["bb:latest", "localhost:5000/app:v1"]),
    )
    .unwrap();
    let id = sha(&config);
    for name in [
        "bb",
        "bb:latest",
        "docker.io/library/bb",
        "docker.io/library/bb:latest",
        "localhost:5000/app:v1",
        &id.to_string(),
        id.hex(),
        &id.hex()[..12],
        &format!("sha256:{}", &id.hex()[..5]),
    ] {
        assert_eq!(e.store.resolve(name).unwrap().id, id, "{name}");
    }
    for name in ["nope", "bb:other", "localhost:5000/app", "0000000", ""] {
        let err = e.store.resolve(name).unwrap_err();
        assert_eq!(err.to_string(), format!("No such image: {name}"));
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    // A digest reference, once recorded, resolves too.
    let digest_ref = Reference::parse(&format!("bb@{}", sha(b"manifest"))).unwrap();
    e.store.set_reference(&digest_ref, &id).unwrap();
    assert_eq!(
        e.store.resolve(&digest_ref.familiar()).unwrap().repo_digests,
        vec![digest_ref.familiar()]
    );
    assert!(e.store.tag("bb", &digest_ref).is_err());
}

#[test]
fn rmi_semantics() {
    let e = env();
    let (base, top) = two_layers();
    let config = config_for(&[&base, &top], json!([]));
    load(&e.store, &legacy_save(&[&base, &top], &config, &["bb:latest"])).unwrap();
    let id = sha(&config);
    let short = &id.hex()[..12];
    e.store.tag("bb", &Reference::parse("other:1").unwrap()).unwrap();

    // By ID with tags in two repositories: refused without force.
    let err = e.store.remove(short, false, true, &no_containers).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);

    // By name: just an untag while another reference remains.
    assert_eq!(
        e.store.remove("other:1", false, true, &no_containers).unwrap(),
        vec![DeleteItem::Untagged("other:1".into())]
    );

    // The last reference of an image a container uses: refused without force.
    let used = |i: &str| (i == id.to_string()).then(|| "c0ffee0123456789abcdef".to_string());
    let err = e.store.remove("bb", false, true, &used).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to remove repository reference \"bb\" (must force) - container c0ffee012345 is using its referenced image {short}")
    );
    let err = e.store.remove(short, false, true, &used).unwrap_err();
    assert!(
        err.to_string()
            .contains("image is being used by stopped container c0ffee012345"),
        "{err}"
    );

    // Forced while in use: the record goes, the snapshots stay for the container.
    let items = e.store.remove("bb", true, true, &used).unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("bb:latest".into()),
            DeleteItem::Deleted(id.to_string())
        ]
    );
    assert!(e.store.snapshotter().has(&chain_ids(&[sha(&base), sha(&top)])[1]));
    assert!(e.store.list().unwrap().is_empty());

    // Not in use, by ID, single tag: untag, delete image and its layers (top first).
    load(&e.store, &legacy_save(&[&base, &top], &config, &["bb:latest"])).unwrap();
    let chains = chain_ids(&[sha(&base), sha(&top)]);
    let items = e.store.remove(&id.to_string(), false, true, &no_containers).unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("bb:latest".into()),
            DeleteItem::Deleted(id.to_string()),
            DeleteItem::Deleted(chains[1].to_string()),
            DeleteItem::Deleted(chains[0].to_string()),
        ]
    );
    e.assert_empty();
    assert_eq!(
        e.store
            .remove("bb", false, true, &no_containers)
            .unwrap_err()
            .to_string(),
        "No such image: bb"
    );
}

#[test]
fn shared_layers_survive_removal_of_one_image() {
    let e = env();
    let (base, top) = two_layers();
    let c1 = config_for(&[&base], json!([]));
    let c2 = config_for(&[&base, &top], json!([]));
    load(&e.store, &legacy_save(&[&base], &c1, &["one:latest"])).unwrap();
    load(&e.store, &legacy_save(&[&base, &top], &c2, &["two:latest"])).unwrap();
    let items = e.store.remove("one", false, true, &no_containers).unwrap();
    assert_eq!(items.len(), 2, "base layer is shared: {items:?}");
    assert!(e.store.snapshotter().has(&sha(&base)));
    assert!(e.store.blobs().has(&sha(&base)));
    e.store.remove("two", false, true, &no_containers).unwrap();
    e.assert_empty();
}

#[test]
fn prune_dangling_and_all() {
    let e = env();
    let (base, top) = two_layers();
    let c1 = config_for(&[&base], json!([]));
    let c2 = config_for(&[&top], json!([]));
    let c3 = config_for(&[&base, &top], json!([]));
    load(&e.store, &legacy_save(&[&base], &c1, &[])).unwrap();
    load(&e.store, &legacy_save(&[&top], &c2, &["tagged:1"])).unwrap();
    load(&e.store, &legacy_save(&[&base, &top], &c3, &[])).unwrap();
    let used = |i: &str| (i == sha(&c3).to_string()).then(|| "ctr".to_string());
    let r = e.store.prune(true, &used).unwrap();
    assert_eq!(
        r.deleted,
        vec![DeleteItem::Deleted(sha(&c1).to_string())],
        "base layer still used by c3"
    );
    assert_eq!(r.space_reclaimed, 0);
    let r = e.store.prune(false, &used).unwrap();
    assert_eq!(
        r.deleted,
        vec![
            DeleteItem::Untagged("tagged:1".into()),
            DeleteItem::Deleted(sha(&c2).to_string()),
            DeleteItem::Deleted(sha(&top).to_string())
        ]
    );
    assert_eq!(r.space_reclaimed, 3);
    let r = e.store.prune(false, &no_containers).unwrap();
    assert_eq!(r.deleted.len(), 3);
    e.assert_empty();
}

#[test]
fn single_reference_rule() {
    let r = |s: &str| Reference::parse(s).unwrap();
    let d = format!("@{}", sha(b"x"));
    assert!(!is_single_reference(&[]));
    assert!(is_single_reference(&[r("a")]));
    assert!(is_single_reference(&[r("a"), r(&format!("a{d}"))]));
    assert!(!is_single_reference(&[r("a"), r("b")]));
    assert!(!is_single_reference(&[r("a"), r(&format!("b{d}"))]));
}

#[test]
fn failed_imports_leave_nothing() {
    for (name, input) in [
        (
            "garbage",
            b"this is not a tar archive at all, just some text that is long enough".repeat(20),
        ),
        ("hostile", {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..9].copy_from_slice(b"../escape");
            h.set_size(0);
            h.set_mode(0o644);
            h.set_cksum();
            let mut t = h.as_bytes().to_vec();
            t.extend([0u8; 1024]);
            t
        }),
    ] {
        let e = env();
        let err = e.store.import(&input[..], ImportOptions::default()).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{name}: {err}");
        e.assert_empty();
    }
}

#[test]
fn store_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ImageStore>();
    assert_send_sync::<Snapshotter>();
}

#[test]
fn remapped_store_shifts_snapshots_and_keeps_blobs() {
    let dir = tempfile::Builder::new()
        .prefix("berth-store-userns")
        .tempdir_in("/var/tmp")
        .unwrap();
    let map = berth_types::IdentityMapping::single(100_000, 100_000, 65_536);
    let root = userns::prepare_remapped_root(dir.path(), &map).unwrap();
    let snaps = Snapshotter::open_with_idmap(&root.join("snapshots"), Some(map.clone())).unwrap();
    let store = ImageStore::open(&root.join("image"), snaps).unwrap();
    let (base, top) = two_layers();
    let config = config_for(&[&base, &top], json!([]));
    load(&store, &legacy_save(&[&base, &top], &config, &["remapped:1"])).unwrap();
    let img = store.resolve("remapped:1").unwrap();
    let s = store.snapshotter();
    let owner = |p: PathBuf| {
        let md = std::fs::symlink_metadata(&p).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(owner(s.fs_dir(&img.chain_ids[0])), (100_000, 100_000));
    assert_eq!(
        owner(s.fs_dir(&img.chain_ids[0]).join("etc/passwd")),
        (100_000, 100_000)
    );
    let wh = std::fs::symlink_metadata(s.fs_dir(&img.chain_ids[1]).join("etc/motd")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "whiteout");
    assert_eq!(
        s.read_file(None, &img.chain_ids, "/etc/passwd").unwrap().as_deref(),
        Some(&b"root:x:0:0:root:/root:/bin/sh\n"[..])
    );

    // `docker import` goes through the same snapshotter.
    let rec = store
        .import(&layer(&[("bin/", ""), ("bin/tool", "x")])[..], ImportOptions::default())
        .unwrap();
    assert_eq!(owner(s.fs_dir(&rec.chain_ids[0]).join("bin/tool")), (100_000, 100_000));

    // `docker save` writes the bytes received, not the shifted tree.
    let mut out = Vec::new();
    store.save(&["remapped:1".to_string()], &mut out).unwrap();
    let mut names = BTreeMap::new();
    for ent in tar::Archive::new(&out[..]).entries().unwrap() {
        let mut ent = ent.unwrap();
        let mut data = Vec::new();
        ent.read_to_end(&mut data).unwrap();
        names.insert(ent.path().unwrap().display().to_string(), data);
    }
    assert_eq!(names[&format!("blobs/sha256/{}", sha(&base).hex())], base);
    assert_eq!(names[&format!("blobs/sha256/{}", sha(&top).hex())], top);

    // Reopening with the same mapping keeps everything; removal drops the shifted snapshots.
    drop(store);
    let snaps = Snapshotter::open_with_idmap(&root.join("snapshots"), Some(map)).unwrap();
    let store = ImageStore::open(&root.join("image"), snaps).unwrap();
    store.remove("remapped:1", false, false, &no_containers).unwrap();
    assert!(!store.snapshotter().has(&img.chain_ids[1]));
}

/// `sweep`: blobs and snapshots no image uses (an interrupted pull's) go once older than the
/// grace; an image's, a leased one, a kept one (a container's) and a fresh one stay.
#[test]
fn sweep_removes_only_old_unreferenced_content() {
    let e = env();
    let rootfs = berth_testkit::busybox_rootfs_tar().unwrap();
    let rec = e.store.import(&rootfs[..], ImportOptions::default()).unwrap();
    let orphan_layer = layer(&[("orphan.txt", "left by a pull")]);
    let (orphan_blob, _) = e.store.blobs().put(&orphan_layer[..], None, "test").unwrap();
    let orphan_chain = sha(&orphan_layer);
    e.store
        .snapshotter()
        .apply_layer(&orphan_chain, None, &orphan_layer[..])
        .unwrap();
    let kept_layer = layer(&[("kept.txt", "a container's")]);
    let kept_chain = sha(&kept_layer);
    e.store
        .snapshotter()
        .apply_layer(&kept_chain, None, &kept_layer[..])
        .unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(e.store.sweep(&[], hour).unwrap(), 0, "nothing is old enough");
    {
        let store = std::sync::Arc::new(e.reopen());
        let _lease = store.lease_for(std::slice::from_ref(&orphan_blob), std::slice::from_ref(&orphan_chain));
        store
            .sweep(std::slice::from_ref(&kept_chain), std::time::Duration::ZERO)
            .unwrap();
        assert!(store.blobs().has(&orphan_blob) && store.snapshotter().has(&orphan_chain));
    }
    let freed = e
        .store
        .sweep(std::slice::from_ref(&kept_chain), std::time::Duration::ZERO)
        .unwrap();
    assert!(freed >= orphan_layer.len() as u64, "{freed}");
    assert!(!e.store.blobs().has(&orphan_blob));
    assert!(!e.store.snapshotter().has(&orphan_chain));
    assert!(e.store.snapshotter().has(&kept_chain));
    assert!(e.store.blobs().has(&rec.id));
    assert!(e.store.snapshotter().has(&rec.chain_ids[0]));
    assert_eq!(e.store.list().unwrap().len(), 1);
}
