//! `ssh://` daemon addresses, end to end: `berth -H ssh://…` and the real docker CLI reach berthd
//! through `ssh HOST docker system dial-stdio`, with berth as the remote `docker` (also from a
//! context with an ssh endpoint); the arguments
//! given to ssh are docker's; containers run with stdin and output over it; a remote without a
//! daemon, or no ssh at all, is an error that says so. `berth system dial-stdio` relays a raw HTTP
//! exchange, also when its input ends before the answer (half-close).
//!
//! The `ssh` on PATH is a script of the test's: it records its arguments, drops ssh's options and
//! the host name and runs the remote command here, as a login on the remote host would (no
//! `DOCKER_HOST`/`BERTH_HOST` there, and `docker` is berth). The login itself is OpenSSH's business;
//! what berth owns is the command it runs and the stream over the child's pipes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{bin, Daemon, Run};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The fake ssh's directory (put first on PATH) and the file its arguments go to.
fn fake_ssh(d: &Daemon) -> (PathBuf, PathBuf) {
    let dir = d.root.join("sshbin");
    std::fs::create_dir_all(&dir).unwrap();
    let argv = d.root.join("ssh-argv");
    let script = format!(
        r#"#!/bin/sh
echo "$*" >>'{argv}'
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift 2
cmd=$1; shift
unset DOCKER_HOST BERTH_HOST
[ "$cmd" = docker ] && exec '{berth}' "$@"
echo "sh: 1: $cmd: not found" >&2
exit 127
"#,
        argv = argv.display(),
        berth = bin("berth").display()
    );
    let path = dir.join("ssh");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, argv)
}

fn path_with(dir: &std::path::Path) -> String {
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

/// `program args…` with `input` on stdin, no daemon in the environment, the fake ssh on PATH.
fn run_with(program: &PathBuf, d: &Daemon, path: &str, args: &[&str], input: &str) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env("DOCKER_CLI_HINTS", "false")
        .env("BERTH_NO_AUTOSTART", "1")
        .env("PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap().into()
}

#[test]
fn berth_over_ssh_runs_containers_with_stdin_and_gives_ssh_dockers_arguments() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let (dir, argv) = fake_ssh(&d);
    let path = path_with(&dir);
    let host = format!("ssh://tester@remote:2222{}", d.sock.display());
    let berth = bin("berth");

    let r = run_with(
        &berth,
        &d,
        &path,
        &["-H", &host, "run", "--rm", "-i", "bb", "sh", "-c", "cat; echo done"],
        "hello\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "hello\ndone\n", "{r:?}");
    let first = std::fs::read_to_string(&argv).unwrap();
    let first = first.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "-o ConnectTimeout=30 -T -l tester -p 2222 -- remote docker --host unix://{} system dial-stdio",
            d.sock.display()
        )
    );

    // A detached container, exec into it and its logs, all over ssh.
    let r = run_with(
        &berth,
        &d,
        &path,
        &[
            "-H",
            &host,
            "run",
            "-d",
            "--name",
            "over-ssh",
            "bb",
            "sh",
            "-c",
            "echo up; sleep 60",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_with(
        &berth,
        &d,
        &path,
        &["-H", &host, "exec", "over-ssh", "echo", "in-exec"],
        "",
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "in-exec\n"), "{r:?}");
    let r = run_with(&berth, &d, &path, &["-H", &host, "logs", "over-ssh"], "");
    assert_eq!((r.code, r.stdout.as_str()), (0, "up\n"), "{r:?}");
    // The requests of one command share a connection (keep-alive): `ps` is one ssh login.
    std::fs::remove_file(&argv).unwrap();
    let r = run_with(&berth, &d, &path, &["-H", &host, "ps", "--format", "{{.Names}}"], "");
    assert_eq!((r.code, r.stdout.as_str()), (0, "over-ssh\n"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&argv).unwrap().lines().count(), 1);
    // A context with an ssh endpoint, as `docker context create --docker host=ssh://…` makes.
    let ep = format!("host={host}");
    let r = run_with(&berth, &d, &path, &["context", "create", "viassh", "--docker", &ep], "");
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_with(&berth, &d, &path, &["--context", "viassh", "rm", "-f", "over-ssh"], "");
    assert_eq!((r.code, r.stdout.as_str()), (0, "over-ssh\n"), "{r:?}");
    // DOCKER_HOST is honoured the same way.
    let mut c = Command::new(&berth);
    c.args(["version", "--format", "{{.Server.Version}}"])
        .env_remove("BERTH_HOST")
        .env("DOCKER_HOST", &host)
        .env("BERTH_NO_AUTOSTART", "1")
        .env("PATH", &path)
        .stdin(Stdio::null());
    let r: Run = c.output().unwrap().into();
    assert_eq!((r.code, r.stdout.trim()), (0, env!("CARGO_PKG_VERSION")), "{r:?}");
}

#[test]
fn docker_cli_over_ssh_reaches_berthd_through_berths_dial_stdio() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let (dir, argv) = fake_ssh(&d);
    let path = path_with(&dir);
    let host = format!("ssh://tester@remote{}", d.sock.display());
    let r = run_with(
        &PathBuf::from("docker"),
        &d,
        &path,
        &["-H", &host, "run", "--rm", "-i", "bb", "cat"],
        "piped\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "piped\n", "{r:?}");
    let args = std::fs::read_to_string(&argv).unwrap();
    assert!(
        args.lines().all(|l| l.ends_with(&format!(
            "-- remote docker --host unix://{} system dial-stdio",
            d.sock.display()
        ))),
        "{args}"
    );
}

#[test]
fn a_failing_ssh_or_no_ssh_is_an_error_that_says_what_happened() {
    let d = Daemon::start();
    let (dir, _) = fake_ssh(&d);
    let berth = bin("berth");
    let r = run_with(
        &berth,
        &d,
        &path_with(&dir),
        &["-H", "ssh://tester@remote/nonexistent/berth.sock", "ps"],
        "",
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("has exited with exit status 1"), "{r:?}");
    assert!(
        r.stderr
            .contains("stderr=Cannot connect to the berth daemon at unix:///nonexistent/berth.sock"),
        "{r:?}"
    );
    let empty = d.root.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let r = run_with(
        &berth,
        &d,
        &empty.display().to_string(),
        &["-H", "ssh://remote", "ps"],
        "",
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("running `ssh -o ConnectTimeout=30 -T -- remote docker system dial-stdio`"),
        "{r:?}"
    );
    let r = run_with(
        &berth,
        &d,
        &empty.display().to_string(),
        &["-H", "ssh://me:secret@remote", "ps"],
        "",
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("plain-text password is not supported"), "{r:?}");
}

#[test]
fn dial_stdio_relays_an_http_exchange_even_after_its_input_ends() {
    let d = Daemon::start();
    let r = run_with(
        &bin("berth"),
        &d,
        &std::env::var("PATH").unwrap_or_default(),
        &["-H", &d.host(), "system", "dial-stdio"],
        "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{r:?}");
    assert!(r.stdout.ends_with("\r\n\r\nOK"), "{r:?}");
}
