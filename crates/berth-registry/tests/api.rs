//! The distribution API end to end over HTTP on 127.0.0.1, written from the OCI distribution spec.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_registry::ServerConfig;
use berth_types::Digest;
use bytes::Bytes;
use common::*;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn base_endpoint_and_version_header() {
    let s = start().await;
    let r = s.get("/v2/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    let r = s.get("/v2/nothing/here/x").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
}

/// A blob large enough to be served from a memory map (and several of its chunks): whole and a
/// range across a chunk boundary come back byte for byte.
#[tokio::test]
async fn large_blobs_whole_and_by_range() {
    let s = start().await;
    let data: Vec<u8> = (0..(9u32 << 20) + 12345).map(|i| (i % 251) as u8).collect();
    let d = s.push_blob("big/one", &data).await;
    let r = s.get(&format!("/v2/big/one/blobs/{d}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body[..] == data[..]);
    let (from, to) = ((4u64 << 20) - 10, (8u64 << 20) + 10);
    let r = s
        .req(
            "GET",
            &format!("/v2/big/one/blobs/{d}"),
            &[("range", &format!("bytes={from}-{to}"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert!(r.body[..] == data[from as usize..=to as usize]);
}

#[tokio::test]
async fn monolithic_push_then_pull_with_ranges() {
    let s = start().await;
    let data = b"0123456789".to_vec();
    let d = s.push_blob("a/b", &data).await;

    let r = s.req("HEAD", &format!("/v2/a/b/blobs/{d}"), &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.header("docker-content-digest"), Some(d.to_string().as_str()));
    assert!(r.body.is_empty());

    let r = s.get(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &data[..]);
    assert_eq!(r.header("docker-content-digest"), Some(d.to_string().as_str()));

    let r = s
        .req(
            "GET",
            &format!("/v2/a/b/blobs/{d}"),
            &[("range", "bytes=2-4")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.body[..], b"234");
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    let r = s
        .req(
            "GET",
            &format!("/v2/a/b/blobs/{d}"),
            &[("range", "bytes=20-")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);

    // Another repository was not given the blob.
    let r = s.get(&format!("/v2/other/blobs/{d}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UNKNOWN");
    // A bad digest.
    let r = s.get("/v2/a/b/blobs/sha256:nothex").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");

    // Delete the repository's link.
    let r = s.req("DELETE", &format!("/v2/a/b/blobs/{d}"), &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(s.get(&format!("/v2/a/b/blobs/{d}")).await.status, StatusCode::NOT_FOUND);
    let r = s.req("DELETE", &format!("/v2/a/b/blobs/{d}"), &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn post_then_put_and_chunked_upload() {
    let s = start().await;
    // POST, then PUT with the whole body.
    let r = s
        .req("POST", "/v2/r/blobs/uploads/", &[("content-length", "0")], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").unwrap().to_string();
    assert!(r.header("docker-upload-uuid").is_some());
    let d = Digest::sha256(b"whole");
    let r = s
        .req("PUT", &format!("{loc}?digest={d}"), &[], Bytes::from_static(b"whole"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.header("location"), Some(format!("/v2/r/blobs/{d}").as_str()));

    // Chunked: two PATCHes, an out-of-order one refused, status, final chunk on the PUT.
    let data = b"aaaaabbbbbccccc";
    let d = Digest::sha256(data);
    let r = s.req("POST", "/v2/r/blobs/uploads/", &[], Bytes::new()).await;
    let loc = r.header("location").unwrap().to_string();
    let r = s
        .req(
            "PATCH",
            &loc,
            &[("content-range", "0-4"), ("content-type", "application/octet-stream")],
            Bytes::from_static(b"aaaaa"),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    assert_eq!(r.header("range"), Some("0-4"));
    let loc = r.header("location").unwrap().to_string();
    let r = s
        .req(
            "PATCH",
            &loc,
            &[("content-range", "10-14")],
            Bytes::from_static(b"ccccc"),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(r.header("range"), Some("0-4"), "tells where to resume");
    let r = s.get(&loc).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), Some("0-4"));
    let r = s
        .req("PATCH", &loc, &[("content-range", "5-9")], Bytes::from_static(b"bbbbb"))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-9"));
    // A chunk whose Content-Range does not match its length is refused and changes nothing.
    let r = s
        .req("PATCH", &loc, &[("content-range", "10-19")], Bytes::from_static(b"xx"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get(&loc).await.header("range"), Some("0-9"));
    let r = s
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("content-range", "10-14")],
            Bytes::from_static(b"ccccc"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = s.get(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(&r.body[..], data);
    // The session is gone.
    assert_eq!(s.get(&loc).await.status, StatusCode::NOT_FOUND);
    assert!(s.files_under("uploads").is_empty());

    // Cancel.
    let r = s.req("POST", "/v2/r/blobs/uploads/", &[], Bytes::new()).await;
    let loc = r.header("location").unwrap().to_string();
    assert_eq!(
        s.req("DELETE", &loc, &[], Bytes::new()).await.status,
        StatusCode::NO_CONTENT
    );
    let r = s.get(&loc).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    // A session belongs to its repository.
    let r = s.req("POST", "/v2/r/blobs/uploads/", &[], Bytes::new()).await;
    let loc = r.header("location").unwrap().replace("/v2/r/", "/v2/q/");
    assert_eq!(s.get(&loc).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = start().await;
    let d = s.push_blob("src", b"shared layer").await;
    let r = s
        .req(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some(format!("/v2/dst/blobs/{d}").as_str()));
    assert_eq!(&s.get(&format!("/v2/dst/blobs/{d}")).await.body[..], b"shared layer");
    // Not in the source repository: an upload session starts instead.
    let other = Digest::sha256(b"absent");
    let r = s
        .req(
            "POST",
            &format!("/v2/dst2/blobs/uploads/?mount={other}&from=src"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.header("location").unwrap().starts_with("/v2/dst2/blobs/uploads/"));
    // Knowing the digest is not enough: mounting from a repo that was never given it falls back.
    let r = s
        .req(
            "POST",
            &format!("/v2/dst3/blobs/uploads/?mount={d}&from=nobody"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn manifests_by_tag_and_digest() {
    let s = start().await;
    let (m, d) = s.push_image("lib/app", "1").await;
    let r = s.put_manifest("lib/app", "v1", OCI_MANIFEST, &m).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.header("docker-content-digest"), Some(d.to_string().as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/lib/app/manifests/{d}").as_str())
    );

    for reference in ["v1".to_string(), d.to_string()] {
        let r = s.get(&format!("/v2/lib/app/manifests/{reference}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &m[..], "stored verbatim");
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(d.to_string().as_str()));
        let r = s
            .req("HEAD", &format!("/v2/lib/app/manifests/{reference}"), &[], Bytes::new())
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-length"), Some(m.len().to_string().as_str()));
        assert!(r.body.is_empty());
    }
    // Manifests are also served by the blobs endpoint, as Docker's registry does.
    assert_eq!(&s.get(&format!("/v2/lib/app/blobs/{d}")).await.body[..], &m[..]);
    let r = s.get("/v2/lib/app/manifests/nope").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    let r = s.get("/v2/lib/none/manifests/v1").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));
    let r = s.get("/v2/lib/app/manifests/-bad").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "TAG_INVALID"));

    // Push by digest with extra tags.
    let (m2, d2) = s.push_image("lib/app", "2").await;
    let r = s
        .req(
            "PUT",
            &format!("/v2/lib/app/manifests/{d2}?tag=a&tag=b"),
            &[("content-type", OCI_MANIFEST)],
            m2.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let tags: Vec<_> = r
        .headers
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(tags, vec!["a", "b"]);
    assert_eq!(
        s.get("/v2/lib/app/tags/list").await.json()["tags"],
        serde_json::json!(["a", "b", "v1"])
    );

    // Delete a tag, then a manifest by digest (its tags go with it).
    assert_eq!(
        s.req("DELETE", "/v2/lib/app/manifests/v1", &[], Bytes::new())
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(s.get("/v2/lib/app/manifests/v1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("/v2/lib/app/manifests/{d}")).await.status,
        StatusCode::OK
    );
    let r = s
        .req("DELETE", &format!("/v2/lib/app/manifests/{d2}"), &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        s.get(&format!("/v2/lib/app/manifests/{d2}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get("/v2/lib/app/manifests/a").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get("/v2/lib/app/tags/list").await.json()["tags"],
        serde_json::json!([])
    );
    let r = s
        .req("DELETE", &format!("/v2/lib/app/manifests/{d2}"), &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // An index over the remaining manifest.
    let idx = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": m.len()}]});
    let idx = serde_json::to_vec(&idx).unwrap();
    assert_eq!(
        s.put_manifest("lib/app", "multi", OCI_INDEX, &idx).await.status,
        StatusCode::CREATED
    );
    // An index whose child is not in the repository.
    let idx2 = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d2.to_string(), "size": m2.len()}]});
    let r = s
        .put_manifest("lib/app", "multi2", OCI_INDEX, &serde_json::to_vec(&idx2).unwrap())
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
}

#[tokio::test]
async fn invalid_manifests_are_refused() {
    let s = start_with(
        ServerConfig {
            max_manifest_bytes: 64 * 1024,
            ..ServerConfig::default()
        },
        None,
    )
    .await;
    let (m, d) = s.push_image("x", "1").await;
    // Missing blob.
    let missing = Digest::sha256(b"never pushed");
    let bad = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": missing.to_string(), "size": 12}, "layers": []});
    let r = s
        .put_manifest("x", "t", OCI_MANIFEST, &serde_json::to_vec(&bad).unwrap())
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    // Blob present in another repository only.
    let r = s.put_manifest("y", "t", OCI_MANIFEST, &m).await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    // Too big (413), by Content-Length.
    let mut huge = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST});
    huge["annotations"] = serde_json::json!({"pad": "x".repeat(100 * 1024)});
    let r = s
        .put_manifest("x", "t", OCI_MANIFEST, &serde_json::to_vec(&huge).unwrap())
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID")
    );
    // Schema 1, not JSON, Content-Type mismatch.
    let s1 = br#"{"schemaVersion":1,"name":"x","tag":"t","fsLayers":[],"history":[]}"#;
    let r = s
        .put_manifest(
            "x",
            "t",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            s1,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
    let r = s.put_manifest("x", "t", OCI_MANIFEST, b"{not json").await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let r = s
        .put_manifest("x", "t", "application/vnd.docker.distribution.manifest.v2+json", &m)
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
    // Digest-addressed PUT must match.
    let wrong = Digest::sha256(b"other");
    let r = s.put_manifest("x", &wrong.to_string(), OCI_MANIFEST, &m).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    // None of it was stored.
    assert_eq!(s.get("/v2/x/tags/list").await.json()["tags"], serde_json::json!([]));
    assert_eq!(
        s.get(&format!("/v2/x/manifests/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.put_manifest("x", &d.to_string(), OCI_MANIFEST, &m).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn tag_and_catalog_pagination() {
    let s = start().await;
    let (m, _) = s.push_image("p", "1").await;
    for t in ["t3", "t1", "T0", "t2", "t4"] {
        assert_eq!(
            s.put_manifest("p", t, OCI_MANIFEST, &m).await.status,
            StatusCode::CREATED
        );
    }
    let mut seen = Vec::new();
    let mut next = Some("/v2/p/tags/list?n=2".to_string());
    let mut pages = 0;
    while let Some(url) = next.take() {
        let r = s.get(&url).await;
        assert_eq!(r.status, StatusCode::OK);
        for t in r.json()["tags"].as_array().unwrap() {
            seen.push(t.as_str().unwrap().to_string());
        }
        next = r
            .header("link")
            .map(|l| l.trim_start_matches('<').split('>').next().unwrap().to_string());
        if let Some(l) = r.header("link") {
            assert!(l.ends_with("; rel=\"next\""), "{l}");
        }
        pages += 1;
    }
    assert_eq!(seen, vec!["T0", "t1", "t2", "t3", "t4"]);
    assert_eq!(pages, 3);
    let r = s.get("/v2/p/tags/list?n=0").await;
    assert_eq!(r.json()["tags"], serde_json::json!([]));
    assert!(r.header("link").is_none());
    let r = s.get("/v2/p/tags/list?last=t2").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["t3", "t4"]));
    let r = s.get("/v2/unknown/tags/list").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));

    for repo in ["c/b", "a", "c/a"] {
        s.push_blob(repo, b"x").await;
    }
    let r = s.get("/v2/_catalog").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(["a", "c/a", "c/b", "p"]));
    let r = s.get("/v2/_catalog?n=2").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(["a", "c/a"]));
    assert_eq!(r.header("link"), Some("</v2/_catalog?n=2&last=c%2Fa>; rel=\"next\""));
    let r = s.get("/v2/_catalog?n=2&last=c%2Fa").await;
    assert_eq!(r.json()["repositories"], serde_json::json!(["c/b", "p"]));
}

#[tokio::test]
async fn referrers_api() {
    let s = start().await;
    let (m, d) = s.push_image("r", "img").await;
    assert_eq!(
        s.put_manifest("r", "v1", OCI_MANIFEST, &m).await.status,
        StatusCode::CREATED
    );
    let empty = s.push_blob("r", b"{}").await;
    let sig = s.push_blob("r", b"signature").await;
    let art = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig.to_string(), "size": 9}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": m.len()},
        "annotations": {"org.example": "yes"}
    });
    let art = serde_json::to_vec(&art).unwrap();
    let ad = Digest::sha256(&art);
    let r = s.put_manifest("r", &ad.to_string(), OCI_MANIFEST, &art).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.header("oci-subject"), Some(d.to_string().as_str()));

    let r = s.get(&format!("/v2/r/referrers/{d}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    let j = r.json();
    assert_eq!(j["mediaType"], OCI_INDEX);
    let list = j["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], ad.to_string());
    assert_eq!(list[0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(list[0]["annotations"]["org.example"], "yes");
    assert_eq!(list[0]["size"], art.len());

    let r = s
        .get(&format!("/v2/r/referrers/{d}?artifactType=application/vnd.example.sig"))
        .await;
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
    let r = s.get(&format!("/v2/r/referrers/{d}?artifactType=other")).await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 0);
    // The subject need not exist; unknown subjects give an empty list, bad digests 400.
    let r = s.get(&format!("/v2/r/referrers/{}", Digest::sha256(b"z"))).await;
    assert_eq!(
        (r.status, r.json()["manifests"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    assert_eq!(s.get("/v2/r/referrers/sha256:zz").await.status, StatusCode::BAD_REQUEST);
    // Deleting the referrer takes it off the list.
    s.req("DELETE", &format!("/v2/r/manifests/{ad}"), &[], Bytes::new())
        .await;
    let r = s.get(&format!("/v2/r/referrers/{d}")).await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let s = start().await;
    let wrong = Digest::sha256(b"something else");
    let r = s
        .req(
            "POST",
            &format!("/v2/m/blobs/uploads/?digest={wrong}"),
            &[],
            Bytes::from_static(b"payload"),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    // Chunked, wrong digest at the PUT.
    let r = s.req("POST", "/v2/m/blobs/uploads/", &[], Bytes::new()).await;
    let loc = r.header("location").unwrap().to_string();
    s.req("PATCH", &loc, &[], Bytes::from_static(b"payload")).await;
    let r = s.req("PUT", &format!("{loc}?digest={wrong}"), &[], Bytes::new()).await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert!(s.files_under("blobs").is_empty(), "{:?}", s.files_under("blobs"));
    assert!(s.files_under("uploads").is_empty(), "{:?}", s.files_under("uploads"));
    assert_eq!(
        s.get(&format!("/v2/m/blobs/{}", Digest::sha256(b"payload")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn path_tricks_are_refused() {
    let s = start().await;
    for path in [
        "/v2/a/../b/tags/list",
        "/v2/../../etc/tags/list",
        "/v2/a/%2e%2e/b/tags/list",
        "/v2/%2e%2e/blobs/uploads/",
        "/v2/a//b/tags/list",
        "/v2/A/tags/list",
        "/v2/a/./b/tags/list",
        "/v2/_layers/tags/list",
    ] {
        let r = s.req("POST", path, &[], Bytes::new()).await;
        let r2 = s.get(path).await;
        for r in [r, r2] {
            assert!(
                r.status == StatusCode::BAD_REQUEST && r.code() == "NAME_INVALID"
                    || r.status == StatusCode::METHOD_NOT_ALLOWED,
                "{path}: {r:?}"
            );
        }
    }
    let long = format!("/v2/{}/tags/list", "a".repeat(256));
    assert_eq!(s.get(&long).await.code(), "NAME_INVALID");
    let r = s.get("/v2/a/blobs/uploads/..%2f..%2fetc").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!s.root.join("etc").exists());
    assert!(s.files_under("repositories").is_empty());
}

#[tokio::test]
async fn cut_off_upload_leaves_nothing() {
    let s = start().await;
    let d = Digest::sha256(&[7u8; 100_000]);
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /v2/cut/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&[7u8; 30_000]).await.unwrap();
    tcp.flush().await.unwrap();
    // Let the server start writing the session, then hang up midway.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(tcp);
    let mut clean = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if s.files_under("uploads").is_empty() {
            clean = true;
            break;
        }
    }
    assert!(clean, "upload session left: {:?}", s.files_under("uploads"));
    assert!(s.files_under("blobs").is_empty());
    assert_eq!(s.get(&format!("/v2/cut/blobs/{d}")).await.status, StatusCode::NOT_FOUND);

    // A cut-off chunk leaves the session as it was before the chunk.
    let r = s.req("POST", "/v2/cut/blobs/uploads/", &[], Bytes::new()).await;
    let loc = r.header("location").unwrap().to_string();
    s.req("PATCH", &loc, &[], Bytes::from_static(b"12345")).await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!("PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&[1u8; 100]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(tcp);
    let mut range = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let r = s.get(&loc).await;
        range = r.header("range").map(String::from);
        let len = std::fs::metadata(s.files_under("uploads").iter().find(|p| p.ends_with("data")).unwrap())
            .unwrap()
            .len();
        if range.as_deref() == Some("0-4") && len == 5 {
            break;
        }
    }
    assert_eq!(range.as_deref(), Some("0-4"));
    let d = Digest::sha256(b"1234567");
    let r = s
        .req("PUT", &format!("{loc}?digest={d}"), &[], Bytes::from_static(b"67"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

#[tokio::test]
async fn deletes_can_be_disabled() {
    let s = start_with(
        ServerConfig {
            delete_enabled: false,
            ..ServerConfig::default()
        },
        None,
    )
    .await;
    let (m, d) = s.push_image("n", "1").await;
    s.put_manifest("n", "v", OCI_MANIFEST, &m).await;
    for path in [format!("/v2/n/manifests/{d}"), "/v2/n/manifests/v".into()] {
        let r = s.req("DELETE", &path, &[], Bytes::new()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
        );
    }
    assert_eq!(s.get("/v2/n/manifests/v").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_pulls() {
    let s = std::sync::Arc::new(start().await);
    let data: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let d = s.push_blob("big", &data).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let s = s.clone();
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let r = s.get(&format!("/v2/big/blobs/{d}")).await;
            assert_eq!(r.status, StatusCode::OK);
            Digest::sha256(&r.body)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), d);
    }
}

#[tokio::test]
async fn http_keep_alive_and_raw_head() {
    // HEAD over a raw connection: Content-Length is the blob's size and no body follows.
    let s = start().await;
    let d = s.push_blob("k", b"abcdef").await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let req = format!("HEAD /v2/k/blobs/{d} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.to_ascii_lowercase().contains("content-length: 6\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "{out}");
}

#[tokio::test]
async fn upload_survives_a_restart_and_shutdown_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = start_with(ServerConfig::new(&root), None).await;
    let r = s.req("POST", "/v2/re/blobs/uploads/", &[], Bytes::new()).await;
    let loc = r.header("location").unwrap().to_string();
    let r = s
        .req("PATCH", &loc, &[("content-range", "0-4")], Bytes::from_static(b"hello"))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    drop(s);

    // A new server on the same root picks the session up (its hash state is rebuilt from disk).
    let s = start_with(ServerConfig::new(&root), None).await;
    assert_eq!(s.get(&loc).await.header("range"), Some("0-4"));
    let d = Digest::sha256(b"hello world");
    let r = s
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("content-range", "5-10")],
            Bytes::from_static(b" world"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(&s.get(&format!("/v2/re/blobs/{d}")).await.body[..], b"hello world");

    // serve() returns once shutdown resolves, even with an idle keep-alive connection open.
    let reg = berth_registry::Registry::open(ServerConfig::new(&root)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(berth_registry::serve(reg, listener, async move {
        let _ = rx.await;
    }));
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    idle.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    tx.send(()).unwrap();
    let res = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    assert!(matches!(res, Ok(Ok(Ok(())))), "{res:?}");
}

#[tokio::test]
async fn oversized_chunked_manifest_is_refused() {
    // No Content-Length: the cap is enforced while reading.
    let s = start_with(
        ServerConfig {
            max_manifest_bytes: 1024,
            ..ServerConfig::default()
        },
        None,
    )
    .await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PUT /v2/big/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..4 {
        let chunk = vec![b' '; 512];
        tcp.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        tcp.write_all(&chunk).await.unwrap();
        tcp.write_all(b"\r\n").await.unwrap();
    }
    tcp.write_all(b"0\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 12];
    tcp.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 413");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_the_same_and_different_blobs() {
    let s = std::sync::Arc::new(start().await);
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // Half push the same content (deduplicated), half their own.
            let data = if i % 2 == 0 {
                vec![42u8; 200_000]
            } else {
                vec![i as u8; 100_000 + i as usize]
            };
            let d = Digest::sha256(&data);
            let repo = format!("c/r{}", i % 5);
            let r = s
                .req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], Bytes::new())
                .await;
            let loc = r.header("location").unwrap().to_string();
            let (a, b) = data.split_at(data.len() / 2);
            let r = s
                .req(
                    "PATCH",
                    &loc,
                    &[("content-range", &format!("0-{}", a.len() - 1))],
                    Bytes::copy_from_slice(a),
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED);
            let r = s
                .req("PUT", &format!("{loc}?digest={d}"), &[], Bytes::copy_from_slice(b))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
            let got = s.get(&format!("/v2/{repo}/blobs/{d}")).await;
            assert_eq!(Digest::sha256(&got.body), d);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(s.files_under("uploads").is_empty());
    assert_eq!(s.files_under("blobs").len(), 21);
}
