//! The per-container supervisor: owns the stdio of the container's init and of its execs, writes the
//! init's json-file log, records exit statuses and answers the engine on a small control socket
//! (the protocol is written down in [`protocol`]; see also docs/DESIGN.md).
//!
//! Synchronous and single-threaded: one `poll(2)` loop over the control socket, its connections, the
//! processes' output and stdin, and a signalfd for `SIGCHLD`. A slow attached client never blocks
//! the loop: its queue is bounded and the client is dropped when it overflows; exec output with no
//! client attached is dropped.
//!
//! Modules: [`args`] (command line), `process` (the process table: init and execs, their stdio),
//! `conn` (control connections), `create` (the init), `serve` (the poll loop and requests),
//! `exit` (reaping, exit statuses, the end of the shim).
//!
//! Control protocol, one JSON line per connection ([`protocol::Call`]); `exec_id` absent targets
//! the init, so older clients work unchanged:
//! - `exec` `{"op":"exec","exec_id":"E","process":{..},"stdin":b}` -> `{"ok":true,"pid":N}` or
//!   `{"error":"..","exit_code":127|126|125}`
//! - `start`, `attach`, `wait`, `kill`, `resize`, `state` (optionally with `"exec_id":"E"`) ->
//!   `{"ok":true}` (attach: then the stream), `ExitStatus` (wait),
//!   `{"pid","running","started","id","processes"}` (state); errors `{"error":".."}`.

pub mod args;
mod conn;
mod create;
mod exit;
pub mod launch;
mod process;
pub mod protocol;
mod serve;

pub use args::{parse_args, Args};
/// The runtime the shim drives (re-exported so tools and tests that link the shim can build specs).
pub use berth_runtime as runtime;
pub use launch::{launch, LaunchError};

use berth_log as log;
use berth_runtime::linux::CreateError;
use berth_runtime::sys;
use berth_types::{ErrorKind, HasErrorKind};
use protocol::{ExitStatus, Ready};
use std::io::Write;
use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;

/// The readiness pipe the engine passes.
pub const READY_FD: RawFd = 3;

/// Errors of the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// Bad command line.
    #[error("usage: berth-shim --bundle <dir> --socket <path>: {0}")]
    Usage(String),
    /// An I/O step failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bundle file could not be parsed.
    #[error("reading {path}: {source}")]
    Config {
        /// The file.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The container could not be created.
    #[error(transparent)]
    Create(#[from] CreateError),
}

impl HasErrorKind for ShimError {
    fn kind(&self) -> ErrorKind {
        match self {
            ShimError::Usage(_) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

pub(crate) fn io_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
    let op = op.into();
    move |source| ShimError::Io { op, source }
}

/// Writes one JSON line; false when it could not be delivered (the reader is gone).
fn write_json_line(fd: &OwnedFd, v: &impl serde::Serialize) -> bool {
    let Ok(mut line) = serde_json::to_vec(v) else {
        return false;
    };
    line.push(b'\n');
    match fd.try_clone() {
        Ok(f) => std::fs::File::from(f).write_all(&line).is_ok(),
        Err(_) => false,
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ShimError> {
    let data = std::fs::read(path).map_err(io_err(format!("reading {}", path.display())))?;
    serde_json::from_slice(&data).map_err(|source| ShimError::Config {
        path: path.display().to_string(),
        source,
    })
}

/// The shim's main: daemonises, creates the container, serves the socket until the container exits.
/// Returns the process exit status.
pub fn main_entry() -> i32 {
    let ready = sys::take_inherited_fd(READY_FD);
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            if let Some(fd) = &ready {
                let _ = write_json_line(
                    fd,
                    &Ready {
                        error: Some(e.to_string()),
                        exit_code: Some(125),
                        pid: None,
                    },
                );
            }
            return 2;
        }
    };
    // Absolute paths, then leave the daemon's working directory (it may be on a mount that goes away).
    let args = Args {
        bundle: std::path::absolute(&args.bundle).unwrap_or(args.bundle),
        socket: std::path::absolute(&args.socket).unwrap_or(args.socket),
    };
    let _ = std::env::set_current_dir("/");
    let _ = sys::stdin_to_devnull();
    if let Err(e) = sys::daemonize() {
        eprintln!("berth-shim: daemonize: {e}");
        return 1;
    }
    match run(&args, ready) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            1
        }
    }
}

/// Runs the shim (already daemonised): create, report readiness on `ready`, serve, clean up.
pub fn run(args: &Args, ready: Option<OwnedFd>) -> Result<(), ShimError> {
    if let Err(e) = sys::set_child_subreaper() {
        eprintln!("berth-shim: PR_SET_CHILD_SUBREAPER: {e}");
    }
    let sigfd = std::fs::File::from(sys::sigchld_fd().map_err(io_err("signalfd"))?);
    match serve::Shim::create(args, sigfd) {
        Ok(mut shim) => {
            if let Some(fd) = ready {
                let ready = Ready {
                    pid: Some(shim.init().pid),
                    error: None,
                    exit_code: None,
                };
                if !write_json_line(&fd, &ready) {
                    // The daemon that launched us died before it learned of the container: nobody
                    // will start it or account for it. End it; `serve` records the exit and cleans up.
                    eprintln!("berth-shim: the engine went away during the launch; stopping the container");
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(shim.init().pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            shim.serve()
        }
        Err((e, code)) => {
            let exit = ExitStatus {
                exit_code: code,
                signal: None,
                oom_killed: false,
                finished_at: berth_types::time::now_rfc3339(),
                error: Some(e.to_string()),
            };
            if let Ok(data) = serde_json::to_vec(&exit) {
                let _ = berth_types::write_atomic(&args.bundle.join("exit.json"), &data);
            }
            if let Some(fd) = ready {
                let _ = write_json_line(
                    &fd,
                    &Ready {
                        pid: None,
                        error: Some(e.to_string()),
                        exit_code: Some(code),
                    },
                );
            }
            Err(e)
        }
    }
}
