use super::*;
use crate::remove::is_single_reference;
use berth_types::{chain_ids, Digest, ErrorKind, HasErrorKind, Reference};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: ImageStore,
}

fn env() -> Env {
    let dir = tempfile::Builder::new()
        .prefix("berth-store-test")
        .tempdir_in("/var/tmp")
        .unwrap();
    let root = dir.path().to_path_buf();
    let snaps = Snapshotter::open(&root.join("snapshots")).unwrap();
    let store = ImageStore::open(&root.join("image"), snaps).unwrap();
    Env { _dir: dir, root, store }
}

impl Env {
    fn reopen(&self) -> ImageStore {
        ImageStore::open(
            &self.root.join("image"),
            Snapshotter::open(&self.root.join("snapshots")).unwrap(),
        )
        .unwrap()
    }

    /// The store holds nothing: no images, references, blobs, snapshots or temp files.
    fn assert_empty(&self) {
        assert!(self.store.list().unwrap().is_empty());
        let count = |p: &str| std::fs::read_dir(self.root.join(p)).map(|r| r.count()).unwrap_or(0);
        assert_eq!(count("image/images"), 0, "image records left");
        assert_eq!(count("image/blobs/sha256"), 0, "blobs left");
        assert_eq!(count("image/tmp"), 0, "temp files left");
        assert_eq!(count("snapshots/tmp"), 0, "snapshot temp dirs left");
        assert!(self.store.snapshotter().list().unwrap().is_empty(), "snapshots left");
    }
}

fn no_containers(_: &str) -> Option<String> {
    None
}

/// A tar with files (`name` -> content), directories (`name/`) and empty whiteout markers.
fn layer(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut h = tar::Header::new_gnu();
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
        }
        h.set_size(content.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn sha(b: &[u8]) -> Digest {
    Digest::sha256(b)
}

/// An archive built from (name, bytes) members; names ending in `/` are directories, `name -> target`
/// members are symlinks.
fn archive(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        if let Some((n, t)) = name.split_once(" -> ") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, n, t).unwrap();
        } else {
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn config_for(layers: &[&[u8]], history: Value) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l).to_string()).collect();
    let cfg = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T10:00:00.123456789Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    // Not serde_json's own output: stored bytes must be kept verbatim whatever their formatting.
    serde_json::to_string_pretty(&cfg).unwrap().into_bytes()
}

fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let base = layer(&[
        ("etc/", ""),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/motd", "hello\n"),
        ("opt/", ""),
        ("opt/old", "old"),
    ]);
    let top = layer(&[
        ("etc/", ""),
        ("etc/.wh.motd", ""),
        ("opt/", ""),
        ("opt/.wh..wh..opq", ""),
        ("opt/new", "new"),
    ]);
    (base, top)
}

/// `docker save` before Docker 25: `<v1id>/layer.tar`, `<id>.json`, manifest.json, repositories.
fn legacy_save(layers: &[&[u8]], config: &[u8], tags: &[&str]) -> Vec<u8> {
    let id = sha(config);
    let mut members = Vec::new();
    let mut layer_paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let v1 = sha(format!("v1-{i}-{}", sha(l)).as_bytes());
        members.push((format!("{}/VERSION", v1.hex()), b"1.0".to_vec()));
        members.push((format!("{}/json", v1.hex()), b"{}".to_vec()));
        members.push((format!("{}/layer.tar", v1.hex()), l.to_vec()));
        layer_paths.push(format!("{}/layer.tar", v1.hex()));
    }
    members.push((format!("{}.json", id.hex()), config.to_vec()));
    let manifest = json!([{"Config": format!("{}.json", id.hex()), "RepoTags": tags, "Layers": layer_paths}]);
    members.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
    members.push(("repositories".into(), b"{}".to_vec()));
    archive(&members)
}

/// A pure OCI image layout with gzip layers and the given index annotations.
fn oci_layout(layers: &[&[u8]], config: &[u8], annotations: Value) -> Vec<u8> {
    let mut members = vec![("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec())];
    let mut descs = Vec::new();
    for l in layers {
        let gz = gzip(l);
        descs.push(json!({"mediaType": MEDIA_OCI_LAYER_GZIP, "digest": sha(&gz).to_string(), "size": gz.len()}));
        members.push((format!("blobs/sha256/{}", sha(&gz).hex()), gz));
    }
    members.push((format!("blobs/sha256/{}", sha(config).hex()), config.to_vec()));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config).to_string(), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    members.push((format!("blobs/sha256/{}", sha(&manifest).hex()), manifest.clone()));
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(&manifest).to_string(),
        "size": manifest.len(),
        "annotations": annotations,
    }]});
    members.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    archive(&members)
}

fn load(store: &ImageStore, tar: &[u8]) -> Result<(Vec<LoadedImage>, Vec<String>)> {
    let mut lines = Vec::new();
    let imgs = store.load(tar, &mut |l: &str| lines.push(l.to_string()))?;
    Ok((imgs, lines))
}

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
