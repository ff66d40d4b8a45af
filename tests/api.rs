//! The Engine API as clients see it on the wire: status codes, error bodies, version prefixes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;
use serde_json::Value;

fn msg(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn ping_version_prefixes_and_negotiation() {
    let d = Daemon::start();
    let (s, b) = d.api("GET", "/_ping", None);
    assert_eq!((s, b.as_slice()), (200, &b"OK"[..]));
    assert_eq!(d.api("HEAD", "/_ping", None).0, 200);
    for prefix in ["", "/v1.41", "/v1.44", "/v1.47"] {
        let v = d.api_json(&format!("{prefix}/version"));
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.24");
    }
    let (s, b) = d.api("GET", "/v1.99/version", None);
    assert_eq!(s, 400);
    assert!(msg(&b).contains("too new"), "{}", msg(&b));
    let info = d.api_json("/v1.41/info");
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["OSType"], "linux");
}

#[test]
fn errors_use_dockers_shape_and_codes() {
    let d = Daemon::start();
    let (s, b) = d.api("GET", "/containers/nope/json", None);
    assert_eq!(s, 404);
    assert_eq!(msg(&b), "No such container: nope");
    let (s, b) = d.api("GET", "/images/nope:1/json", None);
    assert_eq!(s, 404);
    assert!(msg(&b).contains("No such image"), "{}", msg(&b));
    for bad in [
        &b"{"[..],
        b"[1,2]",
        b"{\"Image\": 5}",
        b"\xff\xfe",
        b"{\"HostConfig\": {\"Memory\": \"lots\"}}",
    ] {
        let (s, b) = d.api("POST", "/containers/create", Some(bad));
        assert_eq!(
            s,
            400,
            "body {:?}: {}",
            String::from_utf8_lossy(bad),
            String::from_utf8_lossy(&b)
        );
        assert!(!msg(&b).is_empty());
    }
    let (s, b) = d.api("POST", "/containers/create", Some(br#"{"Image":"missing:tag"}"#));
    assert_eq!(s, 404);
    assert!(msg(&b).contains("No such image: missing:tag"), "{}", msg(&b));
    let (s, _) = d.api("GET", "/containers/json?filters=notjson", None);
    assert_eq!(s, 400);
    let (s, _) = d.api("POST", "/containers/x/wait?condition=whenever", None);
    assert!(s == 400 || s == 404);
}

#[test]
fn create_start_wait_logs_over_the_api() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let (s, b) = d.api(
        "POST",
        "/v1.41/containers/create?name=api1",
        Some(br#"{"Image":"bb","Cmd":["sh","-c","echo one; echo two >&2; exit 7"],"Env":["A=1"]}"#),
    );
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
    let id = serde_json::from_slice::<Value>(&b).unwrap_or_default()["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(id.len(), 64);
    let c = d.api_json("/containers/api1/json");
    assert_eq!(c["State"]["Status"], "created");
    assert_eq!(c["Path"], "sh");
    assert!(c["Config"]["Env"]
        .as_array()
        .is_some_and(|e| e.iter().any(|v| v == "A=1")));
    assert_eq!(d.api("POST", "/containers/api1/start", None).0, 204, "{}", d.log());
    let (s, b) = d.api("POST", "/containers/api1/wait", None);
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap_or_default()["StatusCode"], 7);
    // Starting a finished container again works; a running one is 304.
    let (s, b) = d.api("GET", "/containers/api1/logs?stdout=1&stderr=1", None);
    assert_eq!(s, 200);
    // Multiplexed frames: [stream,0,0,0,len] + data.
    let mut frames = Vec::new();
    let mut i = 0;
    while i + 8 <= b.len() {
        let len = u32::from_be_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        frames.push((b[i], String::from_utf8_lossy(&b[i + 8..i + 8 + len]).into_owned()));
        i += 8 + len;
    }
    assert!(frames.contains(&(1, "one\n".to_string())), "{frames:?}");
    assert!(frames.contains(&(2, "two\n".to_string())), "{frames:?}");
    let (s, b) = d.api("GET", "/containers/api1/logs?stderr=1", None);
    assert_eq!(s, 200);
    assert!(!String::from_utf8_lossy(&b).contains("one"));
    // Short ID prefix works wherever an ID does.
    assert_eq!(d.api_json(&format!("/containers/{}/json", &id[..6]))["Id"], id.as_str());
    // Rename, then the old name is gone.
    assert_eq!(d.api("POST", "/containers/api1/rename?name=api2", None).0, 204);
    assert_eq!(d.api("GET", "/containers/api1/json", None).0, 404);
    assert_eq!(d.api("DELETE", "/containers/api2", None).0, 204);
}

#[test]
fn start_twice_is_304_and_kill_of_stopped_is_409() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let (s, _) = d.api(
        "POST",
        "/containers/create?name=s1",
        Some(br#"{"Image":"bb","Cmd":["sleep","100"]}"#),
    );
    assert_eq!(s, 201);
    assert_eq!(d.api("POST", "/containers/s1/start", None).0, 204, "{}", d.log());
    assert_eq!(d.api("POST", "/containers/s1/start", None).0, 304);
    assert_eq!(d.api("POST", "/containers/s1/kill?signal=SIGKILL", None).0, 204);
    let (s, b) = d.api("POST", "/containers/s1/wait?condition=not-running", None);
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap_or_default()["StatusCode"],
        137
    );
    assert_eq!(d.api("POST", "/containers/s1/kill", None).0, 409);
    assert_eq!(d.api("POST", "/containers/s1/stop", None).0, 304);
    assert_eq!(d.api("POST", "/containers/s1/restart?t=1", None).0, 204);
    assert_eq!(d.api_json("/containers/s1/json")["State"]["Running"], true);
}

/// `--log-format json`: every line of the daemon's log is a JSON object with its time, level and
/// message; `text` (the default) stays readable text.
#[test]
fn the_daemon_logs_json_when_asked() {
    let d = Daemon::start_with(&["--log-format", "json"]);
    let (status, _) = d.api("GET", "/_ping", None);
    assert_eq!(status, 200);
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the daemon logged nothing");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string() || v["fields"].is_object(), "{line}");
    }
    let text = Daemon::start();
    let (status, _) = text.api("GET", "/_ping", None);
    assert_eq!(status, 200);
    assert!(
        text.log()
            .lines()
            .any(|l| serde_json::from_str::<serde_json::Value>(l).is_err()),
        "{}",
        text.log()
    );
}
