//! The API's edge: bad settings refused at create with a 400, every error body Docker's JSON (also
//! for unmatched routes, wrong methods and oversized requests), `/plugins`, the runtime in inspect,
//! and `docker load` of a non-image as dockerd answers it, seen by docker-py.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn message(body: &[u8]) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)));
    v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {v}"))
        .to_string()
}

#[test]
fn bad_settings_are_refused_at_create() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    for (body, want) in [
        (
            r#"{"Image":"bb","HostConfig":{"MemorySwap":-2}}"#,
            "invalid MemorySwap -2",
        ),
        (
            r#"{"Image":"bb","HostConfig":{"PidsLimit":99999999999}}"#,
            "invalid PidsLimit 99999999999",
        ),
        (
            r#"{"Image":"bb","HostConfig":{"Sysctls":{"kernel.panic":"1"}}}"#,
            "sysctl 'kernel.panic' is not allowed",
        ),
        (
            r#"{"Image":"bb","HostConfig":{"Sysctls":{"net.ipv4.no_such_thing":"1"}}}"#,
            "sysctl 'net.ipv4.no_such_thing' is not supported",
        ),
        (
            r#"{"Image":"bb","HostConfig":{"NetworkMode":"host","Sysctls":{"net.ipv4.ip_forward":"1"}}}"#,
            "shares the host's network namespace",
        ),
        (
            r#"{"Image":"bb","HostConfig":{"ShmSize":-1}}"#,
            "SHM size can not be less than 0",
        ),
        (
            &format!(r#"{{"Image":"bb","Hostname":"{}"}}"#, "h".repeat(64)),
            "longer than 63 characters",
        ),
        (
            r#"{"Image":"bb","WorkingDir":"relative/dir"}"#,
            "the working directory 'relative/dir' is invalid, it needs to be an absolute path",
        ),
        (r#"{"Image":"bb","StopSignal":"SIGWHAT"}"#, "Invalid signal: SIGWHAT"),
        (
            r#"{"Image":"bb","Healthcheck":{"Test":["CMD","true"],"Interval":-1}}"#,
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (
            r#"{"Image":"bb","Healthcheck":{"Test":["CMD","true"],"Timeout":10}}"#,
            "Timeout in Healthcheck cannot be less than 1ms",
        ),
        (
            r#"{"Image":"bb","Healthcheck":{"Test":["CMD","true"],"StartPeriod":-3}}"#,
            "StartPeriod in Healthcheck cannot be less than 1ms",
        ),
    ] {
        let (status, resp) = d.api("POST", "/v1.47/containers/create", Some(body.as_bytes()));
        assert_eq!(status, 400, "{body}: {}", String::from_utf8_lossy(&resp));
        let m = message(&resp);
        assert!(m.contains(want), "{body}: {m:?} should contain {want:?}");
    }
    // Nothing was created.
    assert_eq!(d.api_json("/containers/json?all=1"), serde_json::json!([]));
    // The docker CLI shows the daemon's words and exits 125.
    let r = d.docker(&["run", "--rm", "-w", "rel", "bb", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("it needs to be an absolute path"), "{r:?}");
    // Good values still run.
    let r = d.docker(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--stop-signal",
        "SIGUSR1",
        "-w",
        "/tmp",
        "--memory",
        "64m",
        "--memory-swap",
        "-1",
        "bb",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(r.stdout.trim(), "1");
}

/// Sends raw bytes and returns the status and body of the answer.
fn raw(d: &Daemon, request: &[u8]) -> (u16, Vec<u8>) {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = resp.get(end + 4..).unwrap_or_default().to_vec();
    (status, body)
}

#[test]
fn every_error_is_dockers_json() {
    let d = Daemon::start();
    let (status, body) = d.api("GET", "/v1.47/no/such/route", None);
    assert_eq!((status, message(&body)), (404, "page not found".to_string()));
    let (status, body) = d.api("GET", "/nope", None);
    assert_eq!((status, message(&body)), (404, "page not found".to_string()));
    let (status, body) = d.api("PUT", "/v1.47/containers/json", None);
    assert_eq!((status, message(&body)), (405, "method not allowed".to_string()));
    // Oversized body (beyond the 2 MB a JSON request may have).
    let big = format!(r#"{{"Image":"bb","Env":["A={}"]}}"#, "x".repeat(3 << 20));
    let mut req = format!(
        "POST /containers/create HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(big.as_bytes());
    let (status, body) = raw(&d, &req);
    assert_eq!(status, 413);
    assert_eq!(message(&body), "request body too large");
    // Oversized URI.
    let long = format!(
        "GET /containers/json?x={} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        "a".repeat(40_000)
    );
    let (status, body) = raw(&d, long.as_bytes());
    assert_eq!(status, 414);
    assert!(message(&body).contains("request URI too long"));
    // Too many header bytes, and too many headers.
    let one_big = format!(
        "GET /_ping HTTP/1.1\r\nHost: b\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(300 * 1024)
    );
    let (status, body) = raw(&d, one_big.as_bytes());
    assert_eq!(status, 431);
    assert!(message(&body).contains("request header fields too large"));
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (status, body) = raw(
        &d,
        format!("GET /_ping HTTP/1.1\r\nHost: b\r\n{many}Connection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 431);
    assert!(message(&body).contains("request header fields too large"));
    // Malformed JSON and a path error are JSON too.
    let (status, body) = d.api("POST", "/containers/create", Some(b"{not json"));
    assert_eq!(status, 400);
    assert!(message(&body).contains("invalid JSON"));
    let (status, body) = d.api("GET", "/containers/nope/json", None);
    assert_eq!((status, message(&body)), (404, "No such container: nope".to_string()));
    // The real CLI sees the same.
    let r = d.docker(&["plugin", "ls", "--format", "{{.Name}}"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    assert_eq!(d.api_json("/plugins"), serde_json::json!([]));
}

#[test]
fn runtime_in_inspect_is_the_one_asked_for() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    assert_eq!(d.docker(&["create", "--name", "own", "bb", "true"]).code, 0);
    let r = d.docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", "own"]);
    assert_eq!(
        r.stdout.trim(),
        "berth",
        "the default runtime, as /info's DefaultRuntime: {r:?}"
    );
    let info = d.docker(&["info", "--format", "{{.DefaultRuntime}}"]);
    assert_eq!(info.stdout.trim(), "berth");
    if which("runc") {
        let r = d.docker(&["create", "--runtime", "runc", "--name", "viarunc", "bb", "true"]);
        assert_eq!(r.code, 0, "{r:?}");
        let r = d.docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", "viarunc"]);
        assert_eq!(r.stdout.trim(), "runc", "{r:?}");
    } else {
        eprintln!("SKIP runc part: runc is not installed");
    }
    // An empty name means the default.
    let (status, body) = d.api(
        "POST",
        "/containers/create?name=empty",
        Some(br#"{"Image":"bb","Cmd":["true"],"HostConfig":{"Runtime":""}}"#),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(d.api_json("/containers/empty/json")["HostConfig"]["Runtime"], "berth");
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// Runs a docker-py script (Debian's python3-docker) against the daemon.
fn docker_py(d: &Daemon, script: &str) -> common::Run {
    std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .env("DOCKER_HOST", d.host())
        .output()
        .expect("python3")
        .into()
}

#[test]
fn docker_py_sees_a_bad_load_as_image_load_error() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let probe = docker_py(&d, "import docker");
    if probe.code != 0 {
        eprintln!("SKIP: the Docker SDK for Python is missing (apt-get install python3-docker): {probe:?}");
        return;
    }
    let r = docker_py(
        &d,
        r#"
import docker
c = docker.from_env()
try:
    c.images.load(b"this is not an image archive")
    print("loaded?!")
except docker.errors.ImageLoadError as e:
    print("ImageLoadError:", e)
c.containers.create("bb", ["true"], name="pyrunc", runtime="runc")
print(c.api.inspect_container("pyrunc")["HostConfig"]["Runtime"])
print(len(c.images.list()))
"#,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ImageLoadError: ") && lines[0].len() > "ImageLoadError: ".len(),
        "{r:?}"
    );
    assert_eq!(lines[1..], ["runc", "1"], "{r:?}");
    // The docker CLI prints the error and fails.
    let bad = d.root.join("bad.tar");
    std::fs::write(&bad, b"not an archive at all").unwrap();
    let r = d.docker(&["load", "-i", bad.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stderr.trim().is_empty(), "{r:?}");
}
