//! The registry client: the Docker Registry HTTP API v2 / OCI distribution spec
//! (`/work/shared/specs/oci-distribution/spec.md`) over hyper, with Docker's token auth.
//!
//! Every request goes through [`RegistryClient::send`]: it picks the endpoint (HTTPS, or the
//! HTTP fallback Docker allows), adds the credentials the registry's challenge asks for (Basic, or a
//! Bearer token fetched and cached per registry, scope and credentials), retries transient
//! failures of idempotent requests with exponential backoff, answers a 401 by fetching a fresh
//! token once, and follows redirects without carrying the registry's `Authorization` to another host.

use crate::auth::{parse_challenge, url_encode, AuthConfig, Challenge, TokenResponse};
use crate::blob::BlobStream;
use crate::error::{parse_error_body, DistributionError, Result};
use crate::manifest::{
    classify, parse_image_manifest, parse_index, select_platform, Descriptor, ManifestKind, Platform, MANIFEST_ACCEPT,
    MAX_MANIFEST_SIZE,
};
use crate::transport::{
    channel_body, full_body, Body, ClientConfig, Endpoint, Transport, DOCKER_HUB_DOMAIN, MONOLITHIC_MAX,
};
use berth_types::{Digest, Reference};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Attempts of an idempotent request (connect errors, 429, 5xx), and of a blob download's resumes.
pub const MAX_ATTEMPTS: u32 = 5;
/// First retry delay; doubled at each attempt (100, 200, 400, 800 ms).
pub const BACKOFF_START: Duration = Duration::from_millis(100);
/// Blobs up to this size are pushed in one PUT; larger ones in PATCH chunks of this size.
/// Time allowed for a response's headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Time allowed for a ping that has a fallback endpoint (HTTPS before HTTP).
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A manifest resolved for a platform: what `pull` needs to fetch the image.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Digest of the chosen image manifest.
    pub digest: Digest,
    /// Its media type (Docker schema 2 or OCI).
    pub media_type: String,
    /// Its bytes, verified against `digest`.
    pub manifest: Vec<u8>,
    /// The index or manifest list it was chosen from: digest and bytes.
    pub index: Option<(Digest, Vec<u8>)>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// The answer of a successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// A refresh token to store instead of the password, when the token server gave one.
    pub identity_token: Option<String>,
    /// `Login Succeeded`.
    pub status: String,
}

/// One result of `/v1/search` (Docker Hub's API, as dockerd relays it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Repository name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Stars.
    #[serde(default)]
    pub star_count: u64,
    /// Whether it is an official image.
    #[serde(default)]
    pub is_official: bool,
    /// Whether it is an automated build (deprecated).
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Clone)]
struct CachedToken {
    header: String,
    expires: Instant,
}

