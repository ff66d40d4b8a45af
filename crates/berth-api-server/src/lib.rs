//! The Engine API over HTTP: each route translates a request into one service call and its result back
//! into Docker's response shape. Connections are served by hyper with upgrades enabled, so `attach`
//! can hijack the connection the way Docker clients expect.

mod archive;
mod attach_logs;
mod build;
mod containers;
mod distribution;
mod error;
mod events;
mod exec;
mod images;
mod metrics;
mod networks;
mod params;
mod resources;
mod system;
mod volumes;

pub use error::ApiError;
pub use metrics::serve_metrics;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response};
use axum::Router;
use berth_engine::Services;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tower::ServiceExt;

/// Shared state of every handler.
pub type AppState = Arc<Services>;

/// All routes, without the version prefix (see [`strip_version`]).
pub fn router(services: Arc<Services>) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(resources::routes())
        .merge(archive::routes())
        .merge(exec::routes())
        .merge(distribution::routes())
        .merge(build::routes())
        .merge(images::routes())
        .merge(events::routes())
        .merge(networks::routes())
        .merge(volumes::routes())
        .fallback(containers::fallback)
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(services)
}

/// Splits a `/v1.NN/...` prefix off the path. Returns the version, or an error message when the
/// version is outside what berth supports (Docker answers 400 then).
pub fn strip_version(path: &str) -> (Option<String>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(i) = rest.find('/') {
            let v = &rest[..i];
            if !v.is_empty()
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            {
                return (Some(v.to_string()), &rest[i..]);
            }
        }
    }
    (None, path)
}

fn version_tuple(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Checks a requested API version against berth's range, with Docker's messages.
pub fn check_version(v: &str) -> Result<(), String> {
    let want = version_tuple(v);
    if want > version_tuple(berth_api::API_VERSION) {
        return Err(format!(
            "client version {v} is too new. Maximum supported API version is {}",
            berth_api::API_VERSION
        ));
    }
    if want < version_tuple(berth_api::MIN_API_VERSION) {
        return Err(format!(
            "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            berth_api::MIN_API_VERSION
        ));
    }
    Ok(())
}

/// Handles one request: strips the version prefix, routes, and adds Docker's common headers.
pub async fn handle<B>(router: Router, req: Request<B>) -> Result<Response<Body>, Infallible>
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (mut parts, body) = req.into_parts();
    if let Some(refused) = error::check_head(&parts) {
        return Ok(refused);
    }
    let (version, rest) = strip_version(parts.uri.path());
    if let Some(v) = &version {
        if let Err(msg) = check_version(v) {
            return Ok(error::json_error(axum::http::StatusCode::BAD_REQUEST, &msg));
        }
        let rest = rest.to_string();
        let pq = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest,
        };
        match pq.parse() {
            Ok(uri) => parts.uri = uri,
            Err(_) => {
                return Ok(error::json_error(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid request path",
                ))
            }
        }
    }
    let req = Request::from_parts(parts, Body::new(body));
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let mut resp = error::json_body(resp).await;
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(berth_api::API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    Ok(resp)
}

/// The descriptor of a request's unix connection (a request extension), for the hijacked streams
/// to see when the client has read their `101` head (see `containers::head_consumed`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnFd(pub std::os::fd::RawFd);

/// Serves one accepted connection (unix or tcp) until the client closes it; `fd` is a unix
/// connection's descriptor.
pub async fn serve_connection<IO>(router: Router, io: IO, fd: Option<std::os::fd::RawFd>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        if let Some(fd) = fd {
            req.extensions_mut().insert(ConnFd(fd));
        }
        handle(router.clone(), req)
    });
    // hyper's own limits sit above berth's (error::check_head), so an oversized request gets
    // Docker's JSON error from berth rather than hyper's empty one.
    // Half-closes are answered: a client may shut its write side down once the request is sent
    // and still read the answer (`docker system dial-stdio` does when its input ends).
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .half_close(true)
        .max_buf_size(error::HYPER_MAX_BUF)
        .max_headers(error::HYPER_MAX_HEADERS)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!("connection ended: {e}");
    }
}

/// Accepts connections on a unix listener forever.
pub async fn serve_unix(listener: tokio::net::UnixListener, services: Arc<Services>) -> std::io::Result<()> {
    let router = router(services);
    loop {
        let (stream, _) = listener.accept().await?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        tokio::spawn(serve_connection(router.clone(), stream, Some(fd)));
    }
}

/// Accepts connections on a tcp listener forever.
pub async fn serve_tcp(listener: tokio::net::TcpListener, services: Arc<Services>) -> std::io::Result<()> {
    let router = router(services);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(router.clone(), stream, None));
    }
}

/// How long a TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts TLS connections on a tcp listener forever (`--tlsverify`: the acceptor's config asks
/// for client certificates). A failed handshake ends that connection only.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    services: Arc<Services>,
) -> std::io::Result<()> {
    let router = router(services);
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(router, tls, None).await,
                Ok(Err(e)) => tracing::info!("TLS handshake with {peer} failed: {e}"),
                Err(_) => tracing::info!("TLS handshake with {peer} timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(
            strip_version("/v1.41/containers/json"),
            (Some("1.41".into()), "/containers/json")
        );
        assert_eq!(strip_version("/containers/json"), (None, "/containers/json"));
        assert_eq!(strip_version("/version"), (None, "/version"));
        assert!(check_version("1.41").is_ok());
        assert!(check_version("1.47").is_ok());
        assert!(check_version("1.99").unwrap_err().contains("too new"));
        assert!(check_version("1.12").unwrap_err().contains("too old"));
    }
}
