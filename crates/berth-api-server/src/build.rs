//! `POST /build` (the classic builder's API: the context tar as the body, the options in the
//! query) and its JSON stream.

use crate::distribution::progress_response;
use crate::error::{ApiError, ApiResult};
use crate::images::body_reader;
use crate::params::Params;
use crate::AppState;
use axum::extract::{RawQuery, Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use berth_engine::{BuildOptions, Progress};
use std::collections::BTreeMap;

/// A query parameter holding a JSON object of strings (`buildargs`, `labels`); a null value of
/// `buildargs` means "from the environment", which the client resolves, so it is dropped.
fn json_map(p: &Params, key: &str) -> ApiResult<BTreeMap<String, String>> {
    match p.get(key) {
        None | Some("") => Ok(BTreeMap::new()),
        Some(raw) => {
            let v: BTreeMap<String, Option<String>> =
                serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
            Ok(v.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
        }
    }
}

/// `cachefrom`: a JSON array of image references.
fn json_list(p: &Params, key: &str) -> ApiResult<Vec<String>> {
    match p.get(key) {
        None | Some("") => Ok(Vec::new()),
        Some(raw) => serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}"))),
    }
}

/// The header berth's CLI sends a build's secrets in: base64url of a JSON object of id → base64
/// of the content (a header, so they are in no URL and no log line).
pub const SECRETS_HEADER: &str = "x-berth-build-secrets";

/// The secrets of [`SECRETS_HEADER`].
fn secrets(headers: &axum::http::HeaderMap) -> ApiResult<BTreeMap<String, berth_engine::Secret>> {
    use base64::Engine as _;
    let Some(v) = headers.get(SECRETS_HEADER) else {
        return Ok(BTreeMap::new());
    };
    let invalid = |why: String| ApiError::bad_request(format!("invalid build secrets header: {why}"));
    let text = v.to_str().map_err(|_| invalid("not text".into()))?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .map_err(|e| invalid(e.to_string()))?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|e| invalid(e.to_string()))?;
    map.into_iter()
        .map(|(id, b64)| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .map_err(|e| invalid(format!("secret {id}: {e}")))?;
            Ok((id, berth_engine::Secret(data)))
        })
        .collect()
}

/// `ssh`: a JSON object of id → the agent's socket on this host (the client's, when it runs here).
fn ssh_sockets(p: &Params) -> ApiResult<BTreeMap<String, std::path::PathBuf>> {
    use std::os::unix::fs::FileTypeExt as _;
    let map = json_map(p, "ssh")?;
    map.into_iter()
        .map(|(id, path)| {
            let path = std::path::PathBuf::from(path);
            let is_socket = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_socket());
            if !path.is_absolute() || !is_socket {
                return Err(ApiError::bad_request(format!(
                    "ssh agent {id}: {} is not a socket on the daemon's host (--ssh forwards an agent only to a daemon on the same host)",
                    path.display()
                )));
            }
            Ok((id, path))
        })
        .collect()
}

async fn build(State(e): State<AppState>, RawQuery(q): RawQuery, req: Request) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    // `X-Registry-Config`: the client's credentials for every registry it knows.
    let registry_auths = match req.headers().get("x-registry-config") {
        None => BTreeMap::new(),
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid X-Registry-Config header: not text"))?;
            berth_credentials::from_registry_config_header(text).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };
    if p.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "building from a remote context (remote=) is not supported by berth yet",
        ));
    }
    let opts = BuildOptions {
        tags: p.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: p.get("dockerfile").unwrap_or("").to_string(),
        build_args: json_map(&p, "buildargs")?,
        labels: json_map(&p, "labels")?,
        target: p.get("target").filter(|t| !t.is_empty()).map(String::from),
        network: p
            .get("networkmode")
            .filter(|n| !n.is_empty() && *n != "default")
            .map(String::from),
        quiet: p.flag("q"),
        no_cache: p.flag("nocache"),
        pull: p.flag("pull"),
        platform: p.get("platform").filter(|v| !v.is_empty()).map(String::from),
        cache_from: json_list(&p, "cachefrom")?,
        registry_auths,
        secrets: secrets(req.headers())?,
        ssh: ssh_sockets(&p)?,
    };
    let reader = body_reader(req);
    let (progress, rx) = Progress::channel();
    let svc = e.build.clone();
    progress_response(async move { svc.build(reader, opts, &progress).await.map(|_| ()) }, rx).await
}

/// `POST /build/prune`.
async fn prune(State(e): State<AppState>) -> ApiResult<Response> {
    let (removed, space) = e.build.prune().await?;
    Ok(crate::params::json(
        axum::http::StatusCode::OK,
        &serde_json::json!({ "CachesDeleted": removed, "SpaceReclaimed": space }),
    ))
}

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}
