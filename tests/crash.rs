//! Crash consistency: berthd is killed with SIGKILL at spread-out moments of `create`, `run -d` and
//! `rm -f` (a fixed number of trials each), restarted, and must then agree with what it answered and
//! with what runs: an acknowledged change survives; a running container has a live process; no shim
//! runs for a container that is not running; no container directory, writable layer or shim is left
//! without a record; and a final `rm -f` leaves no process, cgroup, mount or directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

const TRIALS: u64 = 16;

/// A spread of kill delays over the first ~60 ms (a client's whole request), the same every run:
/// each operation gets every 3.75 ms step once, shifted by a fraction of a millisecond per trial.
fn delay(trial: u64, op: u64) -> Duration {
    Duration::from_micros((trial * 3 + op * 5) % TRIALS * 3_750 + trial * 200)
}

/// What the restarted daemon reports: (id, name, status, pid) of every container.
fn containers(d: &Daemon) -> Vec<(String, String, String, i64)> {
    let list = d.api_json("/containers/json?all=1");
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["Id"].as_str().unwrap().to_string();
            let inspect = d.api_json(&format!("/containers/{id}/json"));
            (
                id,
                c["Names"][0].as_str().unwrap().trim_start_matches('/').to_string(),
                inspect["State"]["Status"].as_str().unwrap().to_string(),
                inspect["State"]["Pid"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Container IDs whose shim runs (the shim's command line names its bundle).
fn shim_ids(d: &Daemon) -> HashSet<String> {
    let bundles = d.root.join("run").join("bundles");
    let needle = format!("{}/", bundles.display());
    d.own_processes()
        .into_iter()
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let rest = &cmd[cmd.find(&needle)? + needle.len()..];
            Some(rest.split([' ', '/']).next()?.to_string())
        })
        .collect()
}

fn dir_names(p: &std::path::Path) -> HashSet<String> {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Everything the daemon says agrees with what is on disk and what runs.
fn check_consistent(d: &Daemon, what: &str) {
    // A container killed just before the crash may still be reported running for the moment its
    // shim needs to report the exit; the daemon must converge, quickly.
    let live = |pid: i64| pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists();
    let converged = eventually(Duration::from_secs(5), || {
        containers(d)
            .iter()
            .all(|(_, _, status, pid)| status != "running" || live(*pid))
    });
    let list = containers(d);
    assert!(
        converged,
        "{what}: containers reported running without a live process: {list:?}\n{}",
        d.log()
    );
    let ids: HashSet<String> = list.iter().map(|c| c.0.clone()).collect();
    // Shims end a moment after their container; allow them that moment.
    let running: HashSet<String> = list.iter().filter(|c| c.2 == "running").map(|c| c.0.clone()).collect();
    assert!(
        eventually(Duration::from_secs(10), || shim_ids(d).is_subset(&running)),
        "{what}: shims {:?} run for containers that are not running {:?}\n{}",
        shim_ids(d),
        list,
        d.log()
    );
    let data = d.root.join("data");
    let dirs = dir_names(&data.join("containers"));
    assert_eq!(dirs, ids, "{what}: container directories and records differ");
    for id in &dirs {
        assert!(data.join("containers").join(id).join("config.v2.json").exists());
    }
    assert!(
        eventually(Duration::from_secs(10), || dir_names(&data.join("snapshots/rw"))
            .is_subset(&ids)),
        "{what}: writable layers {:?} without a container ({ids:?})",
        dir_names(&data.join("snapshots/rw"))
    );
}

/// Starts `args` as a client, kills the daemon after `after`, restarts it; returns whether the
/// client had its answer (exit 0) before the kill.
fn crash_during(d: &mut Daemon, args: &[&str], after: Duration) -> bool {
    let child = d
        .berth_cmd(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    d.kill9();
    let out = child.wait_with_output().unwrap();
    d.restart();
    eprintln!(
        "berth {} killed after {after:?}: {}",
        args.join(" "),
        if out.status.success() {
            "answered"
        } else {
            "not answered"
        }
    );
    out.status.success()
}

fn status_of(d: &Daemon, name: &str) -> Option<String> {
    let (code, body) = d.api("GET", &format!("/containers/{name}/json"), None);
    if code == 404 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    Some(v["State"]["Status"].as_str().unwrap().to_string())
}

#[test]
fn kill9_at_random_points_of_create_start_and_rm() {
    let mut d = Daemon::start();
    d.load_busybox("bb:latest");
    for trial in 0..TRIALS {
        let name = format!("c{trial}");
        let acked = crash_during(
            &mut d,
            &["create", "--name", &name, "bb", "sleep", "1000"],
            delay(trial, 0),
        );
        let what = format!("create trial {trial} (acknowledged: {acked})");
        if acked {
            assert_eq!(status_of(&d, &name).as_deref(), Some("created"), "{what}\n{}", d.log());
        }
        check_consistent(&d, &what);

        let name = format!("r{trial}");
        let acked = crash_during(
            &mut d,
            &["run", "-d", "--name", &name, "bb", "sleep", "1000"],
            delay(trial, 1),
        );
        let what = format!("run trial {trial} (acknowledged: {acked})");
        if acked {
            assert_eq!(status_of(&d, &name).as_deref(), Some("running"), "{what}\n{}", d.log());
        }
        check_consistent(&d, &what);
        // A container whose start was interrupted can be started (no second shim) and removed.
        if status_of(&d, &name).as_deref() == Some("created") {
            let r = d.berth(&["start", &name]);
            assert_eq!(r.code, 0, "{what}: {r:?}");
            check_consistent(&d, &what);
        }

        let name = format!("x{trial}");
        let r = d.berth(&["run", "-d", "--name", &name, "bb", "sleep", "1000"]);
        assert_eq!(r.code, 0, "{r:?}");
        let acked = crash_during(&mut d, &["rm", "-f", &name], delay(trial, 2));
        let what = format!("rm trial {trial} (acknowledged: {acked})");
        if acked {
            assert_eq!(status_of(&d, &name), None, "{what}\n{}", d.log());
        }
        check_consistent(&d, &what);
    }

    // Everything goes, and leaves nothing behind.
    let ids: Vec<String> = containers(&d).into_iter().map(|c| c.0).collect();
    for id in &ids {
        let r = d.berth(&["rm", "-f", id]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    check_consistent(&d, "after rm -f of everything");
    assert!(containers(&d).is_empty());
    assert!(
        eventually(Duration::from_secs(10), || shim_ids(&d).is_empty()),
        "shims left: {:?}",
        shim_ids(&d)
    );
    let exec_root = format!(" {} ", d.root.join("run").display());
    let contexts = format!(" {} ", d.data_root().join("builder").join("contexts").display());
    let mounts: Vec<String> = d
        .own_mounts()
        .into_iter()
        .filter(|m| !m.contains(&exec_root) && !m.contains(&contexts))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    for id in &ids {
        for cg in [
            "/sys/fs/cgroup/memory/berth",
            "/sys/fs/cgroup/pids/berth",
            "/sys/fs/cgroup/berth",
        ] {
            let p = std::path::Path::new(cg).join(id);
            assert!(
                eventually(Duration::from_secs(5), || !p.exists()),
                "cgroup left: {}",
                p.display()
            );
        }
    }
    assert!(
        eventually(Duration::from_secs(10), || dir_names(&d.root.join("data/trash"))
            .is_empty()),
        "trash not emptied"
    );
    assert!(dir_names(&d.root.join("run/bundles")).is_empty(), "bundles left");
}
