//! Engine errors, each with Docker's wording and an `ErrorKind` for the HTTP status.

use berth_types::{ErrorKind, HasErrorKind};

/// What an engine operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No container matches the given name or ID.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// A prefix matched more than one container.
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    /// The request is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request conflicts with the container's state or another object.
    #[error("{0}")]
    Conflict(String),
    /// The container is already in the requested state (HTTP 304).
    #[error("{0}")]
    NotModified(String),
    /// Something the client named was not found (with Docker's message).
    #[error("{0}")]
    NotFound(String),
    /// The operation is not allowed on this object (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The container's process could not be started; `exit_code` follows Docker (126, 127, 125).
    #[error("{message}")]
    StartFailed {
        /// The runtime's message.
        message: String,
        /// Docker's exit code for this failure.
        exit_code: i32,
    },
    /// An image-store error (boxed: it is large and rare, and every result carries the error's size).
    #[error(transparent)]
    Store(Box<berth_store::StoreError>),
    /// A snapshotter error.
    #[error(transparent)]
    Snapshot(Box<berth_snapshot::SnapshotError>),
    /// A runtime (spec or user resolution) error.
    #[error(transparent)]
    Runtime(Box<berth_runtime::Error>),
    /// Talking to a container's shim failed.
    #[error("shim of container {id}: {message}")]
    Shim {
        /// Container ID.
        id: String,
        /// What failed.
        message: String,
    },
    /// A file operation on the engine's state failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Internal(String),
    /// Credentials are missing or wrong (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// A registry error (pull, push, login, search), with the registry's code and dockerd's wording
    /// (boxed: it is large and rare).
    #[error(transparent)]
    Distribution(Box<berth_distribution::DistributionError>),
    /// Not supported for this container (HTTP 501), e.g. reading the log of the `none` driver.
    #[error("{0}")]
    Unsupported(String),
}

impl EngineError {
    /// A subsystem's error (network, volume) as the engine reports it: same message, and the
    /// variant that gives the HTTP status of its kind.
    pub fn from_kind<E: berth_types::HasErrorKind + std::fmt::Display>(e: E) -> Self {
        use berth_types::ErrorKind as K;
        let m = e.to_string();
        match e.kind() {
            K::NotFound => EngineError::NotFound(m),
            K::Conflict => EngineError::Conflict(m),
            K::InvalidArgument => EngineError::InvalidArgument(m),
            K::Forbidden => EngineError::Forbidden(m),
            K::NotModified => EngineError::NotModified(m),
            K::Unauthorized => EngineError::Unauthorized(m),
            K::Unsupported => EngineError::Unsupported(m),
            _ => EngineError::Internal(m),
        }
    }

    /// An I/O error with the operation and the path it concerned.
    pub fn io(what: &'static str, path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        EngineError::Io {
            what,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

impl From<berth_store::StoreError> for EngineError {
    fn from(e: berth_store::StoreError) -> Self {
        EngineError::Store(Box::new(e))
    }
}

impl From<berth_snapshot::SnapshotError> for EngineError {
    fn from(e: berth_snapshot::SnapshotError) -> Self {
        EngineError::Snapshot(Box::new(e))
    }
}

impl From<berth_runtime::Error> for EngineError {
    fn from(e: berth_runtime::Error) -> Self {
        EngineError::Runtime(Box::new(e))
    }
}

impl HasErrorKind for EngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NoSuchContainer(_) | EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Ambiguous(_) | EngineError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::Forbidden(_) => ErrorKind::Forbidden,
            EngineError::NotModified(_) => ErrorKind::NotModified,
            EngineError::StartFailed { exit_code, .. } => {
                if *exit_code == 126 || *exit_code == 127 {
                    ErrorKind::InvalidArgument
                } else {
                    ErrorKind::Internal
                }
            }
            EngineError::Store(e) => e.kind(),
            EngineError::Snapshot(e) => e.kind(),
            EngineError::Runtime(e) => e.kind(),
            EngineError::Shim { .. } | EngineError::Io { .. } | EngineError::Internal(_) => ErrorKind::Internal,
            EngineError::Unsupported(_) => ErrorKind::Unsupported,
            EngineError::Unauthorized(_) => ErrorKind::Unauthorized,
            EngineError::Distribution(e) => e.kind(),
        }
    }
}

/// Engine result.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
