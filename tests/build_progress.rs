//! `berth build --progress` end to end: `tty` draws the live view of the steps (forced here, the
//! output being a pipe) and leaves a final frame with each step, `CACHED` on a rebuild and `ERROR`
//! on the step that failed; `plain` (and `auto` into a pipe) prints the classic builder's stream;
//! `quiet` prints only the image ID; `BUILDKIT_PROGRESS` sets the default; other values are
//! refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{ok, Daemon, Run};
use std::path::Path;

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(t.path().join(name), body).unwrap();
    }
    t
}

/// `berth build ARGS DIR`, with `BUILDKIT_PROGRESS` as given (unset when `None`).
fn build(d: &Daemon, dir: &Path, args: &[&str], env: Option<&str>) -> Run {
    let mut c = d.berth_cmd(&["build"]);
    c.args(args).arg(dir);
    match env {
        Some(v) => c.env("BUILDKIT_PROGRESS", v),
        None => c.env_remove("BUILDKIT_PROGRESS"),
    };
    c.output().unwrap().into()
}

/// The last frame drawn (from its header on) as it stays on screen, escape sequences left out.
fn final_frame(out: &str) -> Vec<String> {
    let start = out
        .rfind("[+] Building")
        .unwrap_or_else(|| panic!("no frame in {out:?}"));
    let mut text = String::new();
    let mut chars = out[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => text.push(c),
        }
    }
    text.lines().map(String::from).collect()
}

fn has_row(frame: &[String], start: &str) -> bool {
    frame.iter().any(|l| l.starts_with(start))
}

const DOCKERFILE: &str = "FROM bb\nRUN echo hi\nCOPY f /f\n";

#[test]
fn tty_view_shows_the_steps_and_cache_hits() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("f", "content\n")]);

    let r = build(&d, ctx.path(), &["--progress=tty", "-t", "progress:1"], None);
    assert_eq!(r.code, 0, "{r:?}");
    // Redrawn in place, no classic stream.
    assert!(r.stdout.contains("\x1b[2K"), "{r:?}");
    assert!(!r.stdout.contains("Step 1/3"), "{r:?}");
    let frame = final_frame(&r.stdout);
    assert!(frame[0].starts_with("[+] Building "), "{frame:#?}");
    assert!(frame[0].ends_with("(3/3) FINISHED"), "{frame:#?}");
    for row in [" => [1/3] FROM bb ", " => [2/3] RUN echo hi ", " => [3/3] COPY f /f "] {
        assert!(has_row(&frame, row), "{row}: {frame:#?}");
    }
    assert!(has_row(&frame, " => writing image sha256:"), "{frame:#?}");
    assert!(has_row(&frame, " => naming to progress:1"), "{frame:#?}");
    // Off a terminal the view is 80 columns wide, durations at the right edge.
    assert!(frame.iter().all(|l| l.chars().count() <= 80), "{frame:#?}");
    assert!(frame[2].ends_with('s') && frame[2].chars().count() == 80, "{frame:#?}");
    assert_eq!(ok(&d, &["run", "--rm", "progress:1", "cat", "/f"]), "content\n");

    // Again: the steps after FROM come from the cache; BUILDKIT_PROGRESS asks for the view.
    let r = build(&d, ctx.path(), &["-t", "progress:2"], Some("tty"));
    assert_eq!(r.code, 0, "{r:?}");
    let frame = final_frame(&r.stdout);
    assert!(has_row(&frame, " => [1/3] FROM bb "), "{frame:#?}");
    assert!(has_row(&frame, " => CACHED [2/3] RUN echo hi "), "{frame:#?}");
    assert!(has_row(&frame, " => CACHED [3/3] COPY f /f "), "{frame:#?}");
    assert!(frame[0].ends_with("(3/3) FINISHED"), "{frame:#?}");
}

#[test]
fn tty_view_shows_the_failed_step_and_the_error() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN echo about to fail && exit 3\n")]);
    let plain = build(&d, ctx.path(), &["--progress=plain"], None);
    let r = build(&d, ctx.path(), &["--progress=tty"], None);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(r.code, plain.code, "{r:?}\n{plain:?}");
    assert!(
        r.stderr
            .contains("The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"),
        "{r:?}"
    );
    let frame = final_frame(&r.stdout);
    assert!(frame[0].ends_with("(1/2)"), "{frame:#?}");
    assert!(
        has_row(&frame, " => ERROR [2/2] RUN echo about to fail && exit 3 "),
        "{frame:#?}"
    );
    // The failed step's output stays under it.
    assert!(frame.iter().any(|l| l == " => => # about to fail"), "{frame:#?}");
}

#[test]
fn plain_quiet_auto_and_bad_values() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("f", "content\n")]);

    // plain: the classic builder's stream, as before; it wins over BUILDKIT_PROGRESS.
    let r = build(&d, ctx.path(), &["--progress=plain", "-t", "plain:1"], Some("tty"));
    assert_eq!(r.code, 0, "{r:?}");
    for line in [
        "Step 1/3 : FROM bb\n",
        "Step 2/3 : RUN echo hi\n",
        " ---> Running in ",
        "hi\n",
    ] {
        assert!(r.stdout.contains(line), "{line}: {r:?}");
    }
    assert!(r.stdout.ends_with("Successfully tagged plain:1\n"), "{r:?}");
    assert!(!r.stdout.contains('\x1b'), "{r:?}");

    // auto into a pipe is plain.
    let r = build(&d, ctx.path(), &[], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Step 1/3 : FROM bb\n"), "{r:?}");
    assert!(r.stdout.contains(" ---> Using cache\n"), "{r:?}");
    assert!(!r.stdout.contains('\x1b'), "{r:?}");

    // quiet: the ID alone, as -q.
    let r = build(&d, ctx.path(), &["--progress=quiet"], None);
    assert_eq!(r.code, 0, "{r:?}");
    let q = build(&d, ctx.path(), &["-q"], None);
    assert_eq!(r.stdout, q.stdout);
    assert!(
        r.stdout.starts_with("sha256:") && r.stdout.lines().count() == 1,
        "{r:?}"
    );
    let r = build(&d, ctx.path(), &[], Some("quiet"));
    assert_eq!(r.stdout, q.stdout);

    // An empty BUILDKIT_PROGRESS is unset, as docker takes it.
    let r = build(&d, ctx.path(), &[], Some(""));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Step 1/3 : FROM bb\n"), "{r:?}");

    let r = build(&d, ctx.path(), &["--progress=bogus"], None);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("invalid value 'bogus' for '--progress <type>'"),
        "{r:?}"
    );
    assert!(r.stderr.contains("[possible values: auto, plain, tty, quiet]"), "{r:?}");
    let r = build(&d, ctx.path(), &[], Some("bogus"));
    assert_eq!(r.code, 125, "{r:?}");
    assert_eq!(
        r.stderr,
        "invalid value \"bogus\" of BUILDKIT_PROGRESS: it is one of auto, plain, tty, quiet\n"
    );
}
