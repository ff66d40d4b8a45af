//! A running container survives `kill -9` of berthd; the restarted daemon re-adopts it and reports
//! the real exit codes of containers that ended meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::time::Duration;

#[test]
fn containers_survive_a_daemon_crash_and_are_readopted() {
    let mut d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "long",
        "bb",
        "sh",
        "-c",
        "echo before; trap 'exit 0' TERM; while true; do sleep 0.2; done",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let r = d.docker(&["run", "-d", "--name", "short", "bb", "sh", "-c", "sleep 2; exit 5"]);
    assert_eq!(r.code, 0, "{r:?}");
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "long"])
        .stdout
        .trim()
        .parse::<i32>()
        .unwrap_or(0);
    assert!(pid > 0);
    let short_pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "short"])
        .stdout
        .trim()
        .to_string();

    d.kill9();
    // The container's process is still alive without the daemon.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Let `short` end while no daemon runs.
    assert!(eventually(Duration::from_secs(20), || !std::path::Path::new(&format!(
        "/proc/{short_pid}"
    ))
    .exists()));
    d.restart();

    let st = d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "long"]);
    assert_eq!(st.stdout.trim(), format!("running {pid}"), "{st:?}\n{}", d.log());
    let short = || {
        d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "short"])
            .stdout
    };
    assert!(
        eventually(Duration::from_secs(10), || short().trim() == "exited 5"),
        "{}",
        short()
    );
    let ps = d.docker(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(ps.stdout.trim(), "long", "{ps:?}");
    assert!(d.docker(&["logs", "long"]).stdout.contains("before"));
    // wait and stop work on the re-adopted container.
    let waiter = d
        .docker_cmd(&["wait", "long"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker wait");
    let stop = d.docker(&["stop", "long"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    let out = waiter.wait_with_output().expect("docker wait output");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    assert!(eventually(Duration::from_secs(5), || !std::path::Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
}
