//! `POST /build` end to end: the docker CLI's classic builder (`DOCKER_BUILDKIT=0`) and the Docker
//! SDK for Python build against berthd; the image runs and its config and history are what the
//! Dockerfile says; a failing RUN and unsupported input are reported and leave no container behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{inspect, ok, Daemon, Run};
use std::path::Path;

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = t.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    t
}

fn docker_build(d: &Daemon, dir: &Path, args: &[&str]) -> Run {
    let mut c = d.docker_cmd(&["build"]);
    c.args(args).arg(dir).env("DOCKER_BUILDKIT", "0");
    c.output().unwrap().into()
}

const DOCKERFILE: &str = r#"FROM bb
ARG WHO=world
ENV GREETING=hello
WORKDIR /app
COPY hello.txt .
COPY *.txt /all/
RUN echo "$GREETING $WHO from run" > /app/run.txt && cat /app/hello.txt
LABEL org.example.kind=test
EXPOSE 8080
CMD ["cat", "/app/run.txt"]
"#;

#[test]
fn docker_cli_builds_and_the_image_runs() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        ("Dockerfile", DOCKERFILE),
        ("hello.txt", "hi from the context\n"),
        ("secret.txt", "left out\n"),
        (".dockerignore", "secret.txt\n"),
    ]);
    let r = docker_build(&d, ctx.path(), &["-t", "built:1", "--build-arg", "WHO=berth"]);
    assert_eq!(r.code, 0, "{r:?}");
    for line in [
        "Step 1/10 : FROM bb",
        "Step 7/10 : RUN echo \"$GREETING $WHO from run\" > /app/run.txt && cat /app/hello.txt",
        "hi from the context",
        "Successfully tagged built:1",
    ] {
        assert!(r.stdout.contains(line), "{line}: {r:?}");
    }
    assert_eq!(ok(&d, &["run", "--rm", "built:1"]), "hello berth from run\n");
    assert_eq!(ok(&d, &["run", "--rm", "built:1", "ls", "/all"]), "hello.txt\n");
    let img = inspect(&d, "built:1");
    let cfg = &img["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat", "/app/run.txt"]));
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["Labels"]["org.example.kind"], "test");
    assert_eq!(cfg["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert!(
        cfg["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("GREETING=hello")),
        "{cfg}"
    );
    // build args reach RUN, not the image
    assert!(!cfg["Env"].to_string().contains("WHO"), "{cfg}");
    // three layers on the base (two COPYs, one RUN), metadata steps as empty layers
    let base = inspect(&d, "bb")["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), base + 3);
    let history = ok(&d, &["history", "--no-trunc", "--format", "{{.CreatedBy}}", "built:1"]);
    assert!(history.contains("/bin/sh -c #(nop)  ENV GREETING=hello"), "{history}");
    assert!(
        history.contains("/bin/sh -c echo \"$GREETING $WHO from run\""),
        "{history}"
    );
    // no build container left; the steps' images (the cache) show only with -a
    assert_eq!(ok(&d, &["ps", "-aq"]), "");
    assert_eq!(ok(&d, &["images", "-q"]).lines().count(), 2, "{}", ok(&d, &["images"]));
    assert!(ok(&d, &["images", "-aq"]).lines().count() > 2);
    assert_eq!(ok(&d, &["images", "-q", "--filter", "dangling=true"]), "");

    // The same build again comes from the cache, to the same image.
    let again = docker_build(&d, ctx.path(), &["-t", "built:2", "--build-arg", "WHO=berth"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.stdout.matches("Using cache").count(), 9, "{again:?}");
    assert!(!again.stdout.contains("Running in"), "{again:?}");
    assert_eq!(inspect(&d, "built:2")["Id"], img["Id"]);
    // A new mtime alone keeps the cache; new content rebuilds from that COPY on.
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.path().join("hello.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    let r = docker_build(&d, ctx.path(), &["--build-arg", "WHO=berth"]);
    assert_eq!(r.stdout.matches("Using cache").count(), 9, "{r:?}");
    std::fs::write(ctx.path().join("hello.txt"), "changed\n").unwrap();
    let r = docker_build(&d, ctx.path(), &["-t", "built:3", "--build-arg", "WHO=berth"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("Using cache").count(), 3, "{r:?}");
    assert!(r.stdout.contains("changed"), "{r:?}");
    // Another build arg value misses from the start; --no-cache runs everything.
    let r = docker_build(&d, ctx.path(), &["--build-arg", "WHO=other"]);
    assert_eq!(r.stdout.matches("Using cache").count(), 0, "{r:?}");
    let r = docker_build(&d, ctx.path(), &["--no-cache", "--build-arg", "WHO=berth"]);
    assert_eq!(r.stdout.matches("Using cache").count(), 0, "{r:?}");
}

#[test]
fn failures_are_reported_and_leave_nothing_behind() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN echo about to fail && exit 3\n")]);
    let r = docker_build(&d, ctx.path(), &["-t", "broken"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"),
        "{r:?}"
    );
    assert!(r.stdout.contains("about to fail"), "{r:?}");
    assert_eq!(ok(&d, &["ps", "-aq"]), "");
    assert!(d.berth(&["image", "inspect", "broken"]).code != 0);
    assert_eq!(
        ok(&d, &["images", "-aq"]).lines().count(),
        1,
        "{}",
        ok(&d, &["images", "-a"])
    );
    // COPY from outside the context and a missing file: the classic builder's messages
    for (df, want) in [
        (
            "FROM bb\nCOPY ../etc/passwd /x\n",
            "forbidden path outside the build context: ../etc/passwd",
        ),
        (
            "FROM bb\nCOPY nope.txt /x\n",
            "file not found in build context or excluded by .dockerignore",
        ),
        ("FROM bb\nBOGUS x\n", "unknown instruction"),
    ] {
        let ctx = context(&[("Dockerfile", df)]);
        let r = docker_build(&d, ctx.path(), &[]);
        assert_ne!(r.code, 0, "{df}: {r:?}");
        assert!(r.stderr.to_lowercase().contains(&want.to_lowercase()), "{df}: {r:?}");
    }
    assert_eq!(ok(&d, &["ps", "-aq"]), "");
}

#[test]
fn docker_sdk_builds() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nRUN echo sdk > /sdk.txt\nCMD [\"cat\", \"/sdk.txt\"]\n",
    )]);
    let py = format!(
        "import docker\nc = docker.DockerClient(base_url='{}')\nimg, logs = c.images.build(path='{}', tag='sdk:1')\nprint(img.id.startswith('sha256:'))\nprint(c.containers.run('sdk:1', remove=True).decode().strip())\n",
        d.host(),
        ctx.path().display()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&py)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "True\nsdk\n");
}

/// `berth build`: the same builder through berth's CLI, the context packed as docker's CLI packs
/// it (`.dockerignore` honoured, `-f` outside the context), `-q` printing only the ID.
#[test]
fn berth_cli_builds() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        ("app/hello.txt", "hello\n"),
        ("app/skip.log", "no\n"),
        (".dockerignore", "**/*.log\n"),
    ]);
    let elsewhere = context(&[(
        "Build.df",
        "FROM bb\nCOPY app /app/\nRUN ls /app\nCMD [\"cat\", \"/app/hello.txt\"]\n",
    )]);
    let df = elsewhere.path().join("Build.df");
    let r = d.berth(&[
        "build",
        "-t",
        "mine:2",
        "-f",
        df.to_str().unwrap(),
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Step 3/4 : RUN ls /app"), "{r:?}");
    assert!(
        r.stdout.contains("hello.txt") && !r.stdout.contains("skip.log"),
        "{r:?}"
    );
    assert!(r.stdout.contains("Successfully tagged mine:2"), "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "mine:2"]), "hello\n");
    let iid = ctx.path().join("iid");
    let r = d.berth(&[
        "build",
        "-q",
        "--iidfile",
        iid.to_str().unwrap(),
        "-f",
        df.to_str().unwrap(),
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(r.stdout.trim(), id);
    // docker's other names for build give the same (cached) image.
    for verb in [["image", "build"], ["builder", "build"]] {
        let r = d.berth(&[
            verb[0],
            verb[1],
            "-q",
            "-f",
            df.to_str().unwrap(),
            ctx.path().to_str().unwrap(),
        ]);
        assert_eq!((r.code, r.stdout.trim()), (0, id.as_str()), "{verb:?}: {r:?}");
    }
    let r = d.berth(&["build", ctx.path().join("missing").to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("unable to prepare context"), "{r:?}");
}

/// Several stages: only those the target needs are built (a failing unused stage does not stop
/// the build), `COPY --from` by name, by index and with a wildcard, `--target`, and a stage used
/// before it is built is an error.
#[test]
fn multi_stage_builds() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let df = "FROM bb AS build\nRUN mkdir -p /out && echo built > /out/artifact && echo other > /out/other.txt\nFROM bb AS unused\nRUN exit 7\nFROM bb\nCOPY --from=build /out/artifact /app/\nCOPY --from=0 /out/*.txt /app/\nCMD [\"cat\", \"/app/artifact\", \"/app/other.txt\"]\n";
    let ctx = context(&[("Dockerfile", df)]);
    let r = docker_build(&d, ctx.path(), &["-t", "multi:1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("RUN exit 7"), "the unused stage was built: {r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "multi:1"]), "built\nother\n");
    // the final image has only the base's layers and the two COPYs
    let base = inspect(&d, "bb")["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(
        inspect(&d, "multi:1")["RootFS"]["Layers"].as_array().unwrap().len(),
        base + 2
    );
    let r = docker_build(&d, ctx.path(), &["-t", "stage:build", "--target", "build"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(&d, &["run", "--rm", "stage:build", "cat", "/out/artifact"]),
        "built\n"
    );
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb AS a\nCOPY --from=b /x /x\nFROM bb AS b\nCOPY --from=a /y /y\n",
    )]);
    let r = docker_build(&d, ctx.path(), &[]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("used before it is built"), "{r:?}");
    assert_eq!(ok(&d, &["ps", "-aq"]), "");
}

/// `builder prune` (berth's CLI and the docker CLI's `POST /build/prune`) empties the cache: the
/// step images go, tagged results stay, and the next build runs every step again.
#[test]
fn builder_prune_empties_the_cache() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN echo one > /one\nENV A=1\n")]);
    let r = docker_build(&d, ctx.path(), &["-t", "pruned:1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let before = ok(&d, &["images", "-aq"]).lines().count();
    assert!(before > 2, "{before}");
    let out = ok(&d, &["builder", "prune", "-f"]);
    assert!(out.starts_with("Deleted build cache objects:\n"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(
        ok(&d, &["images", "-aq"]).lines().count(),
        2,
        "{}",
        ok(&d, &["images", "-a"])
    );
    assert_eq!(ok(&d, &["run", "--rm", "pruned:1", "cat", "/one"]), "one\n");
    let r = docker_build(&d, ctx.path(), &[]);
    assert_eq!(r.stdout.matches("Using cache").count(), 0, "{r:?}");
    // the docker CLI's classic `builder prune` uses the same endpoint
    let r = d.docker(&["builder", "prune", "-f"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Total reclaimed space"), "{r:?}");
}

/// On a daemon without a default bridge (`--bridge none`) containers, RUN steps among them, get no
/// network unless they ask for one, as with dockerd.
#[test]
fn without_a_default_bridge_containers_and_builds_get_no_network() {
    let d = Daemon::start_with(&["--bridge", "none"]);
    d.load_busybox("bb");
    let links = ok(&d, &["run", "--rm", "bb", "ls", "/sys/class/net"]);
    assert_eq!(links, "lo\n");
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN ls /sys/class/net > /links\n")]);
    let r = d.berth(&["build", "-t", "nonet", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "nonet", "cat", "/links"]), "lo\n");
}

/// HEALTHCHECK into the image's config, ONBUILD triggers kept by one build and run by the next
/// (then gone from its image), RUN with here-documents (the document as the script, and fed to a
/// command).
#[test]
fn healthcheck_onbuild_and_heredocs() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let base = context(&[(
        "Dockerfile",
        "FROM bb\nHEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -f /etc/passwd\nONBUILD RUN echo triggered > /onbuild\nRUN <<EOF\necho one > /heredoc\necho two >> /heredoc\nEOF\nRUN cat > /fed <<DATA\nfed line\nDATA\n",
    )]);
    let r = docker_build(&d, base.path(), &["-t", "base:hc"]);
    assert_eq!(r.code, 0, "{r:?}");
    let cfg = inspect(&d, "base:hc")["Config"].clone();
    assert_eq!(
        cfg["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "test -f /etc/passwd"], "Interval": 5_000_000_000i64, "Timeout": 2_000_000_000i64, "Retries": 4})
    );
    assert_eq!(cfg["OnBuild"], serde_json::json!(["RUN echo triggered > /onbuild"]));
    assert_eq!(
        ok(&d, &["run", "--rm", "base:hc", "cat", "/heredoc", "/fed"]),
        "one\ntwo\nfed line\n"
    );
    let child = context(&[("Dockerfile", "FROM base:hc\nHEALTHCHECK NONE\n")]);
    let r = docker_build(&d, child.path(), &["-t", "child:hc"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("# Executing 1 build trigger"), "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "child:hc", "cat", "/onbuild"]), "triggered\n");
    let cfg = inspect(&d, "child:hc")["Config"].clone();
    assert!(
        cfg["OnBuild"].is_null() || cfg["OnBuild"] == serde_json::json!([]),
        "{cfg}"
    );
    assert_eq!(cfg["Healthcheck"], serde_json::json!({"Test": ["NONE"]}));
}

/// ADD unpacks a local tar (gzip or plain) into its destination and copies other files as they
/// are; COPY takes a here-document as a file, variables expanded unless the delimiter is quoted.
#[test]
fn add_archives_and_copy_heredocs() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("plain.txt", "not an archive\n")]);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    b.append_data(&mut h, "inside/x.txt", &b"in tar"[..]).unwrap();
    let plain_tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &plain_tar).unwrap();
    std::fs::write(ctx.path().join("a.tar.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(ctx.path().join("b.tar"), &plain_tar).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nENV WHO=berth\nADD a.tar.gz /gz\nADD b.tar plain.txt /t/\nCOPY <<EOF /greeting\nhello $WHO\nEOF\nCOPY <<'RAW' /raw\nhello $WHO\nRAW\n",
    )
    .unwrap();
    let r = docker_build(&d, ctx.path(), &["-t", "added"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "added", "cat", "/gz/inside/x.txt"]), "in tar");
    assert_eq!(
        ok(&d, &["run", "--rm", "added", "cat", "/t/inside/x.txt", "/t/plain.txt"]),
        "in tarnot an archive\n"
    );
    assert_eq!(
        ok(&d, &["run", "--rm", "added", "cat", "/greeting", "/raw"]),
        "hello berth\nhello $WHO\n"
    );
}

/// `FROM scratch`: an image of only what the build copies in (the busybox binary from another
/// stage here), which runs.
#[test]
fn from_scratch() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb AS tools\nFROM scratch\nCOPY --from=tools /bin/busybox /busybox\nENTRYPOINT [\"/busybox\"]\nCMD [\"echo\", \"from scratch\"]\n",
    )]);
    let r = docker_build(&d, ctx.path(), &["-t", "scratchy"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Step 2/5 : FROM scratch"), "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "scratchy"]), "from scratch\n");
    assert_eq!(inspect(&d, "scratchy")["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(ok(&d, &["images", "-q"]).lines().count(), 2, "{}", ok(&d, &["images"]));
}

/// RUN --mount: a cache directory kept from one build to the next (and emptied by builder
/// prune), a tmpfs, a read-only bind of the context whose content is part of the step's cache key;
/// a bind through a symlink out of the context is refused.
#[test]
fn run_mounts() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let df = "FROM bb\nRUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /runs\nRUN --mount=type=tmpfs,target=/scratch touch /scratch/x && grep -q /scratch /proc/mounts && echo tmpfs > /tmpfs\nRUN --mount=type=bind,source=data,target=/data cat /data/v > /v && ! touch /data/w 2>/dev/null\n";
    let ctx = context(&[("Dockerfile", df), ("data/v", "one\n")]);
    let r = docker_build(&d, ctx.path(), &["-t", "m:1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(&d, &["run", "--rm", "m:1", "cat", "/runs", "/tmpfs", "/v"]),
        "1\ntmpfs\none\n"
    );
    // the cache mount outlives the build (no-cache reruns the step, which finds last build's log)
    let r = docker_build(&d, ctx.path(), &["-t", "m:2", "--no-cache"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "m:2", "cat", "/runs"]), "2\n");
    // the bound content is part of the key
    std::fs::write(ctx.path().join("data/v"), "two\n").unwrap();
    let r = docker_build(&d, ctx.path(), &["-t", "m:3"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "m:3", "cat", "/v"]), "two\n");
    ok(&d, &["builder", "prune", "-f"]);
    let r = docker_build(&d, ctx.path(), &["-t", "m:4"]);
    assert_eq!(ok(&d, &["run", "--rm", "m:4", "cat", "/runs"]), "1\n", "{r:?}");
    // no way out through a symlink
    std::os::unix::fs::symlink("/etc", ctx.path().join("out")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nRUN --mount=type=bind,source=out,target=/o cat /o/hostname\n",
    )
    .unwrap();
    let r = docker_build(&d, ctx.path(), &[]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("RUN --mount source out"), "{r:?}");
}

