//! Store errors: each names the image, blob or path, and maps to an [`ErrorKind`].

use berth_archive::ArchiveError;
use berth_snapshot::SnapshotError;
use berth_types::{Digest, ErrorKind, HasErrorKind, ReferenceError};
use std::io;
use std::path::{Path, PathBuf};

/// Image store errors; each maps to an [`ErrorKind`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Docker's wording.
    #[error("No such image: {0}")]
    NotFound(String),
    /// A 409 with Docker's message (rmi conflicts).
    #[error("{0}")]
    Conflict(String),
    /// A bad reference.
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// An image archive (load) that is malformed: the message names the file.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    /// Content whose digest is not the one announced.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob or file concerned.
        what: String,
        /// Announced digest.
        expected: Digest,
        /// Computed digest.
        actual: Digest,
    },
    /// A `--change` line we cannot apply (Docker's message).
    #[error("{0}")]
    InvalidChange(String),
    /// Other bad arguments (tagging with a digest, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A blob the store should have is missing.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// Reading an input stream failed.
    #[error("failed to read {what}: {source}")]
    Read {
        /// What was being read.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Unpacking or reading a tar failed.
    #[error("{what}: {source}")]
    Archive {
        /// Context (`invalid image archive`, `import`).
        what: String,
        /// The archive error naming the entry.
        #[source]
        source: ArchiveError,
    },
    /// A snapshot operation failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The store's own state is unreadable.
    #[error("image store is corrupt: {0}")]
    Corrupt(String),
    /// A filesystem operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// Path concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl HasErrorKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::InvalidReference(_)
            | StoreError::InvalidArchive(_)
            | StoreError::DigestMismatch { .. }
            | StoreError::InvalidChange(_)
            | StoreError::InvalidArgument(_)
            | StoreError::Read { .. } => ErrorKind::InvalidArgument,
            StoreError::Archive { source, .. } => source.kind(),
            StoreError::Snapshot(e) => e.kind(),
            StoreError::BlobNotFound(_) | StoreError::Corrupt(_) | StoreError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Maps an I/O error to [`StoreError::Io`] naming the operation and the path.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
