//! `GET /containers/{id}/stats` in the Engine API's shape (`ContainerStatsResponse`): one sample of a
//! container's cgroup, with the host's CPU time beside it so clients can compute a CPU percentage
//! from two samples (`cpu_stats` against `precpu_stats`), as `docker stats` does.

use berth_runtime::cgroups::CgroupStats;
use serde_json::{json, Value};

/// Docker's zero time, used for `read`/`preread` when there is no sample.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One reading of a container's cgroup and of the host's CPU counters.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// RFC 3339 time of the reading.
    pub read: String,
    /// The cgroup's figures.
    pub cgroup: CgroupStats,
    /// Host CPU time (all CPUs), nanoseconds, from `/proc/stat`.
    pub system_cpu_ns: u64,
    /// CPUs online.
    pub online_cpus: u64,
    /// Host memory (`MemTotal`), bytes: the limit shown when the cgroup has none.
    pub host_memory: u64,
}

/// Host CPU time in nanoseconds and the number of CPUs, from the text of `/proc/stat`
/// (user+nice+system+idle+iowait+irq+softirq of the `cpu` line, in USER_HZ ticks, as dockerd sums).
pub fn parse_proc_stat(s: &str) -> (u64, u64) {
    let mut total = 0;
    let mut cpus = 0;
    for l in s.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let ticks: u64 = f.take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
                total = ticks.saturating_mul(10_000_000);
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// `MemTotal` of `/proc/meminfo`, bytes.
pub fn parse_meminfo_total(s: &str) -> u64 {
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
        .unwrap_or(0)
}

/// Reads the host's figures for a sample.
pub fn host_figures() -> (u64, u64, u64) {
    let (cpu, cpus) = parse_proc_stat(&std::fs::read_to_string("/proc/stat").unwrap_or_default());
    let mem = parse_meminfo_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
    (cpu, cpus.max(1), mem)
}

fn cpu_json(s: Option<&Sample>) -> Value {
    let Some(s) = s else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    let c = &s.cgroup;
    let mut usage = json!({
        "total_usage": c.cpu_total_ns,
        "usage_in_kernelmode": c.cpu_system_ns,
        "usage_in_usermode": c.cpu_user_ns,
    });
    if !c.cpu_percpu_ns.is_empty() {
        usage["percpu_usage"] = json!(c.cpu_percpu_ns);
    }
    // dockerd counts the CPUs the container may use; v1 reports one usage figure per CPU.
    let online = if c.cpu_percpu_ns.is_empty() {
        s.online_cpus
    } else {
        c.cpu_percpu_ns.len() as u64
    };
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": online,
        "throttling_data": {
            "periods": c.throttling_periods,
            "throttled_periods": c.throttled_periods,
            "throttled_time": c.throttled_time_ns,
        },
    })
}

