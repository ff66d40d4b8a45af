//! Store tests: helpers that build layers and archives, then one file per area.

mod archive;
mod images;

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
fn blob_writer_stores_only_what_matches() {
    let e = env();
    let data = b"layer bytes".to_vec();
    let d = Digest::sha256(&data);
    let mut w = e.store.blobs().writer("test blob").unwrap();
    w.write_all(&data).unwrap();
    assert_eq!(w.written(), data.len() as u64);
    assert_eq!(w.commit(Some(&d)).unwrap(), (d.clone(), data.len() as u64));
    assert_eq!(e.store.blobs().read(&d).unwrap(), data);

    let other = Digest::sha256(b"something else");
    let mut w = e.store.blobs().writer("test blob").unwrap();
    w.write_all(b"tampered").unwrap();
    assert!(w.commit(Some(&other)).is_err());
    assert!(!e.store.blobs().has(&other));
    assert_eq!(std::fs::read_dir(e.root.join("image/tmp")).unwrap().count(), 0);
    // Dropped uncommitted: no temp file either.
    let mut w = e.store.blobs().writer("test blob").unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    assert_eq!(std::fs::read_dir(e.root.join("image/tmp")).unwrap().count(), 0);
}
