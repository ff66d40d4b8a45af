//! The HTTP side: routing `/v2/...` requests to the store, auth checks, and the accept loop.
//! Each handler follows one section of the distribution spec; the comments name it.

use crate::auth::{self, Access, Claims};
use crate::error::{ApiError, Code, RegistryError};
use crate::manifest::{self, Kind};
use crate::names::{self, is_valid_name, is_valid_tag, parse_form, parse_route, query_escape, Reference, Route};
use crate::range::{parse_content_range, parse_range, RangeRequest};
use crate::storage::{hash_file, Hasher, UPLOAD_EXPIRY};
use crate::Registry;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_types::Digest;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tower::ServiceExt;

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");
const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
const BASIC_CHALLENGE: &str = "Basic realm=\"berth-registry\"";

/// The running state of an upload session (kept in memory between PATCHes).
pub(crate) struct UploadState {
    /// The repository that owns the session.
    repo: String,
    /// Bytes received so far.
    size: u64,
    /// Hash of those bytes; `None` when unknown (the server restarted mid-upload): the data file is
    /// hashed again at the end.
    hasher: Option<Hasher>,
    /// Last use, to forget abandoned sessions.
    touched: Instant,
}

pub(crate) fn router(reg: Registry) -> Router {
    Router::new()
        .route("/token", get(token_get).post(token_post))
        .fallback(dispatch)
        .layer(axum::middleware::map_response(add_api_version))
        .with_state(reg)
}

/// Every response carries the API version header (Docker clients look for it on `/v2/`).
async fn add_api_version(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn dispatch(State(reg): State<Registry>, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = match handle(&reg, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(target: "berth_registry::access", "{method} {path} {}", resp.status().as_u16());
    resp
}

/// Runs blocking store work off the executor.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, RegistryError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(format!("blocking task failed: {e}"))),
    }
}

fn response(status: StatusCode, headers: Vec<(HeaderName, String)>, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

fn header_str<'a>(h: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse()
        .map_err(|e| ApiError::new(Code::DigestInvalid, format!("invalid digest {s:?}: {e}")))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------------------------------------
// Auth

/// Who is calling, once authenticated.
enum Identity {
    /// No auth configured.
    Open,
    /// Basic auth (full access).
    User,
    /// A bearer token.
    Token(Claims),
}

impl Identity {
    fn allows(&self, kind: &str, name: &str, actions: &[&str]) -> bool {
        match self {
            Identity::Open | Identity::User => true,
            Identity::Token(c) => actions.iter().any(|a| c.allows(kind, name, a)),
        }
    }
}

/// What a request needs: nothing beyond authentication, the catalog, or one of some actions on a
/// repository (`challenge` is the scope's action list clients should ask for).
enum Need<'a> {
    Login,
    Catalog,
    Repo {
        name: &'a str,
        any_of: &'static [&'static str],
        challenge: &'static str,
    },
}

async fn check_basic(reg: &Registry, headers: &HeaderMap) -> bool {
    if reg.inner.htpasswd.is_none() {
        return false;
    }
    let Some((user, pass)) = header_str(headers, &header::AUTHORIZATION).and_then(auth::parse_basic) else {
        return false;
    };
    let reg = reg.clone();
    tokio::task::spawn_blocking(move || reg.inner.htpasswd.as_ref().is_some_and(|h| h.verify(&user, &pass)))
        .await
        .unwrap_or(false)
}

