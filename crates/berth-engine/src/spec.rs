//! Turns a container record into what the runtime and the shim need: the OCI spec (through
//! `berth_runtime::build_spec`) and the shim options.

use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::Engine;
use berth_runtime::oci_spec::runtime::Spec;
use berth_runtime::{BindMount, NetworkMode, RuntimeConfig, SeccompMode, Ulimit};
use berth_shim::protocol::{RootfsMount, ShimConfig};
use std::path::{Path, PathBuf};

/// Parsed `--security-opt` values that the runtime understands.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SecurityOpts {
    pub seccomp: SeccompMode,
    pub no_new_privileges: bool,
    pub unconfined_paths: bool,
}

/// Parses Docker's `--security-opt` list (`seccomp=unconfined`, `no-new-privileges[:true]`,
/// `systempaths=unconfined`; `label` and `apparmor` are accepted and ignored on this host).
pub(crate) fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        let (k, v) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid --security-opt: {opt:?}")))?;
        match k {
            "seccomp" if v == "unconfined" => out.seccomp = SeccompMode::Unconfined,
            "seccomp" => {
                // Docker's profile format is a superset of the OCI one (it adds `archMap` and
                // cap-conditional `includes`, which a custom profile rarely uses).
                let profile: berth_runtime::oci_spec::runtime::LinuxSeccomp = serde_json::from_str(v)
                    .map_err(|e| EngineError::InvalidArgument(format!("Decoding seccomp profile failed: {e}")))?;
                out.seccomp = SeccompMode::Custom(profile);
            }
            "no-new-privileges" => {
                out.no_new_privileges = v
                    .parse::<bool>()
                    .map_err(|_| EngineError::InvalidArgument(format!("invalid --security-opt 2: {opt:?}")))?
            }
            "systempaths" if v == "unconfined" => out.unconfined_paths = true,
            "label" | "apparmor" => {}
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid --security-opt 2: {opt:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for the container and returns their mounts.
fn etc_files(dir: &Path, hostname: &str, network: &NetworkMode) -> Result<Vec<BindMount>> {
    let write = |name: &str, data: String| -> Result<PathBuf> {
        let p = dir.join(name);
        // Rewritten only when it changed: replacing a file is slow on disks with online discard.
        if std::fs::read(&p).ok().as_deref() != Some(data.as_bytes()) {
            crate::record::write_replace(&p, data.as_bytes(), false)?;
        }
        Ok(p)
    };
    let (hosts, resolv) = match network {
        NetworkMode::Host => (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
        _ => {
            let hosts = format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
            );
            // A loopback resolver of the host is unreachable from the container's namespace.
            let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let resolv: String = host_resolv
                .lines()
                .filter(|l| {
                    let mut w = l.split_whitespace();
                    !(w.next() == Some("nameserver") && w.next().is_some_and(|a| a.starts_with("127.") || a == "::1"))
                })
                .map(|l| format!("{l}\n"))
                .collect();
            (hosts, resolv)
        }
    };
    let mk = |source: PathBuf, destination: &str| BindMount {
        source,
        destination: destination.into(),
        readonly: false,
        options: vec!["rprivate".into()],
    };
    Ok(vec![
        mk(write("hostname", format!("{hostname}\n"))?, "/etc/hostname"),
        mk(write("hosts", hosts)?, "/etc/hosts"),
        mk(write("resolv.conf", resolv)?, "/etc/resolv.conf"),
    ])
}

/// Parses `-v host:container[:ro|rw]` binds (host paths only until volumes arrive).
fn parse_binds(binds: &[String]) -> Result<Vec<BindMount>> {
    let mut out = Vec::new();
    for b in binds {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, m] => (*s, *d, *m),
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid volume specification: '{b}'"
                )))
            }
        };
        if !dst.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "invalid volume specification: '{b}': invalid mount config: destination must be an absolute path"
            )));
        }
        if !src.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "invalid volume specification: '{b}': named volumes are not available in this berth version; use an absolute host path"
            )));
        }
        let mut readonly = false;
        let mut options = Vec::new();
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" => readonly = true,
                "rw" => readonly = false,
                "z" | "Z" | "nocopy" => {}
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => options.push(m.to_string()),
                _ => return Err(EngineError::InvalidArgument(format!("invalid mode: {m}"))),
            }
        }
        if !Path::new(src).exists() {
            // Docker creates a missing bind source directory.
            std::fs::create_dir_all(src).map_err(|e| EngineError::io("creating bind source", src, e))?;
        }
        out.push(BindMount {
            source: src.into(),
            destination: dst.into(),
            readonly,
            options,
        });
    }
    Ok(out)
}