/// `RUN --mount=type=bind,from=`: a stage's (or an image's) files at the target, read-only unless
/// `rw` (and then the writes are dropped); the stage is built first, its content is in the key.
#[test]
fn run_mounts_from_stages_and_images() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let df = "FROM bb AS tools\nARG V=1\nRUN mkdir -p /opt/t && echo tool-$V > /opt/t/file\n\
              FROM bb\nRUN --mount=type=bind,from=tools,source=/opt/t,target=/mnt cat /mnt/file > /copied && ! touch /mnt/x 2>/dev/null\n\
              RUN --mount=from=bb,target=/b test -x /b/bin/busybox && echo seen > /seen\n\
              RUN --mount=type=bind,from=tools,source=opt/t,target=/w,rw echo x > /w/new && cat /w/new > /wrote\n";
    let ctx = context(&[("Dockerfile", df)]);
    let dir = ctx.path().to_str().unwrap();
    let r = d.berth(&["build", "-t", "mf:1", dir]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(&d, &["run", "--rm", "mf:1", "cat", "/copied", "/seen", "/wrote"]),
        "tool-1\nseen\nx\n"
    );
    assert_eq!(
        ok(&d, &["run", "--rm", "mf:1", "sh", "-c", "ls /w 2>/dev/null | wc -l"]),
        "0\n"
    );
    // The same build is cached; another stage content runs the mounting steps again.
    let r = d.berth(&["build", "-t", "mf:2", dir]);
    assert!(!r.stdout.contains("Running in"), "{r:?}");
    let r = d.berth(&["build", "-t", "mf:3", "--build-arg", "V=2", dir]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "mf:3", "cat", "/copied"]), "tool-2\n");
    // A stage named later, or a path missing in it, is refused with the line.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb AS first\nRUN --mount=from=tools,target=/t true\nFROM bb AS tools\n",
    )
    .unwrap();
    let r = d.berth(&["build", "--target", "first", dir]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("circular or forward dependency"), "{r:?}");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb AS tools\nFROM bb\nRUN --mount=from=tools,source=/nope,target=/t true\n",
    )
    .unwrap();
    let r = d.berth(&["build", dir]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("RUN --mount source /nope: not found in the from= image"),
        "{r:?}"
    );
}