async fn authorize(reg: &Registry, headers: &HeaderMap, need: &Need<'_>) -> Result<Identity, ApiError> {
    let cfg = &reg.inner.cfg;
    if let Some(tc) = &cfg.token {
        let scope = match need {
            Need::Login => None,
            Need::Catalog => Some("registry:catalog:*".to_string()),
            Need::Repo { name, challenge, .. } => Some(format!("repository:{name}:{challenge}")),
        };
        let mut challenge = format!("Bearer realm=\"{}\",service=\"{}\"", tc.realm, tc.service);
        if let Some(s) = &scope {
            challenge.push_str(&format!(",scope=\"{s}\""));
        }
        let token = header_str(headers, &header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let Some(token) = token else {
            return Err(ApiError::unauthorized(challenge, "authentication required"));
        };
        let claims = auth::verify(&tc.key, token.trim(), &tc.service, now_secs())
            .map_err(|e| ApiError::unauthorized(format!("{challenge},error=\"invalid_token\""), e.to_string()))?;
        let id = Identity::Token(claims);
        let ok = match need {
            Need::Login => true,
            Need::Catalog => id.allows("registry", "catalog", &["*"]),
            Need::Repo { name, any_of, .. } => id.allows("repository", name, any_of),
        };
        if !ok {
            return Err(ApiError::unauthorized(
                format!("{challenge},error=\"insufficient_scope\""),
                "insufficient scope",
            ));
        }
        return Ok(id);
    }
    if reg.inner.htpasswd.is_some() {
        if check_basic(reg, headers).await {
            return Ok(Identity::User);
        }
        return Err(ApiError::unauthorized(
            BASIC_CHALLENGE.into(),
            "authentication required",
        ));
    }
    Ok(Identity::Open)
}

/// `/token` (GET, Docker's token protocol): basic credentials in, a signed token out.
async fn token_get(State(reg): State<Registry>, req: Request) -> Response {
    let q = parse_form(req.uri().query().unwrap_or(""));
    let scopes: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
        .collect();
    let creds = header_str(req.headers(), &header::AUTHORIZATION).and_then(auth::parse_basic);
    issue_token(&reg, creds, &scopes).await
}

/// `/token` (POST, OAuth2 password grant as containerd sends it).
async fn token_post(State(reg): State<Registry>, req: Request) -> Response {
    let body = match Body::new(http_body_util::Limited::new(req.into_body(), 64 * 1024))
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return ApiError::new(Code::Unsupported, "bad token request")
                .with_status(StatusCode::BAD_REQUEST)
                .into_response()
        }
    };
    let form = parse_form(&String::from_utf8_lossy(&body));
    if query_get(&form, "grant_type") != Some("password") {
        return ApiError::new(Code::Unsupported, "only the password grant is supported")
            .with_status(StatusCode::BAD_REQUEST)
            .into_response();
    }
    let creds = match (query_get(&form, "username"), query_get(&form, "password")) {
        (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
        _ => None,
    };
    let scopes: Vec<String> = query_get(&form, "scope")
        .map(|s| s.split(' ').map(String::from).collect())
        .unwrap_or_default();
    issue_token(&reg, creds, &scopes).await
}

async fn issue_token(reg: &Registry, creds: Option<(String, String)>, scopes: &[String]) -> Response {
    let Some(tc) = reg.inner.cfg.token.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (sub, authenticated) = match (&reg.inner.htpasswd, creds) {
        (Some(_), Some((user, pass))) => {
            let r = reg.clone();
            let u = user.clone();
            let ok =
                tokio::task::spawn_blocking(move || r.inner.htpasswd.as_ref().is_some_and(|h| h.verify(&u, &pass)))
                    .await
                    .unwrap_or(false);
            if !ok {
                return ApiError::unauthorized(BASIC_CHALLENGE.into(), "invalid username or password").into_response();
            }
            (user, true)
        }
        (Some(_), None) => {
            return ApiError::unauthorized(BASIC_CHALLENGE.into(), "credentials required").into_response();
        }
        (None, _) => (String::new(), false),
    };
    let requested: Vec<Access> = scopes
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| Access::parse_scope(s))
        .collect();
    let now = now_secs();
    let ttl = tc.ttl.as_secs().max(1) as i64;
    let claims = Claims {
        sub,
        aud: tc.service.clone(),
        iat: now,
        exp: now + ttl,
        access: auth::grant(&requested, authenticated),
    };
    let token = auth::sign(&tc.key, &claims);
    let issued_at = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": ttl,
        "issued_at": issued_at,
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Dispatch

async fn handle(reg: &Registry, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let route = parse_route(parts.uri.path())
        .ok_or_else(|| ApiError::new(Code::Unsupported, "no such endpoint").with_status(StatusCode::NOT_FOUND))?;
    if let Some(name) = route.name() {
        if !is_valid_name(name) {
            return Err(ApiError::new(Code::NameInvalid, "invalid repository name")
                .with_detail(serde_json::json!({ "name": name })));
        }
    }
    let q = parse_form(parts.uri.query().unwrap_or(""));
    let m = &parts.method;
    let h = &parts.headers;
    let read = m == Method::GET || m == Method::HEAD;
    const PULL: &[&str] = &["pull"];
    const PUSH: &[&str] = &["push"];
    const DELETE: &[&str] = &["delete", "push"];
    let need = match (&route, route.name()) {
        (Route::Base, _) => Need::Login,
        (Route::Catalog, _) => Need::Catalog,
        (Route::Upload { .. } | Route::UploadStart { .. }, Some(name)) => Need::Repo {
            name,
            any_of: PUSH,
            challenge: "pull,push",
        },
        (_, Some(name)) if read => Need::Repo {
            name,
            any_of: PULL,
            challenge: "pull",
        },
        (_, Some(name)) if m == Method::DELETE => Need::Repo {
            name,
            any_of: DELETE,
            challenge: "delete",
        },
        (_, Some(name)) => Need::Repo {
            name,
            any_of: PUSH,
            challenge: "pull,push",
        },
        (_, None) => Need::Login,
    };
    let id = authorize(reg, h, &need).await?;
    let not_allowed = || {
        ApiError::new(Code::Unsupported, format!("method {m} not allowed")).with_status(StatusCode::METHOD_NOT_ALLOWED)
    };
    match route {
        Route::Base if read => Ok(json_response(StatusCode::OK, "{}".into(), vec![])),
        Route::Catalog if read => catalog(reg, &q).await,
        Route::Blob { name, digest } if read => get_blob(reg, &name, &digest, h, m == Method::HEAD).await,
        Route::Blob { name, digest } if m == Method::DELETE => delete_blob(reg, &name, &digest).await,
        Route::UploadStart { name } if m == Method::POST => {
            let (reg, h) = (reg.clone(), h.clone());
            detached(async move { start_upload(&reg, &id, &name, &q, &h, body).await }).await
        }
        Route::Upload { name, id: uid } => {
            if !names::is_valid_upload_id(&uid) {
                return Err(ApiError::new(Code::BlobUploadUnknown, "unknown upload"));
            }
            let (reg2, h2) = (reg.clone(), h.clone());
            match *m {
                Method::GET | Method::HEAD => upload_status(reg, &name, &uid).await,
                Method::PATCH => detached(async move { patch_upload(&reg2, &name, &uid, &h2, body).await }).await,
                Method::PUT => detached(async move { put_upload(&reg2, &name, &uid, &q, &h2, body).await }).await,
                Method::DELETE => cancel_upload(reg, &name, &uid).await,
                _ => Err(not_allowed()),
            }
        }
        Route::Manifest { name, reference } if read => get_manifest(reg, &name, &reference, m == Method::HEAD).await,
        Route::Manifest { name, reference } if m == Method::PUT => {
            put_manifest(reg, &name, &reference, &q, h, body).await
        }
        Route::Manifest { name, reference } if m == Method::DELETE => delete_manifest(reg, &name, &reference).await,
        Route::Tags { name } if read => tags(reg, &name, &q).await,
        Route::Referrers { name, digest } if read => referrers(reg, &name, &digest, &q).await,
        _ => Err(not_allowed()),
    }
}

