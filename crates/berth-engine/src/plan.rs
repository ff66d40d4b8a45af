//! The run plan: what one start of a container needs, built from explicit inputs — the record, the
//! user resolved from the image, the rootfs from the snapshotter, the mounts from the volume
//! service, the network attachment from the network service and the runtime choice — into the OCI
//! spec (through `berth_runtime::build_spec`) and the shim's options. Pure: no I/O, no engine.

use crate::error::{EngineError, Result};
use crate::network::NetworkAttachment;
use crate::record::ContainerRecord;
use berth_runtime::oci_spec::runtime::Spec;
use berth_runtime::{ResolvedUser, RuntimeConfig, SeccompMode, Ulimit};
use berth_shim::protocol::{RootfsMount, ShimConfig};
use berth_types::userns::IdentityMapping;
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

/// Everything one start of a container is made from.
pub(crate) struct PlanInputs<'a> {
    /// The container.
    pub rec: &'a ContainerRecord,
    /// The bundle directory (the spec's root is `<bundle>/rootfs`).
    pub bundle: &'a Path,
    /// The user the process runs as, resolved from the image's `/etc/passwd` and `/etc/group`.
    pub user: ResolvedUser,
    /// The root filesystem (from the snapshotter).
    pub rootfs: RootfsMount,
    /// Network namespace and the files the network service wrote (`/etc/hosts`…).
    pub network: NetworkAttachment,
    /// Volumes and binds (from the volume service).
    pub mounts: crate::volume::RunMounts,
    /// The external runtime binary, or `None` for berth's own.
    pub runtime_path: Option<PathBuf>,
    /// The static init for `--init`, when the container asks for it.
    pub init: Option<PathBuf>,
    /// The user namespace mapping, when the container runs in one.
    pub id_map: Option<IdentityMapping>,
    /// The daemon's `default-ulimits`, for the names the container does not set.
    pub default_ulimits: Vec<Ulimit>,
}

/// What the shim is started with.
pub(crate) struct RunPlan {
    /// `config.json`.
    pub spec: Spec,
    /// `shim.json`.
    pub shim: ShimConfig,
}

/// Builds the OCI spec and shim options for the next run of a container.
pub(crate) fn build(inp: PlanInputs<'_>) -> Result<RunPlan> {
    let rec = inp.rec;
    let hc = &rec.host_config;
    let cfg = &rec.config;
    let sec = parse_security_opts(hc.security_opt.as_deref().unwrap_or_default())?;
    let mut mounts = inp.network.mounts;
    mounts.extend(inp.mounts.binds);
    let tmpfs = inp.mounts.tmpfs;
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let id_map = inp.id_map;
    let rc = RuntimeConfig {
        id: rec.id.clone(),
        args,
        env: {
            // Docker puts the link variables before the container's own.
            let mut env = inp.network.env.clone();
            env.extend(cfg.env.clone().unwrap_or_default());
            env
        },
        cwd: cfg
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: inp.user,
        hostname: hostname(rec),
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
        ulimits: merge_ulimits(
            hc.ulimits
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|u| Ulimit {
                    name: u.name.unwrap_or_default(),
                    soft: u.soft.unwrap_or(0).max(0) as u64,
                    hard: u.hard.unwrap_or(0).max(0) as u64,
                })
                .collect(),
            inp.default_ulimits,
        ),
        init: inp.init,
        network: inp.network.mode,
        mounts,
        tmpfs,
        cgroup_parent: hc.cgroup_parent.clone().filter(|p| !p.is_empty()),
        masked_paths: sec.unconfined_paths.then(Vec::new),
        readonly_paths: sec.unconfined_paths.then(Vec::new),
        shm_size: hc.shm_size.unwrap_or(0).max(0) as u64,
        sysctls: hc.sysctls.clone().unwrap_or_default().into_iter().collect(),
        oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
        uid_mappings: id_map.as_ref().map(|m| m.uids.clone()).unwrap_or_default(),
        gid_mappings: id_map.as_ref().map(|m| m.gids.clone()).unwrap_or_default(),
    };
    let spec = berth_runtime::build_spec(&rc, &inp.bundle.join("rootfs"))?;
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
        rootfs: inp.rootfs,
        runtime_path: inp.runtime_path.map(|p| p.display().to_string()),
        console_size,
        log_rotation: crate::logconfig::rotation(hc.log_config.as_ref()),
    };
    Ok(RunPlan { spec, shim })
}

/// The container's hostname (its short ID unless set).
/// The container's ulimits, then the daemon's defaults for the names it does not set (dockerd's
/// `mergeUlimits`).
fn merge_ulimits(mut own: Vec<Ulimit>, defaults: Vec<Ulimit>) -> Vec<Ulimit> {
    for d in defaults {
        if !own.iter().any(|u| u.name == d.name) {
            own.push(d);
        }
    }
    own
}

