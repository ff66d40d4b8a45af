//! End-to-end: the real `docker` CLI (client only) against berthd. What a Docker user sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, Daemon};
use std::time::Duration;

#[test]
fn docker_version_and_info_talk_to_berthd() {
    let d = Daemon::start();
    let v = d.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.code, 0, "{v:?}");
    assert_eq!(v.stdout.trim(), "1.47");
    let info = d.docker(&["info", "--format", "{{.Driver}} {{.OSType}}"]);
    assert_eq!(info.code, 0, "{info:?}");
    assert_eq!(info.stdout.trim(), "overlay2 linux");
}

#[test]
fn docker_run_foreground_prints_and_exits_with_the_code() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&["run", "--rm", "bb", "echo", "hello from berth"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(r.stdout, "hello from berth\n");
    let r = d.docker(&["run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    // --rm removed them.
    let ps = d.docker(&["ps", "-aq"]);
    assert_eq!(ps.stdout.trim(), "", "{ps:?}");
}

#[test]
fn docker_run_missing_command_is_127() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&["run", "--name", "nocmd", "bb", "no-such-command"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("executable file not found"), "{r:?}");
    let code = d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "nocmd"]);
    assert_eq!(code.stdout.trim(), "127", "{code:?}");
    let r = d.docker(&["run", "--rm", "bb", "/etc/passwd"]);
    assert_eq!(r.code, 126, "{r:?}");
}

#[test]
fn docker_detached_lifecycle() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "bb",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{r:?}");

    let ps = d.docker(&["ps", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.Status}}"]);
    assert_eq!(ps.code, 0, "{ps:?}");
    let line = ps.stdout.lines().next().unwrap_or_default().to_string();
    assert!(line.starts_with(&format!("{} web bb Up", &id[..12])), "{line}");

    assert!(eventually(Duration::from_secs(5), || d.docker(&["logs", "web"]).stdout
        == "started\n"));
    let st = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Hostname}}",
        &id[..8],
    ]);
    assert_eq!(st.stdout.trim(), format!("running true /web {}", &id[..12]), "{st:?}");

    // Names are unique.
    let dup = d.docker(&["run", "-d", "--name", "web", "bb", "true"]);
    assert_eq!(dup.code, 125, "{dup:?}");
    assert!(dup.stderr.contains("is already in use"), "{dup:?}");

    // rm of a running container needs -f.
    let rm = d.docker(&["rm", "web"]);
    assert_eq!(rm.code, 1, "{rm:?}");
    assert!(
        rm.stderr.contains("stop the container before removing or force remove"),
        "{rm:?}"
    );

    let stop = d.docker(&["stop", "-t", "1", "web"]);
    assert_eq!(stop.code, 0, "{stop:?}");
    let st = d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"]);
    // `sleep` as PID 1 ignores SIGTERM, so the stop ends with SIGKILL after the timeout.
    assert_eq!(st.stdout.trim(), "exited 137", "{st:?}");
    let ps = d.docker(&["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"]);
    assert_eq!(ps.stdout.trim(), "web", "{ps:?}");

    let rm = d.docker(&["rm", "web"]);
    assert_eq!(rm.code, 0, "{rm:?}");
    let gone = d.docker(&["inspect", "web"]);
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr.contains("No such object") || gone.stderr.contains("No such container"),
        "{gone:?}"
    );
}

#[test]
fn docker_images_save_load_round_trip() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let imgs = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(imgs.stdout.trim(), "bb:latest", "{imgs:?}");
    let id = d
        .docker(&["image", "inspect", "-f", "{{.Id}}", "bb"])
        .stdout
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");

    let tar = d.root.join("bb.tar");
    let save = d.docker(&["save", "-o", tar.to_str().unwrap_or_default(), "bb:latest"]);
    assert_eq!(save.code, 0, "{save:?}");
    let tag = d.docker(&["tag", "bb", "bb:copy"]);
    assert_eq!(tag.code, 0, "{tag:?}");
    let rmi = d.docker(&["rmi", "bb:latest", "bb:copy"]);
    assert_eq!(rmi.code, 0, "{rmi:?}");
    assert_eq!(d.docker(&["images", "-q"]).stdout.trim(), "");

    let load = d.docker(&["load", "-i", tar.to_str().unwrap_or_default()]);
    assert_eq!(load.code, 0, "{load:?}");
    assert!(load.stdout.contains("Loaded image: bb:latest"), "{load:?}");
    let id2 = d
        .docker(&["image", "inspect", "-f", "{{.Id}}", "bb"])
        .stdout
        .trim()
        .to_string();
    assert_eq!(id, id2);
    let r = d.docker(&["run", "--rm", "bb", "cat", "/etc/hostname"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn docker_rmi_refuses_an_image_in_use() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let c = d.docker(&["create", "--name", "user", "bb", "true"]);
    assert_eq!(c.code, 0, "{c:?}");
    let rmi = d.docker(&["rmi", "bb"]);
    assert_eq!(rmi.code, 1, "{rmi:?}");
    assert!(rmi.stderr.contains("conflict"), "{rmi:?}");
    assert_eq!(d.docker(&["rm", "user"]).code, 0);
    assert_eq!(d.docker(&["rmi", "bb"]).code, 0);
}