/// Runs an upload handler as its own task, so that it runs to completion (and cleans up after a
/// body cut off midway) even when hyper drops the request future because the connection died.
async fn detached<F>(fut: F) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    tokio::spawn(fut)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("upload task failed: {e}"))))
}

fn json_response(status: StatusCode, body: String, mut headers: Vec<(HeaderName, String)>) -> Response {
    headers.push((header::CONTENT_TYPE, "application/json".into()));
    response(status, headers, Body::from(body))
}

// ---------------------------------------------------------------------------------------------
// Blobs ("Pulling blobs", "Checking if content exists", "Deleting Blobs")

async fn get_blob(reg: &Registry, name: &str, digest: &str, h: &HeaderMap, head: bool) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let store = reg.inner.store.clone();
    let (n, dd) = (name.to_string(), d.clone());
    let size = blocking(move || store.has_blob(&n, &dd)).await?.ok_or_else(|| {
        ApiError::new(Code::BlobUnknown, "blob unknown to registry")
            .with_detail(serde_json::json!({"digest": d.to_string()}))
    })?;
    let mut headers = vec![
        (DOCKER_CONTENT_DIGEST, d.to_string()),
        (header::ACCEPT_RANGES, "bytes".to_string()),
        (header::ETAG, format!("\"{d}\"")),
        (header::CACHE_CONTROL, "max-age=31536000".to_string()),
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
    ];
    if head {
        headers.push((header::CONTENT_LENGTH, size.to_string()));
        return Ok(response(StatusCode::OK, headers, Body::empty()));
    }
    let (status, start, len) = match parse_range(header_str(h, &header::RANGE), size) {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Partial { start, end } => {
            headers.push((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            return Ok(response(
                StatusCode::RANGE_NOT_SATISFIABLE,
                vec![(header::CONTENT_RANGE, format!("bytes */{size}"))],
                Body::empty(),
            ))
        }
    };
    let path = reg.inner.store.blob_path(&d);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        // Removed by gc between the stat and the open.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(Code::BlobUnknown, "blob unknown to registry"))
        }
        Err(e) => return Err(ApiError::internal(format!("open {}: {e}", path.display()))),
    };
    headers.push((header::CONTENT_LENGTH, len.to_string()));
    if len >= MAP_AT_LEAST {
        if let Some(stream) = mapped(&file, start, len) {
            return Ok(response(status, headers, Body::from_stream(stream)));
        }
    }
    if start > 0 {
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))
            .map_err(|e| ApiError::internal(format!("seek {}: {e}", path.display())))?;
    }
    Ok(response(status, headers, Body::from_stream(read_ahead(file, len))))
}

/// Blobs this large are sent from a memory map of the file.
const MAP_AT_LEAST: u64 = 1 << 20;

