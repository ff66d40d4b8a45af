//! `RuntimeConfig` -> OCI runtime spec, with the defaults Docker (moby `oci/defaults.go` and
//! `daemon/oci_linux.go`) puts in every container's `config.json`.

use crate::config::{NetworkMode, RuntimeConfig, SeccompMode};
use crate::error::{Error, Result};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::path::Path;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux knows (what `--privileged` and `--cap-add ALL` give).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths: hidden behind `/dev/null` (files) or an empty read-only tmpfs (dirs).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The `PATH` Docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default `/dev/shm` size (64 MiB).
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Default `RLIMIT_NOFILE` when no `--ulimit nofile` is given.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// Builds the OCI spec of one container run; `rootfs` becomes `root.path` (where the shim mounts the
/// overlay inside the container's mount namespace).
pub fn build_spec(c: &RuntimeConfig, rootfs: &Path) -> Result<Spec> {
    if c.args.is_empty() {
        return Err(Error::Invalid("no command specified".into()));
    }
    let caps = if c.privileged {
        ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    } else {
        tweak_capabilities(&c.cap_add, &c.cap_drop)?
    };

    let mut args = c.args.clone();
    let mut mounts = default_mounts(c);
    if let Some(init) = &c.init {
        args.insert(0, "--".into());
        args.insert(0, "/sbin/docker-init".into());
        mounts.push(
            json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["bind", "ro"]}),
        );
    }
    for m in &c.mounts {
        mounts.retain(|d| d["destination"] != m.destination.as_str());
        let mut options = vec!["rbind".to_string()];
        if m.readonly {
            options.push("ro".into());
        }
        options.extend(m.options.iter().cloned());
        mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": options}));
    }
    for t in &c.tmpfs {
        mounts.retain(|d| d["destination"] != t.destination.as_str());
        let options = tmpfs_options(&t.options);
        mounts.push(json!({"destination": t.destination, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &c.network {
        NetworkMode::New => namespaces.push(json!({"type": "network"})),
        NetworkMode::Host => {}
        NetworkMode::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    if !c.uid_mappings.is_empty() {
        namespaces.push(json!({"type": "user"}));
    }
    let idmap = |m: &crate::config::IdMap| json!({"containerID": m.container_id, "hostID": m.host_id, "size": m.size});

    let seccomp = match (&c.seccomp, c.privileged) {
        (_, true) | (SeccompMode::Unconfined, _) => Value::Null,
        (SeccompMode::Default, false) => crate::seccomp::default_profile(&caps),
        (SeccompMode::Custom(p), false) => serde_json::to_value(p).map_err(Error::Spec)?,
    };

    let cgroup_parent = c.cgroup_parent.as_deref().filter(|p| !p.is_empty()).unwrap_or("/berth");
    let cgroups_path = format!("{}/{}", cgroup_parent.trim_end_matches('/'), c.id);

    let masked: Vec<String> = if c.privileged {
        Vec::new()
    } else {
        c.masked_paths
            .clone()
            .unwrap_or_else(|| DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect())
    };
    let readonly: Vec<String> = if c.privileged {
        Vec::new()
    } else {
        c.readonly_paths
            .clone()
            .unwrap_or_else(|| DEFAULT_READONLY_PATHS.iter().map(|s| s.to_string()).collect())
    };

    let sysctl: serde_json::Map<String, Value> = c
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();

    let spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": c.tty,
            "user": {"uid": c.user.uid, "gid": c.user.gid, "additionalGids": c.user.additional_gids},
            "args": args,
            "env": build_env(c),
            "cwd": if c.cwd.is_empty() { "/" } else { c.cwd.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits(c)?,
            "noNewPrivileges": c.no_new_privileges,
            "oomScoreAdj": c.oom_score_adj,
        },
        "root": {"path": rootfs, "readonly": c.readonly_rootfs},
        "hostname": c.hostname,
        "domainname": c.domainname,
        "mounts": mounts,
        "linux": {
            "uidMappings": c.uid_mappings.iter().map(idmap).collect::<Vec<_>>(),
            "gidMappings": c.gid_mappings.iter().map(idmap).collect::<Vec<_>>(),
            "sysctl": sysctl,
            "resources": resources(c),
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            "devices": if c.privileged { host_devices() } else { default_devices() },
            "seccomp": seccomp,
            "maskedPaths": masked,
            "readonlyPaths": readonly,
            "rootfsPropagation": rootfs_propagation(&c.mounts),
        },
    });
    serde_json::from_value(strip_nulls(spec)).map_err(Error::Spec)
}

/// Docker's `linux.rootfsPropagation`: `rshared` when a bind is `shared`/`rshared` (so mounts made in
/// the container under it reach the host), `rslave` when one is `slave`/`rslave`, else unset (the
/// runtime's default, `rslave`).
fn rootfs_propagation(mounts: &[crate::config::BindMount]) -> Option<&'static str> {
    let has = |names: &[&str]| {
        mounts
            .iter()
            .any(|m| m.options.iter().any(|o| names.contains(&o.as_str())))
    };
    if has(&["shared", "rshared"]) {
        Some("rshared")
    } else if has(&["slave", "rslave"]) {
        Some("rslave")
    } else {
        None
    }
}

/// Docker's options of a tmpfs mount (`--tmpfs /run:rw,size=64m,mode=1777`, or `--mount
/// type=tmpfs,tmpfs-size=..,tmpfs-mode=..` already written as `size=`/`mode=`): `noexec`, `nosuid`,
/// `nodev` and `rprivate`, then the user's, merged as Docker's `MergeTmpfsOptions` does (the last of a
/// flag pair such as `exec`/`noexec` or of a `key=` wins; `defaults` is dropped).
pub fn tmpfs_options(user: &[String]) -> Vec<String> {
    let pair = |o: &str| -> String {
        match o {
            "ro" | "rw" => "rw".into(),
            "sync" | "async" => "sync".into(),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                "propagation".into()
            }
            _ => match o.split_once('=') {
                Some((k, _)) => format!("{k}="),
                None => o.strip_prefix("no").unwrap_or(o).to_string(),
            },
        }
    };
    let all: Vec<&str> = ["noexec", "nosuid", "nodev", "rprivate"]
        .into_iter()
        .chain(user.iter().map(String::as_str))
        .filter(|o| !o.is_empty() && *o != "defaults")
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = all
        .iter()
        .rev()
        .filter(|o| seen.insert(pair(o)))
        .map(|o| o.to_string())
        .collect();
    out.reverse();
    out
}

