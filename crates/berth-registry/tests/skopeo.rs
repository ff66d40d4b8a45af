//! Interop: skopeo (containers/image) pushes an OCI layout to the registry, copies it between
//! repositories (cross-repo mount), pulls it back and deletes it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_types::Digest;
use common::*;
use hyper::StatusCode;
use std::path::Path;

const SKOPEO: &str = "/usr/bin/skopeo";

/// Writes an OCI image layout with one image tagged `t` whose layer holds one file.
fn write_layout(dir: &Path) -> (Vec<u8>, Digest, Vec<u8>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = Digest::sha256(data);
        std::fs::write(blobs.join(d.hex()), data).unwrap();
        d
    };
    let mut layer = tar::Builder::new(Vec::new());
    // Unique content, so skopeo's blob-info cache cannot substitute a layer it saw in an earlier run.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let content = format!("hello from berth {nanos} {}\n", std::process::id());
    let content = content.as_bytes();
    let mut h = tar::Header::new_ustar();
    h.set_path("hello.txt").unwrap();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    layer.append(&h, content).unwrap();
    let layer = layer.into_inner().unwrap();
    let ld = put(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [ld.to_string()]}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cd = put(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": ld.to_string(), "size": layer.len()}]
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let md = put(&manifest);
    // A one-platform image index over the same manifest, tagged `multi` in the layout.
    let image_index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"}}]
    });
    let image_index = serde_json::to_vec(&image_index).unwrap();
    let id = put(&image_index);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "t"}},
            {"mediaType": OCI_INDEX, "digest": id.to_string(), "size": image_index.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"}}
        ]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (manifest, ld, layer)
}

async fn skopeo(args: &[&str]) {
    let out = tokio::process::Command::new(SKOPEO)
        .arg("--insecure-policy")
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_push_copy_pull_delete() {
    if !Path::new(SKOPEO).exists() {
        println!("SKIPPED skopeo_push_copy_pull_delete: {SKOPEO} is not installed");
        return;
    }
    let s = start().await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (manifest, ld, layer) = write_layout(&layout);
    let md = Digest::sha256(&manifest);
    let host = s.addr.to_string();

    let src = format!("oci:{}:t", layout.display());

    // Without --preserve-digests skopeo gzips the (new) layer while pushing (a streamed upload whose
    // digest is only known at the end); it must round-trip.
    let gz = format!("docker://{host}/x/gz:t");
    skopeo(&["copy", "--dest-tls-verify=false", &src, &gz]).await;
    let stored = s.get("/v2/x/gz/manifests/t").await;
    assert_eq!(stored.status, StatusCode::OK);
    let m: serde_json::Value = serde_json::from_slice(&stored.body).unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let out2 = tmp.path().join("out2");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &gz,
        &format!("dir:{}", out2.display()),
    ])
    .await;
    assert_eq!(std::fs::read(out2.join("manifest.json")).unwrap(), stored.body.to_vec());
    for l in m["layers"].as_array().unwrap() {
        let d: Digest = l["digest"].as_str().unwrap().parse().unwrap();
        assert_eq!(Digest::sha256(&std::fs::read(out2.join(d.hex())).unwrap()), d);
    }

    let dest = format!("docker://{host}/x/y:t");
    skopeo(&["copy", "--preserve-digests", "--dest-tls-verify=false", &src, &dest]).await;
    let r = s.get("/v2/x/y/manifests/t").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(Digest::sha256(&r.body), md, "manifest pushed verbatim");

    // Registry to registry: the layer is mounted across repositories.
    let other = format!("docker://{host}/x/z:copy");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &dest,
        &other,
    ])
    .await;
    assert_eq!(&s.get(&format!("/v2/x/z/blobs/{ld}")).await.body[..], &layer[..]);

    // Pull back into a dir: transport and compare.
    let out = tmp.path().join("out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &other,
        &format!("dir:{}", out.display()),
    ])
    .await;
    let pulled = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(Digest::sha256(&pulled), md);
    assert_eq!(std::fs::read(out.join(ld.hex())).unwrap(), layer);

    // skopeo inspect reports the same digest; skopeo delete removes the manifest.
    let o = tokio::process::Command::new(SKOPEO)
        .args(["inspect", "--tls-verify=false", "--raw", &dest])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(Digest::sha256(&o.stdout), md);
    skopeo(&["delete", "--tls-verify=false", &dest]).await;
    assert_eq!(s.get("/v2/x/y/manifests/t").await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/v2/x/z/manifests/copy").await.status, StatusCode::OK);

    // A multi-platform copy: the child manifest goes first, then the index, both verbatim.
    let multi = format!("docker://{host}/x/multi:all");
    let src_multi = format!("oci:{}:multi", layout.display());
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src_multi,
        &multi,
    ])
    .await;
    let r = s.get("/v2/x/multi/manifests/all").await;
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    let idx: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(idx["manifests"][0]["digest"], md.to_string());
    assert_eq!(
        s.get(&format!("/v2/x/multi/manifests/{md}")).await.status,
        StatusCode::OK
    );
}
