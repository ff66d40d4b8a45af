//! What the engine and the shim exchange: the shim's options file and the control-socket messages.
//!
//! Control socket: each connection sends one JSON line ([`Call`]: a [`Request`] plus an optional
//! `exec_id`) and gets one JSON line back ([`Response`], or [`ExitStatus`] for `wait`):
//! - `{"op":"exec","exec_id":"E","process":{OCI Process},"stdin":bool}` creates an extra process in
//!   the container, set up and blocked before exec (stdio: pipes, or a pty made in the container's
//!   devpts when `process.terminal`, sized from `process.consoleSize`). Answers `{"ok":true,"pid":N}`,
//!   or `{"error":"..","exit_code":127|126|125}` with Docker's wording. Needs a started, running init.
//!   With `"attach":{"stdin":b,"stdout":b,"stderr":b}` the connection is attached right away (as
//!   `attach` below, after the answer line), and with `"start":true` the process execs at once: the
//!   answer then says `"started":true`. One round trip instead of three; a shim that predates these
//!   fields ignores them and answers without `started`, which tells the engine to send `attach` and
//!   `start` itself.
//! - `start`, `attach`, `wait`, `kill`, `resize` and `state` target the init, or the exec named by
//!   `exec_id` when present (so requests without it, today's engine, work unchanged):
//!   - `{"op":"start"}` -> `{"ok":true}`: the process execs (an exec created by an external runtime
//!     already runs: `runc exec --detach` has no created state; it may even have exited, and its
//!     output waits in its pipe for `start`).
//!   - `{"op":"attach","stdin":b,"stdout":b,"stderr":b}` -> `{"ok":true}`, then the output stream
//!     (Docker's 8-byte frame headers unless the process has a tty) until the process exited and its
//!     output is drained; client bytes go to its stdin, a client half-close closes it (`stdin_once`;
//!     always for an exec). Exec output is never logged; with no client attached it is dropped.
//!   - `{"op":"wait"}` -> one `ExitStatus` line when the process exits (at once if it has). Exit
//!     statuses of the last [`MAX_FINISHED_EXECS`] finished execs stay queryable while the shim lives.
//!   - `{"op":"kill","signal":N}`, `{"op":"resize","height":H,"width":W}` -> `{"ok":true}`.
//!   - `{"op":"state"}` -> `{"pid":N,"running":b,"started":b,"id":"<container>","processes":[..]}`:
//!     pid/running/started of the targeted process, the container ID, and every exec the shim knows
//!     ([`ProcessState`]).
//! - Errors answer `{"error":".."}`; an unknown `exec_id` is `no such exec: <id>`.
//!
//! When the init exits the container's pid namespace takes the execs with it: their exits are
//! recorded and answered, then the shim finishes (writes `exit.json`, answers waiters, exits).

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
    /// The log's rotation (`--log-opt max-size/max-file/compress`).
    #[serde(default)]
    pub log_rotation: berth_log::Rotation,
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

/// How many finished execs the shim remembers (their exit status stays answerable).
pub const MAX_FINISHED_EXECS: usize = 64;

/// One request line: a [`Request`] and the process it targets (`exec_id`; absent: the init).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Call {
    /// The exec the request targets; `None` for the container's init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_id: Option<String>,
    /// What to do.
    #[serde(flatten)]
    pub request: Request,
}

/// A request on the control socket (sent alone it targets the init; see [`Call`]).
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
    /// Create an extra process (needs the `exec_id` of [`Call`]); it waits for `start` to exec.
    Exec {
        /// The OCI process to run (args, env, cwd, user, capabilities, terminal, consoleSize).
        process: Box<berth_runtime::oci_spec::runtime::Process>,
        /// Give the process a stdin the attached client writes to (`-i`).
        #[serde(default)]
        stdin: bool,
        /// Attach this connection to the process once it is created (see [`Request::Attach`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attach: Option<Streams>,
        /// Let the process exec at once (as a following [`Request::Start`] would).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        start: bool,
    },
}

