//! Registry routes: pull (`POST /images/create?fromImage=`), push (`POST /images/{name}/push`),
//! `POST /auth`, `GET /images/search` and `GET /distribution/{name}/json`.
//!
//! Pull and push answer as dockerd: an error before the first progress message is an HTTP status
//! with `{"message": ..}` (404 for a missing repository, 401 for bad credentials); once messages
//! flow the answer is 200 and a failure is the stream's last line, `{"errorDetail":{..},"error":..}`.

use crate::containers::async_stream;
use crate::error::{ApiError, ApiResult};
use crate::params::{json, Params};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use berth_distribution::AuthConfig;
use berth_engine::{EngineError, Progress};
use serde_json::{json as j, Value};
use std::future::Future;
use tokio::sync::mpsc::UnboundedReceiver;

/// The credentials of `X-Registry-Auth` (anonymous when absent, empty or `{}`).
pub(crate) fn registry_auth(headers: &HeaderMap) -> ApiResult<AuthConfig> {
    let Some(v) = headers.get("x-registry-auth") else {
        return Ok(AuthConfig::default());
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not text"))?;
    AuthConfig::from_header(s).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn line(v: &Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

fn error_line(msg: &str) -> Bytes {
    line(&j!({ "errorDetail": { "message": msg }, "error": msg }))
}

/// Runs `op` and streams its progress; see the module doc for how errors are answered.
pub(crate) async fn progress_response<F>(op: F, mut rx: UnboundedReceiver<Value>) -> ApiResult<Response>
where
    F: Future<Output = berth_engine::Result<()>> + Send + 'static,
{
    let mut task = tokio::spawn(op);
    let joined = |r: Result<berth_engine::Result<()>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(EngineError::Internal(format!("operation failed: {e}"))))
    };
    let mut pending = Vec::new();
    let mut finished: Option<berth_engine::Result<()>> = None;
    // The first message, or the end of the operation (its progress sink then closes too).
    let first = tokio::select! {
        m = rx.recv() => m,
        r = &mut task => {
            finished = Some(joined(r));
            None
        }
    };
    pending.extend(first);
    if pending.is_empty() {
        let r = match finished.take() {
            Some(r) => r,
            None => joined((&mut task).await),
        };
        while let Ok(m) = rx.try_recv() {
            pending.push(m);
        }
        if pending.is_empty() {
            r?;
            finished = Some(Ok(()));
        } else {
            finished = Some(r);
        }
    }
    let finished: Option<Result<(), String>> = finished.map(|r| r.map_err(|e| e.to_string()));
    let stream = async_stream(move |tx| async move {
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(b)).await.is_ok() }
        };
        for m in &pending {
            // A client that went away does not stop the operation (as dockerd); keep draining.
            send(line(m)).await;
        }
        let finished = match finished {
            Some(f) => {
                while let Ok(m) = rx.try_recv() {
                    send(line(&m)).await;
                }
                f
            }
            None => {
                while let Some(m) = rx.recv().await {
                    send(line(&m)).await;
                }
                joined(task.await).map_err(|e| e.to_string())
            }
        };
        if let Err(msg) = finished {
            send(error_line(&msg)).await;
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

/// `POST /images/create?fromImage=&tag=&platform=`.
pub(crate) async fn pull(e: AppState, p: &Params, headers: &HeaderMap) -> ApiResult<Response> {
    let auth = registry_auth(headers)?;
    let (reference, all_tags) =
        berth_engine::distribution::pull_reference(p.get("fromImage").unwrap_or(""), p.get("tag").unwrap_or(""))?;
    let platform = p.get("platform").filter(|s| !s.is_empty()).map(String::from);
    let (progress, rx) = Progress::channel();
    let svc = e.distribution.clone();
    progress_response(
        async move {
            svc.pull(&reference, all_tags, platform.as_deref(), &auth, &progress)
                .await
        },
        rx,
    )
    .await
}

/// `POST /images/{name}/push?tag=`.
pub(crate) async fn push(e: AppState, name: &str, p: &Params, headers: &HeaderMap) -> ApiResult<Response> {
    let auth = registry_auth(headers)?;
    let targets = e.distribution.push_targets(name, p.get("tag").unwrap_or("")).await?;
    let (progress, rx) = Progress::channel();
    let svc = e.distribution.clone();
    progress_response(async move { svc.push(&targets, &auth, &progress).await }, rx).await
}

async fn auth(State(e): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let cfg: AuthConfig = if body.is_empty() {
        AuthConfig::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::bad_request(format!("invalid auth configuration: {err}")))?
    };
    let (status, token) = e.distribution.login(&cfg).await?;
    Ok(json(StatusCode::OK, &j!({ "Status": status, "IdentityToken": token })))
}

async fn search(State(e): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let term = p
        .get("term")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("term is required"))?;
    let limit = match p.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<u32>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 25,
    };
    let auth = registry_auth(&headers)?;
    let results = e.distribution.search(term, limit, &auth).await?;
    Ok(json(StatusCode::OK, &results))
}

async fn inspect(State(e): State<AppState>, Path(rest): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(ApiError::from(EngineError::NotFound("page not found".into())));
    };
    let auth = registry_auth(&headers)?;
    Ok(json(
        StatusCode::OK,
        &e.distribution.inspect_distribution(name, &auth).await?,
    ))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth", post(auth))
        .route("/images/search", get(search))
        .route("/distribution/{*rest}", get(inspect))
}
