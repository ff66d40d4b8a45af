//! Routes about a running container's resources: pause, unpause, stats, top, update.

use crate::containers::async_stream;
use crate::error::{ApiError, ApiResult};
use crate::params::{empty, json, Params};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

async fn pause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.containers.pause(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn unpause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.containers.unpause(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn stats(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    // `stream` defaults to true (the spec); `one-shot` only goes with `stream=false`.
    let stream = p.get("stream").map(|_| p.flag("stream")).unwrap_or(true);
    let one_shot = p.flag("one-shot");
    if stream && one_shot {
        return Err(ApiError::bad_request("cannot have stream=true and one-shot=true"));
    }
    let mut rx = e.containers.stats(&id, stream, one_shot)?;
    let body = async_stream(move |tx| async move {
        while let Some(v) = rx.recv().await {
            let line = format!("{v}\n");
            if tx.send(Ok(Bytes::from(line))).await.is_err() {
                break;
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_default())
}

async fn top(State(e): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let top = e.containers.top(&id, p.get("ps_args")).await?;
    Ok(json(StatusCode::OK, &top))
}

async fn update(State(e): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let u: berth_engine::UpdateConfig = if body.is_empty() {
        Default::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| ApiError::bad_request(format!("invalid JSON: {err}")))?
    };
    let warnings = e.containers.update(&id, u).await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "Warnings": warnings })))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/update", post(update))
}