struct Inner {
    transport: Transport,
    /// Registry domain → the endpoint that answered its ping.
    chosen: Mutex<HashMap<String, Endpoint>>,
    /// Endpoint base → the challenge its `/v2/` answered (None: no auth).
    challenges: Mutex<HashMap<String, Option<Challenge>>>,
    /// (realm, service, scopes, credentials fingerprint) → token.
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    /// One fetch at a time per token key, so parallel layer downloads share one token request.
    token_fetches: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// (realm, service, scopes, credentials fingerprint).
type TokenKey = (String, String, String, String);

/// A registry client. Cheap to clone; clones share the connection pools and the token cache.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

/// A request to send: method, URL, extra headers, body.
pub(crate) struct Req {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Bytes,
    pub idempotent: bool,
}

impl Req {
    pub(crate) fn get(url: String) -> Req {
        Req {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: Bytes::new(),
            idempotent: true,
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these maps leaves it consistent (single inserts): keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `repository:<path>:pull`.
pub(crate) fn pull_scope(path: &str) -> String {
    format!("repository:{path}:pull")
}

fn push_scope(path: &str) -> String {
    format!("repository:{path}:pull,push")
}

/// Resolves a `Location` or `Link` target against the URL it came from.
pub(crate) fn resolve_url(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    if loc.starts_with("//") {
        return format!("{scheme}:{loc}");
    }
    if loc.starts_with('/') {
        return format!("{scheme}://{authority}{loc}");
    }
    let path = rest[authority.len()..].split('?').next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{scheme}://{authority}{dir}{loc}")
}

fn split_url(url: &str) -> Result<(&str, &str)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| DistributionError::InvalidArgument(format!("invalid URL {url:?}")))?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    Ok((scheme, authority))
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn append_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}

/// A digest of `bytes` with the algorithm of `like` (sha256 or sha512).
pub(crate) fn digest_like(like: &str, bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    if like == "sha512" {
        let hex = hex::encode(sha2::Sha512::digest(bytes));
        if let Ok(d) = format!("sha512:{hex}").parse() {
            return d;
        }
    }
    Digest::sha256(bytes)
}

fn credentials_fingerprint(auth: Option<&AuthConfig>) -> String {
    use sha2::Digest as _;
    match auth {
        None => String::new(),
        Some(a) if a.is_anonymous() => String::new(),
        Some(a) => {
            let raw = format!(
                "{}\0{}\0{}\0{}",
                a.username, a.password, a.identitytoken, a.registrytoken
            );
            hex::encode(sha2::Sha256::digest(raw.as_bytes()))
        }
    }
}

impl RegistryClient {
    /// A client with its own connection pools and token cache.
    pub fn new(config: ClientConfig) -> RegistryClient {
        RegistryClient {
            inner: Arc::new(Inner {
                transport: Transport::new(config),
                chosen: Mutex::new(HashMap::new()),
                challenges: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                token_fetches: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.transport.config
    }

    // ---- transport -------------------------------------------------------------------------

    /// One request, no auth, no redirects; retried with backoff on connect errors, and on 429
    /// and 5xx when idempotent. `attempts` bounds the tries.
    async fn send_once(
        &self,
        req: &Req,
        url: &str,
        authorization: Option<&str>,
        verify: bool,
        attempts: u32,
    ) -> Result<Response<Incoming>> {
        self.send_once_within(req, url, authorization, verify, attempts, RESPONSE_TIMEOUT)
            .await
    }

    /// [`Self::send_once`] with its own wait for the response headers.
    async fn send_once_within(
        &self,
        req: &Req,
        url: &str,
        authorization: Option<&str>,
        verify: bool,
        attempts: u32,
        timeout: Duration,
    ) -> Result<Response<Incoming>> {
        let (_, authority) = split_url(url)?;
        let client = self.inner.transport.client(authority, verify)?;
        let mut delay = BACKOFF_START;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut b = hyper::Request::builder()
                .method(req.method.clone())
                .uri(url)
                .header(header::USER_AGENT, self.config().user_agent.as_str());
            if let Some(a) = authorization {
                b = b.header(header::AUTHORIZATION, a);
            }
            for (n, v) in &req.headers {
                b = b.header(n, v.as_str());
            }
            if matches!(req.method, Method::PUT | Method::POST | Method::PATCH) {
                b = b.header(header::CONTENT_LENGTH, req.body.len());
            }
            let request = b
                .body(full_body(req.body.clone()))
                .map_err(|e| DistributionError::InvalidArgument(format!("building request {url}: {e}")))?;
            let result = tokio::time::timeout(timeout, client.request(request)).await;
            let (retry, outcome) = match result {
                Err(_) => (
                    req.idempotent,
                    Err(DistributionError::Connect {
                        registry: authority.into(),
                        reason: format!("no response to {} {url} within {timeout:?}", req.method),
                    }),
                ),
                Ok(Err(e)) => (
                    e.is_connect() || req.idempotent,
                    Err(DistributionError::Connect {
                        registry: authority.into(),
                        reason: berth_types::error_chain(&e),
                    }),
                ),
                Ok(Ok(resp)) => {
                    let s = resp.status();
                    let transient = s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error();
                    (transient && req.idempotent, Ok(resp))
                }
            };
            if !retry || attempt >= attempts {
                return outcome;
            }
            tracing::debug!(%url, attempt, "retrying registry request");
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    /// Pings `/v2/` of an endpoint and caches the challenge it answers with.
    async fn ping(&self, ep: &Endpoint, attempts: u32) -> Result<Option<Challenge>> {
        let base = ep.base();
        if let Some(c) = lock(&self.inner.challenges).get(&base) {
            return Ok(c.clone());
        }
        let url = format!("{base}/v2/");
        // Before a fallback, a TLS handshake that hangs must not hold the pull for long.
        let timeout = if attempts == 1 { PING_TIMEOUT } else { RESPONSE_TIMEOUT };
        let resp = self
            .send_once_within(&Req::get(url.clone()), &url, None, ep.verify, attempts, timeout)
            .await?;
        let status = resp.status();
        // Only a registry answers /v2/ with 200 or 401 (a TLS server asked in plain HTTP says 400).
        if !(status.is_success() || status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN) {
            return Err(status_error(resp, "pinging registry", &url).await);
        }
        let challenge = if status == StatusCode::UNAUTHORIZED {
            resp.headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(parse_challenge)
        } else {
            None
        };
        tracing::debug!(%base, status = %resp.status(), ?challenge, "registry ping");
        lock(&self.inner.challenges).insert(base, challenge.clone());
        Ok(challenge)
    }

    /// The endpoint of a registry domain (not a mirror): the first candidate that answers a ping.
    async fn registry_endpoint(&self, domain: &str) -> Result<Endpoint> {
        if let Some(ep) = lock(&self.inner.chosen).get(domain) {
            return Ok(ep.clone());
        }
        let candidates = self.inner.transport.endpoints(domain, false);
        let fallback = candidates.len() > 1;
        let mut first_err = None;
        for ep in candidates {
            // With a fallback, one try each: Docker does not retry a ping before falling back.
            match self.ping(&ep, if fallback { 1 } else { 3 }).await {
                Ok(_) => {
                    lock(&self.inner.chosen).insert(domain.to_string(), ep.clone());
                    return Ok(ep);
                }
                Err(e) => {
                    tracing::debug!(endpoint = %ep.base(), "registry ping failed: {e}");
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| DistributionError::Connect {
            registry: domain.into(),
            reason: "no endpoint".into(),
        }))
    }

    /// The docker.io mirrors to try before the registry, for pulls.
    fn mirrors(&self, domain: &str, for_pull: bool) -> Vec<Endpoint> {
        self.inner
            .transport
            .endpoints(domain, for_pull)
            .into_iter()
            .filter(|e| e.mirror)
            .collect()
    }

    /// The `Authorization` value for `scopes` under `challenge`; `refresh` skips the cache.
    async fn authorization(
        &self,
        challenge: Option<&Challenge>,
        scopes: &[String],
        auth: Option<&AuthConfig>,
        refresh: bool,
    ) -> Result<Option<String>> {
        let (realm, service) = match challenge {
            None => return Ok(None),
            Some(Challenge::Basic) => return Ok(auth.and_then(AuthConfig::basic)),
            Some(Challenge::Bearer { realm, service, .. }) => (realm, service),
        };
        if let Some(a) = auth.filter(|a| !a.registrytoken.is_empty()) {
            return Ok(Some(format!("Bearer {}", a.registrytoken)));
        }
        let key = (
            realm.clone(),
            service.clone().unwrap_or_default(),
            scopes.join(" "),
            credentials_fingerprint(auth),
        );
        let cached = |inner: &Inner| {
            lock(&inner.tokens)
                .get(&key)
                .filter(|t| t.expires > Instant::now())
                .map(|t| t.header.clone())
        };
        if !refresh {
            if let Some(h) = cached(&self.inner) {
                return Ok(Some(h));
            }
        }
        let gate = lock(&self.inner.token_fetches).entry(key.clone()).or_default().clone();
        let _fetching = gate.lock().await;
        // Another task may have fetched it while this one waited.
        if !refresh {
            if let Some(h) = cached(&self.inner) {
                return Ok(Some(h));
            }
        }
        let resp = self.fetch_token(realm, service.as_deref(), scopes, auth, false).await?;
        let token = resp.bearer().ok_or_else(|| DistributionError::Token {
            realm: realm.clone(),
            reason: "the answer has no token".into(),
            status: Some(200),
        })?;
        let header = format!("Bearer {token}");
        // The token spec's default lifetime is 60 s; renew 10 s early.
        let ttl = resp.expires_in.unwrap_or(60).max(20);
        lock(&self.inner.tokens).insert(
            key,
            CachedToken {
                header: header.clone(),
                expires: Instant::now() + Duration::from_secs(ttl - 10),
            },
        );
        Ok(Some(header))
    }

    /// Asks the token server (distribution's token spec): POST with the OAuth2 refresh-token grant
    /// when an identity token is given (falling back to GET when the server has no OAuth2
    /// endpoint), else GET with Basic credentials when given, anonymously otherwise.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        auth: Option<&AuthConfig>,
        offline: bool,
    ) -> Result<TokenResponse> {
        let auth = auth.filter(|a| !a.is_anonymous());
        let (scheme, authority) = split_url(realm)?;
        let verify = self.inner.transport.verify_for(scheme, authority);
        let token_err = |reason: String, status: Option<u16>| DistributionError::Token {
            realm: realm.into(),
            reason,
            status,
        };
        if let Some(a) = auth.filter(|a| !a.identitytoken.is_empty()) {
            let mut form = vec![
                "grant_type=refresh_token".to_string(),
                format!("refresh_token={}", url_encode(&a.identitytoken)),
                "client_id=berth".to_string(),
            ];
            if let Some(s) = service {
                form.push(format!("service={}", url_encode(s)));
            }
            if !scopes.is_empty() {
                form.push(format!("scope={}", url_encode(&scopes.join(" "))));
            }
            let req = Req {
                method: Method::POST,
                url: realm.into(),
                headers: vec![(header::CONTENT_TYPE, "application/x-www-form-urlencoded".into())],
                body: Bytes::from(form.join("&")),
                idempotent: true,
            };
            let resp = self.send_once(&req, realm, None, verify, MAX_ATTEMPTS).await?;
            let status = resp.status();
            if status.is_success() {
                let body = read_limited(resp, 1 << 20, "token", realm).await?;
                return serde_json::from_slice(&body)
                    .map_err(|e| token_err(format!("invalid token answer: {e}"), Some(status.as_u16())));
            }
            if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
                let body = read_limited(resp, 64 << 10, "token", realm).await.unwrap_or_default();
                let (_, msg) = parse_error_body(&body);
                return Err(token_err(format!("{status}: {msg}"), Some(status.as_u16())));
            }
        }
        let mut query = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", url_encode(s)));
        }
        for s in scopes {
            query.push(format!("scope={}", url_encode(s)));
        }
        if let Some(a) = auth.filter(|a| !a.username.is_empty()) {
            query.push(format!("account={}", url_encode(&a.username)));
        }
        if offline {
            query.push("offline_token=true".into());
            query.push("client_id=berth".into());
        }
        let url = if query.is_empty() {
            realm.to_string()
        } else {
            append_query(realm, &query.join("&"))
        };
        let basic = auth.and_then(AuthConfig::basic);
        let resp = self
            .send_once(&Req::get(url.clone()), &url, basic.as_deref(), verify, MAX_ATTEMPTS)
            .await?;
        let status = resp.status();
        let body = read_limited(resp, 1 << 20, "token", realm).await?;
        if !status.is_success() {
            let (_, msg) = parse_error_body(&body);
            return Err(token_err(format!("{status}: {msg}"), Some(status.as_u16())));
        }
        serde_json::from_slice(&body)
            .map_err(|e| token_err(format!("invalid token answer: {e}"), Some(status.as_u16())))
    }

    /// Sends `req` to an endpoint with credentials for `scopes`, answering one 401 with a fresh
    /// token and following up to 5 redirects of GET/HEAD.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        mut req: Req,
        scopes: &[String],
        auth: Option<&AuthConfig>,
    ) -> Result<Response<Incoming>> {
        let challenge = self.ping(ep, MAX_ATTEMPTS).await?;
        let mut authz = self.authorization(challenge.as_ref(), scopes, auth, false).await?;
        let mut url = req.url.clone();
        let mut verify = ep.verify;
        let mut retried_auth = false;
        let mut redirects = 0;
        loop {
            let on_registry = split_url(&url)?.1 == ep.authority;
            let resp = self
                .send_once(
                    &req,
                    &url,
                    authz.as_deref().filter(|_| on_registry),
                    verify,
                    MAX_ATTEMPTS,
                )
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && on_registry && !retried_auth {
                retried_auth = true;
                let fresh = resp
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(parse_challenge);
                if let Some(c) = fresh {
                    let mut scopes = scopes.to_vec();
                    if let Challenge::Bearer { scope: Some(s), .. } = &c {
                        if !scopes.contains(s) {
                            scopes.push(s.clone());
                        }
                    }
                    let refreshed = self.authorization(Some(&c), &scopes, auth, true).await?;
                    if refreshed.is_some() && refreshed != authz {
                        lock(&self.inner.challenges).insert(ep.base(), Some(c));
                        authz = refreshed;
                        continue;
                    }
                }
                return Ok(resp);
            }
            if status.is_redirection() && matches!(req.method, Method::GET | Method::HEAD) && redirects < 5 {
                if let Some(loc) = header_str(resp.headers(), "location") {
                    url = resolve_url(&url, loc);
                    let (scheme, authority) = split_url(&url)?;
                    verify = if authority == ep.authority {
                        ep.verify
                    } else {
                        self.inner.transport.verify_for(scheme, authority)
                    };
                    redirects += 1;
                    req.url = url.clone();
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Runs `op` on each mirror in turn, then on the registry, which is only contacted when no
    /// mirror served the request (as Docker does); a mirror's error falls through to the next.
    pub(crate) async fn on_endpoints<T, F, Fut>(&self, domain: &str, for_pull: bool, op: F) -> Result<T>
    where
        F: Fn(Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        for ep in self.mirrors(domain, for_pull) {
            let base = ep.base();
            match op(ep).await {
                Ok(v) => return Ok(v),
                Err(e) => tracing::info!("mirror {base} failed, trying the next endpoint: {e}"),
            }
        }
        let ep = self.registry_endpoint(domain).await?;
        op(ep).await
    }

    // ---- login -----------------------------------------------------------------------------

    /// Checks credentials against a registry as `docker login` does: pings `/v2/`, then answers
    /// its challenge (Basic, or a Bearer token asked with `offline_token=true` to get a refresh
    /// token). `server` is `host[:port]`, a URL, or Docker Hub's `https://index.docker.io/v1/`.
    pub async fn login(&self, server: &str, auth: &AuthConfig) -> Result<LoginOutcome> {
        let domain = registry_domain(server);
        let mut auth = auth.clone();
        auth.fill_from_auth()?;
        if auth.username.is_empty() && auth.identitytoken.is_empty() {
            return Err(DistributionError::InvalidArgument(
                "login: a username and password, or an identity token, is required".into(),
            ));
        }
        let ep = self.registry_endpoint(&domain).await?;
        let denied = |status: u16, code: Option<String>| DistributionError::Unauthorized {
            op: "login to",
            target: domain.clone(),
            code,
            message: "incorrect username or password".into(),
            status,
        };
        let challenge = self.ping(&ep, MAX_ATTEMPTS).await?;
        let mut identity_token = None;
        let authz = match &challenge {
            None => None,
            Some(Challenge::Basic) => auth.basic(),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let t = match self
                    .fetch_token(realm, service.as_deref(), &[], Some(&auth), true)
                    .await
                {
                    Ok(t) => t,
                    Err(DistributionError::Token {
                        status: Some(s @ (401 | 403)),
                        ..
                    }) => return Err(denied(s, None)),
                    Err(e) => return Err(e),
                };
                identity_token = t.refresh_token.clone().filter(|t| !t.is_empty());
                t.bearer().map(|t| format!("Bearer {t}"))
            }
        };
        let url = format!("{}/v2/", ep.base());
        let resp = self
            .send_once(&Req::get(url.clone()), &url, authz.as_deref(), ep.verify, MAX_ATTEMPTS)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(LoginOutcome {
                identity_token,
                status: "Login Succeeded".into(),
            }),
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                let body = read_limited(resp, 64 << 10, "login", &url).await.unwrap_or_default();
                Err(denied(s.as_u16(), parse_error_body(&body).0))
            }
            _ => Err(status_error(resp, "login to", &url).await),
        }
    }

    // ---- manifests -------------------------------------------------------------------------

    /// GETs a manifest and checks its digest: equal to `reference` when that is a digest, else to
    /// `Docker-Content-Digest` when the registry sends it. Returns (bytes, content type, digest).
    async fn fetch_manifest(
        &self,
        ep: &Endpoint,
        r: &Reference,
        reference: &str,
        auth: Option<&AuthConfig>,
    ) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let url = format!("{}/v2/{}/manifests/{}", ep.base(), r.path(), reference);
        let req = Req::get(url.clone()).header(header::ACCEPT, MANIFEST_ACCEPT);
        let resp = self.send(ep, req, &[pull_scope(r.path())], auth).await?;
        let status = resp.status();
        let shown = format!("{}:{}", r.familiar_repository(), reference);
        let shown = if reference.contains(':') {
            format!("{}@{}", r.familiar_repository(), reference)
        } else {
            shown
        };
        if !status.is_success() {
            return Err(pull_error(resp, &shown, r).await);
        }
        let ct = header_str(resp.headers(), "content-type").map(String::from);
        let header_digest = header_str(resp.headers(), "docker-content-digest").map(String::from);
        let body = read_limited(resp, MAX_MANIFEST_SIZE, "manifest", &shown).await?;
        let expected: Option<Digest> = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) if reference.contains(':') => {
                return Err(DistributionError::InvalidArgument(format!(
                    "invalid digest {reference:?}"
                )))
            }
            Err(_) => match header_digest.as_deref().map(str::parse::<Digest>) {
                Some(Ok(d)) => Some(d),
                Some(Err(e)) => {
                    return Err(DistributionError::InvalidManifest {
                        reference: shown,
                        reason: format!("bad Docker-Content-Digest header: {e}"),
                    })
                }
                None => None,
            },
        };
        let actual = match &expected {
            Some(d) => digest_like(d.algorithm(), &body),
            None => Digest::sha256(&body),
        };
        if let Some(exp) = expected {
            if exp != actual {
                return Err(DistributionError::DigestMismatch {
                    what: format!("manifest {shown}"),
                    expected: exp.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok((body.to_vec(), ct, actual))
    }

    /// Fetches a manifest as stored (for `manifest inspect`): bytes, media type, digest.
    /// `reference` is a tag or a digest.
    pub async fn get_manifest(
        &self,
        r: &Reference,
        reference: &str,
        auth: Option<&AuthConfig>,
    ) -> Result<(Vec<u8>, String, Digest)> {
        self.on_endpoints(r.domain(), true, |ep| async move {
            let (body, ct, digest) = self.fetch_manifest(&ep, r, reference, auth).await?;
            let (mt, _) = classify(
                &format!("{}:{reference}", r.familiar_repository()),
                ct.as_deref(),
                &body,
            )?;
            Ok((body, mt, digest))
        })
        .await
    }

    /// Resolves a reference to the image manifest for `platform`: follows an index or manifest
    /// list, verifies every manifest's digest, validates the descriptors.
    pub async fn resolve(&self, r: &Reference, platform: &Platform, auth: Option<&AuthConfig>) -> Result<Resolved> {
        let reference = r.manifest_reference();
        let shown = r.familiar();
        self.on_endpoints(r.domain(), true, |ep| {
            let (reference, shown) = (reference.clone(), shown.clone());
            async move {
                let (body, ct, digest) = self.fetch_manifest(&ep, r, &reference, auth).await?;
                let (mt, kind) = classify(&shown, ct.as_deref(), &body)?;
                let (digest, mt, body, index) = match kind {
                    ManifestKind::Image => (digest, mt, body, None),
                    ManifestKind::Index => {
                        let entries = parse_index(&shown, &body)?;
                        let desc = select_platform(&shown, &entries, platform)?;
                        let (m, mct, mdigest) = self.fetch_manifest(&ep, r, &desc.digest.to_string(), auth).await?;
                        if m.len() as u64 != desc.size {
                            return Err(DistributionError::SizeMismatch {
                                digest: desc.digest.to_string(),
                                expected: desc.size,
                                actual: m.len() as u64,
                            });
                        }
                        let (mmt, mkind) = classify(&shown, mct.as_deref().or(Some(desc.media_type.as_str())), &m)?;
                        if mkind != ManifestKind::Image {
                            return Err(DistributionError::InvalidManifest {
                                reference: shown,
                                reason: format!("the index entry for {platform} is itself an index ({mmt})"),
                            });
                        }
                        (mdigest, mmt, m, Some((digest, body)))
                    }
                };
                let (config, layers) = parse_image_manifest(&shown, &body)?;
                Ok(Resolved {
                    digest,
                    media_type: mt,
                    manifest: body,
                    index,
                    config,
                    layers,
                })
            }
        })
        .await
    }

    /// Uploads a manifest under a tag or digest; returns its digest (checked against the
    /// registry's `Docker-Content-Digest`).
    pub async fn put_manifest(
        &self,
        r: &Reference,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        auth: Option<&AuthConfig>,
    ) -> Result<Digest> {
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(DistributionError::TooLarge {
                what: format!("manifest for {}", r.familiar()),
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let ep = self.registry_endpoint(r.domain()).await?;
        let url = format!("{}/v2/{}/manifests/{}", ep.base(), r.path(), reference);
        let req = Req {
            method: Method::PUT,
            url: url.clone(),
            headers: vec![(header::CONTENT_TYPE, media_type.into())],
            body: Bytes::copy_from_slice(bytes),
            idempotent: true,
        };
        let resp = self.send(&ep, req, &[push_scope(r.path())], auth).await?;
        if !resp.status().is_success() {
            return Err(push_error(
                resp,
                "pushing manifest to",
                &format!("{}:{reference}", r.familiar_repository()),
            )
            .await);
        }
        let computed = Digest::sha256(bytes);
        if let Some(h) = header_str(resp.headers(), "docker-content-digest") {
            if let Ok(d) = h.parse::<Digest>() {
                let mine = digest_like(d.algorithm(), bytes);
                if d != mine {
                    return Err(DistributionError::DigestMismatch {
                        what: format!("pushed manifest {}", r.familiar()),
                        expected: mine.to_string(),
                        actual: d.to_string(),
                    });
                }
            }
        }
        Ok(computed)
    }

    /// The repository's tags, following `Link` pagination.
    pub async fn tags(&self, r: &Reference, auth: Option<&AuthConfig>) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let ep = self.registry_endpoint(r.domain()).await?;
        let mut url = format!("{}/v2/{}/tags/list", ep.base(), r.path());
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let resp = self
                .send(&ep, Req::get(url.clone()), &[pull_scope(r.path())], auth)
                .await?;
            if !resp.status().is_success() {
                return Err(pull_error(resp, &r.familiar_repository(), r).await);
            }
            let next = header_str(resp.headers(), "link").and_then(parse_link_next);
            let body = read_limited(resp, 16 << 20, "tag list", &url).await?;
            let list: TagList = serde_json::from_slice(&body).map_err(|e| DistributionError::InvalidManifest {
                reference: r.familiar_repository(),
                reason: format!("invalid tag list: {e}"),
            })?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = resolve_url(&url, &n),
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Searches with the registry's `/v1/search` (Docker Hub's API); registries without it answer
    /// `Unsupported`.
    pub async fn search(
        &self,
        registry: &str,
        term: &str,
        limit: u32,
        auth: Option<&AuthConfig>,
    ) -> Result<Vec<SearchResult>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            results: Vec<SearchResult>,
        }
        let domain = registry_domain(registry);
        let ep = if domain == DOCKER_HUB_DOMAIN {
            Endpoint {
                scheme: "https",
                authority: "index.docker.io".into(),
                verify: true,
                mirror: false,
            }
        } else {
            self.registry_endpoint(&domain).await?
        };
        let url = format!(
            "{}/v1/search?q={}&n={}",
            ep.base(),
            url_encode(term),
            limit.clamp(1, 100)
        );
        let basic = auth.and_then(AuthConfig::basic);
        let resp = self
            .send_once(&Req::get(url.clone()), &url, basic.as_deref(), ep.verify, MAX_ATTEMPTS)
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(DistributionError::Unsupported(
                "search is not supported by this registry".into(),
            ));
        }
        if !status.is_success() {
            return Err(status_error(resp, "searching", &url).await);
        }
        let body = read_limited(resp, 16 << 20, "search results", &url).await?;
        let a: Answer = serde_json::from_slice(&body)
            .map_err(|_| DistributionError::Unsupported("search is not supported by this registry".into()))?;
        Ok(a.results)
    }

    // ---- blobs -----------------------------------------------------------------------------

    /// Streams a blob from `offset`, verified. When `offset > 0` the first `offset` bytes are
    /// downloaded again, hashed and not yielded, so that the digest covers the whole blob; a caller
    /// that kept its hasher uses [`RegistryClient::fetch_blob_verified`] to skip that.
    pub async fn fetch_blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        offset: u64,
        auth: Option<&AuthConfig>,
    ) -> Result<BlobStream> {
        BlobStream::open(self.clone(), r, desc, offset, None, auth).await
    }

