//! The per-container supervisor: owns the container's stdio, writes its json-file log, records its
//! exit status and answers the engine on a small control socket (see docs/DESIGN.md).
//!
//! Synchronous and single-threaded: one `poll(2)` loop over the control socket, its connections, the
//! container's output, its stdin and a signalfd for `SIGCHLD`. A slow attached client never blocks
//! the loop: its queue is bounded and the client is dropped when it overflows.

pub mod launch;
pub mod protocol;

/// The runtime the shim drives (re-exported so tools and tests that link the shim can build specs).
pub use berth_runtime as runtime;
pub use launch::{launch, LaunchError};

use berth_api::stream::{encode_header, StreamType};
use berth_log as log;
use berth_runtime::linux::{self, CreateError, CreateOptions, CreatedContainer, Stdio};
use berth_runtime::{cgroups, external::ExternalRuntime, sys};
use berth_types::{ErrorKind, HasErrorKind};
use protocol::{ExitStatus, Ready, Request, Response, ShimConfig};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The readiness pipe the engine passes.
pub const READY_FD: RawFd = 3;
/// Most bytes queued for one attached client before it is dropped.
const MAX_CLIENT_QUEUE: usize = 1 << 20;
/// Most stdin bytes buffered before the shim stops reading from the client.
const MAX_STDIN_QUEUE: usize = 64 * 1024;
/// How long output may keep flowing after the init exited (descriptors passed outside the container).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

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

fn io_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
    let op = op.into();
    move |source| ShimError::Io { op, source }
}

/// Command line: `--bundle <dir> --socket <path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The bundle directory (`config.json`, `shim.json`, `exit.json`).
    pub bundle: PathBuf,
    /// The control socket to listen on.
    pub socket: PathBuf,
}

/// Parses the shim's arguments (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, ShimError> {
    let mut bundle = None;
    let mut socket = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| ShimError::Usage(format!("{key} needs a value")))
        };
        match key.as_str() {
            "--bundle" => bundle = Some(PathBuf::from(value()?)),
            "--socket" => socket = Some(PathBuf::from(value()?)),
            other => return Err(ShimError::Usage(format!("unknown argument {other}"))),
        }
    }
    Ok(Args {
        bundle: bundle.ok_or_else(|| ShimError::Usage("--bundle is required".into()))?,
        socket: socket.ok_or_else(|| ShimError::Usage("--socket is required".into()))?,
    })
}

