//! Container lifecycle: create, start, stop, kill, restart, remove, wait, rename, attach, and the
//! monitor that observes exits.

use crate::error::{EngineError, Result};
use crate::record::{write_replace, ContainerRecord, State, Status};
use crate::{lock, mkdir_all, read_lock, shim, write_lock, Container, Engine, PendingAttach};
use berth_api::models::{ContainerConfig, HostConfig, RestartPolicyNameEnum};
use berth_api::ContainerCreateBody;
use berth_shim::protocol::{ExitStatus, Request};
use berth_types::time::now_rfc3339;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::UnixStream;

/// A connection to a container's stdio through its shim: output frames come out, stdin goes in.
pub type AttachStream = BufReader<UnixStream>;

/// A registered attach request (see [`Engine::prepare_attach`]).
pub enum AttachTicket {
    /// The container runs: connect to its shim now.
    Now {
        /// The container.
        container: Arc<Container>,
        /// Forward stdin.
        stdin: bool,
        /// Send stdout.
        stdout: bool,
        /// Send stderr.
        stderr: bool,
    },
    /// Connected when the container next starts.
    Later(tokio::sync::oneshot::Receiver<Result<AttachStream>>),
}

/// Decrements the next-exit waiter count when a waiter goes away.
struct WaiterGuard(bool, Arc<Container>);

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        if self.0 {
            self.1
                .next_exit_waiters
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A boxed future that is `Send`.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

trait BoxedSend: std::future::Future + Send + Sized + 'static {
    fn boxed_send(self) -> BoxFuture<Self::Output> {
        Box::pin(self)
    }
}

impl<F: std::future::Future + Send + 'static> BoxedSend for F {}

fn futures_ready(code: i64, err: Option<String>) -> BoxFuture<(i64, Option<String>)> {
    Box::pin(async move { (code, err) })
}

/// `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return as soon as the container is not running (the default).
    NotRunning,
    /// Wait for the next exit, even if the container is not running now.
    NextExit,
    /// Wait until the container is removed.
    Removed,
}

impl WaitCondition {
    /// Parses the API's condition names.
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::InvalidArgument(format!("invalid condition: \"{other}\""))),
        }
    }
}

/// Options of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Include stopped containers.
    pub all: bool,
    /// Only the n most recently created (`-n`), 0 for no limit.
    pub limit: usize,
    /// Filters (`status`, `name`, `id`, `label`, `exited`, `ancestor`, `before`, `since`).
    pub filters: std::collections::HashMap<String, Vec<String>>,
}

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
pub(crate) fn read_exit_file(bundle: &Path) -> ExitStatus {
    std::fs::read(bundle.join("exit.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| ExitStatus {
            exit_code: 255,
            finished_at: now_rfc3339(),
            error: Some("the container's shim exited without recording an exit status".into()),
            ..Default::default()
        })
}

