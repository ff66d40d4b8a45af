//! Against small servers written here (test fixtures): a registry that tampers with a blob, one
//! that drops the connection mid-blob, a bearer token server with a resource server and a blob
//! store behind a redirect, tag pagination, schema 1 and oversized manifests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use berth_distribution::manifest::DOCKER_MANIFEST;
use berth_distribution::{AuthConfig, ClientConfig, Descriptor, DistributionError, Platform, RegistryClient};
use berth_types::{HasErrorKind, Reference};
use common::{bytes, client, collect, config, serve, Image};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn resp(status: StatusCode, headers: &[(&str, String)], body: impl Into<Body>) -> Response {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(body.into()).unwrap()
}

fn query(req: &Request) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' if i + 2 < b.len() => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// A registry that serves one blob and one manifest, with the blob's bytes altered.
#[derive(Clone)]
struct Tamper {
    blob: Vec<u8>,
    extra: bool,
}

async fn tamper_handler(State(s): State<Tamper>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/v2/" {
        return resp(StatusCode::OK, &[], "{}");
    }
    if path.contains("/blobs/") {
        let mut b = s.blob.clone();
        if s.extra {
            b.extend_from_slice(b"trailing junk");
        } else {
            b[10] ^= 0xff;
        }
        return resp(StatusCode::OK, &[], b);
    }
    resp(StatusCode::NOT_FOUND, &[], "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blob_is_refused() {
    let blob = bytes(21, 100_000);
    let desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar", &blob);
    for extra in [false, true] {
        let addr = serve(Router::new().fallback(tamper_handler).with_state(Tamper {
            blob: blob.clone(),
            extra,
        }))
        .await;
        let r = Reference::parse(&format!("{addr}/t:1")).unwrap();
        let (got, e) = collect(client().fetch_blob(&r, &desc, 0, None).await.unwrap())
            .await
            .unwrap_err();
        assert!(got.len() as u64 <= desc.size, "never more than the descriptor's size");
        if extra {
            assert!(matches!(e, DistributionError::SizeMismatch { .. }), "{e}");
        } else {
            assert_eq!(got.len(), blob.len());
            assert!(matches!(e, DistributionError::DigestMismatch { .. }), "{e}");
            assert!(e.to_string().contains("verification failed"), "{e}");
        }
    }
}

/// A raw HTTP/1.1 server for one blob: the first blob request is cut after `cut` bytes; later
/// ones honour `Range` (or, with `ignore_range`, answer 200 from byte 0).
async fn dropping_server(
    blob: Vec<u8>,
    cut: usize,
    ignore_range: bool,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let blob = Arc::new(blob);
    let first = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else { return };
            let (blob, seen, first) = (blob.clone(), seen2.clone(), first.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                    // A TLS ClientHello (the client tries HTTPS first): not HTTP, hang up.
                    if buf.first() == Some(&0x16) {
                        return;
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let line = text.lines().next().unwrap_or("").to_string();
                let range = text
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("range: bytes=")
                            .map(|r| r.trim_end_matches('-').to_string())
                    })
                    .and_then(|r| r.parse::<usize>().ok());
                if !line.contains("/blobs/") {
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                        .await;
                    return;
                }
                seen.lock().unwrap().push(format!("{line} range={range:?}"));
                if first.fetch_add(1, Ordering::SeqCst) == 0 {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        blob.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&blob[..cut]).await;
                    let _ = sock.flush().await;
                    return; // dropped: the connection closes mid-body
                }
                let (status, start) = match range {
                    Some(s) if !ignore_range => ("206 Partial Content", s),
                    _ => ("200 OK", 0),
                };
                let mut head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    blob.len() - start
                );
                if start > 0 {
                    head.push_str(&format!(
                        "Content-Range: bytes {start}-{}/{}\r\n",
                        blob.len() - 1,
                        blob.len()
                    ));
                }
                head.push_str("\r\n");
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&blob[start..]).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_dropped_connection() {
    let blob = bytes(31, 300_000);
    let desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar+gzip", &blob);
    for ignore_range in [false, true] {
        let (addr, seen) = dropping_server(blob.clone(), 123_456, ignore_range).await;
        let r = Reference::parse(&format!("{addr}/r:1")).unwrap();
        let got = collect(client().fetch_blob(&r, &desc, 0, None).await.unwrap())
            .await
            .unwrap();
        assert!(
            got == blob,
            "resumed bytes equal the blob (ignore_range={ignore_range})"
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].ends_with("range=None"), "{seen:?}");
        assert!(seen[1].ends_with("range=Some(123456)"), "{seen:?}");
    }
}

