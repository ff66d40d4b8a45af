//! Errors: [`RegistryError`] for the library (storage, config, serving) and [`ApiError`], the spec's
//! JSON error body with its HTTP status (distribution spec, "Error Codes").

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_types::{ErrorKind, HasErrorKind};
use std::path::PathBuf;

/// A failure of the registry library: opening the store, reading config files, serving, gc.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A filesystem operation on the store failed.
    #[error("registry storage: {op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `read`, `rename`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The htpasswd file could not be parsed.
    #[error("htpasswd {path}: line {line}: {reason}")]
    Htpasswd {
        /// The htpasswd file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("tls {path}: {reason}")]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is inconsistent.
    #[error("registry config: {0}")]
    Config(String),
    /// The listener failed.
    #[error("registry listener: {0}")]
    Listen(#[source] std::io::Error),
    /// The OS random source failed (upload ids).
    #[error("registry: random source: {0}")]
    Random(String),
    /// A stored file has unexpected content.
    #[error("registry storage: corrupt {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl RegistryError {
    /// Builds an [`RegistryError::Io`] (used with `map_err`).
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RegistryError {
        let path = path.into();
        move |source| RegistryError::Io { op, path, source }
    }
}

impl HasErrorKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Htpasswd { .. } | RegistryError::Tls { .. } | RegistryError::Config(_) => {
                ErrorKind::InvalidArgument
            }
            RegistryError::Io { .. }
            | RegistryError::Listen(_)
            | RegistryError::Random(_)
            | RegistryError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

/// The error codes of the distribution spec (code-1 .. code-14), plus `UNKNOWN` for server faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// blob unknown to registry
    BlobUnknown,
    /// blob upload invalid
    BlobUploadInvalid,
    /// blob upload unknown to registry
    BlobUploadUnknown,
    /// provided digest did not match uploaded content
    DigestInvalid,
    /// manifest references a manifest or blob unknown to registry
    ManifestBlobUnknown,
    /// manifest invalid
    ManifestInvalid,
    /// manifest unknown to registry
    ManifestUnknown,
    /// invalid repository name
    NameInvalid,
    /// repository name not known to registry
    NameUnknown,
    /// provided length did not match content length
    SizeInvalid,
    /// authentication required
    Unauthorized,
    /// requested access to the resource is denied
    Denied,
    /// the operation is unsupported
    Unsupported,
    /// invalid tag (legacy Docker code)
    TagInvalid,
    /// an internal error
    Unknown,
}

impl Code {
    /// The wire identifier.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The status the spec (or Docker's registry, where the spec is silent) pairs with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown | Code::BlobUploadUnknown | Code::ManifestUnknown | Code::NameUnknown => {
                StatusCode::NOT_FOUND
            }
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid
            | Code::TagInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to a client: `{"errors":[{"code","message","detail"}]}` with a status.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Spec error code.
    pub code: Code,
    /// Human-readable message.
    pub message: String,
    /// Optional structured detail.
    pub detail: Option<serde_json::Value>,
    /// `WWW-Authenticate` challenge for 401s.
    pub challenge: Option<String>,
    /// Extra headers (e.g. `Range`/`Location` on a 416 for uploads).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    /// An error with the code's usual status.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            detail: None,
            challenge: None,
            headers: Vec::new(),
        }
    }

    /// Overrides the status.
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// Adds a detail value.
    pub fn with_detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    /// 401 with a challenge.
    pub fn unauthorized(challenge: String, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(Code::Unauthorized, message);
        e.challenge = Some(challenge);
        e
    }

    /// An internal server error; the cause is logged, the client gets a generic message.
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        tracing::error!("registry: {err}");
        ApiError::new(Code::Unknown, "internal server error")
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut entry = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(d) = self.detail {
            entry["detail"] = d;
        }
        let body = serde_json::json!({ "errors": [entry] }).to_string();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}
