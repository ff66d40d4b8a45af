//! `POST /containers/{id}/attach?logs=1&stream=0`: Docker answers with the container's past output
//! (from its log) and ends, over the hijacked connection when the client asked for an upgrade.

use crate::error::ApiResult;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use berth_api::stream::{frame, StreamType};
use berth_engine::LogOptions;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

/// How long the past output waits after the `101` head (see `past_output`).
const HEAD_FIRST: std::time::Duration = std::time::Duration::from_millis(100);

/// Writes the container's past output to an attached connection before its live output
/// (`attach?logs=1&stream=1`, as dockerd: the log up to now, then the stream).
pub(crate) async fn replay<W: tokio::io::AsyncWrite + Unpin>(
    e: &AppState,
    id: &str,
    stdout: bool,
    stderr: bool,
    conn: &mut W,
) -> std::io::Result<()> {
    let opts = LogOptions {
        stdout,
        stderr,
        ..Default::default()
    };
    let Ok(mut logs) = e.containers.logs(id, opts).await else {
        return Ok(());
    };
    let tty = logs.tty;
    let mut first = true;
    while let Some(f) = logs.frames.recv().await {
        if first {
            // See `past_output`: docker-py loses bytes that arrive together with the head.
            tokio::time::sleep(HEAD_FIRST).await;
            first = false;
        }
        let bytes = if tty {
            f.data
        } else {
            frame(StreamType::from_byte(f.stream).unwrap_or(StreamType::Stdout), &f.data)
        };
        conn.write_all(&bytes).await?;
    }
    Ok(())
}

/// Answers an attach that only wants the past output.
pub(crate) async fn past_output(
    e: AppState,
    id: &str,
    stdout: bool,
    stderr: bool,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let opts = LogOptions {
        stdout,
        stderr,
        ..Default::default()
    };
    let mut logs = e.containers.logs(id, opts).await?;
    let tty = logs.tty;
    let ctype = crate::params::stream_content_type(tty);
    let encode = move |f: berth_engine::LogFrame| -> Bytes {
        if tty {
            Bytes::from(f.data)
        } else {
            let kind = StreamType::from_byte(f.stream).unwrap_or(StreamType::Stdout);
            Bytes::from(frame(kind, &f.data))
        }
    };
    match on_upgrade {
        Some(on_upgrade) => {
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else { return };
                let mut conn = TokioIo::new(upgraded);
                // docker-py reads the response head through a buffered reader and then reads the raw
                // socket: bytes that arrive together with the head are lost to it. The output is
                // all there already, so it goes a moment after the head.
                tokio::time::sleep(HEAD_FIRST).await;
                while let Some(f) = logs.frames.recv().await {
                    if conn.write_all(&encode(f)).await.is_err() {
                        return;
                    }
                }
                let _ = conn.shutdown().await;
            });
            Ok(crate::params::switching_protocols(ctype))
        }
        None => {
            let stream = crate::containers::async_stream(move |tx| async move {
                while let Some(f) = logs.frames.recv().await {
                    if tx.send(Ok(encode(f))).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, ctype)
                .body(Body::from_stream(stream))
                .unwrap_or_default())
        }
    }
}
