//! Start, stop, kill and restart, the monitor that observes exits, and the restart policy.
//!
//! A start builds the run plan, launches the shim (which creates the container with its process
//! blocked before exec), lets the network service set up the new namespaces, hands the shim's stdio
//! to clients that attached before the start, and then lets the process exec.

use super::{blocking, mkdir_all, ContainerService};
use crate::error::{EngineError, Result};
use crate::network::{Endpoint, NetworkRequest};
use crate::plan::{self, PlanInputs, RunPlan};
use crate::record::{write_replace, ContainerRecord};
use crate::registry::{Container, RunEvent};
use crate::shim;
use crate::state::{Operation, Status, Transition};
use berth_api::models::RestartPolicyNameEnum;
use berth_shim::protocol::{ExitStatus, Request};
use berth_types::time::now_rfc3339;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Parses a signal given by name (`SIGTERM`, `TERM`) or number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(EngineError::InvalidArgument(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| EngineError::InvalidArgument(format!("Invalid signal: {s}")))
}

/// Docker's exit code for a process that could not be started, chosen from the runtime's message as
/// dockerd and the docker CLI do.
pub(crate) fn start_error_exit_code(message: &str) -> i32 {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Reads the exit status a shim left behind; a missing file means the shim died without recording it.
pub(crate) fn read_exit_file(bundle: &Path) -> Option<ExitStatus> {
    std::fs::read(bundle.join("exit.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// The exit reported for a shim that went away without recording one.
pub(crate) fn lost_exit() -> ExitStatus {
    ExitStatus {
        exit_code: 255,
        finished_at: now_rfc3339(),
        error: Some("the container's shim exited without recording an exit status".into()),
        ..Default::default()
    }
}

pub(crate) async fn wait_not_running(rx: &mut tokio::sync::watch::Receiver<RunEvent>) {
    while rx.borrow_and_update().running {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

impl ContainerService {
    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        self.start_locked(&c).await
    }

    pub(crate) async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let rec = c.record();
        // Refuse early what the state machine will refuse.
        rec.state.status.apply(Transition::Start, &c.id, &rec.name)?;
        // Never a second shim on a bundle that has one (a crash between launch and record).
        if let Some(state) = shim::state(&c.id, &c.socket).await {
            // A shim whose init has exited is only finishing up (a quick restart): wait for it.
            if state.started && state.running {
                tracing::info!("container {} already runs under its shim; re-adopting", c.id);
                self.adopt(c, state.pid.unwrap_or(0));
                return Err(EngineError::NotModified("container already started".into()));
            }
            shim::kill_and_wait(&c.id, &c.socket).await;
        }
        mkdir_all(&c.bundle.join("rootfs"))?;
        let _ = std::fs::remove_file(c.bundle.join("exit.json"));
        let _ = std::fs::remove_file(&c.socket);
        let t0 = std::time::Instant::now();
        let launched = async {
            let plan = self.plan(&rec).await?;
            write_bundle(&c.bundle, &plan)?;
            let shim_path = self.runtimes.shim.clone();
            let (b, s) = (c.bundle.clone(), c.socket.clone());
            let ready = tokio::task::spawn_blocking(move || berth_shim::launch(&shim_path, &b, &s))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?
                .map_err(|e| EngineError::Internal(format!("starting the container's shim: {e}")))?;
            match (ready.pid, ready.error) {
                (Some(pid), None) => Ok(pid),
                (_, err) => Err(EngineError::StartFailed {
                    message: err.unwrap_or_else(|| "the shim reported no pid".into()),
                    exit_code: ready.exit_code.unwrap_or(125),
                }),
            }
        }
        .await;
        let pid = match launched {
            Ok(pid) => pid,
            Err(e) => return Err(self.fail_start(c, &rec, e).await),
        };
        let t_ready = t0.elapsed();
        // The namespaces exist and the process waits before exec: the network goes in now.
        let (nets, nid) = (self.networks.clone(), c.id.clone());
        if let Err(e) = super::blocking(move || nets.setup(&nid, pid)).await {
            shim::kill_and_wait(&c.id, &c.socket).await;
            return Err(self.fail_start(c, &rec, e).await);
        }
        // Hand the shim's stdio to clients that attached before the start, then let it exec.
        for p in c.begin_run() {
            let stream = self.attach_now(c, p.stdin, p.stdout, p.stderr).await;
            let _ = p.reply.send(stream);
        }
        if let Err(e) = shim::simple(&c.id, &c.socket, Request::Start).await {
            // The process could not exec (the runtime reports why); the shim records the exit and goes.
            shim::kill_and_wait(&c.id, &c.socket).await;
            let message = match e {
                EngineError::Shim { message, .. } => message,
                other => other.to_string(),
            };
            let exit_code = start_error_exit_code(&message);
            return Err(self
                .fail_start(c, &rec, EngineError::StartFailed { message, exit_code })
                .await);
        }
        c.transition(Transition::Start, |r| {
            r.state.pid = pid as i64;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.state.stopped_by_user = false;
            r.state.started_at = now_rfc3339();
        })?;
        // Saved in the background: a daemon killed before the save finds the shim running and
        // re-adopts the container (see `reconcile`), so `run` does not wait for the disk.
        c.save_later();
        c.mark_running();
        self.publish(c, "start", &[]);
        self.spawn_monitor(c.clone());
        tracing::debug!(
            "started {}: shim ready {:?}, running {:?}",
            berth_types::short_id(&c.id),
            t_ready,
            t0.elapsed()
        );
        Ok(())
    }

    /// Gathers the run plan's inputs from the services and builds it.
    async fn plan(&self, rec: &ContainerRecord) -> Result<RunPlan> {
        let hc = &rec.host_config;
        let snapshots = self.snapshots.clone();
        let (id, chains) = (rec.id.clone(), rec.chain_ids.clone());
        let user_spec = rec.config.user.clone().unwrap_or_default();
        let group_add = hc.group_add.clone().unwrap_or_default();
        let (user, rootfs) = blocking(move || {
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
            Ok((user, snapshots.rootfs_mount(&id, &chains)?))
        })
        .await?;
        let id_map = plan::userns(rec, self.id_map.as_ref())?;
        let owner = match &id_map {
            Some(m) => Some(m.root_pair().map_err(|e| EngineError::Internal(e.to_string()))?),
            None => None,
        };
        let request = NetworkRequest::parse(hc.network_mode.as_deref().unwrap_or(""), |other| {
            let other = self.lookup(other)?.record();
            if other.state.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    other.id
                )));
            }
            Ok(other.state.pid)
        })?;
        let hostname = plan::hostname(rec);
        let dir = self.containers_dir.join(&rec.id);
        let networks = self.run_networks(rec);
        let links = self.resolve_links(rec, &networks)?;
        let ports = crate::network::ports::requests(
            hc.port_bindings.as_ref(),
            rec.config.exposed_ports.as_ref(),
            hc.publish_all_ports.unwrap_or(false),
        )?;
        let network = self.networks.attach(&Endpoint {
            id: &rec.id,
            name: &rec.name,
            hostname: &hostname,
            domainname: rec.config.domainname.as_deref().unwrap_or(""),
            dir: &dir,
            request,
            networks,
            ports,
            dns: crate::network::etc::DnsSettings {
                servers: hc.dns.clone().unwrap_or_default(),
                search: hc.dns_search.clone().unwrap_or_default(),
                options: hc.dns_options.clone().unwrap_or_default(),
            },
            extra_hosts: hc.extra_hosts.as_deref().unwrap_or_default(),
            links,
            owner,
        })?;
        let mounts = self.run_mounts(rec).await?;
        let init = if hc.init.unwrap_or(false) {
            Some(self.runtimes.init()?)
        } else {
            None
        };
        plan::build(PlanInputs {
            rec,
            bundle: &self.bundles_dir.join(&rec.id),
            user,
            rootfs,
            network,
            mounts,
            runtime_path: self.runtimes.path(&rec.runtime)?,
            init,
            id_map,
            default_ulimits: self.default_ulimits(),
        })
    }

    /// Records a failed start as Docker does (exit code and error on the container, which stays
    /// `created`, or `exited` if it ran before), durably; releases waiting clients, and applies `--rm`.
    async fn fail_start(self: &Arc<Self>, c: &Arc<Container>, rec: &ContainerRecord, e: EngineError) -> EngineError {
        let code = match &e {
            EngineError::StartFailed { exit_code, .. } => *exit_code,
            _ => 125,
        };
        let msg = e.to_string();
        self.teardown_network(&c.id).await;
        let moved = c.transition(Transition::StartFailed, |r| {
            r.state.exit_code = code as i64;
            r.state.error = msg.clone();
        });
        if let Err(err) = moved {
            tracing::warn!("recording the failed start of {}: {err}", c.id);
        }
        self.fail_pending_attaches(c, &msg);
        c.end_run(code as i64, Some(msg.clone()), false);
        if rec.host_config.auto_remove.unwrap_or(false) {
            // `--rm` also applies to a container that could not start.
            let svc = self.clone();
            let id = c.id.clone();
            tokio::spawn(async move {
                let _ = svc.remove(&id, true, true).await;
            });
        } else if let Err(err) = c.save().await {
            tracing::warn!("recording the failed start of {}: {err}", c.id);
        }
        e
    }

    /// Takes over a container whose shim runs (after a daemon restart).
    pub(crate) fn adopt(self: &Arc<Self>, c: &Arc<Container>, pid: i32) {
        let moved = c.transition(Transition::Start, |r| {
            if pid > 0 {
                r.state.pid = pid as i64;
            }
            if r.state.started_at.is_empty() {
                r.state.started_at = now_rfc3339();
            }
        });
        if moved.is_ok() {
            c.save_later();
        }
        c.mark_running();
        self.spawn_monitor(c.clone());
    }

    /// Watches a running container until its shim reports the exit.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>) {
        self.spawn_health(&c);
        let svc = self.clone();
        tokio::spawn(async move {
            let status = match shim::wait(&c.id, &c.socket).await {
                Ok(Some(st)) => st,
                _ => read_exit_file(&c.bundle).unwrap_or_else(lost_exit),
            };
            svc.on_exit(c, status).await;
        });
    }

    /// Records an exit, wakes waiters, and applies `--rm` and the restart policy.
    pub(crate) async fn on_exit(self: &Arc<Self>, c: Arc<Container>, st: ExitStatus) {
        self.teardown_network(&c.id).await;
        {
            let (vols, id, mounts) = (self.volumes.clone(), c.id.clone(), c.record().mounts);
            let _ = tokio::task::spawn_blocking(move || vols.unmount(&id, &mounts)).await;
        }
        let moved = c.transition(Transition::Exit, |r| {
            r.state.pid = 0;
            r.state.exit_code = st.exit_code as i64;
            r.state.oom_killed = st.oom_killed;
            r.state.finished_at = if st.finished_at.is_empty() {
                now_rfc3339()
            } else {
                st.finished_at.clone()
            };
            if let Some(e) = &st.error {
                r.state.error = e.clone();
            }
        });
        let auto_remove = c.record().host_config.auto_remove.unwrap_or(false);
        match moved {
            // A `--rm` container is removed next: a save now would only delay the removal (which
            // waits for a save in flight). A crash before the removal finds the exit in the shim's
            // exit.json and removes the container then.
            Ok(()) if auto_remove => {}
            // The shim's exit.json keeps the exit across a daemon crash until the record is saved.
            Ok(()) => c.save_later(),
            Err(e) => tracing::error!("recording the exit of {}: {e}", c.id),
        }
        c.end_run(st.exit_code as i64, st.error.clone(), true);
        if st.oom_killed {
            self.publish(&c, "oom", &[]);
        }
        self.publish(&c, "die", &[("exitCode", st.exit_code.to_string())]);
        let rec = c.record();
        if rec.host_config.auto_remove.unwrap_or(false) {
            match self.remove(&c.id, true, true).await {
                // An `rm -f` that caused this exit removed it already.
                Ok(()) | Err(EngineError::NoSuchContainer(_)) => {}
                Err(e) => tracing::warn!("auto-removing container {}: {e}", berth_types::short_id(&c.id)),
            }
            return;
        }
        if should_restart(&rec) {
            self.schedule_restart(c);
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout.
    pub async fn stop(self: &Arc<Self>, name: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        self.stop_locked(&c, signal, timeout).await
    }

    async fn stop_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let rec = c.record();
        rec.state.status.check(Operation::Stop, &c.id, &rec.name)?;
        let sig = match signal.filter(|s| !s.is_empty()).or(rec.config.stop_signal.as_deref()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGTERM,
        };
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        // Durable before the signal: a restarted daemon must not apply the restart policy.
        c.modify(|r| r.state.stopped_by_user = true);
        c.save().await?;
        self.cancel_restart(c);
        let mut rx = c.events.subscribe();
        self.publish(c, "kill", &[("signal", sig.to_string())]);
        let _ = shim::simple(&c.id, &c.socket, Request::Kill { signal: sig }).await;
        // A frozen process gets the signal once thawed.
        self.thaw_if_paused(c).await;
        let stopped = if timeout < 0 {
            wait_not_running(&mut rx).await;
            true
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), wait_not_running(&mut rx))
                .await
                .is_ok()
        };
        if !stopped {
            self.publish(c, "kill", &[("signal", libc::SIGKILL.to_string())]);
            let _ = shim::simple(&c.id, &c.socket, Request::Kill { signal: libc::SIGKILL }).await;
            wait_not_running(&mut rx).await;
        }
        self.publish(c, "stop", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.lookup(name)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGKILL,
        };
        c.status().check(Operation::Kill, &c.id, name)?;
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            c.modify(|r| r.state.stopped_by_user = true);
            c.save().await?;
        }
        if c.status() == Status::Restarting {
            self.cancel_restart(&c);
            return Ok(());
        }
        let mut rx = c.events.subscribe();
        self.publish(&c, "kill", &[("signal", sig.to_string())]);
        shim::simple(&c.id, &c.socket, Request::Kill { signal: sig }).await?;
        if sig == libc::SIGKILL {
            // dockerd thaws a paused container it kills; other signals wait for the unpause.
            self.thaw_if_paused(&c).await;
            // Docker returns from a SIGKILL only once the container is gone.
            let _ = tokio::time::timeout(Duration::from_secs(10), wait_not_running(&mut rx)).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(self: &Arc<Self>, name: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        match self.stop_locked(&c, signal, timeout).await {
            Ok(()) | Err(EngineError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        self.start_locked(&c).await?;
        self.publish(&c, "restart", &[]);
        Ok(())
    }
}

/// Whether the restart policy starts the container again after this exit.
fn should_restart(rec: &ContainerRecord) -> bool {
    if rec.state.stopped_by_user {
        return false;
    }
    let Some(policy) = rec.host_config.restart_policy.as_ref() else {
        return false;
    };
    match policy.name {
        Some(RestartPolicyNameEnum::ALWAYS) | Some(RestartPolicyNameEnum::UNLESS_STOPPED) => true,
        Some(RestartPolicyNameEnum::ON_FAILURE) => {
            let max = policy.maximum_retry_count.unwrap_or(0);
            rec.state.exit_code != 0 && (max == 0 || rec.restart_count < max)
        }
        _ => false,
    }
}

/// Writes the OCI spec and the shim options into the bundle (regenerated at every start: atomic,
/// no fsync).
fn write_bundle(bundle: &Path, plan: &RunPlan) -> Result<()> {
    let spec =
        serde_json::to_vec(&plan.spec).map_err(|e| EngineError::Internal(format!("encoding config.json: {e}")))?;
    write_replace(&bundle.join("config.json"), &spec, false)?;
    let shim = serde_json::to_vec(&plan.shim).map_err(|e| EngineError::Internal(format!("encoding shim.json: {e}")))?;
    write_replace(&bundle.join("shim.json"), &shim, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_map_to_dockers_exit_codes() {
        assert_eq!(
            start_error_exit_code("exec: \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_error_exit_code("exec /sbin/docker-init: no such file or directory"),
            127
        );
        assert_eq!(start_error_exit_code("exec: \"/etc\": is a directory"), 126);
        assert_eq!(start_error_exit_code("exec /etc/passwd: permission denied"), 126);
        assert_eq!(start_error_exit_code("mounting /proc: device busy"), 125);
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    fn rec_with(policy: Option<RestartPolicyNameEnum>, max: i64, exit: i64, count: i64) -> ContainerRecord {
        let hc = berth_api::models::HostConfig {
            restart_policy: Some(berth_api::models::RestartPolicy {
                name: policy,
                maximum_retry_count: Some(max),
            }),
            ..Default::default()
        };
        ContainerRecord {
            id: "x".into(),
            name: "x".into(),
            created: String::new(),
            path: "true".into(),
            args: vec![],
            config: Default::default(),
            host_config: hc,
            image: String::new(),
            chain_ids: vec![],
            state: crate::state::State {
                exit_code: exit,
                ..Default::default()
            },
            restart_count: count,
            networks: Default::default(),
            mounts: Vec::new(),
            log_path: String::new(),
            runtime: String::new(),
        }
    }

    #[test]
    fn restart_policies() {
        use RestartPolicyNameEnum as P;
        assert!(should_restart(&rec_with(Some(P::ALWAYS), 0, 0, 5)));
        assert!(should_restart(&rec_with(Some(P::UNLESS_STOPPED), 0, 0, 0)));
        assert!(!should_restart(&rec_with(Some(P::NO), 0, 1, 0)));
        assert!(!should_restart(&rec_with(Some(P::ON_FAILURE), 0, 0, 0)));
        assert!(should_restart(&rec_with(Some(P::ON_FAILURE), 0, 1, 9)));
        assert!(should_restart(&rec_with(Some(P::ON_FAILURE), 3, 1, 2)));
        assert!(!should_restart(&rec_with(Some(P::ON_FAILURE), 3, 1, 3)));
        let mut stopped = rec_with(Some(P::ALWAYS), 0, 0, 0);
        stopped.state.stopped_by_user = true;
        assert!(!should_restart(&stopped));
    }
}
