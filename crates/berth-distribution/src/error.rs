//! Errors of the registry client. Each names the operation and the object, keeps the registry's own
//! error code and HTTP status (distribution spec, "Error Codes"), and has an [`ErrorKind`] so the
//! daemon answers as dockerd does: 404 for a missing repository or tag, 401 for bad credentials.

use berth_types::{ErrorKind, HasErrorKind};

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The tag or digest does not exist in the repository (`MANIFEST_UNKNOWN`, HTTP 404).
    #[error("manifest for {reference} not found: manifest unknown: {message}")]
    ManifestUnknown {
        /// The image reference asked for.
        reference: String,
        /// The registry's message.
        message: String,
    },
    /// The repository does not exist, or the credentials may not read it (dockerd's wording).
    #[error("pull access denied for {repository}, repository does not exist or may require 'docker login': {}: {message}", code.to_lowercase())]
    RepositoryNotFound {
        /// The repository (`docker.io/library/foo`).
        repository: String,
        /// The registry's error code (`NAME_UNKNOWN`, `DENIED`, `UNAUTHORIZED`).
        code: String,
        /// The registry's message.
        message: String,
        /// The HTTP status the registry answered.
        status: u16,
    },
    /// A blob does not exist in the repository (`BLOB_UNKNOWN`).
    #[error("blob {digest} not found in {repository}: {message}")]
    BlobUnknown {
        /// The repository.
        repository: String,
        /// The blob's digest.
        digest: String,
        /// The registry's message.
        message: String,
    },
    /// The registry refused the credentials (HTTP 401/403); log in with `docker login`.
    #[error("{op} {target}: unauthorized: {message}")]
    Unauthorized {
        /// The operation (`login to`, `pushing to`).
        op: &'static str,
        /// The registry or repository.
        target: String,
        /// The registry's code, if it sent one.
        code: Option<String>,
        /// The registry's message (`incorrect username or password`).
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// Any other error answer of the registry.
    #[error("{op} {target}: {}{message} (HTTP {status})", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Status {
        /// The operation.
        op: &'static str,
        /// The URL or object.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error code, if any (`MANIFEST_INVALID`, `TOOMANYREQUESTS`).
        code: Option<String>,
        /// The registry's message or the response body's start.
        message: String,
    },
    /// The registry could not be reached.
    #[error("connecting to registry {registry}: {reason}; check the address, the network, and --insecure-registry for a registry without TLS")]
    Connect {
        /// The registry host.
        registry: String,
        /// The cause, with its chain.
        reason: String,
    },
    /// The connection broke while a body was being read.
    #[error("{op} {target}: reading the response: {source}")]
    Body {
        /// The operation.
        op: &'static str,
        /// The URL.
        target: String,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// The token server refused or failed (distribution token spec).
    #[error("getting a token from {realm}: {reason}")]
    Token {
        /// The token server's URL.
        realm: String,
        /// Why.
        reason: String,
        /// The HTTP status, when the server answered.
        status: Option<u16>,
    },
    /// Content did not hash to its digest: the registry or the network altered it.
    #[error("{what} verification failed: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was verified (`filesystem layer sha256:...`, `manifest ...`).
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A blob's length differs from its descriptor's size.
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// The descriptor's size.
        expected: u64,
        /// The bytes received or read.
        actual: u64,
    },
    /// A response is larger than the client accepts.
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// The object.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Docker's schema 1 manifests are refused (deprecated, unsigned content).
    #[error("{reference}: image manifest schema 1 is not supported; push the image again with a current client (schema 2 or OCI)")]
    Schema1 {
        /// The reference.
        reference: String,
    },
    /// A manifest or index is malformed or violates the image spec.
    #[error("invalid manifest for {reference}: {reason}")]
    InvalidManifest {
        /// The reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The index has no manifest for the wanted platform.
    #[error("no matching manifest for {wanted} in the manifest list entries of {reference} (available: {})", available.join(", "))]
    NoMatchingPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for (`linux/arm64/v8`).
        wanted: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// The caller passed a bad value (credentials header, server address, offset).
    #[error("{0}")]
    InvalidArgument(String),
    /// The registry does not offer the operation.
    #[error("{0}")]
    Unsupported(String),
    /// TLS material in certs.d could not be used.
    #[error("TLS configuration for {registry} from {path}: {reason}")]
    TlsConfig {
        /// The registry.
        registry: String,
        /// The file or directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// Reading the data to push failed.
    #[error("reading {what}: {source}")]
    Read {
        /// The object.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<berth_credentials::CredentialsError> for DistributionError {
    // Malformed credentials are the caller's mistake (400); a broken config file or helper too,
    // from the registry client's point of view: it only ever reads what the caller handed it.
    fn from(e: berth_credentials::CredentialsError) -> Self {
        DistributionError::InvalidArgument(e.to_string())
    }
}

impl DistributionError {
    /// The HTTP status the registry answered, when the error comes from an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            DistributionError::ManifestUnknown { .. } | DistributionError::BlobUnknown { .. } => Some(404),
            DistributionError::RepositoryNotFound { status, .. }
            | DistributionError::Unauthorized { status, .. }
            | DistributionError::Status { status, .. } => Some(*status),
            DistributionError::Token { status, .. } => *status,
            _ => None,
        }
    }

    /// The registry's error code (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, `UNAUTHORIZED`), when it sent one.
    pub fn registry_code(&self) -> Option<&str> {
        match self {
            DistributionError::ManifestUnknown { .. } => Some("MANIFEST_UNKNOWN"),
            DistributionError::BlobUnknown { .. } => Some("BLOB_UNKNOWN"),
            DistributionError::RepositoryNotFound { code, .. } => Some(code),
            DistributionError::Unauthorized { code, .. } | DistributionError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether a retry may succeed (connection failures, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            DistributionError::Connect { .. } | DistributionError::Body { .. } => true,
            DistributionError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl HasErrorKind for DistributionError {
    fn kind(&self) -> ErrorKind {
        use DistributionError as E;
        match self {
            E::ManifestUnknown { .. }
            | E::RepositoryNotFound { .. }
            | E::BlobUnknown { .. }
            | E::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            E::Unauthorized { .. } => ErrorKind::Unauthorized,
            E::Token { status: Some(401), .. } => ErrorKind::Unauthorized,
            E::Token { .. } => ErrorKind::Unavailable,
            E::Status { status, .. } => match *status {
                404 => ErrorKind::NotFound,
                401 => ErrorKind::Unauthorized,
                403 => ErrorKind::Forbidden,
                400 | 405 | 416 => ErrorKind::InvalidArgument,
                429 | 502..=504 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            E::Connect { .. } | E::Body { .. } => ErrorKind::Unavailable,
            E::Schema1 { .. } | E::InvalidArgument(_) => ErrorKind::InvalidArgument,
            E::Unsupported(_) => ErrorKind::Unsupported,
            E::DigestMismatch { .. }
            | E::SizeMismatch { .. }
            | E::TooLarge { .. }
            | E::InvalidManifest { .. }
            | E::TlsConfig { .. }
            | E::Read { .. } => ErrorKind::Internal,
        }
    }
}

/// The error body of the distribution spec: `{"errors":[{"code":..,"message":..,"detail":..}]}`.
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Parses a registry error body into (code, message); falls back to the body's first 200 bytes.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
        if let Some(e) = b.errors.into_iter().next() {
            let msg = if e.message.is_empty() {
                e.code.to_lowercase().replace('_', " ")
            } else {
                e.message
            };
            return (Some(e.code), msg);
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string();
    (None, text)
}

/// Result of this crate.
pub type Result<T, E = DistributionError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_keeps_code_and_message() {
        let (c, m) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(c.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(m, "manifest unknown");
        let (c, m) = parse_error_body(b"<html>bad gateway</html>");
        assert_eq!(c, None);
        assert_eq!(m, "<html>bad gateway</html>");
    }

    #[test]
    fn kinds_follow_dockerd() {
        let e = DistributionError::ManifestUnknown {
            reference: "bb:x".into(),
            message: "manifest unknown".into(),
        };
        assert_eq!(e.kind().http_status(), 404);
        assert_eq!(e.registry_code(), Some("MANIFEST_UNKNOWN"));
        let e = DistributionError::Unauthorized {
            op: "login to",
            target: "r".into(),
            code: None,
            message: "incorrect username or password".into(),
            status: 401,
        };
        assert_eq!(e.kind().http_status(), 401);
        assert_eq!(
            e.to_string(),
            "login to r: unauthorized: incorrect username or password"
        );
        let e = DistributionError::RepositoryNotFound {
            repository: "foo".into(),
            code: "DENIED".into(),
            message: "requested access to the resource is denied".into(),
            status: 401,
        };
        assert_eq!(
            e.to_string(),
            "pull access denied for foo, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        );
        assert_eq!(
            (e.kind().http_status(), e.status(), e.registry_code()),
            (404, Some(401), Some("DENIED"))
        );
    }
}