    /// Streams a blob from `offset`, continuing `prefix` (the sha256 state of the caller's first
    /// `offset` bytes). The stream ends with an error if the whole blob does not match `desc`.
    pub async fn fetch_blob_verified(
        &self,
        r: &Reference,
        desc: &Descriptor,
        offset: u64,
        prefix: Option<sha2::Sha256>,
        auth: Option<&AuthConfig>,
    ) -> Result<BlobStream> {
        BlobStream::open(self.clone(), r, desc, offset, prefix, auth).await
    }

    /// Fetches a small blob (an image config) into memory, verified; refuses descriptors larger
    /// than `limit`.
    pub async fn fetch_blob_bytes(
        &self,
        r: &Reference,
        desc: &Descriptor,
        limit: u64,
        auth: Option<&AuthConfig>,
    ) -> Result<Vec<u8>> {
        use futures_util::StreamExt;
        if desc.size > limit {
            return Err(DistributionError::TooLarge {
                what: format!("blob {}", desc.digest),
                limit,
            });
        }
        let mut s = self.fetch_blob(r, desc, 0, auth).await?;
        let mut out = Vec::with_capacity(desc.size as usize);
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Opens a GET of a blob at `pos` on one endpoint; returns the body and how many leading bytes
    /// to drop (a server that ignores `Range` answers 200 from byte 0).
    pub(crate) async fn open_blob(
        &self,
        ep: &Endpoint,
        r: &Reference,
        desc: &Descriptor,
        pos: u64,
        auth: Option<&AuthConfig>,
    ) -> Result<(Incoming, u64)> {
        let url = format!("{}/v2/{}/blobs/{}", ep.base(), r.path(), desc.digest);
        let mut req = Req::get(url.clone());
        if pos > 0 {
            req = req.header(header::RANGE, format!("bytes={pos}-"));
        }
        let resp = self.send(ep, req, &[pull_scope(r.path())], auth).await?;
        match resp.status() {
            StatusCode::OK => Ok((resp.into_body(), pos)),
            StatusCode::PARTIAL_CONTENT => {
                let start = header_str(resp.headers(), "content-range")
                    .and_then(|v| v.trim_start_matches("bytes").trim().split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                match start {
                    Some(s) if s != pos => Err(DistributionError::Status {
                        op: "fetching blob",
                        target: url,
                        status: 206,
                        code: None,
                        message: format!("asked for bytes from {pos}, got a range from {s}"),
                    }),
                    _ => Ok((resp.into_body(), 0)),
                }
            }
            StatusCode::NOT_FOUND => {
                let body = read_limited(resp, 64 << 10, "error", &url).await.unwrap_or_default();
                let (code, message) = parse_error_body(&body);
                if code.as_deref() == Some("NAME_UNKNOWN") {
                    return Err(DistributionError::RepositoryNotFound {
                        repository: r.familiar_repository(),
                        code: "NAME_UNKNOWN".into(),
                        message,
                        status: 404,
                    });
                }
                Err(DistributionError::BlobUnknown {
                    repository: r.familiar_repository(),
                    digest: desc.digest.to_string(),
                    message,
                })
            }
            _ => Err(pull_error(resp, &format!("{}@{}", r.familiar_repository(), desc.digest), r).await),
        }
    }

    /// Whether the repository has a blob (HEAD); its size when it does.
    pub async fn blob_exists(&self, r: &Reference, digest: &Digest, auth: Option<&AuthConfig>) -> Result<Option<u64>> {
        let ep = self.registry_endpoint(r.domain()).await?;
        let url = format!("{}/v2/{}/blobs/{}", ep.base(), r.path(), digest);
        let req = Req {
            method: Method::HEAD,
            ..Req::get(url.clone())
        };
        let resp = self.send(&ep, req, &[push_scope(r.path())], auth).await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                header_str(resp.headers(), "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(push_error(
                resp,
                "checking blob in",
                &format!("{}@{digest}", r.familiar_repository()),
            )
            .await),
        }
    }

