//! berth-shim end to end, as root: a busybox overlay rootfs, berth's own runtime, the control socket.
//! Each test has its own temp dir, container ID, socket and cgroup, and checks that nothing is left
//! behind (mounts, cgroup directories, processes) once the container exited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod shim_fixture;

use shim_fixture::*;

#[test]
fn runs_captures_output_and_exit_code() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["sh", "-c", "echo hello; echo oops >&2; exit 3"]), |_| {});
    let ready = f.spawn();
    assert!(ready.error.is_none(), "{:?}", ready.error);
    let state = f.call(r#"{"op":"state"}"#);
    assert_eq!(state["running"], true);
    let a = f.attach(false);
    let w = f.waiter();
    f.start();
    let (out, err) = demux(a);
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    let st = f.wait_on(w);
    assert_eq!(st.exit_code, 3);
    assert_eq!(st.signal, None);
    assert!(!st.oom_killed);
    f.assert_clean();
    let exit: ExitStatus =
        serde_json::from_slice(&std::fs::read(f.p("bundle/exit.json")).expect("exit.json")).expect("json");
    assert_eq!(exit.exit_code, 3);
    let log = std::fs::read_to_string(f.log_path()).expect("log");
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line"))
        .collect();
    assert!(
        entries.iter().any(|e| e["log"] == "hello\n" && e["stream"] == "stdout"),
        "{log}"
    );
    assert!(
        entries.iter().any(|e| e["log"] == "oops\n" && e["stream"] == "stderr"),
        "{log}"
    );
}

#[test]
fn exit_zero_and_logs_without_attach() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["sh", "-c", "for i in 1 2 3; do echo line$i; done"]), |_| {});
    f.spawn_ok();
    f.start();
    assert_eq!(f.exit_json().exit_code, 0);
    f.assert_clean();
    let log = std::fs::read_to_string(f.log_path()).expect("log");
    assert_eq!(log.lines().count(), 3, "{log}");
}

#[test]
fn missing_command_is_127() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["nosuchcommand"]), |_| {});
    let ready = f.spawn();
    assert_eq!(ready.exit_code, Some(127));
    let msg = ready.error.unwrap_or_default();
    assert!(
        msg.contains(r#"exec: "nosuchcommand": executable file not found in $PATH"#),
        "{msg}"
    );
    wait_until("socket-less shim exit", Duration::from_secs(5), || {
        f.find_shim_pid().is_none()
    });
    assert!(!f.cgroup_dir("memory").exists());
    let mut f2 = Fixture::new();
    f2.write_bundle(&f2.config(&["/etc/passwd"]), |_| {});
    assert_eq!(f2.spawn().exit_code, Some(126));
}

#[test]
fn docker_defaults_inside_the_container() {
    require_root!();
    let mut f = Fixture::new();
    let mut rc = f.config(&[
        "sh",
        "-c",
        "hostname; ps -o pid,comm | grep -c '^ *1 '; grep -E '^Cap(Bnd|Eff)' /proc/self/status; \
         wc -c < /proc/timer_list; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         id -u; ls /dev/null /dev/pts/ptmx > /dev/null && echo devs; \
         echo x > /proc/sys/kernel/hostname 2>/dev/null || echo procsys-ro; ip link show lo | grep -c UP; \
         mknod /tmp/disk b 254 0 && { head -c1 /tmp/disk > /dev/null 2>&1 && echo readable || echo blocked; }",
    ]);
    rc.memory = 64 << 20;
    f.write_bundle(&rc, |_| {});
    f.spawn_ok();
    let a = f.attach(false);
    let w = f.waiter();
    f.start();
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(w).exit_code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], &f.id[..12], "{out}\n{err}");
    assert_eq!(lines[1], "1", "one process with PID 1: {out}");
    assert_eq!(lines[2], "CapEff:\t00000000a80425fb", "{out}");
    assert_eq!(lines[3], "CapBnd:\t00000000a80425fb", "{out}");
    assert_eq!(lines[4].trim(), "0", "/proc/timer_list masked: {out}");
    assert_eq!(lines[5], (64u64 << 20).to_string(), "{out}");
    assert_eq!(lines[6], "0");
    assert_eq!(lines[7], "devs");
    assert_eq!(lines[8], "procsys-ro");
    assert_eq!(lines[9], "1", "lo up: {out}");
    assert_eq!(lines[10], "blocked", "device cgroup: {out}");
    f.assert_clean();
}

