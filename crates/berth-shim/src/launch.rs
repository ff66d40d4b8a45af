//! Starting a shim from the engine: spawn `berth-shim` with a readiness pipe as fd 3 and read its
//! [`Ready`] line. The shim daemonises, so the process spawned here exits at once and is reaped here.

use crate::protocol::Ready;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Why a shim could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The pipe or the process could not be created.
    #[error("spawning {path}: {source}")]
    Spawn {
        /// The shim binary.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The shim exited without reporting readiness.
    #[error("the shim exited before reporting readiness (see the daemon log)")]
    NoReady,
    /// The readiness line was not valid JSON.
    #[error("the shim sent a malformed readiness line {line:?}: {source}")]
    BadReady {
        /// What it sent.
        line: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Spawns `shim` for `bundle`, serving `socket`, and waits for its readiness report.
pub fn launch(shim: &Path, bundle: &Path, socket: &Path) -> Result<Ready, LaunchError> {
    let spawn_err = |source| LaunchError::Spawn {
        path: shim.display().to_string(),
        source,
    };
    let (read_end, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_err(std::io::Error::from(e)))?;
    let write_fd = write_end.as_raw_fd();
    let mut cmd = Command::new(shim);
    cmd.arg("--bundle").arg(bundle).arg("--socket").arg(socket);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    // SAFETY: between fork and exec only async-signal-safe calls are made (dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            if write_fd == 3 {
                // dup2 onto itself keeps CLOEXEC set: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(write_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(write_end);
    let mut reader = BufReader::new(std::fs::File::from(read_end));
    let mut line = String::new();
    let read = reader.read_line(&mut line);
    // The first process exits right after daemonising; reap it.
    let _ = child.wait();
    match read {
        Ok(0) | Err(_) => Err(LaunchError::NoReady),
        Ok(_) => serde_json::from_str(line.trim_end()).map_err(|source| LaunchError::BadReady {
            line: line.trim_end().to_string(),
            source,
        }),
    }
}
