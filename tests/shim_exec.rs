//! Exec through berth-shim, as root: extra processes in a running container, driven over the shim's
//! control socket (`exec`, then `attach`/`start`/`wait`/`kill`/`resize` with an `exec_id`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod shim_fixture;

use shim_fixture::*;

/// The container's own `process` from its bundle, with `args` (what the engine starts from too).
fn process(f: &Fixture, args: &[&str]) -> serde_json::Value {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("bundle/config.json")).expect("config.json")).expect("json");
    let mut p = spec["process"].clone();
    p["args"] = serde_json::json!(args);
    p["terminal"] = serde_json::json!(false);
    p
}

fn exec_with(f: &Fixture, id: &str, p: &serde_json::Value, stdin: bool) -> serde_json::Value {
    let req = serde_json::json!({"op": "exec", "exec_id": id, "process": p, "stdin": stdin});
    f.call(&req.to_string())
}

fn exec_ok(f: &Fixture, id: &str, args: &[&str]) -> i32 {
    let r = exec_with(f, id, &process(f, args), false);
    assert_eq!(r["ok"], true, "exec {args:?}: {r}");
    r["pid"].as_i64().expect("pid") as i32
}

fn attach_exec(f: &Fixture, id: &str, stdin: bool) -> UnixStream {
    let s = f.connect(
        &serde_json::json!({"op": "attach", "exec_id": id, "stdin": stdin, "stdout": true, "stderr": true}).to_string(),
    );
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while b[0] != b'\n' {
        (&s).read_exact(&mut b).expect("attach answer");
        line.push(b[0]);
    }
    assert_eq!(String::from_utf8_lossy(&line).trim(), r#"{"ok":true}"#);
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    s
}

fn start_exec(f: &Fixture, id: &str) {
    let r = f.call(&format!(r#"{{"op":"start","exec_id":"{id}"}}"#));
    assert_eq!(r["ok"], true, "start {id}: {r}");
}

fn waiter_exec(f: &Fixture, id: &str) -> UnixStream {
    let s = f.connect(&format!(r#"{{"op":"wait","exec_id":"{id}"}}"#));
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    s
}

/// A running container whose init sleeps.
fn running(rc: impl FnOnce(&mut RuntimeConfig)) -> Fixture {
    let mut f = Fixture::new();
    let mut c = f.config(&["sleep", "300"]);
    rc(&mut c);
    f.write_bundle(&c, |_| {});
    f.spawn_ok();
    f.start();
    f
}

fn stop(f: &Fixture) {
    let w = f.waiter();
    let r = f.call(r#"{"op":"kill","signal":9}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(f.wait_on(w).exit_code, 137);
    f.assert_clean();
}

/// `readlink /proc/<pid>/ns/<name>` on the host.
fn ns_of(pid: i32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .expect("readlink ns")
        .display()
        .to_string()
}

#[test]
fn exec_output_exit_code_and_state() {
    require_root!();
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["sleep", "300"]), |_| {});
    f.spawn_ok();
    let st = f.call(r#"{"op":"state"}"#);
    assert_eq!(st["started"], false, "{st}");
    assert_eq!(st["id"], f.id.as_str());
    // No exec into a container that was never started.
    let r = exec_with(&f, "early", &process(&f, &["true"]), false);
    assert!(r["error"].as_str().unwrap_or("").contains("is not running"), "{r}");
    f.start();
    let st = f.call(r#"{"op":"state"}"#);
    assert_eq!(st["started"], true, "{st}");
    assert_eq!(st["running"], true, "{st}");

    exec_ok(&f, "e1", &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let st = f.call(r#"{"op":"state","exec_id":"e1"}"#);
    assert_eq!(st["started"], false, "{st}");
    let a = attach_exec(&f, "e1", false);
    let w = waiter_exec(&f, "e1");
    start_exec(&f, "e1");
    let (out, err) = demux(a);
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    let st = f.wait_on(w);
    assert_eq!(st.exit_code, 7);
    // Still answerable after the exit, and listed in the container's state.
    assert_eq!(f.wait_on(waiter_exec(&f, "e1")).exit_code, 7);
    let st = f.call(r#"{"op":"state"}"#);
    assert_eq!(st["processes"][0]["exec_id"], "e1", "{st}");
    assert_eq!(st["processes"][0]["running"], false, "{st}");
    assert_eq!(st["processes"][0]["exit_code"], 7, "{st}");
    assert_eq!(st["running"], true, "the init runs on: {st}");
    // Same id twice, unknown ids.
    let r = exec_with(&f, "e1", &process(&f, &["true"]), false);
    assert!(r["error"].as_str().unwrap_or("").contains("already exists"), "{r}");
    let r = f.call(r#"{"op":"kill","signal":9,"exec_id":"nope"}"#);
    assert_eq!(r["error"], "no such exec: nope");
    // Exec output with nobody attached is dropped, and never reaches the json-file log.
    exec_ok(&f, "quiet", &["sh", "-c", "yes | head -c 1000000; exit 0"]);
    let w = waiter_exec(&f, "quiet");
    start_exec(&f, "quiet");
    assert_eq!(f.wait_on(w).exit_code, 0);
    let log = std::fs::read_to_string(f.log_path()).unwrap_or_default();
    assert!(log.is_empty(), "exec output logged: {}", &log[..log.len().min(200)]);
    stop(&f);
}

#[test]
fn exec_attached_and_started_in_one_request() {
    require_root!();
    let f = running(|_| {});
    // Create, attach and start on one connection: the answer line, then the output stream.
    let req = serde_json::json!({
        "op": "exec", "exec_id": "one", "process": process(&f, &["sh", "-c", "read l; echo got $l; echo e >&2; exit 3"]),
        "stdin": true, "attach": {"stdin": true, "stdout": true, "stderr": true}, "start": true,
    });
    let s = f.connect(&req.to_string());
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while b[0] != b'\n' {
        (&s).read_exact(&mut b).expect("exec answer");
        line.push(b[0]);
    }
    let r: serde_json::Value = serde_json::from_slice(&line).expect("answer json");
    assert_eq!(
        (r["ok"].clone(), r["started"].clone()),
        (true.into(), true.into()),
        "{r}"
    );
    assert!(r["pid"].as_i64().unwrap_or(0) > 0, "{r}");
    let w = waiter_exec(&f, "one");
    (&s).write_all(b"hi\n").expect("stdin");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let (out, err) = demux(s);
    assert_eq!((out.as_str(), err.as_str()), ("got hi\n", "e\n"));
    assert_eq!(f.wait_on(w).exit_code, 3);
    // Started without an attach: the answer closes the connection, the process runs on its own.
    let req = serde_json::json!({"op": "exec", "exec_id": "bg", "process": process(&f, &["true"]), "start": true});
    let r = f.call(&req.to_string());
    assert_eq!(r["started"], true, "{r}");
    assert_eq!(f.wait_on(waiter_exec(&f, "bg")).exit_code, 0);
    // A start that cannot exec still answers with Docker's code, nothing left running.
    let req = serde_json::json!({"op": "exec", "exec_id": "bad", "process": process(&f, &["/nope"]), "start": true,
        "attach": {"stdout": true}});
    let r = f.call(&req.to_string());
    assert_eq!(r["exit_code"], 127, "{r}");
    stop(&f);
}

#[test]
fn exec_with_a_pty_is_sized_and_resized() {
    require_root!();
    let f = running(|_| {});
    let mut p = process(&f, &["sh", "-c", "stty size; read x; stty size; tty"]);
    p["terminal"] = serde_json::json!(true);
    p["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    let r = exec_with(&f, "t", &p, true);
    assert_eq!(r["ok"], true, "{r}");
    let mut a = attach_exec(&f, "t", true);
    start_exec(&f, "t");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains("30 100") {
        let n = a.read(&mut buf).expect("read");
        assert!(n > 0, "EOF before the size: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let r = f.call(r#"{"op":"resize","exec_id":"t","height":40,"width":120}"#);
    assert_eq!(r["ok"], true, "{r}");
    a.write_all(b"go\n").expect("stdin");
    let mut rest = String::new();
    let _ = a.read_to_string(&mut rest);
    let all = format!("{}{rest}", String::from_utf8_lossy(&got));
    assert!(all.contains("40 120"), "{all:?}");
    // Its own pty in the container's devpts (the init has none: /dev/pts/0 is the exec's).
    assert!(all.contains("/dev/pts/"), "{all:?}");
    assert_eq!(f.wait_on(waiter_exec(&f, "t")).exit_code, 0);
    stop(&f);
}

#[test]
fn exec_failures_have_dockers_codes() {
    require_root!();
    let f = running(|_| {});
    let r = exec_with(&f, "x", &process(&f, &["nosuchcmd"]), false);
    assert_eq!(r["exit_code"], 127, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap_or("")
            .contains(r#"exec: "nosuchcmd": executable file not found in $PATH"#),
        "{r}"
    );
    let r = exec_with(&f, "d", &process(&f, &["/bin"]), false);
    assert_eq!(r["exit_code"], 126, "{r}");
    assert!(r["error"].as_str().unwrap_or("").contains("is a directory"), "{r}");
    let r = exec_with(&f, "p", &process(&f, &["/etc/passwd"]), false);
    assert_eq!(r["exit_code"], 126, "{r}");
    let r = exec_with(&f, "m", &process(&f, &["/no/such/file"]), false);
    assert_eq!(r["exit_code"], 127, "{r}");
    // A failed exec leaves no process behind and the container runs on.
    let st = f.call(r#"{"op":"state"}"#);
    assert_eq!(st["running"], true);
    assert_eq!(st["processes"], serde_json::json!([]), "{st}");
    stop(&f);
}

#[test]
fn concurrent_execs_kill_and_wait() {
    require_root!();
    let f = running(|_| {});
    exec_ok(&f, "a", &["sh", "-c", "sleep 0.3; echo A"]);
    exec_ok(&f, "b", &["sh", "-c", "echo B; exit 2"]);
    let sleeper = exec_ok(&f, "s", &["sleep", "100"]);
    let (aa, ab) = (attach_exec(&f, "a", false), attach_exec(&f, "b", false));
    let (wa, wb, ws) = (waiter_exec(&f, "a"), waiter_exec(&f, "b"), waiter_exec(&f, "s"));
    start_exec(&f, "a");
    start_exec(&f, "b");
    start_exec(&f, "s");
    assert_eq!(demux(ab).0, "B\n");
    assert_eq!(demux(aa).0, "A\n");
    assert_eq!(f.wait_on(wa).exit_code, 0);
    assert_eq!(f.wait_on(wb).exit_code, 2);
    assert!(pid_alive(sleeper));
    let r = f.call(r#"{"op":"kill","exec_id":"s","signal":9}"#);
    assert_eq!(r["ok"], true, "{r}");
    let st = f.wait_on(ws);
    assert_eq!((st.exit_code, st.signal), (137, Some(9)));
    let r = f.call(r#"{"op":"kill","exec_id":"s","signal":9}"#);
    assert!(r["error"].as_str().unwrap_or("").contains("not running"), "{r}");
    assert_eq!(f.call(r#"{"op":"state"}"#)["running"], true);
    stop(&f);
}

#[test]
fn execs_die_with_the_init() {
    require_root!();
    let f = running(|_| {});
    let pid = exec_ok(&f, "s", &["sleep", "100"]);
    let a = attach_exec(&f, "s", false);
    let w = waiter_exec(&f, "s");
    start_exec(&f, "s");
    let wi = f.waiter();
    let r = f.call(r#"{"op":"kill","signal":9}"#);
    assert_eq!(r["ok"], true, "{r}");
    let st = f.wait_on(w);
    assert_eq!(st.exit_code, 137, "the pid namespace took the exec: {st:?}");
    assert_eq!(f.wait_on(wi).exit_code, 137);
    assert_eq!(demux(a).0, "");
    assert!(!pid_alive(pid));
    f.assert_clean();
}

#[test]
fn exec_sees_the_container() {
    require_root!();
    let f = running(|rc| {
        rc.env = vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into(), "FOO=bar".into()];
    });
    let init = f.init_pid.expect("init pid");
    let mut p = process(
        &f,
        &[
            "sh",
            "-c",
            "hostname; pwd; echo $FOO; id -u; id -G; cat /proc/1/comm; \
             for n in pid mnt uts ipc net; do readlink /proc/self/ns/$n; done; \
             cmp /proc/self/cgroup /proc/1/cgroup && echo same-cgroup",
        ],
    );
    p["cwd"] = serde_json::json!("/tmp");
    p["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [50]});
    let r = exec_with(&f, "look", &p, false);
    assert_eq!(r["ok"], true, "{r}");
    let a = attach_exec(&f, "look", false);
    start_exec(&f, "look");
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(waiter_exec(&f, "look")).exit_code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], &f.id[..12], "{out}");
    assert_eq!(lines[1], "/tmp");
    assert_eq!(lines[2], "bar");
    assert_eq!(lines[3], "1000");
    assert_eq!(lines[4], "1000 50");
    assert_eq!(lines[5], "sleep", "pid 1 is the container's init: {out}");
    for (i, n) in ["pid", "mnt", "uts", "ipc", "net"].iter().enumerate() {
        assert_eq!(lines[6 + i], ns_of(init, n), "{n} namespace: {out}");
    }
    assert_eq!(lines[11], "same-cgroup", "{out}");
    stop(&f);
}

#[test]
fn exec_is_confined_like_the_init() {
    require_root!();
    let f = running(|rc| {
        rc.cap_drop = vec!["NET_RAW".into(), "CHOWN".into()];
        rc.no_new_privileges = true;
    });
    let init = f.init_pid.expect("init pid");
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).expect("status");
    let field = |s: &str, k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    let s = exec_ok(
        &f,
        "c",
        &[
            "sh",
            "-c",
            "grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; chown 1 /tmp || echo denied",
        ],
    );
    assert!(s > 0);
    let a = attach_exec(&f, "c", false);
    start_exec(&f, "c");
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(waiter_exec(&f, "c")).exit_code, 0, "{out}\n{err}");
    for k in ["CapEff:", "CapBnd:", "Seccomp:", "NoNewPrivs:"] {
        assert_eq!(field(&out, k), field(&status, k), "{k} differs from the init's: {out}");
    }
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("denied"), "chown without CAP_CHOWN: {out}\n{err}");
    stop(&f);
}

#[test]
fn exec_in_a_user_namespace() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new();
    let base = 300_000u32;
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for d in ["upper", "work"] {
        std::os::unix::fs::chown(f.p(d), Some(base), Some(base)).expect("chown");
    }
    let mut rc = f.config(&["sleep", "300"]);
    let map = berth_runtime::IdMap {
        container_id: 0,
        host_id: base,
        size: 65536,
    };
    rc.uid_mappings = vec![map];
    rc.gid_mappings = vec![map];
    f.write_bundle(&rc, |_| {});
    f.spawn_ok();
    f.start();
    let init = f.init_pid.expect("init pid");
    exec_ok(
        &f,
        "u",
        &["sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user"],
    );
    let a = attach_exec(&f, "u", false);
    start_exec(&f, "u");
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(waiter_exec(&f, "u")).exit_code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let m: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(m, ["0", &base.to_string(), "65536"], "{out}");
    assert_eq!(lines[2], ns_of(init, "user"));
    stop(&f);
}

#[test]
fn exec_with_an_external_runtime() {
    require_root!();
    let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(runc) = runc else {
        eprintln!("SKIP: runc is not installed (apt-get install runc)");
        return;
    };
    let mut f = Fixture::new();
    f.write_bundle(&f.config(&["sleep", "300"]), |s| s.runtime_path = Some(runc.into()));
    f.spawn_ok();
    f.start();
    exec_ok(&f, "r", &["sh", "-c", "echo via-runc-exec; hostname; exit 5"]);
    let a = attach_exec(&f, "r", false);
    let w = waiter_exec(&f, "r");
    start_exec(&f, "r");
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(w).exit_code, 5, "{out}\n{err}");
    assert_eq!(out, format!("via-runc-exec\n{}\n", &f.id[..12]));
    // `runc exec --detach` runs the process at once: one that exits before the client attaches and
    // starts it still has its start answered and its output delivered.
    exec_ok(&f, "fast", &["sh", "-c", "echo early; exit 4"]);
    std::thread::sleep(Duration::from_millis(300));
    let a = attach_exec(&f, "fast", false);
    start_exec(&f, "fast");
    let (out, err) = demux(a);
    assert_eq!(f.wait_on(waiter_exec(&f, "fast")).exit_code, 4, "{out}\n{err}");
    assert_eq!(out, "early\n");
    let r = exec_with(&f, "x", &process(&f, &["nosuchcmd"]), false);
    assert_eq!(r["exit_code"], 127, "{r}");
    stop(&f);
}

/// Prints the mappings of `pid` with private pages (`BERTH_SMAPS=1`).
fn print_smaps(pid: i32) {
    if std::env::var_os("BERTH_SMAPS").is_none() {
        return;
    }
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let mut name = String::new();
    for l in smaps.lines() {
        if l.split_whitespace()
            .next()
            .is_some_and(|w| w.contains('-') && !w.ends_with(':'))
        {
            name = l.to_string();
        } else if l.starts_with("Private_") {
            let kb: u64 = l.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            if kb > 0 {
                eprintln!("{kb:>6} {l:.16} {name}");
            }
        }
    }
}

/// Private memory of a running shim before and after execs (Private_Clean + Private_Dirty of
/// `smaps_rollup`, KB). Run with the release build:
/// `BERTH_SHIM_BIN=target/release/berth-shim cargo test --test shim_exec -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_shim_private_memory() {
    require_root!();
    // A second shim maps the same binary and has run an exec too: the text pages are then shared,
    // as on a host running containers, and not counted as this shim's private memory.
    let other = running(|_| {});
    exec_ok(&other, "warm", &["true"]);
    start_exec(&other, "warm");
    let f = running(|_| {});
    let shim = f.shim_pid.expect("shim pid");
    let private = || {
        let s = std::fs::read_to_string(format!("/proc/{shim}/smaps_rollup")).expect("smaps_rollup");
        s.lines()
            .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>()
    };
    std::thread::sleep(Duration::from_millis(200));
    let idle = private();
    print_smaps(shim);
    for i in 0..5 {
        let id = format!("m{i}");
        exec_ok(&f, &id, &["sh", "-c", "echo hi"]);
        let a = attach_exec(&f, &id, false);
        start_exec(&f, &id);
        assert_eq!(demux(a).0, "hi\n");
    }
    let _running = exec_ok(&f, "bg", &["sleep", "100"]);
    start_exec(&f, "bg");
    std::thread::sleep(Duration::from_millis(200));
    let after = private();
    print_smaps(shim);
    eprintln!("shim private memory: {idle} KB idle, {after} KB after 6 execs (one running)");
    assert!(after < 300, "shim private memory {after} KB");
    stop(&f);
    stop(&other);
}
