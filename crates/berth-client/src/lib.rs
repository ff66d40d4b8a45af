//! Engine API client: HTTP/1.1 over a unix socket or TCP, one connection per request (cheap on a
//! local socket, and it keeps hijacked attach connections independent), API version negotiated via
//! `GET /_ping` and sent as the `/v1.NN` path prefix as Docker's client does.

mod archive;
pub mod body;
mod containers;
mod events;
mod exec;
pub mod host;
mod images;
mod networks;
mod registry;
mod resources;
mod sshconn;
pub mod stream;
pub mod tls;
mod volumes;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

pub use archive::{CommitOptions, ContainerPathStat};
pub use berth_api::models;
pub use berth_credentials::AuthConfig;
pub use body::{BodyReader, ReqBody};
pub use host::{select_host, Host, HostSource, InvalidHost, SshHost, DEFAULT_HOST};
pub use networks::NetworkInspectOptions;
pub use registry::{AuthResponse, SearchItem};
pub use tls::{TlsError, TlsOptions};
pub use volumes::{VolumeList, VolumePruneReport};

/// The newest API version this client speaks.
pub const CLIENT_API_VERSION: &str = "1.47";

/// The header carrying registry credentials (base64url of [`AuthConfig`]'s JSON).
pub const REGISTRY_AUTH_HEADER: &str = "X-Registry-Auth";

/// Per-request options of [`Client::send`].
#[derive(Default)]
pub(crate) struct SendOpts<'a> {
    pub(crate) content_type: Option<&'a str>,
    pub(crate) registry_auth: Option<&'a AuthConfig>,
    /// More headers (`POST /build`'s `X-Registry-Config` and secrets).
    pub(crate) headers: &'a [(&'static str, String)],
    pub(crate) upgrade: bool,
}

/// Host header for unix sockets (Docker's client sends the same dummy name).
const UNIX_HOST_HEADER: &str = "api.moby.localhost";

/// Host header over `ssh://` (Docker's client sends the same dummy name).
const SSH_HOST_HEADER: &str = "docker.example.com";

/// A byte stream to the daemon: a socket, a TLS session or an ssh child's pipes.
pub trait DaemonStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> DaemonStream for T {}

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answers at the daemon address.
    #[error("Cannot connect to the berth daemon at {host}. Is the daemon running?")]
    Connect {
        /// The address tried.
        host: String,
        /// Why the connection failed.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake with the daemon failed (an unknown CA, a wrong name, no client certificate).
    #[error("error during connect: TLS with {host} failed: {source}")]
    Tls {
        /// The address tried.
        host: String,
        /// What TLS said.
        #[source]
        source: io::Error,
    },
    /// `ssh` for an `ssh://` host could not be started.
    #[error("error during connect: {source}")]
    Ssh {
        /// The address tried.
        host: String,
        /// Why ssh did not start.
        #[source]
        source: io::Error,
    },
    /// The daemon answered with an error status and `{"message": ...}`.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status code.
        status: u16,
        /// The daemon's `message`.
        message: String,
    },
    /// The HTTP exchange failed mid-way (with the cause hyper carries: an ssh that exited names
    /// its command, status and standard error).
    #[error("error during connect: {}", berth_types::error_chain(.0))]
    Http(#[from] hyper::Error),
    /// A request could not be built (bad characters in an argument).
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The daemon's answer was not the JSON expected.
    #[error("error decoding response from daemon: {0}")]
    Decode(#[from] serde_json::Error),
    /// Reading or writing a stream failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// The HTTP status of a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 404 from the daemon.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A 409 from the daemon (a name in use, a network with active endpoints).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// A 403 from the daemon (an operation on a predefined network such as `bridge`).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// The daemon's message without the `Error response from daemon: ` prefix.
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            Error::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What `GET /_ping` reports.
#[derive(Debug, Clone, Default)]
pub struct Ping {
    /// `API-Version` header: the newest API version the daemon speaks.
    pub api_version: Option<String>,
    /// `OSType` header (`linux`).
    pub os_type: Option<String>,
}

/// Query string pairs; values are percent-encoded when the request is built.
pub type Query<'a> = Vec<(&'a str, String)>;

/// Filters as Docker sends them: `{"key": ["v1", "v2"]}`.
pub type Filters = BTreeMap<String, Vec<String>>;

/// Options of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    /// Keep streaming new output.
    pub follow: bool,
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// Number of lines from the end (`all` or a number).
    pub tail: Option<String>,
    /// Only lines since this time (Unix seconds, with fractions).
    pub since: Option<String>,
    /// Only lines before this time.
    pub until: Option<String>,
}