/// `len` bytes of `file` from `start` as chunks of a read-only memory map: the socket writes take
/// them straight from the page cache, with no read into a buffer first. `None` when the file
/// cannot be mapped (the caller reads it instead).
fn mapped(
    file: &std::fs::File,
    start: u64,
    len: u64,
) -> Option<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>>> {
    const CHUNK: usize = 4 << 20;
    // SAFETY: blobs are immutable once stored: written to a temporary file, verified, then renamed
    // into place, never written or truncated afterwards (a delete only unlinks, and the mapping
    // keeps the inode). So the mapped bytes do not change under the readers.
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    let end = usize::try_from(start.checked_add(len)?).ok()?;
    if end > map.len() {
        return None;
    }
    let _ = map.advise(memmap2::Advice::Sequential);
    let all = bytes::Bytes::from_owner(map).slice(usize::try_from(start).ok()?..end);
    let chunks: Vec<std::io::Result<bytes::Bytes>> = (0..all.len())
        .step_by(CHUNK)
        .map(|at| Ok(all.slice(at..(at + CHUNK).min(all.len()))))
        .collect();
    Some(futures_util::stream::iter(chunks))
}

/// The next `len` bytes of `file` as a stream, read by one blocking thread a few MiB ahead of
/// the socket, so reading the disk and sending overlap (a tokio file reads, then waits for the
/// send, then reads again). The thread stops when the client goes away.
fn read_ahead(file: std::fs::File, len: u64) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    const CHUNK: u64 = 1 << 20;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = std::io::Read::take(file, len);
        let mut left = len;
        while left > 0 {
            let mut buf = vec![0u8; CHUNK.min(left) as usize];
            let item = match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob shorter than its size",
                )),
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    Ok(bytes::Bytes::from(buf))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

async fn delete_blob(reg: &Registry, name: &str, digest: &str) -> Result<Response, ApiError> {
    if !reg.inner.cfg.delete_enabled {
        return Err(ApiError::new(Code::Unsupported, "deletes are disabled"));
    }
    let d = parse_digest(digest)?;
    let store = reg.inner.store.clone();
    let (n, dd) = (name.to_string(), d.clone());
    if blocking(move || store.unlink_blob(&n, &dd)).await? {
        Ok(response(
            StatusCode::ACCEPTED,
            vec![(DOCKER_CONTENT_DIGEST, d.to_string())],
            Body::empty(),
        ))
    } else {
        Err(ApiError::new(Code::BlobUnknown, "blob unknown to registry"))
    }
}

// ---------------------------------------------------------------------------------------------
// Uploads ("Pushing blobs", "Mounting a blob from another repository")

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn session_headers(name: &str, id: &str, size: u64) -> Vec<(HeaderName, String)> {
    vec![
        (header::LOCATION, upload_location(name, id)),
        (header::RANGE, range_header(size)),
        (DOCKER_UPLOAD_UUID, id.to_string()),
    ]
}

fn blob_created(name: &str, d: &Digest) -> Response {
    response(
        StatusCode::CREATED,
        vec![
            (header::LOCATION, format!("/v2/{name}/blobs/{d}")),
            (DOCKER_CONTENT_DIGEST, d.to_string()),
        ],
        Body::empty(),
    )
}

async fn new_session(
    reg: &Registry,
    name: &str,
    algorithm: &str,
) -> Result<(String, Arc<tokio::sync::Mutex<UploadState>>), ApiError> {
    let hasher = Hasher::new(algorithm)
        .ok_or_else(|| ApiError::new(Code::DigestInvalid, format!("unsupported digest algorithm {algorithm}")))?;
    let id = names::new_upload_id().map_err(|e| ApiError::internal(RegistryError::Random(e.to_string())))?;
    let store = reg.inner.store.clone();
    let (i, n) = (id.clone(), name.to_string());
    blocking(move || store.create_upload(&i, &n)).await?;
    let st = Arc::new(tokio::sync::Mutex::new(UploadState {
        repo: name.to_string(),
        size: 0,
        hasher: Some(hasher),
        touched: Instant::now(),
    }));
    if let Ok(mut map) = reg.inner.uploads.lock() {
        // Forget sessions abandoned long ago (their directories go at the next open or gc).
        map.retain(|_, s| {
            s.try_lock()
                .map(|s| s.touched.elapsed() < UPLOAD_EXPIRY)
                .unwrap_or(true)
        });
        map.insert(id.clone(), st.clone());
    }
    Ok((id, st))
}

/// Finds a session of `name`: in memory, or on disk after a restart (hash state then unknown).
async fn find_session(reg: &Registry, name: &str, id: &str) -> Result<Arc<tokio::sync::Mutex<UploadState>>, ApiError> {
    let unknown = || ApiError::new(Code::BlobUploadUnknown, "blob upload unknown to registry");
    let existing = reg.inner.uploads.lock().ok().and_then(|m| m.get(id).cloned());
    if let Some(st) = existing {
        if st.lock().await.repo != name {
            return Err(unknown());
        }
        return Ok(st);
    }
    let store = reg.inner.store.clone();
    let (i, n) = (id.to_string(), name.to_string());
    let size = blocking(move || store.upload_size(&i, &n)).await?.ok_or_else(unknown)?;
    let st = Arc::new(tokio::sync::Mutex::new(UploadState {
        repo: name.to_string(),
        size,
        hasher: if size == 0 { Hasher::new("sha256") } else { None },
        touched: Instant::now(),
    }));
    if let Ok(mut map) = reg.inner.uploads.lock() {
        return Ok(map.entry(id.to_string()).or_insert(st).clone());
    }
    Ok(st)
}

