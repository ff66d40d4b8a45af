//! The runtime's error type.

use berth_types::{ErrorKind, HasErrorKind};

/// Errors of spec generation, user resolution and cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user or group named by `--user` does not exist (Docker's wording).
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),
    /// A group named by `--user name:group` or `--group-add` does not exist.
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),
    /// A value given by the user is invalid (capability, ulimit, uid...).
    #[error("{0}")]
    Invalid(String),
    /// The generated spec did not validate against the OCI types.
    #[error("building the OCI runtime spec: {0}")]
    Spec(#[source] serde_json::Error),
    /// A cgroup file operation failed.
    #[error("cgroup {op} {path}: {source}")]
    Cgroup {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Any other I/O failure, with what was being done.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A seccomp profile could not be compiled or loaded.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

impl Error {
    /// An I/O error with context.
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { op: op.into(), source }
    }
}

impl HasErrorKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::UserNotFound(_) | Error::GroupNotFound(_) | Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::Spec(_) | Error::Cgroup { .. } | Error::Io { .. } | Error::Seccomp(_) => ErrorKind::Internal,
        }
    }
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