    /// Asks the registry to mount a blob from another repository of the same registry. `true`
    /// when mounted (201); `false` when the registry opened an upload instead (202), which is
    /// cancelled: the caller then pushes the blob.
    pub async fn mount_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        from_repo: &str,
        auth: Option<&AuthConfig>,
    ) -> Result<bool> {
        let ep = self.registry_endpoint(r.domain()).await?;
        let url = format!(
            "{}/v2/{}/blobs/uploads/?mount={}&from={}",
            ep.base(),
            r.path(),
            url_encode(&digest.to_string()),
            url_encode(from_repo)
        );
        let req = Req {
            method: Method::POST,
            idempotent: false,
            ..Req::get(url.clone())
        };
        let scopes = [push_scope(r.path()), pull_scope(from_repo)];
        let resp = self.send(&ep, req, &scopes, auth).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Some(loc) = header_str(resp.headers(), "location") {
                    self.cancel_upload(&ep, &resolve_url(&url, loc), &scopes, auth).await;
                }
                Ok(false)
            }
            _ => Err(push_error(resp, "mounting blob into", &r.familiar_repository()).await),
        }
    }

    async fn cancel_upload(&self, ep: &Endpoint, location: &str, scopes: &[String], auth: Option<&AuthConfig>) {
        let req = Req {
            method: Method::DELETE,
            ..Req::get(location.to_string())
        };
        if let Err(e) = self.send(ep, req, scopes, auth).await {
            tracing::debug!("cancelling upload {location}: {e}");
        }
    }

    /// Pushes a blob read from `body` (exactly `desc.size` bytes, hashing to `desc.digest`): up
    /// to [`MONOLITHIC_MAX`] in one PUT; beyond, PATCH requests of up to the configured
    /// `upload_chunk_size` (at least the registry's `OCI-Chunk-Min-Length`) whose bodies stream
    /// from `body`, then a PUT with the digest once the content is verified, so the registry never
    /// commits bytes that are not what the descriptor says. `progress` gets the bytes sent so far.
    pub async fn push_blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        mut body: impl AsyncRead + Send + Unpin,
        progress: &(dyn Fn(u64) + Send + Sync),
        auth: Option<&AuthConfig>,
    ) -> Result<()> {
        let ep = self.registry_endpoint(r.domain()).await?;
        let scopes = [push_scope(r.path())];
        let target = format!("{}@{}", r.familiar_repository(), desc.digest);
        let start_url = format!("{}/v2/{}/blobs/uploads/", ep.base(), r.path());
        let req = Req {
            method: Method::POST,
            idempotent: false,
            ..Req::get(start_url.clone())
        };
        let resp = self.send(&ep, req, &scopes, auth).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(push_error(resp, "starting blob upload to", &target).await);
        }
        let mut location = upload_location(&resp, &start_url, &target)?;
        let min_chunk = header_str(resp.headers(), "oci-chunk-min-length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let chunk = self.config().upload_chunk_size.max(min_chunk).max(1);
        let mut hasher = crate::blob::Hasher::for_digest(&desc.digest);
        let result = async {
            let size_mismatch = |actual| DistributionError::SizeMismatch {
                digest: desc.digest.to_string(),
                expected: desc.size,
                actual,
            };
            let data = if desc.size <= MONOLITHIC_MAX {
                let data = read_up_to(&mut body, desc.size + 1, &target).await?;
                if data.len() as u64 != desc.size {
                    return Err(size_mismatch(data.len() as u64));
                }
                hasher.update(&data);
                data
            } else {
                let mut sent = 0;
                while sent < desc.size {
                    let len = chunk.min(desc.size - sent);
                    let chunk = UploadChunk {
                        location: &location,
                        offset: sent,
                        len,
                        target: &target,
                        digest: &desc.digest,
                    };
                    location = self
                        .patch_streamed(&ep, chunk, &mut body, &mut hasher, progress, &scopes, auth)
                        .await?;
                    sent += len;
                }
                let extra = read_up_to(&mut body, 1, &target).await?;
                if !extra.is_empty() {
                    return Err(size_mismatch(desc.size + 1));
                }
                Bytes::new()
            };
            // The content must be what the descriptor says before the registry commits it.
            let actual = hasher.finish();
            if actual != desc.digest {
                return Err(DistributionError::DigestMismatch {
                    what: format!("blob to push {target}"),
                    expected: desc.digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            self.finish_upload(&ep, &location, desc, data, &scopes, auth, &target)
                .await?;
            progress(desc.size);
            Ok(())
        }
        .await;
        if result.is_err() {
            self.cancel_upload(&ep, &location, &scopes, auth).await;
        }
        result
    }

    /// One PATCH of an upload whose body streams `chunk.len` bytes from `body` as they are read
    /// (hashed on the way); answers the upload's next location.
    #[allow(clippy::too_many_arguments)]
    async fn patch_streamed(
        &self,
        ep: &Endpoint,
        chunk: UploadChunk<'_>,
        body: &mut (impl AsyncRead + Send + Unpin),
        hasher: &mut crate::blob::Hasher,
        progress: &(dyn Fn(u64) + Send + Sync),
        scopes: &[String],
        auth: Option<&AuthConfig>,
    ) -> Result<String> {
        const READ: u64 = 1 << 20;
        let UploadChunk {
            location,
            offset,
            len,
            target,
            digest,
        } = chunk;
        let (tx, req_body) = channel_body(4);
        let produce = async {
            let mut done = 0u64;
            while done < len {
                let want = READ.min(len - done);
                let mut buf = BytesMut::with_capacity(want as usize);
                let got = (&mut *body)
                    .take(want)
                    .read_buf(&mut buf)
                    .await
                    .map_err(|source| DistributionError::Read {
                        what: format!("blob to push {target}"),
                        source,
                    });
                let got = match got {
                    Ok(0) => Err(DistributionError::SizeMismatch {
                        digest: digest.to_string(),
                        expected: offset + len,
                        actual: offset + done,
                    }),
                    other => other,
                };
                let got = match got {
                    Ok(n) => n as u64,
                    Err(e) => {
                        // Abort the request: the registry must not see a short chunk as whole.
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return Err(e);
                    }
                };
                hasher.update(&buf);
                done += got;
                if tx.send(Ok(buf.freeze())).await.is_err() {
                    // The request ended early; its answer says why.
                    return Ok(false);
                }
                progress(offset + done);
            }
            drop(tx);
            Ok(true)
        };
        let req = Req {
            method: Method::PATCH,
            url: location.to_string(),
            headers: vec![
                (header::CONTENT_TYPE, "application/octet-stream".into()),
                (header::CONTENT_RANGE, format!("{}-{}", offset, offset + len - 1)),
            ],
            body: Bytes::new(),
            idempotent: false,
        };
        let (produced, resp) = tokio::join!(produce, self.send_streamed(ep, &req, req_body, len, scopes, auth));
        let complete = produced?;
        let resp = resp?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(push_error(resp, "uploading blob chunk to", target).await);
        }
        if !complete {
            return Err(DistributionError::Status {
                op: "uploading blob chunk to",
                target: target.into(),
                status: resp.status().as_u16(),
                code: None,
                message: "the registry answered before the chunk was sent".into(),
            });
        }
        upload_location(&resp, location, target)
    }

    /// Sends `req` once with a streamed body of `len` bytes (which cannot be sent again, so a
    /// failure is not retried); credentials as [`Self::send`] has them.
    async fn send_streamed(
        &self,
        ep: &Endpoint,
        req: &Req,
        body: Body,
        len: u64,
        scopes: &[String],
        auth: Option<&AuthConfig>,
    ) -> Result<Response<Incoming>> {
        let challenge = self.ping(ep, MAX_ATTEMPTS).await?;
        let authz = self.authorization(challenge.as_ref(), scopes, auth, false).await?;
        let (_, authority) = split_url(&req.url)?;
        let client = self.inner.transport.client(authority, ep.verify)?;
        let mut b = hyper::Request::builder()
            .method(req.method.clone())
            .uri(req.url.as_str())
            .header(header::USER_AGENT, self.config().user_agent.as_str())
            .header(header::CONTENT_LENGTH, len);
        if let Some(a) = authz.filter(|_| authority == ep.authority) {
            b = b.header(header::AUTHORIZATION, a);
        }
        for (n, v) in &req.headers {
            b = b.header(n, v.as_str());
        }
        let request = b
            .body(body)
            .map_err(|e| DistributionError::InvalidArgument(format!("building request {}: {e}", req.url)))?;
        client.request(request).await.map_err(|e| DistributionError::Connect {
            registry: authority.into(),
            reason: berth_types::error_chain(&e),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_upload(
        &self,
        ep: &Endpoint,
        location: &str,
        desc: &Descriptor,
        data: Bytes,
        scopes: &[String],
        auth: Option<&AuthConfig>,
        target: &str,
    ) -> Result<()> {
        let url = append_query(location, &format!("digest={}", url_encode(&desc.digest.to_string())));
        let req = Req {
            method: Method::PUT,
            url,
            headers: vec![(header::CONTENT_TYPE, "application/octet-stream".into())],
            body: data,
            idempotent: false,
        };
        let resp = self.send(ep, req, scopes, auth).await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(push_error(resp, "completing blob upload to", target).await);
        }
        Ok(())
    }
}

/// Where one PATCH of an upload goes and which bytes of the blob it carries.
struct UploadChunk<'a> {
    location: &'a str,
    offset: u64,
    len: u64,
    target: &'a str,
    digest: &'a Digest,
}

fn upload_location(resp: &Response<Incoming>, base: &str, target: &str) -> Result<String> {
    header_str(resp.headers(), "location")
        .map(|l| resolve_url(base, l))
        .ok_or_else(|| DistributionError::Status {
            op: "uploading blob to",
            target: target.into(),
            status: resp.status().as_u16(),
            code: None,
            message: "the registry sent no Location for the upload session".into(),
        })
}

async fn read_up_to(body: &mut (impl AsyncRead + Unpin), want: u64, target: &str) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(want.min(MONOLITHIC_MAX + 1) as usize);
    let mut limited = body.take(want);
    loop {
        let n = limited
            .read_buf(&mut buf)
            .await
            .map_err(|source| DistributionError::Read {
                what: format!("blob to push {target}"),
                source,
            })?;
        if n == 0 {
            return Ok(buf.freeze());
        }
    }
}

pub use berth_credentials::registry_domain;

fn parse_link_next(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let part = part.trim();
        let (url, params) = part.split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_string())
    })
}

