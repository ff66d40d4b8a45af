//! `docker load` / `docker save`: the layouts, hostile archives, concurrency.

use super::*;

#[test]
fn load_legacy_docker_save_applies_whiteouts() {
    let e = env();
    let (base, top) = two_layers();
    let history = json!([
        {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:base in /"},
        {"created": "2024-05-01T10:00:01Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true},
        {"created": "2024-05-01T10:00:02Z", "created_by": "/bin/sh -c rm /etc/motd", "comment": "top"},
    ]);
    let config = config_for(&[&base, &top], history);
    let (imgs, lines) = load(&e.store, &legacy_save(&[&base, &top], &config, &["bb:latest", "bb:1"])).unwrap();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].id, sha(&config));
    assert_eq!(imgs[0].tags, vec!["bb:latest", "bb:1"]);
    assert!(lines.contains(&"Loaded image: bb:latest".to_string()), "{lines:?}");

    let rec = e.store.resolve("bb").unwrap();
    assert_eq!(
        e.store.blobs().read(&rec.id).unwrap(),
        config,
        "config bytes kept verbatim"
    );
    let top_fs = e.store.snapshotter().fs_dir(&rec.chain_ids[1]);
    let wh = std::fs::symlink_metadata(top_fs.join("etc/motd")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    let mut buf = [0u8; 4];
    let n = rustix::fs::lgetxattr(top_fs.join("opt"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    let snaps = e.store.snapshotter();
    assert_eq!(
        snaps.read_file(None, &rec.chain_ids, "/etc/passwd").unwrap().unwrap(),
        b"root:x:0:0:root:/root:/bin/sh\n"
    );
    assert_eq!(snaps.read_file(None, &rec.chain_ids, "/etc/motd").unwrap(), None);
    assert_eq!(snaps.read_file(None, &rec.chain_ids, "/opt/old").unwrap(), None);

    let h = e.store.history("bb:1").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id, rec.id.to_string());
    assert_eq!(h[0].tags.len(), 2);
    assert_eq!(h[0].size, 3);
    assert_eq!((h[1].id.as_str(), h[1].size), ("<missing>", 0));
    assert_eq!(h[2].id, "<missing>");
    assert_eq!(h[2].size, 30 + 6 + 3);
    assert_eq!(h[2].created, 1_714_557_600);
    assert_eq!(rec.size, 30 + 6 + 3 + 3);
}

#[test]
fn load_oci_layout_and_docker25_format() {
    let e = env();
    let (base, top) = two_layers();
    let config = config_for(&[&base, &top], json!([]));
    let tar = oci_layout(
        &[&base, &top],
        &config,
        json!({"io.containerd.image.name": "docker.io/library/ocitest:1.0", "org.opencontainers.image.ref.name": "1.0"}),
    );
    let (imgs, _) = load(&e.store, &tar).unwrap();
    assert_eq!(imgs[0].tags, vec!["ocitest:1.0"]);
    let rec = e.store.resolve("ocitest:1.0").unwrap();
    assert_eq!(rec.layers[0].media_type, MEDIA_OCI_LAYER_GZIP);
    assert!(e.store.snapshotter().has(&rec.chain_ids[1]));
    // History rows exist even without config history.
    assert_eq!(e.store.history("ocitest:1.0").unwrap().len(), 2);

    // A bare ref name names no repository: the image loads untagged.
    let config2 = config_for(&[&base], json!([]));
    let (imgs, lines) = load(
        &e.store,
        &oci_layout(
            &[&base],
            &config2,
            json!({"org.opencontainers.image.ref.name": "latest"}),
        ),
    )
    .unwrap();
    assert!(imgs[0].tags.is_empty());
    assert_eq!(lines.last().unwrap(), &format!("Loaded image ID: {}", sha(&config2)));
    // ... but a full one does.
    let config3 = config_for(&[&top], json!([{"created_by": "x"}]));
    let (imgs, _) = load(
        &e.store,
        &oci_layout(
            &[&top],
            &config3,
            json!({"org.opencontainers.image.ref.name": "reg.local/app:v2"}),
        ),
    )
    .unwrap();
    assert_eq!(imgs[0].tags, vec!["reg.local/app:v2"]);

    // Docker 25+'s manifest.json pointing into blobs/ (the testkit fixture).
    let (imgs, _) = load(&e.store, &berth_testkit::busybox_image_tar("bbx:latest").unwrap()).unwrap();
    assert_eq!(imgs[0].tags, vec!["bbx:latest"]);
    let rec = e.store.resolve("bbx").unwrap();
    assert!(e
        .store
        .snapshotter()
        .read_file(None, &rec.chain_ids, "/etc/group")
        .unwrap()
        .is_some());
    assert_eq!(e.store.list().unwrap().len(), 4);
}

#[test]
fn save_then_load_round_trips() {
    let e = env();
    let (base, top) = two_layers();
    let config = config_for(&[&base, &top], json!([]));
    // Loaded from gzip layers: save must write them uncompressed, named by diff ID.
    load(
        &e.store,
        &oci_layout(
            &[&base, &top],
            &config,
            json!({"io.containerd.image.name": "docker.io/library/rt:1"}),
        ),
    )
    .unwrap();
    e.store.tag("rt:1", &Reference::parse("rt:2").unwrap()).unwrap();
    let mut out = Vec::new();
    e.store.save(&["rt".to_string()], &mut out).unwrap();

    let mut names = BTreeMap::new();
    for ent in tar::Archive::new(&out[..]).entries().unwrap() {
        let mut ent = ent.unwrap();
        let mut data = Vec::new();
        ent.read_to_end(&mut data).unwrap();
        names.insert(ent.path().unwrap().display().to_string(), data);
    }
    for want in ["index.json", "oci-layout", "manifest.json", "repositories"] {
        assert!(names.contains_key(want), "{want} missing: {:?}", names.keys());
    }
    assert_eq!(names[&format!("blobs/sha256/{}", sha(&base).hex())], base);
    assert_eq!(names[&format!("blobs/sha256/{}", sha(&top).hex())], top);
    assert_eq!(names[&format!("blobs/sha256/{}", sha(&config).hex())], config);
    let manifest: Value = serde_json::from_slice(&names["manifest.json"]).unwrap();
    assert_eq!(
        manifest[0]["Config"],
        json!(format!("blobs/sha256/{}", sha(&config).hex()))
    );
    assert_eq!(manifest[0]["RepoTags"], json!(["rt:1", "rt:2"]));
    let index: Value = serde_json::from_slice(&names["index.json"]).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        json!("docker.io/library/rt:1")
    );
    let repos: Value = serde_json::from_slice(&names["repositories"]).unwrap();
    assert_eq!(repos["rt"]["1"], json!(sha(&top).hex()));

    // Into a fresh store via manifest.json (gzip-compressed, as `docker load` accepts): same ID, tags.
    let e2 = env();
    let (imgs, _) = load(&e2.store, &gzip(&out)).unwrap();
    assert_eq!(imgs[0].id, sha(&config));
    assert_eq!(e2.store.resolve("rt:2").unwrap().id, sha(&config));
    // And via the OCI side alone (what a containerd-backed Docker reads).
    let e3 = env();
    let oci_only: Vec<(String, Vec<u8>)> = names
        .iter()
        .filter(|(k, _)| k.as_str() != "manifest.json" && !k.ends_with('/'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (imgs, _) = load(&e3.store, &archive(&oci_only)).unwrap();
    assert_eq!(imgs[0].id, sha(&config));
    assert_eq!(imgs[0].tags, vec!["rt:1", "rt:2"]);

    // Saving by ID writes no tags.
    let mut out = Vec::new();
    e.store.save(&[sha(&config).hex()[..12].to_string()], &mut out).unwrap();
    let e4 = env();
    let (imgs, _) = load(&e4.store, &out).unwrap();
    assert!(imgs[0].tags.is_empty());
}

#[test]
fn hostile_load_archives_leave_the_store_clean() {
    let (base, top) = two_layers();
    let config = config_for(&[&base, &top], json!([]));
    let id = sha(&config);
    let good_members = |manifest: Value| -> Vec<(String, Vec<u8>)> {
        vec![
            ("layers/a.tar".into(), base.clone()),
            ("layers/b.tar".into(), top.clone()),
            (format!("{}.json", id.hex()), config.clone()),
            ("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()),
        ]
    };
    let ok_manifest = json!([{"Config": format!("{}.json", id.hex()), "RepoTags": ["x:1"], "Layers": ["layers/a.tar", "layers/b.tar"]}]);
    let corrupt_top = layer(&[("etc/", ""), ("etc/evil", "evil")]);
    let truncated_layer = {
        let mut t = layer(&[("etc/", ""), ("etc/big", &"z".repeat(4000))]);
        t.truncate(1500);
        t
    };
    let bad_oci = {
        let mut members = Vec::new();
        for (k, v) in tar::Archive::new(&oci_layout(&[&base], &config_for(&[&base], json!([])), json!({}))[..])
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut d = Vec::new();
                e.read_to_end(&mut d).unwrap();
                (e.path().unwrap().display().to_string(), d)
            })
        {
            // Tamper with the layer blob but keep its name: its digest no longer matches.
            let mut v = v;
            if k.starts_with("blobs/") && v.starts_with(&[0x1f, 0x8b]) {
                let last = v.len() - 1;
                v[last] ^= 0xff;
            }
            members.push((k, v));
        }
        archive(&members)
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed manifest.json",
            archive(&[("manifest.json".into(), b"[{\"Config\": ".to_vec())]),
            "malformed JSON in manifest.json",
        ),
        (
            "traversal in layer path",
            archive(&good_members(
                json!([{"Config": format!("{}.json", id.hex()), "Layers": ["../../../../etc/passwd", "layers/b.tar"]}]),
            )),
            "escapes",
        ),
        (
            "absolute config path",
            archive(&good_members(json!([{"Config": "/etc/passwd", "Layers": []}]))),
            "absolute path",
        ),
        (
            "symlink escaping the archive",
            {
                let mut m = good_members(ok_manifest.clone());
                m[0] = ("layers/a.tar -> ../../../../../etc/passwd".into(), Vec::new());
                archive(&m)
            },
            "outside the archive",
        ),
        (
            "missing layer file",
            archive(&good_members(
                json!([{"Config": format!("{}.json", id.hex()), "Layers": ["layers/a.tar", "layers/nope.tar"]}]),
            )),
            "missing file \"layers/nope.tar\"",
        ),
        (
            "config digest mismatch",
            {
                let mut m = good_members(ok_manifest.clone());
                m[2].1 = config_for(&[&base, &top], json!([{"created_by": "tampered"}]));
                archive(&m)
            },
            "digest mismatch for image config",
        ),
        (
            "layer content does not match diff id",
            {
                let mut m = good_members(ok_manifest.clone());
                m[1].1 = corrupt_top;
                archive(&m)
            },
            "digest mismatch",
        ),
        (
            "truncated layer",
            {
                let mut m = good_members(ok_manifest.clone());
                m[1].1 = truncated_layer;
                archive(&m)
            },
            "etc/big",
        ),
        ("oci blob digest mismatch", bad_oci, "digest mismatch"),
        (
            "layer count mismatch",
            archive(&good_members(
                json!([{"Config": format!("{}.json", id.hex()), "Layers": ["layers/a.tar"]}]),
            )),
            "2 layers",
        ),
        (
            "truncated outer archive",
            {
                let mut t = archive(&good_members(ok_manifest.clone()));
                t.truncate(700);
                t
            },
            "invalid image archive",
        ),
        (
            "not an image",
            archive(&[("hello".into(), b"x".to_vec())]),
            "neither manifest.json nor index.json",
        ),
    ];
    for (name, tar, want) in cases {
        let e = env();
        let err = load(&e.store, &tar).expect_err(name);
        assert!(err.to_string().contains(want), "{name}: {err}");
        assert_ne!(err.kind(), ErrorKind::Internal, "{name}: {err}");
        e.assert_empty();
        assert!(!Path::new("/etc/evil").exists());
    }
}

#[test]
fn concurrent_loads_of_the_same_image() {
    let e = env();
    let tar = berth_testkit::busybox_image_tar("same:latest").unwrap();
    std::thread::scope(|s| {
        let tar = &tar;
        let a = s.spawn(|| load(&e.store, tar).map(|r| r.0));
        let store2 = e.reopen();
        let b = s.spawn(move || load(&store2, tar).map(|r| r.0));
        let (a, b) = (a.join().unwrap().unwrap(), b.join().unwrap().unwrap());
        assert_eq!(a, b);
    });
    let list = e.store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].repo_tags, vec!["same:latest"]);
    assert!(e.store.snapshotter().has(&list[0].chain_ids[0]));
    assert_eq!(std::fs::read_dir(e.root.join("image/tmp")).unwrap().count(), 0);
}

