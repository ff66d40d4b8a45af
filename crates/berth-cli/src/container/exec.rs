//! `docker exec`: create the exec, then start it detached, or attached through the same
//! [`AttachSession`] as `run` (raw mode, resize through `/exec/{id}/resize`, detach keys); the
//! command's exit status is the process's, read from `GET /exec/{id}/json` as Docker's CLI does.

use anyhow::Result;
use berth_api::models::ExecConfig;
use berth_client::Client;

use super::{detach_keys, real_env};
use crate::args::ExecArgs;
use crate::attach::{AttachSession, Ended};
use crate::opts::env::{expand_env, parse_env_file};
use crate::term;
use crate::StatusError;

/// The `POST /containers/{id}/exec` body for the flags, as Docker's CLI builds it.
fn exec_config(
    a: &ExecArgs,
    lookup: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
    console_size: Option<(u16, u16)>,
) -> Result<ExecConfig, String> {
    let mut env = Vec::new();
    for f in &a.env_file {
        let content = read_file(f).map_err(|e| format!("open {f}: {e}"))?;
        env.extend(parse_env_file(f, &content, lookup)?);
    }
    env.extend(a.env.iter().map(|e| expand_env(e, lookup)));
    let attached = !a.detach;
    Ok(ExecConfig {
        attach_stdin: Some(attached && a.interactive),
        attach_stdout: Some(attached),
        attach_stderr: Some(attached),
        console_size: console_size.map(|(h, w)| vec![i32::from(h), i32::from(w)]),
        detach_keys: a.detach_keys.clone(),
        tty: Some(a.tty),
        env: Some(env),
        cmd: Some(a.command.clone()),
        privileged: Some(a.privileged),
        user: Some(a.user.clone().unwrap_or_default()),
        working_dir: Some(a.workdir.clone().unwrap_or_default()),
    })
}

/// `docker exec`.
pub async fn exec(client: &Client, a: ExecArgs) -> Result<i32> {
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let session = AttachSession {
        tty: a.tty,
        stdin: a.interactive && !a.detach,
        detach_keys: keys,
    };
    if !a.detach {
        session.check_input_tty()?;
    }
    let size = if a.tty && !a.detach && term::is_tty(term::Std::Out) {
        term::size()
    } else {
        None
    };
    let (lookup, read) = real_env();
    let cfg = exec_config(&a, &lookup, &read, size).map_err(|e| StatusError::new(125, e))?;
    let id = client
        .exec_create(&a.container, &cfg)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    if a.detach {
        client
            .exec_start_detached(&id)
            .await
            .map_err(|e| StatusError::new(1, e.to_string()))?;
        return Ok(0);
    }
    let conn = client
        .exec_attach(&id, a.tty, size)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let resize = {
        let client = client.clone();
        let id = id.clone();
        move |h: u16, w: u16| {
            let client = client.clone();
            let id = id.clone();
            async move {
                let _ = client.exec_resize(&id, h, w).await;
            }
        }
    };
    let ended = session
        .run(Some(conn), async { Ok::<(), StatusError>(()) }, resize)
        .await?;
    if ended == Ended::Detached {
        return Ok(0);
    }
    let info = client
        .exec_inspect(&id)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    Ok(info.exit_code.and_then(|c| i32::try_from(c).ok()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Cmd};
    use clap::Parser;

    fn args(line: &[&str]) -> ExecArgs {
        match Cli::try_parse_from(line).unwrap().cmd {
            Some(Cmd::Exec(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_make_dockers_exec_config() {
        let a = args(&[
            "berth", "exec", "-it", "-u", "nobody", "-w", "/tmp", "-e", "A=1", "-e", "HOME", "c", "sh", "-c", "ls -l",
        ]);
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let read = |_: &str| Ok(String::new());
        let cfg = exec_config(&a, &lookup, &read, Some((30, 100))).unwrap();
        assert_eq!(cfg.cmd.unwrap(), ["sh", "-c", "ls -l"]);
        assert_eq!(cfg.env.unwrap(), ["A=1", "HOME=/root"]);
        assert_eq!(cfg.user.as_deref(), Some("nobody"));
        assert_eq!(cfg.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(cfg.tty, Some(true));
        assert_eq!(cfg.console_size, Some(vec![30, 100]));
        assert_eq!(
            (cfg.attach_stdin, cfg.attach_stdout, cfg.attach_stderr),
            (Some(true), Some(true), Some(true))
        );

        let a = args(&["berth", "exec", "-d", "--env-file", "f", "c", "true"]);
        let read = |_: &str| Ok("# comment\nB=2\n".to_string());
        let cfg = exec_config(&a, &|_| None, &read, None).unwrap();
        assert_eq!(cfg.env.unwrap(), ["B=2"]);
        assert_eq!(
            (cfg.attach_stdin, cfg.attach_stdout, cfg.attach_stderr),
            (Some(false), Some(false), Some(false))
        );
        assert!(
            Cli::try_parse_from(["berth", "exec", "c"]).is_err(),
            "a command is required"
        );
    }
}
