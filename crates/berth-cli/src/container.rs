//! Container commands: run, create, start, stop/restart, kill, rm, ps, logs, wait, rename,
//! attach, prune.

use std::io::{BufRead, Write};

use anyhow::Result;
use berth_client::stream::JsonMessages;
use berth_client::{AttachOptions, Client, Error, LogsOptions};
use serde_json::{json, Map, Value};

use crate::args::{
    AttachArgs, ContainerOpts, CreateArgs, KillArgs, LogsArgs, PruneArgs, PsArgs, RenameArgs, RmArgs, RunArgs,
    StartArgs, StopArgs, WaitArgs,
};
use crate::attach::{self, Ended};
use crate::format::{ellipsis, go_quote, Format};
use crate::opts::{create_body, parse_filters, Env};
use crate::term::{self, Std};
use crate::units;
use crate::{prog, StatusError};

/// A flag-value error as cobra words it: the message, the usage line and the help hint (125).
pub fn usage_error(cmd: &str, msg: &str) -> StatusError {
    let p = prog();
    StatusError::new(
        125,
        format!("{msg}\n\nUsage:  {p} {cmd} [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun '{p} {cmd} --help' for more information"),
    )
}

/// A `create_body` error: flag values read as usage errors, the rest as run errors.
fn opts_error(cmd: &str, msg: &str) -> StatusError {
    if msg.starts_with("invalid argument") {
        usage_error(cmd, msg)
    } else {
        run_error(cmd, msg)
    }
}

/// `docker run`-style error: `<prog>: <msg>` and the help hint, exit 125.
pub fn run_error(cmd: &str, msg: &str) -> StatusError {
    let p = prog();
    StatusError::new(
        125,
        format!("{p}: {msg}\n\nRun '{p} {cmd} --help' for more information"),
    )
}

/// Docker's exit code for a failed start: 127 not found, 126 not executable, else 125.
pub fn start_exit_code(msg: &str) -> i32 {
    let m = msg.strip_prefix("Error response from daemon: ").unwrap_or(msg);
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("system cannot find the file specified")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

fn start_error(cmd: &str, e: &Error) -> StatusError {
    let mut s = run_error(cmd, &e.to_string());
    s.code = start_exit_code(&e.to_string());
    s
}

fn real_env() -> (
    impl Fn(&str) -> Option<String>,
    impl Fn(&str) -> std::io::Result<String>,
) {
    (|k: &str| std::env::var(k).ok(), |p: &str| std::fs::read_to_string(p))
}

/// Pulls `image` through the daemon, printing progress like `docker pull`.
async fn pull(client: &Client, image: &str, platform: Option<&str>, quiet: bool) -> Result<(), String> {
    let reference = berth_types::Reference::parse(image).map_err(|e| e.to_string())?;
    // docker sends the full name (`docker.io/library/busybox`).
    let repo = reference.repository();
    let tag = reference.tag().map(str::to_string);
    let body = client
        .image_pull(&repo, tag.as_deref(), platform)
        .await
        .map_err(|e| e.to_string())?;
    let mut msgs = JsonMessages::new(body);
    while let Some(m) = msgs.next().await.map_err(|e| e.to_string())? {
        if let Some(err) = m.error.or(m.error_detail.and_then(|d| d.message)) {
            return Err(err);
        }
        if !quiet {
            match (&m.id, &m.status) {
                (Some(id), Some(s)) => eprintln!("{id}: {s}"),
                (None, Some(s)) => eprintln!("{s}"),
                _ => {}
            }
        }
    }
    Ok(())
}

/// A daemon error during `run` (`<prog>: ...`, 125) or `create` (plain, exit 1), as docker does.
fn daemon_error(cmd: &str, msg: &str) -> StatusError {
    if cmd == "create" {
        StatusError::new(1, msg)
    } else {
        run_error(cmd, msg)
    }
}

/// Creates the container, pulling the image when the daemon does not have it (as `docker run`).
async fn create_container(client: &Client, o: &ContainerOpts, body: &Value, cmd: &str) -> Result<String, StatusError> {
    let image = o.image();
    let platform = o.platform.as_deref();
    if o.pull == "always" {
        pull(client, image, platform, o.quiet)
            .await
            .map_err(|e| daemon_error(cmd, &e))?;
    }
    let mut res = client.container_create(o.name.as_deref(), platform, body).await;
    if let Err(e) = &res {
        let no_image = e.is_not_found() && e.daemon_message().is_some_and(|m| m.starts_with("No such image"));
        if no_image && o.pull != "never" {
            let shown = berth_types::Reference::parse(image)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| image.to_string());
            eprintln!("Unable to find image '{shown}' locally");
            pull(client, image, platform, o.quiet)
                .await
                .map_err(|e| daemon_error(cmd, &e))?;
            res = client.container_create(o.name.as_deref(), platform, body).await;
        }
    }
    let created = res.map_err(|e| daemon_error(cmd, &e.to_string()))?;
    for w in created.warnings.iter().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    Ok(created.id)
}

