//! Streams as a Docker user sees them: `logs -f`, `start -a`, external
//! OCI runtimes, and hostile archives sent to `load`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::time::Duration;

#[test]
fn logs_follow_tail_and_timestamps() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "talker",
        "bb",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; echo err$i >&2; sleep 0.3; done",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // -f streams until the container exits, stdout and stderr apart.
    let f = d.docker(&["logs", "-f", "talker"]);
    assert_eq!(f.code, 0, "{f:?}");
    assert_eq!(f.stdout, "line1\nline2\nline3\n");
    assert_eq!(f.stderr, "err1\nerr2\nerr3\n");
    // --tail counts lines of both streams together, as Docker's does.
    let t = d.docker(&["logs", "--tail", "2", "talker"]);
    assert_eq!((t.stdout.as_str(), t.stderr.as_str()), ("line3\n", "err3\n"), "{t:?}");
    let ts = d.docker(&["logs", "-t", "talker"]);
    let first = ts.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        first.ends_with(" line1") && first.starts_with("20") && first.contains('T'),
        "{first}"
    );
}

#[test]
fn start_attach_reruns_a_stopped_container() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    assert_eq!(
        d.docker(&["create", "--name", "again", "bb", "echo", "once more"]).code,
        0
    );
    for _ in 0..2 {
        let r = d.docker(&["start", "-a", "again"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(r.stdout, "once more\n");
    }
    assert_eq!(d.docker(&["logs", "again"]).stdout, "once more\nonce more\n");
}

#[test]
fn external_oci_runtime_runs_the_same_container() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let info = d.docker(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        info.stdout.contains("runc"),
        "runc is not installed (scripts/deps.sh installs it): {info:?}"
    );
    let r = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "bb",
        "sh",
        "-c",
        "echo via runc; exit 4",
    ]);
    assert_eq!(r.code, 4, "{r:?}\n{}", d.log());
    assert_eq!(r.stdout, "via runc\n");
    let r = d.docker(&["run", "--rm", "--runtime", "nope", "bb", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("unknown or invalid runtime name: nope"), "{r:?}");
}

/// A tar holding one entry whose name is written raw into the header (the tar crate refuses `..`).
fn raw_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[test]
fn hostile_archives_are_refused_and_leave_the_store_clean() {
    let d = Daemon::start();
    let before = d.api_json("/images/json");
    for (what, tar) in [
        ("path traversal", raw_tar("../../etc/evil", b"x")),
        ("absolute path", raw_tar("/etc/evil", b"x")),
        (
            "truncated",
            raw_tar("manifest.json", b"[{\"Config\":\"c\"}]")[..600].to_vec(),
        ),
        ("not a tar", b"hello, this is not an archive".to_vec()),
        ("bad manifest", raw_tar("manifest.json", b"[{\"Config\": 5}]")),
    ] {
        // As dockerd: 200, and the failure inside the JSON progress stream.
        let (status, body) = d.api("POST", "/images/load", Some(&tar));
        let msg = String::from_utf8_lossy(&body).to_string();
        assert_eq!(status, 200, "{what}: {msg}");
        let line: serde_json::Value = serde_json::from_str(msg.trim()).unwrap();
        assert!(
            line["errorDetail"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {msg}"
        );
        assert_eq!(line["error"], line["errorDetail"]["message"], "{what}: {msg}");
        assert!(!std::path::Path::new("/etc/evil").exists());
    }
    // Import of a layer that tries to escape is refused too.
    let (status, _) = d.api(
        "POST",
        "/images/create?fromSrc=-&repo=evil",
        Some(&raw_tar("../x", b"y")),
    );
    assert!(status >= 400, "{status}");
    assert_eq!(d.api_json("/images/json"), before);
    assert!(eventually(Duration::from_secs(5), || {
        std::fs::read_dir(d.data_root().join("snapshots"))
            .map(|rd| {
                rd.flatten()
                    .all(|e| !e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_hexdigit()))
            })
            .unwrap_or(true)
    }));
}
