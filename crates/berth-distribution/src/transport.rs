//! Connections: which URL a registry is reached at, and with which TLS settings.
//!
//! Docker's rules (daemon/config `insecure-registries`, `/etc/docker/certs.d`), which we follow:
//! - a registry is reached over HTTPS with the system roots plus `certs.d/HOST:PORT/*.crt`, and
//!   offers `client.cert`/`client.key` when present;
//! - a registry named in `insecure_registries` (by `host:port`, host, or a CIDR holding its IP) is
//!   tried over HTTPS without certificate verification, then over plain HTTP;
//! - a loopback registry (`localhost`, 127.0.0.0/8, `::1`) is tried over HTTPS (verified: unlike
//!   Docker we do not skip verification for loopback, so a certs.d CA is really checked), then
//!   over plain HTTP when HTTPS cannot connect;
//! - `docker.io` is served by `registry-1.docker.io`, after the configured mirrors for pulls.
//!
//! One hyper client (a connection pool) exists per (host, verification) pair and is shared by
//! every clone of the [`crate::RegistryClient`].

use crate::error::{DistributionError, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The request body type: whole bytes, or a stream fed through a channel (a blob upload).
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// A request body holding `data`.
pub(crate) fn full_body(data: Bytes) -> Body {
    Full::new(data).map_err(|never| match never {}).boxed()
}

/// A streamed request body and the sender that feeds it; an `Err` sent aborts the request, and
/// dropping the sender ends the body.
pub(crate) fn channel_body(depth: usize) -> (tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel(depth);
    (tx, ChannelBody(rx).boxed())
}

struct ChannelBody(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|item| item.map(|r| r.map(Frame::data)))
    }
}
/// A pooled HTTP/1.1 client that speaks both http and https.
pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// Docker Hub's canonical registry name and the host that serves its API.
pub const DOCKER_HUB_DOMAIN: &str = berth_credentials::DOCKER_HUB_DOMAIN;
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// Default certs.d directory.
pub const DEFAULT_CERTS_DIR: &str = "/etc/berth/certs.d";

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries allowed without verified TLS: `host:port`, `host`, or a CIDR (`10.0.0.0/8`).
    pub insecure_registries: Vec<String>,
    /// Mirror URLs (`https://mirror.example`) tried first, in order, for pulls from docker.io.
    pub mirrors: Vec<String>,
    /// Per-registry TLS material: `certs_dir/HOST:PORT/{*.crt, client.cert, client.key}`.
    pub certs_dir: PathBuf,
    /// The `User-Agent` of every request.
    pub user_agent: String,
    /// The most bytes one PATCH of a blob upload carries (each is streamed, not buffered); a
    /// blob up to [`MONOLITHIC_MAX`] goes in one PUT instead.
    pub upload_chunk_size: u64,
}

/// The largest blob pushed in one buffered PUT; larger blobs stream in PATCH requests.
pub const MONOLITHIC_MAX: u64 = 8 << 20;

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            upload_chunk_size: 256 << 20,
        }
    }
}

/// A base URL a registry is reached at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Endpoint {
    /// `https` or `http`.
    pub scheme: &'static str,
    /// `host[:port]`.
    pub authority: String,
    /// Whether the server certificate is verified.
    pub verify: bool,
    /// Whether this endpoint is a mirror (pull-only, errors fall through to the next).
    pub mirror: bool,
}

impl Endpoint {
    pub(crate) fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// Builds clients and decides endpoints.
pub(crate) struct Transport {
    pub config: ClientConfig,
    clients: Mutex<HashMap<(String, bool), HttpClient>>,
}

fn system_roots() -> &'static Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let r = rustls_native_certs::load_native_certs();
        for e in &r.errors {
            tracing::warn!("loading system root certificates: {e}");
        }
        r.certs
    })
}

impl Transport {
    pub(crate) fn new(config: ClientConfig) -> Transport {
        Transport {
            config,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The pooled client for `authority` (TLS roots and client certificate of that host).
    pub(crate) fn client(&self, authority: &str, verify: bool) -> Result<HttpClient> {
        let key = (authority.to_string(), verify);
        if let Some(c) = self.clients.lock().map_err(poisoned)?.get(&key) {
            return Ok(c.clone());
        }
        let tls = self.tls_config(authority, verify)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(30)));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client: HttpClient = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .build(https);
        self.clients.lock().map_err(poisoned)?.insert(key, client.clone());
        Ok(client)
    }

