//! Errors as Docker sends them: a status from the error's kind and `{"message": "..."}`.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::EngineError;
use berth_types::{ErrorKind, HasErrorKind};

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
        }
    }

    /// A 500 with `message`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// Builds Docker's JSON error body with `status`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    if status == StatusCode::NOT_MODIFIED {
        return Response::builder()
            .status(status)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let body = serde_json::json!({ "message": message }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!("request failed: {}", self.message);
        }
        json_error(status, &self.message)
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// The longest request target berth reads (hyper refuses beyond 65534 bytes with an empty body).
pub const MAX_URI: usize = 32 * 1024;
/// The most header bytes (names and values) berth reads.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;
/// The most header fields berth reads.
pub const MAX_HEADERS: usize = 256;
/// hyper's read buffer: above what berth accepts, so berth answers an oversized head itself.
pub const HYPER_MAX_BUF: usize = 1024 * 1024;
/// hyper's header-field limit: above [`MAX_HEADERS`] for the same reason.
pub const HYPER_MAX_HEADERS: usize = 1024;

/// Refuses an oversized request head with Docker's JSON body: 414 for the URI, 431 for the headers.
pub fn check_head(parts: &axum::http::request::Parts) -> Option<Response> {
    let uri_len = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI {
        return Some(json_error(
            StatusCode::URI_TOO_LONG,
            &format!("request URI too long: {uri_len} bytes (the limit is {MAX_URI})"),
        ));
    }
    let header_bytes: usize = parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES || parts.headers.len() > MAX_HEADERS {
        return Some(json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!(
                "request header fields too large: {} fields, {header_bytes} bytes (the limits are {MAX_HEADERS} and {MAX_HEADER_BYTES})",
                parts.headers.len()
            ),
        ));
    }
    None
}

/// Unmatched routes: dockerd's 404.
pub async fn page_not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "page not found")
}

/// Makes any error response JSON: axum's own (405 for a wrong method, 413 for an oversized body,
/// 400/422 for a malformed path or body) answer plain text or nothing; Docker clients decode
/// `{"message": ...}`.
pub async fn json_body(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match (status, text.is_empty()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => "method not allowed".to_string(),
        (StatusCode::PAYLOAD_TOO_LARGE, _) => "request body too large".to_string(),
        (_, false) => text,
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase(),
    };
    let mut out = json_error(status, &message);
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