#[test]
fn retagging_on_load_reports_the_old_image() {
    let e = env();
    let (base, top) = two_layers();
    let c1 = config_for(&[&base], json!([]));
    let c2 = config_for(&[&top], json!([]));
    load(&e.store, &legacy_save(&[&base], &c1, &["app:latest"])).unwrap();
    let (_, lines) = load(&e.store, &legacy_save(&[&top], &c2, &["app:latest"])).unwrap();
    assert!(lines.contains(&format!(
        "The image app:latest already exists, renaming the old one with ID {} to empty string",
        sha(&c1)
    )));
    assert!(e.store.resolve(&sha(&c1).to_string()).unwrap().repo_tags.is_empty());
}

#[test]
fn reloading_from_other_blobs_drops_the_old_ones() {
    let e = env();
    let (base, _) = two_layers();
    let config = config_for(&[&base], json!([]));
    load(&e.store, &oci_layout(&[&base], &config, json!({}))).unwrap();
    let gz_blob = e.store.resolve(&sha(&config).to_string()).unwrap().layers[0]
        .digest
        .clone();
    load(&e.store, &legacy_save(&[&base], &config, &["again:1"])).unwrap();
    let rec = e.store.resolve("again:1").unwrap();
    assert_eq!(rec.layers[0].digest, sha(&base));
    assert!(!e.store.blobs().has(&gz_blob));
    e.store.remove("again:1", false, true, &no_containers).unwrap();
    e.assert_empty();
}