/// Removes `null` members so optional fields deserialize as absent.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        v => v,
    }
}

/// `CAP_` + upper case, unless `ALL`.
fn normalize_cap(name: &str) -> Result<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(Error::Invalid(format!("unknown capability: \"{full}\"")))
    }
}

/// Docker's `TweakCapabilities`: defaults, minus `--cap-drop`, plus `--cap-add`; `ALL` on either side.
pub fn tweak_capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>> {
    let add: Vec<String> = add.iter().map(|s| normalize_cap(s)).collect::<Result<_>>()?;
    let drop: Vec<String> = drop.iter().map(|s| normalize_cap(s)).collect::<Result<_>>()?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        ALL_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if !add.iter().any(|c| c == "ALL") {
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    Ok(caps)
}

/// Docker's environment: `PATH` and `HOSTNAME` (and `TERM` with a tty) first, replaced in place by the
/// container's own values, then the rest; `HOME` from the user's passwd entry when unset.
fn build_env(c: &RuntimeConfig) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}"), format!("HOSTNAME={}", c.hostname)];
    if c.tty {
        env.push("TERM=xterm".into());
    }
    for e in &c.env {
        let key = e.split('=').next().unwrap_or(e);
        match env.iter_mut().find(|x| x.split('=').next() == Some(key)) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = if c.user.home.is_empty() {
            "/"
        } else {
            c.user.home.as_str()
        };
        env.push(format!("HOME={home}"));
    }
    env
}

fn rlimits(c: &RuntimeConfig) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    if !c.ulimits.iter().any(|u| u.name == "nofile") {
        out.push(json!({"type": "RLIMIT_NOFILE", "soft": DEFAULT_NOFILE, "hard": DEFAULT_NOFILE}));
    }
    for u in &c.ulimits {
        let ty = match u.name.as_str() {
            "core" | "cpu" | "data" | "fsize" | "locks" | "memlock" | "msgqueue" | "nice" | "nofile" | "nproc"
            | "rss" | "rtprio" | "rttime" | "sigpending" | "stack" | "as" => {
                format!("RLIMIT_{}", u.name.to_ascii_uppercase())
            }
            other => return Err(Error::Invalid(format!("invalid ulimit type: {other}"))),
        };
        if u.soft > u.hard {
            return Err(Error::Invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
        out.push(json!({"type": ty, "soft": u.soft, "hard": u.hard}));
    }
    Ok(out)
}

fn resources(c: &RuntimeConfig) -> Value {
    let mut r = serde_json::Map::new();
    r.insert("devices".into(), Value::Array(device_rules(c.privileged)));
    if c.memory > 0 {
        let swap = match c.memory_swap {
            0 => c.memory.saturating_mul(2),
            s => s,
        };
        r.insert("memory".into(), json!({"limit": c.memory, "swap": swap}));
    }
    let mut cpu = serde_json::Map::new();
    if c.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(c.cpu_shares));
    }
    if c.nano_cpus > 0 {
        let period: u64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert(
            "quota".into(),
            json!(c.nano_cpus.saturating_mul(period as i64) / 1_000_000_000),
        );
    } else {
        if c.cpu_period > 0 {
            cpu.insert("period".into(), json!(c.cpu_period));
        }
        if c.cpu_quota != 0 {
            cpu.insert("quota".into(), json!(c.cpu_quota));
        }
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if c.pids_limit > 0 {
        r.insert("pids".into(), json!({"limit": c.pids_limit}));
    }
    Value::Object(r)
}

