//! `exec` end to end, as root: `berth exec`, the real docker CLI and docker-py against one berthd —
//! output, exit codes (0, 3, 126 not executable, 127 not found), `-u`, `-w`, `-e`, `--env-file`,
//! `--privileged`, `-i`, `-d` then `GET /exec/{id}/json`, `-it` through a real terminal, the 409 of
//! a stopped container, and exec into a container re-adopted after `kill -9` of berthd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Daemon, Run};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A daemon with busybox loaded and one running container `box1` (its ID returned).
fn running() -> (Daemon, String) {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&["run", "-d", "--name", "box1", "bb", "sleep", "1000"]);
    assert_eq!(r.code, 0, "{r:?}");
    (d, r.stdout.trim().to_string())
}

fn exec_json(d: &Daemon, id: &str) -> serde_json::Value {
    d.api_json(&format!("/v1.47/exec/{id}/json"))
}

/// The effective capability mask of a process in the container, from `/proc/self/status`.
fn cap_eff(r: &Run) -> u64 {
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff in {r:?}"));
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).expect("hex mask")
}

#[test]
fn berth_exec_output_exit_codes_and_flags() {
    let (d, _) = running();
    let r = d.berth(&["exec", "box1", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "out\n", "err\n"),
        "{r:?}"
    );
    assert_eq!(d.berth(&["exec", "box1", "sh", "-c", "exit 3"]).code, 3);
    let r = d.berth(&["exec", "box1", "/etc/passwd"]);
    assert_eq!(r.code, 126, "not executable: {r:?}");
    assert!(r.stdout.contains("permission denied"), "{r:?}");
    let r = d.berth(&["exec", "box1", "no-such-command"]);
    assert_eq!(r.code, 127, "not found: {r:?}");
    assert!(r.stdout.contains("executable file not found"), "{r:?}");

    let r = d.berth(&[
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "GREETING=hello",
        "box1",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $GREETING",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "65534\n65534\n/tmp\nhello\n"), "{r:?}");
    let r = d.berth(&["exec", "-u", "1234:5678", "box1", "sh", "-c", "id -u; id -g"]);
    assert_eq!(r.stdout, "1234\n5678\n", "{r:?}");
    let r = d.berth(&["exec", "-u", "no-such-user", "box1", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("unable to find user no-such-user"), "{r:?}");

    let env_file = d.root.join("exec.env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\n").unwrap();
    let r = d.berth(&[
        "exec",
        "--env-file",
        env_file.to_str().unwrap(),
        "box1",
        "sh",
        "-c",
        "echo $FROM_FILE",
    ]);
    assert_eq!(r.stdout, "yes\n", "{r:?}");

    // The container's capabilities by default; every capability with --privileged.
    let plain = cap_eff(&d.berth(&["exec", "box1", "cat", "/proc/self/status"]));
    let privileged = cap_eff(&d.berth(&["exec", "--privileged", "box1", "cat", "/proc/self/status"]));
    assert_ne!(plain, privileged);
    assert_eq!(plain & privileged, plain, "privileged has the default set and more");
    assert!(privileged.count_ones() > 30, "{privileged:x}");
    // The exec runs in the container's pid namespace.
    let r = d.berth(&["exec", "box1", "cat", "/proc/1/cmdline"]);
    assert_eq!(r.stdout, "sleep\u{0}1000\u{0}", "{r:?}");

    // stdin with -i; without it the process reads nothing.
    let mut child = d
        .berth_cmd(&["exec", "-i", "box1", "sh", "-c", "tr a-z A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"piped input\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED INPUT\n");
}

#[test]
fn docker_cli_exec() {
    let (d, _) = running();
    let r = d.docker(&["exec", "box1", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "out\n", "err\n"),
        "{r:?}"
    );
    assert_eq!(d.docker(&["exec", "box1", "sh", "-c", "exit 3"]).code, 3);
    assert_eq!(d.docker(&["exec", "box1", "/etc/passwd"]).code, 126);
    assert_eq!(d.docker(&["exec", "box1", "no-such-command"]).code, 127);
    let r = d.docker(&[
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "A=1",
        "box1",
        "sh",
        "-c",
        "id -u; pwd; echo $A",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "65534\n/tmp\n1\n"), "{r:?}");
    let mut child = d
        .docker_cmd(&["exec", "-i", "box1", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"through docker\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through docker\n");
}

#[test]
fn detached_exec_is_inspected_through_the_api() {
    let (d, cid) = running();
    let r = d.berth(&["exec", "-d", "box1", "sh", "-c", "sleep 1; exit 7"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    let ids = d.api_json("/v1.47/containers/box1/json")["ExecIDs"].clone();
    let ids = ids.as_array().unwrap_or_else(|| panic!("ExecIDs: {ids}"));
    assert_eq!(ids.len(), 1);
    let id = ids[0].as_str().unwrap().to_string();
    let e = exec_json(&d, &id);
    assert_eq!(e["Running"], true, "{e}");
    assert!(e.as_object().unwrap()["ExitCode"].is_null(), "{e}");
    assert!(e["Pid"].as_i64().unwrap() > 0, "{e}");
    assert_eq!(e["ContainerID"], cid.as_str());
    assert_eq!(e["ProcessConfig"]["entrypoint"], "sh");
    assert_eq!(
        e["ProcessConfig"]["arguments"],
        serde_json::json!(["-c", "sleep 1; exit 7"])
    );
    assert!(common::eventually(Duration::from_secs(10), || exec_json(&d, &id)
        ["Running"]
        == false));
    let e = exec_json(&d, &id);
    assert_eq!(e["ExitCode"], 7, "{e}");
    assert!(d.api_json("/v1.47/containers/box1/json")["ExecIDs"].is_null());

    // A second start is a conflict; unknown execs are 404.
    let (status, body) = d.api("POST", &format!("/v1.47/exec/{id}/start"), Some(br#"{"Detach":true}"#));
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("has already run"));
    let (status, body) = d.api("GET", "/v1.47/exec/nope/json", None);
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (404, r#"{"message":"No such exec instance: nope"}"#)
    );
    let (status, _) = d.api("POST", "/v1.47/containers/box1/exec", Some(br#"{"Cmd":[]}"#));
    assert_eq!(status, 400);
    let (status, _) = d.api("POST", "/v1.47/exec/nope/resize?h=10&w=10", None);
    assert_eq!(status, 404);

    // A resize before the start sizes the terminal the process starts with; one after resizes it.
    let (status, body) = d.api(
        "POST",
        "/v1.47/containers/box1/exec",
        Some(br#"{"Cmd":["sh","-c","stty size > /tmp/before; sleep 2; stty size > /tmp/after"],"Tty":true}"#),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = d.api("POST", &format!("/v1.47/exec/{id}/resize?h=20&w=70"), None);
    assert_eq!(status, 200);
    let (status, _) = d.api(
        "POST",
        &format!("/v1.47/exec/{id}/start"),
        Some(br#"{"Detach":true,"Tty":true}"#),
    );
    assert_eq!(status, 200);
    assert!(common::eventually(Duration::from_secs(10), || d
        .berth(&["exec", "box1", "test", "-s", "/tmp/before"])
        .code
        == 0));
    let (status, _) = d.api("POST", &format!("/v1.47/exec/{id}/resize?h=40&w=120"), None);
    assert_eq!(status, 200);
    assert!(common::eventually(Duration::from_secs(10), || exec_json(&d, &id)
        ["Running"]
        == false));
    let r = d.berth(&["exec", "box1", "cat", "/tmp/before", "/tmp/after"]);
    assert_eq!(
        r.stdout,
        "20 70
40 120
",
        "{r:?}"
    );
}

#[test]
fn exec_into_a_stopped_container_is_a_conflict() {
    let (d, cid) = running();
    assert_eq!(d.berth(&["stop", "-t", "0", "box1"]).code, 0);
    let want = format!("Error response from daemon: Container {cid} is not running");
    let r = d.docker(&["exec", "box1", "true"]);
    assert_eq!((r.code, r.stderr.trim()), (1, want.as_str()), "{r:?}");
    let r = d.berth(&["exec", "box1", "true"]);
    assert_eq!((r.code, r.stderr.trim()), (1, want.as_str()), "{r:?}");
    let (status, body) = d.api("POST", "/v1.47/containers/box1/exec", Some(br#"{"Cmd":["true"]}"#));
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    let (status, _) = d.api("POST", "/v1.47/containers/nope/exec", Some(br#"{"Cmd":["true"]}"#));
    assert_eq!(status, 404);
}

#[test]
fn exec_after_the_daemon_was_killed_and_restarted() {
    let (mut d, _) = running();
    assert_eq!(d.berth(&["exec", "box1", "true"]).code, 0);
    d.restart();
    let r = d.berth(&["exec", "box1", "sh", "-c", "echo still here; exit 4"]);
    assert_eq!((r.code, r.stdout.as_str()), (4, "still here\n"), "{r:?}");
    let r = d.docker(&["exec", "box1", "cat", "/proc/1/cmdline"]);
    assert_eq!(r.stdout, "sleep\u{0}1000\u{0}", "{r:?}");
}

/// Runs `cmd` inside `script` on a 30x100 terminal; returns (exit code, raw output). `script`'s
/// stdin stays open until it exits (see tests/tty.rs for why).
fn in_terminal(d: &Daemon, cmd: &str) -> (i32, String) {
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &format!("stty rows 30 cols 100; {cmd}"), "/dev/null"])
        .env("BERTH_HOST", d.host())
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env("DOCKER_CLI_HINTS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running script (util-linux)");
    let stdin = child.stdin.take();
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn exec_it_gets_a_sized_pty() {
    let (d, _) = running();
    let berth = common::bin("berth");
    for client in [berth.to_str().unwrap(), "docker"] {
        let (code, out) = in_terminal(
            &d,
            &format!("{client} exec -it box1 sh -c 'tty; stty size; echo $TERM; exit 5'"),
        );
        assert_eq!(code, 5, "{client}: {out:?}");
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert!(lines[0].starts_with("/dev/pts/"), "{client}: {out:?}");
        assert_eq!(&lines[1..], ["30 100", "xterm", ""], "{client}: {out:?}");
    }
}

#[test]
fn docker_py_exec_run() {
    let (d, _) = running();
    let script = r#"
import docker, json, sys
c = docker.DockerClient(base_url=sys.argv[1]).containers.get("box1")
code, out = c.exec_run(["sh", "-c", "echo hi; exit 3"])
r = {"plain": [code, out.decode()]}
code, out = c.exec_run("sh -c 'id -u; pwd; echo $X'", user="nobody", workdir="/tmp", environment={"X": "y"})
r["flags"] = [code, out.decode()]
code, (o, e) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
r["demux"] = [code, o.decode(), e.decode()]
code, out = c.exec_run("no-such-command")
r["missing"] = [code]
code, out = c.exec_run(["tty"], tty=True)
r["tty"] = [code, out.decode()]
print(json.dumps(r))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &d.host()])
        .output()
        .expect("python3 (scripts/deps.sh installs python3-docker)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(r["plain"], serde_json::json!([3, "hi\n"]));
    assert_eq!(r["flags"], serde_json::json!([0, "65534\n/tmp\ny\n"]));
    assert_eq!(r["demux"], serde_json::json!([0, "o\n", "e\n"]));
    assert_eq!(r["missing"][0], 127);
    assert_eq!(r["tty"][0], 0);
    assert!(r["tty"][1].as_str().unwrap().starts_with("/dev/pts/"), "{r}");
}

#[test]
fn exec_in_a_container_run_by_runc() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "byrunc",
        "--runtime",
        "runc",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "runc is installed by scripts/deps.sh: {r:?}");
    let r = d.berth(&[
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "byrunc",
        "sh",
        "-c",
        "id -u; pwd; exit 3",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "65534\n/tmp\n"), "{r:?}");
    assert_eq!(d.docker(&["exec", "byrunc", "no-such-command"]).code, 127);
}

#[test]
fn detach_keys_leave_an_exec_running() {
    let (d, _) = running();
    let berth = common::bin("berth");
    let mut child = Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!(
                "{} exec -it --detach-keys ctrl-a,x box1 sh -c 'sleep 30'",
                berth.display()
            ),
            "/dev/null",
        ])
        .env("BERTH_HOST", d.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the exec runs, then type the detach sequence.
    let id = || {
        d.api_json("/v1.47/containers/box1/json")["ExecIDs"][0]
            .as_str()
            .map(str::to_string)
    };
    assert!(common::eventually(Duration::from_secs(10), || id()
        .is_some_and(|id| exec_json(&d, &id)["Pid"].as_i64() > Some(0))));
    std::thread::sleep(Duration::from_millis(300));
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(&[0x01, b'x']).unwrap();
    stdin.flush().unwrap();
    let start = std::time::Instant::now();
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "detached, not waited for the process"
    );
    let e = exec_json(&d, &id().unwrap());
    assert_eq!(e["Running"], true, "the exec keeps running: {e}");
}
