//! Errors of the volume store, worded as Docker's daemon words them where a user sees them.

use berth_types::{ErrorKind, HasErrorKind, WriteError};
use std::io;
use std::path::PathBuf;

/// Errors of [`crate::VolumeStore`]; each names the volume or the path.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The name breaks Docker's rule for local volume names (400).
    #[error("{0}")]
    InvalidName(String),
    /// A driver option is unknown, missing or malformed (400).
    #[error("{0}")]
    InvalidOption(String),
    /// No volume has this name (404).
    #[error("get {name}: no such volume")]
    NotFound {
        /// The volume asked for.
        name: String,
    },
    /// The driver is not `local` (404, as Docker answers for a missing plugin).
    #[error("error looking up volume plugin {driver}: plugin \"{driver}\" not found")]
    DriverNotFound {
        /// The driver asked for.
        driver: String,
    },
    /// The name is taken by a volume of another driver, or is still used or mounted (409).
    #[error("{0}")]
    Conflict(String),
    /// A file system operation failed (500).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. "creating volume directory".
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A volume record could not be written (500).
    #[error("saving volume: {0}")]
    Write(#[from] WriteError),
    /// A volume record could not be encoded (500).
    #[error("encoding volume {name}: {source}")]
    Encode {
        /// The volume.
        name: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// Mounting or unmounting a volume's `type`/`device`/`o` options failed (500).
    #[error("failed to {op} local volume {name}: {source}")]
    Mount {
        /// "mount" or "unmount".
        op: &'static str,
        /// The volume.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl VolumeError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        VolumeError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl HasErrorKind for VolumeError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::InvalidName(_) | VolumeError::InvalidOption(_) => ErrorKind::InvalidArgument,
            VolumeError::NotFound { .. } | VolumeError::DriverNotFound { .. } => ErrorKind::NotFound,
            VolumeError::Conflict(_) => ErrorKind::Conflict,
            VolumeError::Io { .. } | VolumeError::Write(_) | VolumeError::Encode { .. } | VolumeError::Mount { .. } => {
                ErrorKind::Internal
            }
        }
    }
}