/// `COPY --chown` by number and by the names of the image's own passwd and group files.
#[test]
fn copy_chown_by_name() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        ("f", "x\n"),
        (
            "Dockerfile",
            "FROM bb\nRUN echo 'bldusr:x:1234:4321::/:/bin/sh' >> /etc/passwd && echo 'bldgrp:x:999:' >> /etc/group\nCOPY --chown=bldusr f /f1\nCOPY --chown=bldusr:bldgrp f /f2\nCOPY --chown=1:2 f /f3\nRUN stat -c '%u:%g' /f1 /f2 /f3 > /owners\n",
        ),
    ]);
    let r = docker_build(&d, ctx.path(), &["-t", "owned"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(&d, &["run", "--rm", "owned", "cat", "/owners"]),
        "1234:4321\n1234:999\n1:2\n"
    );
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb\nCOPY --chown=ghost f /f\n").unwrap();
    let r = docker_build(&d, ctx.path(), &[]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("unable to find user ghost"), "{r:?}");
}

/// `berth build -` with a Dockerfile on stdin (no context) and with a context tar on stdin; a
/// context tar with a path climbing out is refused and nothing is built.
#[test]
fn stdin_contexts_and_hostile_tars() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let run = |args: &[&str], input: &[u8]| -> Run {
        let mut c = d.berth_cmd(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
        child.wait_with_output().unwrap().into()
    };
    let r = run(&["build", "-t", "fromstdin", "-"], b"FROM bb\nRUN echo piped > /p\n");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "fromstdin", "cat", "/p"]), "piped\n");
    let tar_of = |entries: &[(&str, &[u8])]| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // set the name raw, so `..` survives into the archive
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let good = tar_of(&[("Dockerfile", b"FROM bb\nCOPY f /f\n"), ("f", b"from tar\n")]);
    let r = run(&["build", "-t", "fromtar", "-"], &good);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "fromtar", "cat", "/f"]), "from tar\n");
    let evil = tar_of(&[("Dockerfile", b"FROM bb\n"), ("../../escape", b"no\n")]);
    let r = run(&["build", "-t", "evil", "-"], &evil);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("build context"), "{r:?}");
    assert!(d.berth(&["image", "inspect", "evil"]).code != 0);
}

