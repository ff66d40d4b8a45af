//! ADD's remote sources: which sources are URLs (and which are git repositories, which berth's
//! builder refuses), and the download of an http(s) URL into the build's scratch space.
//!
//! As the Dockerfile reference ("Adding files from a URL", `ADD --checksum`) and BuildKit's HTTP
//! source do it: the file is named after the last component of the URL's path; redirects are
//! followed; `Last-Modified` gives the file's mtime; `--checksum=sha256:<hex>` must match the
//! content. Unlike BuildKit the download is bounded ([`FetchLimits`]) so a build cannot fill the
//! disk or hang on a server that never answers.

pub use hyper_util::client::proxy::matcher::Matcher;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What an ADD source is, from its text alone (BuildKit's `isHTTPSource` and git ref detection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A path in the build context.
    Local,
    /// An `http://` or `https://` URL of a file.
    Http,
    /// A git repository: `git@host:repo`, `git://`, `ssh://`, an http(s) URL whose path ends in
    /// `.git`, or one with a `#ref` fragment.
    Git,
}

/// Classifies an ADD source.
pub fn source_kind(src: &str) -> SourceKind {
    let lower = src.to_ascii_lowercase();
    if lower.starts_with("git@") || lower.starts_with("git://") || lower.starts_with("ssh://") {
        return SourceKind::Git;
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let (without_fragment, fragment) = match src.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (src, None),
        };
        let path = without_fragment.split(['?']).next().unwrap_or(without_fragment);
        if fragment.is_some() || path.trim_end_matches('/').ends_with(".git") {
            return SourceKind::Git;
        }
        return SourceKind::Http;
    }
    SourceKind::Local
}

/// The file name a download is saved under: the last component of the URL's path (`None` when
/// the path has none, as `http://example.com/`).
pub fn file_name_of(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let name = uri.path().rsplit('/').next().unwrap_or("");
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

/// Why a remote source cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be parsed or is not http(s).
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// `--checksum` is not `sha256:<64 hex digits>`.
    #[error("invalid checksum {0:?}: sha256:<64 hex digits> is needed")]
    BadChecksum(String),
    /// The server could not be reached or the connection failed.
    #[error("fetching {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// The transport's error.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("fetching {url}: the server answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status, with its reason phrase.
        status: String,
    },
    /// Too many redirects.
    #[error("fetching {url}: more than {max} redirects")]
    TooManyRedirects {
        /// The URL first asked for.
        url: String,
        /// The limit.
        max: usize,
    },
    /// The body is larger than allowed.
    #[error("fetching {url}: larger than the {max} bytes allowed")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        max: u64,
    },
    /// The download took longer than allowed.
    #[error("fetching {url}: no complete answer within {secs} seconds")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        secs: u64,
    },
    /// The content is not what `--checksum` says.
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The digest `--checksum` gave.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// Writing the download failed.
    #[error("saving {url} to {path}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The file being written.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A `--checksum` value: a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum(String);

impl Checksum {
    /// Parses `sha256:<hex>` (the only algorithm ADD takes for http sources).
    pub fn parse(s: &str) -> Result<Checksum, FetchError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| FetchError::BadChecksum(s.to_string()))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FetchError::BadChecksum(s.to_string()));
        }
        Ok(Checksum(format!("sha256:{}", hex.to_ascii_lowercase())))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Bounds on one download.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// The most bytes a body may have.
    pub max_bytes: u64,
    /// How long the whole download (redirects included) may take.
    pub timeout: Duration,
    /// How many redirects are followed.
    pub max_redirects: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_bytes: 1 << 30,
            timeout: Duration::from_secs(600),
            max_redirects: 10,
        }
    }
}

/// A downloaded file.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL asked for.
    pub url: String,
    /// Where it was saved (`<dir>/<name>`).
    pub path: PathBuf,
    /// The name it was saved under (see [`file_name_of`]; `__unnamed__` when the URL has none).
    pub name: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// `Last-Modified`, in seconds since 1970, when the server sent it.
    pub last_modified: Option<i64>,
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<crate::proxy::ProxyConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

/// The proxies of the daemon's environment (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`).
pub fn proxies_from_env() -> Arc<Matcher> {
    Arc::new(Matcher::from_env())
}

