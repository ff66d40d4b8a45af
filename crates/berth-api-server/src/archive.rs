//! A container's files: `HEAD`/`GET`/`PUT /containers/{id}/archive` (`docker cp`),
//! `GET /containers/{id}/export`, `GET /containers/{id}/changes` (`docker diff`) and `POST /commit`.

use crate::error::{ApiError, ApiResult};
use crate::images::{body_reader, ChannelWriter};
use crate::params::{json, Params};
use crate::AppState;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use berth_engine::{CommitRequest, ExtractOptions, PathStat};

/// The header carrying a path's stat (base64 of its JSON, as dockerd sends it).
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn path_param(p: &Params) -> ApiResult<String> {
    match p.get("path") {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(ApiError::bad_request("path is required")),
    }
}

fn stat_header(stat: &PathStat) -> String {
    let json = serde_json::to_vec(stat).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

async fn head(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let path = path_param(&p)?;
    let stat = e.containers.archive_stat(&id, &path).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(STAT_HEADER, stat_header(&stat))
        .body(Body::empty())
        .unwrap_or_default())
}

/// A body streamed from a blocking writer, and that writer.
fn tar_body() -> (ChannelWriter, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let stream = crate::containers::tokio_stream_shim::ReceiverStream(rx);
    (ChannelWriter(tx), Body::from_stream(stream))
}

async fn get_archive(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let path = path_param(&p)?;
    let (w, body) = tar_body();
    let w = std::io::BufWriter::with_capacity(128 * 1024, w);
    let stat = e.containers.archive_get(&id, &path, w).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .header(STAT_HEADER, stat_header(&stat))
        .body(body)
        .unwrap_or_default())
}

async fn put_archive(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let path = path_param(&p)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: p.flag("noOverwriteDirNonDir"),
        copy_uid_gid: p.flag("copyUIDGID"),
    };
    e.containers.archive_put(&id, &path, body_reader(req), opts).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .unwrap_or_default())
}

async fn export(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let (w, body) = tar_body();
    let w = std::io::BufWriter::with_capacity(128 * 1024, w);
    e.containers.export(&id, w).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(body)
        .unwrap_or_default())
}

async fn changes(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let list = e.containers.changes(&id).await?;
    Ok(json(StatusCode::OK, &list))
}

async fn commit(State(e): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let Some(container) = p.get("container").filter(|c| !c.is_empty()).map(str::to_string) else {
        return Err(ApiError::bad_request("container is required"));
    };
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(serde_json::Value::Null) => serde_json::Map::new(),
            Ok(_) => return Err(ApiError::bad_request("the commit config must be a JSON object")),
            Err(err) => return Err(ApiError::bad_request(format!("invalid JSON: {err}"))),
        }
    };
    let req = CommitRequest {
        repo: p.get("repo").map(str::to_string),
        tag: p.get("tag").map(str::to_string),
        comment: p.get("comment").unwrap_or_default().to_string(),
        author: p.get("author").unwrap_or_default().to_string(),
        changes: p.all("changes"),
        config,
        // Docker pauses a running container while it commits unless told not to.
        pause: p.get("pause").is_none_or(|v| !matches!(v, "0" | "false" | "False")),
        ..Default::default()
    };
    let id = e.containers.commit(&container, req).await?;
    Ok(json(StatusCode::CREATED, &serde_json::json!({ "Id": id })))
}

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/archive", get(get_archive).head(head).put(put_archive))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
}
