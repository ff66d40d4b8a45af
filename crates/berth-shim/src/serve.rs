//! The poll loop: accepts control connections, moves output to attached clients (and the init's
//! output to the log), feeds stdin, and carries out requests.

use crate::conn::{flush_conn, Conn, ConnState};
use crate::process::{Pending, Proc, StdioSetup};
use crate::protocol::{Call, Request, Response, ShimConfig, Streams, MAX_FINISHED_EXECS};
use crate::{io_err, log, read_json, ShimError};
use berth_api::stream::{encode_header, StreamType};
use berth_runtime::linux::{self, CreateError, ExecOptions};
use berth_runtime::{cgroups, external::ExternalRuntime, sys};
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Most bytes queued for one attached client before it is dropped.
const MAX_CLIENT_QUEUE: usize = 1 << 20;
/// Most stdin bytes buffered before the shim stops reading from the client.
const MAX_STDIN_QUEUE: usize = 64 * 1024;
/// How long output may keep flowing after the init exited (descriptors passed outside the container).
pub(crate) const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

/// The supervisor's state.
pub(crate) struct Shim {
    pub(crate) cfg: ShimConfig,
    pub(crate) bundle: PathBuf,
    pub(crate) socket: PathBuf,
    /// The (device, inode) of the socket this shim bound: at the end it removes the path only if it
    /// is still that socket, never the socket of a shim started after it for the same container.
    pub(crate) socket_id: Option<(u64, u64)>,
    pub(crate) seccomp_cache: Option<PathBuf>,
    /// What execs need of the container's spec, loaded at the first exec.
    pub(crate) exec_base: Option<ExecBase>,
    /// The init first, then the execs in creation order.
    pub(crate) procs: Vec<Proc>,
    /// When the init exited.
    pub(crate) exited_at: Option<Instant>,
    pub(crate) external: Option<ExternalRuntime>,
    pub(crate) log: log::JsonLog,
    pub(crate) listener: UnixListener,
    pub(crate) conns: Vec<Conn>,
    pub(crate) cgroup: Option<Box<dyn cgroups::CgroupManager>>,
    pub(crate) sigfd: std::fs::File,
    /// Poll slot -> (process, output), rebuilt every round.
    pub(crate) out_map: Vec<(usize, usize)>,
}

fn ok() -> Response {
    Response {
        ok: true,
        ..Default::default()
    }
}

fn error(m: impl Into<String>) -> Response {
    Response {
        error: Some(m.into()),
        ..Default::default()
    }
}

impl Shim {
    /// The container's init.
    pub(crate) fn init(&self) -> &Proc {
        &self.procs[0]
    }

    fn find(&self, exec_id: Option<&str>) -> Option<usize> {
        self.procs.iter().position(|p| p.exec_id.as_deref() == exec_id)
    }

