//! Reading a container's usage from its cgroup files, v1 and v2, into one [`CgroupStats`] with the
//! figures `docker stats` shows (the engine turns it into the Engine API's stats JSON). Every file is
//! optional: a controller that is not mounted leaves its figures at zero.

use super::{keyed, read_u64, CgroupStats, V1, V2};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `io_service_bytes_recursive` entry: bytes read or written on a block device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `Read`/`Write`/`Sync`/`Async`/`Discard`/`Total` on v1, `read`/`write` on v2 (as dockerd).
    pub op: String,
    /// Bytes.
    pub value: u64,
}

/// Nanoseconds per clock tick of `cpuacct.stat` (USER_HZ is 100 on Linux).
const NS_PER_TICK: u64 = 10_000_000;

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// A flat-keyed file (`key value` per line) as a map.
fn flat_keyed(p: &Path) -> BTreeMap<String, u64> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `max` (or a missing file) is no limit (0); a number is the limit.
fn limit_or_max(p: &Path) -> u64 {
    read(p).and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn device(dev: &str) -> Option<(u64, u64)> {
    let (ma, mi) = dev.split_once(':')?;
    Some((ma.parse().ok()?, mi.parse().ok()?))
}

/// v1 `blkio.*io_service_bytes_recursive`: `8:0 Read 4096` lines and a final `Total N`.
pub(crate) fn parse_v1_blkio(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = device(f.next()?)?;
            let op = f.next()?.to_string();
            let value = f.next()?.parse().ok()?;
            Some(BlkioEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `io.stat`: `8:0 rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` lines.
pub(crate) fn parse_v2_io(s: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in s.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(device) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let op = match k {
                "rbytes" => "read",
                "wbytes" => "write",
                _ => continue,
            };
            if let Ok(value) = v.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
    }
    out
}

/// The pids listed in a `cgroup.procs` file.
pub(crate) fn read_procs(p: &Path) -> Vec<i32> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

pub(crate) fn v1(cg: &V1) -> CgroupStats {
    let mut s = CgroupStats {
        memory_limit: u64::MAX,
        ..Default::default()
    };
    if let Some(dir) = cg.dir("memory") {
        s.memory_usage = read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
        s.memory_max_usage = read_u64(&dir.join("memory.max_usage_in_bytes")).unwrap_or(0);
        s.memory_failcnt = read_u64(&dir.join("memory.failcnt")).unwrap_or(0);
        s.memory_limit = read_u64(&dir.join("memory.limit_in_bytes")).unwrap_or(u64::MAX);
        s.memory_stat = flat_keyed(&dir.join("memory.stat"));
    }
    if let Some(dir) = cg.dir("cpuacct") {
        s.cpu_total_ns = read_u64(&dir.join("cpuacct.usage")).unwrap_or(0);
        s.cpu_percpu_ns = read(&dir.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let st = dir.join("cpuacct.stat");
        s.cpu_user_ns = keyed(&st, "user").unwrap_or(0).saturating_mul(NS_PER_TICK);
        s.cpu_system_ns = keyed(&st, "system").unwrap_or(0).saturating_mul(NS_PER_TICK);
    }
    if let Some(dir) = cg.dir("cpu") {
        let st = flat_keyed(&dir.join("cpu.stat"));
        s.throttling_periods = st.get("nr_periods").copied().unwrap_or(0);
        s.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.throttled_time_ns = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(dir) = cg.dir("pids") {
        s.pids_current = read_u64(&dir.join("pids.current")).unwrap_or(0);
        s.pids_limit = limit_or_max(&dir.join("pids.max"));
    }
    if let Some(dir) = cg.dir("blkio") {
        // The throttle files count every I/O (the cfq/bfq ones only what their scheduler saw).
        for f in [
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.io_service_bytes_recursive",
        ] {
            if let Some(txt) = read(&dir.join(f)) {
                s.blkio = parse_v1_blkio(&txt);
                break;
            }
        }
    }
    s
}

pub(crate) fn v2(cg: &V2) -> CgroupStats {
    let dir = &cg.dir;
    let cpu = flat_keyed(&dir.join("cpu.stat"));
    let usec = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
    CgroupStats {
        memory_usage: read_u64(&dir.join("memory.current")).unwrap_or(0),
        memory_max_usage: read_u64(&dir.join("memory.peak")).unwrap_or(0),
        memory_failcnt: keyed(&dir.join("memory.events"), "max").unwrap_or(0),
        memory_limit: read(&dir.join("memory.max"))
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(u64::MAX),
        memory_stat: flat_keyed(&dir.join("memory.stat")),
        pids_current: read_u64(&dir.join("pids.current")).unwrap_or(0),
        pids_limit: limit_or_max(&dir.join("pids.max")),
        cpu_total_ns: usec("usage_usec"),
        cpu_percpu_ns: Vec::new(),
        cpu_user_ns: usec("user_usec"),
        cpu_system_ns: usec("system_usec"),
        throttling_periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time_ns: usec("throttled_usec"),
        blkio: parse_v2_io(&read(&dir.join("io.stat")).unwrap_or_default()),
    }
}

/// The file listing a v1 cgroup's processes (the pids hierarchy, else any).
pub(crate) fn v1_procs_file(cg: &V1) -> Option<PathBuf> {
    cg.dir("pids")
        .or_else(|| cg.hierarchies.first().map(|h| h.dir.as_path()))
        .map(|d| d.join("cgroup.procs"))
}

#[cfg(test)]
mod tests {
    use super::super::open;
    use super::*;

    fn put(dir: &Path, name: &str, content: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), content).unwrap();
    }

    #[test]
    fn v1_fake_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu", "cpuacct", "pids", "blkio"] {
            std::fs::create_dir_all(t.path().join(c)).unwrap();
        }
        let cg = open(t.path(), "/berth/c1").unwrap();
        let d = |c: &str| t.path().join(c).join("berth/c1");
        put(&d("memory"), "memory.usage_in_bytes", "2097152\n");
        put(&d("memory"), "memory.max_usage_in_bytes", "3145728\n");
        put(&d("memory"), "memory.limit_in_bytes", "67108864\n");
        put(
            &d("memory"),
            "memory.stat",
            "cache 4096\nrss 8192\ntotal_inactive_file 1024\n",
        );
        put(&d("cpuacct"), "cpuacct.usage", "123456789\n");
        put(&d("cpuacct"), "cpuacct.usage_percpu", "100000000 23456789 \n");
        put(&d("cpuacct"), "cpuacct.stat", "user 7\nsystem 3\n");
        put(
            &d("cpu"),
            "cpu.stat",
            "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n",
        );
        put(&d("pids"), "pids.current", "3\n");
        put(&d("pids"), "pids.max", "max\n");
        put(&d("pids"), "cgroup.procs", "10\n11\n");
        put(
            &d("blkio"),
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n",
        );
        let s = cg.stats().unwrap();
        assert_eq!(
            (s.memory_usage, s.memory_max_usage, s.memory_limit),
            (2097152, 3145728, 67108864)
        );
        assert_eq!(s.memory_stat.get("cache"), Some(&4096));
        assert_eq!(s.cpu_total_ns, 123456789);
        assert_eq!(s.cpu_percpu_ns, vec![100000000, 23456789]);
        assert_eq!((s.cpu_user_ns, s.cpu_system_ns), (70_000_000, 30_000_000));
        assert_eq!(
            (s.throttling_periods, s.throttled_periods, s.throttled_time_ns),
            (10, 2, 5000)
        );
        assert_eq!((s.pids_current, s.pids_limit), (3, 0));
        assert_eq!(s.blkio.len(), 3);
        assert_eq!(
            s.blkio[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(cg.pids().unwrap(), vec![10, 11]);
    }

    #[test]
    fn v2_fake_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu io memory pids").unwrap();
        let cg = open(t.path(), "/berth/c2").unwrap();
        let d = t.path().join("berth/c2");
        put(&d, "memory.current", "1048576\n");
        put(&d, "memory.peak", "2097152\n");
        put(&d, "memory.max", "max\n");
        put(&d, "memory.stat", "anon 4096\nfile 8192\ninactive_file 100\n");
        put(
            &d,
            "cpu.stat",
            "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        );
        put(&d, "pids.current", "2\n");
        put(&d, "pids.max", "100\n");
        put(
            &d,
            "io.stat",
            "8:0 rbytes=4096 wbytes=1024 rios=1 wios=1 dbytes=0 dios=0\n",
        );
        put(&d, "cgroup.procs", "42\n");
        let s = cg.stats().unwrap();
        assert_eq!(
            (s.memory_usage, s.memory_max_usage, s.memory_limit),
            (1048576, 2097152, u64::MAX)
        );
        assert_eq!(s.memory_stat.get("inactive_file"), Some(&100));
        assert_eq!(
            (s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns),
            (2_000_000, 1_500_000, 500_000)
        );
        assert!(s.cpu_percpu_ns.is_empty());
        assert_eq!(
            (s.throttling_periods, s.throttled_periods, s.throttled_time_ns),
            (4, 1, 7000)
        );
        assert_eq!((s.pids_current, s.pids_limit), (2, 100));
        let ops: Vec<_> = s.blkio.iter().map(|e| (e.op.as_str(), e.value)).collect();
        assert_eq!(ops, vec![("read", 4096), ("write", 1024)]);
        assert_eq!(cg.pids().unwrap(), vec![42]);
    }
}