/// Options of `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Attach stdin (the connection becomes writable).
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr.
    pub stderr: bool,
    /// `logs=1`: replay the log before streaming.
    pub logs: bool,
}

/// A hijacked attach connection: output to read, and (after a 101) stdin to write.
pub struct AttachConn {
    /// Output: multiplexed frames, or raw bytes for a TTY.
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    /// Input to the process; `None` when the daemon did not upgrade the connection.
    pub writer: Option<Box<dyn AsyncWrite + Send + Unpin>>,
}

/// Options of `POST /images/create?fromSrc=` (`docker import`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `-` to read the request body, or a URL.
    pub source: String,
    /// Repository to tag the image with.
    pub repo: Option<String>,
    /// Tag within `repo`.
    pub tag: Option<String>,
    /// Commit message recorded in the image history.
    pub message: Option<String>,
    /// Dockerfile instructions applied to the config (`CMD ["sh"]`).
    pub changes: Vec<String>,
    /// Platform of the image.
    pub platform: Option<String>,
}

/// The Engine API client.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    version: String,
    /// TLS for a TCP daemon (`--tls`, `--tlsverify`).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Connections kept open between requests to an ssh or TCP daemon (HTTP keep-alive, as
    /// docker's client keeps them): over ssh a new one costs a login, over TLS a handshake; a unix
    /// socket's cost nothing, so each request has its own. Shared by clones.
    idle: Arc<std::sync::Mutex<Vec<http1::SendRequest<ReqBody>>>>,
}

/// At most this many idle connections are kept.
const MAX_IDLE: usize = 4;

/// Percent-encodes a URL component (see [`berth_types::percent_encode`]).
pub fn encode_component(s: &str) -> String {
    berth_types::percent_encode(s)
}

fn build_query(query: &Query<'_>) -> String {
    let mut s = String::new();
    for (i, (k, v)) in query.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&encode_component(v));
    }
    s
}

/// Compares dotted API versions numerically (`1.9` < `1.41`).
pub fn version_less(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

fn filters_json(filters: &Filters) -> String {
    let map: serde_json::Map<String, Value> = filters
        .iter()
        .map(|(k, vs)| {
            let inner: serde_json::Map<String, Value> = vs.iter().map(|v| (v.clone(), Value::Bool(true))).collect();
            (k.clone(), Value::Object(inner))
        })
        .collect();
    Value::Object(map).to_string()
}

fn push_filters<'a>(q: &mut Query<'a>, filters: &Filters) {
    if !filters.is_empty() {
        q.push(("filters", filters_json(filters)));
    }
}

fn flag(v: bool) -> String {
    if v { "1" } else { "0" }.to_string()
}

impl Client {
    /// A client for `host` speaking [`CLIENT_API_VERSION`] until [`Client::negotiate`] runs.
    pub fn new(host: Host) -> Self {
        Client {
            host,
            version: CLIENT_API_VERSION.to_string(),
            tls: None,
            idle: Arc::default(),
        }
    }

    /// A client that speaks TLS to a TCP daemon, with `opts`' CA, client certificate and checks.
    pub fn with_tls(host: Host, opts: &TlsOptions) -> std::result::Result<Self, TlsError> {
        if let Host::Tcp(addr) = &host {
            tls::server_name(addr)?;
        }
        Ok(Client {
            tls: Some(tls::client_config(opts)?),
            ..Client::new(host)
        })
    }

    /// Whether requests go over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Pins the API version (`DOCKER_API_VERSION`), skipping negotiation.
    pub fn set_api_version(&mut self, v: &str) {
        self.version = v.trim_start_matches('v').to_string();
    }

    /// The daemon address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The API version in use.
    pub fn api_version(&self) -> &str {
        &self.version
    }

    /// Pings the daemon and uses min(server version, ours) from then on.
    pub async fn negotiate(&mut self) -> Result<Ping> {
        let ping = self.ping().await?;
        if let Some(v) = &ping.api_version {
            if version_less(v, CLIENT_API_VERSION) {
                self.version = v.clone();
            }
        }
        Ok(ping)
    }

    /// `GET /_ping`.
    pub async fn ping(&self) -> Result<Ping> {
        let resp = self
            .send(Method::GET, "/_ping".to_string(), body::empty(), &SendOpts::default())
            .await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let ping = Ping {
            api_version: header("api-version"),
            os_type: header("ostype"),
        };
        // Read to the end ("OK"), so the connection is free for the next request.
        resp.into_body().collect().await?;
        Ok(ping)
    }