/// Merges the image's config under the request's, following Docker's rules.
fn merge_image_config(c: &mut ContainerConfig, image: &ContainerConfig) {
    // Env: image first, the request's values override by key.
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in c.env.clone().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    c.env = Some(env);
    // Entrypoint/Cmd: a request entrypoint drops the image's Cmd; `--entrypoint ""` resets it.
    match &c.entrypoint {
        Some(ep) if ep.len() == 1 && ep[0].is_empty() => {
            c.entrypoint = None;
            if c.cmd.as_ref().is_none_or(|v| v.is_empty()) {
                c.cmd = image.cmd.clone();
            }
        }
        Some(ep) if !ep.is_empty() => {}
        _ => {
            c.entrypoint = image.entrypoint.clone();
            if c.cmd.as_ref().is_none_or(|v| v.is_empty()) {
                c.cmd = image.cmd.clone();
            }
        }
    }
    if c.working_dir.as_deref().unwrap_or("").is_empty() {
        c.working_dir = image.working_dir.clone().filter(|w| !w.is_empty());
    }
    if c.user.as_deref().unwrap_or("").is_empty() {
        c.user = image.user.clone();
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(c.labels.clone().unwrap_or_default());
    c.labels = Some(labels);
    if c.exposed_ports.is_none() {
        c.exposed_ports = image.exposed_ports.clone();
    }
    if c.volumes.is_none() {
        c.volumes = image.volumes.clone();
    }
    if c.stop_signal.is_none() {
        c.stop_signal = image.stop_signal.clone();
    }
    if c.healthcheck.is_none() {
        c.healthcheck = image.healthcheck.clone();
    }
    if c.shell.is_none() {
        c.shell = image.shell.clone();
    }
    if c.on_build.is_none() {
        c.on_build = image.on_build.clone();
    }
}

impl Engine {
    /// `POST /containers/create`.
    pub async fn create_container(self: &Arc<Self>, name: Option<&str>, body: ContainerCreateBody) -> Result<String> {
        let mut config = body.config;
        let host_config = body.host_config.unwrap_or_default();
        let image_name = config.image.clone().unwrap_or_default();
        if image_name.is_empty() {
            return Err(EngineError::InvalidArgument(
                "config cannot be empty in order to create a container".into(),
            ));
        }
        let image = {
            let images = self.images.clone();
            let n = image_name.clone();
            tokio::task::spawn_blocking(move || images.resolve(&n))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let image_config = crate::images::image_container_config(&image);
        merge_image_config(&mut config, &image_config);
        let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(EngineError::InvalidArgument("no command specified".into()));
        }
        validate_host_config(&host_config)?;
        if let Some(rt) = host_config.runtime.as_deref() {
            if !rt.is_empty() && rt != "berth" && !self.cfg.runtimes.contains_key(rt) {
                return Err(EngineError::InvalidArgument(format!(
                    "unknown or invalid runtime name: {rt}"
                )));
            }
        }

        let id = berth_types::new_id();
        if config.hostname.as_deref().unwrap_or("").is_empty() {
            config.hostname = Some(id[..12].to_string());
        }
        let name = self.reserve_name(name, &id)?;
        let dir = self.containers_dir().join(&id);
        let result = async {
            mkdir_all(&dir)?;
            let snapshots = self.snapshots.clone();
            let cid = id.clone();
            tokio::task::spawn_blocking(move || snapshots.create_rw(&cid))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??;
            let rec = ContainerRecord {
                id: id.clone(),
                name: name.clone(),
                created: now_rfc3339(),
                path: argv[0].clone(),
                args: argv[1..].to_vec(),
                config,
                image: image.id.to_string(),
                chain_ids: image.chain_ids.clone(),
                log_path: dir.join(format!("{id}-json.log")).display().to_string(),
                runtime: host_config
                    .runtime
                    .clone()
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "berth".into()),
                host_config,
                state: State::default(),
                restart_count: 0,
            };
            rec.save(&dir)?;
            Ok::<_, EngineError>(rec)
        }
        .await;
        match result {
            Ok(rec) => {
                let c = Container::new(dir, self.bundle_dir(&id), rec);
                write_lock(&self.containers).insert(id.clone(), c);
                Ok(id)
            }
            Err(e) => {
                lock(&self.names).remove(&name);
                let _ = std::fs::remove_dir_all(&dir);
                let _ = self.snapshots.remove_rw(&id);
                Err(e)
            }
        }
    }

    /// Reserves `name` (or a generated one) for container `id`.
    fn reserve_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        let mut names = lock(&self.names);
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !berth_types::is_valid_container_name(n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                let n = n.strip_prefix('/').unwrap_or(n).to_string();
                if let Some(other) = names.get(&n) {
                    return Err(EngineError::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                names.insert(n.clone(), id.to_string());
                Ok(n)
            }
            None => {
                for retry in 0..20 {
                    let n = crate::names::random_name(retry);
                    if !names.contains_key(&n) {
                        names.insert(n.clone(), id.to_string());
                        return Ok(n);
                    }
                }
                let n = format!("berth_{}", &id[..12]);
                names.insert(n.clone(), id.to_string());
                Ok(n)
            }
        }
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        self.start_locked(&c).await
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let rec = c.record();
        match rec.state.status {
            Status::Running => return Err(EngineError::NotModified("container already started".into())),
            Status::Paused => {
                return Err(EngineError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container is marked for removal and cannot be started: {}",
                    c.id
                )))
            }
            _ => {}
        }
        let socket = self.shim_socket(&c.id);
        let bundle = c.bundle();
        mkdir_all(&bundle.join("rootfs"))?;
        let _ = std::fs::remove_file(bundle.join("exit.json"));
        let _ = std::fs::remove_file(&socket);
        let t0 = std::time::Instant::now();
        let prepared = self.prepare_bundle(&rec, &bundle).await;
        let t_prepared = t0.elapsed();
        let ready = match prepared {
            Ok(()) => {
                let shim_path = self.cfg.shim_path.clone();
                let (b, s) = (bundle.clone(), socket.clone());
                tokio::task::spawn_blocking(move || berth_shim::launch(&shim_path, &b, &s))
                    .await
                    .map_err(|e| EngineError::Internal(e.to_string()))
                    .and_then(|r| r.map_err(|e| EngineError::Internal(format!("starting the container's shim: {e}"))))
            }
            Err(e) => Err(e),
        };
        let failure = match ready {
            Ok(r) => match (r.pid, r.error) {
                (Some(pid), None) => Ok(pid),
                (_, err) => Err(EngineError::StartFailed {
                    message: err.unwrap_or_else(|| "the shim reported no pid".into()),
                    exit_code: r.exit_code.unwrap_or(125),
                }),
            },
            Err(e) => Err(e),
        };
        let pid = match failure {
            Ok(pid) => pid,
            Err(e) => return Err(self.fail_start(c, &rec, e)),
        };
        let t_ready = t0.elapsed();
        // Hand the shim's stdio to clients that attached before the start, then let it exec.
        let pending: Vec<PendingAttach> = {
            let mut p = lock(&c.pending_attach);
            p.accepting = false;
            std::mem::take(&mut p.list)
        };
        // Exits of runs started for attached clients stay claimable by a late `next-exit` waiter.
        let claimable = !pending.is_empty() && c.next_exit_waiters.load(std::sync::atomic::Ordering::SeqCst) == 0;
        c.late_wait_ok.store(claimable, std::sync::atomic::Ordering::SeqCst);
        for p in pending {
            let stream = self.attach_now(c, p.stdin, p.stdout, p.stderr).await;
            let _ = p.reply.send(stream);
        }
        if let Err(e) = shim::simple(&c.id, &socket, Request::Start).await {
            // The process could not exec (the runtime reports why); the shim records the exit and goes.
            let _ = shim::simple(&c.id, &socket, Request::Kill { signal: libc::SIGKILL }).await;
            lock(&c.pending_attach).accepting = true;
            let message = match e {
                EngineError::Shim { message, .. } => message,
                other => other.to_string(),
            };
            let exit_code = start_error_exit_code(&message);
            return Err(self.fail_start(c, &rec, EngineError::StartFailed { message, exit_code }));
        }
        c.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = pid as i64;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.state.stopped_by_user = false;
            r.state.started_at = now_rfc3339();
        })?;
        c.events.send_modify(|e| {
            e.running = true;
            e.error = None;
        });
        self.spawn_monitor(c.clone());
        tracing::debug!(
            "started {}: bundle {:?}, shim ready {:?}, running {:?}",
            berth_types::short_id(&c.id),
            t_prepared,
            t_ready,
            t0.elapsed()
        );
        Ok(())
    }

    /// Records a failed start as Docker does (exit code and error on the container, which stays
    /// `created`), releases waiting clients, and applies `--rm`.
    fn fail_start(self: &Arc<Self>, c: &Arc<Container>, rec: &ContainerRecord, e: EngineError) -> EngineError {
        let code = match &e {
            EngineError::StartFailed { exit_code, .. } => *exit_code,
            _ => 125,
        };
        let msg = e.to_string();
        if let Err(err) = c.update(|r| {
            r.state.exit_code = code as i64;
            r.state.error = msg.clone();
        }) {
            tracing::warn!("recording the failed start of {}: {err}", c.id);
        }
        self.fail_pending_attaches(c, &msg);
        c.events.send_modify(|ev| {
            ev.exit_code = code as i64;
            ev.error = Some(msg.clone());
        });
        if rec.host_config.auto_remove.unwrap_or(false) {
            // `--rm` also applies to a container that could not start.
            let engine = self.clone();
            let id = c.id.clone();
            tokio::spawn(async move {
                let _ = engine.remove(&id, true).await;
            });
        }
        e
    }

    fn fail_pending_attaches(&self, c: &Container, msg: &str) {
        let list = std::mem::take(&mut lock(&c.pending_attach).list);
        for p in list {
            let _ = p.reply.send(Err(EngineError::Conflict(msg.to_string())));
        }
    }

    /// Watches a running container until its shim reports the exit.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let socket = engine.shim_socket(&c.id);
            let status = match shim::wait(&c.id, &socket).await {
                Ok(Some(st)) => st,
                _ => read_exit_file(&c.bundle()),
            };
            engine.on_exit(c, status).await;
        });
    }

    /// Records an exit, wakes waiters, and applies `--rm` and the restart policy.
    pub(crate) async fn on_exit(self: &Arc<Self>, c: Arc<Container>, st: ExitStatus) {
        let saved = c.update(|r| {
            r.state.status = Status::Exited;
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
        if let Err(e) = saved {
            tracing::error!("recording the exit of {}: {e}", c.id);
        }
        lock(&c.pending_attach).accepting = true;
        c.events.send_modify(|e| {
            e.running = false;
            e.exits += 1;
            e.exit_code = st.exit_code as i64;
            e.error = st.error.clone();
            e.claimable = c.late_wait_ok.swap(false, std::sync::atomic::Ordering::SeqCst);
            e.finished = Some(std::time::Instant::now());
        });
        let rec = c.record();
        if rec.host_config.auto_remove.unwrap_or(false) {
            if let Err(e) = self.remove(&c.id, true).await {
                tracing::warn!("auto-removing container {}: {e}", berth_types::short_id(&c.id));
            }
            return;
        }
        if self.should_restart(&rec) {
            let engine = self.clone();
            let delay = Duration::from_millis(100u64.saturating_mul(1 << rec.restart_count.clamp(0, 10)));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _op = c.op.lock().await;
                let r = c.record();
                if r.state.status != Status::Exited || r.state.stopped_by_user {
                    return;
                }
                let _ = c.update(|r| r.restart_count += 1);
                if let Err(e) = engine.start_locked(&c).await {
                    tracing::warn!("restarting container {}: {e}", berth_types::short_id(&c.id));
                }
            });
        }
    }

    fn should_restart(&self, rec: &ContainerRecord) -> bool {
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
        if rec.state.status != Status::Running && rec.state.status != Status::Paused {
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        let sig = match signal.filter(|s| !s.is_empty()).or(rec.config.stop_signal.as_deref()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGTERM,
        };
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        c.update(|r| r.state.stopped_by_user = true)?;
        let mut rx = c.events.subscribe();
        let socket = self.shim_socket(&c.id);
        let _ = shim::simple(&c.id, &socket, Request::Kill { signal: sig }).await;
        let stopped = if timeout < 0 {
            wait_not_running(&mut rx).await;
            true
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), wait_not_running(&mut rx))
                .await
                .is_ok()
        };
        if !stopped {
            let _ = shim::simple(&c.id, &socket, Request::Kill { signal: libc::SIGKILL }).await;
            wait_not_running(&mut rx).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.lookup(name)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGKILL,
        };
        let rec = c.record();
        if rec.state.status != Status::Running && rec.state.status != Status::Paused {
            return Err(EngineError::Conflict(format!(
                "Cannot kill container: {name}: container {} is not running",
                c.id
            )));
        }
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            c.update(|r| r.state.stopped_by_user = true)?;
        }
        let mut rx = c.events.subscribe();
        shim::simple(&c.id, &self.shim_socket(&c.id), Request::Kill { signal: sig }).await?;
        if sig == libc::SIGKILL {
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
        self.start_locked(&c).await
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        match rec.state.status {
            Status::Running | Status::Paused | Status::Restarting => {
                if !force {
                    return Err(EngineError::Conflict(format!(
                        "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                        rec.name
                    )));
                }
                let mut rx = c.events.subscribe();
                c.update(|r| r.state.stopped_by_user = true)?;
                let _ = shim::simple(&c.id, &self.shim_socket(&c.id), Request::Kill { signal: libc::SIGKILL }).await;
                if tokio::time::timeout(Duration::from_secs(15), wait_not_running(&mut rx))
                    .await
                    .is_err()
                {
                    return Err(EngineError::Internal(format!(
                        "could not kill running container {}, cannot remove",
                        c.id
                    )));
                }
            }
            Status::Removing => {
                return Err(EngineError::Conflict(format!(
                    "removal of container {} is already in progress",
                    c.id
                )))
            }
            _ => {}
        }
        c.update_in_memory(|r| r.state.status = Status::Removing);
        self.fail_pending_attaches(&c, "the container is being removed");
        // Move the container's directory to the trash (one rename), then delete it and the writable
        // layer in the background: deleting is slow on some disks (online discard) and `run --rm`
        // waits for the removal. The trash is emptied again at the next start if the daemon dies.
        let trash = self.trash_dir().join(&c.id);
        if let Err(e) = std::fs::rename(&c.dir, &trash) {
            c.update_in_memory(|r| r.state.status = Status::Dead);
            return Err(EngineError::io("moving to the trash", &c.dir, e));
        }
        let _ = std::fs::remove_dir_all(c.bundle());
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.empty_trash());
        write_lock(&self.containers).remove(&c.id);
        lock(&self.names).remove(&rec.name);
        let _ = std::fs::remove_file(self.shim_socket(&c.id));
        {
            let mut t = lock(&self.removed);
            t.push_back(crate::Tombstone {
                id: c.id.clone(),
                name: rec.name.clone(),
                exit_code: c.record().state.exit_code,
                error: c.events.borrow().error.clone(),
                at: std::time::Instant::now(),
            });
            while t.len() > 256 {
                t.pop_front();
            }
        }
        c.events.send_modify(|e| e.removed = true);
        Ok(())
    }

    /// Where removed containers' directories wait for deletion.
    pub(crate) fn trash_dir(&self) -> std::path::PathBuf {
        self.cfg.data_root.join("trash")
    }

    /// Deletes what the trash holds: each entry is a removed container's directory, named by its ID,
    /// whose writable layer goes with it.
    pub(crate) fn empty_trash(&self) {
        let _serial = lock(&self.trash_lock);
        let Ok(entries) = std::fs::read_dir(self.trash_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Err(err) = self.snapshots.remove_rw(&id) {
                tracing::warn!("removing the writable layer of {id}: {err}");
                continue;
            }
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                tracing::warn!("removing {}: {err}", e.path().display());
            }
        }
    }

    /// `POST /containers/{id}/wait`: registers the waiter now and returns the future of the exit code
    /// and error of the awaited run.
    ///
    /// Docker clients send `wait?condition=next-exit` (or `removed` with `--rm`) concurrently with
    /// `start`; with a fast container the exit can precede the wait. An exit of a run that was started
    /// for attached clients while no waiter was registered stays claimable by one late `next-exit`
    /// waiter, and a removed container's exit is remembered briefly for late `removed` waiters.
    pub fn prepare_wait(
        self: &Arc<Self>,
        name: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<(i64, Option<String>)>> {
        let c = match self.lookup(name) {
            Ok(c) => c,
            Err(EngineError::NoSuchContainer(n)) => {
                return match self.tombstone(&n) {
                    Some((code, err)) => Ok(futures_ready(code, err)),
                    None => Err(EngineError::NoSuchContainer(n)),
                }
            }
            Err(e) => return Err(e),
        };
        let mut rx = c.events.subscribe();
        let start = rx.borrow_and_update().clone();
        if condition == WaitCondition::NextExit && !start.running && start.claimable {
            let recent = start.finished.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
            if recent {
                c.events.send_modify(|e| e.claimable = false);
                return Ok(futures_ready(start.exit_code, start.error));
            }
        }
        let done = move |e: &crate::RunEvent| match condition {
            WaitCondition::NotRunning => !e.running,
            WaitCondition::NextExit => e.exits > start.exits,
            WaitCondition::Removed => e.removed,
        };
        if condition == WaitCondition::NextExit {
            c.next_exit_waiters.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let guard = WaiterGuard(condition == WaitCondition::NextExit, c.clone());
        Ok(async move {
            let _guard = guard;
            let now = rx.borrow_and_update().clone();
            if done(&now) {
                return (now.exit_code, now.error);
            }
            loop {
                if rx.changed().await.is_err() {
                    let e = rx.borrow().clone();
                    return (e.exit_code, e.error);
                }
                let e = rx.borrow_and_update().clone();
                if done(&e) {
                    return (e.exit_code, e.error);
                }
            }
        }
        .boxed_send())
    }

    /// The last exit of a container removed in the last 30 seconds, by ID, prefix or name.
    fn tombstone(&self, name: &str) -> Option<(i64, Option<String>)> {
        let key = name.strip_prefix('/').unwrap_or(name);
        let mut t = lock(&self.removed);
        t.retain(|x| x.at.elapsed() < Duration::from_secs(30));
        t.iter()
            .rev()
            .find(|x| x.id == key || x.name == key || (key.len() >= 4 && x.id.starts_with(key)))
            .map(|x| (x.exit_code, x.error.clone()))
    }

    /// `POST /containers/{id}/rename`.
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !berth_types::is_valid_container_name(new_name) {
            return Err(EngineError::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = c.record().name;
        if old == new_name {
            return Err(EngineError::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        {
            let mut names = lock(&self.names);
            if let Some(other) = names.get(new_name) {
                return Err(EngineError::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            names.remove(&old);
            names.insert(new_name.to_string(), c.id.clone());
        }
        c.update(|r| r.name = new_name.to_string())
    }

    /// `POST /containers/{id}/attach`, first half: registers the client now (so a `start` that follows
    /// the response cannot miss it) and returns a ticket and whether the container has a TTY.
    pub fn prepare_attach(&self, name: &str, stdin: bool, stdout: bool, stderr: bool) -> Result<(AttachTicket, bool)> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let tty = rec.config.tty.unwrap_or(false);
        match rec.state.status {
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is paused, unpause the container before attach",
                    c.id
                )))
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!("container {} is being removed", c.id)))
            }
            _ => {}
        }
        let mut pending = lock(&c.pending_attach);
        if !pending.accepting {
            drop(pending);
            return Ok((
                AttachTicket::Now {
                    container: c,
                    stdin,
                    stdout,
                    stderr,
                },
                tty,
            ));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        pending.list.push(PendingAttach {
            stdin,
            stdout,
            stderr,
            reply: tx,
        });
        Ok((AttachTicket::Later(rx), tty))
    }

    /// Second half of attach: the stream, once the container runs.
    pub async fn finish_attach(&self, ticket: AttachTicket) -> Result<AttachStream> {
        match ticket {
            AttachTicket::Now {
                container,
                stdin,
                stdout,
                stderr,
            } => self.attach_now(&container, stdin, stdout, stderr).await,
            AttachTicket::Later(rx) => rx
                .await
                .map_err(|_| EngineError::Conflict("the container was removed before it started".into()))?,
        }
    }

    async fn attach_now(&self, c: &Container, stdin: bool, stdout: bool, stderr: bool) -> Result<AttachStream> {
        let socket = self.shim_socket(&c.id);
        let (_, stream) = shim::call(&c.id, &socket, &Request::Attach { stdin, stdout, stderr }).await?;
        Ok(stream)
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let c = self.lookup(name)?;
        if c.record().state.status != Status::Running {
            return Err(EngineError::Conflict(format!("Container {} is not running", c.id)));
        }
        shim::simple(&c.id, &self.shim_socket(&c.id), Request::Resize { height, width })
            .await
            .map(|_| ())
    }

    /// `POST /containers/prune`: removes stopped containers; returns their IDs.
    pub async fn prune_containers(self: &Arc<Self>) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for c in self.all_containers() {
            let st = c.record().state.status;
            if matches!(st, Status::Exited | Status::Created | Status::Dead) && self.remove(&c.id, false).await.is_ok()
            {
                removed.push(c.id.clone());
            }
        }
        Ok(removed)
    }

    /// Writes the OCI spec and the shim options into the bundle.
    async fn prepare_bundle(&self, rec: &ContainerRecord, bundle: &Path) -> Result<()> {
        let (spec, shim_config) = crate::spec::build(self, rec).await?;
        let spec_json =
            serde_json::to_vec(&spec).map_err(|e| EngineError::Internal(format!("encoding config.json: {e}")))?;
        write_replace(&bundle.join("config.json"), &spec_json, false)?;
        let shim_json =
            serde_json::to_vec(&shim_config).map_err(|e| EngineError::Internal(format!("encoding shim.json: {e}")))?;
        write_replace(&bundle.join("shim.json"), &shim_json, false)
    }

    /// Number of containers per state (running, paused, stopped) for `/info`.
    pub fn container_counts(&self) -> (i64, i64, i64) {
        let containers = read_lock(&self.containers);
        let mut counts = (0, 0, 0);
        for c in containers.values() {
            match c.record().state.status {
                Status::Running | Status::Restarting => counts.0 += 1,
                Status::Paused => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }
}

async fn wait_not_running(rx: &mut tokio::sync::watch::Receiver<crate::RunEvent>) {
    while rx.borrow_and_update().running {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Rejects host configs Docker would reject.
fn validate_host_config(h: &HostConfig) -> Result<()> {
    if let Some(m) = h.memory {
        if m != 0 && m < 6 * 1024 * 1024 {
            return Err(EngineError::InvalidArgument(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
    }
    if let (Some(m), Some(s)) = (h.memory, h.memory_swap) {
        if s > 0 && m > 0 && s < m {
            return Err(EngineError::InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
    }
    if let Some(n) = h.nano_cpus {
        if n < 0 || (n > 0 && n < 10_000_000) {
            return Err(EngineError::InvalidArgument(
                "Range of CPUs is from 0.01 to the number of CPUs available".into(),
            ));
        }
        if n > 0 && (h.cpu_quota.unwrap_or(0) > 0 || h.cpu_period.unwrap_or(0) > 0) {
            return Err(EngineError::InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
    }
    if h.auto_remove.unwrap_or(false) {
        if let Some(p) = &h.restart_policy {
            if matches!(
                p.name,
                Some(RestartPolicyNameEnum::ALWAYS)
                    | Some(RestartPolicyNameEnum::UNLESS_STOPPED)
                    | Some(RestartPolicyNameEnum::ON_FAILURE)
            ) {
                return Err(EngineError::InvalidArgument(
                    "can't create 'AutoRemove' container with restart policy".into(),
                ));
            }
        }
    }
    Ok(())
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

    #[test]
    fn merge_follows_docker() {
        let image = ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        // Request Cmd replaces the image Cmd; env overrides by key.
        let mut c = ContainerConfig {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert_eq!(c.cmd.as_deref(), Some(&["echo".to_string(), "hi".to_string()][..]));
        assert_eq!(
            c.env.as_deref(),
            Some(&["PATH=/bin".to_string(), "A=2".to_string()][..])
        );
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        // A request entrypoint drops the image Cmd.
        let mut c = ContainerConfig {
            entrypoint: Some(vec!["ls".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert_eq!(c.cmd, None);
        // No request command: the image's.
        let mut c = ContainerConfig::default();
        merge_image_config(&mut c, &image);
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
    }
}