/// With `SOURCE_DATE_EPOCH`, the same inputs give the same image, built twice without the cache
/// seconds apart: times in the config are the epoch and no file of a layer is newer.
#[test]
fn source_date_epoch_builds_are_reproducible() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        ("app/a.txt", "a\n"),
        (
            "Dockerfile",
            "FROM bb\nCOPY app /app/\nRUN date > /stamp-free && echo made > /app/made\nENV X=1\n",
        ),
    ]);
    let args = ["--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = docker_build(&d, ctx.path(), &[&args[..], &["-q"]].concat());
        assert_eq!(r.code, 0, "{r:?}");
        ids.push(r.stdout.trim().to_string());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // the RUN wrote the date into a file: contents differ, so only times are tested by these two
    // lines: the COPY layer and the metadata are identical, the RUN layer differs by content
    let a = inspect(&d, &ids[0]);
    let b = inspect(&d, &ids[1]);
    assert_eq!(a["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(a["RootFS"]["Layers"][1], b["RootFS"]["Layers"][1], "the COPY layer");
    // without content that changes, the whole image is the same
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nCOPY app /app/\nRUN echo made > /app/made\nENV X=1\n",
    )
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = docker_build(&d, ctx.path(), &[&args[..], &["-q"]].concat());
        assert_eq!(r.code, 0, "{r:?}");
        ids.push(r.stdout.trim().to_string());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn predefined_and_global_args_and_the_host_platform() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "ARG VERSION=1.2\nARG BASE=bb\nFROM --platform=$BUILDPLATFORM $BASE\nARG VERSION\nARG TARGETARCH\nARG TARGETPLATFORM\n\
         RUN echo \"$VERSION $TARGETARCH $TARGETPLATFORM ${BASE:-unset} ${HTTP_PROXY:-none}\" > /info\nCMD [\"cat\", \"/info\"]\n",
    )]);
    let dir = ctx.path().to_str().unwrap();
    let r = d.berth(&[
        "build",
        "-q",
        "-t",
        "args:1",
        "--build-arg",
        "HTTP_PROXY=http://127.0.0.1:3128",
        dir,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // The global default reaches `ARG VERSION`; BASE, not declared in the stage, does not.
    assert_eq!(
        ok(&d, &["run", "--rm", "args:1"]),
        "1.2 amd64 linux/amd64 unset http://127.0.0.1:3128\n"
    );
    // A proxy is not part of the cache key: another one reuses every step.
    let r = d.berth(&[
        "build",
        "-t",
        "args:2",
        "--build-arg",
        "HTTP_PROXY=http://127.0.0.1:3129",
        dir,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("Running in"), "{r:?}");
    // This host's platform is fine, another is refused.
    let r = d.berth(&["build", "-q", "--platform", "linux/amd64", dir]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.berth(&["build", "--platform", "linux/arm64", dir]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("this host's platform only (linux/amd64): linux/arm64"),
        "{r:?}"
    );
}

/// The paths under `dirs` in an image, with their kind, mode and owner, one per line, sorted.
fn listing(d: &Daemon, image: &str, dirs: &str) -> String {
    let script = format!("find {dirs} | sort | while read p; do stat -c '%n %F %a %u:%g' \"$p\"; done");
    ok(d, &["run", "--rm", image, "sh", "-c", &script])
}

/// `--exclude` (COPY and ADD, repeatable): `.dockerignore` patterns relative to each source, a
/// wildcard's matches included; an excluded directory goes with its contents; a change to an
/// excluded file keeps the cache.
#[test]
fn copy_and_add_exclude() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        ("app/main.c", "main\n"),
        ("app/README.md", "doc\n"),
        ("app/sub/notes.md", "deeper doc\n"),
        ("app/sub/secret/key", "no\n"),
        ("app/sub/keep.c", "keep\n"),
        ("home.txt", "t\n"),
        ("home.sh", "s\n"),
        ("homer.md", "m\n"),
        ("logs/a.log", "l\n"),
        ("logs/d/b.log", "l\n"),
        ("logs/d/c.txt", "c\n"),
        (
            "Dockerfile",
            "FROM bb\nCOPY --exclude=*.md --exclude=sub/secret app /excl/\nCOPY --exclude=*.txt --exclude=*.md hom* /mydir/\nADD --exclude=**/*.log logs /logs/\n",
        ),
    ]);
    let r = d.berth(&["build", "-t", "excl", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let files = ok(
        &d,
        &["run", "--rm", "excl", "sh", "-c", "find /excl /mydir /logs | sort"],
    );
    assert_eq!(
        files,
        "/excl\n/excl/main.c\n/excl/sub\n/excl/sub/keep.c\n/excl/sub/notes.md\n/logs\n/logs/d\n/logs/d/c.txt\n/mydir\n/mydir/home.sh\n"
    );
    // what is excluded is not part of the step's cache key
    std::fs::write(ctx.path().join("app/README.md"), "changed doc\n").unwrap();
    let r = d.berth(&["build", "-t", "excl2", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("Using cache").count(), 3, "{r:?}");
    // a bad pattern names the flag and the line
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb\nCOPY --exclude=[ app /x/\n").unwrap();
    let r = docker_build(&d, ctx.path(), &[]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("COPY --exclude (line 2)"), "{r:?}");
    assert_eq!(ok(&d, &["ps", "-aq"]), "");
}

/// `COPY --parents`: the sources' directories relative to the context are kept under the
/// destination (with their own modes), a `/./` pivot keeps only what is after it, `**` matches
/// any depth; from a stage too.
#[test]
fn copy_parents() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        ("a/b/f.txt", "f\n"),
        ("a/b/g.md", "g\n"),
        ("x/one.txt", "1\n"),
        ("x/two.txt", "2\n"),
        ("x/other.md", "o\n"),
        ("src/a.txt", "a\n"),
        ("src/x/y/c.txt", "c\n"),
        ("src/x/y/d.md", "d\n"),
        (
            "Dockerfile",
            "FROM bb AS stage\nRUN mkdir -p /out/lib/deep && echo s > /out/lib/deep/s.so\nFROM bb\nCOPY --parents a/b/f.txt x/*.txt /dst/\nCOPY --parents ./a/./b/f.txt /piv/\nCOPY --parents ./src/**/*.txt /deep/\nCOPY --parents --exclude=*.md ./x/./ /whole/\nCOPY --parents --from=stage /out/./lib/deep/s.so /st/\n",
        ),
    ]);
    std::fs::set_permissions(
        ctx.path().join("a/b"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    let r = d.berth(&["build", "-t", "par", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let files = ok(
        &d,
        &[
            "run",
            "--rm",
            "par",
            "sh",
            "-c",
            "find /dst /piv /deep /whole /st -type f | sort",
        ],
    );
    assert_eq!(
        files,
        "/deep/src/a.txt\n/deep/src/x/y/c.txt\n/dst/a/b/f.txt\n/dst/x/one.txt\n/dst/x/two.txt\n/piv/b/f.txt\n/st/lib/deep/s.so\n/whole/one.txt\n/whole/two.txt\n"
    );
    // the parent directories come with their own mode
    assert_eq!(
        ok(&d, &["run", "--rm", "par", "stat", "-c", "%a", "/dst/a/b", "/piv/b"]),
        "750\n750\n"
    );
    // several sources still need a directory destination; a missing one is named
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nCOPY --parents a/b/f.txt x/one.txt /dst\n",
    )
    .unwrap();
    let r = docker_build(&d, ctx.path(), &[]);
    assert!(r.stderr.contains("the destination must be a directory"), "{r:?}");
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb\nCOPY --parents a/nope /dst/\n").unwrap();
    let r = docker_build(&d, ctx.path(), &[]);
    assert!(r.stderr.contains("file not found in build context"), "{r:?}");
    assert!(r.stderr.contains("a/nope") && r.stderr.contains("line 2"), "{r:?}");
}

/// A tiny HTTP server for ADD, listening on loopback inside the daemon's network namespace:
/// answers `/files/hello.txt` with the current content (and a Last-Modified), `/arch.tar` with a
/// tar, anything else with 404. Each request's path is counted.
struct Web {
    base: String,
    hello: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

fn web(d: &Daemon, archive: Vec<u8>) -> Web {
    use std::io::{Read, Write};
    let listener = d.in_netns(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hello = std::sync::Arc::new(std::sync::Mutex::new(b"hello over http\n".to_vec()));
    let content = hello.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).into_owned();
            let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, extra, body) = match path.as_str() {
                "/files/hello.txt" => (
                    "200 OK",
                    "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n",
                    content.lock().unwrap().clone(),
                ),
                "/arch.tar" => ("200 OK", "", archive.clone()),
                "/moved" => ("302 Found", "Location: /files/hello.txt\r\n", Vec::new()),
                _ => ("404 Not Found", "", Vec::new()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    Web { base, hello }
}

/// `ADD <URL>`: saved under the URL's file name (or as the destination file), mode 0600, mtime
/// from Last-Modified, redirects followed, a tar kept as it is unless `--unpack=true`;
/// `--checksum` verifies it; a changed remote file rebuilds the step; a failing fetch names the URL
/// and the status. `ADD --unpack=false` copies a local tar as a file.
#[test]
fn add_urls_checksums_and_unpack() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    b.append_data(&mut h, "inside/x.txt", &b"in tar"[..]).unwrap();
    let archive = b.into_inner().unwrap();
    let w = web(&d, archive.clone());
    let hello_sum = common::sha256_hex(b"hello over http\n");
    let base = &w.base;
    let df = format!(
        "FROM bb\nADD {base}/files/hello.txt /dl/\nADD --checksum=sha256:{hello_sum} {base}/moved /named.txt\nADD {base}/arch.tar /tars/\nADD --unpack=true {base}/arch.tar /unpacked\nADD --unpack=false local.tar /kept/\nADD --chmod=644 {base}/files/hello.txt /dl/open.txt\n"
    );
    let ctx = context(&[("Dockerfile", &df)]);
    std::fs::write(ctx.path().join("local.tar"), &archive).unwrap();
    let r = d.berth(&["build", "-t", "urls", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(&d, &["run", "--rm", "urls", "cat", "/dl/hello.txt", "/named.txt"]),
        "hello over http\nhello over http\n"
    );
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "urls",
                "stat",
                "-c",
                "%a %Y %u:%g %n",
                "/dl/hello.txt",
                "/named.txt",
                "/dl/open.txt"
            ]
        ),
        "600 1700000000 0:0 /dl/hello.txt\n600 1700000000 0:0 /named.txt\n644 1700000000 0:0 /dl/open.txt\n"
    );
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "urls",
                "sh",
                "-c",
                "find /tars /unpacked /kept -type f | sort"
            ]
        ),
        "/kept/local.tar\n/tars/arch.tar\n/unpacked/inside/x.txt\n"
    );
    // the same remote content keeps the cache; a changed one rebuilds from that step on
    let r = d.berth(&["build", "-t", "urls", ctx.path().to_str().unwrap()]);
    assert_eq!(r.stdout.matches("Using cache").count(), 6, "{r:?}");
    *w.hello.lock().unwrap() = b"hello again\n".to_vec();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM bb\nADD {base}/files/hello.txt /dl/\n"),
    )
    .unwrap();
    let r = d.berth(&["build", "-t", "urls2", ctx.path().to_str().unwrap()]);
    assert_eq!(r.stdout.matches("Using cache").count(), 0, "{r:?}");
    assert_eq!(
        ok(&d, &["run", "--rm", "urls2", "cat", "/dl/hello.txt"]),
        "hello again\n"
    );
    // a wrong checksum names both digests, the flag and the line; nothing is tagged
    let wrong = "0".repeat(64);
    let again_sum = common::sha256_hex(b"hello again\n");
    for (df, wants) in [
        (
            format!("FROM bb\nADD --checksum=sha256:{wrong} {base}/files/hello.txt /x\n"),
            vec![
                "ADD --checksum (line 2)".to_string(),
                format!("expected sha256:{wrong}"),
                format!("got sha256:{again_sum}"),
            ],
        ),
        (
            format!("FROM bb\nRUN true\nADD {base}/gone.bin /x\n"),
            vec![
                "ADD (line 3)".to_string(),
                format!("{base}/gone.bin"),
                "404 Not Found".to_string(),
            ],
        ),
        (
            "FROM bb\nADD --checksum=sha256:abc local.tar /x\n".to_string(),
            vec!["ADD --checksum (line 2)".to_string()],
        ),
    ] {
        std::fs::write(ctx.path().join("Dockerfile"), &df).unwrap();
        let r = docker_build(&d, ctx.path(), &["-t", "bad-url"]);
        assert_ne!(r.code, 0, "{df}: {r:?}");
        for want in wants {
            assert!(r.stderr.contains(&want), "{df}: {want}: {r:?}");
        }
    }
    assert!(d.berth(&["image", "inspect", "bad-url"]).code != 0);
    assert_eq!(ok(&d, &["ps", "-aq"]), "");
}