#[test]
fn read_only_rootfs_refuses_writes() {
    require_root!();
    let mut f = Fixture::new();
    let mut rc = f.config(&["sh", "-c", "touch /newfile"]);
    rc.readonly_rootfs = true;
    f.write_bundle(&rc, |_| {});
    f.spawn_ok();
    let a = f.attach(false);
    let w = f.waiter();
    f.start();
    let (_, err) = demux(a);
    assert_eq!(f.wait_on(w).exit_code, 1);
    assert!(err.contains("Read-only file system"), "{err}");
    f.assert_clean();
    assert!(!f.p("upper/newfile").exists());
}

#[test]
fn tty_mode_is_raw_and_sized() {
    require_root!();
    let mut f = Fixture::new();
    let mut rc = f.config(&["sh", "-c", "stty size; tty; echo done"]);
    rc.tty = true;
    f.write_bundle(&rc, |s| s.console_size = Some((30, 100)));
    f.spawn_ok();
    let mut a = f.attach(false);
    let w = f.waiter();
    f.start();
    let mut out = String::new();
    a.read_to_string(&mut out).expect("read");
    assert_eq!(f.wait_on(w).exit_code, 0);
    assert!(out.contains("30 100\r\n"), "{out:?}");
    assert!(out.contains("/dev/console") || out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("done\r\n"), "{out:?}");
    f.assert_clean();
}

#[test]
fn stdin_is_forwarded_and_closed_once() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["cat"]), |s| {
        s.open_stdin = true;
        s.stdin_once = true;
    });
    f.spawn_ok();
    let a = f.attach(true);
    let w = f.waiter();
    f.start();
    (&a).write_all(b"ping\npong").expect("stdin");
    a.shutdown(std::net::Shutdown::Write).expect("half-close");
    let (out, _) = demux(&a);
    assert_eq!(out, "ping\npong");
    assert_eq!(f.wait_on(w).exit_code, 0);
    f.assert_clean();
}

#[test]
fn kill_reports_signal() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["sleep", "1000"]), |_| {});
    f.spawn_ok();
    let w = f.waiter();
    f.start();
    let r = f.call(r#"{"op":"kill","signal":9}"#);
    assert_eq!(r["ok"], true);
    let st = f.wait_on(w);
    assert_eq!(st.exit_code, 137);
    assert_eq!(st.signal, Some(9));
    f.assert_clean();
}

#[test]
fn shim_survives_its_parent_being_killed() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["sh", "-c", "read x; echo got $x"]), |s| s.open_stdin = true);
    // The "daemon": a shell that starts the shim and stays around; we kill -9 it.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(r#""$0" "$@"; exec sleep 1000"#).arg(shim_bin());
    cmd.arg("--bundle").arg(f.p("bundle")).arg("--socket").arg(f.socket());
    let (parent, ready) = f.spawn_with(cmd);
    let mut parent = KillOnDrop(parent);
    assert!(ready.error.is_none(), "{:?}", ready.error);
    parent.0.kill().expect("kill parent");
    parent.0.wait().expect("reap parent");
    let state = f.call(r#"{"op":"state"}"#);
    assert_eq!(state["running"], true, "{state}");
    let a = f.attach(true);
    let w = f.waiter();
    f.start();
    (&a).write_all(b"hi\n").expect("stdin");
    let mut buf = [0u8; 8];
    let mut payload = Vec::new();
    while let Ok(()) = (&a).read_exact(&mut buf) {
        let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        let mut b = vec![0u8; len];
        (&a).read_exact(&mut b).expect("frame");
        payload.extend(b);
    }
    assert_eq!(String::from_utf8_lossy(&payload), "got hi\n");
    assert_eq!(f.wait_on(w).exit_code, 0);
    f.assert_clean();
}

