//! Settings checked at create that would otherwise fail only at start (a 500 then): refused with a
//! 400 in Docker's words where dockerd has them (`verifyContainerSettings`), in the runtime's
//! otherwise.

use crate::error::{EngineError, Result};
use berth_api::models::{ContainerConfig, HostConfig};
use std::collections::HashMap;

/// Linux's `PID_MAX_LIMIT` on 64-bit: `pids.max` refuses more.
const PID_MAX_LIMIT: i64 = 4 * 1024 * 1024;
/// `HOST_NAME_MAX`: `sethostname` refuses a longer name (Docker's CLI says 63 characters).
const HOST_NAME_MAX: usize = 63;
/// Docker's `MinimumDuration` for health-check durations: 1ms.
const MIN_HEALTH_DURATION: i64 = 1_000_000;

/// IPC sysctls a container namespace has (Docker's list, as runc's validator).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

/// Checks the request's settings; `sysctl_exists` says whether `/proc/sys/<path>` exists.
pub(super) fn validate_settings(
    config: &ContainerConfig,
    host: &HostConfig,
    sysctl_exists: &dyn Fn(&str) -> bool,
) -> Result<()> {
    if let Some(wd) = config.working_dir.as_deref().filter(|w| !w.is_empty()) {
        if !wd.starts_with('/') {
            return Err(invalid(format!(
                "the working directory '{wd}' is invalid, it needs to be an absolute path"
            )));
        }
    }
    if let Some(sig) = config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        super::parse_signal(sig)?;
    }
    if let Some(h) = config.hostname.as_deref() {
        if h.len() > HOST_NAME_MAX {
            return Err(invalid(format!(
                "invalid hostname \"{h}\": longer than {HOST_NAME_MAX} characters"
            )));
        }
    }
    if let Some(hc) = &config.healthcheck {
        for (name, v) in [
            ("Interval", hc.interval),
            ("Timeout", hc.timeout),
            ("StartPeriod", hc.start_period),
            ("StartInterval", hc.start_interval),
        ] {
            if v.is_some_and(|v| v != 0 && v < MIN_HEALTH_DURATION) {
                return Err(invalid(format!("{name} in Healthcheck cannot be less than 1ms")));
            }
        }
        if hc.retries.is_some_and(|r| r < 0) {
            return Err(invalid("Retries in Healthcheck cannot be negative"));
        }
    }
    if host.shm_size.is_some_and(|s| s < 0) {
        return Err(invalid("SHM size can not be less than 0"));
    }
    if let Some(s) = host.memory_swap.filter(|s| *s < -1) {
        return Err(invalid(format!(
            "invalid MemorySwap {s}: use -1 for unlimited swap, or a limit of at least the memory limit"
        )));
    }
    if host.memory.unwrap_or(0) == 0 && host.memory_swap.unwrap_or(0) > 0 {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if let Some(o) = host.oom_score_adj.filter(|o| !(-1000..=1000).contains(o)) {
        return Err(invalid(format!(
            "Invalid value {o}, range for oom score adj is [-1000, 1000]"
        )));
    }
    if host.blkio_weight.is_some_and(|w| w != 0 && !(10..=1000).contains(&w)) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    if let Some(p) = host.pids_limit.filter(|p| *p > PID_MAX_LIMIT) {
        return Err(invalid(format!(
            "invalid PidsLimit {p}: the kernel allows at most {PID_MAX_LIMIT} (0 or -1 for unlimited)"
        )));
    }
    if let Some(sysctls) = &host.sysctls {
        validate_sysctls(sysctls, host, sysctl_exists)?;
    }
    Ok(())
}

/// Only sysctls of a namespace the container has (runc's rules), and ones the kernel knows.
fn validate_sysctls(sysctls: &HashMap<String, String>, host: &HostConfig, exists: &dyn Fn(&str) -> bool) -> Result<()> {
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    let host_net = host.network_mode.as_deref() == Some("host");
    let host_ipc = host.ipc_mode.as_deref() == Some("host");
    let host_uts = host.uts_mode.as_deref() == Some("host") || host_net;
    for k in keys {
        let (ns, shared) = if IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            ("IPC", host_ipc)
        } else if k.starts_with("net.") {
            ("network", host_net)
        } else if k == "kernel.domainname" || k == "kernel.hostname" {
            ("UTS", host_uts)
        } else {
            return Err(invalid(format!(
                "sysctl '{k}' is not allowed: it is not in a separate kernel namespace"
            )));
        };
        if shared {
            return Err(invalid(format!(
                "sysctl '{k}' is not allowed: the container shares the host's {ns} namespace"
            )));
        }
        if k.contains("..") || !exists(&k.replace('.', "/")) {
            return Err(invalid(format!("sysctl '{k}' is not supported by this kernel")));
        }
    }
    Ok(())
}