pub(crate) async fn read_limited(resp: Response<Incoming>, limit: u64, what: &str, target: &str) -> Result<Bytes> {
    if let Some(len) = header_str(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok()) {
        if len > limit {
            return Err(DistributionError::TooLarge {
                what: format!("{what} {target}"),
                limit,
            });
        }
    }
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| DistributionError::Body {
            op: "reading",
            target: target.into(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() as u64 + data.len() as u64 > limit {
                return Err(DistributionError::TooLarge {
                    what: format!("{what} {target}"),
                    limit,
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

async fn status_error(resp: Response<Incoming>, op: &'static str, target: &str) -> DistributionError {
    let status = resp.status().as_u16();
    let body = read_limited(resp, 64 << 10, "error", target).await.unwrap_or_default();
    let (code, message) = parse_error_body(&body);
    if status == 401 {
        return DistributionError::Unauthorized {
            op,
            target: target.into(),
            code,
            message: if message.is_empty() {
                "authentication required".into()
            } else {
                message
            },
            status,
        };
    }
    DistributionError::Status {
        op,
        target: target.into(),
        status,
        code,
        message,
    }
}

/// A failed pull-side answer, worded as dockerd does: 404 for an unknown manifest or repository,
/// and "pull access denied ..." (also 404) when the registry refuses access.
async fn pull_error(resp: Response<Incoming>, shown: &str, r: &Reference) -> DistributionError {
    let status = resp.status().as_u16();
    let body = read_limited(resp, 64 << 10, "error", shown).await.unwrap_or_default();
    let (code, message) = parse_error_body(&body);
    match (status, code.as_deref()) {
        (404, Some("MANIFEST_UNKNOWN")) | (404, None) => DistributionError::ManifestUnknown {
            reference: shown.into(),
            message: if message.is_empty() {
                "manifest unknown".into()
            } else {
                message
            },
        },
        (404, Some(c)) | (401 | 403, Some(c)) => DistributionError::RepositoryNotFound {
            repository: r.familiar_repository(),
            code: c.to_string(),
            message,
            status,
        },
        (401 | 403, None) => DistributionError::RepositoryNotFound {
            repository: r.familiar_repository(),
            code: "DENIED".into(),
            message: "requested access to the resource is denied".into(),
            status,
        },
        _ => DistributionError::Status {
            op: "pulling",
            target: shown.into(),
            status,
            code,
            message,
        },
    }
}

async fn push_error(resp: Response<Incoming>, op: &'static str, target: &str) -> DistributionError {
    let status = resp.status().as_u16();
    let body = read_limited(resp, 64 << 10, "error", target).await.unwrap_or_default();
    let (code, message) = parse_error_body(&body);
    match status {
        401 | 403 => DistributionError::Unauthorized {
            op,
            target: target.into(),
            code,
            message: if message.is_empty() {
                "requested access to the resource is denied".into()
            } else {
                message
            },
            status,
        },
        _ => DistributionError::Status {
            op,
            target: target.into(),
            status,
            code,
            message,
        },
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync + Clone>() {}
    is::<RegistryClient>();
    let _ = HeaderValue::from_static("");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve() {
        let base = "http://127.0.0.1:5000/v2/a/b/blobs/uploads/";
        let cases = [
            (
                "/v2/a/b/blobs/uploads/x?_state=1",
                "http://127.0.0.1:5000/v2/a/b/blobs/uploads/x?_state=1",
            ),
            ("https://other:1/p", "https://other:1/p"),
            ("u2", "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u2"),
            ("//cdn.example/z", "http://cdn.example/z"),
        ];
        for (loc, want) in cases {
            assert_eq!(resolve_url(base, loc), want);
        }
        assert_eq!(append_query("http://h/p?a=1", "digest=x"), "http://h/p?a=1&digest=x");
    }

    #[test]
    fn link_header() {
        assert_eq!(
            parse_link_next(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(parse_link_next(r#"</x>; rel="prev""#), None);
    }
}
