//! An external OCI runtime (runc, crun, youki) driven through its CLI: `create`, `start`, `exec`,
//! `delete`.
//! The rootfs is mounted on the host at `<bundle>/rootfs` (the runtime expects it there) and
//! unmounted by [`ExternalRuntime::delete`].

use crate::linux::{CreateError, RootfsMount, Stdio};
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;

/// One container run by an external OCI runtime.
#[derive(Debug, Clone)]
pub struct ExternalRuntime {
    /// The runtime binary.
    pub runtime: PathBuf,
    /// The bundle directory (`config.json` is written there).
    pub bundle: PathBuf,
    /// Container ID as the runtime knows it.
    pub id: String,
}

fn dup(fd: RawFd) -> Result<OwnedFd, CreateError> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(CreateError {
            message: format!("dup: {}", std::io::Error::last_os_error()),
            exit_code: 125,
        });
    }
    // SAFETY: n is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn err(message: String) -> CreateError {
    CreateError {
        message,
        exit_code: 125,
    }
}

fn current_hard_limit(t: oci_spec::runtime::PosixRlimitType) -> Option<u64> {
    let res = crate::linux::rlimit_resource(t);
    // SAFETY: zeroed rlimit filled by getrlimit.
    let mut cur: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: cur is a valid out-pointer.
    (unsafe { libc::getrlimit(res as _, &mut cur) } == 0).then_some(cur.rlim_max)
}

impl ExternalRuntime {
    fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    fn log(&self) -> PathBuf {
        self.bundle.join("runtime.log")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--log").arg(self.log()).arg("--log-format").arg("json");
        c
    }

