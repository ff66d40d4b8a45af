//! Interop with a real dockerd (Debian's docker.io): a `docker save` archive made by dockerd loads
//! into berthd and runs there, and berthd's `docker save` loads into dockerd with the same image ID
//! and runs there; dockerd pushes to and pulls from berth's registry server (`berth registry
//! serve`), anonymously and after `docker login`.
//!
//! Each test starts a private containerd + dockerd pair of its own: every path they write (data
//! root, exec root, sockets, pid file, trust key, containerd's root and state) lives under a fresh
//! directory, containers go under a cgroup parent named after that directory, and the guard stops
//! only the processes it started (by PID, and the shims by that directory in their command line).
//! The one thing outside it is containerd 1.6's compiled-in shim socket directory
//! (`/run/containerd/s/<hash>`), whose sockets the shims remove when they exit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bin, eventually, Daemon, Run};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A private dockerd, with the containerd it talks to, for one test.
struct Dockerd {
    /// Everything of this pair lives under here.
    root: PathBuf,
    /// dockerd's API socket.
    sock: PathBuf,
    /// Name of the cgroup (in every v1 hierarchy, or the v2 tree) the containers go under.
    cgroup_parent: String,
    containerd: Option<Child>,
    dockerd: Option<Child>,
}

fn require(bin: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{bin} not found: this test needs Debian's docker.io (dockerd, containerd, runc); \
         `bash scripts/deps.sh` installs it"
    );
}

/// One HTTP GET over a UNIX socket; the status code, or 0 when nothing answers.
fn http_status(sock: &Path, path: &str) -> u16 {
    let Ok(mut s) = UnixStream::connect(sock) else { return 0 };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("opening a log file")
}

impl Dockerd {
    /// Starts containerd and dockerd under a fresh directory and waits until dockerd answers.
    fn start() -> Dockerd {
        let dockerd_bin = require("dockerd");
        let containerd_bin = require("containerd");
        require("runc");
        require("containerd-shim-runc-v2");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        // Short: containerd's and dockerd's socket paths must fit in sun_path.
        let name = format!("bdi-{}-{n}", std::process::id());
        let root = PathBuf::from("/tmp").join(&name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("ctd")).expect("creating the dockerd test root");
        let mut k = Dockerd {
            sock: root.join("docker.sock"),
            cgroup_parent: name,
            root,
            containerd: None,
            dockerd: None,
        };
        let ctd = k.root.join("ctd");
        let ctd_sock = ctd.join("containerd.sock");
        // Our own containerd rather than the one dockerd would spawn: dockerd picks up a system
        // containerd at /run/containerd/containerd.sock when one runs, and its own would keep
        // /opt/containerd as the plugin dir. The CRI and unusable snapshotters only slow start-up.
        let config = format!(
            r#"version = 2
root = "{c}/root"
state = "{c}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{c}/containerd.sock"
[ttrpc]
  address = "{c}/containerd.sock.ttrpc"
[debug]
  address = "{c}/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c}/opt"
"#,
            c = ctd.display()
        );
        std::fs::write(ctd.join("config.toml"), config).expect("writing containerd's config");
        let child = Command::new(&containerd_bin)
            .arg("--config")
            .arg(ctd.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log_file(&k.root.join("containerd.log")))
            .stderr(log_file(&k.root.join("containerd.log")))
            .spawn()
            .expect("spawning containerd");
        k.containerd = Some(child);
        let up = eventually(Duration::from_secs(30), || UnixStream::connect(&ctd_sock).is_ok());
        assert!(
            up,
            "containerd did not listen on {}; log:\n{}",
            ctd_sock.display(),
            k.logs()
        );

        // The trust key would otherwise go to /etc/docker/key.json (dockerd 20.10 has no flag for it).
        let daemon_json = serde_json::json!({ "deprecated-key-path": k.root.join("key.json") });
        std::fs::write(k.root.join("daemon.json"), daemon_json.to_string()).expect("writing daemon.json");
        let child = Command::new(&dockerd_bin)
            .arg("--config-file")
            .arg(k.root.join("daemon.json"))
            .arg("--containerd")
            .arg(&ctd_sock)
            .arg("--host")
            .arg(format!("unix://{}", k.sock.display()))
            .arg("--data-root")
            .arg(k.root.join("data"))
            .arg("--exec-root")
            .arg(k.root.join("run"))
            .arg("--pidfile")
            .arg(k.root.join("docker.pid"))
            .arg(format!("--cgroup-parent=/{}", k.cgroup_parent))
            // No docker0, no iptables or sysctl changes: the host's network stays as it was.
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .args(["--userland-proxy=false", "--storage-driver=overlay2"])
            .stdin(Stdio::null())
            .stdout(log_file(&k.root.join("dockerd.log")))
            .stderr(log_file(&k.root.join("dockerd.log")))
            .spawn()
            .expect("spawning dockerd");
        k.dockerd = Some(child);
        let up = eventually(Duration::from_secs(60), || {
            if let Some(c) = k.dockerd.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return true; // exited: the assert below reports it
                }
            }
            http_status(&k.sock, "/_ping") == 200
        });
        assert!(
            up && http_status(&k.sock, "/_ping") == 200,
            "dockerd did not answer on {}; logs:\n{}",
            k.sock.display(),
            k.logs()
        );
        k
    }

    /// containerd's and dockerd's logs so far.
    fn logs(&self) -> String {
        format!(
            "--- containerd.log\n{}--- dockerd.log\n{}",
            common::read(&self.root.join("containerd.log")),
            common::read(&self.root.join("dockerd.log"))
        )
    }

    /// Runs the docker CLI against this dockerd.
    fn docker(&self, args: &[&str]) -> Run {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.root.join("docker-config"))
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null())
            .output()
            .expect("running docker (the docker CLI must be installed)")
            .into()
    }

    /// PIDs of the processes whose command line names our directory (containerd, the shims).
    fn own_processes(&self) -> Vec<i32> {
        let needle = self.root.display().to_string();
        let me = std::process::id() as i32;
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                if String::from_utf8_lossy(&cmd).contains(&needle) {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// Mount points under our directory, deepest last as mountinfo lists them.
    fn own_mounts(&self) -> Vec<String> {
        let needle = format!("{}/", self.root.display());
        common::read(Path::new("/proc/self/mountinfo"))
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|p| p.starts_with(&needle))
            .collect()
    }
}

