//! `/images/...` routes. Image names may contain slashes (`localhost:5000/a/b`), so the per-image
//! routes take the rest of the path and split the action off its end, as dockerd's `{name:.*}` does.

use crate::containers::async_stream;
use crate::error::{ApiError, ApiResult};
use crate::params::{json, Params};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use berth_engine::ImportOptions;
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// The request body as a blocking reader, for the store's synchronous archive code.
pub(crate) fn body_reader(req: Request) -> impl std::io::Read + Send + 'static {
    let stream = req.into_body().into_data_stream().map_err(std::io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

fn json_line(v: serde_json::Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let list = e.images.list_images(p.flag("all"), p.filters()?).await?;
    Ok(json(StatusCode::OK, &list))
}

async fn create(State(e): State<AppState>, RawQuery(q): RawQuery, req: Request) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    if p.get("fromImage").is_some_and(|s| !s.is_empty()) {
        return crate::distribution::pull(e, &p, req.headers()).await;
    }
    if p.get("fromSrc") != Some("-") {
        return Err(ApiError::bad_request(
            "importing from a URL is not supported; send the archive in the request body with fromSrc=-",
        ));
    }
    let reference = match p.get("repo").filter(|r| !r.is_empty()) {
        Some(repo) => {
            let full = match p.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            Some(berth_types::Reference::parse(&full).map_err(|err| ApiError::bad_request(err.to_string()))?)
        }
        None => None,
    };
    let opts = ImportOptions {
        tag: reference,
        changes: p.all("changes"),
        message: p.get("message").unwrap_or("").to_string(),
        ..Default::default()
    };
    let reader = body_reader(req);
    let id = e.images.import_image(reader, opts).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json_line(serde_json::json!({ "status": id }))))
        .unwrap_or_default())
}

async fn load(State(e): State<AppState>, RawQuery(q): RawQuery, req: Request) -> ApiResult<Response> {
    let _quiet = Params::from_query(q.as_deref()).flag("quiet");
    let reader = body_reader(req);
    // As dockerd: once the archive is being read the answer is 200, and a failure is reported inside
    // the progress stream (docker-py raises `ImageLoadError` from it, the docker CLI prints it).
    let body: Vec<u8> = match e.images.load_images(reader).await {
        Ok(out) => out
            .lines
            .iter()
            .flat_map(|l| json_line(serde_json::json!({ "stream": format!("{l}\n") })).to_vec())
            .collect(),
        Err(err) => {
            let msg = err.to_string();
            json_line(serde_json::json!({ "errorDetail": { "message": msg }, "error": msg })).to_vec()
        }
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default())
}

/// A `Write` that forwards chunks to the response body.
pub(crate) struct ChannelWriter(pub(crate) tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn save(e: AppState, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    e.images.resolve_images(names.clone()).await?;
    let stream = async_stream(move |tx| async move {
        let writer = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx.clone()));
        if let Err(err) = e.images.save_images(names, writer).await {
            tracing::warn!("saving images: {err}");
            let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

async fn get_many(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    save(e, Params::from_query(q.as_deref()).all("names")).await
}

async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::from_query(q.as_deref()).filters()?;
    Ok(json(StatusCode::OK, &e.images.prune_images(filters).await?))
}

async fn by_name_get(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        return Ok(json(StatusCode::OK, &e.images.inspect_image(name).await?));
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return Ok(json(StatusCode::OK, &e.images.image_history(name).await?));
    }
    if let Some(name) = rest.strip_suffix("/get") {
        let _ = q;
        return save(e, vec![name.to_string()]).await;
    }
    Err(ApiError::from(berth_engine::EngineError::NotFound(
        "page not found".into(),
    )))
}

async fn by_name_post(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = p
            .get("repo")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::bad_request("repo is required"))?;
        e.images.tag_image(name, repo, p.get("tag")).await?;
        return Ok(crate::params::empty(StatusCode::CREATED));
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return crate::distribution::push(e, name, &p, &headers).await;
    }
    Err(ApiError::from(berth_engine::EngineError::NotFound(
        "page not found".into(),
    )))
}

async fn by_name_delete(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    Ok(json(
        StatusCode::OK,
        &e.images.remove_image(&rest, p.flag("force"), p.flag("noprune")).await?,
    ))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(create))
        .route("/images/load", post(load))
        .route("/images/get", get(get_many))
        .route("/images/prune", post(prune))
        .route(
            "/images/{*rest}",
            get(by_name_get).post(by_name_post).delete(by_name_delete),
        )
}
