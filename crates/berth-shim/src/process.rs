//! The process table: the container's init and its execs, each with its own stdio or pty, its
//! stdin queue and its exit status.

use crate::protocol::{ExitStatus, ProcessState};
use crate::{io_err, ShimError};
use berth_runtime::linux::{CreatedProcess, Stdio};
use berth_runtime::sys;
use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

/// One output pipe (or the pty master) of a process.
pub(crate) struct Output {
    pub(crate) fd: std::fs::File,
    /// 1 stdout, 2 stderr (Docker's stream numbers).
    pub(crate) stream: u8,
}

/// A process set up but not yet started.
pub(crate) enum Pending {
    /// berth's own runtime: it execs on [`CreatedProcess::start`].
    Own(CreatedProcess),
    /// An external runtime: `<runtime> start` for the init; an exec already runs.
    External,
}

/// One supervised process.
pub(crate) struct Proc {
    /// `None` for the init.
    pub(crate) exec_id: Option<String>,
    pub(crate) pid: i32,
    pub(crate) pending: Option<Pending>,
    pub(crate) started: bool,
    /// An exec an external runtime started before `start` (`runc exec --detach`): it may have
    /// exited before the engine's `start`, which must still succeed and let its output flow.
    pub(crate) runs_before_start: bool,
    pub(crate) exited: Option<ExitStatus>,
    pub(crate) start_error: Option<String>,
    pub(crate) tty: bool,
    /// Close stdin when the attached client closes its side.
    pub(crate) stdin_once: bool,
    pub(crate) stdin: Option<std::fs::File>,
    pub(crate) stdin_buf: VecDeque<u8>,
    pub(crate) close_stdin_when_drained: bool,
    pub(crate) pty_master: Option<OwnedFd>,
    pub(crate) outputs: Vec<Output>,
}

impl Proc {
    /// A process just created with `stdio` ([`StdioSetup::finish`] already applied).
    pub(crate) fn new(exec_id: Option<String>, pid: i32, pending: Pending, io: ProcIo, stdin_once: bool) -> Proc {
        let runs_before_start = exec_id.is_some() && matches!(pending, Pending::External);
        Proc {
            exec_id,
            pid,
            runs_before_start,
            pending: Some(pending),
            started: false,
            exited: None,
            start_error: None,
            tty: io.pty_master.is_some(),
            stdin_once,
            stdin: io.stdin,
            stdin_buf: VecDeque::new(),
            close_stdin_when_drained: false,
            pty_master: io.pty_master,
            outputs: io.outputs,
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.exited.is_none()
    }

    /// The exit status as one JSON line (the answer to `wait`), once exited.
    pub(crate) fn exit_line(&self) -> Option<Vec<u8>> {
        let mut line = serde_json::to_vec(self.exited.as_ref()?).ok()?;
        line.push(b'\n');
        Some(line)
    }

    /// This exec's entry in `state`.
    pub(crate) fn state(&self) -> ProcessState {
        ProcessState {
            exec_id: self.exec_id.clone().unwrap_or_default(),
            pid: self.pid,
            started: self.started,
            running: self.running(),
            exit_code: self.exited.as_ref().map(|e| e.exit_code),
        }
    }

    /// Writes queued stdin without blocking.
    pub(crate) fn flush_stdin(&mut self) {
        let Some(w) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            let (a, _) = self.stdin_buf.as_slices();
            match (&*w).write(a) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // The process closed its stdin.
                    self.stdin = None;
                    self.stdin_buf.clear();
                    return;
                }
            }
        }
        if self.close_stdin_when_drained {
            self.stdin = None;
        }
    }

    /// Queues bytes an attached client wrote.
    pub(crate) fn push_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_some() {
            self.stdin_buf.extend(data.iter());
            self.flush_stdin();
        }
    }

    /// The attached client half-closed: close stdin once drained (`stdin_once`; not for a pty,
    /// whose input cannot be closed apart from its output).
    pub(crate) fn client_closed_stdin(&mut self) {
        if self.stdin_once && !self.tty {
            self.close_stdin_when_drained = true;
            if self.stdin_buf.is_empty() {
                self.stdin = None;
            }
        }
    }
}

