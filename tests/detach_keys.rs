//! Detach keys on the daemon's side, as dockerd: a TTY attach whose client types the detach
//! sequence (Ctrl-P Ctrl-Q, or the `detachKeys` query) ends, and the container runs on; a bad key
//! list is a 400. And `logs=1&stream=1` replays the past output before the live stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Opens a hijacked attach to the container `tt`; returns the stream after the 101 head.
fn hijack(d: &Daemon, query: &str) -> UnixStream {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    write!(
        s,
        "POST /v1.47/containers/tt/attach?{query} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Reads until the daemon closes the connection (a read of 0).
fn read_to_close(s: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn a_tty_attach_ends_on_the_detach_keys_and_the_container_runs_on() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&["run", "-d", "-t", "-i", "--name", "tt", "bb", "sh"]);
    assert_eq!(r.code, 0, "{r:?}");

    // Default keys: typed text goes through, Ctrl-P Ctrl-Q ends the attach.
    let mut s = hijack(&d, "stdin=1&stdout=1&stderr=1&stream=1");
    s.write_all(b"echo hello-$((40+2))\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("hello-42") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    s.write_all(&[0x10, 0x11]).unwrap();
    read_to_close(&mut s);
    let running = || d.docker(&["inspect", "-f", "{{.State.Running}}", "tt"]).stdout.trim() == "true";
    assert!(running(), "the container must run on after a detach");

    // Custom keys from the query; the default ones are then ordinary input.
    let mut s = hijack(&d, "stdin=1&stdout=1&stream=1&detachKeys=ctrl-a,x");
    s.write_all(&[0x01, b'x']).unwrap();
    read_to_close(&mut s);
    assert!(eventually(Duration::from_secs(2), running));

    // A bad key list is refused before the upgrade.
    let (status, body) = d.api("POST", "/containers/tt/attach?stream=1&stdin=1&detachKeys=ctrl-1", None);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("Invalid detach keys"));
}

#[test]
fn attach_with_logs_and_stream_replays_the_past_then_streams() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    // A first run leaves output in the log; the container then runs again and is attached with
    // logs=1&stream=1 before its second start.
    let r = d.berth(&["run", "--name", "tt", "bb", "sh", "-c", "echo from-the-past"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut s = hijack(&d, "stdout=1&stderr=1&stream=1&logs=1");
    let r = d.berth(&["start", "tt"]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = read_to_close(&mut s);
    // Multiplexed frames: the payloads in order.
    let mut payload = Vec::new();
    let mut rest = &out[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        payload.extend_from_slice(&rest[8..8 + len]);
        rest = &rest[8 + len..];
    }
    assert_eq!(String::from_utf8_lossy(&payload), "from-the-past\nfrom-the-past\n");
}