    fn tls_config(&self, authority: &str, verify: bool) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let dir = self.config.certs_dir.join(authority);
        let tls_err = |path: &Path, reason: String| DistributionError::TlsConfig {
            registry: authority.into(),
            path: path.display().to_string(),
            reason,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(&dir, e.to_string()))?;
        let builder = if verify {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(system_roots().iter().cloned());
            for ca in read_dir_sorted(&dir, ".crt") {
                for cert in berth_tls::read_certs(&ca).map_err(|e| tls_err(&ca, e.to_string()))? {
                    roots.add(cert).map_err(|e| tls_err(&ca, e.to_string()))?;
                }
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(berth_tls::accept_any_server(provider))
        };
        let cert = dir.join("client.cert");
        let key = dir.join("client.key");
        // hyper-rustls sets ALPN (http/1.1) itself.
        let cfg = match (cert.exists(), key.exists()) {
            (true, true) => {
                let chain = berth_tls::read_certs(&cert).map_err(|e| tls_err(&cert, e.to_string()))?;
                let key_der = berth_tls::read_key(&key).map_err(|e| tls_err(&key, e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| tls_err(&cert, e.to_string()))?
            }
            (false, false) => builder.with_no_client_auth(),
            // Docker refuses a half pair too.
            (true, false) => return Err(tls_err(&key, "client.cert without client.key".into())),
            (false, true) => return Err(tls_err(&cert, "client.key without client.cert".into())),
        };
        Ok(cfg)
    }

    /// The endpoints to try for a registry domain, in order. Pulls pass `for_pull` to get the
    /// docker.io mirrors first.
    pub(crate) fn endpoints(&self, domain: &str, for_pull: bool) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if domain == DOCKER_HUB_DOMAIN || domain == "index.docker.io" || domain == DOCKER_HUB_REGISTRY {
            if for_pull {
                for m in &self.config.mirrors {
                    let m = m.trim_end_matches('/');
                    let (scheme, authority) = match m.split_once("://") {
                        Some(("http", a)) => ("http", a),
                        Some(("https", a)) => ("https", a),
                        Some(_) => continue,
                        None => ("https", m),
                    };
                    let authority = authority.split('/').next().unwrap_or(authority).to_string();
                    let verify = scheme == "https" && !self.is_insecure(&authority);
                    out.push(Endpoint {
                        scheme,
                        authority,
                        verify,
                        mirror: true,
                    });
                }
            }
            out.push(Endpoint {
                scheme: "https",
                authority: DOCKER_HUB_REGISTRY.into(),
                verify: true,
                mirror: false,
            });
            return out;
        }
        let insecure = self.is_insecure(domain);
        out.push(Endpoint {
            scheme: "https",
            authority: domain.into(),
            verify: !insecure,
            mirror: false,
        });
        if insecure || is_loopback(domain) {
            out.push(Endpoint {
                scheme: "http",
                authority: domain.into(),
                verify: false,
                mirror: false,
            });
        }
        out
    }

    /// Whether `authority` is listed in `insecure_registries` (exactly, by host, or by CIDR).
    pub(crate) fn is_insecure(&self, authority: &str) -> bool {
        let host = host_of(authority);
        let ip = host.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>().ok();
        self.config.insecure_registries.iter().any(|entry| {
            let e = entry
                .trim()
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            if e == authority || e == host {
                return true;
            }
            match (ip, parse_cidr(e)) {
                (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }

    /// Whether a redirect or token realm on `authority` may be reached over `scheme`, and verified.
    pub(crate) fn verify_for(&self, scheme: &str, authority: &str) -> bool {
        scheme == "https" && !self.is_insecure(authority)
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> DistributionError {
    DistributionError::InvalidArgument("registry client state poisoned by a panicked task".into())
}

/// The host part of `host[:port]` (brackets kept for IPv6).
pub(crate) fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// `localhost`, 127.0.0.0/8 and `::1`: registries Docker lets speak plain HTTP.
pub(crate) fn is_loopback(authority: &str) -> bool {
    let host = host_of(authority);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, b) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let bits: u8 = b.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

fn read_dir_sorted(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(insecure: &[&str], mirrors: &[&str]) -> Transport {
        Transport::new(ClientConfig {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    }

    fn bases(eps: &[Endpoint]) -> Vec<String> {
        eps.iter()
            .map(|e| format!("{}{}", e.base(), if e.verify { "" } else { "!" }))
            .collect()
    }

    #[test]
    fn reference_domain_to_endpoints() {
        let tr = t(
            &["10.0.0.0/8", "reg.local:5000"],
            &["http://127.0.0.1:5001/", "mirror.example"],
        );
        let cases: &[(&str, bool, &[&str])] = &[
            ("docker.io", false, &["https://registry-1.docker.io"]),
            (
                "docker.io",
                true,
                &[
                    "http://127.0.0.1:5001!",
                    "https://mirror.example",
                    "https://registry-1.docker.io",
                ],
            ),
            ("quay.io", true, &["https://quay.io"]),
            (
                "localhost:5000",
                false,
                &["https://localhost:5000", "http://localhost:5000!"],
            ),
            ("127.0.0.2:80", false, &["https://127.0.0.2:80", "http://127.0.0.2:80!"]),
            ("[::1]:5000", false, &["https://[::1]:5000", "http://[::1]:5000!"]),
            (
                "10.1.2.3:5000",
                false,
                &["https://10.1.2.3:5000!", "http://10.1.2.3:5000!"],
            ),
            (
                "reg.local:5000",
                false,
                &["https://reg.local:5000!", "http://reg.local:5000!"],
            ),
            ("reg.local:5001", false, &["https://reg.local:5001"]),
            ("11.1.2.3", false, &["https://11.1.2.3"]),
        ];
        for (domain, pull, want) in cases {
            assert_eq!(bases(&tr.endpoints(domain, *pull)), *want, "{domain}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("a:5000"), "a");
        assert_eq!(host_of("[::1]:5000"), "[::1]");
        assert_eq!(host_of("a"), "a");
        assert!(is_loopback("localhost:1"));
        assert!(!is_loopback("localhost.example:1"));
    }
}
