//! `docker run -it` through a real terminal (`script(1)` provides the pty): the container gets its own
//! pty from its devpts (`/dev/pts/0`, as with runc), sized from the client's terminal before the
//! process runs, and the exit code comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Daemon;
use std::io::Read;
use std::process::{Command, Stdio};

/// Runs `docker <args>` inside `script` on a 30x100 terminal; returns (exit code, raw output).
///
/// `script`'s stdin is a pipe held open until it exits: at EOF on its stdin `script` types the EOF
/// character into the terminal, which the line discipline queues as a NUL byte once the CLI switches
/// the terminal to raw mode, and the container's tty would then echo `^@`.
fn docker_in_terminal(d: &Daemon, args: &str) -> (i32, Vec<u8>) {
    in_terminal(d, "docker", args)
}

/// Runs `program <args>` (docker, or the berth under test) inside `script`.
fn in_terminal(d: &Daemon, program: &str, args: &str) -> (i32, Vec<u8>) {
    let program = match program {
        "berth" => common::bin("berth").display().to_string(),
        other => other.to_string(),
    };
    let mut child = Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("stty rows 30 cols 100; {program} {args}"),
            "/dev/null",
        ])
        .env("DOCKER_HOST", d.host())
        .env("BERTH_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env("DOCKER_CLI_HINTS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running script (util-linux)");
    let stdin = child.stdin.take();
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("reading script output");
    let status = child.wait().expect("waiting for script");
    drop(stdin);
    (status.code().unwrap_or(-1), out)
}

#[test]
fn docker_run_it_gets_its_own_sized_pty() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    for i in 0..10 {
        let (code, out) = docker_in_terminal(&d, "run --rm -it bb sh -c 'tty; stty size'");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(code, 0, "run {i}: {text:?}");
        assert!(!out.contains(&0), "run {i}: NUL byte in {out:?}");
        assert!(!text.contains("^@"), "run {i}: echoed NUL in {text:?}");
        assert_eq!(text, "/dev/pts/0\r\n30 100\r\n", "run {i}");

        let (code, out) = docker_in_terminal(&d, "run --rm -it bb sh -c 'exit 3'");
        assert_eq!(code, 3, "run {i}: {:?}", String::from_utf8_lossy(&out));
    }
}

#[test]
fn console_is_the_pty_and_the_controlling_terminal() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    // /dev/console is the slave (same device), and the shell's session has the tty (`/dev/tty` opens).
    let (code, out) = docker_in_terminal(
        &d,
        "run --rm -it bb sh -c 'stat -L -c %t:%T /dev/console /dev/pts/0; echo ok > /dev/tty'",
    );
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{text:?}");
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{text:?}");
    assert_eq!(lines[0], lines[1], "{text:?}");
    assert_eq!(lines[2], "ok", "{text:?}");
}

#[test]
fn transfers_show_progress_on_a_terminal_only() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let dir = d.root.join("transfer");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("blob"), vec![7u8; 3 << 20]).unwrap();
    let tar = dir.join("bb.tar");
    let run = |args: String| {
        let (code, out) = in_terminal(&d, "berth", &args);
        let text = String::from_utf8_lossy(&out).into_owned();
        assert_eq!(code, 0, "berth {args}: {text:?}");
        text
    };
    let text = run(format!("save -o {} bb", tar.display()));
    assert!(text.contains("Saving - "), "{text:?}");
    let text = run(format!("load -i {}", tar.display()));
    assert!(
        text.contains("Loading ") && text.contains("Loaded image: bb:latest"),
        "{text:?}"
    );
    assert!(text.contains("\x1b[2K"), "the live line is cleared: {text:?}");
    common::ok(&d, &["create", "--name", "c1", "bb", "true"]);
    let text = run(format!("cp {} c1:/tmp/", dir.join("blob").display()));
    assert!(
        text.contains("Copying to container - ") && text.contains("Successfully copied"),
        "{text:?}"
    );
    let text = run(format!("cp c1:/tmp/blob {}", dir.join("back").display()));
    assert!(text.contains("Copying from container - 3.15MB"), "{text:?}");
    assert_eq!(std::fs::read(dir.join("back")).unwrap().len(), 3 << 20);
    let text = run(format!("export -o {} c1", dir.join("c1.tar").display()));
    assert!(text.contains("Exporting - "), "{text:?}");
    // Quiet on a terminal, and nothing when stderr is not one.
    let text = run(format!("load -q -i {}", tar.display()));
    assert!(!text.contains("Loading "), "{text:?}");
    let r = d.berth(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stderr.contains("Loading ") && !r.stdout.contains("Loading "),
        "{r:?}"
    );
}
