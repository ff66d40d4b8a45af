//! `/_ping`, `/version`, `/info`.

use crate::params::json;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

async fn ping() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .header(header::PRAGMA, "no-cache")
        .header("Builder-Version", "1")
        .body(Body::from("OK"))
        .unwrap_or_default()
}

async fn version(State(engine): State<AppState>) -> Response {
    json(StatusCode::OK, &engine.system.version())
}

async fn info(State(engine): State<AppState>) -> Response {
    let e = engine.clone();
    match tokio::task::spawn_blocking(move || e.system.info()).await {
        Ok(info) => {
            // The API model has no RegistryConfig yet: add dockerd's object to the JSON.
            let mut v = serde_json::to_value(&info).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("RegistryConfig".into(), engine.distribution.registry_config());
            }
            json(StatusCode::OK, &v)
        }
        Err(e) => crate::error::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /system/df`: images, containers with their sizes; no volumes or build cache yet.
async fn disk_usage(State(engine): State<AppState>) -> Response {
    let images = match engine.images.disk_usage().await {
        Ok(i) => i,
        Err(err) => return crate::ApiError::from(err).into_response(),
    };
    let e = engine.clone();
    let containers = match tokio::task::spawn_blocking(move || e.containers.disk_usage()).await {
        Ok(c) => c,
        Err(err) => return crate::error::json_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    };
    let e = engine.clone();
    let volumes = match tokio::task::spawn_blocking(move || e.volumes.disk_usage()).await {
        Ok(v) => v,
        Err(err) => return crate::error::json_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "LayersSize": images.1,
            "Images": images.0,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }),
    )
}

/// `GET /plugins`: berth has no plugins.
async fn plugins() -> Response {
    json(StatusCode::OK, &serde_json::json!([]))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(disk_usage))
        .route("/plugins", get(plugins))
}
