//! Cgroup management for one container: v1 (one hierarchy per controller) and v2 (unified), selected
//! by probing the cgroup root. Constructed with the root path so tests can use a fake hierarchy.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod stats;
pub use stats::BlkioEntry;

/// The usual cgroup root.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// Usage figures of a container's cgroup (what `docker stats` shows; see `cgroups/stats.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Highest memory use seen, bytes (v1 `max_usage_in_bytes`, v2 `memory.peak`; 0 if unknown).
    pub memory_max_usage: u64,
    /// Times the limit was hit (v1 `failcnt`, v2 the `max` event).
    pub memory_failcnt: u64,
    /// Memory limit, bytes (`u64::MAX` when unlimited or unknown).
    pub memory_limit: u64,
    /// `memory.stat`, key by key.
    pub memory_stat: std::collections::BTreeMap<String, u64>,
    /// Number of tasks.
    pub pids_current: u64,
    /// `pids.max` (0 when unlimited).
    pub pids_limit: u64,
    /// CPU time used, nanoseconds.
    pub cpu_total_ns: u64,
    /// CPU time per CPU, nanoseconds (v1 only).
    pub cpu_percpu_ns: Vec<u64>,
    /// CPU time in user mode, nanoseconds.
    pub cpu_user_ns: u64,
    /// CPU time in kernel mode, nanoseconds.
    pub cpu_system_ns: u64,
    /// CFS periods elapsed.
    pub throttling_periods: u64,
    /// CFS periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    pub throttled_time_ns: u64,
    /// Bytes read and written per device.
    pub blkio: Vec<BlkioEntry>,
}

/// One container's cgroup.
pub trait CgroupManager {
    /// Creates the cgroup (all controllers) and applies the resource limits.
    fn create(&self, resources: Option<&LinuxResources>) -> Result<()>;
    /// Moves a process (and its future children) into the cgroup.
    fn add_process(&self, pid: i32) -> Result<()>;
    /// Whether the kernel's OOM killer killed a process of the cgroup.
    fn oom_killed(&self) -> bool;
    /// Current usage.
    fn stats(&self) -> Result<CgroupStats>;
    /// The processes in the cgroup (`docker top`).
    fn pids(&self) -> Result<Vec<i32>>;
    /// Removes the cgroup, retrying briefly while exiting tasks drain.
    fn remove(&self) -> Result<()>;
    /// Freezes (`docker pause`) or thaws (`docker unpause`) every task of the cgroup; returns once the
    /// kernel reports the new state.
    fn set_frozen(&self, frozen: bool) -> Result<()>;
    /// What the container sees at `/sys/fs/cgroup`: `(name, host directory)` pairs; the name is empty for
    /// v2 (the directory itself is mounted there) and the hierarchy's mount name for v1.
    fn container_mounts(&self) -> Vec<(String, PathBuf)>;
    /// Files a single-threaded process writes `0` to, each, to move itself into the cgroup; empty
    /// when the cgroup has none (then [`CgroupManager::add_process`] is the way in).
    ///
    /// On v1 these are the hierarchies' `tasks` files: a thread moving itself there does not take the
    /// kernel's global threadgroup lock, whose write side waits for an RCU grace period (several
    /// milliseconds per `cgroup.procs` write of a pid); its children are born in the cgroup.
    fn self_join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Picks v2 when `root/cgroup.controllers` exists, else v1; `path` is the spec's `cgroupsPath`.
pub fn open(root: &Path, path: &str) -> Result<Box<dyn CgroupManager>> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return Err(Error::Invalid(format!("invalid cgroups path {path:?}")));
    }
    if root.join("cgroup.controllers").exists() {
        Ok(Box::new(V2 {
            root: root.to_path_buf(),
            dir: root.join(rel),
        }))
    } else {
        Ok(Box::new(V1::detect(root, rel)?))
    }
}