/// Builds the OCI spec and shim options for the next run of `rec`.
pub(crate) async fn build(engine: &Engine, rec: &ContainerRecord) -> Result<(Spec, ShimConfig)> {
    let hc = &rec.host_config;
    let cfg = &rec.config;
    let snapshots = engine.snapshots.clone();
    let (id, chains) = (rec.id.clone(), rec.chain_ids.clone());
    let user_spec = cfg.user.clone().unwrap_or_default();
    let group_add = hc.group_add.clone().unwrap_or_default();
    let (user, mount) = tokio::task::spawn_blocking(move || -> Result<_> {
        let passwd = snapshots.read_file(Some(&id), &chains, "/etc/passwd")?;
        let group = snapshots.read_file(Some(&id), &chains, "/etc/group")?;
        let mut user = berth_runtime::resolve_user(&user_spec, passwd.as_deref(), group.as_deref())?;
        for g in &group_add {
            let gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => berth_runtime::resolve_user(&format!("0:{g}"), passwd.as_deref(), group.as_deref())?.gid,
            };
            if !user.additional_gids.contains(&gid) {
                user.additional_gids.push(gid);
            }
        }
        let mount = snapshots.rootfs_mount(&id, &chains)?;
        Ok((user, mount))
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))??;

    let sec = parse_security_opts(hc.security_opt.as_deref().unwrap_or_default())?;
    let network = match hc.network_mode.as_deref().unwrap_or("") {
        "host" => NetworkMode::Host,
        "" | "none" | "bridge" | "default" => NetworkMode::New,
        m if m.starts_with("container:") => {
            let other = engine.lookup(&m["container:".len()..])?.record();
            if other.state.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    other.id
                )));
            }
            NetworkMode::Path(PathBuf::from(format!("/proc/{}/ns/net", other.state.pid)))
        }
        m => {
            return Err(EngineError::NotFound(format!("network {m} not found")));
        }
    };
    let hostname = cfg.hostname.clone().unwrap_or_else(|| rec.id[..12].to_string());
    let container_dir = engine.containers_dir().join(&rec.id);
    // `--userns-remap`, unless this container opts out with `--userns=host`.
    let id_map = match hc.userns_mode.as_deref().unwrap_or("") {
        "host" => None,
        "" => engine.cfg.id_map.clone(),
        other => return Err(EngineError::InvalidArgument(format!("invalid USER mode: {other}"))),
    };
    let mut mounts = etc_files(&container_dir, &hostname, &network)?;
    if let Some(map) = &id_map {
        // Root in the container must own what the engine writes for it, as Docker does.
        let (uid, gid) = map.root_pair().map_err(|e| EngineError::Internal(e.to_string()))?;
        for m in &mounts {
            std::os::unix::fs::chown(&m.source, Some(uid), Some(gid))
                .map_err(|e| EngineError::io("giving to the remapped root", &m.source, e))?;
        }
    }
    mounts.extend(parse_binds(hc.binds.as_deref().unwrap_or_default())?);

    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let init = if hc.init.unwrap_or(false) {
        Some(engine.cfg.init_path.clone().ok_or_else(|| {
            EngineError::InvalidArgument(
                "--init: no init binary found; install tini (apt-get install tini) or start berthd with --init-path"
                    .into(),
            )
        })?)
    } else {
        None
    };
    let rc = RuntimeConfig {
        id: rec.id.clone(),
        args,
        env: cfg.env.clone().unwrap_or_default(),
        cwd: cfg
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user,
        hostname,
        domainname: cfg.domainname.clone().filter(|d| !d.is_empty()),
        tty: cfg.tty.unwrap_or(false),
        privileged: hc.privileged.unwrap_or(false),
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        no_new_privileges: sec.no_new_privileges,
        seccomp: sec.seccomp,
        readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
        memory: hc.memory.unwrap_or(0),
        memory_swap: hc.memory_swap.unwrap_or(0),
        nano_cpus: hc.nano_cpus.unwrap_or(0),
        cpu_shares: hc.cpu_shares.unwrap_or(0).max(0) as u64,
        cpu_quota: hc.cpu_quota.unwrap_or(0),
        cpu_period: hc.cpu_period.unwrap_or(0).max(0) as u64,
        pids_limit: hc.pids_limit.unwrap_or(0),
        ulimits: hc
            .ulimits
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|u| Ulimit {
                name: u.name.unwrap_or_default(),
                soft: u.soft.unwrap_or(0).max(0) as u64,
                hard: u.hard.unwrap_or(0).max(0) as u64,
            })
            .collect(),
        init,
        network,
        mounts,
        cgroup_parent: hc.cgroup_parent.clone().filter(|p| !p.is_empty()),
        masked_paths: sec.unconfined_paths.then(Vec::new),
        readonly_paths: sec.unconfined_paths.then(Vec::new),
        shm_size: hc.shm_size.unwrap_or(0).max(0) as u64,
        sysctls: hc.sysctls.clone().unwrap_or_default().into_iter().collect(),
        oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
        uid_mappings: id_map.as_ref().map(|m| m.uids.clone()).unwrap_or_default(),
        gid_mappings: id_map.as_ref().map(|m| m.gids.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let bundle = engine.bundle_dir(&rec.id);
    let spec = berth_runtime::build_spec(&rc, &bundle.join("rootfs"))?;
    let runtime_path = match rec.runtime.as_str() {
        "" | "berth" => None,
        name => Some(
            engine
                .cfg
                .runtimes
                .get(name)
                .ok_or_else(|| EngineError::InvalidArgument(format!("unknown or invalid runtime name: {name}")))?
                .display()
                .to_string(),
        ),
    };
    let console_size = hc.console_size.as_ref().and_then(|v| match v.as_slice() {
        [h, w] if *h > 0 && *w > 0 => Some((*h as u16, *w as u16)),
        _ => None,
    });
    let shim = ShimConfig {
        id: rec.id.clone(),
        log_path: rec.log_path.clone(),
        tty: cfg.tty.unwrap_or(false),
        open_stdin: cfg.open_stdin.unwrap_or(false),
        stdin_once: cfg.stdin_once.unwrap_or(false),
        rootfs: RootfsMount {
            fstype: mount.fstype,
            source: mount.source,
            options: mount.options,
            cwd: mount.cwd,
        },
        runtime_path,
        console_size,
    };
    Ok((spec, shim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_opts() {
        let s = parse_security_opts(&["seccomp=unconfined".into(), "no-new-privileges".into()]).unwrap();
        assert_eq!(s.seccomp, SeccompMode::Unconfined);
        assert!(s.no_new_privileges);
        let s = parse_security_opts(&["no-new-privileges:false".into(), "label=disable".into()]).unwrap();
        assert!(!s.no_new_privileges);
        assert!(parse_security_opts(&["bogus".into()]).is_err());
        assert!(parse_security_opts(&["seccomp=notjson".into()]).is_err());
    }

    #[test]
    fn binds() {
        let dir = std::env::temp_dir().join(format!("berth-binds-{}", std::process::id()));
        let spec = format!("{}:/data:ro", dir.display());
        let b = parse_binds(&[spec]).unwrap();
        assert_eq!(b[0].destination, "/data");
        assert!(b[0].readonly);
        assert!(dir.exists());
        std::fs::remove_dir_all(&dir).ok();
        assert!(parse_binds(&["named:/data".into()]).is_err());
        assert!(parse_binds(&["/x:relative".into()]).is_err());
    }
}