/// The Engine API's stats object for `cur`, with `pre` as the previous sample (`precpu_stats`,
/// `preread`); `None` for `cur` is a container that does not run (zeros, as dockerd answers).
pub fn to_json(name: &str, id: &str, cur: Option<&Sample>, pre: Option<&Sample>) -> Value {
    let read = cur.map(|s| s.read.as_str()).unwrap_or(ZERO_TIME);
    let preread = pre.map(|s| s.read.as_str()).unwrap_or(ZERO_TIME);
    let mut v = json!({
        "name": format!("/{}", name.trim_start_matches('/')),
        "id": id,
        "read": read,
        "preread": preread,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur),
        "precpu_stats": cpu_json(pre),
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": null,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "memory_stats": {},
    });
    let Some(s) = cur else { return v };
    let c = &s.cgroup;
    let mut limit = c.memory_limit;
    if s.host_memory > 0 && limit > s.host_memory {
        limit = s.host_memory;
    }
    let mut mem = json!({ "usage": c.memory_usage, "stats": c.memory_stat, "limit": limit });
    if c.memory_max_usage > 0 {
        mem["max_usage"] = json!(c.memory_max_usage);
    }
    if c.memory_failcnt > 0 {
        mem["failcnt"] = json!(c.memory_failcnt);
    }
    v["memory_stats"] = mem;
    let mut pids = json!({ "current": c.pids_current });
    if c.pids_limit > 0 {
        pids["limit"] = json!(c.pids_limit);
    }
    v["pids_stats"] = pids;
    let io: Vec<Value> = c
        .blkio
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect();
    v["blkio_stats"]["io_service_bytes_recursive"] = json!(io);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat() {
        let s =
            "cpu  100 0 50 1000 10 0 5 7 0 0\ncpu0 50 0 25 500 5 0 2 3 0 0\ncpu1 50 0 25 500 5 0 3 4 0 0\nintr 1 2\n";
        assert_eq!(parse_proc_stat(s), (1165 * 10_000_000, 2));
        assert_eq!(
            parse_meminfo_total("MemTotal:        8000000 kB\nMemFree: 1 kB\n"),
            8_192_000_000
        );
    }

    fn v1_sample() -> Sample {
        let t = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu", "cpuacct", "pids", "blkio"] {
            std::fs::create_dir_all(t.path().join(c).join("berth/c1")).unwrap();
        }
        let w = |c: &str, f: &str, v: &str| std::fs::write(t.path().join(c).join("berth/c1").join(f), v).unwrap();
        w("memory", "memory.usage_in_bytes", "2097152\n");
        w("memory", "memory.limit_in_bytes", "9223372036854771712\n");
        w("memory", "memory.stat", "cache 4096\nrss 8192\n");
        w("cpuacct", "cpuacct.usage", "5000\n");
        w("cpuacct", "cpuacct.usage_percpu", "3000 2000\n");
        w("cpuacct", "cpuacct.stat", "user 1\nsystem 2\n");
        w("pids", "pids.current", "2\n");
        w("pids", "pids.max", "50\n");
        w(
            "blkio",
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\nTotal 4096\n",
        );
        let cg = berth_runtime::cgroups::open(t.path(), "/berth/c1").unwrap();
        Sample {
            read: "2026-01-01T00:00:01Z".into(),
            cgroup: cg.stats().unwrap(),
            system_cpu_ns: 2_000_000_000,
            online_cpus: 4,
            host_memory: 1 << 30,
        }
    }

    #[test]
    fn docker_shape_from_a_v1_hierarchy() {
        let cur = v1_sample();
        let mut pre = cur.clone();
        pre.read = "2026-01-01T00:00:00Z".into();
        pre.cgroup.cpu_total_ns = 1000;
        let v = to_json("web", "abc", Some(&cur), Some(&pre));
        assert_eq!(v["name"], "/web");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["read"], "2026-01-01T00:00:01Z");
        assert_eq!(v["preread"], "2026-01-01T00:00:00Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 5000);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["percpu_usage"], json!([3000, 2000]));
        assert_eq!(v["cpu_stats"]["cpu_usage"]["usage_in_usermode"], 10_000_000);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["usage_in_kernelmode"], 20_000_000);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 2_000_000_000u64);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 1000);
        assert_eq!(v["cpu_stats"]["throttling_data"]["periods"], 0);
        // Unlimited memory shows the host's memory, as dockerd.
        assert_eq!(v["memory_stats"]["limit"], 1u64 << 30);
        assert_eq!(v["memory_stats"]["usage"], 2097152);
        assert_eq!(v["memory_stats"]["stats"]["cache"], 4096);
        assert_eq!(v["pids_stats"], json!({"current": 2, "limit": 50}));
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"],
            json!([{"major": 8, "minor": 0, "op": "Read", "value": 4096}])
        );
    }

    #[test]
    fn docker_shape_from_a_v2_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu io memory pids").unwrap();
        let d = t.path().join("berth/c2");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("memory.current"), "1048576\n").unwrap();
        std::fs::write(d.join("memory.max"), "67108864\n").unwrap();
        std::fs::write(d.join("memory.stat"), "anon 4096\ninactive_file 100\n").unwrap();
        std::fs::write(d.join("cpu.stat"), "usage_usec 3\nuser_usec 2\nsystem_usec 1\n").unwrap();
        std::fs::write(d.join("pids.current"), "1\n").unwrap();
        std::fs::write(d.join("pids.max"), "max\n").unwrap();
        let cg = berth_runtime::cgroups::open(t.path(), "/berth/c2").unwrap();
        let s = Sample {
            read: "2026-01-01T00:00:01Z".into(),
            cgroup: cg.stats().unwrap(),
            system_cpu_ns: 7,
            online_cpus: 2,
            host_memory: 1 << 30,
        };
        let v = to_json("web", "abc", Some(&s), None);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 3000);
        assert!(v["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["memory_stats"]["limit"], 67108864);
        assert_eq!(v["memory_stats"]["stats"]["inactive_file"], 100);
        assert_eq!(v["pids_stats"], json!({"current": 1}));
        assert_eq!(v["preread"], ZERO_TIME);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    }

    #[test]
    fn a_stopped_container_is_zeros() {
        let v = to_json("web", "abc", None, None);
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["memory_stats"], json!({}));
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    }
}
