//! Container commands: run, create, start, stop/restart, kill, rm, ps, logs, wait, rename,
//! attach, prune.

mod cp;
mod exec;
mod files;
pub(crate) mod ps;
pub mod resources;
mod session;

pub use cp::cp;
pub use exec::exec;
pub use files::{commit, diff, export};
pub use ps::{ps, ps_row};
use session::{AttachError, ContainerAttach};

use anyhow::Result;
use berth_api::ContainerCreateBody;
use berth_client::{AttachOptions, Client, Error, LogsOptions};
use serde_json::Value;

use crate::args::{
    AttachArgs, ContainerOpts, CreateArgs, KillArgs, LogsArgs, PruneArgs, RenameArgs, RmArgs, RunArgs, StartArgs,
    StopArgs, WaitArgs,
};
use crate::attach::{self, AttachSession};
use crate::filters::parse_filters;
use crate::opts::{create_body, Env};
use crate::term;
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
    let auth = crate::credentials::auth_for(reference.domain());
    let body = client
        .image_pull(&repo, tag.as_deref(), platform, &auth)
        .await
        .map_err(|e| e.to_string())?;
    let target = if quiet {
        crate::progress::Target::Discard
    } else {
        crate::progress::Target::Stderr
    };
    crate::progress::display_stream(body, target, |_| {})
        .await
        .map_err(|e| e.to_string())
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
async fn create_container(
    client: &Client,
    o: &ContainerOpts,
    body: &ContainerCreateBody,
    cmd: &str,
) -> Result<String, StatusError> {
    let image = o.image();
    let platform = o.platform.as_deref();
    if !o.mount.is_empty() && o.volume_driver.as_deref().is_some_and(|d| !d.is_empty()) {
        // The docker CLI's warning (logged through logrus as it parses the flags).
        eprintln!(
            "WARN[0000] `--volume-driver` is ignored for volumes specified via `--mount`. \
             Use `--mount type=volume,volume-driver=...` instead."
        );
    }
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

/// Sends the terminal size with the create request (API 1.42+), as docker does, so the first
/// output is already laid out for this terminal.
fn set_console_size(body: &mut ContainerCreateBody, tty: bool) {
    if !tty {
        return;
    }
    if let Some((h, w)) = term::size() {
        body.host_config.get_or_insert_with(Default::default).console_size = Some(vec![i32::from(h), i32::from(w)]);
    }
}

/// `--detach-keys` (filled in from config.json's `detachKeys` when not given, see
/// `ClientConfig::apply`), else Docker's default.
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
    crate::opts::adapt_to_api(&mut body, client.api_version());
    set_console_size(&mut body, o.tty && !a.detach);
    let attach_in = body.config.attach_stdin.unwrap_or(false);
    let attach_out = body.config.attach_stdout.unwrap_or(false);
    let attach_err = body.config.attach_stderr.unwrap_or(false);
    let session = AttachSession {
        tty: o.tty,
        stdin: attach_in,
        detach_keys,
    };
    if !a.detach {
        session.check_input_tty()?;
    }
    let id = create_container(client, o, &body, "run").await?;
    if a.detach {
        client.container_start(&id).await.map_err(|e| start_error("run", &e))?;
        outln!("{id}");
        return Ok(0);
    }
    let streams = AttachOptions {
        stdin: attach_in,
        stdout: attach_out,
        stderr: attach_err,
        logs: false,
    };
    let attached = ContainerAttach {
        client,
        id: &id,
        streams,
        session,
        wait: if o.rm { "removed" } else { "next-exit" },
        sig_proxy: a.sig_proxy,
    };
    match attached.run(true).await {
        Ok(code) => Ok(code),
        Err(AttachError::Attach(e)) => Err(run_error("run", &e.to_string()).into()),
        Err(AttachError::Start(e)) => {
            if o.rm {
                let _ = client.container_remove(&id, true, true).await;
            }
            Err(start_error("run", &e).into())
        }
        Err(AttachError::Status(s)) => Err(s.into()),
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
    let mut body = body;
    crate::opts::adapt_to_api(&mut body, client.api_version());
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
    let attached = ContainerAttach {
        client,
        id: &full_id,
        streams: AttachOptions {
            stdin,
            stdout: true,
            stderr: true,
            logs: false,
        },
        session: AttachSession {
            tty,
            stdin,
            detach_keys,
        },
        wait: "next-exit",
        sig_proxy: true,
    };
    match attached.run(true).await {
        Ok(code) => Ok(code),
        Err(AttachError::Attach(e)) => Err(StatusError::new(1, e.to_string()).into()),
        Err(AttachError::Start(e)) => Err(StatusError::new(start_exit_code(&e.to_string()), e.to_string()).into()),
        Err(AttachError::Status(s)) => Err(s.into()),
    }
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
    let opts = logs_options(a.follow, a.timestamps, &a.tail, a.since.as_deref(), a.until.as_deref());
    let body = client
        .container_logs(&a.container, &opts)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    attach::copy_output(body, tty)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    Ok(0)
}

/// The logs request `logs` flags make (both streams; `--since`/`--until` as Docker reads them).
pub(crate) fn logs_options(
    follow: bool,
    timestamps: bool,
    tail: &str,
    since: Option<&str>,
    until: Option<&str>,
) -> LogsOptions {
    LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        timestamps,
        tail: Some(tail.to_string()),
        since: since.map(units::timestamp_arg),
        until: until.map(units::timestamp_arg),
    }
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
    let session = AttachSession {
        tty,
        stdin: !a.no_stdin && open_stdin,
        detach_keys,
    };
    session.check_input_tty()?;
    let attached = ContainerAttach {
        client,
        id: &id,
        streams: AttachOptions {
            stdin: session.stdin,
            stdout: true,
            stderr: true,
            logs: false,
        },
        session,
        wait: "not-running",
        sig_proxy: a.sig_proxy,
    };
    match attached.run(false).await {
        Ok(code) => Ok(code),
        Err(AttachError::Attach(e) | AttachError::Start(e)) => Err(StatusError::new(1, e.to_string()).into()),
        Err(AttachError::Status(s)) => Err(s.into()),
    }
}

/// `docker container prune`.
pub async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    if !a.force && !term::confirm("WARNING! This will remove all stopped containers.") {
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
    crate::write_out(&crate::objects::deleted_section("Deleted Containers", &deleted));
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    crate::write_out(&crate::objects::reclaimed_line(space));
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
