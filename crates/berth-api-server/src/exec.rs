//! `/containers/{id}/exec` and `/exec/...` routes: create, start (detached, or a hijacked stream
//! like attach: raw with a TTY, else multiplexed), resize and inspect.

use crate::containers::{async_stream, parse_json, pipe};
use crate::error::{ApiError, ApiResult};
use crate::params::{empty, json, Params};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use berth_api::models::{ExecConfig, ExecStartConfig};
use berth_api::stream::{frame, StreamType};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

/// `Cmd` may be sent as one string (Docker's `StrSlice`); it is then a one-element list.
fn exec_config(body: &Bytes) -> ApiResult<ExecConfig> {
    let mut v: serde_json::Value = parse_json(body)?;
    if let Some(cmd) = v.get_mut("Cmd") {
        if let Some(s) = cmd.as_str() {
            *cmd = serde_json::json!([s]);
        }
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

fn console_size(v: Option<&[i32]>) -> ApiResult<Option<(u16, u16)>> {
    match v {
        None | Some([]) => Ok(None),
        Some([h, w]) if *h >= 0 && *w >= 0 => Ok(Some((
            (*h).min(u16::MAX as i32) as u16,
            (*w).min(u16::MAX as i32) as u16,
        ))),
        Some(_) => Err(ApiError::bad_request(
            "ConsoleSize must be [height, width] of non-negative numbers",
        )),
    }
}

async fn create(State(e): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let cfg = exec_config(&body)?;
    let exec_id = e.containers.exec_create(&id, cfg)?;
    Ok(json(StatusCode::CREATED, &serde_json::json!({ "Id": exec_id })))
}

async fn inspect(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let mut v = serde_json::to_value(e.containers.exec_inspect(&id)?)
        .map_err(|err| ApiError::internal(format!("encoding exec inspect: {err}")))?;
    // dockerd sends `"ExitCode": null` while the process runs; clients index it unconditionally.
    if let Some(o) = v.as_object_mut() {
        o.entry("ExitCode").or_insert(serde_json::Value::Null);
    }
    Ok(json(StatusCode::OK, &v))
}

async fn resize(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let h = p.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = p.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    e.containers.exec_resize(&id, h, w).await?;
    Ok(empty(StatusCode::OK))
}

/// The error of a start that failed after the stream began, as dockerd writes it: a line on stdout.
fn error_line(tty: bool, message: &str) -> Vec<u8> {
    let line = format!("{message}\r\n");
    if tty {
        line.into_bytes()
    } else {
        frame(StreamType::Stdout, line.as_bytes())
    }
}

async fn start(State(e): State<AppState>, Path(id): Path<String>, mut req: Request) -> ApiResult<Response> {
    let wants_upgrade = req.headers().get(header::UPGRADE).is_some();
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let conn = req.extensions().get::<crate::ConnFd>().copied();
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|err| ApiError::bad_request(format!("reading the request body: {err}")))?;
    let sc: ExecStartConfig = parse_json(&body)?;
    let size = console_size(sc.console_size.as_deref())?;
    let ticket = e.containers.exec_prepare_start(&id, size)?;
    if sc.detach.unwrap_or(false) {
        e.containers.exec_start(ticket, false).await?;
        return Ok(empty(StatusCode::OK));
    }
    let tty = ticket.tty();
    let stdin = ticket.stdin() && wants_upgrade;
    // dockerd watches a TTY exec's input for its detach keys (the exec's own, else the default).
    let detach = if tty {
        Some(crate::containers::detach_keys(Some(ticket.detach_keys()))?)
    } else {
        None
    };
    let ctype = crate::params::stream_content_type(tty);
    match (wants_upgrade, on_upgrade) {
        (true, Some(on_upgrade)) => {
            tokio::spawn(async move {
                // The process starts while the 101 goes out (its output waits in the shim's
                // stream): the upgrade and the start overlap instead of following each other.
                let (upgraded, started) = tokio::join!(on_upgrade, e.containers.exec_start(ticket, true));
                let upgraded = match upgraded {
                    Ok(u) => u,
                    Err(err) => {
                        // The client went away: the exec runs on without it, as with dockerd.
                        tracing::debug!("exec upgrade failed: {err}");
                        return;
                    }
                };
                let mut client = TokioIo::new(upgraded);
                match started {
                    Ok(Some(shim)) => pipe(client, shim, stdin, detach, e.containers.exec_exited(&id), conn).await,
                    Ok(None) => {
                        let _ = client.shutdown().await;
                    }
                    Err(err) => {
                        tracing::debug!("exec {id}: {err}");
                        crate::containers::head_consumed(conn).await;
                        let _ = client.write_all(&error_line(tty, &err.to_string())).await;
                        let _ = client.shutdown().await;
                    }
                }
            });
            Ok(crate::params::switching_protocols(ctype))
        }
        _ => {
            // No upgrade: the output is the response body (no stdin this way).
            let stream = async_stream(move |tx| async move {
                let mut shim = match e.containers.exec_start(ticket, true).await {
                    Ok(Some(s)) => s,
                    Ok(None) => return,
                    Err(err) => {
                        let _ = tx.send(Ok(Bytes::from(error_line(tty, &err.to_string())))).await;
                        return;
                    }
                };
                crate::containers::forward_output(&mut shim, &tx).await;
                e.containers.exec_exited(&id).await;
            });
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, ctype)
                .body(Body::from_stream(stream))
                .unwrap_or_default())
        }
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}
