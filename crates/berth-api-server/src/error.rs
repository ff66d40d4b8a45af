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
