//! HTTPS with a self-signed certificate, and garbage collection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_registry::{gc, gc_with, GcOptions, ServerConfig, TlsConfig};
use berth_types::Digest;
use bytes::Bytes;
use common::*;
use hyper::StatusCode;
use std::sync::Arc;

#[tokio::test]
async fn tls_with_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let cfg = ServerConfig {
        tls: Some(TlsConfig { cert, key }),
        ..ServerConfig::default()
    };
    let s = start_with(cfg, Some(Arc::new(client))).await;
    let r = s.get("/v2/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    let d = s.push_blob("secure/x", b"over tls").await;
    assert_eq!(&s.get(&format!("/v2/secure/x/blobs/{d}")).await.body[..], b"over tls");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));

    // A bad key file is reported at open.
    let bad = ServerConfig {
        root: dir.path().join("r2"),
        tls: Some(TlsConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("cert.pem"),
        }),
        ..ServerConfig::default()
    };
    let e = berth_registry::Registry::open(bad).unwrap_err();
    assert!(e.to_string().contains("tls"), "{e}");
}

#[tokio::test]
async fn gc_removes_unreferenced_blobs_only() {
    let s = start().await;
    let (m, md) = s.push_image("g/app", "kept").await;
    assert_eq!(
        s.put_manifest("g/app", "v1", OCI_MANIFEST, &m).await.status,
        StatusCode::CREATED
    );
    let orphan = s.push_blob("g/app", b"orphan layer").await;
    // A manifest deleted through the API stops being a root.
    let (m2, md2) = s.push_image("g/app", "deleted").await;
    s.put_manifest("g/app", "v2", OCI_MANIFEST, &m2).await;
    let r = s
        .req("DELETE", &format!("/v2/g/app/manifests/{md2}"), &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // An expired upload session (age zero with a zero expiry below).
    let r = s.req("POST", "/v2/g/app/blobs/uploads/", &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);

    let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
    let config: Digest = v["config"]["digest"].as_str().unwrap().parse().unwrap();
    let layer: Digest = v["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let v2: serde_json::Value = serde_json::from_slice(&m2).unwrap();
    let config2: Digest = v2["config"]["digest"].as_str().unwrap().parse().unwrap();
    let layer2: Digest = v2["layers"][0]["digest"].as_str().unwrap().parse().unwrap();

    let dry = gc(&s.root, true).unwrap();
    let mut want = vec![orphan.clone(), md2.clone(), config2, layer2];
    want.sort();
    assert_eq!(dry.blobs_removed, want, "{dry}");
    assert!(dry.to_string().contains("would remove 4 blobs"), "{dry}");
    assert_eq!(
        s.get(&format!("/v2/g/app/blobs/{orphan}")).await.status,
        StatusCode::OK,
        "dry run keeps"
    );

    let report = gc_with(
        &s.root,
        &GcOptions {
            upload_expiry: std::time::Duration::ZERO,
            ..GcOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.blobs_removed, want);
    assert!(report.bytes_freed > 0);
    assert_eq!(report.uploads_removed, 1);
    assert!(s.files_under("uploads").is_empty());
    assert_eq!(
        s.get(&format!("/v2/g/app/blobs/{orphan}")).await.status,
        StatusCode::NOT_FOUND
    );
    for d in [&config, &layer] {
        assert_eq!(s.get(&format!("/v2/g/app/blobs/{d}")).await.status, StatusCode::OK);
    }
    let r = s.get("/v2/g/app/manifests/v1").await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, m.len()));
    assert_eq!(s.get(&format!("/v2/g/app/manifests/{md}")).await.status, StatusCode::OK);
    // A second run finds nothing.
    assert!(gc(&s.root, false).unwrap().blobs_removed.is_empty());
}

#[tokio::test]
async fn gc_delete_untagged_keeps_referrers_of_tagged() {
    let s = start().await;
    let (m, md) = s.push_image("u", "tagged").await;
    s.put_manifest("u", "v1", OCI_MANIFEST, &m).await;
    let (m2, md2) = s.push_image("u", "untagged").await;
    s.put_manifest("u", &md2.to_string(), OCI_MANIFEST, &m2).await;
    let empty = s.push_blob("u", b"{}").await;
    let sig = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": m.len()}});
    let sig = serde_json::to_vec(&sig).unwrap();
    let sd = Digest::sha256(&sig);
    s.put_manifest("u", &sd.to_string(), OCI_MANIFEST, &sig).await;

    // In another repository, an untagged manifest kept alive by a tagged index.
    let (cm, cd) = s.push_image("ix", "child").await;
    s.put_manifest("ix", &cd.to_string(), OCI_MANIFEST, &cm).await;
    let idx = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": cd.to_string(), "size": cm.len()}]});
    let r = s
        .put_manifest("ix", "multi", OCI_INDEX, &serde_json::to_vec(&idx).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let child_layer = serde_json::from_slice::<serde_json::Value>(&cm).unwrap()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Default: untagged manifests stay.
    assert!(gc(&s.root, false).unwrap().blobs_removed.is_empty());
    let r = gc_with(
        &s.root,
        &GcOptions {
            delete_untagged: true,
            ..GcOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.manifests_removed, vec![("u".to_string(), md2.clone())]);
    assert_eq!(
        s.get(&format!("/v2/u/manifests/{md2}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get(&format!("/v2/u/manifests/{sd}")).await.status, StatusCode::OK);
    assert_eq!(s.get(&format!("/v2/u/manifests/{md}")).await.status, StatusCode::OK);
    assert_eq!(s.get(&format!("/v2/u/blobs/{empty}")).await.status, StatusCode::OK);
    assert_eq!(s.get(&format!("/v2/ix/manifests/{cd}")).await.status, StatusCode::OK);
    assert_eq!(
        s.get(&format!("/v2/ix/blobs/{child_layer}")).await.status,
        StatusCode::OK
    );
}
