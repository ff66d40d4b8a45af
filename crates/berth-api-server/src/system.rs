//! `/_ping`, `/version`, `/info`.

use crate::params::json;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
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
        Ok(info) => json(StatusCode::OK, &info),
        Err(e) => crate::error::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
}