/// A process's stdio as the shim holds it once the process is created.
pub(crate) struct ProcIo {
    pub(crate) stdin: Option<std::fs::File>,
    pub(crate) pty_master: Option<OwnedFd>,
    pub(crate) outputs: Vec<Output>,
}

/// A process's stdio before it is created: what the runtime gets, and our ends.
pub(crate) struct StdioSetup {
    /// What the runtime gives the process.
    pub(crate) stdio: Stdio,
    stdin: Option<std::fs::File>,
    /// Our end of the console socket (the runtime sends the pty master on it).
    console: Option<OwnedFd>,
    outputs: Vec<Output>,
    /// The process's ends, closed here once it is created.
    child_ends: Vec<OwnedFd>,
    open_stdin: bool,
}

impl StdioSetup {
    /// Pipes (stdin only with `open_stdin`, else `/dev/null`), or with `tty` a console socket
    /// (the pty is made inside the container, sized `rows`x`cols` before the process sees it).
    pub(crate) fn new(tty: bool, open_stdin: bool, (rows, cols): (u16, u16)) -> Result<StdioSetup, ShimError> {
        if tty {
            let (ours, theirs) = sys::socketpair().map_err(io_err("console socket"))?;
            return Ok(StdioSetup {
                stdio: Stdio::Console {
                    socket: theirs.as_raw_fd(),
                    rows,
                    cols,
                },
                stdin: None,
                console: Some(ours),
                outputs: Vec::new(),
                child_ends: vec![theirs],
                open_stdin,
            });
        }
        let (in_r, in_w): (OwnedFd, Option<std::fs::File>) = if open_stdin {
            let (r, w) = sys::pipe().map_err(io_err("pipe"))?;
            sys::set_nonblocking(&w, true).map_err(io_err("pipe"))?;
            (r, Some(w.into()))
        } else {
            let null = std::fs::File::open("/dev/null").map_err(io_err("opening /dev/null"))?;
            (null.into(), None)
        };
        let (out_r, out_w) = sys::pipe().map_err(io_err("pipe"))?;
        let (err_r, err_w) = sys::pipe().map_err(io_err("pipe"))?;
        for fd in [&out_r, &err_r] {
            sys::set_nonblocking(fd, true).map_err(io_err("pipe"))?;
        }
        Ok(StdioSetup {
            stdio: Stdio::Fds {
                stdin: in_r.as_raw_fd(),
                stdout: out_w.as_raw_fd(),
                stderr: err_w.as_raw_fd(),
            },
            stdin: in_w,
            console: None,
            outputs: vec![
                Output {
                    fd: out_r.into(),
                    stream: 1,
                },
                Output {
                    fd: err_r.into(),
                    stream: 2,
                },
            ],
            child_ends: vec![in_r, out_w, err_w],
            open_stdin,
        })
    }

    /// The process exists: close its ends here and, with a tty, take the pty master the runtime sent
    /// (before it reported the process created).
    pub(crate) fn finish(self) -> Result<ProcIo, ShimError> {
        drop(self.child_ends);
        let mut outputs = self.outputs;
        let mut stdin = self.stdin;
        let pty_master = match self.console {
            Some(sock) => {
                let master = sys::recv_fd(&sock).map_err(io_err("receiving the container's console"))?;
                sys::set_nonblocking(&master, true).map_err(io_err("pty"))?;
                let reader = master.try_clone().map_err(io_err("dup pty"))?;
                outputs.push(Output {
                    fd: reader.into(),
                    stream: 1,
                });
                if self.open_stdin {
                    stdin = Some(master.try_clone().map_err(io_err("dup pty"))?.into());
                }
                Some(master)
            }
            None => None,
        };
        Ok(ProcIo {
            stdin,
            pty_master,
            outputs,
        })
    }
}