#[test]
fn user_cwd_and_security_options() {
    require_root!();
    let mut f = Fixture::new();
    let mut rc = f.config(&[
        "sh",
        "-c",
        "id; pwd; grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status",
    ]);
    rc.user = berth_runtime::ResolvedUser {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![50],
        home: "/home/app".into(),
    };
    rc.cwd = "/work/here".into();
    rc.no_new_privileges = true;
    f.write_bundle(&rc, |_| {});
    f.spawn_ok();
    let a = f.attach(false);
    let w = f.waiter();
    f.start();
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(w).exit_code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("uid=1000(app) gid=1000(app)") && lines[0].contains("50(staff)"),
        "{out}"
    );
    assert_eq!(lines[1], "/work/here");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    f.assert_clean();
}

#[test]
fn oom_kill_is_reported() {
    require_root!();
    let mut f = Fixture::new();
    let mut rc = f.config(&["sh", "-c", "x=$(yes | head -c 400000000); echo survived"]);
    rc.memory = 16 << 20;
    f.write_bundle(&rc, |_| {});
    f.spawn_ok();
    let w = f.waiter();
    f.start();
    let st = f.wait_on(w);
    assert!(st.oom_killed, "{st:?}");
    assert_ne!(st.exit_code, 0);
    f.assert_clean();
}

#[test]
fn slow_client_is_dropped_and_log_is_complete() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(
        &f.config(&["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' a"]),
        |_| {},
    );
    f.spawn_ok();
    // Attached but never reading: the shim must not block on it.
    let stalled = f.attach(false);
    let w = f.waiter();
    f.start();
    let st = f.wait_on(w);
    assert_eq!(st.exit_code, 0);
    f.assert_clean();
    drop(stalled);
    let log = std::fs::read_to_string(f.log_path()).expect("log");
    let total: usize = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("log line")["log"]
                .as_str()
                .map_or(0, str::len)
        })
        .sum();
    assert_eq!(total, 5_000_000);
}

#[test]
fn external_runtime_runc() {
    require_root!();
    let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(runc) = runc else {
        eprintln!("SKIP: runc is not installed (apt-get install runc)");
        return;
    };
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["sh", "-c", "echo via-runc; hostname; exit 4"]), |s| {
        s.runtime_path = Some(runc.into())
    });
    f.spawn_ok();
    let a = f.attach(false);
    let w = f.waiter();
    f.start();
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(w).exit_code, 4, "{out}\n{err}");
    assert_eq!(out, format!("via-runc\n{}\n", &f.id[..12]));
    f.assert_clean();
    let list = Command::new(runc).arg("list").output().expect("runc list");
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&f.id),
        "runc state left behind"
    );
}

#[test]
fn user_namespace_mapping() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new();
    let base = 200_000u32;
    // The mapped root must reach the rootfs: open the temp dir and hand it upper/work.
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for d in ["upper", "work"] {
        std::os::unix::fs::chown(f.p(d), Some(base), Some(base)).expect("chown");
    }
    let mut rc = f.config(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; echo ok > /tmp/x && cat /tmp/x",
    ]);
    let map = berth_runtime::IdMap {
        container_id: 0,
        host_id: base,
        size: 65536,
    };
    rc.uid_mappings = vec![map];
    rc.gid_mappings = vec![map];
    f.write_bundle(&rc, |_| {});
    f.spawn_ok();
    let a = f.attach(false);
    let w = f.waiter();
    f.start();
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(w).exit_code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let m: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(m, ["0", &base.to_string(), "65536"], "{out}");
    assert_eq!(lines[2], "ok");
    f.assert_clean();
}

#[test]
fn privileged_gets_devices_and_capabilities() {
    require_root!();
    let mut f = Fixture::new();
    let mut rc = f.config(&["sh", "-c", "grep -c '^Seccomp:.0' /proc/self/status; ls /dev | wc -l; mkdir -p /mnt && mount -t tmpfs t /mnt && echo mounted"]);
    rc.privileged = true;
    f.write_bundle(&rc, |_| {});
    f.spawn_ok();
    let a = f.attach(false);
    let w = f.waiter();
    f.start();
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(w).exit_code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "no seccomp: {out}");
    let devs: usize = lines[1].trim().parse().expect("count");
    assert!(devs > 12, "host devices expected, got {devs}: {out}");
    assert_eq!(lines[2], "mounted", "{out}\n{err}");
    f.assert_clean();
}