/// ADD of a git repository, and `--keep-git-dir`, are refused with a message that says so,
/// naming the line; no image is tagged and no container is left.
#[test]
fn add_git_sources_are_refused() {
    let d = Daemon::start();
    d.load_busybox("bb");
    for (df, want) in [
        ("FROM bb\nADD https://github.com/moby/buildkit.git /b\n", "ADD (line 2)"),
        (
            "FROM bb\nADD git@github.com:moby/buildkit.git#v0.10.1 /b\n",
            "ADD (line 2)",
        ),
        (
            "FROM bb\nENV A=1\nADD https://example.com/repo#main /b\n",
            "ADD (line 3)",
        ),
        (
            "FROM bb\nADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /b\n",
            "ADD --keep-git-dir (line 2)",
        ),
    ] {
        let ctx = context(&[("Dockerfile", df)]);
        let r = docker_build(&d, ctx.path(), &["-t", "gitty"]);
        assert_ne!(r.code, 0, "{df}: {r:?}");
        assert!(r.stderr.contains(want), "{df}: {r:?}");
        assert!(
            r.stderr.contains("git sources are not supported by berth's builder"),
            "{df}: {r:?}"
        );
    }
    assert!(d.berth(&["image", "inspect", "gitty"]).code != 0);
    assert_eq!(ok(&d, &["ps", "-aq"]), "");
}

