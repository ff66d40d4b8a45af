//! `/volumes`: list, create, inspect, remove, prune.

use crate::containers::parse_json;
use crate::error::{ApiError, ApiResult};
use crate::params::{empty, json, Params};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use berth_api::models::VolumeCreateOptions;
use berth_engine::EngineError;

/// Runs a volume operation (disk, mounts) off the executor.
async fn off<T: Send + 'static>(f: impl FnOnce() -> berth_engine::Result<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::from(EngineError::Internal(format!("volume task failed: {e}"))))?
        .map_err(ApiError::from)
}

async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::from_query(q.as_deref()).filters()?;
    let vols = e.volumes.clone();
    let list = off(move || vols.list(&filters)).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "Volumes": list, "Warnings": [] }),
    ))
}

async fn create(State(e): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: VolumeCreateOptions = if body.is_empty() {
        Default::default()
    } else {
        parse_json(&body)?
    };
    let vols = e.volumes.clone();
    let v = off(move || vols.create(req)).await?;
    Ok(json(StatusCode::CREATED, &v))
}

async fn inspect(State(e): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &e.volumes.inspect(&name)?))
}

async fn remove(State(e): State<AppState>, Path(name): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let force = Params::from_query(q.as_deref()).flag("force");
    let vols = e.volumes.clone();
    off(move || vols.remove(&name, force)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::from_query(q.as_deref()).filters()?;
    let vols = e.volumes.clone();
    let (deleted, space) = off(move || vols.prune(&filters)).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "VolumesDeleted": deleted, "SpaceReclaimed": space }),
    ))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}
