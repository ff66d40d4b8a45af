//! Many containers created, started and removed at once leave nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;

#[test]
fn fifty_concurrent_lifecycles_leave_no_strays() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let d = &d;
                s.spawn(move || {
                    let name = format!("c{i}");
                    let r = d.docker(&["run", "-d", "--name", &name, "bb", "sleep", "30"]);
                    assert_eq!(r.code, 0, "{r:?}");
                    r.stdout.trim().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let running = d.docker(&["ps", "-q"]);
    assert_eq!(running.stdout.lines().count(), 50, "{running:?}");
    std::thread::scope(|s| {
        for id in &ids {
            let d = &d;
            s.spawn(move || {
                let r = d.docker(&["rm", "-f", id]);
                assert_eq!(r.code, 0, "{r:?}");
            });
        }
    });
    assert_eq!(d.docker(&["ps", "-aq"]).stdout.trim(), "");
    // No mounts, no processes besides the daemon itself, no cgroups of these containers.
    // Only the daemon's own tmpfs (the exec root, the build contexts') may remain mounted.
    let exec_root = format!(" {}/run ", d.root.display());
    let contexts = format!(" {}/data/builder/contexts ", d.root.display());
    let strays = || {
        d.own_mounts()
            .into_iter()
            .filter(|m| !m.contains(&exec_root) && !m.contains(&contexts))
            .collect::<Vec<_>>()
    };
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || strays().is_empty()),
        "{:?}",
        strays()
    );
    let procs = d.own_processes();
    assert!(procs.len() <= 1, "stray processes: {procs:?}");
    for id in &ids {
        for base in [
            "/sys/fs/cgroup/memory/berth",
            "/sys/fs/cgroup/pids/berth",
            "/sys/fs/cgroup/berth",
        ] {
            let p = std::path::Path::new(base).join(id);
            assert!(!p.exists(), "stray cgroup {}", p.display());
        }
    }
}