/// `--link`: the same files, owners and modes as a plain COPY; the destination's parents are made
/// fresh (0755, the `--chown` owner) so a symlink there is replaced, not followed, and the
/// destination is not looked at.
#[test]
fn copy_link() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        ("f", "linked\n"),
        ("dir/g", "g\n"),
        (
            "Dockerfile",
            "FROM bb\nRUN mkdir -p /real /tmpish && echo old > /real/old && ln -s /real /app && chmod 1777 /tmpish\nCOPY --link f /app/f\nCOPY --link --chown=1:2 --chmod=640 f /deep/er/f\nCOPY --link dir /tmpish/sub/\nCOPY dir /plain/\n",
        ),
    ]);
    let r = d.berth(&["build", "-t", "linked", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "linked",
                "sh",
                "-c",
                "test -d /app && ! test -L /app && ls /app /real && cat /app/f"
            ]
        ),
        "/app:\nf\n\n/real:\nold\nlinked\n"
    );
    assert_eq!(
        listing(&d, "linked", "/deep /tmpish /plain"),
        "/deep directory 755 1:2\n/deep/er directory 755 1:2\n/deep/er/f regular file 640 1:2\n/plain directory 755 0:0\n/plain/g regular file 644 0:0\n/tmpish directory 755 0:0\n/tmpish/sub directory 755 0:0\n/tmpish/sub/g regular file 644 0:0\n"
    );
}

/// A symlink in the context on the way to a source (`hostetc -> /etc`, then `COPY hostetc/passwd`)
/// resolves inside the context, never to the daemon host's files.
#[test]
fn copy_through_a_symlink_stays_in_the_context() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nCOPY hostetc/passwd /leak\n")]);
    std::os::unix::fs::symlink("/etc", ctx.path().join("hostetc")).unwrap();
    let r = docker_build(&d, ctx.path(), &["-t", "leaky"]);
    assert_ne!(r.code, 0, "the host's /etc/passwd was copied: {r:?}");
    assert!(r.stderr.contains("file not found in build context"), "{r:?}");
    // with the target inside the context it is that file
    std::fs::create_dir(ctx.path().join("etc")).unwrap();
    std::fs::write(ctx.path().join("etc/passwd"), "the context's\n").unwrap();
    let r = docker_build(&d, ctx.path(), &["-t", "leaky"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "leaky", "cat", "/leak"]), "the context's\n");
}