fn forget_session(reg: &Registry, id: &str) {
    if let Ok(mut map) = reg.inner.uploads.lock() {
        map.remove(id);
    }
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    header_str(h, &header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

/// Streams a request body onto the end of the session's data file, hashing as it goes. On any
/// failure (client gone, size mismatch, disk error) the file is cut back to its previous length and
/// the hash state is kept as it was, so the session stays consistent.
async fn append(
    reg: &Registry,
    id: &str,
    st: &mut UploadState,
    body: Body,
    expect: Option<u64>,
) -> Result<(), ApiError> {
    let path = reg.inner.store.upload_data(id);
    let io_err = |e: std::io::Error| ApiError::internal(format!("upload {}: {e}", path.display()));
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ApiError::new(Code::BlobUploadUnknown, "blob upload unknown to registry")
            } else {
                io_err(e)
            }
        })?;
    file.set_len(st.size).await.map_err(io_err)?;
    let mut w = tokio::io::BufWriter::with_capacity(1 << 20, file);
    w.seek(std::io::SeekFrom::Start(st.size)).await.map_err(io_err)?;
    let mut hasher = st.hasher.clone();
    let mut written: u64 = 0;
    let mut stream = body.into_data_stream();
    let res: Result<(), ApiError> = async {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::new(Code::BlobUploadInvalid, format!("reading request body: {e}")))?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            w.write_all(&chunk).await.map_err(io_err)?;
            written += chunk.len() as u64;
        }
        if let Some(n) = expect {
            if n != written {
                return Err(ApiError::new(
                    Code::SizeInvalid,
                    format!("received {written} bytes, expected {n}"),
                ));
            }
        }
        w.flush().await.map_err(io_err)?;
        Ok(())
    }
    .await;
    if let Err(e) = res {
        let _ = w.flush().await;
        let _ = w.get_ref().set_len(st.size).await;
        return Err(e);
    }
    st.size += written;
    st.hasher = hasher;
    st.touched = Instant::now();
    Ok(())
}

/// Verifies the session's bytes hash to `d` and moves them into the store; on a mismatch the
/// session is dropped and nothing is stored.
async fn finish(reg: &Registry, name: &str, id: &str, st: &mut UploadState, d: &Digest) -> Result<Response, ApiError> {
    let got = match st.hasher.take() {
        Some(h) if h.algorithm() == d.algorithm() => h.finish(),
        _ => {
            let path = reg.inner.store.upload_data(id);
            let alg = d.algorithm().to_string();
            blocking(move || hash_file(&path, &alg)).await?
        }
    };
    let store = reg.inner.store.clone();
    if &got != d {
        let i = id.to_string();
        blocking(move || store.remove_upload(&i)).await?;
        forget_session(reg, id);
        return Err(
            ApiError::new(Code::DigestInvalid, "provided digest did not match uploaded content")
                .with_detail(serde_json::json!({"expected": d.to_string(), "actual": got.to_string()})),
        );
    }
    let (i, n, dd) = (id.to_string(), name.to_string(), d.clone());
    let res = blocking(move || store.commit_upload(&i, &n, &dd)).await;
    forget_session(reg, id);
    res?;
    Ok(blob_created(name, d))
}

async fn start_upload(
    reg: &Registry,
    who: &Identity,
    name: &str,
    q: &[(String, String)],
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(mount) = query_get(q, "mount") {
        let d = parse_digest(mount)?;
        // Mount only from a repository the caller may pull; otherwise fall back to an upload.
        if let Some(from) = query_get(q, "from").filter(|f| is_valid_name(f)) {
            if who.allows("repository", from, &["pull"]) {
                let store = reg.inner.store.clone();
                let (f, n, dd) = (from.to_string(), name.to_string(), d.clone());
                let mounted = blocking(move || {
                    if store.has_blob(&f, &dd)?.is_some() {
                        store.link_blob(&n, &dd)?;
                        Ok(true)
                    } else {
                        Ok(false)
                    }
                })
                .await?;
                if mounted {
                    return Ok(blob_created(name, &d));
                }
            }
        }
    }
    if let Some(digest) = query_get(q, "digest") {
        // Single-POST monolithic upload.
        let d = parse_digest(digest)?;
        let (id, st) = new_session(reg, name, d.algorithm()).await?;
        // The session is internal to this request: it goes whether the request fails or is
        // dropped mid-body (hyper drops the handler when the connection dies).
        let mut guard = DropSession {
            reg: reg.clone(),
            id: Some(id.clone()),
        };
        let mut st = st.lock().await;
        let res = match append(reg, &id, &mut st, body, content_length(h)).await {
            Ok(()) => finish(reg, name, &id, &mut st, &d).await,
            Err(e) => Err(e),
        };
        if res.is_ok() {
            guard.id = None;
        }
        return res;
    }
    let alg = query_get(q, "digest-algorithm").unwrap_or("sha256");
    let (id, _) = new_session(reg, name, alg).await?;
    let mut headers = session_headers(name, &id, 0);
    headers.push((header::CONTENT_LENGTH, "0".into()));
    Ok(response(StatusCode::ACCEPTED, headers, Body::empty()))
}

