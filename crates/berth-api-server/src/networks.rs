//! `/networks`: list, inspect, create, remove, connect, disconnect, prune.

use crate::containers::parse_json;
use crate::error::{ApiError, ApiResult};
use crate::params::{json, Params};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use berth_api::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use berth_engine::EngineError;

/// Runs a network operation (netlink, nftables, disk) off the executor.
async fn off<T: Send + 'static>(f: impl FnOnce() -> berth_engine::Result<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::from(EngineError::Internal(format!("network task failed: {e}"))))?
        .map_err(ApiError::from)
}

async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::from_query(q.as_deref()).filters()?;
    Ok(json(StatusCode::OK, &e.networks.list(&filters)?))
}

async fn inspect(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &e.networks.inspect(&id)?))
}

async fn create(State(e): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = parse_json(&body)?;
    let nets = e.networks.clone();
    let (id, warning) = off(move || nets.create(req)).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id, "Warning": warning }),
    ))
}

async fn remove(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let nets = e.networks.clone();
    off(move || nets.remove(&id)).await?;
    Ok(crate::params::empty(StatusCode::NO_CONTENT))
}

async fn connect(State(e): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkConnectRequest = parse_json(&body)?;
    let container = req
        .container
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("no container specified"))?;
    e.containers
        .connect(&container, &id, req.endpoint_config.unwrap_or_default())
        .await?;
    Ok(crate::params::empty(StatusCode::OK))
}

async fn disconnect(State(e): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkDisconnectRequest = parse_json(&body)?;
    let container = req
        .container
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("no container specified"))?;
    e.containers
        .disconnect(&container, &id, req.force.unwrap_or(false))
        .await?;
    Ok(crate::params::empty(StatusCode::OK))
}

async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::from_query(q.as_deref()).filters()?;
    let nets = e.networks.clone();
    let deleted = off(move || nets.prune(&filters)).await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "NetworksDeleted": deleted })))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}
