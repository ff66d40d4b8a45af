//! Log drivers end to end: the default LogConfig, refusals at create, `none`, `local`, json-file
//! rotation (`max-size`, `max-file`, `compress`) read back by `docker logs` across the rotated files,
//! the daemon-wide `--log-driver`/`--log-opt`, and `attach?logs=1&stream=0`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;
use std::path::PathBuf;

fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    let r = d.docker(&["inspect", "-f", fmt, name]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.trim().to_string()
}

fn container_dir(d: &Daemon, name: &str) -> PathBuf {
    d.data_root().join("containers").join(inspect(d, name, "{{.Id}}"))
}

fn run_to_end(d: &Daemon, args: &[&str]) {
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    let r = d.docker(&a);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
}

#[test]
fn default_log_config_and_refusals_at_create() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    assert_eq!(d.docker(&["create", "--name", "plain", "bb", "true"]).code, 0);
    assert_eq!(
        inspect(&d, "plain", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{}}"#
    );
    let r = d.docker(&["create", "--log-driver", "bogus", "bb", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("logger: no log driver named 'bogus' is registered"),
        "{r:?}"
    );
    let r = d.docker(&["create", "--log-opt", "max-sise=1m", "bb", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("unknown log opt 'max-sise' for json-file log driver"),
        "{r:?}"
    );
    let (status, _) = d.api(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"bb","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-file":"0"}}}}"#),
    );
    assert_eq!(status, 400);
    // Nothing was created by the refusals.
    assert_eq!(d.docker(&["ps", "-aq"]).stdout.lines().count(), 1);
}

#[test]
fn none_keeps_no_log_and_logs_refuses_to_read() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&["run", "--name", "quiet", "--log-driver", "none", "bb", "echo", "hi"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "hi\n", "attached output still flows");
    let logs = d.docker(&["logs", "quiet"]);
    assert_ne!(logs.code, 0);
    assert!(
        logs.stderr
            .contains("configured logging driver does not support reading"),
        "{logs:?}"
    );
    let (status, _) = d.api("GET", "/containers/quiet/logs?stdout=1", None);
    assert_eq!(status, 501);
    let dir = container_dir(&d, "quiet");
    let logs_on_disk: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("log"))
        .collect();
    assert!(logs_on_disk.is_empty(), "{logs_on_disk:?}");
}

#[test]
fn json_file_rotates_and_logs_reads_across_the_files() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_to_end(
        &d,
        &[
            "--name",
            "rot",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=3",
            "bb",
            "sh",
            "-c",
            "for i in $(seq 1 300); do echo line-$i; done",
        ],
    );
    let dir = container_dir(&d, "rot");
    let id = inspect(&d, "rot", "{{.Id}}");
    let live = dir.join(format!("{id}-json.log"));
    assert!(std::fs::metadata(&live).unwrap().len() <= 2048);
    assert!(dir.join(format!("{id}-json.log.1")).exists());
    assert!(dir.join(format!("{id}-json.log.2")).exists());
    assert!(!dir.join(format!("{id}-json.log.3")).exists());
    let logs = d.docker(&["logs", "rot"]);
    assert_eq!(logs.code, 0, "{logs:?}");
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"line-300"));
    assert!(lines.len() < 300 && lines.len() > 40, "{}", lines.len());
    // Consecutive across the files: nothing lost or repeated inside what is kept.
    let first: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line-{}", first + i));
    }
    let tail = d.docker(&["logs", "--tail", "3", "rot"]);
    assert_eq!(tail.stdout, "line-298\nline-299\nline-300\n");
}

#[test]
fn compressed_rotation_and_the_local_driver() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_to_end(
        &d,
        &[
            "--name",
            "gz",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=2",
            "--log-opt",
            "compress=true",
            "bb",
            "sh",
            "-c",
            "for i in $(seq 1 100); do echo line-$i; done",
        ],
    );
    let dir = container_dir(&d, "gz");
    let id = inspect(&d, "gz", "{{.Id}}");
    assert!(dir.join(format!("{id}-json.log.1.gz")).exists());
    let logs = d.docker(&["logs", "gz"]);
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"line-100"));
    let first: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    assert!(first > 1, "the oldest lines were rotated away");
    assert_eq!(lines.len(), 101 - first, "the gzipped file is read too: {logs:?}");
    run_to_end(
        &d,
        &[
            "--name",
            "loc",
            "--log-driver",
            "local",
            "bb",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert_eq!(inspect(&d, "loc", "{{.HostConfig.LogConfig.Type}}"), "local");
    let logs = d.docker(&["logs", "loc"]);
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("out\n", "err\n"),
        "{logs:?}"
    );
    assert!(container_dir(&d, "loc").join("local-logs/container.log").exists());
}

#[test]
fn daemon_wide_log_driver_and_options() {
    let d = Daemon::start_with(&[
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
    ]);
    d.load_busybox("bb:latest");
    run_to_end(
        &d,
        &[
            "--name",
            "dflt",
            "bb",
            "sh",
            "-c",
            "for i in $(seq 1 200); do echo line-$i; done",
        ],
    );
    assert_eq!(
        inspect(&d, "dflt", "{{index .HostConfig.LogConfig.Config \"max-size\"}}"),
        "1k"
    );
    let id = inspect(&d, "dflt", "{{.Id}}");
    assert!(container_dir(&d, "dflt").join(format!("{id}-json.log.1")).exists());
    // A container's own driver does not take the daemon's options.
    run_to_end(&d, &["--name", "own", "--log-driver", "local", "bb", "true"]);
    assert_eq!(
        inspect(&d, "own", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"local","Config":{}}"#
    );
    let n = Daemon::start_with(&["--log-driver", "none"]);
    n.load_busybox("bb:latest");
    assert_eq!(n.docker(&["create", "--name", "nolog", "bb", "true"]).code, 0);
    assert_eq!(inspect(&n, "nolog", "{{.HostConfig.LogConfig.Type}}"), "none");
    // `docker info` reports the daemon's default driver.
    let r = n.docker(&["info", "-f", "{{.LoggingDriver}}"]);
    assert_eq!(r.stdout.trim(), "none", "{r:?}");
    let r = d.docker(&["info", "-f", "{{.LoggingDriver}}"]);
    assert_eq!(r.stdout.trim(), "json-file", "{r:?}");
}

#[test]
fn attach_with_logs_and_no_stream_returns_the_past_output() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_to_end(&d, &["--name", "past", "bb", "sh", "-c", "echo one; echo two >&2"]);
    let (status, body) = d.api(
        "POST",
        "/containers/past/attach?logs=1&stream=0&stdout=1&stderr=1",
        None,
    );
    assert_eq!(status, 200);
    // Multiplexed: an 8-byte header per frame (stream 1 or 2).
    assert!(body[0] == 1 || body[0] == 2, "{body:?}");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("one\n") && text.contains("two\n"), "{text:?}");
    let (status, body) = d.api("POST", "/containers/past/attach?logs=1&stream=0&stdout=1", None);
    assert_eq!(status, 200);
    assert!(!String::from_utf8_lossy(&body).contains("two"));
}

#[test]
fn logs_follow_goes_on_after_a_rotation() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "fol",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "bb",
        "sh",
        "-c",
        "sleep 1; for i in $(seq 1 120); do echo line-$i; sleep 0.02; done",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let logs = d.docker(&["logs", "-f", "fol"]);
    assert_eq!(logs.code, 0, "{logs:?}");
    let nums: Vec<usize> = logs
        .stdout
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap())
        .collect();
    assert_eq!(nums.last(), Some(&120), "the follower stopped at a rotation: {logs:?}");
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
}
