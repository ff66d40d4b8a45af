//! Health checks end to end, as root, with short intervals: `--health-*` from berth and the real
//! docker CLI, `State.Health` in inspect, `(healthy)`/`(unhealthy)` in `ps`, a container going from
//! healthy to unhealthy and back, and the monitor stopping with the container.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{eventually, Daemon};
use std::time::Duration;

fn health(d: &Daemon, name: &str) -> serde_json::Value {
    d.api_json(&format!("/v1.47/containers/{name}/json"))["State"]["Health"].clone()
}

fn status_is(d: &Daemon, name: &str, want: &str) -> bool {
    eventually(Duration::from_secs(20), || health(d, name)["Status"] == want)
}

fn ps_status(d: &Daemon, name: &str) -> String {
    let r = d.docker(&["ps", "--filter", &format!("name={name}"), "--format", "{{.Status}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.trim().to_string()
}

#[test]
fn healthy_and_unhealthy_through_inspect_and_ps() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "good",
        "--health-cmd",
        "echo fine",
        "--health-interval",
        "200ms",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo broken; exit 1",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let h = health(&d, "good");
    assert!(h["Status"] == "starting" || h["Status"] == "healthy", "{h}");

    assert!(status_is(&d, "good", "healthy"), "{}", health(&d, "good"));
    let h = health(&d, "good");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty());
    assert_eq!(log[0]["ExitCode"], 0);
    assert_eq!(log[0]["Output"], "fine\n");
    assert!(log[0]["Start"].as_str().unwrap() <= log[0]["End"].as_str().unwrap());
    assert!(
        ps_status(&d, "good").ends_with("(healthy)"),
        "{}",
        ps_status(&d, "good")
    );

    assert!(status_is(&d, "bad", "unhealthy"), "{}", health(&d, "bad"));
    let h = health(&d, "bad");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1);
    assert_eq!(h["Log"][0]["Output"], "broken\n");
    assert!(
        ps_status(&d, "bad").ends_with("(unhealthy)"),
        "{}",
        ps_status(&d, "bad")
    );
    let r = d.docker(&["ps", "-q", "--no-trunc", "--filter", "health=unhealthy"]);
    assert_eq!(
        r.stdout.trim(),
        d.api_json("/v1.47/containers/bad/json")["Id"].as_str().unwrap(),
        "{r:?}"
    );
    let r = d.docker(&["ps", "-q", "--filter", "health=none"]);
    assert_eq!(r.stdout.trim(), "", "{r:?}");
    let r = d.docker(&["inspect", "--format", "{{.State.Health.Status}}", "bad"]);
    assert_eq!(r.stdout.trim(), "unhealthy", "{r:?}");
    // The monitors come back with a restarted daemon that re-adopts the containers.
    let mut d = d;
    d.restart();
    assert!(status_is(&d, "good", "healthy"), "{}", health(&d, "good"));
    assert!(status_is(&d, "bad", "unhealthy"), "{}", health(&d, "bad"));
    // Only the last five results are kept.
    assert!(eventually(Duration::from_secs(20), || health(&d, "bad")["Log"]
        .as_array()
        .is_some_and(|l| l.len() == 5)));
}

#[test]
fn a_container_turns_unhealthy_and_back_and_the_check_stops_with_it() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "flip",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "bb",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(status_is(&d, "flip", "healthy"), "{}", health(&d, "flip"));
    assert_eq!(d.berth(&["exec", "flip", "rm", "/tmp/ok"]).code, 0);
    assert!(status_is(&d, "flip", "unhealthy"), "{}", health(&d, "flip"));
    assert_eq!(d.berth(&["exec", "flip", "touch", "/tmp/ok"]).code, 0);
    assert!(status_is(&d, "flip", "healthy"), "{}", health(&d, "flip"));

    assert_eq!(d.berth(&["stop", "-t", "0", "flip"]).code, 0);
    let ends = |d: &Daemon| -> Vec<String> {
        health(d, "flip")["Log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["End"].as_str().unwrap().to_string())
            .collect()
    };
    let before = ends(&d);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(ends(&d), before, "no probe runs after the container stopped");

    // A check that has not run yet: starting.
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(health(&d, "slow")["Status"], "starting");
    assert!(
        ps_status(&d, "slow").ends_with("(health: starting)"),
        "{}",
        ps_status(&d, "slow")
    );

    // --no-healthcheck: no health at all.
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--no-healthcheck",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(health(&d, "plain").is_null());
    assert!(!ps_status(&d, "plain").contains("health"));
}

#[test]
fn the_images_healthcheck_runs_with_the_containers_settings_over_it() {
    let d = Daemon::start();
    // HEALTHCHECK --interval=1h --retries=1 CMD-SHELL echo from-image; exit 1
    let tar = berth_testkit::busybox_image_tar_with(
        "hc:latest",
        serde_json::json!({"Healthcheck": {
            "Test": ["CMD-SHELL", "echo from-image; exit 1"],
            "Interval": 3_600_000_000_000i64,
            "Retries": 1,
        }}),
    )
    .unwrap();
    let (status, body) = d.api("POST", "/v1.41/images/load?quiet=1", Some(&tar));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // The container's interval replaces the image's hour; the image's test and retries stay.
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "img",
        "--health-interval",
        "200ms",
        "hc",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let hc = d.api_json("/v1.47/containers/img/json")["Config"]["Healthcheck"].clone();
    assert_eq!(
        hc["Test"],
        serde_json::json!(["CMD-SHELL", "echo from-image; exit 1"]),
        "{hc}"
    );
    assert_eq!(
        (hc["Interval"].as_i64(), hc["Retries"].as_i64()),
        (Some(200_000_000), Some(1))
    );
    assert!(status_is(&d, "img", "unhealthy"), "{}", health(&d, "img"));
    assert_eq!(health(&d, "img")["Log"][0]["Output"], "from-image\n");
    // --no-healthcheck turns the image's off.
    let r = d.berth(&["run", "-d", "--name", "off", "--no-healthcheck", "hc", "sleep", "1000"]);
    assert_eq!(r.code, 0, "{r:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(health(&d, "off").is_null());
}
