//! `GET /events` seen by the real docker CLI and the berth CLI: the live stream, `since` replay,
//! `until` ending the stream, and filters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Now as `seconds.nanoseconds`, the form the docker CLI sends.
fn now_precise() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

const FMT: &str = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";

/// Kills and reaps a child on every exit path.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn docker_events_sees_a_run_rm_live() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let mut child = Reap(
        d.docker_cmd(&["events", "--format", FMT, "--filter", "type=container"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Subscribed once /info counts the listener.
    assert!(eventually(Duration::from_secs(10), || {
        d.api_json("/info")["NEventsListener"].as_i64().unwrap_or(0) >= 1
    }));
    let r = d.docker(&["run", "--rm", "--name", "ev", "bb", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.contains("destroy")) && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    for want in [
        "container create ev",
        "container start ev",
        "container die ev",
        "container destroy ev",
    ] {
        assert!(seen.iter().any(|l| l == want), "{want:?} not in {seen:?}");
    }
    let pos = |w: &str| seen.iter().position(|l| l.contains(w)).unwrap();
    assert!(pos("create") < pos("start") && pos("start") < pos("die") && pos("die") < pos("destroy"));
}

#[test]
fn docker_events_since_replays_and_until_ends_the_stream() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let t0 = now_precise();
    assert_eq!(
        d.docker(&["run", "--rm", "--name", "one", "--label", "tier=front", "bb", "true"])
            .code,
        0
    );
    assert_eq!(
        d.docker(&["run", "--rm", "--name", "two", "bb", "sh", "-c", "exit 3"])
            .code,
        3
    );
    assert_eq!(d.docker(&["tag", "bb", "bb:v2"]).code, 0);
    let until = (now_secs() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let replay = |filters: &[&str]| {
        let mut args = vec!["events", "--since", &t0, "--until", &until, "--format", FMT];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let started = Instant::now();
        let r = d.docker(&args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "an until in the past ends the stream"
        );
        r.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let all = replay(&[]);
    for want in [
        "container create one",
        "container destroy one",
        "container die two",
        "image tag bb:v2",
    ] {
        assert!(all.iter().any(|l| l == want), "{want:?} not in {all:?}");
    }
    assert_eq!(replay(&["container=two", "event=die"]), ["container die two"]);
    assert_eq!(replay(&["type=image"]), ["image tag bb:v2"]);
    assert_eq!(replay(&["label=tier=front", "event=start"]), ["container start one"]);
    assert!(
        replay(&["image=bb", "event=create"]).len() == 2,
        "{:?}",
        replay(&["image=bb"])
    );
    assert!(replay(&["container=nomatch"]).is_empty());
    // The exit code is in the die event.
    let r = d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--filter",
        "container=two",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(r.stdout.trim(), "3", "{r:?}");
}

#[test]
fn events_on_the_wire_and_bad_filters() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let t0 = now_secs() - 1;
    let r = d.docker(&["create", "--name", "wire", "bb", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (status, body) = d.api(
        "GET",
        &format!("/v1.47/events?since={t0}&until={}", now_secs() + 1),
        None,
    );
    assert_eq!(status, 200);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let create = lines.iter().find(|e| e["Action"] == "create").unwrap();
    // dockerd's shape, legacy fields included.
    assert_eq!(create["status"], "create");
    assert_eq!(create["id"], create["Actor"]["ID"]);
    assert_eq!(create["from"], "bb");
    assert_eq!(create["Type"], "container");
    assert_eq!(create["scope"], "local");
    assert_eq!(create["Actor"]["Attributes"]["name"], "wire");
    assert!(create["timeNano"].as_i64().unwrap() > 0);
    // RFC 3339 and fractional seconds work too.
    let (status, body) = d.api("GET", "/events?since=1.5&until=2000-01-01T00:00:00Z", None);
    assert_eq!((status, body.len()), (200, 0), "{}", String::from_utf8_lossy(&body));
    // Unknown filters and bad times are a 400 with Docker's body.
    let (status, body) = d.api("GET", "/events?filters=%7B%22contianer%22%3A%5B%22wire%22%5D%7D", None);
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["message"], "invalid filter 'contianer'");
    let (status, _) = d.api("GET", "/events?since=yesterday", None);
    assert_eq!(status, 400);
    let (status, body) = d.api("GET", "/events?since=20&until=10", None);
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["message"], "`since` time (20) cannot be after `until` time (10)");
    let r = d.docker(&["events", "--filter", "lable=x", "--until", "1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid filter 'lable'"), "{r:?}");
}

#[test]
fn docker_events_until_in_the_future_ends_then() {
    let d = Daemon::start();
    let started = Instant::now();
    let until = (now_secs() + 2).to_string();
    let r = d.docker(&["events", "--until", &until]);
    assert_eq!(r.code, 0, "{r:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[test]
fn berth_events_replays_with_filters_and_format() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let t0 = (now_secs() - 1).to_string();
    assert_eq!(d.berth(&["run", "--rm", "--name", "b1", "bb", "true"]).code, 0);
    let until = (now_secs() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    for cmd in [&["events"][..], &["system", "events"][..]] {
        let mut args = cmd.to_vec();
        args.extend([
            "--since",
            &t0,
            "--until",
            &until,
            "--filter",
            "event=die",
            "--format",
            FMT,
        ]);
        let r = d.berth(&args);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(r.stdout, "container die b1\n", "{r:?}");
    }
    // The default format is docker's: time, type, action, ID, (attributes).
    let r = d.berth(&["events", "--since", &t0, "--until", &until, "--filter", "event=start"]);
    assert_eq!(r.code, 0, "{r:?}");
    let line = r.stdout.lines().next().unwrap_or_default().to_string();
    let parts: Vec<&str> = line.splitn(5, ' ').collect();
    assert_eq!(parts.len(), 5, "{line}");
    assert!(
        parts[0].contains('T') && parts[0].ends_with('Z') || parts[0].contains('+'),
        "{line}"
    );
    assert_eq!(
        (parts[1], parts[2], parts[3].len()),
        ("container", "start", 64),
        "{line}"
    );
    assert!(parts[4].contains("name=b1") && parts[4].contains("image=bb"), "{line}");
    let r = d.berth(&["events", "--filter", "bogus=1", "--until", "1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid filter 'bogus'"), "{r:?}");
}

#[test]
fn image_events_carry_the_image_labels() {
    let d = Daemon::start();
    let fs = d.root.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    std::fs::write(fs.join("hello"), b"hi").unwrap();
    let tar = d.root.join("rootfs.tar");
    let ok = std::process::Command::new("tar")
        .args(["-C", fs.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t0 = now_precise();
    let r = d.docker(&["import", "--change", "LABEL tier=x", tar.to_str().unwrap(), "lab:1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.docker(&["tag", "lab:1", "lab:2"]).code, 0);
    let until = now_precise();
    let r = d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "label=tier=x",
        "--format",
        FMT,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.lines().any(|l| l == "image tag lab:2"), "{r:?}");
    assert!(r.stdout.lines().all(|l| l.starts_with("image ")), "{r:?}");
}