#[test]
fn legacy_archive_with_two_images_sharing_a_symlinked_layer() {
    let e = env();
    let (base, top) = two_layers();
    let c1 = config_for(&[&base], json!([]));
    let c2 = config_for(&[&base, &top], json!([]));
    // `docker save a b` before Docker 25: a duplicate layer is a symlink to the first copy.
    let members = vec![
        ("aaaa/layer.tar".to_string(), base.clone()),
        ("bbbb/layer.tar -> ../aaaa/layer.tar".to_string(), Vec::new()),
        ("cccc/layer.tar".to_string(), top.clone()),
        (format!("{}.json", sha(&c1).hex()), c1.clone()),
        (format!("{}.json", sha(&c2).hex()), c2.clone()),
        (
            "manifest.json".to_string(),
            serde_json::to_vec(&json!([
                {"Config": format!("{}.json", sha(&c1).hex()), "RepoTags": ["a:1"], "Layers": ["aaaa/layer.tar"]},
                {"Config": format!("{}.json", sha(&c2).hex()), "RepoTags": ["b:1"], "Layers": ["bbbb/layer.tar", "cccc/layer.tar"]},
            ]))
            .unwrap(),
        ),
    ];
    let (imgs, lines) = load(&e.store, &archive(&members)).unwrap();
    assert_eq!(imgs.len(), 2);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Loaded image: ")).count(),
        2,
        "{lines:?}"
    );
    assert_eq!(
        e.store.resolve("a:1").unwrap().chain_ids[0],
        e.store.resolve("b:1").unwrap().chain_ids[0]
    );
    assert_eq!(e.store.snapshotter().list().unwrap().len(), 2);
    let mut out = Vec::new();
    e.store.save(&["a:1".to_string(), "b:1".to_string()], &mut out).unwrap();
    let e2 = env();
    let (imgs, _) = load(&e2.store, &out).unwrap();
    assert_eq!(
        imgs.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        vec![sha(&c1), sha(&c2)]
    );
}
