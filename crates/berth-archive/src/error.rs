//! Archive errors and the limits that refuse hostile headers.

use berth_types::{ErrorKind, HasErrorKind, UsernsError};
use std::io;

/// The largest size a single entry may claim. Real layers have no file near this; a header claiming
/// more is hostile or corrupt, and refusing it early avoids streaming until the disk is full.
pub const MAX_ENTRY_SIZE: u64 = 256 << 30;

/// Errors from reading or writing archives. Each names the archive member concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A filesystem operation failed while writing `entry`.
    #[error("failed to {op} {entry:?}: {source}")]
    Io {
        /// What was attempted (`create file`, `set owner of`, ...).
        op: &'static str,
        /// The archive member (or file) concerned.
        entry: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The member would write outside the destination or is otherwise unsafe.
    #[error("refusing archive entry {entry:?}: {reason}")]
    Unsafe {
        /// The archive member.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The member's data ended before the size its header claims.
    #[error("archive truncated in entry {entry:?}: header claims {expected} bytes, found {got}")]
    Truncated {
        /// The archive member.
        entry: String,
        /// Size from the header.
        expected: u64,
        /// Bytes actually present.
        got: u64,
    },
    /// The header claims an absurd size.
    #[error("archive entry {entry:?} claims {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// The archive member.
        entry: String,
        /// Size from the header.
        size: u64,
        /// [`MAX_ENTRY_SIZE`].
        max: u64,
    },
    /// The tar stream itself is corrupt (bad checksum, truncated header, ...).
    #[error("malformed tar archive near entry {after:?}: {source}")]
    Malformed {
        /// The member being read, or the last one read successfully (empty at the start).
        after: String,
        /// The parser's error.
        #[source]
        source: io::Error,
    },
    /// The stream uses a compression we do not read.
    #[error("unsupported compression: {0}")]
    UnsupportedCompression(&'static str),
    /// Reading the input failed.
    #[error("failed to read archive: {0}")]
    Read(#[source] io::Error),
    /// An owner outside the `--userns-remap` mapping.
    #[error("cannot map the owner of archive entry {entry:?}: {source}")]
    IdMap {
        /// The archive member (or file) concerned.
        entry: String,
        /// Which id could not be mapped.
        #[source]
        source: UsernsError,
    },
    /// Writing an archive failed.
    #[error("failed to write archive entry {entry:?}: {source}")]
    Write {
        /// The member being written.
        entry: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl HasErrorKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Io { .. } | ArchiveError::Write { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// Maps a rustix error to [`ArchiveError::Io`] naming the operation and the entry.
pub(crate) fn io_err<'a>(op: &'static str, entry: &'a str) -> impl FnOnce(rustix::io::Errno) -> ArchiveError + 'a {
    move |e| ArchiveError::Io {
        op,
        entry: entry.to_string(),
        source: e.into(),
    }
}