/// Whether `/proc/sys/<path>` exists on this host.
pub(super) fn host_sysctl_exists(path: &str) -> bool {
    std::path::Path::new("/proc/sys").join(path).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::HealthConfig;

    fn known(path: &str) -> bool {
        matches!(path, "net/ipv4/ip_forward" | "kernel/shmmax" | "fs/mqueue/msg_max")
    }

    fn check(config: ContainerConfig, host: HostConfig) -> std::result::Result<(), String> {
        validate_settings(&config, &host, &known).map_err(|e| {
            assert_eq!(
                berth_types::HasErrorKind::kind(&e),
                berth_types::ErrorKind::InvalidArgument
            );
            e.to_string()
        })
    }

    fn sysctl(k: &str) -> HostConfig {
        HostConfig {
            sysctls: Some([(k.to_string(), "1".to_string())].into()),
            ..Default::default()
        }
    }

    fn health(f: impl FnOnce(&mut HealthConfig)) -> ContainerConfig {
        let mut h = HealthConfig::default();
        f(&mut h);
        ContainerConfig {
            healthcheck: Some(h),
            ..Default::default()
        }
    }

    #[test]
    fn refused_at_create_with_dockers_words() {
        let cfg = ContainerConfig::default;
        let host = HostConfig::default;
        for (config, host_config, want) in [
            (
                ContainerConfig {
                    working_dir: Some("srv".into()),
                    ..cfg()
                },
                host(),
                "the working directory 'srv' is invalid, it needs to be an absolute path",
            ),
            (
                ContainerConfig {
                    stop_signal: Some("SIGNOPE".into()),
                    ..cfg()
                },
                host(),
                "Invalid signal: SIGNOPE",
            ),
            (
                ContainerConfig {
                    hostname: Some("h".repeat(64)),
                    ..cfg()
                },
                host(),
                "longer than 63 characters",
            ),
            (
                health(|h| h.interval = Some(-1)),
                host(),
                "Interval in Healthcheck cannot be less than 1ms",
            ),
            (
                health(|h| h.timeout = Some(999)),
                host(),
                "Timeout in Healthcheck cannot be less than 1ms",
            ),
            (
                health(|h| h.start_period = Some(-5)),
                host(),
                "StartPeriod in Healthcheck cannot be less than 1ms",
            ),
            (
                health(|h| h.retries = Some(-1)),
                host(),
                "Retries in Healthcheck cannot be negative",
            ),
            (
                cfg(),
                HostConfig {
                    shm_size: Some(-1),
                    ..host()
                },
                "SHM size can not be less than 0",
            ),
            (
                cfg(),
                HostConfig {
                    memory_swap: Some(-2),
                    ..host()
                },
                "invalid MemorySwap -2",
            ),
            (
                cfg(),
                HostConfig {
                    pids_limit: Some(PID_MAX_LIMIT + 1),
                    ..host()
                },
                "invalid PidsLimit 4194305",
            ),
            (
                cfg(),
                HostConfig {
                    memory_swap: Some(1 << 30),
                    ..host()
                },
                "You should always set the Memory limit when using Memoryswap limit, see usage",
            ),
            (
                cfg(),
                HostConfig {
                    oom_score_adj: Some(1001),
                    ..host()
                },
                "Invalid value 1001, range for oom score adj is [-1000, 1000]",
            ),
            (
                cfg(),
                HostConfig {
                    blkio_weight: Some(5),
                    ..host()
                },
                "Range of blkio weight is from 10 to 1000",
            ),
            (cfg(), sysctl("kernel.panic"), "not in a separate kernel namespace"),
            (cfg(), sysctl("net.ipv4.nope"), "not supported by this kernel"),
            (cfg(), sysctl("net.ipv4.../x"), "not supported by this kernel"),
            (
                cfg(),
                HostConfig {
                    network_mode: Some("host".into()),
                    ..sysctl("net.ipv4.ip_forward")
                },
                "shares the host's network namespace",
            ),
        ] {
            let err = check(config, host_config).unwrap_err();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn accepted_values() {
        for (config, host_config) in [
            (ContainerConfig::default(), HostConfig::default()),
            (
                ContainerConfig {
                    working_dir: Some("/srv".into()),
                    stop_signal: Some("SIGUSR1".into()),
                    hostname: Some("h".repeat(63)),
                    ..Default::default()
                },
                HostConfig {
                    shm_size: Some(0),
                    memory: Some(64 << 20),
                    oom_score_adj: Some(-1000),
                    blkio_weight: Some(0),
                    memory_swap: Some(-1),
                    pids_limit: Some(-1),
                    ..Default::default()
                },
            ),
            (
                health(|h| {
                    h.interval = Some(0);
                    h.timeout = Some(1_000_000);
                    h.retries = Some(0);
                }),
                HostConfig {
                    pids_limit: Some(PID_MAX_LIMIT),
                    ..sysctl("net.ipv4.ip_forward")
                },
            ),
            (ContainerConfig::default(), sysctl("kernel.shmmax")),
            (ContainerConfig::default(), sysctl("fs.mqueue.msg_max")),
        ] {
            assert_eq!(check(config, host_config), Ok(()));
        }
    }
}