pub(crate) fn hostname(rec: &ContainerRecord) -> String {
    rec.config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| berth_types::short_id(&rec.id).to_string())
}

/// The user namespace mapping of a container: the daemon's `--userns-remap`, unless the container
/// opts out with `--userns=host`.
pub(crate) fn userns(rec: &ContainerRecord, daemon: Option<&IdentityMapping>) -> Result<Option<IdentityMapping>> {
    match rec.host_config.userns_mode.as_deref().unwrap_or("") {
        "host" => Ok(None),
        "" => Ok(daemon.cloned()),
        other => Err(EngineError::InvalidArgument(format!("invalid USER mode: {other}"))),
    }
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

    fn record() -> ContainerRecord {
        ContainerRecord {
            id: "0123456789ab".repeat(5) + "cdef",
            name: "web".into(),
            created: String::new(),
            path: "sh".into(),
            args: vec!["-c".into(), "echo hi".into()],
            config: berth_api::models::ContainerConfig {
                env: Some(vec!["A=1".into()]),
                tty: Some(true),
                working_dir: Some("/srv".into()),
                ..Default::default()
            },
            host_config: berth_api::models::HostConfig {
                security_opt: Some(vec!["no-new-privileges".into()]),
                console_size: Some(vec![24, 80]),
                ..Default::default()
            },
            image: "sha256:x".into(),
            chain_ids: vec![],
            state: Default::default(),
            restart_count: 0,
            networks: Default::default(),
            mounts: Vec::new(),
            log_path: "/data/c/log".into(),
            runtime: "runc".into(),
        }
    }

    #[test]
    fn daemon_ulimits_fill_in_the_names_a_container_does_not_set() {
        let u = |name: &str, n: u64| Ulimit {
            name: name.into(),
            soft: n,
            hard: n,
        };
        let merged = merge_ulimits(vec![u("nofile", 10)], vec![u("nofile", 99), u("nproc", 7)]);
        assert_eq!(merged, vec![u("nofile", 10), u("nproc", 7)]);
    }

    #[test]
    fn the_plan_is_made_from_its_inputs_alone() {
        let rec = record();
        let etc = berth_runtime::BindMount {
            source: "/data/c/hosts".into(),
            destination: "/etc/hosts".into(),
            readonly: false,
            options: vec![],
        };
        let vol = berth_runtime::BindMount {
            source: "/srv/data".into(),
            destination: "/data".into(),
            readonly: true,
            options: vec![],
        };
        let plan = build(PlanInputs {
            rec: &rec,
            bundle: Path::new("/run/b/bundles/x"),
            user: ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![],
                home: "/home/u".into(),
            },
            rootfs: RootfsMount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: vec!["lowerdir=/l".into()],
                cwd: None,
            },
            network: NetworkAttachment {
                mode: berth_runtime::NetworkMode::Host,
                mounts: vec![etc],
                env: vec![],
            },
            mounts: crate::volume::RunMounts {
                binds: vec![vol],
                tmpfs: vec![],
            },
            runtime_path: Some(PathBuf::from("/usr/sbin/runc")),
            init: None,
            id_map: None,
            default_ulimits: vec![],
        })
        .unwrap();
        let process = plan.spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &["sh", "-c", "echo hi"]);
        assert_eq!(process.cwd().to_str(), Some("/srv"));
        assert_eq!(process.user().uid(), 1000);
        assert!(process.env().as_ref().unwrap().iter().any(|e| e == "A=1"));
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(plan.spec.hostname().as_deref(), Some("0123456789ab"));
        let dests: Vec<_> = plan
            .spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert!(dests.contains(&"/etc/hosts".to_string()) && dests.contains(&"/data".to_string()));
        let namespaces = plan.spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(
            !namespaces
                .iter()
                .any(|n| n.typ() == berth_runtime::oci_spec::runtime::LinuxNamespaceType::Network),
            "host network: no network namespace"
        );
        assert_eq!(
            plan.spec.root().as_ref().unwrap().path(),
            Path::new("/run/b/bundles/x/rootfs")
        );
        assert!(plan.shim.tty);
        assert_eq!(plan.shim.log_path, "/data/c/log");
        assert_eq!(plan.shim.runtime_path.as_deref(), Some("/usr/sbin/runc"));
        assert_eq!(plan.shim.console_size, Some((24, 80)));
        assert_eq!(plan.shim.rootfs.options, ["lowerdir=/l"]);
    }
}