/// Registers a wait for `condition` and returns once the daemon has acknowledged it (or after a
/// short grace period, for daemons that only answer at exit), with a handle for the result.
async fn register_wait(
    client: &Client,
    id: &str,
    condition: &'static str,
) -> tokio::task::JoinHandle<Result<(i64, Option<String>), Error>> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let c = client.clone();
    let id = id.to_string();
    let handle = tokio::spawn(async move {
        let resp = c.container_wait(&id, condition).await;
        let _ = tx.send(());
        Client::wait_result(resp?).await
    });
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), rx).await;
    handle
}

/// Sends the terminal size with the create request (API 1.42+), as docker does, so the first
/// output is already laid out for this terminal.
fn set_console_size(body: &mut Value, tty: bool) {
    if !tty {
        return;
    }
    if let Some((h, w)) = term::size() {
        if let Some(hc) = body.get_mut("HostConfig").and_then(Value::as_object_mut) {
            hc.insert("ConsoleSize".into(), json!([h, w]));
        }
    }
}

fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>, StatusError> {
    match flag.filter(|k| !k.is_empty()) {
        Some(k) => attach::parse_detach_keys(k)
            .map_err(|e| StatusError::new(125, format!("invalid detach keys ({k}) provided: {e}"))),
        None => Ok(attach::DEFAULT_DETACH_KEYS.to_vec()),
    }
}