/// Token server, resource server and blob store for the bearer flow.
#[derive(Default)]
struct Bearer {
    realm: Mutex<String>,
    storage: Mutex<String>,
    /// token → scopes granted.
    tokens: Mutex<HashMap<String, Vec<String>>>,
    token_gets: AtomicUsize,
    token_posts: AtomicUsize,
    storage_auth_seen: Mutex<Vec<bool>>,
    manifest: Mutex<Vec<u8>>,
    blob: Mutex<Vec<u8>>,
}

const USER: &str = "alice";
const PASS: &str = "pw";
const REFRESH: &str = "refresh-alice";

fn basic_ok(h: &HeaderMap) -> Option<bool> {
    use base64::Engine as _;
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let raw = v.strip_prefix("Basic ")?;
    let dec = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    Some(dec == format!("{USER}:{PASS}").as_bytes())
}

async fn token_handler(State(s): State<Arc<Bearer>>, req: Request) -> Response {
    let q = query(&req);
    let (scopes, user_ok, offline) = if req.method() == Method::POST {
        s.token_posts.fetch_add(1, Ordering::SeqCst);
        let body = axum::body::to_bytes(req.into_body(), 1 << 16).await.unwrap();
        let form: HashMap<String, String> = String::from_utf8(body.to_vec())
            .unwrap()
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.replace("%3A", ":")
                        .replace("%2F", "/")
                        .replace("%2C", ",")
                        .replace("%20", " "),
                )
            })
            .collect();
        let ok = form.get("grant_type").map(String::as_str) == Some("refresh_token")
            && form.get("refresh_token").map(String::as_str) == Some(REFRESH);
        let scopes = form
            .get("scope")
            .map(|s| s.split(' ').map(String::from).collect())
            .unwrap_or_default();
        (scopes, Some(ok), false)
    } else {
        s.token_gets.fetch_add(1, Ordering::SeqCst);
        let scopes: Vec<String> = q.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
        let offline = q.iter().any(|(k, v)| k == "offline_token" && v == "true");
        (scopes, basic_ok(req.headers()), offline)
    };
    if user_ok == Some(false) {
        return resp(
            StatusCode::UNAUTHORIZED,
            &[],
            r#"{"details":"incorrect username or password"}"#,
        );
    }
    // Anonymous users get a token without any access.
    let granted = if user_ok == Some(true) { scopes } else { Vec::new() };
    let token = format!("tok-{}", s.tokens.lock().unwrap().len());
    s.tokens.lock().unwrap().insert(token.clone(), granted);
    let mut body = serde_json::json!({"token": token, "expires_in": 300});
    if offline && user_ok == Some(true) {
        body["refresh_token"] = REFRESH.into();
    }
    resp(
        StatusCode::OK,
        &[("content-type", "application/json".into())],
        body.to_string(),
    )
}

