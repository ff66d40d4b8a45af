//! End-to-end: the same scenarios driven by the `berth` CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn berth_run_ps_logs_inspect_stop_rm() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&["run", "--rm", "bb", "echo", "hello"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(r.stdout, "hello\n");

    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "svc",
        "-e",
        "GREETING=hi",
        "bb",
        "sh",
        "-c",
        "echo $GREETING; exec sleep 1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{r:?}");
    assert!(eventually(Duration::from_secs(5), || d.berth(&["logs", "svc"]).stdout == "hi\n"));
    let ps = d.berth(&["ps"]);
    assert!(ps.stdout.starts_with("CONTAINER ID"), "{ps:?}");
    assert!(ps.stdout.contains(&id[..12]) && ps.stdout.contains("svc"), "{ps:?}");
    let st = d.berth(&["inspect", "-f", "{{.State.Status}}", "svc"]);
    assert_eq!(st.stdout.trim(), "running", "{st:?}");
    assert_eq!(d.berth(&["stop", "-t", "1", "svc"]).code, 0);
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.Status}}", "svc"]).stdout.trim(),
        "exited"
    );
    assert_eq!(d.berth(&["rm", "svc"]).code, 0);
    let gone = d.berth(&["inspect", "svc"]);
    assert_ne!(gone.code, 0);
}

#[test]
fn berth_run_exit_codes_and_errors_match_docker() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    assert_eq!(d.berth(&["run", "--rm", "bb", "sh", "-c", "exit 42"]).code, 42);
    let r = d.berth(&["run", "--rm", "bb", "nope-cmd"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("executable file not found"), "{r:?}");
    let r = d.berth(&["run", "--rm", "nosuchimage"]);
    assert_eq!(r.code, 125, "{r:?}");
    let r = d.berth(&["rm", "nothing-here"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("No such container: nothing-here"), "{r:?}");
}

#[test]
fn berth_run_interactive_stdin() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let mut child = d
        .berth_cmd(&["run", "-i", "--rm", "bb", "sh", "-c", "read x; echo got:$x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning berth");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"ping\n");
    }
    let out = child.wait_with_output().expect("waiting for berth");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got:ping\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn berth_import_save_load_images() {
    let d = Daemon::start();
    let rootfs = berth_testkit::busybox_rootfs_tar().expect("rootfs tar");
    let tar = d.root.join("rootfs.tar");
    std::fs::write(&tar, rootfs).expect("writing rootfs tar");
    let r = d.berth(&[
        "import",
        "-c",
        "CMD [\"echo\", \"imported\"]",
        tar.to_str().unwrap_or_default(),
        "imp:1",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert!(r.stdout.trim().starts_with("sha256:"), "{r:?}");
    let run = d.berth(&["run", "--rm", "imp:1"]);
    assert_eq!(run.stdout, "imported\n", "{run:?}");
    let images = d.berth(&["images"]);
    assert!(
        images.stdout.contains("imp") && images.stdout.contains("REPOSITORY"),
        "{images:?}"
    );
    let out = d.root.join("imp.tar");
    assert_eq!(
        d.berth(&["save", "-o", out.to_str().unwrap_or_default(), "imp:1"]).code,
        0
    );
    assert_eq!(d.berth(&["rmi", "imp:1"]).code, 0);
    let load = d.berth(&["load", "-i", out.to_str().unwrap_or_default()]);
    assert_eq!(load.code, 0, "{load:?}");
    assert!(load.stdout.contains("Loaded image: imp:1"), "{load:?}");
    let hist = d.berth(&["history", "imp:1"]);
    assert_eq!(hist.code, 0, "{hist:?}");
}

/// `berth build --print-ast`: the parse of a Dockerfile as JSON, no daemon needed; bad files exit 1
/// with the line named.
#[test]
fn build_print_ast_shows_the_parse() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(
        &file,
        "# escape=`\nFROM bb AS base\nARG foo bar=baz\nRUN echo `\n  # inside\n  hi\nCOPY --chown=1:2 <<EOF /etc/x\nhello\nEOF\nCMD [\"sh\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::bin("berth"))
        .env("BERTH_NO_AUTOSTART", "1")
        .args(["build", "--print-ast"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cmds: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["cmd"].as_str().unwrap())
        .collect();
    assert_eq!(cmds, ["from", "arg", "run", "copy", "cmd"]);
    assert_eq!(v[1]["args"], serde_json::json!(["foo", null, "bar", "baz"]));
    assert_eq!(v[2]["line"], 4);
    assert_eq!(v[3]["flags"], serde_json::json!(["--chown=1:2"]));
    assert_eq!(
        v[3]["heredocs"],
        serde_json::json!([{"name": "EOF", "content": "hello\n"}])
    );
    assert_eq!(v[4]["json"], true);
    assert_eq!(v[4]["args"], serde_json::json!(["sh"]));
    for (src, what) in [
        ("", "no instructions"),
        ("FROM x\nENV a\n", "line 2"),
        ("FROM x\nBOGUS y\n", "line 2"),
    ] {
        std::fs::write(&file, src).unwrap();
        let out = std::process::Command::new(common::bin("berth"))
            .args(["build", "--print-ast"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{src:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(what), "{src:?}: {out:?}");
    }
}