fn cg_err(op: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Cgroup {
        op,
        path: path.display().to_string(),
        source,
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| cg_err("write", path, e))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key N` in a flat-keyed file such as `memory.events` or `memory.oom_control`.
fn keyed(path: &Path, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Polls a cgroup file until `done` holds for its (trimmed) content, for up to two seconds.
fn wait_for(path: &Path, done: impl Fn(&str) -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_micros(100);
    loop {
        let s = std::fs::read_to_string(path).map_err(|e| cg_err("read", path, e))?;
        if done(s.trim()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(cg_err(
                "wait for",
                path,
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

fn rmdir_retry(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(cg_err("remove", dir, e)),
        }
    }
}

/// One v1 hierarchy: where it is mounted, which controllers it carries, and the container's directory.
#[derive(Debug, Clone)]
struct Hierarchy {
    mount: PathBuf,
    controllers: Vec<String>,
    dir: PathBuf,
}

/// cgroup v1: one directory per mounted hierarchy.
#[derive(Debug, Clone)]
pub struct V1 {
    hierarchies: Vec<Hierarchy>,
}

impl V1 {
    /// Finds the v1 hierarchies mounted under `root` (from `/proc/self/mountinfo`, or, for a fake root
    /// with no mounts, its sub-directories named after controllers).
    pub fn detect(root: &Path, rel: &str) -> Result<Self> {
        let mut hierarchies = Vec::new();
        if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
            for line in mi.lines() {
                let Some((pre, post)) = line.split_once(" - ") else {
                    continue;
                };
                let mut post = post.split(' ');
                if post.next() != Some("cgroup") {
                    continue;
                }
                let super_opts = post.nth(1).unwrap_or("");
                let Some(mp) = pre.split(' ').nth(4) else { continue };
                let mount = PathBuf::from(mp);
                if mount.parent() != Some(root) {
                    continue;
                }
                let controllers = super_opts
                    .split(',')
                    .filter_map(|o| match o {
                        "rw" | "ro" => None,
                        o if o.starts_with("name=") => Some(o.to_string()),
                        o if o.contains('=') => None,
                        o => Some(o.to_string()),
                    })
                    .collect();
                hierarchies.push(Hierarchy {
                    dir: mount.join(rel),
                    mount,
                    controllers,
                });
            }
        }
        if hierarchies.is_empty() {
            let rd = std::fs::read_dir(root).map_err(|e| cg_err("read", root, e))?;
            for e in rd.flatten() {
                let Ok(ft) = e.file_type() else { continue };
                if !ft.is_dir() {
                    continue;
                }
                let name = e.file_name().to_string_lossy().into_owned();
                let mount = e.path();
                hierarchies.push(Hierarchy {
                    dir: mount.join(rel),
                    controllers: name.split(',').map(str::to_string).collect(),
                    mount,
                });
            }
        }
        hierarchies.sort_by(|a, b| a.mount.cmp(&b.mount));
        if hierarchies.is_empty() {
            return Err(Error::Invalid(format!(
                "no cgroup hierarchies found under {}",
                root.display()
            )));
        }
        Ok(V1 { hierarchies })
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.dir.as_path())
    }

    /// A new cpuset cgroup starts with empty `cpus`/`mems` and refuses tasks: copy them from the parent.
    fn init_cpuset(h: &Hierarchy) -> Result<()> {
        let rel = h.dir.strip_prefix(&h.mount).unwrap_or(Path::new(""));
        let mut cur = h.mount.clone();
        for comp in rel.components() {
            let parent = cur.clone();
            cur.push(comp);
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let p = cur.join(f);
                let mine = std::fs::read_to_string(&p).unwrap_or_default();
                if mine.trim().is_empty() {
                    let theirs = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                    if !theirs.trim().is_empty() {
                        write(&p, theirs.trim())?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let ty = d.typ().map(|t| t.as_str().to_string()).unwrap_or_else(|| "a".into());
    let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
    format!(
        "{ty} {}:{} {}",
        num(d.major()),
        num(d.minor()),
        d.access().as_deref().unwrap_or("rwm")
    )
}

impl CgroupManager for V1 {
    fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        for h in &self.hierarchies {
            std::fs::create_dir_all(&h.dir).map_err(|e| cg_err("create", &h.dir, e))?;
            if h.controllers.iter().any(|c| c == "cpuset") {
                Self::init_cpuset(h)?;
            }
        }
        let Some(r) = resources else { return Ok(()) };
        if let (Some(m), Some(dir)) = (r.memory(), self.dir("memory")) {
            let mem = dir.join("memory.limit_in_bytes");
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            let swap = m.swap().filter(|_| memsw.exists());
            // The kernel keeps memory <= memory+swap at every write: when the limit grows (an
            // update), memory+swap must grow first.
            let current = read_u64(&mem).unwrap_or(u64::MAX);
            let grows = m.limit().is_some_and(|l| l < 0 || l as u64 > current);
            if let (true, Some(swap)) = (grows, swap) {
                write(&memsw, &swap.to_string())?;
            }
            if let Some(limit) = m.limit() {
                write(&mem, &limit.to_string())?;
            }
            if let (false, Some(swap)) = (grows, swap) {
                write(&memsw, &swap.to_string())?;
            }
        }
        if let (Some(c), Some(dir)) = (r.cpu(), self.dir("cpu")) {
            if let Some(s) = c.shares() {
                write(&dir.join("cpu.shares"), &s.to_string())?;
            }
            if let Some(p) = c.period() {
                write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = c.quota() {
                write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
        }
        if let (Some(p), Some(dir)) = (r.pids(), self.dir("pids")) {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            write(&dir.join("pids.max"), &v)?;
        }
        if let (Some(devs), Some(dir)) = (r.devices(), self.dir("devices")) {
            // One rule per write(2), on files opened once (this is on the `docker run` path).
            let open = |name: &str| {
                let p = dir.join(name);
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&p)
                    .map_err(|e| cg_err("open", &p, e))
            };
            let (mut allow, mut deny) = (None, None);
            for d in devs {
                let (slot, name) = if d.allow() {
                    (&mut allow, "devices.allow")
                } else {
                    (&mut deny, "devices.deny")
                };
                let f = match slot {
                    Some(f) => f,
                    None => slot.insert(open(name)?),
                };
                let rule = format!("{}\n", device_rule(d));
                std::io::Write::write_all(f, rule.as_bytes()).map_err(|e| cg_err("write", &dir.join(name), e))?;
            }
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for h in &self.hierarchies {
            write(&h.dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| h.dir.join("tasks")).collect()
    }

    fn oom_killed(&self) -> bool {
        let Some(dir) = self.dir("memory") else { return false };
        match keyed(&dir.join("memory.oom_control"), "oom_kill") {
            Some(n) => n > 0,
            None => read_u64(&dir.join("memory.failcnt")).unwrap_or(0) > 0,
        }
    }

    fn stats(&self) -> Result<CgroupStats> {
        Ok(stats::v1(self))
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let f = stats::v1_procs_file(self).ok_or_else(|| Error::Invalid("no cgroup hierarchy".into()))?;
        Ok(stats::read_procs(&f))
    }

    fn remove(&self) -> Result<()> {
        let mut first = None;
        for h in &self.hierarchies {
            if let Err(e) = rmdir_retry(&h.dir) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let dir = self
            .dir("freezer")
            .ok_or_else(|| Error::Invalid("the freezer cgroup is not mounted".into()))?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        let f = dir.join("freezer.state");
        write(&f, want)?;
        wait_for(&f, |s| s == want)
    }

    fn container_mounts(&self) -> Vec<(String, PathBuf)> {
        self.hierarchies
            .iter()
            .filter_map(|h| Some((h.mount.file_name()?.to_string_lossy().into_owned(), h.dir.clone())))
            .collect()
    }
}

/// cgroup v2: one directory in the unified hierarchy.
#[derive(Debug, Clone)]
pub struct V2 {
    root: PathBuf,
    dir: PathBuf,
}

/// runc's conversion of v1 `cpu.shares` (2..262144) to v2 `cpu.weight` (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

impl CgroupManager for V2 {
    fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| cg_err("create", &self.dir, e))?;
        // Enable the controllers we use on every ancestor, from the root down.
        let rel = self.dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut cur = self.root.clone();
        for comp in rel.components() {
            let available = std::fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
            let want: Vec<String> = available
                .split_whitespace()
                .filter(|c| matches!(*c, "cpu" | "memory" | "pids" | "cpuset" | "io"))
                .map(|c| format!("+{c}"))
                .collect();
            if !want.is_empty() {
                write(&cur.join("cgroup.subtree_control"), &want.join(" "))?;
            }
            cur.push(comp);
        }
        let Some(r) = resources else { return Ok(()) };
        if let Some(m) = r.memory() {
            if let Some(limit) = m.limit() {
                write(
                    &self.dir.join("memory.max"),
                    &if limit > 0 { limit.to_string() } else { "max".into() },
                )?;
                if let Some(swap) = m.swap() {
                    // OCI gives memory+swap; v2 wants the swap part alone.
                    let v = if swap < 0 {
                        "max".to_string()
                    } else {
                        (swap - limit).max(0).to_string()
                    };
                    let f = self.dir.join("memory.swap.max");
                    if f.exists() {
                        write(&f, &v)?;
                    }
                }
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(s) = c.shares() {
                write(&self.dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
            }
            if c.quota().is_some() || c.period().is_some() {
                let period = c.period().unwrap_or(100_000);
                let quota = match c.quota() {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".into(),
                };
                write(&self.dir.join("cpu.max"), &format!("{quota} {period}"))?;
            }
        }
        if let Some(p) = r.pids() {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            write(&self.dir.join("pids.max"), &v)?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn oom_killed(&self) -> bool {
        keyed(&self.dir.join("memory.events"), "oom_kill").unwrap_or(0) > 0
    }

    fn stats(&self) -> Result<CgroupStats> {
        Ok(stats::v2(self))
    }

    fn pids(&self) -> Result<Vec<i32>> {
        Ok(stats::read_procs(&self.dir.join("cgroup.procs")))
    }

    fn remove(&self) -> Result<()> {
        rmdir_retry(&self.dir)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        write(&self.dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        wait_for(&self.dir.join("cgroup.events"), |s| s.lines().any(|l| l == want))
    }

    fn container_mounts(&self) -> Vec<(String, PathBuf)> {
        vec![(String::new(), self.dir.clone())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> LinuxResources {
        serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864, "swap": 134217728},
            "cpu": {"shares": 512, "quota": 150000, "period": 100000},
            "pids": {"limit": 50},
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
        }))
        .unwrap()
    }

    fn read(p: PathBuf) -> String {
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    #[test]
    fn v2_fake_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpuset cpu io memory pids").unwrap();
        let cg = open(t.path(), "/berth/c1").unwrap();
        // Precreate the dir with the files the kernel would provide.
        let dir = t.path().join("berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.swap.max"), "max").unwrap();
        std::fs::write(t.path().join("berth/cgroup.controllers"), "cpu memory pids").unwrap();
        cg.create(Some(&resources())).unwrap();
        assert_eq!(
            read(t.path().join("cgroup.subtree_control")),
            "+cpuset +cpu +io +memory +pids"
        );
        assert_eq!(
            read(t.path().join("berth/cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        assert_eq!(read(dir.join("memory.max")), "67108864");
        assert_eq!(read(dir.join("memory.swap.max")), "67108864");
        assert_eq!(read(dir.join("cpu.weight")), shares_to_weight(512).to_string());
        assert_eq!(read(dir.join("cpu.max")), "150000 100000");
        assert_eq!(read(dir.join("pids.max")), "50");
        cg.add_process(42).unwrap();
        assert!(cg.self_join_files().is_empty(), "v2: moved by pid");
        assert_eq!(read(dir.join("cgroup.procs")), "42");
        assert!(!cg.oom_killed());
        std::fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        assert!(cg.oom_killed());
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        cg.set_frozen(true).unwrap();
        assert_eq!(read(dir.join("cgroup.freeze")), "1");
        std::fs::write(dir.join("memory.current"), "4096\n").unwrap();
        std::fs::write(dir.join("pids.current"), "3\n").unwrap();
        let s = cg.stats().unwrap();
        assert_eq!((s.memory_usage, s.memory_limit, s.pids_current), (4096, 67108864, 3));
        assert_eq!(cg.container_mounts(), vec![(String::new(), dir.clone())]);
        for f in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        cg.remove().unwrap();
        assert!(!dir.exists());
        cg.remove().unwrap();
    }

    #[test]
    fn shares_weight() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn v1_fake_root() {
        let t = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu,cpuacct", "pids", "devices", "cpuset"] {
            std::fs::create_dir_all(t.path().join(c)).unwrap();
        }
        std::fs::write(t.path().join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(t.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
        let cg = open(t.path(), "berth/c1").unwrap();
        let mem = t.path().join("memory/berth/c1");
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(mem.join("memory.memsw.limit_in_bytes"), "").unwrap();
        cg.create(Some(&resources())).unwrap();
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "134217728");
        let cpu = t.path().join("cpu,cpuacct/berth/c1");
        assert_eq!(read(cpu.join("cpu.shares")), "512");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "150000");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(t.path().join("pids/berth/c1/pids.max")), "50");
        assert_eq!(read(t.path().join("devices/berth/c1/devices.allow")), "c 1:3 rwm");
        assert_eq!(read(t.path().join("devices/berth/c1/devices.deny")), "a *:* rwm");
        let many: LinuxResources = serde_json::from_value(serde_json::json!({"devices": [
            {"allow": true, "type": "c", "access": "m"}, {"allow": true, "type": "c", "major": 136, "access": "rwm"}]}))
        .unwrap();
        let cg2 = open(t.path(), "berth/c2").unwrap();
        cg2.create(Some(&many)).unwrap();
        assert_eq!(
            read(t.path().join("devices/berth/c2/devices.allow")),
            "c *:* m\nc 136:* rwm"
        );
        assert_eq!(read(t.path().join("cpuset/berth/cpuset.cpus")), "0-1");
        assert_eq!(read(t.path().join("cpuset/berth/c1/cpuset.mems")), "0");
        cg.add_process(7).unwrap();
        assert_eq!(read(t.path().join("pids/berth/c1/cgroup.procs")), "7");
        let mut tasks = cg.self_join_files();
        tasks.sort();
        let want: Vec<PathBuf> = ["cpu,cpuacct", "cpuset", "devices", "memory", "pids"]
            .iter()
            .map(|h| t.path().join(h).join("berth/c1/tasks"))
            .collect();
        assert_eq!(
            tasks, want,
            "a process moves itself through every hierarchy's tasks file"
        );
        assert!(cg.set_frozen(true).is_err(), "no freezer hierarchy in this fake root");
        assert!(!cg.oom_killed());
        std::fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert!(cg.oom_killed());
        std::fs::write(mem.join("memory.usage_in_bytes"), "1234").unwrap();
        assert_eq!(cg.stats().unwrap().memory_usage, 1234);
        assert_eq!(cg.container_mounts().len(), 5);
        assert!(cg.container_mounts().iter().any(|(n, _)| n == "cpu,cpuacct"));
        for h in ["memory", "cpu,cpuacct", "pids", "devices", "cpuset"] {
            let d = t.path().join(h).join("berth/c1");
            for f in std::fs::read_dir(&d).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
            }
        }
        cg.remove().unwrap();
        assert!(!mem.exists());
    }

    #[test]
    fn rejects_bad_paths() {
        let t = tempfile::tempdir().unwrap();
        assert!(open(t.path(), "/").is_err());
        assert!(open(t.path(), "/berth/../../etc").is_err());
    }
}
