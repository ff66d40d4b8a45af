//! Against Debian's docker-registry (distribution 2.8): push, resolve, fetch, mount, tags, errors,
//! basic auth, TLS with a certs.d CA.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use berth_distribution::manifest::{OCI_INDEX, OCI_MANIFEST};
use berth_distribution::{AuthConfig, Descriptor, DistributionError, Platform, RegistryClient};
use berth_types::{Digest, HasErrorKind, Reference};
use common::{bytes, client, collect, Image, Registry, RegistryOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

async fn push_image(c: &RegistryClient, r: &Reference, img: &Image, tag: &str, auth: Option<&AuthConfig>) -> Digest {
    c.push_blob(r, &img.config_desc(), img.config.as_slice(), &|_| {}, auth)
        .await
        .unwrap();
    for (i, l) in img.layers.iter().enumerate() {
        if c.blob_exists(r, &img.layer_desc(i).digest, auth)
            .await
            .unwrap()
            .is_none()
        {
            c.push_blob(r, &img.layer_desc(i), l.as_slice(), &|_| {}, auth)
                .await
                .unwrap();
        }
    }
    c.put_manifest(r, tag, img.media_type, &img.manifest, auth)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_resolve_fetch_mount_tags() {
    need_registry!();
    let reg = Registry::start(RegistryOptions::default());
    let c = client();
    let r = reg.reference("team/app:v1");

    // A 9 MiB layer goes up in PATCH chunks, the small ones in one PUT.
    let big = bytes(1, 9 << 20);
    let small = bytes(2, 1000);
    let img = Image::new(false, "amd64", vec![small.clone(), big.clone()]);
    let progress = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    {
        let (p, n) = (progress.clone(), calls.clone());
        c.push_blob(
            &r,
            &img.layer_desc(1),
            big.as_slice(),
            &move |sent| {
                p.store(sent, Ordering::SeqCst);
                n.fetch_add(1, Ordering::SeqCst);
            },
            None,
        )
        .await
        .unwrap();
    }
    assert_eq!(progress.load(Ordering::SeqCst), big.len() as u64);
    assert!(calls.load(Ordering::SeqCst) >= 2, "chunked upload reports each chunk");
    assert_eq!(
        c.blob_exists(&r, &img.layer_desc(1).digest, None).await.unwrap(),
        Some(big.len() as u64)
    );
    let digest = push_image(&c, &r, &img, "v1", None).await;
    assert_eq!(digest, Digest::sha256(&img.manifest));

    // Pushing bytes that do not match the descriptor is refused before commit.
    let lie = Descriptor::of("application/vnd.docker.image.rootfs.diff.tar", b"other");
    let e = c.push_blob(&r, &lie, &b"wrong"[..], &|_| {}, None).await.unwrap_err();
    assert!(matches!(e, DistributionError::DigestMismatch { .. }), "{e}");
    assert_eq!(c.blob_exists(&r, &lie.digest, None).await.unwrap(), None);

    // Resolve by tag and by digest.
    let host = Platform::parse("linux/amd64").unwrap();
    let res = c.resolve(&r, &host, None).await.unwrap();
    assert_eq!(res.digest, digest);
    assert_eq!(res.manifest, img.manifest);
    assert_eq!(res.layers, vec![img.layer_desc(0), img.layer_desc(1)]);
    assert_eq!(res.config, img.config_desc());
    assert!(res.index.is_none());
    let by_digest = r.with_digest(digest.clone());
    assert_eq!(c.resolve(&by_digest, &host, None).await.unwrap().digest, digest);
    let cfg = c.fetch_blob_bytes(&r, &res.config, 1 << 20, None).await.unwrap();
    assert_eq!(cfg, img.config);
    assert!(c.fetch_blob_bytes(&r, &res.config, 10, None).await.is_err());
    let (raw, mt, d) = c.get_manifest(&r, "v1", None).await.unwrap();
    assert_eq!(
        (raw, mt.as_str(), d),
        (img.manifest.clone(), img.media_type, digest.clone())
    );

    // Fetch and verify blobs, from 0, from an offset (prefix re-read), and with the caller's hasher.
    let got = collect(c.fetch_blob(&r, &img.layer_desc(1), 0, None).await.unwrap())
        .await
        .unwrap();
    assert!(got == big);
    let tail = collect(c.fetch_blob(&r, &img.layer_desc(1), 5000, None).await.unwrap())
        .await
        .unwrap();
    assert!(tail == big[5000..]);
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, &big[..7000]);
    let tail = collect(
        c.fetch_blob_verified(&r, &img.layer_desc(1), 7000, Some(h), None)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(tail == big[7000..]);
    // A wrong prefix state fails the verification at the end.
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, b"not the prefix");
    let (_, e) = collect(
        c.fetch_blob_verified(&r, &img.layer_desc(1), 7000, Some(h), None)
            .await
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DistributionError::DigestMismatch { .. }), "{e}");

    // An OCI index with two platforms.
    let arm = Image::new(true, "arm64", vec![bytes(3, 500)]);
    let arm_digest = push_image(&c, &r, &arm, &Digest::sha256(&arm.manifest).to_string(), None).await;
    let amd = Image::new(true, "amd64", vec![small.clone()]);
    let amd_digest = push_image(&c, &r, &amd, &Digest::sha256(&amd.manifest).to_string(), None).await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd_digest, "size": amd.manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm_digest, "size": arm.manifest.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    }))
    .unwrap();
    let index_digest = c.put_manifest(&r, "multi", OCI_INDEX, &index, None).await.unwrap();
    let multi = r.with_tag("multi").unwrap();
    let res = c
        .resolve(&multi, &Platform::parse("linux/arm64").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(res.digest, arm_digest);
    assert_eq!(res.media_type, OCI_MANIFEST);
    assert_eq!(res.index, Some((index_digest.clone(), index.clone())));
    assert_eq!(res.layers[0].size, 500);
    let res = c.resolve(&multi, &host, None).await.unwrap();
    assert_eq!(res.digest, amd_digest);
    // `manifest inspect` sees the index itself.
    let (raw, mt, d) = c.get_manifest(&r, "multi", None).await.unwrap();
    assert_eq!((raw, mt.as_str(), d), (index.clone(), OCI_INDEX, index_digest.clone()));
    let e = c
        .resolve(&multi, &Platform::parse("linux/s390x").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind().http_status(), 404);
    assert!(e.to_string().contains("linux/amd64, linux/arm64/v8"), "{e}");

    // Missing tag and missing repository: 404 kinds with the registry's code.
    let e = c.resolve(&r.with_tag("nope").unwrap(), &host, None).await.unwrap_err();
    assert_eq!(e.kind().http_status(), 404, "{e}");
    assert!(e.to_string().contains("manifest unknown"), "{e}");
    let e = c
        .resolve(&reg.reference("no/such:latest"), &host, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind().http_status(), 404, "{e}");
    assert_eq!(e.status(), Some(404));
    assert!(e.registry_code().is_some(), "{e:?}");
    let e = c
        .fetch_blob(
            &r,
            &Descriptor::of("application/vnd.oci.image.layer.v1.tar", b"absent"),
            0,
            None,
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind().http_status(), 404, "{e}");

    // Mount across repositories.
    let other = reg.reference("other/app:v1");
    assert!(c
        .mount_blob(&other, &img.layer_desc(1).digest, r.path(), None)
        .await
        .unwrap());
    assert_eq!(
        c.blob_exists(&other, &img.layer_desc(1).digest, None).await.unwrap(),
        Some(big.len() as u64)
    );
    let absent = Digest::sha256(b"never pushed");
    assert!(!c.mount_blob(&other, &absent, r.path(), None).await.unwrap());

    // Tags.
    let mut tags = c.tags(&r, None).await.unwrap();
    tags.sort();
    assert!(
        tags.contains(&"v1".to_string()) && tags.contains(&"multi".to_string()),
        "{tags:?}"
    );

    // Search: distribution has no /v1/search.
    let e = c.search(&reg.domain(), "app", 10, None).await.unwrap_err();
    assert!(matches!(e, DistributionError::Unsupported(_)), "{e}");
    assert_eq!(e.to_string(), "search is not supported by this registry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_login_and_push() {
    need_registry!();
    let reg = Registry::start(RegistryOptions {
        htpasswd: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    });
    let c = client();
    let good = AuthConfig {
        username: "alice".into(),
        password: "s3cret".into(),
        ..Default::default()
    };
    let out = c.login(&reg.domain(), &good).await.unwrap();
    assert_eq!(out.status, "Login Succeeded");
    assert_eq!(out.identity_token, None);

    let bad = AuthConfig {
        password: "wrong".into(),
        ..good.clone()
    };
    let e = c.login(&reg.domain(), &bad).await.unwrap_err();
    assert_eq!(e.kind().http_status(), 401);
    assert!(
        e.to_string().contains("unauthorized: incorrect username or password"),
        "{e}"
    );

    let r = reg.reference("private/app:1");
    let img = Image::new(false, "amd64", vec![bytes(9, 300)]);
    push_image(&c, &r, &img, "1", Some(&good)).await;
    let res = c
        .resolve(&r, &Platform::parse("linux/amd64").unwrap(), Some(&good))
        .await
        .unwrap();
    assert_eq!(res.manifest, img.manifest);

    // Anonymous: dockerd's "pull access denied" (404 kind), keeping the registry's 401.
    let e = c
        .resolve(&r, &Platform::parse("linux/amd64").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(e.to_string().contains("pull access denied"), "{e}");
    // Pushing anonymously is a 401.
    let e = c
        .put_manifest(&r, "2", img.media_type, &img.manifest, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind().http_status(), 401, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_certs_d_ca() {
    need_registry!();
    let pki = common::TestPki::new();
    let reg = Registry::start(RegistryOptions {
        tls: Some((pki.server_pem.clone(), pki.server_key_pem.clone())),
        ..Default::default()
    });
    let certs = tempfile::tempdir().unwrap();
    let host_dir = certs.path().join(reg.domain());
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("ca.crt"), &pki.ca_pem).unwrap();

    let c = common::client_with_certs(certs.path());
    let r = reg.reference("secure/app:1");
    let img = Image::new(true, "amd64", vec![bytes(11, 2048)]);
    let d = push_image(&c, &r, &img, "1", None).await;
    let res = c
        .resolve(&r, &Platform::parse("linux/amd64").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(res.digest, d);
    let got = collect(c.fetch_blob(&r, &img.layer_desc(0), 0, None).await.unwrap())
        .await
        .unwrap();
    assert_eq!(got, img.layers[0]);

    // Without the CA, the certificate is refused (HTTP fallback cannot talk to a TLS server).
    let e = client()
        .resolve(&r, &Platform::parse("linux/amd64").unwrap(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificate_and_insecure_registries() {
    need_registry!();
    let pki = common::TestPki::new();
    let reg = Registry::start(RegistryOptions {
        tls: Some((pki.server_pem.clone(), pki.server_key_pem.clone())),
        client_ca: Some(pki.ca_pem.clone()),
        ..Default::default()
    });
    let r = reg.reference("mtls/app:1");
    let img = Image::new(false, "amd64", vec![bytes(61, 700)]);
    let host = Platform::parse("linux/amd64").unwrap();

    // certs.d with the CA and a client certificate (Docker's client.cert / client.key).
    let certs = tempfile::tempdir().unwrap();
    let host_dir = certs.path().join(reg.domain());
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("ca.crt"), &pki.ca_pem).unwrap();
    let (cert, key) = pki.client_cert();
    std::fs::write(host_dir.join("client.cert"), cert).unwrap();
    std::fs::write(host_dir.join("client.key"), key).unwrap();
    let c = common::client_with_certs(certs.path());
    let d = push_image(&c, &r, &img, "1", None).await;
    assert_eq!(c.resolve(&r, &host, None).await.unwrap().digest, d);

    // Without the client certificate the handshake is refused.
    let no_client = tempfile::tempdir().unwrap();
    let dir = no_client.path().join(reg.domain());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.crt"), &pki.ca_pem).unwrap();
    let res = common::client_with_certs(no_client.path())
        .resolve(&r, &host, None)
        .await;
    assert!(res.is_err(), "{:?} {}", res.map(|r| r.digest), reg.log());

    // A half pair is a configuration error naming the file.
    std::fs::write(dir.join("client.cert"), pki.client_cert().0).unwrap();
    let e = common::client_with_certs(no_client.path())
        .resolve(&r, &host, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("client.cert without client.key"), "{e}");

    // An insecure registry (by CIDR) skips verification: no CA needed, the client cert still is.
    let insecure = RegistryClient::new(berth_distribution::ClientConfig {
        insecure_registries: vec!["127.0.0.0/8".into()],
        certs_dir: certs.path().to_path_buf(),
        ..Default::default()
    });
    std::fs::remove_file(host_dir.join("ca.crt")).unwrap();
    assert_eq!(insecure.resolve(&r, &host, None).await.unwrap().digest, d);
}
