//! What a process sees inside a berth container: namespaces, Docker's default capabilities, masked
//! paths, seccomp, users, limits, `--init`, read-only filesystems, OOM kills.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;

fn run(d: &Daemon, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    let r = d.docker(&full);
    assert_eq!(r.code, 0, "docker {full:?}: {r:?}\n{}", d.log());
    r.stdout
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// Docker's 14 default capabilities as a CapEff mask.
const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

#[test]
fn namespaces_and_identity() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    // PID 1 is the command itself; the hostname is the short ID; lo and the bridge's eth0 exist
    // (only lo with --network none).
    assert_eq!(run(&d, &["bb", "sh", "-c", "echo $$"]).trim(), "1");
    let out = run(&d, &["--hostname", "box", "bb", "hostname"]);
    assert_eq!(out.trim(), "box");
    let ifaces = run(&d, &["bb", "ls", "/sys/class/net"]);
    assert_eq!(ifaces.split_whitespace().collect::<Vec<_>>(), vec!["eth0", "lo"]);
    let ifaces = run(&d, &["--network", "none", "bb", "ls", "/sys/class/net"]);
    assert_eq!(ifaces.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    let user = run(&d, &["--user", "nobody", "bb", "id"]);
    assert!(user.starts_with("uid=65534(nobody) gid=65534(nogroup)"), "{user}");
    let user = run(&d, &["-u", "1000:50", "bb", "id", "-u"]);
    assert_eq!(user.trim(), "1000");
    let wd = run(&d, &["-w", "/srv/new", "bb", "pwd"]);
    assert_eq!(wd.trim(), "/srv/new");
    let env = run(&d, &["-e", "X=y", "bb", "env"]);
    assert!(
        env.contains("X=y") && env.contains("PATH=") && env.contains("HOSTNAME="),
        "{env}"
    );
    let r = d.docker(&["run", "--rm", "--user", "ghost", "bb", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("unable to find user ghost"), "{r:?}");
}

#[test]
fn capabilities_seccomp_and_masked_paths() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let st = run(&d, &["bb", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&st, "CapEff"), DOCKER_DEFAULT_CAPS, "{st}");
    assert_eq!(status_field(&st, "Seccomp"), "2");
    assert_eq!(status_field(&st, "NoNewPrivs"), "0");
    let st = run(
        &d,
        &[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_RAW",
            "bb",
            "cat",
            "/proc/self/status",
        ],
    );
    assert_eq!(status_field(&st, "CapEff"), "0000000000002000");
    let st = run(
        &d,
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "no-new-privileges",
            "bb",
            "cat",
            "/proc/self/status",
        ],
    );
    assert_eq!(status_field(&st, "Seccomp"), "0");
    assert_eq!(status_field(&st, "NoNewPrivs"), "1");
    let st = run(&d, &["--privileged", "bb", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&st, "Seccomp"), "0");
    // Every capability the engine itself holds (this sandbox lacks a few, e.g. CAP_SYS_RESOURCE).
    let host = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    assert_eq!(status_field(&st, "CapEff"), status_field(&host, "CapBnd"), "{st}");
    // Masked and read-only paths.
    // Docker masks these with /dev/null; check the ones this kernel has.
    for p in ["/proc/kcore", "/proc/timer_list", "/proc/keys", "/proc/sched_debug"] {
        if std::path::Path::new(p).exists() {
            assert_eq!(
                run(&d, &["bb", "sh", "-c", &format!("cat {p} | wc -c")]).trim(),
                "0",
                "{p} is not masked"
            );
        }
    }
    let r = d.docker(&["run", "--rm", "bb", "sh", "-c", "echo 1 > /proc/sys/kernel/domainname"]);
    assert_ne!(r.code, 0, "{r:?}");
    let r = d.docker(&["run", "--rm", "bb", "touch", "/sys/x"]);
    assert_ne!(r.code, 0, "{r:?}");
    // Docker's /dev.
    let dev = run(&d, &["bb", "ls", "/dev"]);
    for n in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd", "stdin",
    ] {
        assert!(dev.split_whitespace().any(|x| x == n), "/dev lacks {n}: {dev}");
    }
}

#[test]
fn read_only_rootfs_and_limits() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&["run", "--rm", "--read-only", "bb", "touch", "/x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert_eq!(
        run(&d, &["--ulimit", "nofile=512:1024", "bb", "sh", "-c", "ulimit -n"]).trim(),
        "512"
    );
    // Limits land in the container's cgroup (checked from the host while it runs).
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--memory",
        "64m",
        "--pids-limit",
        "77",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "bb",
        "sleep",
        "100",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "lim"])
        .stdout
        .trim()
        .to_string();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cg.contains(&id), "container not in its own cgroup: {cg}");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        let read = |ctrl: &str, file: &str| -> String {
            let rel = cg
                .lines()
                .find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|x| x == ctrl)))
                .and_then(|l| l.splitn(3, ':').nth(2))
                .unwrap_or_default()
                .to_string();
            let mount = if ctrl == "cpu" { "cpu,cpuacct" } else { ctrl };
            let p = format!("/sys/fs/cgroup/{mount}{rel}/{file}");
            std::fs::read_to_string(&p)
                .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{rel}/{file}")))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        assert_eq!(read("memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
        assert_eq!(read("pids", "pids.max"), "77");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
    }
    assert_eq!(d.docker(&["rm", "-f", "lim"]).code, 0);
}

#[test]
fn init_and_oom() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let out = run(
        &d,
        &[
            "--init",
            "bb",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
        ],
    );
    let mut lines = out.lines();
    assert!(
        lines.next().unwrap_or_default().starts_with("/sbin/docker-init -- sh"),
        "{out}"
    );
    assert_ne!(lines.next().unwrap_or_default(), "1");
    let r = d.docker(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "bb",
        "sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    assert_eq!(r.code, 137, "{r:?}");
    let st = d.docker(&["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"]);
    assert_eq!(st.stdout.trim(), "true 137", "{st:?}");
}