/// Device cgroup rules: deny everything, then allow what Docker allows (runc's default list).
fn device_rules(privileged: bool) -> Vec<Value> {
    if privileged {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut v = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        v.push(json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}));
    }
    v.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    v
}

fn default_devices() -> Vec<Value> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(p, ma, mi)| json!({"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0}))
    .collect()
}

/// `--privileged`: every device node of the host's `/dev` (except the per-container pts/shm/mqueue).
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if matches!(
                p.to_str(),
                Some("/dev/pts" | "/dev/shm" | "/dev/mqueue" | "/dev/console" | "/dev/ptmx")
            ) {
                continue;
            }
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                stack.push(p);
                continue;
            }
            let ty = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let rdev = md.rdev();
            out.push(json!({
                "path": p, "type": ty, "major": libc::major(rdev), "minor": libc::minor(rdev),
                "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(),
            }));
        }
    }
    out
}

fn default_mounts(c: &RuntimeConfig) -> Vec<Value> {
    let shm = if c.shm_size > 0 { c.shm_size } else { DEFAULT_SHM_SIZE };
    let sys_ro = if c.privileged { "rw" } else { "ro" };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys_ro]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [sys_ro, "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BindMount, ResolvedUser, Ulimit};
    use oci_spec::runtime::{Capability, LinuxNamespaceType};
    use std::str::FromStr;

    fn base() -> RuntimeConfig {
        RuntimeConfig {
            id: "abc".into(),
            args: vec!["sh".into()],
            hostname: "abc123".into(),
            user: ResolvedUser {
                home: "/root".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn cap_names(s: &Spec) -> Vec<String> {
        let mut v: Vec<String> = s
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref())
            .and_then(|c| c.bounding().as_ref())
            .map(|b| b.iter().map(|c| format!("CAP_{c}")).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn defaults_match_docker() {
        let s = build_spec(&base(), Path::new("/r")).unwrap();
        let mut want: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(cap_names(&s), want);
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(linux.cgroups_path().as_ref().unwrap(), Path::new("/berth/abc"));
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), DEFAULT_MASKED_PATHS.len());
        assert!(linux.seccomp().is_some());
        let ns: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
        assert!(ns.contains(&LinuxNamespaceType::Network) && ns.contains(&LinuxNamespaceType::Pid));
        assert!(!ns.contains(&LinuxNamespaceType::User));
        let p = s.process().as_ref().unwrap();
        let env = p.env().as_ref().unwrap();
        assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
        assert_eq!(env[1], "HOSTNAME=abc123");
        assert!(env.contains(&"HOME=/root".to_string()));
        let rl = p.rlimits().as_ref().unwrap();
        assert_eq!(rl[0].soft(), DEFAULT_NOFILE);
        let mounts = s.mounts().as_ref().unwrap();
        let shm = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .unwrap();
        assert!(shm.options().as_ref().unwrap().contains(&"size=67108864".to_string()));
        assert_eq!(linux.devices().as_ref().unwrap().len(), 6);
    }

    #[test]
    fn capability_tweaks() {
        type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (&["net_admin"], &["CHOWN"], &["CAP_NET_ADMIN"], &["CAP_CHOWN"]),
            (&["CAP_SYS_ADMIN"], &[], &["CAP_SYS_ADMIN", "CAP_KILL"], &[]),
            (&["ALL"], &["MKNOD"], &["CAP_SYS_ADMIN", "CAP_BPF"], &["CAP_MKNOD"]),
            (&["NET_RAW"], &["ALL"], &["CAP_NET_RAW"], &["CAP_CHOWN", "CAP_KILL"]),
        ];
        for (add, drop, has, hasnt) in cases {
            let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
            let drop: Vec<String> = drop.iter().map(|s| s.to_string()).collect();
            let caps = tweak_capabilities(&add, &drop).unwrap();
            for h in *has {
                assert!(caps.contains(&h.to_string()), "{add:?} {drop:?} should have {h}");
            }
            for h in *hasnt {
                assert!(!caps.contains(&h.to_string()), "{add:?} {drop:?} should not have {h}");
            }
        }
        assert!(tweak_capabilities(&["FOO".into()], &[])
            .unwrap_err()
            .to_string()
            .contains("unknown capability: \"CAP_FOO\""));
    }

    #[test]
    fn privileged_and_unconfined() {
        let mut c = base();
        c.privileged = true;
        let s = build_spec(&c, Path::new("/r")).unwrap();
        assert_eq!(cap_names(&s).len(), ALL_CAPABILITIES.len());
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(linux.masked_paths().as_ref().map(|m| m.is_empty()).unwrap_or(true));
        assert!(Capability::from_str("SYS_ADMIN").is_ok());
        let mut c = base();
        c.seccomp = SeccompMode::Unconfined;
        assert!(build_spec(&c, Path::new("/r"))
            .unwrap()
            .linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .is_none());
    }

    #[test]
    fn tmpfs_options_merge_like_docker() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (user, want) in [
            (v(&[]), v(&["noexec", "nosuid", "nodev", "rprivate"])),
            (
                v(&["rw", "size=64m", "mode=1777"]),
                v(&["noexec", "nosuid", "nodev", "rprivate", "rw", "size=64m", "mode=1777"]),
            ),
            (
                v(&["exec", "size=1m", "size=2m"]),
                v(&["nosuid", "nodev", "rprivate", "exec", "size=2m"]),
            ),
            (
                v(&["ro", "defaults", "rw", "suid"]),
                v(&["noexec", "nodev", "rprivate", "rw", "suid"]),
            ),
            (
                v(&["rshared", "uid=1000", "gid=1000"]),
                v(&["noexec", "nosuid", "nodev", "rshared", "uid=1000", "gid=1000"]),
            ),
        ] {
            assert_eq!(tmpfs_options(&user), want, "{user:?}");
        }
    }

    #[test]
    fn rootfs_propagation_follows_the_binds() {
        let bind = |opts: &[&str]| BindMount {
            source: "/v".into(),
            destination: "/d".into(),
            readonly: false,
            options: opts.iter().map(|s| s.to_string()).collect(),
        };
        for (binds, want) in [
            (vec![], None),
            (vec![bind(&["rprivate"])], None),
            (vec![bind(&["rslave"])], Some("rslave")),
            (vec![bind(&["slave"]), bind(&[])], Some("rslave")),
            (vec![bind(&["rslave"]), bind(&["shared"])], Some("rshared")),
            (vec![bind(&["rshared"])], Some("rshared")),
        ] {
            let mut c = base();
            c.mounts = binds;
            let spec = build_spec(&c, Path::new("/r")).unwrap();
            let got = spec.linux().as_ref().unwrap().rootfs_propagation().clone();
            assert_eq!(got.as_deref(), want, "{:?}", c.mounts);
        }
    }

    #[test]
    fn resources_and_options() {
        let mut c = base();
        c.memory = 64 << 20;
        c.nano_cpus = 1_500_000_000;
        c.pids_limit = 50;
        c.readonly_rootfs = true;
        c.init = Some("/usr/libexec/berth-init".into());
        c.network = NetworkMode::Host;
        c.env = vec!["PATH=/bin".into(), "A=b".into()];
        c.tty = true;
        c.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 10,
            hard: 20,
        }];
        c.mounts = vec![BindMount {
            source: "/tmp".into(),
            destination: "/dev/shm".into(),
            readonly: true,
            options: vec![],
        }];
        c.cgroup_parent = Some("/custom/".into());
        let s = build_spec(&c, Path::new("/r")).unwrap();
        let linux = s.linux().as_ref().unwrap();
        let r = linux.resources().as_ref().unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), Some(128 << 20));
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.quota(), Some(150_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 50);
        assert!(s.root().as_ref().unwrap().readonly().unwrap());
        let p = s.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap()[..3],
            ["/sbin/docker-init".to_string(), "--".into(), "sh".into()]
        );
        let env = p.env().as_ref().unwrap();
        assert_eq!(env[0], "PATH=/bin");
        assert_eq!(env[2], "TERM=xterm");
        let rl = p.rlimits().as_ref().unwrap();
        assert_eq!(rl.len(), 1);
        assert_eq!(rl[0].hard(), 20);
        let ns: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
        assert!(!ns.contains(&LinuxNamespaceType::Network));
        let shm: Vec<_> = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0].typ().as_deref(), Some("bind"));
        assert_eq!(linux.cgroups_path().as_ref().unwrap(), Path::new("/custom/abc"));
    }

    #[test]
    fn bad_ulimit_and_empty_args() {
        let mut c = base();
        c.ulimits = vec![Ulimit {
            name: "bogus".into(),
            soft: 1,
            hard: 1,
        }];
        assert!(build_spec(&c, Path::new("/r")).is_err());
        let mut c = base();
        c.args.clear();
        assert!(build_spec(&c, Path::new("/r")).is_err());
    }
}
