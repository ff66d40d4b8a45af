//! Errors of the embedded DNS server.

use berth_types::{ErrorKind, HasErrorKind};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors starting the embedded DNS server for a container; each names the container and the
/// namespace or address involved.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The container's network namespace file could not be opened.
    #[error("failed to open network namespace {path} for the DNS server of container {container}: {source}")]
    OpenNetns {
        /// The container.
        container: String,
        /// The namespace file (`/proc/<pid>/ns/net` or a bind mount of it).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `setns` into the container's network namespace failed.
    #[error("failed to enter network namespace {path} for the DNS server of container {container}: {source}")]
    EnterNetns {
        /// The container.
        container: String,
        /// The namespace file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// Binding the DNS socket inside the container's namespace failed.
    #[error("failed to bind the DNS server's {proto} socket on {addr} for container {container}: {source}")]
    Bind {
        /// The container.
        container: String,
        /// `udp` or `tcp`.
        proto: &'static str,
        /// The address (`127.0.0.11:53`).
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The thread that enters the namespace could not be started or died.
    #[error("failed to run the namespace thread of the DNS server for container {container}: {reason}")]
    Thread {
        /// The container.
        container: String,
        /// What went wrong.
        reason: String,
    },
    /// The server already listens for this container.
    #[error("the DNS server already listens for container {container}")]
    AlreadyListening {
        /// The container.
        container: String,
    },
}

impl HasErrorKind for DnsError {
    fn kind(&self) -> ErrorKind {
        match self {
            DnsError::AlreadyListening { .. } => ErrorKind::Conflict,
            DnsError::OpenNetns { source, .. } if source.kind() == io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}