/// `--cache-from`: a machine without the build's cache (here: the cache pruned, the image removed)
/// takes the steps from an image a registry has, as long as they are the same steps on the same
/// files and build args; from the first that differs on, the steps run again.
#[test]
fn cache_from_an_image_of_a_registry() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let _registry = common::Registry::start(&d, 5004);
    let dockerfile = "FROM bb\nARG V=1\nENV A=one\nWORKDIR /app\nCOPY f.txt .\n\
                      RUN cat /proc/sys/kernel/random/uuid > id && echo $V-$A > v\nCMD [\"cat\", \"/app/id\"]\n";
    let ctx = context(&[("Dockerfile", dockerfile), ("f.txt", "first\n")]);
    let dir = ctx.path().to_str().unwrap();
    let cached = "127.0.0.1:5004/cache/app:1";
    ok(&d, &["build", "-q", "-t", cached, dir]);
    let made = ok(&d, &["run", "--rm", cached]);
    let history = |image: &str| ok(&d, &["history", "--no-trunc", "--format", "{{.CreatedBy}}", image]);
    let before = history(cached);
    // The history names what each step depends on: the RUN's build args, the COPY's content.
    assert!(
        before.contains("|1 V=1 /bin/sh -c cat /proc/sys/kernel/random/uuid"),
        "{before}"
    );
    assert!(before.contains("/bin/sh -c #(nop) COPY file:"), "{before}");
    assert!(before.contains("/bin/sh -c #(nop)  ENV A=one"), "{before}");
    ok(&d, &["push", "-q", cached]);
    ok(&d, &["rmi", cached]);
    ok(&d, &["builder", "prune", "-f"]);

    // The docker CLI's classic builder: the cache image is pulled, every step comes from it.
    let r = docker_build(&d, ctx.path(), &["-t", "again:1", "--cache-from", cached]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("Using cache").count(), 6, "{r:?}");
    assert!(!r.stdout.contains("Running in"), "{r:?}");
    assert_eq!(
        ok(&d, &["run", "--rm", "again:1"]),
        made,
        "the RUN's layer is the cache image's"
    );
    assert_eq!(history("again:1"), before);
    assert_eq!(
        inspect(&d, "again:1")["RootFS"]["Layers"],
        inspect(&d, cached)["RootFS"]["Layers"]
    );

    // Another file: the steps before the COPY from the cache, the COPY and the RUN again.
    std::fs::write(ctx.path().join("f.txt"), "second\n").unwrap();
    let r = d.berth(&["build", "-t", "changed:1", "--cache-from", cached, dir]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("Using cache").count(), 3, "{r:?}");
    assert!(r.stdout.contains("Running in"), "{r:?}");
    assert_ne!(ok(&d, &["run", "--rm", "changed:1"]), made);

    // Another build arg: the RUN that sees it runs again.
    std::fs::write(ctx.path().join("f.txt"), "first\n").unwrap();
    ok(&d, &["builder", "prune", "-f"]);
    let r = d.berth(&[
        "build",
        "-t",
        "arg:1",
        "--build-arg",
        "V=2",
        "--cache-from",
        cached,
        dir,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("Using cache").count(), 4, "{r:?}");
    assert_eq!(ok(&d, &["run", "--rm", "arg:1", "cat", "/app/v"]), "2-one\n");

    // A cache image that cannot be had is said, and the build goes on without it.
    let r = d.berth(&[
        "build",
        "--no-cache",
        "--cache-from",
        "127.0.0.1:5004/cache/none:1",
        "--cache-from",
        "type=local,src=/tmp",
        dir,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("WARNING: cache image 127.0.0.1:5004/cache/none:1 cannot be used"),
        "{r:?}"
    );
    assert!(r.stdout.contains("type=local is a BuildKit cache store"), "{r:?}");
}

/// A daemon killed in the middle of a RUN leaves the step's container; the next daemon removes it
/// (and what ran in it), and builds go on.
#[test]
fn a_crash_mid_build_leaves_no_build_container() {
    let mut d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN echo started && sleep 300\n")]);
    let mut build = d
        .berth_cmd(&["build", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = common::eventually(std::time::Duration::from_secs(30), || {
        ok(&d, &["ps", "-q"]).lines().count() == 1
    });
    assert!(running, "the RUN's container did not start");
    d.kill9();
    let _ = build.wait();
    d.restart();
    let gone = common::eventually(std::time::Duration::from_secs(30), || ok(&d, &["ps", "-aq"]).is_empty());
    assert!(gone, "{}", ok(&d, &["ps", "-a"]));
    // No shim left (the RUN's process went with its container).
    let daemon = d.pid().map(|p| p as i32);
    let shims = || -> Vec<i32> { d.own_processes().into_iter().filter(|p| Some(*p) != daemon).collect() };
    let no_shims = common::eventually(std::time::Duration::from_secs(10), || shims().is_empty());
    assert!(no_shims, "{:?}", shims());
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN echo again\n")]);
    assert_eq!(d.berth(&["build", "-q", ctx.path().to_str().unwrap()]).code, 0);
}

/// `--chmod` in chmod's symbolic form: `u=rwX,go=rX` gives directories and executables 755 and
/// other files 644; `+x` adds to each file's own mode; a malformed mode names the flag and line.
#[test]
fn copy_chmod_symbolic() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM bb\nCOPY --chmod=u=rwX,go=rX tree /t/\nCOPY --chmod=+x tree/plain /x\nCOPY --chmod=g=u tree/plain /g\n",
        ),
        ("tree/plain", "data\n"),
        ("tree/tool", "#!/bin/sh\n"),
        ("tree/sub/inner", "in\n"),
    ]);
    let set = |p: &str, m: u32| {
        std::fs::set_permissions(ctx.path().join(p), std::fs::Permissions::from_mode(m)).unwrap();
    };
    set("tree/plain", 0o600);
    set("tree/tool", 0o700);
    set("tree/sub", 0o700);
    set("tree/sub/inner", 0o640);
    let r = d.berth(&["build", "-q", "-t", "modes:1", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        listing(&d, "modes:1", "/t /x /g"),
        "/g regular file 660 0:0\n/t directory 755 0:0\n/t/plain regular file 644 0:0\n\
         /t/sub directory 755 0:0\n/t/sub/inner regular file 644 0:0\n/t/tool regular file 755 0:0\n\
         /x regular file 711 0:0\n"
    );
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb\nCOPY --chmod=u+q tree /t/\n").unwrap();
    let r = d.berth(&["build", ctx.path().to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("COPY --chmod (line 2): invalid mode \"u+q\""),
        "{r:?}"
    );
}

/// A COPY (without --link) into a directory the image reaches through a symlink writes through
/// it, resolved inside the image: `/app -> /real` gets `/real/f`; an absolute link pointing
/// out of the root stays inside it.
#[test]
fn copy_through_a_symlinked_destination_in_the_image() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM bb\nRUN mkdir /real && ln -s /real /app && ln -s ../../../../real /up\nCOPY f /app/f\nCOPY f /app/sub/g\nCOPY f /up/h\nCOPY f2 /app\n",
        ),
        ("f", "data\n"),
        ("f2", "more\n"),
    ]);
    let r = d.berth(&["build", "-q", "-t", "through:1", ctx.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "through:1",
            "sh",
            "-c",
            "ls -l / | grep -c ' app -> /real'; find /real | sort",
        ],
    );
    assert_eq!(out, "1\n/real\n/real/f\n/real/f2\n/real/h\n/real/sub\n/real/sub/g\n");
}

