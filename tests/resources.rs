//! A running container's resources, end to end: pause/unpause through the freezer, stats read by
//! the docker CLI, top, update of the live cgroup, and restart policies (also across a daemon
//! restart). Run as root on the host's cgroup v1 hierarchy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    let r = d.docker(&["inspect", "-f", fmt, name]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.trim().to_string()
}

fn counter(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("n"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A container that counts in `<dir>/n` ten times a second.
fn run_counter(d: &Daemon, name: &str) -> PathBuf {
    let dir = d.root.join(format!("out-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let bind = format!("{}:/out", dir.display());
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "-v",
        &bind,
        "bb",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /out/n; sleep 0.1; done",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert!(
        eventually(Duration::from_secs(10), || counter(&dir) > 0),
        "the counter never started"
    );
    dir
}

fn cgroup_file(controller: &str, id: &str, file: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("berth")
        .join(id)
        .join(file)
}

#[test]
fn pause_freezes_the_processes_and_unpause_thaws_them() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let dir = run_counter(&d, "counter");
    let r = d.docker(&["pause", "counter"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(r.stdout.trim(), "counter");
    assert_eq!(
        inspect(&d, "counter", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"),
        "paused true true"
    );
    let ps = d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.stdout.contains("(Paused)"), "{ps:?}");
    // Frozen: the counter stops moving.
    std::thread::sleep(Duration::from_millis(300));
    let a = counter(&dir);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(counter(&dir), a, "the counter moved while paused");
    // A second pause is a 409 with Docker's words; the berth CLI says the same.
    let again = d.berth(&["pause", "counter"]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("is already paused"), "{again:?}");
    let (status, _) = d.api("POST", "/containers/counter/pause", None);
    assert_eq!(status, 409);
    let r = d.berth(&["unpause", "counter"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        eventually(Duration::from_secs(5), || counter(&dir) > a + 2),
        "the counter did not move after unpause"
    );
    assert_eq!(
        inspect(&d, "counter", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );
    let (status, body) = d.api("POST", "/containers/counter/unpause", None);
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("is not paused"));
    // Events: pause and unpause were published.
    let ev = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "container=counter",
    ]);
    if ev.code == 0 {
        assert!(ev.stdout.contains("pause"), "{ev:?}");
    }
    // A paused container still stops (thawed to take the signal), and rm -f removes a paused one.
    assert_eq!(d.docker(&["pause", "counter"]).code, 0);
    let stop = d.docker(&["stop", "-t", "2", "counter"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    assert_eq!(inspect(&d, "counter", "{{.State.Status}}"), "exited");
    run_counter(&d, "counter2");
    assert_eq!(d.docker(&["pause", "counter2"]).code, 0);
    let rm = d.docker(&["rm", "-f", "counter2"]);
    assert_eq!(rm.code, 0, "{rm:?}");
    let (status, _) = d.api("POST", "/containers/counter/pause", None);
    assert_eq!(status, 409, "pausing a stopped container");
}

#[test]
fn docker_stats_reads_the_stats_json() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "st",
        "--memory",
        "64m",
        "--pids-limit",
        "40",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let s = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}",
        "st",
    ]);
    assert_eq!(s.code, 0, "{s:?}");
    let line = s.stdout.trim();
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f[0], "st", "{line}");
    assert!(f[1].ends_with("/ 64MiB"), "{line}");
    assert_eq!(f[2], "1", "{line}");
    assert!(f[3].ends_with('%'), "{line}");
    // The JSON itself, one object.
    let (status, body) = d.api("GET", "/containers/st/stats?stream=false&one-shot=true", None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["name"], "/st");
    assert_eq!(v["memory_stats"]["limit"], 64 << 20);
    assert_eq!(v["pids_stats"]["limit"], 40);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0, "{v}");
    assert!(v["cpu_stats"]["cpu_usage"]["percpu_usage"].is_array(), "{v}");
    assert!(v["memory_stats"]["stats"]["cache"].is_u64(), "{v}");
    let (status, _) = d.api("GET", "/containers/st/stats?stream=true&one-shot=true", None);
    assert_eq!(status, 400);
    // The berth CLI's table has Docker's columns.
    let b = d.berth(&["stats", "--no-stream", "st"]);
    assert_eq!(b.code, 0, "{b:?}");
    let header = b.stdout.lines().next().unwrap_or("");
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{b:?}");
    }
    assert!(b.stdout.contains("/ 64MiB"), "{b:?}");
    // A streaming request sends an object at a time: read two of them and hang up.
    let mut c = d.docker_cmd(&["stats", "--format", "{{.Name}}", "st"]);
    let mut child = c.stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).matches("st").count() >= 2,
        "{out:?}"
    );
}