    /// An idle connection ready for a request (one still busy with an earlier response, or
    /// closed, is let go).
    fn take_idle(&self) -> Option<http1::SendRequest<ReqBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(s) = idle.pop() {
            if s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    fn keep(&self, sender: http1::SendRequest<ReqBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    /// Sends `req` on a new connection; the connection comes back with the answer.
    async fn send_new(&self, req: Request<ReqBody>) -> Result<(http1::SendRequest<ReqBody>, Response<Incoming>)> {
        let mut sender = handshake(self.dial().await?).await?;
        let resp = sender.send_request(req).await?;
        Ok((sender, resp))
    }

    /// A new byte stream to the daemon (TLS done, for a TLS client): what HTTP runs over, and
    /// what `system dial-stdio` relays.
    pub async fn dial(&self) -> Result<Box<dyn DaemonStream>> {
        let connect_err = |source| Error::Connect {
            host: self.host.to_string(),
            source,
        };
        match &self.host {
            Host::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(connect_err)?;
                Ok(Box::new(stream))
            }
            Host::Ssh(ssh) => Ok(Box::new(sshconn::SshConn::spawn(ssh).map_err(|source| Error::Ssh {
                host: self.host.to_string(),
                source,
            })?)),
            Host::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                match &self.tls {
                    None => Ok(Box::new(stream)),
                    Some(config) => {
                        let tls_err = |source| Error::Tls {
                            host: self.host.to_string(),
                            source,
                        };
                        let name = tls::server_name(addr).map_err(|e| tls_err(io::Error::other(e)))?;
                        let stream = tokio_rustls::TlsConnector::from(config.clone())
                            .connect(name, stream)
                            .await
                            .map_err(tls_err)?;
                        Ok(Box::new(stream))
                    }
                }
            }
        }
    }

    fn build(&self, method: Method, path_and_query: &str, body: ReqBody, o: &SendOpts<'_>) -> Result<Request<ReqBody>> {
        let host_header = match &self.host {
            Host::Unix(_) => UNIX_HOST_HEADER.to_string(),
            Host::Tcp(a) => a.clone(),
            // Docker's client names the daemon this way over a connection helper.
            Host::Ssh(_) => SSH_HOST_HEADER.to_string(),
        };
        let uri = if path_and_query == "/_ping" {
            path_and_query.to_string()
        } else {
            format!("/v{}{}", self.version, path_and_query)
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", host_header)
            .header("User-Agent", concat!("berth-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = o.content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(auth) = o.registry_auth {
            req = req.header(REGISTRY_AUTH_HEADER, auth.to_header());
        }
        for (name, value) in o.headers {
            req = req.header(*name, value);
        }
        if o.upgrade {
            req = req.header("Connection", "Upgrade").header("Upgrade", "tcp");
        }
        Ok(req.body(body)?)
    }

    /// Sends one request; an error status becomes [`Error::Daemon`].
    async fn send(
        &self,
        method: Method,
        path_and_query: String,
        body: ReqBody,
        o: &SendOpts<'_>,
    ) -> Result<Response<Incoming>> {
        // Connections are kept where a new one is dear (an ssh login, a TCP or TLS handshake),
        // never for an upgrade (attach, exec: a connection of its own, as docker's hijack dials).
        let reuse = !o.upgrade && !matches!(self.host, Host::Unix(_));
        let kept = if reuse { self.take_idle() } else { None };
        let (sender, resp) = match kept {
            Some(mut kept) => {
                let req = self.build(method.clone(), &path_and_query, body, o)?;
                match kept.try_send_request(req).await {
                    Ok(resp) => (kept, resp),
                    // The kept connection failed before any answer: the server closed it. The
                    // request goes again on a new one if it did not go out, or if asking again
                    // is harmless (GET, HEAD: no body), as Go's client (docker's) decides.
                    Err(mut e) => match e.take_message() {
                        Some(req) => self.send_new(req).await?,
                        None if method == Method::GET || method == Method::HEAD => {
                            self.send_new(self.build(method, &path_and_query, body::empty(), o)?)
                                .await?
                        }
                        None => return Err(e.into_error().into()),
                    },
                }
            }
            None => self.send_new(self.build(method, &path_and_query, body, o)?).await?,
        };
        // Reusable once its response has been read.
        if reuse {
            self.keep(sender);
        }
        let status = resp.status();
        if status.is_client_error() || status.is_server_error() {
            let bytes = resp.into_body().collect().await?.to_bytes();
            return Err(daemon_error(status, &bytes));
        }
        Ok(resp)
    }

    /// Sends a request and returns the raw response (for streams).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &Query<'_>,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> Result<Response<Incoming>> {
        self.request_as(method, path, query, body, content_type, None).await
    }

    /// [`Client::request`] with an `X-Registry-Auth` header (registry operations; Docker's CLI
    /// always sends one, `{}` when it has no credentials).
    pub async fn request_with_auth(
        &self,
        method: Method,
        path: &str,
        query: &Query<'_>,
        body: ReqBody,
        content_type: Option<&str>,
        auth: &AuthConfig,
    ) -> Result<Response<Incoming>> {
        self.request_as(method, path, query, body, content_type, Some(auth))
            .await
    }

    async fn request_as(
        &self,
        method: Method,
        path: &str,
        query: &Query<'_>,
        body: ReqBody,
        content_type: Option<&str>,
        registry_auth: Option<&AuthConfig>,
    ) -> Result<Response<Incoming>> {
        let o = SendOpts {
            content_type,
            registry_auth,
            headers: &[],
            upgrade: false,
        };
        self.send(method, format!("{path}{}", build_query(query)), body, &o)
            .await
    }

    /// Sends a request and returns the whole response body.
    pub async fn request_bytes(
        &self,
        method: Method,
        path: &str,
        query: &Query<'_>,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> Result<Bytes> {
        let resp = self.request(method, path, query, body, content_type).await?;
        Ok(resp.into_body().collect().await?.to_bytes())
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &Query<'_>,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let (b, ct) = match body {
            Some(v) => (body::full(v), Some("application/json")),
            None => (body::empty(), None),
        };
        let bytes = self.request_bytes(method, path, query, b, ct).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn json_with_auth<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &Query<'_>,
        auth: &AuthConfig,
    ) -> Result<T> {
        let resp = self
            .request_with_auth(method, path, query, body::empty(), None, auth)
            .await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn call(&self, method: Method, path: &str, query: &Query<'_>) -> Result<()> {
        self.request_bytes(method, path, query, body::empty(), None).await?;
        Ok(())
    }

    // ---- system ----

    /// `GET /version`.
    pub async fn version(&self) -> Result<Value> {
        self.json(Method::GET, "/version", &vec![], None).await
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<Value> {
        self.json(Method::GET, "/info", &vec![], None).await
    }
}

async fn handshake<T>(io: T) -> Result<http1::SendRequest<ReqBody>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // The connection ends with the request; its errors surface through the response future.
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// Turns an error response into [`Error::Daemon`]: the JSON `message`, else the body text.
fn daemon_error(status: StatusCode, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<berth_api::ErrorResponse>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("unknown error").to_string()
            } else {
                text
            }
        });
    Error::Daemon {
        status: status.as_u16(),
        message,
    }
}