/// `docker run`.
pub async fn run(client: &Client, a: RunArgs) -> Result<i32> {
    let o = &a.opts;
    let detach_keys = detach_keys(a.detach_keys.as_deref())?;
    let (lookup, read) = real_env();
    let body = create_body(
        o,
        a.detach,
        &Env {
            lookup: &lookup,
            read_file: &read,
        },
    )
    .map_err(|e| opts_error("run", &e))?;
    let mut body = body;
    set_console_size(&mut body, o.tty && !a.detach);
    let attach_in = body["AttachStdin"].as_bool().unwrap_or(false);
    let attach_out = body["AttachStdout"].as_bool().unwrap_or(false);
    let attach_err = body["AttachStderr"].as_bool().unwrap_or(false);
    if !a.detach && o.tty && attach_in && !term::is_tty(Std::In) {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let id = create_container(client, o, &body, "run").await?;
    if a.detach {
        client.container_start(&id).await.map_err(|e| start_error("run", &e))?;
        outln!("{id}");
        return Ok(0);
    }
    if a.sig_proxy && !o.tty {
        attach::forward_signals(client.clone(), id.clone());
    }
    let conn = if attach_in || attach_out || attach_err {
        let opts = AttachOptions {
            stdin: attach_in,
            stdout: attach_out,
            stderr: attach_err,
            logs: false,
        };
        Some(
            client
                .container_attach(&id, opts)
                .await
                .map_err(|e| run_error("run", &e.to_string()))?,
        )
    } else {
        None
    };
    let waiter = register_wait(client, &id, if o.rm { "removed" } else { "next-exit" }).await;
    let raw = if o.tty {
        let i = if attach_in { term::make_raw(Std::In) } else { None };
        let out = if i.is_none() { term::make_raw(Std::Out) } else { None };
        (i, out)
    } else {
        (None, None)
    };
    if let Err(e) = client.container_start(&id).await {
        drop(raw);
        waiter.abort();
        if o.rm {
            let _ = client.container_remove(&id, true, true).await;
        }
        return Err(start_error("run", &e).into());
    }
    if o.tty && term::is_tty(Std::Out) {
        attach::monitor_tty_size(client.clone(), id.clone());
    }
    let ended = match conn {
        Some(c) => attach::pump(c, o.tty, attach_in, detach_keys).await,
        None => Ok(Ended::Closed),
    };
    drop(raw);
    if matches!(ended, Ok(Ended::Detached)) {
        return Ok(0);
    }
    exit_status(waiter).await
}

async fn exit_status(waiter: tokio::task::JoinHandle<Result<(i64, Option<String>), Error>>) -> Result<i32> {
    match waiter.await {
        Ok(Ok((code, err))) => {
            if let Some(e) = err {
                eprintln!("{}: {e}", prog());
            }
            Ok(code as i32)
        }
        Ok(Err(e)) => Err(StatusError::new(125, e.to_string()).into()),
        Err(e) => Err(StatusError::new(125, e.to_string()).into()),
    }
}

/// `docker create`.
pub async fn create(client: &Client, a: CreateArgs) -> Result<i32> {
    let (lookup, read) = real_env();
    let body = create_body(
        &a.opts,
        false,
        &Env {
            lookup: &lookup,
            read_file: &read,
        },
    )
    .map_err(|e| opts_error("create", &e))?;
    let id = create_container(client, &a.opts, &body, "create").await?;
    outln!("{id}");
    Ok(0)
}

/// Runs `f` for each target, printing the name on success and the error otherwise (exit 1 if any
/// failed), as Docker's multi-container commands do.
async fn for_each<F, Fut>(targets: &[String], f: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let mut failed = false;
    for t in targets {
        match f(t.clone()).await {
            Ok(()) => outln!("{t}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `docker start`.
pub async fn start(client: &Client, a: StartArgs) -> Result<i32> {
    let detach_keys = detach_keys(a.detach_keys.as_deref())?;
    if !(a.attach || a.interactive) {
        let mut failed = Vec::new();
        for c in &a.containers {
            match client.container_start(c).await {
                Ok(()) => outln!("{c}"),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(c.as_str());
                }
            }
        }
        if failed.is_empty() {
            return Ok(0);
        }
        let msg = format!("Error: failed to start containers: {}", failed.join(", "));
        return Err(StatusError::new(1, msg).into());
    }
    if a.containers.len() > 1 {
        return Err(StatusError::new(1, "you cannot start and attach multiple containers at once").into());
    }
    let id = &a.containers[0];
    let info = client
        .container_inspect(id)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let tty = info.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false);
    let open_stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = a.interactive && open_stdin;
    let full_id = info["Id"].as_str().unwrap_or(id).to_string();
    if !tty {
        attach::forward_signals(client.clone(), full_id.clone());
    }
    let conn = client
        .container_attach(
            &full_id,
            AttachOptions {
                stdin,
                stdout: true,
                stderr: true,
                logs: false,
            },
        )
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let waiter = register_wait(client, &full_id, "next-exit").await;
    let raw = if tty && stdin {
        term::make_raw(Std::In)
    } else if tty {
        term::make_raw(Std::Out)
    } else {
        None
    };
    if let Err(e) = client.container_start(&full_id).await {
        drop(raw);
        waiter.abort();
        return Err(StatusError::new(start_exit_code(&e.to_string()), e.to_string()).into());
    }
    if tty && term::is_tty(Std::Out) {
        attach::monitor_tty_size(client.clone(), full_id.clone());
    }
    let ended = attach::pump(conn, tty, stdin, detach_keys).await;
    drop(raw);
    if matches!(ended, Ok(Ended::Detached)) {
        return Ok(0);
    }
    exit_status(waiter).await
}

/// `docker stop` / `docker restart`.
pub async fn stop(client: &Client, a: StopArgs, restart: bool) -> Result<i32> {
    let (t, s) = (a.time, a.signal.as_deref());
    for_each(&a.containers, |c| async move {
        if restart {
            client.container_restart(&c, t, s).await
        } else {
            client.container_stop(&c, t, s).await
        }
    })
    .await
}

/// `docker kill`.
pub async fn kill(client: &Client, a: KillArgs) -> Result<i32> {
    let s = a.signal.as_deref();
    for_each(&a.containers, |c| async move { client.container_kill(&c, s).await }).await
}

/// `docker rm`.
pub async fn rm(client: &Client, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    for name in &a.containers {
        let id = name.trim_matches('/');
        if id.is_empty() {
            eprintln!("Container name cannot be empty");
            failed = true;
            continue;
        }
        match client.container_remove(id, a.force, a.volumes).await {
            Ok(()) => outln!("{name}"),
            // `rm -f` of something already gone is not a failure (docker prints it, exits 0).
            Err(e) if a.force && e.is_not_found() => eprintln!("{e}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `docker rename`.
pub async fn rename(client: &Client, a: RenameArgs) -> Result<i32> {
    let new_name = a.new_name.trim();
    if new_name.is_empty() || a.container.trim().is_empty() {
        return Err(StatusError::new(1, "Error: neither old nor new names may be empty").into());
    }
    client.container_rename(&a.container, new_name).await.map_err(|e| {
        StatusError::new(
            1,
            format!("{e}\nError: failed to rename container named {}", a.container),
        )
    })?;
    Ok(0)
}

/// `docker wait`.
pub async fn wait(client: &Client, a: WaitArgs) -> Result<i32> {
    let mut failed = false;
    for c in &a.containers {
        let res = match client.container_wait(c, "not-running").await {
            Ok(resp) => Client::wait_result(resp).await,
            Err(e) => Err(e),
        };
        match res {
            Ok((code, _)) => outln!("{code}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `docker logs`.
pub async fn logs(client: &Client, a: LogsArgs) -> Result<i32> {
    let info = client
        .container_inspect(&a.container)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let tty = info.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false);
    let opts = LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        timestamps: a.timestamps,
        tail: Some(a.tail.clone()),
        since: a.since.as_deref().map(units::timestamp_arg),
        until: a.until.as_deref().map(units::timestamp_arg),
    };
    let body = client
        .container_logs(&a.container, &opts)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    attach::copy_output(body, tty)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    Ok(0)
}

/// `docker attach`.
pub async fn attach(client: &Client, a: AttachArgs) -> Result<i32> {
    let detach_keys = detach_keys(a.detach_keys.as_deref())?;
    let info = client
        .container_inspect(&a.container)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let running = info.pointer("/State/Running").and_then(Value::as_bool).unwrap_or(false);
    if !running {
        return Err(StatusError::new(1, "You cannot attach to a stopped container, start it first").into());
    }
    if info.pointer("/State/Paused").and_then(Value::as_bool).unwrap_or(false) {
        return Err(StatusError::new(1, "You cannot attach to a paused container, unpause it first").into());
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false);
    let open_stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = !a.no_stdin && open_stdin;
    if stdin && tty && !term::is_tty(Std::In) {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let waiter = register_wait(client, &id, "not-running").await;
    let conn = client
        .container_attach(
            &id,
            AttachOptions {
                stdin,
                stdout: true,
                stderr: true,
                logs: false,
            },
        )
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    if a.sig_proxy && !tty {
        attach::forward_signals(client.clone(), id.clone());
    }
    let raw = if tty && stdin {
        term::make_raw(Std::In)
    } else if tty {
        term::make_raw(Std::Out)
    } else {
        None
    };
    if tty && term::is_tty(Std::Out) {
        attach::monitor_tty_size(client.clone(), id.clone());
    }
    let ended = attach::pump(conn, tty, stdin, detach_keys).await;
    drop(raw);
    if matches!(ended, Ok(Ended::Detached)) {
        return Ok(0);
    }
    exit_status(waiter).await
}

/// Asks `question [y/N]` on the terminal.
pub fn confirm(question: &str) -> bool {
    eprint!("{question}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// `docker container prune`.
pub async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let report = client
        .containers_prune(&filters)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let deleted: Vec<&str> = report["ContainersDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        outln!("Deleted Containers:");
        for d in deleted {
            outln!("{d}");
        }
        outln!();
    }
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    outln!("Total reclaimed space: {}", units::human_size_prec(space, 4));
    Ok(0)
}

const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// Docker's `DisplayablePorts`: sorted, consecutive ports folded into ranges, host mappings last
/// (`0.0.0.0:8080->80/tcp, 443/tcp`, `8000-8002/tcp`).
pub fn display_ports(ports: &[Value]) -> String {
    struct P {
        ip: String,
        private: i64,
        public: i64,
        kind: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or_default().to_string(),
            private: p["PrivatePort"].as_i64().unwrap_or(0),
            public: p["PublicPort"].as_i64().unwrap_or(0),
            kind: p["Type"].as_str().unwrap_or("tcp").to_string(),
        })
        .collect();
    ps.sort_by(|a, b| (a.private, &a.ip, a.public, &a.kind).cmp(&(b.private, &b.ip, b.public, &b.kind)));
    let form = |key: &str, first: i64, last: i64| {
        let (ip, kind) = match key.rsplit_once('/') {
            Some((ip, k)) => (ip, k),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{kind}")
    };
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    let mut groups: Vec<(String, i64, i64)> = Vec::new();
    for p in &ps {
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                let host = if p.ip.contains(':') {
                    format!("[{}]", p.ip)
                } else {
                    p.ip.clone()
                };
                host_mappings.push(format!("{host}:{}->{}/{}", p.public, p.private, p.kind));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for (k, first, last) in &groups {
        result.push(form(k, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// One `docker ps` row as the template context (`.ID`, `.Names`, ...).
pub fn ps_row(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or_default();
    let id = if trunc {
        berth_types::short_id(id).to_string()
    } else {
        id.to_string()
    };
    let mut image = c["Image"].as_str().unwrap_or_default().to_string();
    if image.is_empty() {
        image = "<no image>".into();
    } else if trunc {
        // Docker shortens the image only when it is the image ID itself.
        let image_id = c["ImageID"].as_str().unwrap_or_default();
        if !image_id.is_empty() && berth_types::short_id(image_id) == berth_types::short_id(&image) {
            image = berth_types::short_id(&image).to_string();
        } else if let Some((name, _)) = image.split_once('@') {
            image = name.to_string();
        }
    }
    let mut command = c["Command"].as_str().unwrap_or_default().to_string();
    if trunc {
        command = ellipsis(&command, 20);
    }
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !trunc || !n.contains('/'))
                .collect()
        })
        .unwrap_or_default();
    let created = c["Created"].as_i64().unwrap_or(0);
    let created_at = units::go_time_string(created);
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let size = {
        let rw = c["SizeRw"].as_f64().unwrap_or(0.0);
        let root = c["SizeRootFs"].as_f64().unwrap_or(0.0);
        let srw = units::human_size(rw);
        if root > 0.0 {
            format!("{srw} (virtual {})", units::human_size(root))
        } else {
            srw
        }
    };
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let name = m["Name"].as_str().filter(|n| !n.is_empty());
                    let src = name.or(m["Source"].as_str()).unwrap_or_default();
                    if trunc {
                        ellipsis(src, 15)
                    } else {
                        src.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let ports = c["Ports"].as_array().map(|p| display_ports(p)).unwrap_or_default();
    let mut row = Map::new();
    row.insert("ID".into(), json!(id));
    row.insert("Image".into(), json!(image));
    row.insert("Command".into(), json!(go_quote(&command)));
    row.insert("CreatedAt".into(), json!(created_at));
    row.insert("RunningFor".into(), json!(units::ago_unix(created)));
    row.insert("Ports".into(), json!(ports));
    row.insert("State".into(), c["State"].clone());
    row.insert("Status".into(), c["Status"].clone());
    row.insert("Size".into(), json!(size));
    row.insert("Names".into(), json!(names.join(",")));
    row.insert("Labels".into(), json!(labels.join(",")));
    row.insert(
        "__berthLabels".into(),
        c["Labels"]
            .as_object()
            .map(|m| Value::Object(m.clone()))
            .unwrap_or(json!({})),
    );
    row.insert("Mounts".into(), json!(mounts.join(",")));
    row.insert("Networks".into(), json!(networks.join(",")));
    row.insert("LocalVolumes".into(), json!(mounts.len().to_string()));
    row.insert("Platform".into(), Value::Null);
    Value::Object(row)
}

/// `docker ps`.
pub async fn ps(client: &Client, a: PsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    let limit = if a.latest { Some(1) } else { a.last.filter(|n| *n > 0) };
    let size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let list = client
        .container_list(a.all || limit.is_some(), limit, size, &filters)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list.iter().map(|c| ps_row(c, trunc)).collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            Some(f) if !f.is_empty() && f != "table" => f.to_string(),
            _ if a.size => "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}".into(),
            _ => "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".into(),
        }
    };
    let f = Format::parse(&fmt).map_err(|e| StatusError::new(1, e.to_string()))?;
    let out = f
        .render_rows(&rows, PS_HEADERS)
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    crate::write_out(&out);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_exit_codes() {
        for (msg, code) in [
            (
                "Error response from daemon: exec: \"nope\": executable file not found in $PATH",
                127,
            ),
            ("failed to create shim task: open /x: no such file or directory", 127),
            ("exec /etc/passwd: permission denied", 126),
            ("exec /tmp: is a directory", 126),
            ("Error response from daemon: cgroup setup failed", 125),
        ] {
            assert_eq!(start_exit_code(msg), code, "{msg}");
        }
    }

    #[test]
    fn ports_like_docker() {
        let p = |ip: &str, private: i64, public: i64, t: &str| {
            let mut v = json!({"PrivatePort": private, "Type": t});
            if !ip.is_empty() {
                v["IP"] = json!(ip);
                v["PublicPort"] = json!(public);
            }
            v
        };
        let cases: Vec<(Vec<Value>, &str)> = vec![
            (vec![p("", 80, 0, "tcp")], "80/tcp"),
            (
                vec![p("", 8002, 0, "tcp"), p("", 8000, 0, "tcp"), p("", 8001, 0, "tcp")],
                "8000-8002/tcp",
            ),
            (
                vec![p("0.0.0.0", 80, 8080, "tcp"), p("", 443, 0, "tcp")],
                "443/tcp, 0.0.0.0:8080->80/tcp",
            ),
            (vec![p("0.0.0.0", 80, 80, "tcp")], "0.0.0.0:80->80/tcp"),
            (vec![p("::", 80, 8080, "tcp")], "[::]:8080->80/tcp"),
            (vec![p("", 53, 0, "udp"), p("", 53, 0, "tcp")], "53/tcp, 53/udp"),
            (vec![p("", 1, 0, "tcp"), p("", 3, 0, "tcp")], "1/tcp, 3/tcp"),
        ];
        for (ports, want) in cases {
            assert_eq!(display_ports(&ports), want);
        }
    }

    #[test]
    fn ps_rows() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web", "/other/link"], "Image": "busybox",
            "Command": "sh -c 'echo hello world'", "ImageID": "sha256:ff", "Created": chrono::Utc::now().timestamp() - 5,
            "State": "running", "Status": "Up 4 seconds",
            "Ports": [{"PrivatePort": 80, "Type": "tcp", "IP": "0.0.0.0", "PublicPort": 8080}, {"PrivatePort": 443, "Type": "tcp"}],
            "Labels": {"b": "2", "a": "1"}, "SizeRw": 12, "SizeRootFs": 4261234
        });
        let r = ps_row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sh -c 'echo hello w…\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Image"], "busybox");
        let by_id = json!({"Image": "sha256:0123456789abcdef", "ImageID": "sha256:0123456789abcdef"});
        assert_eq!(ps_row(&by_id, true)["Image"], "0123456789ab");
        let other = json!({"Image": "sha256:0123456789abcdef", "ImageID": "sha256:ffff"});
        assert_eq!(ps_row(&other, true)["Image"], "sha256:0123456789abcdef");
        assert_eq!(r["RunningFor"], "5 seconds ago");
        assert_eq!(r["Ports"], "443/tcp, 0.0.0.0:8080->80/tcp");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Size"], "12B (virtual 4.26MB)");
        let r = ps_row(&c, false);
        assert_eq!(r["Names"], "web,other/link");
        assert_eq!(r["Command"], "\"sh -c 'echo hello world'\"");

        let f = Format::parse(
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
        )
        .unwrap();
        let out = f.render_rows(&[ps_row(&c, true)], PS_HEADERS).unwrap();
        let header = out.lines().next().unwrap();
        assert!(
            header
                .starts_with("CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS"),
            "{header}"
        );
    }

    #[test]
    fn run_errors_look_like_docker() {
        let e = run_error("run", "Error response from daemon: No such container: x");
        assert_eq!(e.code, 125);
        let m = e.message.unwrap();
        assert!(
            m.ends_with(
                ": Error response from daemon: No such container: x\n\nRun 'berth run --help' for more information"
            ) || m.contains("--help' for more information"),
            "{m}"
        );
    }
}