async fn resource_handler(State(s): State<Arc<Bearer>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from);
    let granted = token.and_then(|t| s.tokens.lock().unwrap().get(&t).cloned());
    let realm = s.realm.lock().unwrap().clone();
    let challenge = |scope: Option<&str>| {
        let mut c = format!(r#"Bearer realm="{realm}",service="berth-test""#);
        if let Some(sc) = scope {
            c.push_str(&format!(r#",scope="{sc}""#));
        }
        resp(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", c)],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
    };
    if path == "/v2/" {
        return if granted.is_some() {
            resp(StatusCode::OK, &[], "{}")
        } else {
            challenge(None)
        };
    }
    let scope = "repository:app:pull";
    if !granted.is_some_and(|g| g.iter().any(|x| x == scope)) {
        return challenge(Some(scope));
    }
    match path.as_str() {
        "/v2/app/manifests/latest" => {
            let m = s.manifest.lock().unwrap().clone();
            resp(StatusCode::OK, &[("content-type", DOCKER_MANIFEST.into())], m)
        }
        p if p.starts_with("/v2/app/blobs/") => {
            let digest = p.trim_start_matches("/v2/app/blobs/");
            let to = format!("{}/storage/{digest}", s.storage.lock().unwrap());
            resp(StatusCode::TEMPORARY_REDIRECT, &[("location", to)], "")
        }
        "/v2/app/tags/list" => {
            let last = query(&req).into_iter().find(|(k, _)| k == "last").map(|(_, v)| v);
            match last.as_deref() {
                None => resp(
                    StatusCode::OK,
                    &[("link", r#"</v2/app/tags/list?n=2&last=b>; rel="next""#.into())],
                    r#"{"name":"app","tags":["a","b"]}"#,
                ),
                Some("b") => resp(StatusCode::OK, &[], r#"{"name":"app","tags":["c"]}"#),
                _ => resp(StatusCode::BAD_REQUEST, &[], ""),
            }
        }
        _ => resp(
            StatusCode::NOT_FOUND,
            &[],
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        ),
    }
}

async fn storage_handler(State(s): State<Arc<Bearer>>, req: Request) -> Response {
    s.storage_auth_seen
        .lock()
        .unwrap()
        .push(req.headers().contains_key(header::AUTHORIZATION));
    resp(StatusCode::OK, &[], s.blob.lock().unwrap().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_flow_login_tokens_redirect_and_tags() {
    let st = Arc::new(Bearer::default());
    let img = Image::new(false, "amd64", vec![bytes(41, 5000)]);
    *st.manifest.lock().unwrap() = img.manifest.clone();
    *st.blob.lock().unwrap() = img.layers[0].clone();
    let token_addr = serve(Router::new().fallback(token_handler).with_state(st.clone())).await;
    let storage_addr = serve(Router::new().fallback(storage_handler).with_state(st.clone())).await;
    let reg_addr = serve(Router::new().fallback(resource_handler).with_state(st.clone())).await;
    *st.realm.lock().unwrap() = format!("http://{token_addr}/token");
    *st.storage.lock().unwrap() = format!("http://{storage_addr}");
    let server = reg_addr.to_string();
    let r = Reference::parse(&format!("{server}/app")).unwrap();
    let host = Platform::parse("linux/amd64").unwrap();
    let creds = AuthConfig {
        username: USER.into(),
        password: PASS.into(),
        ..Default::default()
    };

    // Login asks an offline token and returns the refresh token as the identity token.
    let c = client();
    let out = c.login(&server, &creds).await.unwrap();
    assert_eq!(out.status, "Login Succeeded");
    assert_eq!(out.identity_token.as_deref(), Some(REFRESH));
    let bad = AuthConfig {
        password: "nope".into(),
        ..creds.clone()
    };
    let e = c.login(&server, &bad).await.unwrap_err();
    assert_eq!(e.kind().http_status(), 401, "{e}");
    assert!(
        e.to_string().contains("unauthorized: incorrect username or password"),
        "{e}"
    );

    // Pull with basic credentials: one token, then cached.
    let gets = st.token_gets.load(Ordering::SeqCst);
    let res = c.resolve(&r, &host, Some(&creds)).await.unwrap();
    assert_eq!(res.manifest, img.manifest);
    assert_eq!(st.token_gets.load(Ordering::SeqCst), gets + 1);
    c.clone().resolve(&r, &host, Some(&creds)).await.unwrap();
    assert_eq!(
        st.token_gets.load(Ordering::SeqCst),
        gets + 1,
        "a clone shares the token cache"
    );

    // Parallel pulls on a fresh client share one token request.
    let fresh = client();
    let gets = st.token_gets.load(Ordering::SeqCst);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (fresh, r, host, creds) = (fresh.clone(), r.clone(), host.clone(), creds.clone());
            tokio::spawn(async move { fresh.resolve(&r, &host, Some(&creds)).await.map(|x| x.digest) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(st.token_gets.load(Ordering::SeqCst), gets + 1);

    // The blob is redirected to another host, which never sees the registry's token.
    let got = collect(c.fetch_blob(&r, &res.layers[0], 0, Some(&creds)).await.unwrap())
        .await
        .unwrap();
    assert_eq!(got, img.layers[0]);
    assert_eq!(*st.storage_auth_seen.lock().unwrap(), vec![false]);

    // With the identity token, the token comes from the OAuth2 POST.
    let idt = AuthConfig {
        identitytoken: REFRESH.into(),
        ..Default::default()
    };
    let res2 = client().resolve(&r, &host, Some(&idt)).await.unwrap();
    assert_eq!(res2.digest, res.digest);
    assert_eq!(st.token_posts.load(Ordering::SeqCst), 1);

    // Anonymous: dockerd's "pull access denied", a 404 kind.
    let e = client().resolve(&r, &host, None).await.unwrap_err();
    assert_eq!(e.kind().http_status(), 404, "{e}");
    assert!(
        e.to_string()
            .contains("repository does not exist or may require 'docker login'"),
        "{e}"
    );

    // Tags follow Link pagination.
    assert_eq!(c.tags(&r, Some(&creds)).await.unwrap(), vec!["a", "b", "c"]);
}

#[derive(Clone)]
struct Odd {
    kind: &'static str,
    hits: Arc<AtomicUsize>,
}

async fn odd_handler(State(s): State<Odd>, req: Request) -> Response {
    if req.uri().path() == "/v2/" {
        return resp(StatusCode::OK, &[], "{}");
    }
    let hit = s.hits.fetch_add(1, Ordering::SeqCst);
    match s.kind {
        "flaky" if hit < 2 => resp(StatusCode::SERVICE_UNAVAILABLE, &[], "busy"),
        "flaky" => {
            let img = Image::new(false, "amd64", vec![bytes(52, 10)]);
            resp(
                StatusCode::OK,
                &[("content-type", DOCKER_MANIFEST.into())],
                img.manifest,
            )
        }
        "schema1" => resp(
            StatusCode::OK,
            &[(
                "content-type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            )],
            r#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[]}"#,
        ),
        "huge" => resp(
            StatusCode::OK,
            &[("content-type", DOCKER_MANIFEST.into())],
            vec![b' '; 5 << 20],
        ),
        _ => {
            let img = Image::new(false, "amd64", vec![bytes(51, 10)]);
            resp(
                StatusCode::OK,
                &[
                    ("content-type", DOCKER_MANIFEST.into()),
                    (
                        "docker-content-digest",
                        berth_types::Digest::sha256(b"something else").to_string(),
                    ),
                ],
                img.manifest,
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_schema1_huge_and_mismatched_manifests() {
    let host = Platform::parse("linux/amd64").unwrap();
    for kind in ["schema1", "huge", "mismatch"] {
        let addr = serve(Router::new().fallback(odd_handler).with_state(Odd {
            kind,
            hits: Arc::default(),
        }))
        .await;
        let r = Reference::parse(&format!("{addr}/x:1")).unwrap();
        let e = client().resolve(&r, &host, None).await.unwrap_err();
        match kind {
            "schema1" => assert!(matches!(e, DistributionError::Schema1 { .. }), "{e}"),
            "huge" => assert!(matches!(e, DistributionError::TooLarge { .. }), "{e}"),
            _ => assert!(matches!(e, DistributionError::DigestMismatch { .. }), "{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_503_with_backoff() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(Router::new().fallback(odd_handler).with_state(Odd {
        kind: "flaky",
        hits: hits.clone(),
    }))
    .await;
    let r = Reference::parse(&format!("{addr}/x:1")).unwrap();
    let start = std::time::Instant::now();
    let res = client()
        .resolve(&r, &Platform::parse("linux/amd64").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(res.layers.len(), 1);
    // 2 refusals then the manifest (pings are not counted); waited 100 ms + 200 ms.
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert!(start.elapsed() >= std::time::Duration::from_millis(300));
}

/// An upload endpoint that asks for 10 MiB chunks and answers with relative Locations.
#[derive(Default)]
struct Upload {
    patches: Mutex<Vec<(String, usize)>>,
    data: Mutex<Vec<u8>>,
    put: Mutex<Option<(String, usize)>>,
}

async fn upload_handler(State(s): State<Arc<Upload>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let q = query(&req);
    let range = req
        .headers()
        .get(header::CONTENT_RANGE)
        .map(|v| v.to_str().unwrap().to_string());
    match (method, path.as_str()) {
        (_, "/v2/") => resp(StatusCode::OK, &[], "{}"),
        (Method::POST, "/v2/up/blobs/uploads/") => resp(
            StatusCode::ACCEPTED,
            &[
                ("location", "/v2/up/blobs/uploads/s1?_state=0".into()),
                ("oci-chunk-min-length", (10usize << 20).to_string()),
            ],
            "",
        ),
        (Method::PATCH, "/v2/up/blobs/uploads/s1") => {
            let Ok(body) = axum::body::to_bytes(req.into_body(), 64 << 20).await else {
                return resp(StatusCode::BAD_REQUEST, &[], "the chunk was cut off");
            };
            s.patches.lock().unwrap().push((range.unwrap_or_default(), body.len()));
            s.data.lock().unwrap().extend_from_slice(&body);
            let n = s.patches.lock().unwrap().len();
            resp(StatusCode::ACCEPTED, &[("location", format!("s1?_state={n}"))], "")
        }
        (Method::PUT, "/v2/up/blobs/uploads/s1") => {
            let digest = q
                .iter()
                .find(|(k, _)| k == "digest")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let state = q
                .iter()
                .find(|(k, _)| k == "_state")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let body = axum::body::to_bytes(req.into_body(), 64 << 20).await.unwrap();
            s.data.lock().unwrap().extend_from_slice(&body);
            *s.put.lock().unwrap() = Some((format!("{digest} state={state}"), body.len()));
            resp(StatusCode::CREATED, &[], "")
        }
        _ => resp(StatusCode::NOT_FOUND, &[], ""),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_honours_min_chunk_and_relative_locations() {
    let st = Arc::new(Upload::default());
    let addr = serve(Router::new().fallback(upload_handler).with_state(st.clone())).await;
    let r = Reference::parse(&format!("{addr}/up:1")).unwrap();
    let blob = bytes(71, 25 << 20);
    let desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar", &blob);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s2 = sent.clone();
    // The client would send 4 MiB per PATCH; the registry asks for at least 10.
    let c = RegistryClient::new(ClientConfig {
        upload_chunk_size: 4 << 20,
        ..config()
    });
    c.push_blob(&r, &desc, blob.as_slice(), &move |n| s2.lock().unwrap().push(n), None)
        .await
        .unwrap();
    const M: usize = 10 << 20;
    assert_eq!(
        *st.patches.lock().unwrap(),
        vec![
            (format!("0-{}", M - 1), M),
            (format!("{}-{}", M, 2 * M - 1), M),
            (format!("{}-{}", 2 * M, blob.len() - 1), blob.len() - 2 * M),
        ]
    );
    assert_eq!(*st.put.lock().unwrap(), Some((format!("{} state=3", desc.digest), 0)));
    assert!(*st.data.lock().unwrap() == blob);
    // Progress moves while each chunk streams, never backwards, and ends at the size.
    let sent = sent.lock().unwrap();
    assert!(sent.len() >= 25, "{sent:?}");
    assert!(sent.windows(2).all(|w| w[0] <= w[1]), "{sent:?}");
    assert!(sent.contains(&(M as u64)) && sent.contains(&(2 * M as u64)), "{sent:?}");
    assert_eq!(sent.last(), Some(&(blob.len() as u64)));
}

/// A blob that is not what its descriptor says is refused before the registry commits it: the
/// final PUT never comes and the upload is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_of_wrong_content_never_commits() {
    let st = Arc::new(Upload::default());
    let addr = serve(Router::new().fallback(upload_handler).with_state(st.clone())).await;
    let r = Reference::parse(&format!("{addr}/up:1")).unwrap();
    let blob = bytes(72, 12 << 20);
    let desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar", &blob);
    let mut tampered = blob.clone();
    tampered[5 << 20] ^= 1;
    let err = client()
        .push_blob(&r, &desc, tampered.as_slice(), &|_| {}, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("verification failed"), "{err}");
    assert_eq!(*st.put.lock().unwrap(), None);
    // A short source aborts its PATCH instead of sending a chunk the registry would take as whole.
    let short = &blob[..11 << 20];
    let err = client().push_blob(&r, &desc, short, &|_| {}, None).await.unwrap_err();
    assert!(err.to_string().contains("expected 12582912 bytes"), "{err}");
    assert_eq!(*st.put.lock().unwrap(), None);
}

async fn search_handler(req: Request) -> Response {
    match req.uri().path() {
        "/v2/" => resp(StatusCode::OK, &[], "{}"),
        "/v1/search" => {
            let q = query(&req);
            assert!(q.contains(&("q".into(), "busy box".into())), "{q:?}");
            assert!(q.contains(&("n".into(), "5".into())), "{q:?}");
            resp(
                StatusCode::OK,
                &[("content-type", "application/json".into())],
                r#"{"num_results":1,"query":"busy box","results":[{"name":"busybox","description":"tiny","star_count":3,"is_official":true,"is_automated":false}]}"#,
            )
        }
        _ => resp(StatusCode::NOT_FOUND, &[], ""),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_uses_v1_search_when_present() {
    let addr = serve(Router::new().fallback(search_handler)).await;
    let found = client().search(&addr.to_string(), "busy box", 5, None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].name.as_str(), found[0].star_count, found[0].is_official),
        ("busybox", 3, true)
    );
}
