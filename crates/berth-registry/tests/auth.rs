//! Basic (htpasswd) and bearer token auth, driven as a Docker client would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use berth_registry::{ServerConfig, TokenConfig};
use bytes::Bytes;
use common::*;
use hyper::StatusCode;
use std::time::Duration;

fn htpasswd(dir: &std::path::Path) -> std::path::PathBuf {
    // Cost 4 keeps the test fast; the file uses the $2y$ prefix Apache's htpasswd -B writes.
    let hash = bcrypt::hash("s3cret", 4).unwrap().replacen("$2b$", "$2y$", 1);
    let p = dir.join("htpasswd");
    std::fs::write(&p, format!("alice:{hash}\n")).unwrap();
    p
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

#[tokio::test]
async fn basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        htpasswd: Some(htpasswd(dir.path())),
        ..ServerConfig::default()
    };
    let s = start_with(cfg, None).await;
    let r = s.get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"berth-registry\""));
    assert_eq!(r.code(), "UNAUTHORIZED");
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));

    let good = basic("alice", "s3cret");
    let r = s.req("GET", "/v2/", &[("authorization", &good)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK);
    for bad in [basic("alice", "wrong"), basic("mallory", "s3cret"), "Basic !!!".into()] {
        let r = s.req("GET", "/v2/", &[("authorization", &bad)], Bytes::new()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    // Repository endpoints too, and a push works with credentials.
    let r = s.req("POST", "/v2/a/blobs/uploads/", &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let d = berth_types::Digest::sha256(b"x");
    let r = s
        .req(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={d}"),
            &[("authorization", &good)],
            Bytes::from_static(b"x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

fn token_cfg(realm: String) -> TokenConfig {
    TokenConfig {
        realm,
        service: "berth-test".into(),
        key: b"0123456789abcdef0123456789abcdef".to_vec(),
        ttl: Duration::from_secs(300),
    }
}

/// Parses `Bearer realm="..",service="..",scope=".."` into (realm, service, scope).
fn challenge(v: &str) -> (String, String, Option<String>) {
    let rest = v.strip_prefix("Bearer ").unwrap();
    let mut realm = String::new();
    let mut service = String::new();
    let mut scope = None;
    for part in rest.split("\",") {
        let (k, v) = part.split_once('=').unwrap();
        let v = v.trim_matches('"').to_string();
        match k {
            "realm" => realm = v,
            "service" => service = v,
            "scope" => scope = Some(v),
            _ => {}
        }
    }
    (realm, service, scope)
}

#[tokio::test]
async fn bearer_token_flow() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        htpasswd: Some(htpasswd(dir.path())),
        token: Some(token_cfg("http://127.0.0.1:5000/token".into())),
        ..ServerConfig::default()
    };
    let s = start_with(cfg, None).await;

    // 1. The challenge.
    let r = s.get("/v2/lib/app/tags/list").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (realm, service, scope) = challenge(r.header("www-authenticate").unwrap());
    assert!(realm.ends_with("/token"), "{realm}");
    assert_eq!(service, "berth-test");
    assert_eq!(scope.as_deref(), Some("repository:lib/app:pull"));
    let r = s.req("POST", "/v2/lib/app/blobs/uploads/", &[], Bytes::new()).await;
    let (_, _, scope) = challenge(r.header("www-authenticate").unwrap());
    assert_eq!(scope.as_deref(), Some("repository:lib/app:pull,push"));

    // 2. Wrong password, or none: no token.
    let q = "/token?service=berth-test&scope=repository:lib/app:pull,push";
    let r = s
        .req("GET", q, &[("authorization", &basic("alice", "nope"))], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get(q).await.status, StatusCode::UNAUTHORIZED);

    // 3. A token, and the request succeeds with it.
    let r = s
        .req("GET", q, &[("authorization", &basic("alice", "s3cret"))], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    let token = j["token"].as_str().unwrap().to_string();
    assert_eq!(j["access_token"], j["token"]);
    assert_eq!(j["expires_in"], 300);
    assert!(j["issued_at"].as_str().unwrap().ends_with('Z'));
    let bearer = format!("Bearer {token}");
    let d = berth_types::Digest::sha256(b"layer");
    let r = s
        .req(
            "POST",
            &format!("/v2/lib/app/blobs/uploads/?digest={d}"),
            &[("authorization", &bearer)],
            Bytes::from_static(b"layer"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = s
        .req(
            "GET",
            &format!("/v2/lib/app/blobs/{d}"),
            &[("authorization", &bearer)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s.req("GET", "/v2/", &[("authorization", &bearer)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK);

    // 4. The token is scoped: another repository, or the catalog, is refused.
    let r = s
        .req(
            "GET",
            &format!("/v2/lib/other/blobs/{d}"),
            &[("authorization", &bearer)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().contains("insufficient_scope"));
    let r = s
        .req("GET", "/v2/_catalog", &[("authorization", &bearer)], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"registry:catalog:*\""));

    // 5. A pull-only token cannot push; a tampered token is refused.
    let r = s
        .req(
            "GET",
            "/token?service=berth-test&scope=repository:lib/app:pull",
            &[("authorization", &basic("alice", "s3cret"))],
            Bytes::new(),
        )
        .await;
    let pull_only = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let r = s
        .req(
            "POST",
            "/v2/lib/app/blobs/uploads/",
            &[("authorization", &pull_only)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let r = s
        .req(
            "GET",
            &format!("/v2/lib/app/blobs/{d}"),
            &[("authorization", &format!("Bearer {forged}"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // 6. containerd's OAuth2 password grant.
    let form = "grant_type=password&username=alice&password=s3cret&service=berth-test&scope=repository%3Alib%2Fapp%3Apull&client_id=containerd";
    let r = s
        .req(
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from_static(form.as_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let t = r.json()["access_token"].as_str().unwrap().to_string();
    let r = s
        .req(
            "GET",
            &format!("/v2/lib/app/blobs/{d}"),
            &[("authorization", &format!("Bearer {t}"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let bad = form.replace("s3cret", "wrong");
    let r = s.req("POST", "/token", &[], Bytes::from(bad)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_tokens_are_pull_only_without_htpasswd() {
    let cfg = ServerConfig {
        token: Some(token_cfg("http://127.0.0.1/token".into())),
        ..ServerConfig::default()
    };
    let s = start_with(cfg, None).await;
    let r = s.get("/token?service=berth-test&scope=repository:a:pull,push").await;
    assert_eq!(r.status, StatusCode::OK);
    let bearer = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let r = s
        .req("GET", "/v2/a/tags/list", &[("authorization", &bearer)], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "authorized, but no such repository");
    let r = s
        .req(
            "POST",
            "/v2/a/blobs/uploads/",
            &[("authorization", &bearer)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
