//! Errors of the log reader.

use berth_types::{ErrorKind, HasErrorKind};
use std::io;
use std::path::PathBuf;

/// Errors reading a json-file log; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A log file could not be opened.
    #[error("failed to open log {path}: {source}")]
    Open {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading a log file failed.
    #[error("failed to read log {path}: {source}")]
    Read {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl LogError {
    /// The log file is missing (not written yet, or the container never had one).
    pub fn is_not_found(&self) -> bool {
        matches!(self, LogError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

impl HasErrorKind for LogError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}
