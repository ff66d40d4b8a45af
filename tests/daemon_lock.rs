//! One daemon per root: a second berthd on a data root or an exec root that a running berthd holds
//! refuses to start, names the PID that holds it, and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;

#[test]
fn a_second_daemon_on_the_same_roots_is_refused() {
    let d = Daemon::start();
    let pid = d.pid().unwrap();
    let mounts_before = d.own_mounts().len();
    let other_sock = d.root.join("other.sock");
    for (data, exec) in [
        (d.root.join("data"), d.root.join("run")),
        (d.root.join("data"), d.root.join("run2")),
        (d.root.join("data2"), d.root.join("run")),
    ] {
        let out = d.berthd_cmd(&other_sock, &data, &exec).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "second daemon on {data:?} {exec:?} started: {err}"
        );
        assert!(
            err.contains(&format!("in use by another berthd (pid {pid})")),
            "the refusal names the holder: {err}"
        );
        assert!(!other_sock.exists(), "a refused daemon leaves no socket");
    }
    // Nothing changed: no extra tmpfs on the exec roots, the first daemon still serves.
    assert_eq!(d.own_mounts().len(), mounts_before, "{:?}", d.own_mounts());
    let r = d.berth(&["ps"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_refused_socket_leaves_the_exec_root_unmounted() {
    let d = Daemon::start();
    let exec = d.root.join("run-other");
    let out = d
        .berthd_cmd(&d.sock, &d.root.join("data-other"), &exec)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already listening"), "{err}");
    let needle = format!(" {} ", exec.display());
    assert!(
        !d.own_mounts().iter().any(|m| m.contains(&needle)),
        "the refused daemon left its tmpfs: {:?}",
        d.own_mounts()
    );
}
