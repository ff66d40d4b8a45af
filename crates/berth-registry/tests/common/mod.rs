//! Test helpers: a registry on 127.0.0.1:0 in a temp dir, and a small hyper client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use berth_registry::{Registry, ServerConfig};
use berth_types::Digest;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// A running registry; shut down on drop.
pub struct Server {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Starts a registry with `cfg` (its root is replaced by a fresh temp dir unless `keep_root`).
pub async fn start_with(mut cfg: ServerConfig, tls: Option<Arc<rustls::ClientConfig>>) -> Server {
    let dir = if cfg.root.as_os_str().is_empty() {
        let d = tempfile::tempdir().unwrap();
        cfg.root = d.path().join("root");
        Some(d)
    } else {
        None
    };
    let root = cfg.root.clone();
    let reg = Registry::open(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        berth_registry::serve(reg, listener, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        root,
        tls,
        stop: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

pub async fn start() -> Server {
    start_with(ServerConfig::default(), None).await
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    /// The first error code of a spec error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("").to_string()
    }
}

async fn send_on<I>(io: I, req: Request<Full<Bytes>>) -> Resp
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

impl Server {
    /// Sends one request on a fresh connection.
    pub async fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body.into())).unwrap();
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        match &self.tls {
            None => send_on(tcp, req).await,
            Some(cfg) => {
                let conn = tokio_rustls::TlsConnector::from(cfg.clone());
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let tls = conn.connect(name, tcp).await.unwrap();
                send_on(tls, req).await
            }
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &[], Bytes::new()).await
    }

    /// Pushes a blob with a single POST; returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256(data);
        let r = self
            .req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[("content-type", "application/octet-stream")],
                Bytes::copy_from_slice(data),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        d
    }

    /// Pushes a config and one layer and returns the manifest bytes referencing them.
    pub async fn push_image(&self, repo: &str, seed: &str) -> (Vec<u8>, Digest) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let layer = format!("layer {seed}");
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let ld = self.push_blob(repo, layer.as_bytes()).await;
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER, "digest": ld.to_string(), "size": layer.len()}],
        });
        let bytes = serde_json::to_vec(&m).unwrap();
        let d = Digest::sha256(&bytes);
        (bytes, d)
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, ct: &str, data: &[u8]) -> Resp {
        self.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", ct)],
            Bytes::copy_from_slice(data),
        )
        .await
    }

    /// Files under a store subdirectory (recursively).
    pub fn files_under(&self, sub: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.join(sub)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}