/// Removes an upload session when dropped, unless disarmed (`id` taken).
struct DropSession {
    reg: Registry,
    id: Option<String>,
}

impl Drop for DropSession {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        forget_session(&self.reg, &id);
        let store = self.reg.inner.store.clone();
        let remove = move || {
            if let Err(e) = store.remove_upload(&id) {
                tracing::warn!("registry: removing upload session {id}: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

async fn upload_status(reg: &Registry, name: &str, id: &str) -> Result<Response, ApiError> {
    let st = find_session(reg, name, id).await?;
    let size = st.lock().await.size;
    Ok(response(
        StatusCode::NO_CONTENT,
        session_headers(name, id, size),
        Body::empty(),
    ))
}

/// Checks a chunk's `Content-Range` against the session: 416 when out of order.
fn check_chunk(h: &HeaderMap, name: &str, id: &str, size: u64) -> Result<Option<u64>, ApiError> {
    let Some(cr) = header_str(h, &header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let out_of_order = || {
        ApiError::new(Code::BlobUploadInvalid, "chunk out of order")
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .with_header(header::LOCATION, upload_location(name, id))
            .with_header(header::RANGE, range_header(size))
            .with_header(DOCKER_UPLOAD_UUID, id)
    };
    let (start, end) = parse_content_range(cr).ok_or_else(out_of_order)?;
    if start != size {
        return Err(out_of_order());
    }
    Ok(Some(end - start + 1))
}

async fn patch_upload(reg: &Registry, name: &str, id: &str, h: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let st = find_session(reg, name, id).await?;
    let mut st = st.lock().await;
    let chunk_len = check_chunk(h, name, id, st.size)?;
    let expect = match (chunk_len, content_length(h)) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::new(
                Code::SizeInvalid,
                "Content-Range and Content-Length disagree",
            ))
        }
        (a, b) => a.or(b),
    };
    append(reg, id, &mut st, body, expect).await?;
    let mut headers = session_headers(name, id, st.size);
    headers.push((header::CONTENT_LENGTH, "0".into()));
    Ok(response(StatusCode::ACCEPTED, headers, Body::empty()))
}

async fn put_upload(
    reg: &Registry,
    name: &str,
    id: &str,
    q: &[(String, String)],
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let d = parse_digest(
        query_get(q, "digest").ok_or_else(|| ApiError::new(Code::DigestInvalid, "digest parameter missing"))?,
    )?;
    let st = find_session(reg, name, id).await?;
    let mut st = st.lock().await;
    let chunk_len = check_chunk(h, name, id, st.size)?;
    append(reg, id, &mut st, body, chunk_len.or(content_length(h))).await?;
    finish(reg, name, id, &mut st, &d).await
}

async fn cancel_upload(reg: &Registry, name: &str, id: &str) -> Result<Response, ApiError> {
    let st = find_session(reg, name, id).await?;
    let _guard = st.lock().await;
    let store = reg.inner.store.clone();
    let i = id.to_string();
    blocking(move || store.remove_upload(&i)).await?;
    forget_session(reg, id);
    Ok(response(StatusCode::NO_CONTENT, vec![], Body::empty()))
}

// ---------------------------------------------------------------------------------------------
// Manifests ("Pulling manifests", "Pushing Manifests", "Deleting tags/manifests")

fn parse_reference(s: &str) -> Result<Reference, ApiError> {
    Reference::parse(s).map_err(|e| match e {
        names::ReferenceError::Digest(s) => ApiError::new(Code::DigestInvalid, format!("invalid digest {s:?}")),
        names::ReferenceError::Tag(s) => ApiError::new(Code::TagInvalid, format!("invalid tag {s:?}")),
    })
}

fn manifest_unknown(name: &str, reference: &str) -> ApiError {
    ApiError::new(Code::ManifestUnknown, "manifest unknown to registry")
        .with_detail(serde_json::json!({"name": name, "reference": reference}))
}

async fn get_manifest(reg: &Registry, name: &str, reference: &str, head: bool) -> Result<Response, ApiError> {
    let r = parse_reference(reference)?;
    let store = reg.inner.store.clone();
    let n = name.to_string();
    let found = blocking(move || {
        if !store.repo_exists(&n) {
            return Ok(Err(Code::NameUnknown));
        }
        let d = match r {
            Reference::Digest(d) => d,
            Reference::Tag(t) => match store.tag(&n, &t)? {
                Some(d) => d,
                None => return Ok(Err(Code::ManifestUnknown)),
            },
        };
        let Some(media_type) = store.revision(&n, &d)? else {
            return Ok(Err(Code::ManifestUnknown));
        };
        let Some(data) = store.read_blob(&d)? else {
            return Ok(Err(Code::ManifestUnknown));
        };
        Ok(Ok((d, media_type, data)))
    })
    .await?;
    let (d, media_type, data) = match found {
        Ok(x) => x,
        Err(Code::NameUnknown) => {
            return Err(
                ApiError::new(Code::NameUnknown, "repository name not known to registry")
                    .with_detail(serde_json::json!({"name": name})),
            )
        }
        Err(_) => return Err(manifest_unknown(name, reference)),
    };
    let headers = vec![
        (header::CONTENT_TYPE, media_type),
        (DOCKER_CONTENT_DIGEST, d.to_string()),
        (header::ETAG, format!("\"{d}\"")),
        (header::CONTENT_LENGTH, data.len().to_string()),
    ];
    let body = if head { Body::empty() } else { Body::from(data) };
    Ok(response(StatusCode::OK, headers, body))
}

async fn put_manifest(
    reg: &Registry,
    name: &str,
    reference: &str,
    q: &[(String, String)],
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let r = parse_reference(reference)?;
    let max = reg.inner.cfg.max_manifest_bytes;
    let too_big = || {
        ApiError::new(Code::ManifestInvalid, format!("manifest larger than {max} bytes"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    if content_length(h).is_some_and(|n| n > max) {
        return Err(too_big());
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let data = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_big()),
        Err(e) => return Err(ApiError::new(Code::ManifestInvalid, format!("reading manifest: {e}"))),
    };
    let m = manifest::parse(&data, header_str(h, &header::CONTENT_TYPE)).map_err(|reason| {
        ApiError::new(Code::ManifestInvalid, "manifest invalid").with_detail(serde_json::json!({"reason": reason}))
    })?;
    let d = match &r {
        Reference::Digest(want) => {
            let got = crate::storage::digest_like(want, &data);
            if &got != want {
                return Err(
                    ApiError::new(Code::DigestInvalid, "manifest digest does not match the reference")
                        .with_detail(serde_json::json!({"expected": want.to_string(), "actual": got.to_string()})),
                );
            }
            got
        }
        Reference::Tag(_) => Digest::sha256(&data),
    };
    let mut tags: Vec<String> = Vec::new();
    if let Reference::Tag(t) = &r {
        tags.push(t.clone());
    } else {
        for (k, v) in q {
            if k == "tag" {
                if !is_valid_tag(v) {
                    return Err(ApiError::new(Code::TagInvalid, format!("invalid tag {v:?}")));
                }
                tags.push(v.clone());
            }
        }
    }
    let store = reg.inner.store.clone();
    let n = name.to_string();
    let (dd, tg) = (d.clone(), tags.clone());
    let subject = m.subject.as_ref().map(|s| s.digest.clone());
    let referrer = m
        .subject
        .as_ref()
        .map(|s| (s.digest.clone(), m.referrer_descriptor(&d, data.len())));
    let missing = blocking(move || {
        // Every referenced blob (config, layers) and child manifest must be in this repository;
        // the subject need not exist (spec, "Push").
        let mut missing = Vec::new();
        for desc in m.references() {
            let present = if m.kind == Kind::Index {
                store.revision(&n, &desc.digest)?.is_some()
            } else {
                desc.foreign || store.has_blob(&n, &desc.digest)?.is_some()
            };
            if !present {
                missing.push(desc.digest.to_string());
            }
        }
        if !missing.is_empty() {
            return Ok(missing);
        }
        store.put_manifest(&n, &dd, &m.media_type, &data)?;
        if let Some((subject, desc)) = &referrer {
            let bytes = serde_json::to_vec(desc).unwrap_or_default();
            store.add_referrer(&n, subject, &dd, &bytes)?;
        }
        for t in &tg {
            store.set_tag(&n, t, &dd)?;
        }
        Ok(missing)
    })
    .await?;
    if let Some(first) = missing.first() {
        return Err(ApiError::new(
            Code::ManifestBlobUnknown,
            format!("manifest references unknown blob {first}"),
        )
        .with_detail(serde_json::json!({"digest": first, "missing": missing})));
    }
    let mut headers = vec![
        (header::LOCATION, format!("/v2/{name}/manifests/{d}")),
        (DOCKER_CONTENT_DIGEST, d.to_string()),
    ];
    if let Reference::Digest(_) = r {
        for t in &tags {
            headers.push((OCI_TAG, t.clone()));
        }
    }
    if let Some(subject) = subject {
        headers.push((OCI_SUBJECT, subject.to_string()));
    }
    Ok(response(StatusCode::CREATED, headers, Body::empty()))
}

async fn delete_manifest(reg: &Registry, name: &str, reference: &str) -> Result<Response, ApiError> {
    if !reg.inner.cfg.delete_enabled {
        return Err(ApiError::new(Code::Unsupported, "deletes are disabled"));
    }
    let r = parse_reference(reference)?;
    let store = reg.inner.store.clone();
    let n = name.to_string();
    let deleted = blocking(move || match r {
        Reference::Tag(t) => store.delete_tag(&n, &t),
        Reference::Digest(d) => {
            let subject = store
                .read_blob(&d)?
                .and_then(|b| manifest::parse(&b, None).ok())
                .and_then(|m| m.subject);
            let existed = store.delete_manifest(&n, &d)?;
            if let (true, Some(s)) = (existed, subject) {
                store.remove_referrer(&n, &s.digest, &d)?;
            }
            Ok(existed)
        }
    })
    .await?;
    if deleted {
        Ok(response(StatusCode::ACCEPTED, vec![], Body::empty()))
    } else {
        Err(manifest_unknown(name, reference))
    }
}

// ---------------------------------------------------------------------------------------------
// Content discovery ("Listing Tags", catalog, "Listing Referrers")

/// Applies `n`/`last` pagination to a sorted list; returns the page and whether more follow.
fn paginate(all: Vec<String>, q: &[(String, String)]) -> (Vec<String>, Option<usize>, bool) {
    let n = query_get(q, "n").and_then(|v| v.parse::<usize>().ok());
    let mut items: Vec<String> = match query_get(q, "last") {
        Some(last) => all.into_iter().filter(|t| t.as_str() > last).collect(),
        None => all,
    };
    let more = match n {
        Some(n) if items.len() > n => {
            items.truncate(n);
            n > 0
        }
        _ => false,
    };
    (items, n, more)
}

fn next_link(path: &str, n: Option<usize>, items: &[String]) -> Option<(HeaderName, String)> {
    let (n, last) = (n?, items.last()?);
    Some((
        header::LINK,
        format!("<{path}?n={n}&last={}>; rel=\"next\"", query_escape(last)),
    ))
}

async fn tags(reg: &Registry, name: &str, q: &[(String, String)]) -> Result<Response, ApiError> {
    let store = reg.inner.store.clone();
    let n = name.to_string();
    let all = blocking(move || {
        if store.repo_exists(&n) {
            store.tags(&n).map(Some)
        } else {
            Ok(None)
        }
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(Code::NameUnknown, "repository name not known to registry")
            .with_detail(serde_json::json!({"name": name}))
    })?;
    let (page, n, more) = paginate(all, q);
    let mut headers = vec![];
    if more {
        headers.extend(next_link(&format!("/v2/{name}/tags/list"), n, &page));
    }
    let body = serde_json::json!({"name": name, "tags": page}).to_string();
    Ok(json_response(StatusCode::OK, body, headers))
}

async fn catalog(reg: &Registry, q: &[(String, String)]) -> Result<Response, ApiError> {
    let store = reg.inner.store.clone();
    let all = blocking(move || store.catalog()).await?;
    let (page, n, more) = paginate(all, q);
    let mut headers = vec![];
    if more {
        headers.extend(next_link("/v2/_catalog", n, &page));
    }
    let body = serde_json::json!({"repositories": page}).to_string();
    Ok(json_response(StatusCode::OK, body, headers))
}

async fn referrers(reg: &Registry, name: &str, digest: &str, q: &[(String, String)]) -> Result<Response, ApiError> {
    let subject = parse_digest(digest)?;
    let store = reg.inner.store.clone();
    let n = name.to_string();
    let mut list = blocking(move || {
        if store.repo_exists(&n) {
            store.referrers(&n, &subject)
        } else {
            Ok(Vec::new())
        }
    })
    .await?;
    let mut headers = vec![(header::CONTENT_TYPE, manifest::OCI_INDEX.to_string())];
    if let Some(t) = query_get(q, "artifactType") {
        list.retain(|d| d.get("artifactType").and_then(|v| v.as_str()) == Some(t));
        headers.push((OCI_FILTERS_APPLIED, "artifactType".into()));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": list,
    })
    .to_string();
    Ok(response(StatusCode::OK, headers, Body::from(body)))
}

// ---------------------------------------------------------------------------------------------
// Serving

pub(crate) async fn serve(
    reg: Registry,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryError> {
    let acceptor = reg.inner.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let router = reg.router();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("registry: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let stop = stop_rx.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    match acceptor {
                        None => serve_conn(stream, router, stop).await,
                        Some(a) => match tokio::time::timeout(Duration::from_secs(10), a.accept(stream)).await {
                            Ok(Ok(tls)) => serve_conn(tls, router, stop).await,
                            Ok(Err(e)) => tracing::debug!("registry: tls handshake with {peer}: {e}"),
                            Err(_) => tracing::debug!("registry: tls handshake with {peer} timed out"),
                        },
                    }
                });
            }
        }
    }
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain).await.is_err() {
        conns.abort_all();
    }
    Ok(())
}

async fn serve_conn<I>(io: I, router: Router, mut stop: tokio::sync::watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        router.clone().oneshot(req.map(Body::new))
    });
    // A client gets 30 s to send a request's headers (slowloris); bodies may take as long as
    // they need (layers are large).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!("registry: connection: {e}");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}