#[test]
fn top_lists_the_containers_processes() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&["run", "-d", "--name", "top1", "bb", "sleep", "1234"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["top", "top1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut lines = r.stdout.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{r:?}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "only the container's process: {r:?}");
    assert!(rows[0].contains("sleep 1234"), "{r:?}");
    let b = d.berth(&["top", "top1", "-o", "pid,comm"]);
    assert_eq!(b.code, 0, "{b:?}");
    assert!(b.stdout.lines().next().unwrap().contains("COMMAND"), "{b:?}");
    assert!(b.stdout.contains("sleep"), "{b:?}");
    let v = d.api_json("/containers/top1/top?ps_args=-o%20pid,args");
    assert_eq!(v["Titles"], serde_json::json!(["PID", "COMMAND"]));
    assert_eq!(v["Processes"][0][1], "sleep 1234");
    assert_eq!(d.docker(&["stop", "-t", "0", "top1"]).code, 0);
    let (status, body) = d.api("GET", "/containers/top1/top", None);
    assert_eq!(status, 409);
    assert!(String::from_utf8_lossy(&body).contains("is not running"));
}

#[test]
fn update_changes_the_live_cgroup_and_refuses_impossible_limits() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    assert_eq!(
        d.docker(&["run", "-d", "--name", "upd", "--memory", "64m", "bb", "sleep", "1000"])
            .code,
        0
    );
    let id = inspect(&d, "upd", "{{.Id}}");
    let mem = cgroup_file("memory", &id, "memory.limit_in_bytes");
    assert_eq!(common::read(&mem).trim(), (64u64 << 20).to_string());
    let r = d.docker(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "30",
        "--cpus",
        "0.5",
        "upd",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(common::read(&mem).trim(), (128u64 << 20).to_string());
    assert_eq!(common::read(&cgroup_file("pids", &id, "pids.max")).trim(), "30");
    assert_eq!(
        common::read(&cgroup_file("cpu", &id, "cpu.cfs_quota_us")).trim(),
        "50000"
    );
    assert_eq!(
        inspect(
            &d,
            "upd",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}"
        ),
        format!("{} 30 500000000", 128u64 << 20)
    );
    // Impossible limits: 400 with Docker's words, nothing changed.
    let bad = d.docker(&["update", "--memory", "1m", "upd"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("Minimum memory limit allowed is 6MB"), "{bad:?}");
    let (status, _) = d.api(
        "POST",
        "/containers/upd/update",
        Some(br#"{"NanoCpus": 1000000000000}"#),
    );
    assert_eq!(status, 400);
    let (status, _) = d.api("POST", "/containers/upd/update", Some(br#"{"CpuPeriod": 10}"#));
    assert_eq!(status, 400);
    assert_eq!(common::read(&mem).trim(), (128u64 << 20).to_string());
    assert_eq!(inspect(&d, "upd", "{{.HostConfig.Memory}}"), (128u64 << 20).to_string());
    // The restart policy too, and the berth CLI.
    let r = d.berth(&["update", "--restart", "on-failure:3", "upd"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        inspect(
            &d,
            "upd",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
    // Kept across a restart of the container.
    let r = d.docker(&["restart", "-t", "0", "upd"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(common::read(&mem).trim(), (128u64 << 20).to_string());
}

#[test]
fn on_failure_restarts_as_often_as_asked() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "fail",
        "--restart",
        "on-failure:2",
        "bb",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let done = eventually(Duration::from_secs(20), || {
        inspect(&d, "fail", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    assert!(
        done,
        "{}\n{}",
        inspect(&d, "fail", "{{.RestartCount}} {{.State.Status}}"),
        d.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        inspect(&d, "fail", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"),
        "2 exited 3"
    );
    // `always` keeps going, through `restarting`, with a growing delay; a stop ends it.
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "alw",
        "--restart",
        "always",
        "bb",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(eventually(Duration::from_secs(20), || {
        inspect(&d, "alw", "{{.RestartCount}}").parse::<i64>().unwrap_or(0) >= 3
    }));
    let stop = d.docker(&["stop", "alw"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    assert!(eventually(Duration::from_secs(5), || inspect(
        &d,
        "alw",
        "{{.State.Status}}"
    ) == "exited"));
    let n = inspect(&d, "alw", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        inspect(&d, "alw", "{{.RestartCount}} {{.State.Status}}"),
        format!("{n} exited")
    );
}

#[test]
fn restart_policies_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    d.load_busybox("bb:latest");
    for (name, policy) in [
        ("al", "always"),
        ("us", "unless-stopped"),
        ("us2", "unless-stopped"),
        ("no", "no"),
    ] {
        let r = d.docker(&["run", "-d", "--name", name, "--restart", policy, "bb", "sleep", "1000"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    // Stopped by the user: `always` starts again with the daemon, `unless-stopped` does not.
    assert_eq!(d.docker(&["stop", "-t", "0", "al", "us", "no"]).code, 0);
    // `us2`'s process dies while the daemon is away: its policy restarts it.
    let pid: i32 = inspect(&d, "us2", "{{.State.Pid}}").parse().unwrap();
    d.kill9();
    unsafe_kill(pid);
    d.restart();
    assert!(
        eventually(Duration::from_secs(20), || inspect(&d, "al", "{{.State.Status}}")
            == "running"),
        "{}",
        d.log()
    );
    assert!(
        eventually(Duration::from_secs(20), || inspect(&d, "us2", "{{.State.Status}}")
            == "running"),
        "{}",
        d.log()
    );
    assert_ne!(inspect(&d, "us2", "{{.State.Pid}}"), pid.to_string());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(inspect(&d, "us", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&d, "no", "{{.State.Status}}"), "exited");
}

/// SIGKILL to a process (the container's init, while its daemon is down).
fn unsafe_kill(pid: i32) {
    let r = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(r.success());
}

#[test]
fn stop_signal_and_timeout_are_honoured() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    // The process ignores SIGTERM but exits on SIGUSR1 (its stop signal).
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "30",
        "bb",
        "sh",
        "-c",
        "trap '' TERM; trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let t = std::time::Instant::now();
    assert_eq!(d.docker(&["stop", "sig"]).code, 0);
    assert!(t.elapsed() < Duration::from_secs(20), "stop waited for the timeout");
    assert_eq!(inspect(&d, "sig", "{{.State.ExitCode}}"), "7");
}

#[test]
fn docker_py_sees_stats_top_pause_update_and_past_output() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let script = r#"
import sys, time, docker
from docker.types import LogConfig
c = docker.DockerClient(base_url=sys.argv[1])
ct = c.containers.run("bb", ["sh", "-c", "echo hello; sleep 1000"], detach=True, name="py", mem_limit="64m")
for _ in range(100):
    if b"hello" in ct.logs():
        break
    time.sleep(0.05)
s = ct.stats(stream=False)
assert s["memory_stats"]["limit"] == 64 << 20, s
assert s["name"] == "/py", s
assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0, s
t = ct.top()
assert "PID" in t["Titles"] and any("sleep 1000" in " ".join(p) for p in t["Processes"]), t
ct.pause(); ct.reload(); assert ct.status == "paused", ct.status
ct.unpause(); ct.reload(); assert ct.status == "running", ct.status
ct.update(mem_limit="128m", memswap_limit="256m")
ct.reload(); assert ct.attrs["HostConfig"]["Memory"] == 128 << 20, ct.attrs["HostConfig"]
out = ct.attach(stdout=True, stderr=True, logs=True, stream=False)
assert out == b"hello\n", out
q = c.containers.run("bb", ["true"], detach=True, log_config=LogConfig(type="none"))
try:
    q.logs()
    raise SystemExit("logs of a none-driver container should fail")
except docker.errors.APIError as e:
    assert e.status_code == 501 and "does not support reading" in str(e), e
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(d.host())
        .output()
        .unwrap();
    let r = common::Run::from(out);
    if r.stderr.contains("No module named 'docker'") {
        eprintln!("SKIP: the Docker SDK for Python is missing (apt-get install python3-docker)");
        return;
    }
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(r.stdout.trim(), "ok", "{r:?}");
}

#[test]
fn a_paused_container_stays_paused_across_a_daemon_restart() {
    let mut d = Daemon::start();
    d.load_busybox("bb:latest");
    let dir = run_counter(&d, "frozen");
    assert_eq!(d.docker(&["pause", "frozen"]).code, 0);
    d.restart();
    assert_eq!(
        inspect(&d, "frozen", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let a = counter(&dir);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(&dir), a, "the counter moved while paused");
    let r = d.docker(&["unpause", "frozen"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert!(eventually(Duration::from_secs(5), || counter(&dir) > a + 2));
    let r = d.docker(&["rm", "-f", "frozen"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn port_lists_what_is_published_as_docker_does() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&["run", "-d", "--name", "np", "bb", "sleep", "300"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Nothing is published (port publishing comes with bridge networking): berth and docker agree.
    for out in [d.berth(&["port", "np"]), d.docker(&["port", "np"])] {
        assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    }
    let b = d.berth(&["port", "np", "80"]);
    let k = d.docker(&["port", "np", "80"]);
    assert_eq!(b.code, 1, "{b:?}");
    assert!(b.stderr.contains("No public port '80' published for np"), "{b:?}");
    assert!(k.stderr.contains("No public port '80' published for np"), "{k:?}");
}
