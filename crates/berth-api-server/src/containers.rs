//! `/containers/...` routes.

use crate::error::{ApiError, ApiResult};
use crate::params::{empty, json, Params};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use berth_api::stream::{frame, StreamType};
use berth_engine::{ListOptions, LogOptions, WaitCondition};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

async fn create(State(e): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let req: berth_api::ContainerCreateBody = parse_json(&body)?;
    let id = e.containers.create(p.get("name"), req).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id, "Warnings": [] }),
    ))
}

async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let opts = ListOptions {
        all: p.flag("all"),
        limit: p.int("limit")?.unwrap_or(0).max(0) as usize,
        filters: p.filters()?,
    };
    let e2 = e.clone();
    let list = tokio::task::spawn_blocking(move || e2.containers.list(&opts))
        .await
        .map_err(|err| ApiError::internal(err.to_string()))??;
    Ok(json(StatusCode::OK, &list))
}

async fn inspect(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &e.containers.inspect(&id)?))
}

async fn start(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.containers.start(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn stop(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    e.containers.stop(&id, p.get("signal"), p.int("t")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn restart(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    e.containers.restart(&id, p.get("signal"), p.int("t")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn kill(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    e.containers.kill(&id, p.get("signal")).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn remove(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    if p.flag("link") {
        e.containers.remove_link(&id).await?;
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    e.containers.remove(&id, p.flag("force"), p.flag("v")).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Routes nothing else matched. `DELETE /containers/{name}?link=1` names a link as
/// `/<container>/<alias>`, with slashes a path parameter cannot hold (dockerd's route is
/// `/containers/{name:.*}`); everything else is a 404.
pub(crate) async fn fallback(State(e): State<AppState>, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path = crate::strip_version(uri.path()).1.to_string();
    let p = Params::from_query(uri.query());
    if method == axum::http::Method::DELETE && p.flag("link") {
        if let Some(link) = path.strip_prefix("/containers/") {
            return match e.containers.remove_link(link).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(err) => axum::response::IntoResponse::into_response(ApiError::from(err)),
            };
        }
    }
    crate::error::page_not_found().await
}

async fn rename(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let name = p
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    e.containers.rename(&id, name).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn resize(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let h = p.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = p.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    e.containers.resize(&id, h, w).await?;
    Ok(empty(StatusCode::OK))
}

async fn wait(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let cond = WaitCondition::parse(p.get("condition").unwrap_or(""))?;
    // Register the waiter before answering; send the headers at once and the body at the exit, as
    // dockerd does.
    let waiting = e.containers.prepare_wait(&id, cond)?;
    let stream = futures_util::stream::once(async move {
        let (code, err) = waiting.await;
        let body = serde_json::json!({
            "StatusCode": code,
            "Error": err.filter(|m| !m.is_empty()).map(|m| serde_json::json!({ "Message": m })),
        });
        Ok::<_, std::io::Error>(Bytes::from(format!("{body}\n")))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

async fn logs(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let tail = match p.get("tail") {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for tail: {t:?}")))?,
        ),
    };
    let time_param = |key: &str| -> ApiResult<Option<f64>> {
        match p.get(key) {
            None | Some("") | Some("0") => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    };
    let opts = LogOptions {
        stdout: p.flag("stdout"),
        stderr: p.flag("stderr"),
        follow: p.flag("follow"),
        tail,
        since: time_param("since")?,
        until: time_param("until")?,
        timestamps: p.flag("timestamps"),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let mut logs = e.containers.logs(&id, opts).await?;
    let tty = logs.tty;
    let stream = async_stream(move |tx| async move {
        while let Some(f) = logs.frames.recv().await {
            let chunk = if tty {
                Bytes::from(f.data)
            } else {
                let kind = StreamType::from_byte(f.stream).unwrap_or(StreamType::Stdout);
                Bytes::from(frame(kind, &f.data))
            };
            if tx.send(Ok(chunk)).await.is_err() {
                break;
            }
        }
    });
    let ctype = crate::params::stream_content_type(tty);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ctype)
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

/// A body stream fed by a task.
pub(crate) fn async_stream<F, Fut>(f: F) -> tokio_stream_shim::ReceiverStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    tokio_stream_shim::ReceiverStream(rx)
}

/// Forwards a shim's output into a response body stream until the output ends or the client goes.
pub(crate) async fn forward_output(
    shim: &mut berth_engine::AttachStream,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tokio::io::AsyncReadExt::read(shim, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send(Ok(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// A minimal `Stream` over an mpsc receiver (what tokio-stream's wrapper does).
pub(crate) mod tokio_stream_shim {
    use axum::body::Bytes;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Receiver as a stream of body chunks.
    pub struct ReceiverStream(pub tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

    impl futures_util::Stream for ReceiverStream {
        type Item = Result<Bytes, std::io::Error>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0.poll_recv(cx)
        }
    }
}

async fn attach(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let (stdin, stdout, stderr) = (p.flag("stdin"), p.flag("stdout"), p.flag("stderr"));
    let wants_upgrade = req.headers().get(header::UPGRADE).is_some();
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let conn = req.extensions().get::<crate::ConnFd>().copied();
    if !p.flag("stream") && p.flag("logs") {
        let up = on_upgrade.filter(|_| wants_upgrade);
        return crate::attach_logs::past_output(e, &id, stdout, stderr, up).await;
    }
    // Registered before the response goes out, so a start that follows cannot miss this client.
    let stdin_wanted = stdin && wants_upgrade;
    let keys = detach_keys(p.get("detachKeys"))?;
    let (ticket, tty) = e.containers.prepare_attach(&id, stdin_wanted, stdout, stderr)?;
    // dockerd watches for the detach keys on TTY attaches only.
    let detach = tty.then_some(keys);
    let replay_logs = p.flag("logs");
    let ctype = crate::params::stream_content_type(tty);
    match (wants_upgrade, on_upgrade) {
        (true, Some(on_upgrade)) => {
            tokio::spawn(async move {
                // With `logs=1` the past output goes first and the live stream is taken after it
                // (the attach is registered already: nothing of a run that starts meanwhile is lost).
                let (client, shim) = if replay_logs {
                    let Ok(upgraded) = on_upgrade.await else { return };
                    let mut client = TokioIo::new(upgraded);
                    if crate::attach_logs::replay(&e, &id, stdout, stderr, &mut client)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    (client, e.containers.finish_attach(ticket).await)
                } else {
                    let shim = e.containers.finish_attach(ticket).await;
                    let upgraded = match on_upgrade.await {
                        Ok(u) => u,
                        Err(err) => {
                            tracing::debug!("attach upgrade failed: {err}");
                            return;
                        }
                    };
                    (TokioIo::new(upgraded), shim)
                };
                match shim {
                    Ok(s) => pipe(client, s, stdin_wanted, detach, async {}, conn).await,
                    Err(err) => tracing::debug!("attach to {id}: {err}"),
                }
            });
            Ok(crate::params::switching_protocols(ctype))
        }
        _ => {
            // No upgrade: stream the output as the response body (stdin cannot be sent this way).
            let stream = async_stream(move |tx| async move {
                let Ok(mut shim) = e.containers.finish_attach(ticket).await else {
                    return;
                };
                crate::containers::forward_output(&mut shim, &tx).await;
            });
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, ctype)
                .body(Body::from_stream(stream))
                .unwrap_or_default())
        }
    }
}

/// Copies the shim's output to the client until the process ends, and the client's input to the
/// shim; `finished` is awaited before the client's connection is closed (an exec's exit is recorded
/// first, so the client's inspect that follows sees it). With `detach` (a TTY attach), the client's
/// input is watched for the detach keys, as dockerd does: on them the connection ends and the
/// process runs on.
pub(crate) async fn pipe<C>(
    client: C,
    shim: berth_engine::AttachStream,
    stdin: bool,
    detach: Option<Vec<u8>>,
    finished: impl std::future::Future<Output = ()>,
    conn: Option<crate::ConnFd>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(shim);
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        if !stdin {
            // Drain and ignore whatever the client sends.
            let _ = tokio::io::copy(&mut cr, &mut tokio::io::sink()).await;
            return;
        }
        let mut scanner = detach.map(berth_api::detach::DetachScanner::new);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = match scanner.as_mut() {
                Some(s) => match s.feed(&buf[..n]) {
                    Some(d) => d,
                    None => {
                        let _ = detached_tx.send(());
                        return;
                    }
                },
                None => buf[..n].to_vec(),
            };
            if sw.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    });
    head_consumed(conn).await;
    tokio::select! {
        _ = tokio::io::copy(&mut sr, &mut cw) => finished.await,
        Ok(()) = detached_rx => tracing::debug!("client detached with the detach keys"),
    }
    let _ = cw.shutdown().await;
    input.abort();
}

/// The longest a stream's output waits for the client to read the `101` head.
const HEAD_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Waits until the client has read all that was sent on its unix connection (the `101` head),
/// at most [`HEAD_WAIT`]: a client that reads the head through a buffered reader (docker-py)
/// loses the output bytes that arrive in the same read. A client that reads at once (berth, the
/// docker CLI) costs one `ioctl`.
pub(crate) async fn head_consumed(conn: Option<crate::ConnFd>) {
    let Some(crate::ConnFd(fd)) = conn else { return };
    if unread(fd) <= 0 {
        return;
    }
    // Not read yet: the client was woken by the write and reads within microseconds, far below
    // tokio's millisecond timer, so a blocking thread looks again at short, growing intervals.
    let _ = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + HEAD_WAIT;
        let mut pause = std::time::Duration::from_micros(20);
        while unread(fd) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(2));
        }
    })
    .await;
}

/// Bytes sent on unix socket `fd` that the peer has not read (0 on an error).
fn unread(fd: std::os::fd::RawFd) -> libc::c_int {
    let mut unread: libc::c_int = 0;
    // SAFETY: `fd` is the connection's socket, open while its upgraded stream (which the caller
    // of `head_consumed` holds) lives; SIOCOUTQ (= TIOCOUTQ) writes one int. On a descriptor that
    // is no longer a socket it fails, and 0 is answered.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut unread) };
    if r != 0 {
        0
    } else {
        unread
    }
}

/// The `detachKeys` query (Docker's default when absent); a bad list is a 400 as dockerd words it.
pub(crate) fn detach_keys(q: Option<&str>) -> ApiResult<Vec<u8>> {
    match q.filter(|k| !k.is_empty()) {
        None => Ok(berth_api::detach::DEFAULT_DETACH_KEYS.to_vec()),
        Some(k) => berth_api::detach::parse_detach_keys(k)
            .map_err(|e| ApiError::bad_request(format!("Invalid detach keys ({k}) provided: {e}"))),
    }
}

async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::from_query(q.as_deref()).filters()?;
    let (removed, space) = e.containers.prune(&filters).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "ContainersDeleted": removed, "SpaceReclaimed": space }),
    ))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}", delete(remove))
}
