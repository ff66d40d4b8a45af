//! Shell completion and man pages: the scripts `berth completion SHELL` prints load in their shell,
//! the dynamic completion entry (`COMPLETE=bash berth -- …`) offers the daemon's names, and
//! `berth __man DIR` writes pages `man` renders.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{bin, ok, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `program` is on PATH.
fn have(program: &str) -> bool {
    Command::new("which")
        .arg(program)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `berth completion SHELL` written to a file in `dir`.
fn script(dir: &Path, shell: &str) -> PathBuf {
    let out = Command::new(bin("berth")).args(["completion", shell]).output().unwrap();
    assert!(out.status.success(), "berth completion {shell}: {out:?}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.join(format!("berth.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// A PATH with the built `berth` first, as an installed one would be.
fn path_with_berth() -> String {
    let dir = bin("berth").parent().unwrap().to_path_buf();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn bash_script_parses_and_registers() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "bash");
    let r = Command::new("bash").arg("-n").arg(&s).output().unwrap();
    assert!(r.status.success(), "bash -n: {r:?}");
    let r = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p berth", s.display()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{r:?}");
    assert!(out.contains("-F _clap_complete_berth berth"), "{out}");
}

#[test]
fn zsh_script_registers() {
    if !have("zsh") {
        println!("SKIP zsh_script_registers: zsh is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "zsh");
    let r = Command::new("zsh").arg("-n").arg(&s).output().unwrap();
    assert!(r.status.success(), "zsh -n: {r:?}");
    let r = Command::new("zsh")
        .arg("-fc")
        .arg(format!(
            "autoload -U compinit && compinit -u -D && source {} && print -r -- ${{_comps[berth]}}",
            s.display()
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("_clap_dynamic_completer_berth"), "{r:?}");
}

#[test]
fn fish_script_registers() {
    if !have("fish") {
        println!("SKIP fish_script_registers: fish is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "fish");
    let r = Command::new("fish").arg("-n").arg(&s).output().unwrap();
    assert!(r.status.success(), "fish -n: {r:?}");
    let r = Command::new("fish")
        .arg("-c")
        .arg(format!("source {}; complete -c berth", s.display()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("COMPLETE=fish"), "{r:?}");
}

#[test]
fn completion_rejects_an_unknown_shell() {
    let r = Command::new(bin("berth"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(r.stdout.is_empty());
}

#[test]
fn man_pages_render() {
    let dir = tempfile::tempdir().unwrap();
    let r = Command::new(bin("berth"))
        .arg("__man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    for page in ["berth.1", "berth-run.1", "berth-container-ls.1", "berth-volume-rm.1"] {
        assert!(dir.path().join(page).is_file(), "{page} missing");
    }
    assert!(
        !dir.path().join("berth-__man.1").exists(),
        "the hidden command got a page"
    );
    let run = dir.path().join("berth-run.1");
    let rendered = if have("man") {
        Command::new("man")
            .arg("-l")
            .arg(&run)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap()
    } else if have("groff") {
        Command::new("groff")
            .args(["-man", "-Tutf8"])
            .arg(&run)
            .output()
            .unwrap()
    } else if have("mandoc") {
        Command::new("mandoc").arg(&run).output().unwrap()
    } else {
        println!("SKIP rendering: none of man, groff, mandoc is installed; checking the source");
        let text = std::fs::read_to_string(&run).unwrap();
        assert!(text.contains(".TH"), "{text}");
        return;
    };
    assert!(rendered.status.success(), "{rendered:?}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    // Formatters may hyphenate with U+2010; compare on plain words.
    assert!(text.contains("NAME") && text.contains("SYNOPSIS"), "{text}");
    assert!(text.contains("Create and run a new container from an image"), "{text}");
    assert!(text.contains("--detach") || text.contains("‐‐detach"), "{text}");
}

/// What the bash script's call into berth answers for `line` (the word under the cursor last):
/// the candidates, one a line, as `COMPLETE=bash berth -- berth start w` prints them.
fn complete_bash(host: &str, line: &[&str]) -> (Vec<String>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(bin("berth"))
        .arg("--")
        .args(line)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (line.len() - 1).to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_IFS", "\n")
        .env("BERTH_HOST", host)
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{out:?}");
    let words = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    (words, String::from_utf8_lossy(&out.stderr).into_owned(), took)
}

#[test]
fn dynamic_completion_offers_the_daemons_names() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(&d, &["create", "--name", "web1", "bb"]);
    ok(&d, &["create", "--name", "db1", "bb"]);
    ok(&d, &["network", "create", "webnet"]);
    ok(&d, &["volume", "create", "webvol"]);
    let host = d.host();

    let (got, err, _) = complete_bash(&host, &["berth", "start", "w"]);
    assert_eq!(got, vec!["web1"], "{err}");
    let (got, _, _) = complete_bash(&host, &["berth", "container", "stop", ""]);
    assert!(got.contains(&"web1".into()) && got.contains(&"db1".into()), "{got:?}");
    let (got, _, _) = complete_bash(&host, &["berth", "rmi", "b"]);
    assert_eq!(got, vec!["bb:latest"]);
    let (got, _, _) = complete_bash(&host, &["berth", "run", "--rm", "b"]);
    assert_eq!(got, vec!["bb:latest"]);
    // The words after the image are the container's command: no image names there.
    let (got, _, _) = complete_bash(&host, &["berth", "run", "bb", ""]);
    assert!(!got.contains(&"bb:latest".into()), "{got:?}");
    let (got, _, _) = complete_bash(&host, &["berth", "run", "bb", "sh", ""]);
    assert!(!got.contains(&"bb:latest".into()), "{got:?}");
    let (got, _, _) = complete_bash(&host, &["berth", "image", "inspect", "b"]);
    assert_eq!(got, vec!["bb:latest"]);
    let (got, _, _) = complete_bash(&host, &["berth", "container", "inspect", "b"]);
    assert!(got.is_empty(), "{got:?}");
    let (got, _, _) = complete_bash(&host, &["berth", "inspect", ""]);
    assert!(
        got.contains(&"bb:latest".into()) && got.contains(&"web1".into()),
        "{got:?}"
    );
    let (got, _, _) = complete_bash(&host, &["berth", "network", "rm", "web"]);
    assert_eq!(got, vec!["webnet"]);
    let (got, _, _) = complete_bash(&host, &["berth", "volume", "inspect", "web"]);
    assert_eq!(got, vec!["webvol"]);
    let (got, _, _) = complete_bash(&host, &["berth", "cp", "we"]);
    assert!(got.contains(&"web1:".into()), "{got:?}");
    // `-H` on the line being completed wins over BERTH_HOST.
    let (got, _, _) = complete_bash("unix:///nonexistent.sock", &["berth", "-H", &host, "logs", "d"]);
    assert_eq!(got, vec!["db1"]);

    // Through the script itself, as bash runs it on TAB (berth found on PATH).
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "bash");
    let r = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && COMP_WORDS=(berth start w) COMP_CWORD=2 COMP_TYPE=9 && \
             _clap_complete_berth berth w start && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            s.display()
        ))
        .env("PATH", path_with_berth())
        .env("BERTH_HOST", &host)
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "web1", "{r:?}");
}

#[test]
fn dynamic_completion_without_a_daemon_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/none.sock", dir.path().display());
    let (got, err, took) = complete_bash(&host, &["berth", "start", "w"]);
    assert!(got.is_empty(), "{got:?}");
    assert!(err.is_empty(), "completion printed: {err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Subcommand names still complete.
    let (got, _, _) = complete_bash(&host, &["berth", "netw"]);
    assert_eq!(got, vec!["network"]);
}