    /// The last `"msg"` of the runtime's JSON log, for error messages.
    fn last_error(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        log.lines()
            .rev()
            .find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["level"] == "error")
                    .then(|| v["msg"].as_str().map(str::to_string))
                    .flatten()
            })
            .unwrap_or_default()
    }

    /// Mounts the rootfs, writes `config.json` and runs `<runtime> create`; returns the init's pid.
    pub fn create(&self, spec: &Spec, rootfs: &RootfsMount, stdio: Stdio) -> Result<i32, CreateError> {
        let dir = self.rootfs();
        std::fs::create_dir_all(&dir).map_err(|e| err(format!("creating {}: {e}", dir.display())))?;
        let c = |s: &[u8]| CString::new(s).map_err(|_| err("NUL byte in rootfs mount".into()));
        let (src, fstype, data, target) = (
            c(rootfs.source.as_bytes())?,
            c(rootfs.fstype.as_bytes())?,
            c(rootfs.options.join(",").as_bytes())?,
            c(dir.as_os_str().as_bytes())?,
        );
        let old_cwd = std::env::current_dir().ok();
        if let Some(cwd) = &rootfs.cwd {
            std::env::set_current_dir(cwd).map_err(|e| err(format!("chdir to {}: {e}", cwd.display())))?;
        }
        // SAFETY: all arguments are valid NUL-terminated strings.
        let r = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, data.as_ptr().cast()) };
        let mount_err = std::io::Error::last_os_error();
        if let (Some(_), Some(old)) = (&rootfs.cwd, old_cwd) {
            let _ = std::env::set_current_dir(old);
        }
        if r != 0 {
            return Err(err(format!("mounting rootfs: {mount_err}")));
        }
        let result = self.create_mounted(spec, &dir, stdio);
        if result.is_err() {
            self.unmount();
        }
        result
    }

    fn create_mounted(&self, spec: &Spec, dir: &std::path::Path, stdio: Stdio) -> Result<i32, CreateError> {
        let mut spec = spec.clone();
        if let Some(root) = spec.root_mut() {
            root.set_path(dir.to_path_buf());
        }
        // A terminal is made by the runtime, inside the container, and comes back on the console
        // socket (`--console-socket`).
        let console = match stdio {
            Stdio::Console { socket, rows, cols } => Some((socket, rows, cols)),
            Stdio::Fds { .. } => None,
        };
        if let Some(p) = spec.process_mut() {
            p.set_terminal(Some(console.is_some()));
            if let Some((_, rows, cols)) = console.filter(|(_, r, c)| *r > 0 && *c > 0) {
                if let Ok(size) = oci_spec::runtime::BoxBuilder::default()
                    .height(rows as u64)
                    .width(cols as u64)
                    .build()
                {
                    p.set_console_size(Some(size));
                }
            }
            // Without CAP_SYS_RESOURCE a hard limit above ours cannot be set: clamp (berth's own
            // runtime does the same).
            let can_raise =
                caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap_or(false);
            if let (Some(mut rl), false) = (p.rlimits().clone(), can_raise) {
                for r in rl.iter_mut() {
                    if let Some(max) = current_hard_limit(r.typ()) {
                        if r.hard() > max {
                            if let Ok(c) = oci_spec::runtime::PosixRlimitBuilder::default()
                                .typ(r.typ())
                                .hard(max)
                                .soft(r.soft().min(max))
                                .build()
                            {
                                *r = c;
                            }
                        }
                    }
                }
                p.set_rlimits(Some(rl));
            }
        }
        let json = serde_json::to_vec(&spec).map_err(|e| err(format!("encoding config.json: {e}")))?;
        let tmp = self.bundle.join(".config.json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, self.bundle.join("config.json")))
            .map_err(|e| err(format!("writing config.json: {e}")))?;
        let pid_file = self.bundle.join("init.pid");
        let mut cmd = self.command();
        cmd.arg("create")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        let status = match (stdio, console) {
            (Stdio::Fds { stdin, stdout, stderr }, _) => cmd
                .arg(&self.id)
                .stdin(dup(stdin)?)
                .stdout(dup(stdout)?)
                .stderr(dup(stderr)?)
                .status()
                .map_err(|e| err(format!("running {}: {e}", self.runtime.display())))?,
            (Stdio::Console { .. }, Some((socket, rows, cols))) => self.create_with_console(cmd, socket, rows, cols)?,
            (Stdio::Console { .. }, None) => return Err(err("console without a socket".into())),
        };
        if !status.success() {
            let msg = self.last_error();
            let code = if msg.contains("executable file not found") || msg.contains("no such file or directory") {
                127
            } else if msg.contains("permission denied") {
                126
            } else {
                125
            };
            let _ = self.command().args(["delete", "-f", &self.id]).status();
            return Err(CreateError {
                message: format!("OCI runtime create failed: {msg}"),
                exit_code: code,
            });
        }
        let pid = std::fs::read_to_string(&pid_file).map_err(|e| err(format!("reading pid file: {e}")))?;
        pid.trim()
            .parse()
            .map_err(|_| err(format!("bad pid file content {pid:?}")))
    }

    /// Runs `create` with `--console-socket`: accepts the runtime's connection, takes the pty master
    /// it sends, sets the initial size and passes the master on over `socket`.
    fn create_with_console(
        &self,
        mut cmd: Command,
        socket: RawFd,
        rows: u16,
        cols: u16,
    ) -> Result<std::process::ExitStatus, CreateError> {
        let path = self.bundle.join("console.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| err(format!("binding {}: {e}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| err(format!("console socket: {e}")))?;
        let null = || std::fs::File::open("/dev/null").map_err(|e| err(format!("opening /dev/null: {e}")));
        let mut child = cmd
            .arg("--console-socket")
            .arg(&path)
            .arg(&self.id)
            .stdin(null()?)
            .stdout(null()?)
            .stderr(null()?)
            .spawn()
            .map_err(|e| err(format!("running {}: {e}", self.runtime.display())))?;
        // The runtime connects during `create`; it has exited without doing so when try_wait says so.
        let mut master = None;
        let status = loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    match crate::sys::recv_fd(&stream) {
                        Ok(fd) => master = Some(fd),
                        Err(e) => {
                            let _ = child.kill();
                            let _ = child.wait();
                            let _ = std::fs::remove_file(&path);
                            return Err(err(format!("receiving the console from the runtime: {e}")));
                        }
                    }
                    break child
                        .wait()
                        .map_err(|e| err(format!("waiting for {}: {e}", self.runtime.display())))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_file(&path);
                    return Err(err(format!("console socket: {e}")));
                }
            }
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(2)),
                Err(e) => return Err(err(format!("waiting for {}: {e}", self.runtime.display()))),
            }
        };
        let _ = std::fs::remove_file(&path);
        if let (Some(m), true) = (&master, status.success()) {
            if rows > 0 && cols > 0 {
                crate::sys::set_winsize(m, rows, cols).map_err(|e| err(format!("setting the console size: {e}")))?;
            }
            crate::linux::send_fd(socket, m).map_err(|e| err(format!("passing the console to the shim: {e}")))?;
        } else if status.success() {
            return Err(err("the runtime sent no console".into()));
        }
        Ok(status)
    }

    /// `<runtime> exec --process <json> --detach --pid-file <file> [--console-socket] <id>`: starts an
    /// extra process in the container and returns its pid. The runtime runs it at once (there is no
    /// created-but-not-started exec in the OCI CLI), so output written before an attach is dropped.
    pub fn exec(&self, exec_id: &str, process: &oci_spec::runtime::Process, stdio: Stdio) -> Result<i32, CreateError> {
        let console = match stdio {
            Stdio::Console { socket, rows, cols } => Some((socket, rows, cols)),
            Stdio::Fds { .. } => None,
        };
        let mut process = process.clone();
        process.set_terminal(Some(console.is_some()));
        let safe_id: String = exec_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(64)
            .collect();
        let process_file = self.bundle.join(format!("exec-{safe_id}.json"));
        let pid_file = self.bundle.join(format!("exec-{safe_id}.pid"));
        let json = serde_json::to_vec(&process).map_err(|e| err(format!("encoding the exec process: {e}")))?;
        std::fs::write(&process_file, json).map_err(|e| err(format!("writing {}: {e}", process_file.display())))?;
        let _ = std::fs::remove_file(&pid_file);
        let mut cmd = self.command();
        cmd.arg("exec")
            .arg("--process")
            .arg(&process_file)
            .arg("--detach")
            .arg("--pid-file")
            .arg(&pid_file);
        let status = match (stdio, console) {
            (Stdio::Fds { stdin, stdout, stderr }, _) => cmd
                .arg(&self.id)
                .stdin(dup(stdin)?)
                .stdout(dup(stdout)?)
                .stderr(dup(stderr)?)
                .status()
                .map_err(|e| err(format!("running {}: {e}", self.runtime.display()))),
            (Stdio::Console { .. }, Some((socket, rows, cols))) => self.create_with_console(cmd, socket, rows, cols),
            (Stdio::Console { .. }, None) => Err(err("console without a socket".into())),
        };
        let _ = std::fs::remove_file(&process_file);
        let status = status?;
        if !status.success() {
            let msg = self.last_error();
            let code = if msg.contains("executable file not found") || msg.contains("no such file or directory") {
                127
            } else if msg.contains("permission denied") || msg.contains("is a directory") {
                126
            } else {
                125
            };
            return Err(CreateError {
                message: format!("OCI runtime exec failed: {msg}"),
                exit_code: code,
            });
        }
        let pid = std::fs::read_to_string(&pid_file).map_err(|e| err(format!("reading pid file: {e}")))?;
        let _ = std::fs::remove_file(&pid_file);
        pid.trim()
            .parse()
            .map_err(|_| err(format!("bad pid file content {pid:?}")))
    }

    /// `<runtime> start <id>`.
    pub fn start(&self) -> Result<(), CreateError> {
        let status = self
            .command()
            .args(["start", &self.id])
            .status()
            .map_err(|e| err(format!("running {}: {e}", self.runtime.display())))?;
        if status.success() {
            Ok(())
        } else {
            Err(err(format!("OCI runtime start failed: {}", self.last_error())))
        }
    }

    /// `<runtime> delete -f <id>`, then unmounts the rootfs.
    pub fn delete(&self) {
        let _ = self.command().args(["delete", "-f", &self.id]).status();
        self.unmount();
    }

    fn unmount(&self) {
        if let Ok(t) = CString::new(self.rootfs().as_os_str().as_bytes()) {
            // SAFETY: t is a valid path.
            unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
