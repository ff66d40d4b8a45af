//! The cgroup manager against the host's real hierarchy (v1 on the test machines), as root.

use berth_runtime::cgroups::{self, CgroupManager};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A name no other test in this process (nor another process) uses: the pid, then a counter (a clock
/// reading alone repeats when two threads ask in the same tick).
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

#[test]
fn real_hierarchy_limits_stats_and_removal() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: needs root");
        return;
    }
    let root = Path::new(cgroups::DEFAULT_ROOT);
    let path = format!("/berth-test/cg-{}", unique());
    let cg = cgroups::open(root, &path).expect("open");
    let resources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": 33554432},
        "cpu": {"shares": 256, "quota": 50000, "period": 100000},
        "pids": {"limit": 20}
    }))
    .expect("resources");
    cg.create(Some(&resources)).expect("create");
    let mut child = Command::new("/bin/sleep").arg("30").spawn().expect("spawn sleep");
    let pid = child.id() as i32;
    let guard = scopeguard(cg.as_ref(), &mut child);
    guard.cg.add_process(pid).expect("add");
    let procs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    assert!(procs.contains(&path), "{procs}");
    let stats = guard.cg.stats().expect("stats");
    assert_eq!(stats.pids_current, 1);
    assert_eq!(stats.memory_limit, 33554432);
    assert!(!guard.cg.oom_killed());
    guard.cg.set_frozen(true).expect("freeze");
    if !root.join("cgroup.controllers").exists() {
        let st = std::fs::read_to_string(
            root.join("freezer")
                .join(path.trim_start_matches('/'))
                .join("freezer.state"),
        )
        .expect("freezer.state");
        assert_eq!(st.trim(), "FROZEN");
    }
    guard.cg.set_frozen(false).expect("thaw");
    if root.join("cgroup.controllers").exists() {
        let max = std::fs::read_to_string(root.join(path.trim_start_matches('/')).join("cpu.max")).expect("cpu.max");
        assert_eq!(max.trim(), "50000 100000");
    } else {
        let q = std::fs::read_to_string(
            root.join("cpu")
                .join(path.trim_start_matches('/'))
                .join("cpu.cfs_quota_us"),
        )
        .expect("quota");
        assert_eq!(q.trim(), "50000");
        let mounts = guard.cg.container_mounts();
        assert!(mounts
            .iter()
            .any(|(n, d)| n == "memory" && d.ends_with(path.trim_start_matches('/'))));
    }
    drop(guard);
    let memdir = if root.join("cgroup.controllers").exists() {
        root.join(path.trim_start_matches('/'))
    } else {
        root.join("memory").join(path.trim_start_matches('/'))
    };
    assert!(!memdir.exists(), "cgroup not removed");
}

struct Guard<'a> {
    cg: &'a dyn CgroupManager,
    child: &'a mut std::process::Child,
}

fn scopeguard<'a>(cg: &'a dyn CgroupManager, child: &'a mut std::process::Child) -> Guard<'a> {
    Guard { cg, child }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.cg.remove().is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