    /// Serves until the init exited, its execs are gone and the output is drained.
    pub(crate) fn serve(&mut self) -> Result<(), ShimError> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(16);
        let mut stdin_map: Vec<usize> = Vec::new();
        loop {
            if !self.init().running() && (self.all_done() || self.drain_expired()) {
                break;
            }
            fds.clear();
            self.out_map.clear();
            stdin_map.clear();
            let pfd = |fd: RawFd, events: libc::c_short| libc::pollfd { fd, events, revents: 0 };
            fds.push(pfd(self.sigfd.as_raw_fd(), libc::POLLIN));
            fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
            for (pi, p) in self.procs.iter().enumerate() {
                if !p.started && (p.running() || p.runs_before_start) {
                    // Not read before `start`: an exec an external runtime already runs (or ran) keeps
                    // its output in the pipe until the client that attaches before `start` is there.
                    continue;
                }
                for (oi, o) in p.outputs.iter().enumerate() {
                    fds.push(pfd(o.fd.as_raw_fd(), libc::POLLIN));
                    self.out_map.push((pi, oi));
                }
            }
            let stdin_base = fds.len();
            for (pi, p) in self.procs.iter().enumerate() {
                if let (Some(w), false) = (&p.stdin, p.stdin_buf.is_empty()) {
                    fds.push(pfd(w.as_raw_fd(), libc::POLLOUT));
                    stdin_map.push(pi);
                }
            }
            let conn_base = fds.len();
            for c in &self.conns {
                let mut ev = 0;
                let reading = match c.state {
                    ConnState::Request => true,
                    ConnState::Attached => {
                        c.stdin
                            && self
                                .find(c.target.as_deref())
                                .map(|pi| {
                                    let p = &self.procs[pi];
                                    p.stdin.is_some() && p.stdin_buf.len() < MAX_STDIN_QUEUE
                                })
                                .unwrap_or(false)
                    }
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
            // Outputs, iterated backwards so removals keep the indices valid.
            for slot in (0..self.out_map.len()).rev() {
                if fds[2 + slot].revents != 0 {
                    let (pi, oi) = self.out_map[slot];
                    self.read_output(pi, oi);
                }
            }
            for (k, pi) in stdin_map.iter().enumerate() {
                if fds[stdin_base + k].revents != 0 {
                    if let Some(p) = self.procs.get_mut(*pi) {
                        p.flush_stdin();
                    }
                }
            }
            let n = self.conns.len().min(fds.len() - conn_base);
            for i in (0..n).rev() {
                let rev = fds[conn_base + i].revents;
                if rev != 0 {
                    self.service_conn(i, rev);
                }
            }
            self.close_finished_execs();
            self.conns
                .retain(|c| !(c.state == ConnState::Closing && c.out.is_empty()));
        }
        self.finish();
        Ok(())
    }

    /// Every process exited and every output drained.
    fn all_done(&self) -> bool {
        self.procs.iter().all(|p| !p.running() && p.outputs.is_empty())
    }

    pub(crate) fn drain_expired(&self) -> bool {
        self.exited_at.map(|t| t.elapsed() >= DRAIN_AFTER_EXIT).unwrap_or(false)
    }

    /// Attach streams of execs that exited and whose output is drained are closed (the init's close
    /// when the shim finishes); finished execs beyond [`MAX_FINISHED_EXECS`] are forgotten.
    fn close_finished_execs(&mut self) {
        for p in self.procs.iter().skip(1) {
            if p.running() || !p.outputs.is_empty() {
                continue;
            }
            for c in self.conns.iter_mut() {
                if c.state == ConnState::Attached && c.targets(p.exec_id.as_deref()) {
                    c.state = ConnState::Closing;
                }
            }
        }
        let finished = self
            .procs
            .iter()
            .skip(1)
            .filter(|p| !p.running() && p.outputs.is_empty())
            .count();
        if finished > MAX_FINISHED_EXECS {
            let mut extra = finished - MAX_FINISHED_EXECS;
            let mut first = true;
            self.procs.retain(|p| {
                let is_init = std::mem::take(&mut first);
                if is_init || extra == 0 || p.running() || !p.outputs.is_empty() {
                    return true;
                }
                extra -= 1;
                false
            });
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.conns.push(Conn::new(stream));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn read_output(&mut self, pi: usize, oi: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let o = &self.procs[pi].outputs[oi];
            match (&o.fd).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let stream = o.stream;
                    self.dispatch_output(pi, stream, &buf[..n]);
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
        self.procs[pi].outputs.remove(oi);
    }

    fn dispatch_output(&mut self, pi: usize, stream: u8, data: &[u8]) {
        let p = &self.procs[pi];
        // Only the init's output is logged (Docker does not log exec output).
        if p.exec_id.is_none() {
            let name = if stream == 2 { "stderr" } else { "stdout" };
            if let Err(e) = self.log.write(name, data) {
                eprintln!("berth-shim: writing log: {e}");
            }
        }
        let kind = if stream == 2 {
            StreamType::Stderr
        } else {
            StreamType::Stdout
        };
        // A read fills at most the 16 KiB buffer, far below a frame's u32 limit.
        let header = (!p.tty).then(|| encode_header(kind, data.len() as u32));
        let target = p.exec_id.as_deref();
        for c in self.conns.iter_mut() {
            if c.state != ConnState::Attached || !c.targets(target) || !(if stream == 2 { c.stderr } else { c.stdout })
            {
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
                        let attached_stdin = c.state == ConnState::Attached && c.stdin;
                        if c.state == ConnState::Request {
                            c.state = ConnState::Closing;
                        }
                        if attached_stdin {
                            let target = c.target.clone();
                            if let Some(pi) = self.find(target.as_deref()) {
                                self.procs[pi].client_closed_stdin();
                            }
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
                            let target = c.target.clone();
                            let Some(pi) = self.find(target.as_deref()) else {
                                break;
                            };
                            self.procs[pi].push_stdin(&buf[..n]);
                            if self.procs[pi].stdin_buf.len() >= MAX_STDIN_QUEUE {
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

    /// Queues a one-line answer; the connection closes once it is written.
    fn respond(&mut self, i: usize, r: &Response) {
        let c = &mut self.conns[i];
        if let Ok(mut line) = serde_json::to_vec(r) {
            line.push(b'\n');
            c.send(&line);
        }
        c.state = ConnState::Closing;
    }

    fn handle_request(&mut self, i: usize, line: &[u8], rest: &[u8]) {
        let call: Call = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return self.respond(i, &error(format!("bad request: {e}"))),
        };
        if let Request::Exec {
            process,
            stdin,
            attach,
            start,
        } = call.request
        {
            let Some(id) = call.exec_id else {
                return self.respond(i, &error("exec needs an exec_id"));
            };
            let mut r = self.exec(id.clone(), &process, stdin, start);
            drop(process);
            // The request, the spec read for it and the runtime's plan are freed: give the pages back.
            sys::trim_heap();
            if !r.ok {
                return self.respond(i, &r);
            }
            let pi = self.procs.len() - 1;
            if start {
                let s = self.start(pi);
                if !s.ok {
                    let _ = sys::kill(self.procs[pi].pid, libc::SIGKILL);
                    return self.respond(i, &s);
                }
                r.started = Some(true);
            }
            return match attach {
                Some(streams) => {
                    self.conns[i].target = Some(id);
                    self.attach(i, pi, &r, streams, rest)
                }
                None => self.respond(i, &r),
            };
        }
        let target = call.exec_id;
        let Some(pi) = self.find(target.as_deref()) else {
            let id = target.unwrap_or_default();
            return self.respond(i, &error(format!("no such exec: {id}")));
        };
        self.conns[i].target = target;
        let what = if pi == 0 { "container" } else { "exec process" };
        let running = self.procs[pi].running();
        match call.request {
            Request::Start => {
                // `runc exec --detach` runs the process before `start`: it may be done already, and
                // its output waits in the pipe for this start.
                let r = if self.procs[pi].started {
                    error(format!("{what} already started"))
                } else if !running && !self.procs[pi].runs_before_start {
                    error(format!("{what} is not running"))
                } else {
                    self.start(pi)
                };
                self.respond(i, &r);
            }
            Request::Attach { stdin, stdout, stderr } => {
                let streams = Streams { stdin, stdout, stderr };
                self.attach(i, pi, &ok(), streams, rest)
            }
            Request::Wait => match self.procs[pi].exit_line() {
                Some(line) => {
                    let c = &mut self.conns[i];
                    c.send(&line);
                    c.state = ConnState::Closing;
                }
                None => self.conns[i].state = ConnState::Waiting,
            },
            Request::Kill { signal } => {
                let r = if !running {
                    error(format!("{what} is not running"))
                } else {
                    match sys::kill(self.procs[pi].pid, signal) {
                        Ok(()) => ok(),
                        Err(e) => error(format!("kill: {e}")),
                    }
                };
                self.respond(i, &r);
            }
            Request::Resize { height, width } => {
                let r = match &self.procs[pi].pty_master {
                    Some(m) => match sys::set_winsize(m, height, width) {
                        Ok(()) => ok(),
                        Err(e) => error(format!("resize: {e}")),
                    },
                    None => ok(),
                };
                self.respond(i, &r);
            }
            Request::State => {
                let p = &self.procs[pi];
                let r = Response {
                    pid: Some(p.pid),
                    running: Some(running),
                    started: Some(p.started),
                    id: Some(self.cfg.id.clone()),
                    processes: Some(self.procs.iter().skip(1).map(Proc::state).collect()),
                    ..Default::default()
                };
                self.respond(i, &r);
            }
            Request::Exec { .. } => {}
        }
    }

    /// Answers `answer`, then turns connection `i` into an attached stream of process `pi`; bytes
    /// the client sent after its request line (`rest`) are the first of its stdin.
    fn attach(&mut self, i: usize, pi: usize, answer: &Response, streams: Streams, rest: &[u8]) {
        let running = self.procs[pi].running();
        let p = &mut self.procs[pi];
        let c = &mut self.conns[i];
        if let Ok(mut line) = serde_json::to_vec(answer) {
            line.push(b'\n');
            c.send(&line);
        }
        c.stdin = streams.stdin && p.stdin.is_some();
        c.stdout = streams.stdout;
        c.stderr = streams.stderr;
        c.state = ConnState::Attached;
        if !running && p.outputs.is_empty() {
            c.state = ConnState::Closing;
        } else if c.stdin && !rest.is_empty() {
            p.push_stdin(rest);
        }
    }

    fn start(&mut self, pi: usize) -> Response {
        let p = &mut self.procs[pi];
        p.started = true;
        let result = match p.pending.take() {
            Some(Pending::Own(c)) => c.start(),
            Some(Pending::External) if pi == 0 => match &self.external {
                Some(ext) => ext.start(),
                None => Ok(()),
            },
            // `runc exec --detach` already started it (it may even have exited).
            Some(Pending::External) => Ok(()),
            None if p.runs_before_start => Ok(()),
            None => Err(CreateError {
                message: "process is not running".into(),
                exit_code: 125,
            }),
        };
        match result {
            Ok(()) => ok(),
            Err(e) => {
                self.procs[pi].start_error = Some(e.message.clone());
                error(e.message)
            }
        }
    }

    /// Creates the exec `exec_id`, blocked before exec until `start`.
    /// Creates the exec; with `start` it is told to exec as soon as it is set up (the caller still
    /// calls [`Shim::start`], which reports the outcome).
    fn exec(
        &mut self,
        exec_id: String,
        process: &berth_runtime::oci_spec::runtime::Process,
        stdin: bool,
        start: bool,
    ) -> Response {
        let failed = |e: CreateError| Response {
            error: Some(e.message),
            exit_code: Some(e.exit_code),
            ..Default::default()
        };
        let other = |m: String| {
            failed(CreateError {
                message: m,
                exit_code: 125,
            })
        };
        if self.find(Some(&exec_id)).is_some() {
            return other(format!("exec {exec_id} already exists"));
        }
        let init = self.init();
        if !init.running() || !init.started {
            return other(format!("container {} is not running", self.cfg.id));
        }
        let init_pid = init.pid;
        let tty = process.terminal().unwrap_or(false);
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16))
            .filter(|(h, w)| *h > 0 && *w > 0)
            .unwrap_or((0, 0));
        let io = match StdioSetup::new(tty, stdin, size) {
            Ok(io) => io,
            Err(e) => return other(e.to_string()),
        };
        let created = match &self.external {
            None => {
                // What an exec needs of the spec (the namespaces, the compiled seccomp filter) is
                // read once and kept; the rest of the spec is not: the shim stays small.
                if self.exec_base.is_none() {
                    match ExecBase::load(&self.bundle.join("config.json"), self.seccomp_cache.as_deref()) {
                        Ok(b) => self.exec_base = Some(b),
                        Err(e) => return other(e),
                    }
                }
                let Some(base) = self.exec_base.as_ref() else {
                    return other("the container's spec is not loaded".into());
                };
                linux::exec(&ExecOptions {
                    init_pid,
                    spec: &base.spec,
                    process,
                    stdio: io.stdio,
                    cgroup: self.cgroup.as_deref(),
                    seccomp_cache: self.seccomp_cache.as_deref(),
                    seccomp_bpf: base.seccomp_bpf.as_deref(),
                    start,
                })
                .map(|c| (c.pid(), Pending::Own(c)))
            }
            Some(ext) => ext
                .exec(&exec_id, process, io.stdio)
                .map(|pid| (pid, Pending::External)),
        };
        let (pid, pending) = match created {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        let io = match io.finish() {
            Ok(io) => io,
            Err(e) => {
                let _ = sys::kill(pid, libc::SIGKILL);
                return other(e.to_string());
            }
        };
        self.procs.push(Proc::new(Some(exec_id), pid, pending, io, true));
        Response {
            ok: true,
            pid: Some(pid),
            ..Default::default()
        }
    }
}

/// What an exec needs of the container's spec, kept by the shim after the first exec: a spec with
/// only the namespaces, and the seccomp profile compiled (a few KB).
pub(crate) struct ExecBase {
    spec: berth_runtime::oci_spec::runtime::Spec,
    seccomp_bpf: Option<Vec<u8>>,
}

impl ExecBase {
    fn load(config: &std::path::Path, seccomp_cache: Option<&std::path::Path>) -> Result<ExecBase, String> {
        use berth_runtime::oci_spec::runtime::{Linux, Spec};
        let full: Spec = read_json(config).map_err(|e| e.to_string())?;
        let full_linux = full.linux().as_ref();
        let seccomp_bpf = match full_linux.and_then(|l| l.seccomp().as_ref()) {
            Some(profile) => {
                Some(berth_runtime::seccomp::compile_bpf(profile, seccomp_cache).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let mut linux = Linux::default();
        linux.set_namespaces(full_linux.and_then(|l| l.namespaces().clone()));
        linux.set_seccomp(None);
        let mut spec = Spec::default();
        spec.set_linux(Some(linux));
        Ok(ExecBase { spec, seccomp_bpf })
    }
}