/// The streams an attached connection carries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Streams {
    /// Forward the client's bytes to the process's stdin.
    #[serde(default)]
    pub stdin: bool,
    /// Send the process's stdout.
    #[serde(default)]
    pub stdout: bool,
    /// Send the process's stderr.
    #[serde(default)]
    pub stderr: bool,
}

/// One exec in the answer to `state`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct ProcessState {
    /// The exec's ID.
    pub exec_id: String,
    /// Its pid, as seen from the host.
    pub pid: i32,
    /// Whether it was started (`start`).
    pub started: bool,
    /// Whether it still runs.
    pub running: bool,
    /// Its exit code once it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
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
    /// Whether the process was started (for `state`): a created-but-never-started container
    /// answers `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    /// The container ID (for `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The execs the shim knows (for `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessState>>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Docker's exit code for a failed `exec` (127 not found, 126 not executable, 125 other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true,"stdout":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false
            }
        );
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert_eq!(r, Request::Kill { signal: 9 });
    }

    #[test]
    fn calls_without_exec_id_target_the_init() {
        for (line, want) in [
            (r#"{"op":"start"}"#, Request::Start),
            (r#"{"op":"wait"}"#, Request::Wait),
            (r#"{"op":"state"}"#, Request::State),
            (r#"{"op":"kill","signal":15}"#, Request::Kill { signal: 15 }),
            (
                r#"{"op":"resize","height":24,"width":80}"#,
                Request::Resize { height: 24, width: 80 },
            ),
        ] {
            let c: Call = serde_json::from_str(line).unwrap();
            assert_eq!(
                c,
                Call {
                    exec_id: None,
                    request: want.clone()
                },
                "{line}"
            );
            // What today's engine sends (a bare Request) is the same line.
            assert_eq!(serde_json::to_string(&want).unwrap(), line);
            assert_eq!(serde_json::to_string(&c).unwrap(), line);
        }
    }

    #[test]
    fn calls_with_exec_id() {
        let c: Call = serde_json::from_str(r#"{"op":"kill","signal":9,"exec_id":"e1"}"#).unwrap();
        assert_eq!(c.exec_id.as_deref(), Some("e1"));
        assert_eq!(c.request, Request::Kill { signal: 9 });
        let c: Call = serde_json::from_str(
            r#"{"op":"exec","exec_id":"e2","stdin":true,
                "process":{"args":["sh","-c","id"],"cwd":"/","user":{"uid":1000,"gid":1000},"terminal":true}}"#,
        )
        .unwrap();
        assert_eq!(c.exec_id.as_deref(), Some("e2"));
        let Request::Exec { process, stdin, .. } = &c.request else {
            panic!("not an exec: {c:?}");
        };
        assert!(stdin);
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(
            process.args().as_deref(),
            Some(&["sh".to_string(), "-c".into(), "id".into()][..])
        );
        let back: Call = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<Call>(r#"{"op":"exec","exec_id":"e"}"#).is_err());
    }

    #[test]
    fn responses_keep_todays_shape() {
        let ok = Response {
            ok: true,
            ..Default::default()
        };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"ok":true}"#);
        let st = Response {
            pid: Some(7),
            running: Some(true),
            started: Some(false),
            id: Some("abc".into()),
            processes: Some(vec![ProcessState {
                exec_id: "e".into(),
                pid: 9,
                started: true,
                running: false,
                exit_code: Some(3),
            }]),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::to_value(&st).unwrap();
        assert_eq!(v["started"], false);
        assert_eq!(v["processes"][0]["exit_code"], 3);
        let failed = Response {
            error: Some("exec: \"nope\": executable file not found in $PATH".into()),
            exit_code: Some(127),
            ..Default::default()
        };
        let back: Response = serde_json::from_str(&serde_json::to_string(&failed).unwrap()).unwrap();
        assert_eq!(back, failed);
    }
}
