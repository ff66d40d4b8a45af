//! `berthd --userns-remap default`: containers run in a user namespace mapped to the dockremap
//! subordinate ranges (created as dockerd does), with image layers shifted so root inside owns its
//! files and can write them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;

#[test]
fn remapped_containers_are_root_inside_and_unprivileged_outside() {
    let d = Daemon::start_with(&["--userns-remap", "default"]);
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /x /root/y /tmp/z && echo wrote",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("0"));
    let map: Vec<u64> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(map.len(), 3, "{r:?}");
    assert_eq!(map[0], 0);
    assert!(map[1] >= 1, "root must map to an unprivileged host uid: {map:?}");
    assert_eq!(lines.next(), Some("wrote"));
    // Owners in the image look right from inside.
    let r = d.docker(&["run", "--rm", "bb", "stat", "-c", "%u:%g", "/bin/busybox", "/etc/hosts"]);
    assert_eq!(r.stdout, "0:0\n0:0\n", "{r:?}");
    // From the host, the container's process runs as the mapped uid.
    let r = d.docker(&["run", "-d", "--name", "mapped", "bb", "sleep", "30"]);
    assert_eq!(r.code, 0, "{r:?}");
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "mapped"])
        .stdout
        .trim()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        uid_line
            .split_whitespace()
            .nth(1)
            .is_some_and(|u| u == map[1].to_string()),
        "{uid_line}"
    );
    // --userns=host opts a container out.
    let r = d.docker(&["run", "--rm", "--userns", "host", "bb", "cat", "/proc/self/uid_map"]);
    assert!(r.stdout.split_whitespace().nth(1) == Some("0"), "{r:?}");
}

#[test]
fn remapped_root_can_use_volumes() {
    let d = Daemon::start_with(&["--userns-remap", "default"]);
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "--rm",
        "-v",
        "remapped:/v",
        "bb",
        "sh",
        "-c",
        "echo ok > /v/f && stat -c %u /v/f",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(r.stdout, "0\n", "{r:?}");
    let r = d.docker(&["run", "--rm", "-v", "remapped:/v", "bb", "cat", "/v/f"]);
    assert_eq!(r.stdout, "ok\n", "{r:?}");
}
