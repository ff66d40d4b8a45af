//! Shared harness of the integration tests: a berthd of its own per test (data root, exec root and
//! socket under a fresh temp dir), clients pointed at it, and a cleanup guard that removes the
//! containers, stops the daemon and the shims it started, unmounts and deletes the directory.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A daemon under test.
pub struct Daemon {
    /// The test's directory (data root, exec root, socket, logs).
    pub root: PathBuf,
    /// The API socket.
    pub sock: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
    /// The network namespace the daemon (and so its bridges, NAT rules and published ports) lives
    /// in: one per test, so tests never touch the host's network nor each other's. Held by this fd
    /// (no name under /run/netns: `ip netns add` races with itself when tests run in parallel).
    pub netns: std::fs::File,
}

/// Result of running a client command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn bin(name: &str) -> PathBuf {
    match name {
        "berth" => PathBuf::from(env!("CARGO_BIN_EXE_berth")),
        "berthd" => PathBuf::from(env!("CARGO_BIN_EXE_berthd")),
        "berth-shim" => PathBuf::from(env!("CARGO_BIN_EXE_berth-shim")),
        "berth-registry" => PathBuf::from(env!("CARGO_BIN_EXE_berth-registry")),
        other => panic!("unknown binary {other}"),
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

impl Daemon {
    /// Starts a fresh daemon and waits until it answers.
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    /// Starts a fresh daemon with extra `berthd` arguments.
    pub fn start_with(extra: &[&str]) -> Daemon {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = PathBuf::from(format!("/tmp/bt-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("creating the test root");
        let sock = root.join("berth.sock");
        let netns = new_netns();
        let mut up = Command::new("ip");
        in_netns(&mut up, &netns);
        let ok = up.args(["link", "set", "lo", "up"]).status().expect("running ip");
        assert!(ok.success(), "bringing lo up in the test's network namespace");
        let mut d = Daemon {
            root,
            sock,
            child: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            netns,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("berthd.log"))
            .expect("opening the daemon log");
        let mut cmd = Command::new(bin("berthd"));
        in_netns(&mut cmd, &self.netns);
        // The host's /etc/berth/daemon.json stays out of tests: an empty file of the test's own,
        // unless the test names one.
        if !self.extra_args.iter().any(|a| a == "--config-file") {
            let file = self.root.join("daemon.json");
            std::fs::write(&file, "{}").expect("writing the test's daemon.json");
            cmd.arg("--config-file").arg(file);
        }
        let child = cmd
            .arg("--host")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("run"))
            .arg("--log-level")
            .arg("debug")
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawning berthd");
        self.child = Some(child);
        let ok = eventually(Duration::from_secs(20), || self.api("GET", "/_ping", None).0 == 200);
        assert!(
            ok,
            "berthd did not answer on {}; log:\n{}",
            self.sock.display(),
            self.log()
        );
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("berthd.log")).unwrap_or_default()
    }

    /// `unix://` address of the socket.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The data root.
    pub fn data_root(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Runs the `berth` CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_cmd(args).output().expect("running berth").into()
    }

    /// A `berth` command prepared to talk to this daemon.
    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("berth"));
        c.args(args)
            .env("BERTH_HOST", self.host())
            .env_remove("DOCKER_HOST")
            .env_remove("BUILDKIT_PROGRESS")
            .stdin(Stdio::null());
        c
    }

    /// Runs the real `docker` CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.docker_cmd(args)
            .output()
            .expect("running docker (the docker CLI must be installed)")
            .into()
    }

    /// A `docker` command prepared to talk to this daemon.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("docker-config"))
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null());
        c
    }

    /// One HTTP request to the API; returns status and body.
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        let Ok(mut s) = UnixStream::connect(&self.sock) else {
            return (0, Vec::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let body = body.unwrap_or(b"");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).is_err() {
            return (0, Vec::new());
        }
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text_end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(resp.len());
        let head = String::from_utf8_lossy(&resp[..text_end]).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut body = resp.get(text_end + 4..).unwrap_or_default().to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, body)
    }

    /// GET a JSON document.
    pub fn api_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.api("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("JSON body")
    }

    /// Loads the busybox fixture image as `tag` through the API.
    pub fn load_busybox(&self, tag: &str) {
        let tar = berth_testkit::busybox_image_tar(tag).expect("building the busybox image");
        let (status, body) = self.api("POST", "/v1.41/images/load?quiet=1", Some(&tar));
        assert_eq!(status, 200, "loading busybox: {}", String::from_utf8_lossy(&body));
    }

    /// The daemon's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A `berthd` command on this test's roots (for tests that start a second daemon by hand).
    pub fn berthd_cmd(&self, sock: &Path, data_root: &Path, exec_root: &Path) -> Command {
        let mut c = Command::new(bin("berthd"));
        in_netns(&mut c, &self.netns);
        let file = self.root.join("daemon.json");
        if !file.exists() {
            std::fs::write(&file, "{}").expect("writing the test's daemon.json");
        }
        c.arg("--config-file")
            .arg(file)
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(data_root)
            .arg("--exec-root")
            .arg(exec_root)
            .stdin(Stdio::null());
        c
    }

    /// Kills the daemon with SIGKILL (containers keep running under their shims).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same state.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// PIDs of processes whose command line mentions this test's root (the shims it started).
    pub fn own_processes(&self) -> Vec<i32> {
        // With the slash: /tmp/bt-1-1 must not match /tmp/bt-1-10 (another test's daemon).
        let needle = format!("{}/", self.root.display());
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if pid == std::process::id() as i32 {
                    continue;
                }
                if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                    if String::from_utf8_lossy(&cmd).contains(&needle) {
                        out.push(pid);
                    }
                }
            }
        }
        out
    }

    /// Mount points under this test's root.
    pub fn own_mounts(&self) -> Vec<String> {
        // With the slash: /tmp/bt-1-1 must not match /tmp/bt-1-10 (another test's daemon).
        let needle = format!("{}/", self.root.display());
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }
}

fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some(nl) = b[i..].windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[i..i + nl]).trim(), 16).unwrap_or(0);
        i += nl + 2;
        if size == 0 {
            break;
        }
        let end = (i + size).min(b.len());
        out.extend_from_slice(&b[i..end]);
        i = end + 2;
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let (_, body) = self.api("GET", "/containers/json?all=1", None);
            if let Ok(serde_json::Value::Array(list)) = serde_json::from_slice::<serde_json::Value>(&body) {
                for c in list {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = self.api("DELETE", &format!("/containers/{id}?force=1"), None);
                    }
                }
            }
        }
        self.kill9();
        // Shims this test's daemon started (their command line names our root).
        for pid in self.own_processes() {
            kill_pid(pid);
        }
        for m in self.own_mounts().iter().rev() {
            if let Some(point) = m.split_whitespace().nth(4) {
                let _ = Command::new("umount").arg("-l").arg(point).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A new network namespace, held by the returned fd (it goes away with the fd and its processes).
pub fn new_netns() -> std::fs::File {
    std::thread::spawn(|| {
        // SAFETY: unshare on this short-lived thread only moves this thread.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
        std::fs::File::open("/proc/thread-self/ns/net").expect("opening the new network namespace")
    })
    .join()
    .expect("the netns thread panicked")
}

/// Makes `cmd` start inside the given network namespace (only the network: the mounts stay the
/// host's, unlike `ip netns exec`).
pub fn in_netns(cmd: &mut Command, netns: &std::fs::File) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = netns.as_raw_fd();
    // SAFETY: between fork and exec only setns, async-signal-safe, is called, on an fd the parent
    // keeps open.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Daemon {
    /// A command run in the daemon's network namespace (where its published ports are).
    pub fn netns_cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        in_netns(&mut c, &self.netns);
        c
    }

    /// Runs `f` on a thread inside the daemon's network namespace (to connect to published ports).
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                use std::os::fd::AsRawFd;
                // SAFETY: setns on this thread only, with a valid namespace fd.
                let r = unsafe { libc::setns(self.netns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns into the test's network namespace");
                f()
            })
            .join()
            .expect("the netns thread panicked")
        })
    }
}

fn kill_pid(pid: i32) {
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

/// Runs `berth` against the daemon and returns its stdout; a failure panics with the command's
/// output and the end of the daemon's log.
pub fn ok(d: &Daemon, args: &[&str]) -> String {
    let r = d.berth(args);
    if r.code != 0 {
        let log = d.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("berth {args:?}: {r:?}\n--- daemon log (end)\n{}", tail.join("\n"));
    }
    r.stdout
}

/// `berth inspect NAME`, the first object.
pub fn inspect(d: &Daemon, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&ok(d, &["inspect", name])).unwrap();
    v[0].clone()
}

/// Reads a file, or an empty string.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A registry of berth's own in the daemon's network namespace, on `port`; killed on drop.
pub struct Registry(Child);

impl Registry {
    pub fn start(d: &Daemon, port: u16) -> Registry {
        let root = d.data_root().parent().unwrap().join(format!("registry-{port}"));
        let child = d
            .netns_cmd(bin("berth-registry").to_str().unwrap())
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--root"])
            .arg(&root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting berth-registry");
        let up = eventually(std::time::Duration::from_secs(20), || {
            d.in_netns(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        });
        assert!(up, "berth-registry did not listen");
        Registry(child)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sha256 of `data` in hex (with `sha256sum`, as a user would check it).
pub fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            std::io::Write::write_all(&mut c.stdin.take().unwrap(), data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