fn write_json_line(fd: &OwnedFd, v: &impl serde::Serialize) {
    if let Ok(mut line) = serde_json::to_vec(v) {
        line.push(b'\n');
        let _ = (&std::fs::File::from(match fd.try_clone() {
            Ok(f) => f,
            Err(_) => return,
        }))
            .write_all(&line);
    }
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
                write_json_line(
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

/// How the container's init was created.
enum Init {
    Own(CreatedContainer),
    External,
}

/// One connection on the control socket.
struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: VecDeque<u8>,
    state: ConnState,
    stdout: bool,
    stderr: bool,
    stdin: bool,
    read_closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Reading the request line.
    Request,
    /// Streaming output (and taking stdin).
    Attached,
    /// Waiting for the exit status.
    Waiting,
    /// Answer queued; close once written.
    Closing,
}

struct Output {
    fd: std::fs::File,
    stream: u8,
}

/// The supervisor's state.
struct Shim {
    cfg: ShimConfig,
    bundle: PathBuf,
    socket: PathBuf,
    pid: i32,
    init: Option<Init>,
    external: Option<ExternalRuntime>,
    started: bool,
    exited: Option<ExitStatus>,
    exited_at: Option<Instant>,
    start_error: Option<String>,
    stdin: Option<std::fs::File>,
    stdin_buf: VecDeque<u8>,
    close_stdin_when_drained: bool,
    pty_master: Option<OwnedFd>,
    outputs: Vec<Output>,
    log: log::JsonLog,
    listener: UnixListener,
    conns: Vec<Conn>,
    cgroup: Option<Box<dyn cgroups::CgroupManager>>,
    sigfd: std::fs::File,
}

/// Runs the shim (already daemonised): create, report readiness on `ready`, serve, clean up.
pub fn run(args: &Args, ready: Option<OwnedFd>) -> Result<(), ShimError> {
    if let Err(e) = sys::set_child_subreaper() {
        eprintln!("berth-shim: PR_SET_CHILD_SUBREAPER: {e}");
    }
    let sigfd = std::fs::File::from(sys::sigchld_fd().map_err(io_err("signalfd"))?);
    match Shim::create(args, sigfd) {
        Ok(mut shim) => {
            if let Some(fd) = ready {
                write_json_line(
                    &fd,
                    &Ready {
                        pid: Some(shim.pid),
                        error: None,
                        exit_code: None,
                    },
                );
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
                write_json_line(
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

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ShimError> {
    let data = std::fs::read(path).map_err(io_err(format!("reading {}", path.display())))?;
    serde_json::from_slice(&data).map_err(|source| ShimError::Config {
        path: path.display().to_string(),
        source,
    })
}

impl Shim {
    fn create(args: &Args, sigfd: std::fs::File) -> Result<Shim, (ShimError, i32)> {
        let e125 = |e: ShimError| (e, 125);
        let cfg: ShimConfig = read_json(&args.bundle.join("shim.json")).map_err(e125)?;
        let spec: berth_runtime::oci_spec::runtime::Spec = read_json(&args.bundle.join("config.json")).map_err(e125)?;
        let log = log::JsonLog::open(&cfg.log_path)
            .map_err(io_err(format!("opening log {}", cfg.log_path)))
            .map_err(e125)?;

        // The container's stdio, and our ends of it. With a TTY the runtime makes the pty inside the
        // container and sends us its master on `console` once the container is created.
        let mut outputs = Vec::new();
        let (stdio, mut stdin, mut console, child_ends): (Stdio, Option<std::fs::File>, Option<OwnedFd>, Vec<OwnedFd>) =
            if cfg.tty {
                // The spec's `process.consoleSize` wins; the shim config carries Docker's `ConsoleSize`.
                let spec_size = spec
                    .process()
                    .as_ref()
                    .and_then(|p| p.console_size())
                    .map(|b| (b.height() as u16, b.width() as u16))
                    .filter(|(h, w)| *h > 0 && *w > 0);
                let (rows, cols) = spec_size.or(cfg.console_size).unwrap_or((0, 0));
                let (ours, theirs) = sys::socketpair().map_err(io_err("console socket")).map_err(e125)?;
                (
                    Stdio::Console {
                        socket: theirs.as_raw_fd(),
                        rows,
                        cols,
                    },
                    None,
                    Some(ours),
                    vec![theirs],
                )
            } else {
                let (in_r, in_w): (OwnedFd, Option<std::fs::File>) = if cfg.open_stdin {
                    let (r, w) = sys::pipe().map_err(io_err("pipe")).map_err(e125)?;
                    sys::set_nonblocking(&w, true).map_err(io_err("pipe")).map_err(e125)?;
                    (r, Some(w.into()))
                } else {
                    let null = std::fs::File::open("/dev/null")
                        .map_err(io_err("opening /dev/null"))
                        .map_err(e125)?;
                    (null.into(), None)
                };
                let (out_r, out_w) = sys::pipe().map_err(io_err("pipe")).map_err(e125)?;
                let (err_r, err_w) = sys::pipe().map_err(io_err("pipe")).map_err(e125)?;
                for fd in [&out_r, &err_r] {
                    sys::set_nonblocking(fd, true).map_err(io_err("pipe")).map_err(e125)?;
                }
                outputs.push(Output {
                    fd: out_r.into(),
                    stream: 1,
                });
                outputs.push(Output {
                    fd: err_r.into(),
                    stream: 2,
                });
                let stdio = Stdio::Fds {
                    stdin: in_r.as_raw_fd(),
                    stdout: out_w.as_raw_fd(),
                    stderr: err_w.as_raw_fd(),
                };
                (stdio, in_w, None, vec![in_r, out_w, err_w])
            };

        let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        let cgroup = match &cgroups_path {
            Some(p) => Some(
                cgroups::open(Path::new(cgroups::DEFAULT_ROOT), &p.to_string_lossy()).map_err(|e| {
                    (
                        ShimError::Create(CreateError {
                            message: e.to_string(),
                            exit_code: 125,
                        }),
                        125,
                    )
                })?,
            ),
            None => None,
        };
        let rootfs = &cfg.rootfs;
        let (pid, init, external) = match &cfg.runtime_path {
            None => {
                if let Some(cg) = &cgroup {
                    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
                    if let Err(e) = cg.create(resources) {
                        let _ = cg.remove();
                        return Err((
                            ShimError::Create(CreateError {
                                message: e.to_string(),
                                exit_code: 125,
                            }),
                            125,
                        ));
                    }
                }
                let cache = args.socket.parent().map(|d| d.join(".seccomp-cache"));
                let opts = CreateOptions {
                    spec: &spec,
                    rootfs,
                    stdio,
                    cgroup: cgroup.as_deref(),
                    seccomp_cache: cache.as_deref(),
                };
                match linux::create(&opts) {
                    Ok(c) => (c.pid(), Init::Own(c), None),
                    Err(e) => {
                        if let Some(cg) = &cgroup {
                            let _ = cg.remove();
                        }
                        let code = e.exit_code;
                        return Err((ShimError::Create(e), code));
                    }
                }
            }
            Some(rt) => {
                let ext = ExternalRuntime {
                    runtime: rt.into(),
                    bundle: args.bundle.clone(),
                    id: cfg.id.clone(),
                };
                match ext.create(&spec, rootfs, stdio) {
                    Ok(pid) => (pid, Init::External, Some(ext)),
                    Err(e) => {
                        let code = e.exit_code;
                        return Err((ShimError::Create(e), code));
                    }
                }
            }
        };
        drop(spec);
        drop(child_ends);
        let pty_master = match console.take() {
            Some(sock) => {
                // The runtime sent the master before reporting the container created.
                let master = match Self::take_console(&sock) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = sys::kill(pid, libc::SIGKILL);
                        return Err((e, 125));
                    }
                };
                let reader = master.try_clone().map_err(io_err("dup pty")).map_err(e125)?;
                outputs.push(Output {
                    fd: reader.into(),
                    stream: 1,
                });
                if cfg.open_stdin {
                    stdin = Some(master.try_clone().map_err(io_err("dup pty")).map_err(e125)?.into());
                }
                Some(master)
            }
            None => None,
        };
        sys::trim_heap();

        let _ = std::fs::remove_file(&args.socket);
        if let Some(dir) = args.socket.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let listener = UnixListener::bind(&args.socket)
            .map_err(io_err(format!("listening on {}", args.socket.display())))
            .map_err(e125)?;
        listener.set_nonblocking(true).map_err(io_err("socket")).map_err(e125)?;
        Ok(Shim {
            cfg,
            bundle: args.bundle.clone(),
            socket: args.socket.clone(),
            pid,
            init: Some(init),
            external,
            started: false,
            exited: None,
            exited_at: None,
            start_error: None,
            stdin,
            stdin_buf: VecDeque::new(),
            close_stdin_when_drained: false,
            pty_master,
            outputs,
            log,
            listener,
            conns: Vec::new(),
            cgroup,
            sigfd,
        })
    }

    /// Receives the container's pty master from the runtime (non-blocking from then on).
    fn take_console(sock: &OwnedFd) -> Result<OwnedFd, ShimError> {
        let master = sys::recv_fd(sock).map_err(io_err("receiving the container's console"))?;
        sys::set_nonblocking(&master, true).map_err(io_err("pty"))?;
        Ok(master)
    }

    fn serve(&mut self) -> Result<(), ShimError> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(16);
        loop {
            if self.exited.is_some() && (self.outputs.is_empty() || self.drain_expired()) {
                break;
            }
            fds.clear();
            let pfd = |fd: RawFd, events: libc::c_short| libc::pollfd { fd, events, revents: 0 };
            fds.push(pfd(self.sigfd.as_raw_fd(), libc::POLLIN));
            fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
            for o in &self.outputs {
                fds.push(pfd(o.fd.as_raw_fd(), libc::POLLIN));
            }
            let stdin_idx = fds.len();
            if let (Some(w), false) = (&self.stdin, self.stdin_buf.is_empty()) {
                fds.push(pfd(w.as_raw_fd(), libc::POLLOUT));
            }
            let conn_base = fds.len();
            for c in &self.conns {
                let mut ev = 0;
                let reading = match c.state {
                    ConnState::Request => true,
                    ConnState::Attached => c.stdin && self.stdin.is_some() && self.stdin_buf.len() < MAX_STDIN_QUEUE,
                    _ => false,
                };
                if reading && !c.read_closed {
                    ev |= libc::POLLIN;
                }
                if !c.out.is_empty() {
                    ev |= libc::POLLOUT;
                }
                fds.push(pfd(c.stream.as_raw_fd(), ev));
            }
            let timeout = match self.exited_at {
                Some(t) => DRAIN_AFTER_EXIT.saturating_sub(t.elapsed()).as_millis() as i32 + 1,
                None => -1,
            };
            sys::poll(&mut fds, timeout).map_err(io_err("poll"))?;

            if fds[0].revents != 0 {
                self.reap();
            }
            if fds[1].revents != 0 {
                self.accept();
            }
            // Outputs (indices 2..2+n), iterated backwards so removals keep indices valid.
            for i in (0..self.outputs.len()).rev() {
                if fds[2 + i].revents != 0 {
                    self.read_output(i);
                }
            }
            if stdin_idx < conn_base && fds[stdin_idx].revents != 0 {
                self.flush_stdin();
            }
            let n = self.conns.len().min(fds.len() - conn_base);
            for i in (0..n).rev() {
                let rev = fds[conn_base + i].revents;
                if rev != 0 {
                    self.service_conn(i, rev);
                }
            }
            self.conns
                .retain(|c| !(c.state == ConnState::Closing && c.out.is_empty()));
        }
        self.finish();
        Ok(())
    }

    fn drain_expired(&self) -> bool {
        self.exited_at.map(|t| t.elapsed() >= DRAIN_AFTER_EXIT).unwrap_or(false)
    }

    fn reap(&mut self) {
        let mut buf = [0u8; 128];
        while matches!((&self.sigfd).read(&mut buf), Ok(n) if n > 0) {}
        while let Some(r) = sys::reap_any() {
            let (pid, code, signal) = match r {
                sys::Reaped::Exited(pid, code) => (pid, code, None),
                sys::Reaped::Signaled(pid, sig) => (pid, 128 + sig, Some(sig)),
            };
            if pid == self.pid && self.exited.is_none() {
                let oom = self.cgroup.as_ref().map(|c| c.oom_killed()).unwrap_or(false);
                self.exited = Some(ExitStatus {
                    exit_code: code,
                    signal,
                    oom_killed: oom,
                    finished_at: berth_types::time::now_rfc3339(),
                    error: self.start_error.clone(),
                });
                self.exited_at = Some(Instant::now());
                self.init = None;
                // Waiters get their answer now; output streams close once drained.
                if let Some(line) = self.exit_line() {
                    for c in self.conns.iter_mut().filter(|c| c.state == ConnState::Waiting) {
                        c.out.extend(line.iter());
                        c.state = ConnState::Closing;
                    }
                }
            }
        }
    }

    fn exit_line(&self) -> Option<Vec<u8>> {
        let mut line = serde_json::to_vec(self.exited.as_ref()?).ok()?;
        line.push(b'\n');
        Some(line)
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.conns.push(Conn {
                        stream,
                        inbuf: Vec::new(),
                        out: VecDeque::new(),
                        state: ConnState::Request,
                        stdout: false,
                        stderr: false,
                        stdin: false,
                        read_closed: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let o = &self.outputs[i];
            match (&o.fd).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let stream = o.stream;
                    self.dispatch_output(stream, &buf[..n]);
                    if n < buf.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: the pty's last slave closed.
                Err(_) => break,
            }
        }
        self.outputs.remove(i);
    }

    fn dispatch_output(&mut self, stream: u8, data: &[u8]) {
        let name = if stream == 2 { "stderr" } else { "stdout" };
        if let Err(e) = self.log.write(name, data) {
            eprintln!("berth-shim: writing log: {e}");
        }
        let kind = if stream == 2 {
            StreamType::Stderr
        } else {
            StreamType::Stdout
        };
        // A read fills at most the 16 KiB buffer, far below a frame's u32 limit.
        let header = (!self.cfg.tty).then(|| encode_header(kind, data.len() as u32));
        for c in self.conns.iter_mut() {
            if c.state != ConnState::Attached || !(if stream == 2 { c.stderr } else { c.stdout }) {
                continue;
            }
            if let Some(h) = &header {
                c.out.extend(h.iter());
            }
            c.out.extend(data.iter());
            flush_conn(c);
            if c.out.len() > MAX_CLIENT_QUEUE {
                // Too slow: drop it rather than block the container or lose log lines.
                c.out.clear();
                c.state = ConnState::Closing;
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn flush_stdin(&mut self) {
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
                    // The container closed its stdin.
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

    fn service_conn(&mut self, i: usize, rev: libc::c_short) {
        if rev & libc::POLLOUT != 0 && !flush_conn(&mut self.conns[i]) {
            self.conns.remove(i);
            return;
        }
        if rev & (libc::POLLIN | libc::POLLHUP) != 0 && !self.conns[i].read_closed {
            let mut buf = [0u8; 8 * 1024];
            loop {
                let c = &mut self.conns[i];
                let wants_read = match c.state {
                    ConnState::Request => true,
                    ConnState::Attached => c.stdin,
                    _ => false,
                };
                if !wants_read {
                    break;
                }
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        c.read_closed = true;
                        if c.state == ConnState::Attached && c.stdin && self.cfg.stdin_once && !self.cfg.tty {
                            self.close_stdin_when_drained = true;
                            if self.stdin_buf.is_empty() {
                                self.stdin = None;
                            }
                        }
                        if c.state == ConnState::Request {
                            c.state = ConnState::Closing;
                        }
                        break;
                    }
                    Ok(n) => {
                        if c.state == ConnState::Request {
                            c.inbuf.extend_from_slice(&buf[..n]);
                            if let Some(pos) = c.inbuf.iter().position(|b| *b == b'\n') {
                                let rest = c.inbuf.split_off(pos + 1);
                                let line = std::mem::take(&mut c.inbuf);
                                self.handle_request(i, &line, &rest);
                            } else if c.inbuf.len() > 64 * 1024 {
                                c.state = ConnState::Closing;
                                c.out.clear();
                            }
                        } else {
                            self.push_stdin(&buf[..n]);
                            if self.stdin_buf.len() >= MAX_STDIN_QUEUE {
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.conns.remove(i);
                        return;
                    }
                }
            }
        }
        // POLLHUP: the peer closed both directions; whatever it sent has been read above.
        if rev & (libc::POLLERR | libc::POLLHUP) != 0 {
            self.conns.remove(i);
        }
    }

    fn push_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_some() {
            self.stdin_buf.extend(data.iter());
            self.flush_stdin();
        }
    }

    fn respond(&mut self, i: usize, r: &Response) {
        let c = &mut self.conns[i];
        if let Ok(mut line) = serde_json::to_vec(r) {
            line.push(b'\n');
            c.out.extend(line.iter());
        }
        flush_conn(c);
    }

    fn handle_request(&mut self, i: usize, line: &[u8], rest: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.respond(
                    i,
                    &Response {
                        error: Some(format!("bad request: {e}")),
                        ..Default::default()
                    },
                );
                self.conns[i].state = ConnState::Closing;
                return;
            }
        };
        let ok = Response {
            ok: true,
            ..Default::default()
        };
        let error = |m: String| Response {
            error: Some(m),
            ..Default::default()
        };
        let running = self.exited.is_none();
        match req {
            Request::Start => {
                let r = if self.started {
                    error("container already started".into())
                } else if !running {
                    error("container is not running".into())
                } else {
                    self.start()
                };
                self.respond(i, &r);
                self.conns[i].state = ConnState::Closing;
            }
            Request::Attach { stdin, stdout, stderr } => {
                self.respond(i, &ok);
                let c = &mut self.conns[i];
                c.stdin = stdin && self.stdin.is_some();
                c.stdout = stdout;
                c.stderr = stderr;
                c.state = ConnState::Attached;
                if !running && self.outputs.is_empty() {
                    c.state = ConnState::Closing;
                } else if c.stdin && !rest.is_empty() {
                    self.push_stdin(rest);
                }
            }
            Request::Wait => match self.exit_line() {
                Some(line) => {
                    let c = &mut self.conns[i];
                    c.out.extend(line.iter());
                    c.state = ConnState::Closing;
                    flush_conn(c);
                }
                None => self.conns[i].state = ConnState::Waiting,
            },
            Request::Kill { signal } => {
                let r = if !running {
                    error("container is not running".into())
                } else {
                    match sys::kill(self.pid, signal) {
                        Ok(()) => ok,
                        Err(e) => error(format!("kill: {e}")),
                    }
                };
                self.respond(i, &r);
                self.conns[i].state = ConnState::Closing;
            }
            Request::Resize { height, width } => {
                let r = match &self.pty_master {
                    Some(m) => match sys::set_winsize(m, height, width) {
                        Ok(()) => ok,
                        Err(e) => error(format!("resize: {e}")),
                    },
                    None => ok,
                };
                self.respond(i, &r);
                self.conns[i].state = ConnState::Closing;
            }
            Request::State => {
                let r = Response {
                    pid: Some(self.pid),
                    running: Some(running),
                    started: Some(self.started),
                    ..Default::default()
                };
                self.respond(i, &r);
                self.conns[i].state = ConnState::Closing;
            }
        }
    }

    fn start(&mut self) -> Response {
        self.started = true;
        let result = match self.init.take() {
            Some(Init::Own(c)) => c.start(),
            Some(Init::External) => {
                self.init = Some(Init::External);
                match &self.external {
                    Some(ext) => ext.start(),
                    None => Ok(()),
                }
            }
            None => Err(CreateError {
                message: "container is not running".into(),
                exit_code: 125,
            }),
        };
        match result {
            Ok(()) => Response {
                ok: true,
                ..Default::default()
            },
            Err(e) => {
                self.start_error = Some(e.message.clone());
                Response {
                    error: Some(e.message),
                    ..Default::default()
                }
            }
        }
    }

    /// The container is gone and its output drained: record, answer, clean up.
    fn finish(&mut self) {
        let mut status = self.exited.clone().unwrap_or_default();
        if status.finished_at.is_empty() {
            status.finished_at = berth_types::time::now_rfc3339();
        }
        if !status.oom_killed {
            status.oom_killed = self.cgroup.as_ref().map(|c| c.oom_killed()).unwrap_or(false);
        }
        self.exited = Some(status.clone());
        match serde_json::to_vec(&status) {
            Ok(data) => {
                if let Err(e) = berth_types::write_atomic(&self.bundle.join("exit.json"), &data) {
                    eprintln!("berth-shim: writing exit.json: {e}");
                }
            }
            Err(e) => eprintln!("berth-shim: encoding exit status: {e}"),
        }
        let line = self.exit_line().unwrap_or_default();
        let _ = std::fs::remove_file(&self.socket);
        let mut conns = std::mem::take(&mut self.conns);
        // Short answers (wait, replies) first, so a stalled attach client cannot delay them.
        conns.sort_by_key(|c| c.state == ConnState::Attached);
        for mut c in conns {
            if c.state == ConnState::Waiting {
                c.out.extend(line.iter());
            }
            if c.state == ConnState::Request {
                continue;
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = sys::set_send_timeout(&c.stream, 1000);
            let (a, b) = c.out.as_slices();
            let _ = c.stream.write_all(a).and_then(|()| c.stream.write_all(b));
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(ext) = &self.external {
            ext.delete();
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.remove() {
                eprintln!("berth-shim: removing cgroup: {e}");
            }
        }
        // Remaining orphans (re-parented to us) are reaped before we go.
        while sys::reap_any().is_some() {}
    }
}

/// Writes what the connection has queued without blocking; false when the peer is gone.
fn flush_conn(c: &mut Conn) -> bool {
    while !c.out.is_empty() {
        let (a, _) = c.out.as_slices();
        match c.stream.write(a) {
            Ok(0) => return false,
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                c.out.clear();
                c.state = ConnState::Closing;
                return false;
            }
        }
    }
    if c.out.capacity() > 64 * 1024 {
        c.out = VecDeque::new();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let a = parse_args(["--bundle", "/b", "--socket=/s.sock"].map(String::from)).unwrap();
        assert_eq!(
            a,
            Args {
                bundle: "/b".into(),
                socket: "/s.sock".into()
            }
        );
        assert!(parse_args(["--bundle", "/b"].map(String::from)).is_err());
        assert!(parse_args(["--what"].map(String::from)).is_err());
    }

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
}