/// An http(s) client with the system's root certificates, through `proxies`.
fn client(url: &str, proxies: &Arc<Matcher>) -> Result<Client, FetchError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Connect {
            url: url.to_string(),
            reason: format!("setting up TLS: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(30)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(crate::proxy::ProxyConnector::new(http, proxies.clone()));
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// Where `location` (a redirect's target) leads from `base`.
fn resolve_location(base: &hyper::Uri, location: &str) -> Option<hyper::Uri> {
    if location.contains("://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

/// Downloads `url` into `dir` (created), as `<dir>/<name>`, within `limits`, checking the content
/// against `checksum` when given. A partial file is removed on failure.
pub async fn fetch(
    url: &str,
    dir: &Path,
    checksum: Option<&Checksum>,
    limits: &FetchLimits,
) -> Result<Fetched, FetchError> {
    fetch_through(url, dir, checksum, limits, &proxies_from_env()).await
}

/// [`fetch`] through `proxies` (see [`proxies_from_env`]).
pub async fn fetch_through(
    url: &str,
    dir: &Path,
    checksum: Option<&Checksum>,
    limits: &FetchLimits,
    proxies: &Arc<Matcher>,
) -> Result<Fetched, FetchError> {
    let name = file_name_of(url).unwrap_or_else(|| "__unnamed__".into());
    let path = dir.join(&name);
    let io = |source| FetchError::Io {
        url: url.to_string(),
        path: path.display().to_string(),
        source,
    };
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let work = download(url, &path, limits, proxies);
    let result = match tokio::time::timeout(limits.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            secs: limits.timeout.as_secs(),
        }),
    };
    let (digest, last_modified) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
    };
    if let Some(want) = checksum {
        if want.as_str() != digest {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(FetchError::ChecksumMismatch {
                url: url.to_string(),
                expected: want.as_str().to_string(),
                actual: digest,
            });
        }
    }
    Ok(Fetched {
        url: url.to_string(),
        path,
        name,
        digest,
        last_modified,
    })
}

/// The request loop: follows redirects, then streams the body to `path`; answers the content's
/// digest and `Last-Modified`.
async fn download(
    url: &str,
    path: &Path,
    limits: &FetchLimits,
    proxies: &Arc<Matcher>,
) -> Result<(String, Option<i64>), FetchError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let bad = |reason: String| FetchError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let mut uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
    let client = client(url, proxies)?;
    let mut redirects = 0;
    let resp = loop {
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(bad("only http and https URLs with a host can be fetched".into()));
        }
        let mut req = hyper::Request::get(uri.clone())
            .header(hyper::header::USER_AGENT, concat!("berth/", env!("CARGO_PKG_VERSION")))
            .body(http_body_util::Empty::new())
            .map_err(|e| bad(e.to_string()))?;
        // An http URL asked of a proxy carries the proxy's credentials (an https one gave them
        // in its CONNECT).
        if uri.scheme_str() == Some("http") {
            if let Some(auth) = proxies.intercept(&uri).as_ref().and_then(|p| p.basic_auth()) {
                req.headers_mut()
                    .insert(hyper::header::PROXY_AUTHORIZATION, auth.clone());
            }
        }
        let resp = client.request(req).await.map_err(|e| FetchError::Connect {
            url: uri.to_string(),
            reason: berth_types::error_chain(&e),
        })?;
        let status = resp.status();
        if status.is_redirection() && status != hyper::StatusCode::NOT_MODIFIED {
            let next = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resolve_location(&uri, l));
            let Some(next) = next else {
                return Err(FetchError::Status {
                    url: uri.to_string(),
                    status: format!("{status} without a usable Location"),
                });
            };
            redirects += 1;
            if redirects > limits.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    url: url.to_string(),
                    max: limits.max_redirects,
                });
            }
            uri = next;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: uri.to_string(),
                status: status.to_string(),
            });
        }
        break resp;
    };
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        max: limits.max_bytes,
    };
    let length = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > limits.max_bytes) {
        return Err(too_large());
    }
    let last_modified = resp
        .headers()
        .get(hyper::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(http_date);
    let io = |source| FetchError::Io {
        url: url.to_string(),
        path: path.display().to_string(),
        source,
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .await
        .map_err(io)?;
    let mut hash = Sha256::new();
    let mut size: u64 = 0;
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Connect {
            url: url.to_string(),
            reason: berth_types::error_chain(&e),
        })?;
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            if size > limits.max_bytes {
                return Err(too_large());
            }
            hash.update(&data);
            file.write_all(&data).await.map_err(io)?;
        }
    }
    file.flush().await.map_err(io)?;
    Ok((format!("sha256:{}", hex::encode(hash.finalize())), last_modified))
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) in seconds since 1970.
pub fn http_date(v: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(v.trim())
        .ok()
        .map(|d| d.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_classified_from_their_text() {
        for (src, kind) in [
            ("file.txt", SourceKind::Local),
            ("dir/x.tar.gz", SourceKind::Local),
            ("http://example.com/a.tar", SourceKind::Http),
            ("HTTPS://example.com/x?y=1", SourceKind::Http),
            ("git@github.com:moby/buildkit.git", SourceKind::Git),
            ("git://example.com/repo", SourceKind::Git),
            ("ssh://git@example.com/repo", SourceKind::Git),
            ("https://github.com/moby/buildkit.git", SourceKind::Git),
            ("https://github.com/moby/buildkit.git/", SourceKind::Git),
            ("https://example.com/repo#v1.0", SourceKind::Git),
        ] {
            assert_eq!(source_kind(src), kind, "{src}");
        }
    }

    #[test]
    fn names_checksums_dates_and_redirects() {
        assert_eq!(file_name_of("http://h/a/b.tar.gz?x=1").as_deref(), Some("b.tar.gz"));
        assert_eq!(file_name_of("http://h/"), None);
        assert_eq!(file_name_of("http://h"), None);
        let hex = "24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d";
        assert_eq!(
            Checksum::parse(&format!("sha256:{}", hex.to_uppercase()))
                .unwrap()
                .as_str(),
            format!("sha256:{hex}")
        );
        for bad in ["md5:abc", hex, "sha256:abc", "sha256:"] {
            assert!(Checksum::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(http_date("yesterday"), None);
        let base: hyper::Uri = "http://h:8080/dir/file?q".parse().unwrap();
        for (loc, want) in [
            ("https://other/x", "https://other/x"),
            ("/abs/y", "http://h:8080/abs/y"),
            ("rel", "http://h:8080/dir/rel"),
            ("//third/z", "http://third/z"),
        ] {
            assert_eq!(resolve_location(&base, loc).unwrap().to_string(), want, "{loc}");
        }
    }

    /// A one-shot HTTP server on loopback answering each connection with `answers`, in order.
    fn serve(answers: Vec<Vec<u8>>) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut s, _)) = l.accept() else { return };
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut s, &mut buf);
                let _ = std::io::Write::write_all(&mut s, &answer);
            }
        });
        format!("http://{addr}")
    }

    fn ok_answer(body: &[u8], extra: &str) -> Vec<u8> {
        let mut a = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        a.extend_from_slice(body);
        a
    }

    /// A proxy on loopback for `conns` connections: it answers an absolute-form GET itself and
    /// accepts a CONNECT (then hangs up); sends each request's head.
    fn proxy(conns: usize) -> (String, std::sync::mpsc::Receiver<String>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..conns {
                let Ok((mut s, _)) = l.accept() else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && std::io::Read::read(&mut s, &mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let answer = if head.starts_with("CONNECT ") {
                    b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec()
                } else {
                    ok_answer(b"via-proxy", "")
                };
                let _ = std::io::Write::write_all(&mut s, &answer);
                let _ = tx.send(head);
            }
        });
        (addr.to_string(), rx)
    }

    #[tokio::test]
    async fn downloads_go_through_the_proxies_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let limits = FetchLimits::default();
        let (addr, seen) = proxy(2);
        let proxies = Arc::new(
            Matcher::builder()
                .http(format!("http://user:pw@{addr}"))
                .https(format!("http://{addr}"))
                .build(),
        );
        // http: the whole URL asked of the proxy, with the proxy's credentials.
        let got = fetch_through("http://files.example:81/a.txt", dir.path(), None, &limits, &proxies)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&got.path).unwrap(), b"via-proxy");
        let head = seen.recv().unwrap();
        assert!(head.starts_with("GET http://files.example:81/a.txt HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("proxy-authorization: basic dxnlcjpwdw=="),
            "{head}"
        );
        // https: a tunnel (this proxy hangs up after it, so the download fails).
        let e = fetch_through("https://secure.example/b.txt", dir.path(), None, &limits, &proxies).await;
        assert!(e.is_err());
        let head = seen.recv().unwrap();
        assert!(head.starts_with("CONNECT secure.example:443 HTTP/1.1"), "{head}");
    }

    #[tokio::test]
    async fn fetches_follow_redirects_check_and_bound() {
        let dir = tempfile::tempdir().unwrap();
        let limits = FetchLimits::default();
        let base = serve(vec![
            b"HTTP/1.1 302 Found\r\nLocation: /files/real.bin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
            ok_answer(b"payload", "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
        ]);
        let got = fetch(&format!("{base}/start/first.bin"), dir.path(), None, &limits)
            .await
            .unwrap();
        assert_eq!(got.name, "first.bin", "named after the URL asked for");
        assert_eq!(std::fs::read(&got.path).unwrap(), b"payload");
        assert_eq!(got.last_modified, Some(784111777));
        let want = format!("sha256:{}", hex::encode(Sha256::digest(b"payload")));
        assert_eq!(got.digest, want);

        let base = serve(vec![ok_answer(b"payload", "")]);
        let wrong = Checksum::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        let e = fetch(&format!("{base}/c.bin"), dir.path(), Some(&wrong), &limits)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&want) && msg.contains(wrong.as_str()), "{msg}");
        assert!(!dir.path().join("c.bin").exists());

        let base = serve(vec![
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        ]);
        let e = fetch(&format!("{base}/missing"), dir.path(), None, &limits)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("404 Not Found") && e.to_string().contains("/missing"),
            "{e}"
        );

        let base = serve(vec![ok_answer(&[7u8; 100], "")]);
        let small = FetchLimits {
            max_bytes: 10,
            ..limits
        };
        let e = fetch(&format!("{base}/big"), dir.path(), None, &small)
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::TooLarge { .. }), "{e}");

        // a server that never answers
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let quick = FetchLimits {
            timeout: Duration::from_millis(300),
            ..limits
        };
        let e = fetch(&format!("http://{addr}/slow"), dir.path(), None, &quick)
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::Timeout { .. }), "{e}");
        drop(l);
    }
}