/// Polls `client` until `/_ping` answers or `timeout` passes.
pub async fn wait_for_daemon(client: &Client, timeout: Duration) -> Result<Ping> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match client.ping().await {
            Ok(p) => return Ok(p),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let mut f = Filters::new();
        f.insert("status".into(), vec!["exited".into()]);
        let mut q = vec![("all", flag(true))];
        push_filters(&mut q, &f);
        assert_eq!(
            build_query(&q),
            "?all=1&filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D"
        );
        assert_eq!(encode_component("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn versions() {
        assert!(version_less("1.9", "1.41"));
        assert!(version_less("1.41", "1.47"));
        assert!(!version_less("1.47", "1.47"));
        assert!(!version_less("1.50", "1.47"));
    }

    #[test]
    fn daemon_errors() {
        let e = daemon_error(StatusCode::NOT_FOUND, br#"{"message":"No such container: x"}"#);
        assert_eq!(e.to_string(), "Error response from daemon: No such container: x");
        assert!(e.is_not_found());
        let e = daemon_error(StatusCode::INTERNAL_SERVER_ERROR, b"boom\n");
        assert_eq!(e.to_string(), "Error response from daemon: boom");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn connect_error_names_host() {
        let c = Client::new(Host::Unix("/nonexistent/berth.sock".into()));
        let e = c.ping().await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is the daemon running?"
        );
    }

    /// A TCP daemon that answers each request and then closes the connection without saying so
    /// (no `Connection: close`): a kept connection it closed is replaced, the request asked again.
    #[tokio::test(flavor = "current_thread")]
    async fn a_kept_connection_the_server_closed_is_replaced() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 2\r\n\r\nOK")
                    .await;
            }
        });
        let c = Client::new(Host::Tcp(addr.to_string()));
        for _ in 0..5 {
            c.ping().await.unwrap();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
    }
}
