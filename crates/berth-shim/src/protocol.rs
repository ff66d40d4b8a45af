//! What the engine and the shim exchange: the shim's options file and the control-socket messages.
//! Each message is one JSON line.

use serde::{Deserialize, Serialize};

/// `bundle/shim.json`: everything the shim needs besides the OCI `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ShimConfig {
    /// Full container ID.
    pub id: String,
    /// Where to write the json-file log (`containers/<id>/<id>-json.log`).
    pub log_path: String,
    /// Allocate a pseudo-terminal for the container's stdio (`-t`).
    pub tty: bool,
    /// Keep the container's stdin open for attach (`-i`).
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes it (`StdinOnce`).
    pub stdin_once: bool,
    /// The rootfs mount (overlay) that must be mounted at the spec's `root.path`.
    pub rootfs: RootfsMount,
    /// An external OCI runtime binary (runc, crun, youki); `None` runs berth's own runtime.
    pub runtime_path: Option<String>,
    /// Initial terminal size (rows, cols) when `tty`.
    pub console_size: Option<(u16, u16)>,
}

pub use berth_types::RootfsMount;

/// `bundle/exit.json`, and the answer to `wait`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code as Docker reports it (128+signal for a signal death).
    pub exit_code: i32,
    /// The signal that ended the process, if any.
    #[serde(default)]
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer ended a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    /// When the container's init process ended (RFC 3339).
    pub finished_at: String,
    /// Set when the container never ran (exec failure and the like).
    #[serde(default)]
    pub error: Option<String>,
}

/// First line written by the shim on its readiness pipe (fd 3).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Ready {
    /// The container's init process, as seen from the host.
    #[serde(default)]
    pub pid: Option<i32>,
    /// Why the container could not be created.
    #[serde(default)]
    pub error: Option<String>,
    /// Docker's exit code for that failure (125, 126, 127).
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// A request on the control socket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Let the created container exec its process.
    Start,
    /// Stream output (and take stdin) on this connection until the container exits.
    Attach {
        /// Forward the client's bytes to the container's stdin.
        #[serde(default)]
        stdin: bool,
        /// Send the container's stdout.
        #[serde(default)]
        stdout: bool,
        /// Send the container's stderr.
        #[serde(default)]
        stderr: bool,
    },
    /// Answer with `ExitStatus` once the container has exited.
    Wait,
    /// Send a signal to the container's init process.
    Kill {
        /// Signal number.
        signal: i32,
    },
    /// Resize the container's terminal.
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Report the init pid and whether it still runs.
    State,
}

/// Generic answer on the control socket.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Response {
    /// The request was carried out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ok: bool,
    /// The init pid (for `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Whether the container still runs (for `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// Whether the init was let exec (for `state`): a shim found running a container that was
    /// never started is a leftover of a daemon crash during `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
