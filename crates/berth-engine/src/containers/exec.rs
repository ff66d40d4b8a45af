//! `docker exec`: extra processes in a running container, run by the container's shim.
//!
//! An exec is created (`POST /containers/{id}/exec`: a record, an ID, the `exec_create` event),
//! then started once (`POST /exec/{id}/start`): the engine builds the OCI process from the one in
//! the bundle's `config.json` (so it has the container's capabilities, rlimits, no-new-privileges
//! and environment) with the exec's command, environment, user, working directory and terminal, and
//! asks the shim for it in one request (`exec` with `attach` when a client is attached and `start`;
//! an older shim gets `attach` and `start` as requests of their own). A task waits for the exit through the shim and records it (`exec_die`). The shim
//! survives a daemon restart, so a re-adopted container takes execs like any other.
//!
//! Exec records live in memory, as dockerd's do: they are inspectable until their container is
//! removed (`ExecIDs` in the container's inspect lists the ones that have not exited).

use super::attach::{AttachStream, BoxFuture};
use super::ContainerService;
use crate::error::{EngineError, Result};
use crate::lock;
use crate::registry::Container;
use crate::shim;
use crate::state::Operation;
use berth_api::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use berth_runtime::oci_spec::runtime::{LinuxCapabilities, Process};
use berth_runtime::ResolvedUser;
use berth_shim::protocol::{Request, Streams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Where an exec is in its life: created, started once, exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecStatus {
    /// Created, not started.
    #[default]
    Created,
    /// Started (its process may still be being set up: `pid` is 0 until the shim answers).
    Running,
    /// The process ended, or could not be started.
    Exited,
}

/// A move of an exec's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecTransition {
    /// `POST /exec/{id}/start`.
    Start,
    /// The process ended (or its start failed).
    Exit,
}

impl ExecStatus {
    /// The status after `t`, or Docker's refusal (409) for a second start.
    pub fn apply(self, t: ExecTransition, id: &str) -> Result<ExecStatus> {
        use ExecStatus::*;
        match (t, self) {
            (ExecTransition::Start, Created) => Ok(Running),
            (ExecTransition::Start, Running) => Err(EngineError::Conflict(format!(
                "Error: Exec command {id} is already running"
            ))),
            (ExecTransition::Start, Exited) => Err(EngineError::Conflict(format!(
                "Error: Exec command {id} has already run"
            ))),
            (ExecTransition::Exit, _) => Ok(Exited),
        }
    }
}

/// What changes about an exec, observable through a `watch` channel (resize waits for the pid,
/// the API waits for the exit before it ends an attached stream).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecState {
    pub status: ExecStatus,
    /// Host pid once the shim created the process.
    pub pid: i64,
    /// Set once exited.
    pub exit_code: Option<i64>,
    /// Terminal size to start with (from create, start, or a resize that came before the start).
    pub console_size: Option<(u16, u16)>,
}

impl ExecState {
    /// Records the exit (every status may move to exited).
    fn exited(&mut self, code: i64) {
        self.status = self
            .status
            .apply(ExecTransition::Exit, "")
            .unwrap_or(ExecStatus::Exited);
        self.exit_code = Some(code);
    }
}

/// One exec instance.
pub(crate) struct Exec {
    pub id: String,
    pub container_id: String,
    /// The request as created (Cmd, Env, User, WorkingDir, Tty, Privileged, attach flags…).
    pub config: ExecConfig,
    pub state: watch::Sender<ExecState>,
    /// Creation order, to forget the oldest finished execs first.
    created: std::time::Instant,
}

impl Exec {
    fn cmd(&self) -> &[String] {
        self.config.cmd.as_deref().unwrap_or_default()
    }

    fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }

    /// `sh -c 'echo hi'` as dockerd words it in events: entrypoint, a space, the arguments.
    fn command_line(&self) -> String {
        let cmd = self.cmd();
        let (entry, args) = cmd.split_first().map(|(e, a)| (e.as_str(), a)).unwrap_or(("", &[]));
        format!("{entry} {}", args.join(" "))
    }
}

/// How many finished execs of one container stay inspectable.
const MAX_FINISHED_PER_CONTAINER: usize = 256;