/// `RUN --mount=type=secret` and `--mount=type=ssh`: the step sees the secret (as a file with its
/// mode and owner, or as a variable) and the agent socket; neither is in the image, its history or
/// its config; a required secret that was not given fails the build and names it.
#[test]
fn secrets_and_ssh_reach_run_and_stay_out_of_the_image() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let df = "FROM bb\n\
              RUN --mount=type=secret,id=token cat /run/secrets/token > /seen-file\n\
              RUN --mount=type=secret,id=token,target=/etc/tok,mode=0440,uid=1000 stat -c '%a %u' /etc/tok > /stat\n\
              RUN --mount=type=secret,id=api,env=API_KEY echo \"$API_KEY\" > /seen-env\n\
              RUN --mount=type=secret,id=missing echo optional > /optional\n\
              RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo agent > /ssh\n";
    let ctx = context(&[("Dockerfile", df)]);
    let dir = ctx.path().to_str().unwrap();
    let private = tempfile::tempdir().unwrap();
    let token = private.path().join("token");
    std::fs::write(&token, "file-s3cret-7f3a").unwrap();
    let agent = private.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&agent).unwrap();
    let r: common::Run = d
        .berth_cmd(&[
            "build",
            "-t",
            "sec:1",
            "--secret",
            &format!("id=token,src={}", token.display()),
            "--secret",
            "id=api,env=API_VALUE",
            "--ssh",
            "default",
            dir,
        ])
        .env("API_VALUE", "env-s3cret-9c1d")
        .env("SSH_AUTH_SOCK", &agent)
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "sec:1",
                "cat",
                "/seen-file",
                "/stat",
                "/seen-env",
                "/optional",
                "/ssh"
            ]
        ),
        "file-s3cret-7f3a440 1000\nenv-s3cret-9c1d\noptional\nagent\n"
    );
    // Nowhere in the image (its layers, config and history) but where the steps wrote them.
    let saved = private.path().join("sec.tar");
    ok(&d, &["save", "-o", saved.to_str().unwrap(), "sec:1"]);
    let mut all = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&saved).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        // The JSON documents: configs (with their history) and manifests.
        if data.starts_with(b"{") || data.starts_with(b"[") {
            all.extend(data);
        }
    }
    let text = String::from_utf8_lossy(&all);
    assert!(
        !text.contains("env-s3cret-9c1d"),
        "the variable's secret is in the image's metadata"
    );
    let history = ok(&d, &["history", "--no-trunc", "sec:1"]);
    assert!(!history.contains("s3cret"), "{history}");
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "sec:1",
                "sh",
                "-c",
                "cat /run/secrets/token /etc/tok 2>/dev/null | wc -c"
            ]
        ),
        "0\n"
    );
    // Required and missing.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n",
    )
    .unwrap();
    let r = d.berth(&["build", dir]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("secret nope not found"), "{r:?}");
    // An unreadable secret file is the CLI's error, before anything is sent.
    let r = d.berth(&["build", "--secret", "id=x,src=/nonexistent/secret", dir]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("secret x: reading /nonexistent/secret"), "{r:?}");
}

/// Stages that do not use each other build at the same time; the output still tells them one
/// after the other, in Dockerfile order; a failing stage fails the build with its error.
#[test]
fn independent_stages_build_at_the_same_time() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let stage = |name: &str| {
        format!("FROM bb AS {name}\nRUN cut -d' ' -f1 /proc/uptime > /start && sleep 3 && cut -d' ' -f1 /proc/uptime > /end && echo {name}-done\n")
    };
    let df = format!(
        "{}{}FROM bb\nCOPY --from=a /start /end /a/\nCOPY --from=b /start /end /b/\n",
        stage("a"),
        stage("b")
    );
    let ctx = context(&[("Dockerfile", &df)]);
    let dir = ctx.path().to_str().unwrap();
    let r = d.berth(&["build", "-t", "par:1", dir]);
    assert_eq!(r.code, 0, "{r:?}");
    let times = ok(
        &d,
        &[
            "run", "--rm", "par:1", "cat", "/a/start", "/a/end", "/b/start", "/b/end",
        ],
    );
    let t: Vec<f64> = times.lines().map(|l| l.parse().unwrap()).collect();
    assert!(t[0] < t[3] && t[2] < t[1], "the stages' RUNs did not overlap: {t:?}");
    // The output is in order: steps 1..7, each stage's lines together.
    let steps: Vec<usize> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Step ")?.split('/').next()?.parse().ok())
        .collect();
    assert_eq!(steps, (1..=7).collect::<Vec<_>>(), "{r:?}");
    let a_done = r.stdout.find("a-done").unwrap();
    let b_step = r.stdout.find("Step 3/7").unwrap();
    assert!(a_done < b_step, "stage b's output came before stage a's end: {r:?}");
    // A failing stage: its error, whatever the other does.
    let df = "FROM bb AS a\nRUN exit 3\nFROM bb AS b\nRUN echo fine\nFROM bb\nCOPY --from=a / /a\nCOPY --from=b / /b\n";
    std::fs::write(ctx.path().join("Dockerfile"), df).unwrap();
    let r = d.berth(&["build", dir]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("returned a non-zero code: 3"), "{r:?}");
    assert!(r.stdout.contains("fine"), "{r:?}");
    assert_eq!(ok(&d, &["ps", "-aq"]), "", "no build container left");
}
