//! The shim test fixture: a busybox overlay rootfs, a bundle, the shim spawned as the engine spawns it,
//! and helpers to talk to its control socket. Shared by `shim_basic` and `shim_exec`.

#![allow(dead_code)]

pub use berth_runtime::{build_spec, RuntimeConfig};
pub use berth_shim::protocol::{ExitStatus, Ready, RootfsMount, ShimConfig};
pub use berth_shim::runtime as berth_runtime;
pub use std::io::{BufRead, BufReader, Read, Write};
pub use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
pub use std::os::unix::net::UnixStream;
pub use std::os::unix::process::CommandExt;
pub use std::path::{Path, PathBuf};
pub use std::process::{Child, Command, Stdio};
pub use std::time::{Duration, Instant};

/// The shim under test; `BERTH_SHIM_BIN` points at another build (the release one, to measure it).
pub fn shim_bin() -> String {
    std::env::var("BERTH_SHIM_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth-shim").to_string())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: shim tests need root (namespaces, mounts, cgroups)");
            return;
        }
    };
}

/// One container's files: lower (busybox), upper/work, bundle, socket, log.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub shim_pid: Option<i32>,
    pub init_pid: Option<i32>,
    pub cgroups_path: String,
}

pub fn new_id() -> String {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-test")
            .tempdir_in("/tmp")
            .expect("tempdir");
        for d in ["lower", "upper", "work", "bundle/rootfs"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        berth_testkit::busybox_rootfs(&dir.path().join("lower")).expect("busybox rootfs");
        let id = new_id();
        let cgroups_path = format!("/berth-test/{id}");
        Fixture {
            dir,
            id,
            shim_pid: None,
            init_pid: None,
            cgroups_path,
        }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn socket(&self) -> PathBuf {
        self.p("shim.sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.p("ctr-json.log")
    }

    pub fn config(&self, args: &[&str]) -> RuntimeConfig {
        RuntimeConfig {
            id: self.id.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            hostname: self.id[..12].to_string(),
            cgroup_parent: Some("/berth-test".into()),
            user: berth_runtime::ResolvedUser {
                home: "/root".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    pub fn write_bundle(&self, rc: &RuntimeConfig, tweak: impl FnOnce(&mut ShimConfig)) {
        let spec = build_spec(rc, &self.p("bundle/rootfs")).expect("build_spec");
        std::fs::write(self.p("bundle/config.json"), serde_json::to_vec(&spec).expect("json")).expect("write");
        let mut sc = ShimConfig {
            id: self.id.clone(),
            log_path: self.log_path().display().to_string(),
            tty: rc.tty,
            rootfs: RootfsMount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!("lowerdir={}", self.p("lower").display()),
                    format!("upperdir={}", self.p("upper").display()),
                    format!("workdir={}", self.p("work").display()),
                ],
                cwd: None,
            },
            ..Default::default()
        };
        tweak(&mut sc);
        std::fs::write(self.p("bundle/shim.json"), serde_json::to_vec(&sc).expect("json")).expect("write");
    }

    pub fn shim_command(&self) -> Command {
        let mut c = Command::new(shim_bin());
        c.arg("--bundle")
            .arg(self.p("bundle"))
            .arg("--socket")
            .arg(self.socket());
        c
    }

    /// Spawns the shim as the engine does (fd 3 = readiness pipe) and returns its Ready line.
    pub fn spawn(&mut self) -> Ready {
        let cmd = self.shim_command();
        self.spawn_with(cmd).1
    }

    pub fn spawn_ok(&mut self) {
        let r = self.spawn();
        assert!(r.error.is_none(), "create failed: {:?}", r.error);
    }

    pub fn spawn_with(&mut self, mut cmd: Command) -> (Child, Ready) {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array; both ends are close-on-exec.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 returned two fresh descriptors.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wfd = w.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; it puts the pipe on fd 3 (without close-on-exec).
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(wfd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.stdin(Stdio::null()).spawn().expect("spawn shim");
        drop(w);
        let mut line = String::new();
        BufReader::new(std::fs::File::from(r))
            .read_line(&mut line)
            .expect("ready line");
        let ready: Ready = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        self.init_pid = ready.pid;
        if ready.pid.is_some() {
            self.shim_pid = self.find_shim_pid();
        }
        (child, ready)
    }

    /// The daemonised shim: the process whose cmdline names our socket.
    pub fn find_shim_pid(&self) -> Option<i32> {
        let sock = self.socket().display().to_string();
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let s = String::from_utf8_lossy(&cmdline);
            (s.contains(&sock) && pid_alive(pid)).then_some(pid)
        })
    }

    pub fn connect(&self, req: &str) -> UnixStream {
        let mut s = UnixStream::connect(self.socket()).expect("connect to shim");
        s.write_all(req.as_bytes()).expect("send");
        s.write_all(b"\n").expect("send");
        s
    }

    pub fn call(&self, req: &str) -> serde_json::Value {
        let s = self.connect(req);
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("answer");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line:?}: {e}"))
    }

    pub fn attach(&self, stdin: bool) -> UnixStream {
        let s = self.connect(&format!(
            r#"{{"op":"attach","stdin":{stdin},"stdout":true,"stderr":true}}"#
        ));
        // Read the answer byte by byte so no stream bytes are consumed.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while b[0] != b'\n' {
            (&s).read_exact(&mut b).expect("attach answer");
            line.push(b[0]);
        }
        assert_eq!(String::from_utf8_lossy(&line).trim(), r#"{"ok":true}"#);
        s
    }

    pub fn start(&self) {
        let r = self.call(r#"{"op":"start"}"#);
        assert_eq!(r["ok"], true, "start: {r}");
    }

    /// A `wait` request, sent now (before start) so the answer comes when the container exits.
    pub fn waiter(&self) -> UnixStream {
        let s = self.connect(r#"{"op":"wait"}"#);
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        s
    }

    pub fn wait_on(&self, s: UnixStream) -> ExitStatus {
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("wait answer");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad wait answer {line:?}: {e}"))
    }

    /// The exit status from `exit.json`, once the shim wrote it (the shim exits with its container, so
    /// a late `wait` finds no socket).
    pub fn exit_json(&self) -> ExitStatus {
        let p = self.p("bundle/exit.json");
        wait_until("exit.json", Duration::from_secs(30), || p.exists());
        serde_json::from_slice(&std::fs::read(&p).expect("exit.json")).expect("exit.json content")
    }

    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroups_path.trim_start_matches('/'))
    }

    /// After exit: the shim is gone, and so are the socket, the cgroup, the init and any mount.
    pub fn assert_clean(&self) {
        if let Some(pid) = self.shim_pid {
            wait_until("the shim to exit", Duration::from_secs(10), || !pid_alive(pid));
        }
        if let Some(pid) = self.init_pid {
            assert!(!pid_alive(pid), "container init {pid} still alive");
        }
        assert!(!self.socket().exists(), "socket left behind");
        assert!(!self.cgroup_dir("memory").exists(), "cgroup left behind");
        assert!(!self.cgroup_dir("pids").exists(), "cgroup left behind");
        let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let d = self.dir.path().display().to_string();
        assert!(
            !mi.contains(&d),
            "mount left on the host: {}",
            mi.lines().filter(|l| l.contains(&d)).collect::<Vec<_>>().join("\n")
        );
        assert!(self.p("bundle/exit.json").exists(), "exit.json missing");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(pid) = self.init_pid {
            if pid_alive(pid) {
                // SAFETY: plain kill of the container init this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Some(pid) = self.shim_pid {
            let deadline = Instant::now() + Duration::from_secs(5);
            while pid_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let rootfs = self.p("bundle/rootfs");
        if let Ok(c) = std::ffi::CString::new(rootfs.display().to_string()) {
            // SAFETY: detaching a mount point of this test's own dir, if any.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        for ctrl in [
            "memory", "cpu", "cpuacct", "cpuset", "pids", "devices", "freezer", "blkio", "systemd",
        ] {
            let _ = std::fs::remove_dir(self.cgroup_dir(ctrl));
        }
    }
}

/// Kills (and reaps) a helper process when the test ends, even on failure.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Splits Docker's multiplexed stream into (stdout, stderr).
pub fn demux(mut s: impl Read) -> (String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut h = [0u8; 8];
    while s.read_exact(&mut h).is_ok() {
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).expect("frame body");
        match h[0] {
            1 => out.extend(buf),
            2 => err.extend(buf),
            other => panic!("bad stream id {other}"),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}