/// The exec records of a container service.
#[derive(Default)]
pub(crate) struct Execs {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

/// A started exec waiting to be run (see [`ContainerService::exec_prepare_start`]).
pub struct ExecTicket {
    exec: Arc<Exec>,
    container: Arc<Container>,
}

impl ExecTicket {
    /// Whether the exec has a TTY (raw stream) or not (multiplexed).
    pub fn tty(&self) -> bool {
        self.exec.tty()
    }

    /// Whether the client's stdin goes to the process.
    pub fn stdin(&self) -> bool {
        self.exec.config.attach_stdin.unwrap_or(false)
    }

    /// The exec's `DetachKeys` as given at create (empty: Docker's default).
    pub fn detach_keys(&self) -> &str {
        self.exec.config.detach_keys.as_deref().unwrap_or("")
    }
}

/// Docker's `ReplaceOrAppendEnvValues`: `KEY=V` replaces or appends, a bare `KEY` removes.
fn merge_env(base: &mut Vec<String>, overrides: &[String]) {
    for e in overrides {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
        let pos = base
            .iter()
            .position(|b| b.split_once('=').map(|(k, _)| k).unwrap_or(b) == key);
        match (e.contains('='), pos) {
            (true, Some(i)) => base[i] = e.clone(),
            (true, None) => base.push(e.clone()),
            (false, Some(i)) => {
                base.remove(i);
            }
            (false, None) => {}
        }
    }
}

/// The exec's OCI process, from the container's own (`base`, from `config.json`): its command,
/// environment, user, working directory, terminal and, with `Privileged`, every capability.
/// Pure, so it is tested without a container.
pub(crate) fn build_process(
    base: Process,
    cfg: &ExecConfig,
    user: Option<ResolvedUser>,
    console_size: Option<(u16, u16)>,
) -> Result<Process> {
    let mut p = base;
    let tty = cfg.tty.unwrap_or(false);
    p.set_args(cfg.cmd.clone());
    let mut env = p.env().clone().unwrap_or_default();
    // The container's TTY set TERM; an exec's own TTY decides (Docker's CreateDaemonEnvironment).
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, cfg.env.as_deref().unwrap_or_default());
    p.set_env(Some(env));
    if let Some(w) = cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
        p.set_cwd(w.into());
    }
    if let Some(u) = user {
        let pu = p.user_mut();
        pu.set_uid(u.uid);
        pu.set_gid(u.gid);
        pu.set_additional_gids(Some(u.additional_gids).filter(|g| !g.is_empty()));
    }
    p.set_terminal(Some(tty));
    let size = console_size.filter(|(h, w)| tty && *h > 0 && *w > 0);
    p.set_console_size(match size {
        Some((h, w)) => Some(
            serde_json::from_value(serde_json::json!({"height": h, "width": w}))
                .map_err(|e| EngineError::Internal(format!("console size: {e}")))?,
        ),
        None => None,
    });
    if cfg.privileged.unwrap_or(false) {
        // As dockerd: bounding, permitted and effective get every capability.
        let all = berth_runtime::spec::ALL_CAPABILITIES;
        let caps: LinuxCapabilities =
            serde_json::from_value(serde_json::json!({"bounding": all, "permitted": all, "effective": all}))
                .map_err(|e| EngineError::Internal(format!("capabilities: {e}")))?;
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// The `process` of a bundle's `config.json` (the rest of the spec is skipped, not parsed).
fn spec_process(bundle: &std::path::Path) -> Result<Process> {
    #[derive(serde::Deserialize)]
    struct OnlyProcess {
        process: Option<Process>,
    }
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| EngineError::io("reading", &path, e))?;
    let spec: OnlyProcess =
        serde_json::from_slice(&data).map_err(|e| EngineError::Internal(format!("parsing {}: {e}", path.display())))?;
    spec.process
        .ok_or_else(|| EngineError::Internal(format!("{} has no process", path.display())))
}

/// Reads multiplexed frames until the stream ends, keeping the first `max` payload bytes.
async fn read_frames(stream: &mut AttachStream, out: &mut Vec<u8>, max: usize) {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; berth_api::stream::HEADER_LEN];
    let mut buf = vec![0u8; 8 * 1024];
    while stream.read_exact(&mut header).await.is_ok() {
        let Ok(h) = berth_api::stream::parse_header(&header) else {
            return;
        };
        let mut left = h.len as usize;
        while left > 0 {
            let want = left.min(buf.len());
            match stream.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let room = max.saturating_sub(out.len()).min(n);
                    out.extend_from_slice(&buf[..room]);
                    left -= n;
                }
            }
        }
    }
}