impl Dockerd {
    /// Our cgroup parent in the v2 tree or in each v1 hierarchy, where it exists.
    fn own_cgroups(&self) -> Vec<PathBuf> {
        let base = Path::new("/sys/fs/cgroup");
        let mut dirs = vec![base.join(&self.cgroup_parent)];
        for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
            dirs.push(e.path().join(&self.cgroup_parent));
        }
        dirs.retain(|d| d.is_dir());
        dirs
    }
}

/// SIGTERM, then SIGKILL if it has not exited within `grace`; reaps it.
fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: signalling a child we spawned and have not reaped yet, so the PID is still ours.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    if !eventually(grace, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Removes a cgroup directory and the ones below it (children first; rmdir is how cgroups go).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if http_status(&self.sock, "/_ping") == 200 {
            let ps = self.docker(&["ps", "-aq"]);
            let ids: Vec<&str> = ps.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.docker(&args);
            }
        }
        if let Some(mut c) = self.dockerd.take() {
            stop_child(&mut c, Duration::from_secs(20));
        }
        if let Some(mut c) = self.containerd.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
        // Shims (reparented away from containerd) and anything else started for our directory.
        for pid in self.own_processes() {
            // SAFETY: the process's command line names our private directory, so we started it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        eventually(Duration::from_secs(10), || self.own_processes().is_empty());
        for point in self.own_mounts().iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
        for dir in self.own_cgroups() {
            remove_cgroup_tree(&dir);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn image_id(run: Run) -> String {
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "not an image ID: {id:?}");
    id
}

#[test]
fn dockerd_save_loads_into_berthd_and_runs() {
    let k = Dockerd::start();
    let d = Daemon::start();

    let rootfs = berth_testkit::busybox_rootfs_tar().expect("building the busybox rootfs");
    let rootfs_path = k.root.join("rootfs.tar");
    std::fs::write(&rootfs_path, rootfs).expect("writing the rootfs tar");
    let r = k.docker(&[
        "import",
        "-c",
        r#"CMD ["sh"]"#,
        "-c",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        &rootfs_path.display().to_string(),
        "imported:v1",
    ]);
    assert_eq!(r.code, 0, "docker import into dockerd: {r:?}\n{}", k.logs());
    let dockerd_id = image_id(k.docker(&["image", "inspect", "-f", "{{.Id}}", "imported:v1"]));

    let archive = k.root.join("from-dockerd.tar");
    let archive_arg = archive.display().to_string();
    let r = k.docker(&["save", "-o", &archive_arg, "imported:v1"]);
    assert_eq!(r.code, 0, "docker save from dockerd: {r:?}");

    let r = d.docker(&["load", "-i", &archive_arg]);
    assert_eq!(r.code, 0, "docker load into berthd: {r:?}\n{}", d.log());
    assert!(r.stdout.contains("Loaded image: imported:v1"), "{r:?}");
    let berth_id = image_id(d.docker(&["image", "inspect", "-f", "{{.Id}}", "imported:v1"]));
    assert_eq!(
        berth_id, dockerd_id,
        "the image ID (config digest) must survive the trip"
    );

    let r = d.docker(&[
        "run",
        "--rm",
        "imported:v1",
        "sh",
        "-c",
        "echo made by dockerd; readlink /bin/sh; ls /home",
    ]);
    assert_eq!(r.code, 0, "docker run on berthd: {r:?}\n{}", d.log());
    assert_eq!(r.stdout, "made by dockerd\nbusybox\napp\n", "{r:?}");
}

/// Imports the busybox rootfs into `k` as `tag`.
fn import_busybox(k: &Dockerd, tag: &str) {
    let rootfs = berth_testkit::busybox_rootfs_tar().expect("building the busybox rootfs");
    let rootfs_path = k.root.join(format!("rootfs-{}.tar", tag.replace([':', '/'], "-")));
    std::fs::write(&rootfs_path, rootfs).expect("writing the rootfs tar");
    let r = k.docker(&["import", "-c", r#"CMD ["sh"]"#, &rootfs_path.display().to_string(), tag]);
    assert_eq!(r.code, 0, "docker import into dockerd: {r:?}\n{}", k.logs());
}

#[test]
fn dockerd_layered_image_with_whiteouts_round_trips_through_berthd() {
    let k = Dockerd::start();
    let d = Daemon::start();
    import_busybox(&k, "base:v1");
    // A second layer made by dockerd itself: a new file, a deleted file (a whiteout), an opaque dir.
    let r = k.docker(&[
        "run",
        "--name",
        "maker",
        "--network",
        "none",
        "base:v1",
        "sh",
        "-c",
        "echo layered > /hello && rm /bin/cat && rm -r /home && mkdir /home && touch /home/new",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", k.logs());
    let r = k.docker(&["commit", "-c", r#"CMD ["sh"]"#, "maker", "layered:v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let dockerd_id = image_id(k.docker(&["image", "inspect", "-f", "{{.Id}}", "layered:v1"]));
    let layers = k.docker(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "layered:v1"]);
    assert_eq!(layers.stdout.trim(), "2", "{layers:?}");

    let archive = k.root.join("layered.tar").display().to_string();
    let r = k.docker(&["save", "-o", &archive, "layered:v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["load", "-i", &archive]);
    assert_eq!(r.code, 0, "docker load into berthd: {r:?}\n{}", d.log());
    let berth_id = image_id(d.docker(&["image", "inspect", "-f", "{{.Id}}", "layered:v1"]));
    assert_eq!(berth_id, dockerd_id);
    let r = d.docker(&[
        "run",
        "--rm",
        "layered:v1",
        "sh",
        "-c",
        "read x < /hello; echo $x; test -e /bin/cat && echo cat-still-there; ls /home",
    ]);
    assert_eq!(r.code, 0, "docker run on berthd: {r:?}\n{}", d.log());
    assert_eq!(r.stdout, "layered\nnew\n", "{r:?}");

    // Back again: berthd's save of dockerd's image loads into dockerd as the same image.
    let r = k.docker(&["rm", "maker"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = k.docker(&["rmi", "layered:v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let back = k.root.join("back.tar").display().to_string();
    let r = d.docker(&["save", "-o", &back, "layered:v1"]);
    assert_eq!(r.code, 0, "docker save from berthd: {r:?}\n{}", d.log());
    let r = k.docker(&["load", "-i", &back]);
    assert_eq!(r.code, 0, "docker load into dockerd: {r:?}\n{}", k.logs());
    assert_eq!(
        image_id(k.docker(&["image", "inspect", "-f", "{{.Id}}", "layered:v1"])),
        dockerd_id
    );
    let r = k.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "layered:v1",
        "sh",
        "-c",
        "read x < /hello; echo $x; ls /home",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", k.logs());
    assert_eq!(r.stdout, "layered\nnew\n", "{r:?}");
}

#[test]
fn berthd_save_loads_into_dockerd_and_runs() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let k = Dockerd::start();

    let berth_id = image_id(d.docker(&["image", "inspect", "-f", "{{.Id}}", "bb:latest"]));
    let archive = k.root.join("from-berthd.tar");
    let archive_arg = archive.display().to_string();
    let r = d.docker(&["save", "-o", &archive_arg, "bb:latest"]);
    assert_eq!(r.code, 0, "docker save from berthd: {r:?}\n{}", d.log());

    let r = k.docker(&["load", "-i", &archive_arg]);
    assert_eq!(r.code, 0, "docker load into dockerd: {r:?}\n{}", k.logs());
    assert!(r.stdout.contains("Loaded image: bb:latest"), "{r:?}");

    let r = k.docker(&["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.lines().any(|l| l == format!("bb:latest {berth_id}")),
        "dockerd's images: {r:?}"
    );

    let r = k.docker(&["run", "--rm", "--network", "none", "bb", "echo", "ok"]);
    assert_eq!(r.code, 0, "docker run on dockerd: {r:?}\n{}", k.logs());
    assert_eq!(r.stdout, "ok\n", "{r:?}");
    // The container and its shim are gone (--rm); only dockerd and containerd remain of ours.
    let ps = k.docker(&["ps", "-aq"]);
    assert_eq!(ps.stdout.trim(), "", "{ps:?}");
}

#[test]
fn private_dockerd_leaves_nothing_behind() {
    let k = Dockerd::start();
    import_busybox(&k, "bb:latest");
    let r = k.docker(&["run", "-d", "--network", "none", "bb", "sleep", "600"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", k.logs());
    assert!(
        !k.own_mounts().is_empty(),
        "a running container has its rootfs mounted under our dir"
    );
    assert!(
        !k.own_cgroups().is_empty(),
        "a running container is in our cgroup parent"
    );
    let shims = k.own_processes().len();
    assert!(shims >= 2, "containerd and the container's shim name our dir: {shims}");
    let (root, guard_cgroups) = (k.root.clone(), k.own_cgroups());
    drop(k);
    let needle = root.display().to_string();
    assert!(!root.exists(), "{} is still there", root.display());
    let mounts = common::read(Path::new("/proc/self/mountinfo"));
    assert!(!mounts.contains(&needle), "mounts left under {needle}");
    for d in guard_cgroups {
        assert!(!d.exists(), "cgroup {} is still there", d.display());
    }
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmd).contains(&needle),
            "process {:?} is left",
            e.file_name()
        );
    }
}

/// `berth registry serve` on a free port of 127.0.0.1, its storage under `dir`; stopped on drop.
struct RegistryServer {
    child: Child,
    addr: String,
}

impl RegistryServer {
    fn start(dir: &Path, extra: &[&str]) -> RegistryServer {
        let mut child = Command::new(common::bin("berth"))
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.join("storage"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting berth registry serve");
        // "berth registry: serving DIR on 127.0.0.1:PORT"
        let mut line = String::new();
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        std::io::BufRead::read_line(&mut err, &mut line).expect("reading the registry's first line");
        let addr = line.rsplit(' ').next().unwrap_or("").trim().to_string();
        assert!(addr.starts_with("127.0.0.1:"), "berth registry serve said: {line:?}");
        RegistryServer { child, addr }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

#[test]
fn dockerd_pushes_to_and_pulls_from_berths_registry() {
    let k = Dockerd::start();
    import_busybox(&k, "bb:v1");
    let reg = RegistryServer::start(&k.root, &[]);
    let name = format!("{}/team/bb:v1", reg.addr);
    let r = k.docker(&["tag", "bb:v1", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = k.docker(&["push", &name]);
    assert_eq!(r.code, 0, "docker push to berth's registry: {r:?}\n{}", k.logs());
    assert!(r.stdout.contains("v1: digest: sha256:"), "{r:?}");
    // Pushed again: the registry already has the layer.
    let r = k.docker(&["push", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Layer already exists"), "{r:?}");
    let r = k.docker(&["rmi", &name, "bb:v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = k.docker(&["pull", &name]);
    assert_eq!(r.code, 0, "docker pull from berth's registry: {r:?}\n{}", k.logs());
    assert!(r.stdout.contains("Downloaded newer image"), "{r:?}");
    let r = k.docker(&["run", "--rm", "--network", "none", &name, "echo", "pulled"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", k.logs());
    assert_eq!(r.stdout, "pulled\n");
    // A repository that is not there: dockerd reports the registry's 404.
    let r = k.docker(&["pull", &format!("{}/team/nope:v1", reg.addr)]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("not found") || r.stderr.contains("unknown"), "{r:?}");
}

#[test]
fn dockerd_logs_in_to_berths_registry_with_htpasswd() {
    let k = Dockerd::start();
    import_busybox(&k, "bb:v2");
    // `berth registry htpasswd` makes the bcrypt line from the password on stdin.
    let mut h = Command::new(common::bin("berth"))
        .args(["registry", "htpasswd", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("berth registry htpasswd");
    h.stdin.take().expect("stdin").write_all(b"s3cret\n").expect("password");
    let out = h.wait_with_output().expect("htpasswd output");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(line.starts_with("alice:$2"), "{line:?}");
    let htpasswd = k.root.join("htpasswd");
    std::fs::write(&htpasswd, line).expect("writing htpasswd");
    let reg = RegistryServer::start(&k.root, &["--htpasswd", &htpasswd.display().to_string()]);
    let name = format!("{}/alice/bb:v2", reg.addr);
    assert_eq!(k.docker(&["tag", "bb:v2", &name]).code, 0);
    let r = k.docker(&["push", &name]);
    assert_ne!(r.code, 0, "a push without login must be refused: {r:?}");
    assert!(
        r.stderr.contains("no basic auth credentials") || r.stderr.contains("unauthorized"),
        "{r:?}"
    );
    let login = |pass: &str| {
        let mut c = Command::new("docker")
            .args(["login", "-u", "alice", "--password-stdin", &reg.addr])
            .env("DOCKER_HOST", format!("unix://{}", k.sock.display()))
            .env("DOCKER_CONFIG", k.root.join("docker-config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker login");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(pass.as_bytes())
            .expect("password");
        c.wait_with_output().expect("docker login output")
    };
    let bad = login("wrong");
    assert!(!bad.status.success(), "a wrong password must be refused");
    let good = login("s3cret");
    assert!(
        good.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&good.stderr)
    );
    let r = k.docker(&["push", &name]);
    assert_eq!(r.code, 0, "docker push after login: {r:?}\n{}", k.logs());
    assert_eq!(k.docker(&["rmi", &name, "bb:v2"]).code, 0);
    let r = k.docker(&["pull", &name]);
    assert_eq!(r.code, 0, "docker pull after login: {r:?}");
}

/// The berth CLI against a daemon of an older API (dockerd 20.10 speaks 1.41): its first request
/// carries berth's newest version, dockerd refuses it, the CLI negotiates and sends it again; a
/// streamed upload (load) negotiates before it sends.
#[test]
fn berth_cli_drives_an_older_dockerd() {
    let k = Dockerd::start();
    import_busybox(&k, "bb:latest");
    let berth = |args: &[&str], stdin: Option<&Path>| -> Run {
        let mut c = Command::new(bin("berth"));
        c.args(args)
            .env("BERTH_HOST", format!("unix://{}", k.sock.display()))
            .env("BERTH_NO_AUTOSTART", "1")
            .env("DOCKER_CONFIG", k.root.join("docker-config"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_API_VERSION");
        match stdin {
            Some(p) => c.stdin(std::fs::File::open(p).unwrap()),
            None => c.stdin(Stdio::null()),
        };
        c.output().unwrap().into()
    };
    let api = k
        .docker(&["version", "--format", "{{.Server.APIVersion}}"])
        .stdout
        .trim()
        .to_string();
    let r = berth(&["version"], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&format!("{api} (downgraded from")), "{r:?}");
    let r = berth(&["run", "--rm", "bb:latest", "echo", "berth on dockerd"], None);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "berth on dockerd"),
        "{r:?}\n{}",
        k.logs()
    );
    let r = berth(&["ps", "-a", "--format", "{{.Image}}"], None);
    assert_eq!(r.code, 0, "{r:?}");
    let saved = k.root.join("bb-saved.tar");
    let r = k.docker(&["save", "-o", saved.to_str().unwrap(), "bb:latest"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = berth(&["rmi", "bb:latest"], None);
    assert_eq!(r.code, 0, "{r:?}");
    let r = berth(&["load"], Some(&saved));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Loaded image: bb:latest"), "{r:?}");
}