/// A duration as Go prints the round ones (`30s`, `500ms`, `1m30s`), for dockerd's messages.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) || ms == 0 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

fn no_such_exec(id: &str) -> EngineError {
    EngineError::NotFound(format!("No such exec instance: {id}"))
}

impl ContainerService {
    /// `POST /containers/{id}/exec`: records the exec and publishes `exec_create`.
    pub fn exec_create(&self, container: &str, cfg: ExecConfig) -> Result<String> {
        let c = self.lookup(container)?;
        let rec = c.record();
        rec.state.status.check(Operation::Exec, &c.id, &rec.name)?;
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::InvalidArgument("No exec command specified".into()));
        }
        let console_size = match cfg.console_size.as_deref() {
            None | Some([]) => None,
            Some([h, w]) if *h >= 0 && *w >= 0 => {
                Some(((*h).min(u16::MAX.into()) as u16, (*w).min(u16::MAX.into()) as u16))
            }
            Some(_) => {
                return Err(EngineError::InvalidArgument(
                    "ConsoleSize must be [height, width] of non-negative numbers".into(),
                ))
            }
        };
        let exec = Arc::new(Exec {
            id: berth_types::new_id(),
            container_id: c.id.clone(),
            config: cfg,
            state: watch::Sender::new(ExecState {
                console_size,
                ..Default::default()
            }),
            created: std::time::Instant::now(),
        });
        {
            let mut map = lock(&self.execs.map);
            // Execs of removed containers are forgotten here (dockerd drops them at removal).
            map.retain(|_, e| self.registry.contains(&e.container_id));
            let mut finished: Vec<(std::time::Instant, String)> = map
                .values()
                .filter(|e| e.container_id == c.id && e.state.borrow().status == ExecStatus::Exited)
                .map(|e| (e.created, e.id.clone()))
                .collect();
            if finished.len() >= MAX_FINISHED_PER_CONTAINER {
                finished.sort();
                for (_, id) in &finished[..=finished.len() - MAX_FINISHED_PER_CONTAINER] {
                    map.remove(id);
                }
            }
            map.insert(exec.id.clone(), exec.clone());
        }
        let action = format!("exec_create: {}", exec.command_line());
        self.publish(&c, &action, &[("execID", exec.id.clone())]);
        Ok(exec.id.clone())
    }

    fn exec_get(&self, id: &str) -> Result<Arc<Exec>> {
        lock(&self.execs.map)
            .get(id)
            .cloned()
            .filter(|e| self.registry.contains(&e.container_id))
            .ok_or_else(|| no_such_exec(id))
    }

    /// The IDs of a container's execs that have not exited (`ExecIDs` in inspect; `None` if none).
    pub(crate) fn exec_ids(&self, container_id: &str) -> Option<Vec<String>> {
        let ids: Vec<String> = lock(&self.execs.map)
            .values()
            .filter(|e| e.container_id == container_id && e.state.borrow().status != ExecStatus::Exited)
            .map(|e| e.id.clone())
            .collect();
        (!ids.is_empty()).then_some(ids)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse> {
        let e = self.exec_get(id)?;
        let st = e.state.borrow().clone();
        let cmd = e.cmd();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(e.config.detach_keys.clone().unwrap_or_default()),
            id: Some(e.id.clone()),
            running: Some(st.status == ExecStatus::Running),
            exit_code: st.exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(e.config.privileged.unwrap_or(false)),
                user: Some(e.config.user.clone().unwrap_or_default()),
                tty: Some(e.tty()),
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: Some(e.config.attach_stdin.unwrap_or(false)),
            open_stderr: Some(e.config.attach_stderr.unwrap_or(false)),
            open_stdout: Some(e.config.attach_stdout.unwrap_or(false)),
            container_id: Some(e.container_id.clone()),
            pid: Some(st.pid),
        })
    }

    /// `POST /exec/{id}/start`, first half: checks the exec and its container and marks the exec
    /// started (a second start is refused), so the API can answer (or upgrade) before it runs.
    /// `console_size` from the start request overrides the one from create.
    pub fn exec_prepare_start(&self, id: &str, console_size: Option<(u16, u16)>) -> Result<ExecTicket> {
        let exec = self.exec_get(id)?;
        let container = self.lookup(&exec.container_id)?;
        let rec = container.record();
        rec.state.status.check(Operation::Exec, &container.id, &rec.name)?;
        let mut moved = Ok(());
        exec.state
            .send_if_modified(|s| match s.status.apply(ExecTransition::Start, &exec.id) {
                Ok(next) => {
                    s.status = next;
                    if console_size.is_some_and(|(h, w)| h > 0 && w > 0) {
                        s.console_size = console_size;
                    }
                    true
                }
                Err(e) => {
                    moved = Err(e);
                    false
                }
            });
        moved?;
        Ok(ExecTicket { exec, container })
    }

    /// `POST /exec/{id}/start`, second half: creates the process through the shim, attaches to it
    /// when `attach` (the stream is returned), lets it exec, and records its exit in the background.
    /// A process that cannot be started is recorded as exited with Docker's code (127 not found,
    /// 126 not executable, 125 other) and the error returned.
    pub async fn exec_start(self: &Arc<Self>, ticket: ExecTicket, attach: bool) -> Result<Option<AttachStream>> {
        let ExecTicket { exec, container: c } = ticket;
        let action = format!("exec_start: {}", exec.command_line());
        self.publish(&c, &action, &[("execID", exec.id.clone())]);
        match self.exec_launch(&exec, &c, attach).await {
            Ok(stream) => Ok(stream),
            Err(e) => {
                let code = match &e {
                    EngineError::StartFailed { exit_code, .. } => *exit_code,
                    _ => 126,
                };
                exec.state.send_modify(|s| s.exited(code as i64));
                Err(e)
            }
        }
    }

    async fn exec_launch(
        self: &Arc<Self>,
        exec: &Arc<Exec>,
        c: &Arc<Container>,
        attach: bool,
    ) -> Result<Option<AttachStream>> {
        let process = self.exec_process(exec, c).await?;
        let stdin = attach && exec.config.attach_stdin.unwrap_or(false);
        let streams = Streams {
            stdin,
            stdout: exec.config.attach_stdout.unwrap_or(false),
            stderr: exec.config.attach_stderr.unwrap_or(false),
        };
        // One round trip: create, attach and start together (a shim that predates this answers
        // without `started`, and gets the attach and the start as requests of their own).
        let request = Request::Exec {
            process: Box::new(process),
            stdin,
            attach: attach.then_some(streams),
            start: true,
        };
        let (resp, stream) = shim::call_exec(&c.id, &c.socket, Some(&exec.id), request).await?;
        if let Some(message) = resp.error {
            let exit_code = resp
                .exit_code
                .unwrap_or_else(|| super::lifecycle::start_error_exit_code(&message));
            return Err(EngineError::StartFailed { message, exit_code });
        }
        let pid = resp.pid.unwrap_or(0);
        exec.state.send_modify(|s| s.pid = pid as i64);
        if resp.started == Some(true) {
            self.spawn_exec_monitor(exec.clone(), c.clone());
            return Ok(attach.then_some(stream));
        }
        let stream = if attach {
            let req = Request::Attach {
                stdin: streams.stdin,
                stdout: streams.stdout,
                stderr: streams.stderr,
            };
            let (resp, stream) = shim::call_exec(&c.id, &c.socket, Some(&exec.id), req).await?;
            if let Some(err) = resp.error {
                let _ = shim::call_exec(
                    &c.id,
                    &c.socket,
                    Some(&exec.id),
                    Request::Kill { signal: libc::SIGKILL },
                )
                .await;
                return Err(EngineError::Shim {
                    id: c.id.clone(),
                    message: err,
                });
            }
            Some(stream)
        } else {
            None
        };
        let (resp, _) = shim::call_exec(&c.id, &c.socket, Some(&exec.id), Request::Start).await?;
        if let Some(message) = resp.error {
            let exit_code = super::lifecycle::start_error_exit_code(&message);
            return Err(EngineError::StartFailed { message, exit_code });
        }
        self.spawn_exec_monitor(exec.clone(), c.clone());
        Ok(stream)
    }

    /// The exec's OCI process: the container's, read from its bundle, with the exec's settings and
    /// its user resolved from the container's `/etc/passwd` and `/etc/group`.
    async fn exec_process(&self, exec: &Arc<Exec>, c: &Arc<Container>) -> Result<Process> {
        let bundle = c.bundle.clone();
        let user_spec = exec.config.user.clone().filter(|u| !u.is_empty());
        let (id, chains) = {
            let rec = c.record();
            (rec.id, rec.chain_ids)
        };
        let snapshots = self.snapshots.clone();
        let cfg = exec.config.clone();
        let console_size = exec.state.borrow().console_size;
        if user_spec.is_none() {
            // A small file in the page cache: read here rather than on a blocking thread, whose
            // hand-off costs more than the read.
            return build_process(spec_process(&bundle)?, &cfg, None, console_size);
        }
        super::blocking(move || {
            let base = spec_process(&bundle)?;
            let user = match user_spec {
                Some(u) => {
                    let passwd = snapshots.read_file(Some(&id), &chains, "/etc/passwd")?;
                    let group = snapshots.read_file(Some(&id), &chains, "/etc/group")?;
                    let user = berth_runtime::resolve_user(&u, passwd.as_deref(), group.as_deref()).map_err(|e| {
                        // dockerd reports this from the runtime, as a process that could not start.
                        EngineError::StartFailed {
                            message: e.to_string(),
                            exit_code: 126,
                        }
                    })?;
                    Some(user)
                }
                None => None,
            };
            build_process(base, &cfg, user, console_size)
        })
        .await
    }

    /// Waits for the exec's exit through the shim and records it (`exec_die`).
    fn spawn_exec_monitor(self: &Arc<Self>, exec: Arc<Exec>, c: Arc<Container>) {
        let svc = self.clone();
        tokio::spawn(async move {
            // A shim that goes away without answering took the process with the container (SIGKILL).
            let code = match shim::wait_exec(&c.id, &c.socket, &exec.id).await {
                Ok(Some(st)) => st.exit_code as i64,
                _ => 128 + libc::SIGKILL as i64,
            };
            exec.state.send_modify(|s| s.exited(code));
            svc.publish(
                &c,
                "exec_die",
                &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
            );
        });
    }

    /// A future that resolves once the exec has exited and its exit is recorded (bounded: an
    /// attached stream is not held open forever by a lost exit).
    pub fn exec_exited(&self, id: &str) -> BoxFuture<()> {
        let Ok(exec) = self.exec_get(id) else {
            return Box::pin(async {});
        };
        let mut rx = exec.state.subscribe();
        Box::pin(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| s.status == ExecStatus::Exited)).await;
        })
    }

    /// Runs `cmd` in the container as an exec (with its events, as dockerd's health probes) and
    /// returns its exit code and combined output (the first `max_output` bytes). A process still
    /// running after `timeout` is killed: exit code -1 and dockerd's timeout message.
    pub(crate) async fn exec_capture(
        self: &Arc<Self>,
        c: &Arc<Container>,
        cmd: Vec<String>,
        timeout: Duration,
        max_output: usize,
    ) -> Result<(i64, String)> {
        let cfg = ExecConfig {
            cmd: Some(cmd),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let id = self.exec_create(&c.id, cfg)?;
        // Forgotten once done, as dockerd forgets its health probes.
        struct Forget<'a>(&'a Execs, &'a str);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                lock(&self.0.map).remove(self.1);
            }
        }
        let _forget = Forget(&self.execs, &id);
        let ticket = self.exec_prepare_start(&id, None)?;
        let exec = ticket.exec.clone();
        let Some(mut stream) = self.exec_start(ticket, true).await? else {
            return Ok((-1, String::new()));
        };
        let mut output = Vec::new();
        let read = read_frames(&mut stream, &mut output, max_output);
        if tokio::time::timeout(timeout, read).await.is_err() {
            let kill = Request::Kill { signal: libc::SIGKILL };
            let _ = shim::call_exec(&c.id, &c.socket, Some(&exec.id), kill).await;
            return Ok((-1, format!("Health check exceeded timeout ({})", go_duration(timeout))));
        }
        self.exec_exited(&id).await;
        let code = exec.state.borrow().exit_code.unwrap_or(-1);
        Ok((code, String::from_utf8_lossy(&output).into_owned()))
    }

    /// `POST /exec/{id}/resize`: before the process exists the size is kept for its start.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let exec = self.exec_get(id)?;
        let mut rx = exec.state.subscribe();
        let pending = exec.state.send_if_modified(|s| {
            if s.status == ExecStatus::Created {
                s.console_size = Some((height, width));
                true
            } else {
                false
            }
        });
        if pending {
            return Ok(());
        }
        // Started: wait (bounded, as dockerd does) until the shim created the process.
        let ready = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|s| s.pid > 0 || s.status == ExecStatus::Exited),
        )
        .await
        .map(|r| r.map(|s| s.status));
        match ready {
            Ok(Ok(ExecStatus::Running)) => {}
            Ok(_) => return Ok(()),
            Err(_) => return Err(EngineError::Internal("timeout waiting for exec session ready".into())),
        }
        let c = self.lookup(&exec.container_id)?;
        let (resp, _) = shim::call_exec(&c.id, &c.socket, Some(&exec.id), Request::Resize { height, width }).await?;
        match resp.error {
            Some(e) => Err(EngineError::Shim {
                id: c.id.clone(),
                message: e,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_starts_once() {
        use ExecStatus::*;
        use ExecTransition as T;
        assert_eq!(Created.apply(T::Start, "e").unwrap(), Running);
        let e = Running.apply(T::Start, "e").unwrap_err();
        assert_eq!(e.to_string(), "Error: Exec command e is already running");
        let e = Exited.apply(T::Start, "e").unwrap_err();
        assert_eq!(e.to_string(), "Error: Exec command e has already run");
        use berth_types::{ErrorKind, HasErrorKind};
        assert_eq!(e.kind(), ErrorKind::Conflict);
        for s in [Created, Running, Exited] {
            assert_eq!(s.apply(T::Exit, "e").unwrap(), Exited);
        }
    }

    #[test]
    fn events_name_the_command_as_dockerd() {
        let exec = |cmd: &[&str]| Exec {
            id: "e".into(),
            container_id: "c".into(),
            config: ExecConfig {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
            state: watch::Sender::new(ExecState::default()),
            created: std::time::Instant::now(),
        };
        assert_eq!(exec(&["sh", "-c", "echo hi"]).command_line(), "sh -c echo hi");
        // dockerd joins entrypoint and arguments with a space even when there are none.
        assert_eq!(exec(&["true"]).command_line(), "true ");
    }

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn env_overrides_like_docker() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".into(), "B=2".into()];
        merge_env(&mut env, &["A=9".into(), "C=3".into(), "B".into(), "NOPE".into()]);
        assert_eq!(env, ["PATH=/bin", "A=9", "C=3"]);
    }

    fn base() -> Process {
        serde_json::from_value(serde_json::json!({
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sleep", "1000"],
            "env": ["PATH=/usr/bin:/bin", "HOSTNAME=abc"],
            "cwd": "/srv",
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]},
            "noNewPrivileges": true
        }))
        .unwrap()
    }

    #[test]
    fn the_process_is_the_containers_with_the_execs_settings() {
        let cfg = ExecConfig {
            cmd: Some(vec!["sh".into(), "-c".into(), "id".into()]),
            env: Some(vec!["X=1".into()]),
            ..Default::default()
        };
        let p = build_process(base(), &cfg, None, None).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["sh", "-c", "id"]);
        assert_eq!(
            p.env().as_deref().unwrap(),
            ["PATH=/usr/bin:/bin", "HOSTNAME=abc", "X=1"]
        );
        assert_eq!(p.cwd().to_str(), Some("/srv"), "the container's working dir by default");
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = serde_json::to_value(p.capabilities()).unwrap();
        assert_eq!(caps["effective"], serde_json::json!(["CAP_CHOWN"]));

        let cfg = ExecConfig {
            cmd: Some(vec!["sh".into()]),
            tty: Some(true),
            working_dir: Some("/tmp".into()),
            privileged: Some(true),
            ..Default::default()
        };
        let user = ResolvedUser {
            uid: 1000,
            gid: 100,
            additional_gids: vec![10],
            home: "/home/u".into(),
        };
        let p = build_process(base(), &cfg, Some(user), Some((30, 100))).unwrap();
        assert_eq!(p.cwd().to_str(), Some("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[10][..]));
        assert_eq!(p.terminal(), Some(true));
        assert!(p.env().as_ref().unwrap().contains(&"TERM=xterm".to_string()));
        let size = p.console_size().unwrap();
        assert_eq!((size.height(), size.width()), (30, 100));
        let caps = serde_json::to_value(p.capabilities()).unwrap();
        let eff = caps["effective"].as_array().unwrap();
        assert!(eff.len() > 30, "privileged: every capability: {eff:?}");
        assert!(eff.contains(&serde_json::json!("CAP_SYS_ADMIN")));
    }
}
