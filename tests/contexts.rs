//! Docker contexts and client config keys, end to end: a context made by `berth context create`
//! is the docker CLI's (listed and used by `docker --context`), one made by `docker context create`
//! is used by `berth --context`, `DOCKER_CONTEXT` and `berth context use`; `-H` with `--context`
//! is refused as docker refuses it; config.json's `psFormat` and `proxies` are honoured.
//!
//! Each test has its own daemon and its own client config directory (`DOCKER_CONFIG`), and runs
//! both CLIs without `DOCKER_HOST`/`BERTH_HOST` (which would override every context) and without
//! autostart (a context that fails to resolve must never start a daemon on the default socket).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{bin, Daemon, Run};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The two CLIs on a private client config directory, with no daemon named by the environment.
struct Clients<'a> {
    d: &'a Daemon,
    config: PathBuf,
}

impl<'a> Clients<'a> {
    fn new(d: &'a Daemon) -> Clients<'a> {
        let config = d.root.join("client-config");
        std::fs::create_dir_all(&config).unwrap();
        Clients { d, config }
    }

    fn prepare(&self, mut c: Command, env: &[(&str, &str)]) -> Command {
        c.env("DOCKER_CONFIG", &self.config)
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("BUILDKIT_PROGRESS")
            .env("BERTH_NO_AUTOSTART", "1")
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn berth_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.prepare(Command::new(bin("berth")), env);
        c.args(args).output().expect("running berth").into()
    }

    fn berth(&self, args: &[&str]) -> Run {
        self.berth_env(args, &[])
    }

    fn docker(&self, args: &[&str]) -> Run {
        let mut c = self.prepare(Command::new("docker"), &[]);
        c.args(args)
            .output()
            .expect("running docker (the docker CLI must be installed)")
            .into()
    }

    fn config_json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.config.join("config.json")).unwrap_or_else(|_| "{}".into());
        serde_json::from_str(&text).unwrap()
    }

    fn write_config(&self, v: &serde_json::Value) {
        std::fs::write(self.config.join("config.json"), v.to_string()).unwrap();
    }

    /// The daemon's address, as a context's `host=`.
    fn host(&self) -> String {
        self.d.host()
    }
}

#[track_caller]
fn ok(r: Run) -> String {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect()
}

/// A container for `ps` to find, made through the daemon's socket directly.
fn probe(d: &Daemon, name: &str) {
    let r = d.berth(&["create", "--name", name, "bb", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_context_berth_creates_is_listed_and_used_by_docker() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    probe(&d, "ctx-probe-b");
    let c = Clients::new(&d);
    let name = format!("berth-made-{}", std::process::id());

    let r = c.berth(&[
        "context",
        "create",
        &name,
        "--description",
        "made by berth",
        "--docker",
        &format!("host={}", c.host()),
    ]);
    assert_eq!(r.stdout, format!("{name}\n"), "{r:?}");
    assert_eq!(r.stderr, format!("Successfully created context \"{name}\"\n"), "{r:?}");
    // Docker's layout: meta.json under the hex SHA-256 of the name.
    let meta_path = c
        .config
        .join("contexts/meta")
        .join(common::sha256_hex(name.as_bytes()))
        .join("meta.json");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    assert_eq!(meta["Endpoints"]["docker"]["Host"], c.host());

    // The docker CLI lists it, and reaches this test's daemon through it.
    let ls = ok(c.docker(&[
        "context",
        "ls",
        "--format",
        "{{.Name}}|{{.Description}}|{{.DockerEndpoint}}|{{.Current}}",
    ]));
    assert!(
        ls.lines()
            .any(|l| l == format!("{name}|made by berth|{}|false", c.host())),
        "{ls}"
    );
    let ps = ok(c.docker(&["--context", &name, "ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(lines(&ps), ["ctx-probe-b"]);
    let v = ok(c.docker(&["--context", &name, "version", "--format", "{{.Server.Version}}"]));
    assert!(!v.trim().is_empty());
    let inspected: serde_json::Value = serde_json::from_str(&ok(c.docker(&["context", "inspect", &name]))).unwrap();
    assert_eq!(
        inspected[0]["Storage"]["MetadataPath"],
        meta_path.parent().unwrap().display().to_string()
    );

    // Both CLIs print the same `context ls` and `context inspect`.
    assert_eq!(
        ok(c.berth(&["context", "ls", "--format", "json"]))
            .lines()
            .find(|l| l.contains(&name)),
        ok(c.docker(&["context", "ls", "--format", "json"]))
            .lines()
            .find(|l| l.contains(&name))
    );
    assert_eq!(
        ok(c.berth(&["context", "inspect", &name])),
        ok(c.docker(&["context", "inspect", &name]))
    );

    // `docker context rm` removes what berth made; berth no longer finds it.
    assert_eq!(ok(c.docker(&["context", "rm", &name])), format!("{name}\n"));
    let r = c.berth(&["--context", &name, "ps"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("context \"{name}\": context not found")),
        "{r:?}"
    );
}

#[test]
fn a_context_docker_creates_is_used_by_berth() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    probe(&d, "ctx-probe-d");
    let c = Clients::new(&d);
    let name = format!("docker-made-{}", std::process::id());
    ok(c.docker(&["context", "create", &name, "--docker", &format!("host={}", c.host())]));
    let names = |r: Run| lines(&ok(r)).iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // --context, and DOCKER_CONTEXT.
    assert_eq!(
        names(c.berth(&["--context", &name, "ps", "-a", "--format", "{{.Names}}"])),
        ["ctx-probe-d"]
    );
    assert_eq!(
        names(c.berth_env(&["ps", "-a", "--format", "{{.Names}}"], &[("DOCKER_CONTEXT", &name)])),
        ["ctx-probe-d"]
    );
    // DOCKER_HOST beats DOCKER_CONTEXT (and says nothing about it), as with docker.
    let r = c.berth_env(
        &["ps"],
        &[
            ("DOCKER_CONTEXT", &name),
            ("DOCKER_HOST", "unix:///nonexistent/berth.sock"),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("/nonexistent/berth.sock"), "{r:?}");

    // `context use`: docker's output, config.json's currentContext, seen by both CLIs.
    let r = c.berth(&["context", "use", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, format!("{name}\n"));
    assert_eq!(r.stderr, format!("Current context is now \"{name}\"\n"));
    assert_eq!(c.config_json()["currentContext"], name.as_str());
    assert_eq!(ok(c.docker(&["context", "show"])).trim(), name);
    assert_eq!(names(c.berth(&["ps", "-a", "--format", "{{.Names}}"])), ["ctx-probe-d"]);
    assert_eq!(
        ok(c.berth(&["version", "--format", "{{.Client.Context}}"])).trim(),
        name
    );
    let ls = ok(c.berth(&["context", "ls"]));
    assert!(ls.lines().any(|l| l.starts_with(&format!("{name} *"))), "{ls}");

    // The context in use is only removed with -f; `use default` clears currentContext.
    let r = c.berth(&["context", "rm", &name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        format!("context \"{name}\" is in use, set -f flag to force remove\n")
    );
    let r = c.berth(&["context", "use", "default"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(c.config_json().get("currentContext").is_none());
    assert_eq!(ok(c.berth(&["context", "rm", &name])), format!("{name}\n"));
    assert_eq!(lines(&ok(c.docker(&["context", "ls", "-q"]))), ["default"]);
}

#[test]
fn host_with_context_is_refused_and_unknown_contexts_fail() {
    let d = Daemon::start();
    let c = Clients::new(&d);
    let name = format!("either-{}", std::process::id());
    ok(c.berth(&["context", "create", &name, "--docker", &format!("host={}", c.host())]));
    let host = c.host();
    let args = ["-H", host.as_str(), "--context", name.as_str(), "ps"];
    let b = c.berth(&args);
    let k = c.docker(&args);
    assert_eq!(b.code, 1, "{b:?}");
    assert_eq!(
        b.stderr,
        "conflicting options: cannot specify both --host and --context\n"
    );
    // Word for word what the docker CLI says.
    assert_eq!((b.code, b.stderr.as_str()), (k.code, k.stderr.as_str()), "{k:?}");

    // An unknown context, named by the flag or by currentContext: docker's error.
    let r = c.berth(&["--context", "nope", "ps"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with(
            "Failed to initialize: unable to resolve docker endpoint: context \"nope\": context not found: open "
        ),
        "{r:?}"
    );
    let r = c.berth(&["context", "use", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr, c.docker(&["context", "use", "nope"]).stderr);
    c.write_config(&serde_json::json!({"currentContext": "gone", "psFormat": "{{.ID}}"}));
    let r = c.berth(&["ps"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("context \"gone\": context not found"), "{r:?}");
    // -H still works whatever config.json says.
    ok(c.berth(&["-H", &host, "ps"]));
}

#[test]
fn ps_format_and_proxies_from_config_json() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let c = Clients::new(&d);
    let host = c.host();
    c.write_config(&serde_json::json!({
        "psFormat": "table {{.Names}}\\t{{.Image}}",
        "proxies": {
            "default": {"httpProxy": "http://default-proxy:3128", "noProxy": "*.default"},
            host.clone(): {"httpProxy": "http://host-proxy:3128", "ftpProxy": "ftp://ftp-proxy:21"}
        },
        "someOtherKey": {"kept": true}
    }));
    let berth = |args: &[&str]| ok(c.berth_env(args, &[("BERTH_HOST", &host)]));
    berth(&["create", "--name", "pf", "bb", "true"]);

    // psFormat: both CLIs print the same table; --format still wins.
    let mine = berth(&["ps", "-a"]);
    assert_eq!(lines(&mine), ["NAMES     IMAGE", "pf        bb"]);
    let theirs = c
        .prepare(Command::new("docker"), &[("DOCKER_HOST", &host)])
        .args(["ps", "-a"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&theirs.stdout), mine);
    assert_eq!(lines(&berth(&["ps", "-a", "--format", "{{.Image}}"])), ["bb"]);
    assert_eq!(lines(&berth(&["ps", "-aq"])).len(), 1);

    // proxies: this daemon's entry (not `default`), both cases, unless the user set the variable.
    let proxy_lines = |out: &str| {
        let mut v: Vec<String> = out
            .lines()
            .filter(|l| l.to_lowercase().contains("_proxy="))
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    let env = berth(&["run", "--rm", "bb", "env"]);
    assert_eq!(
        proxy_lines(&env),
        [
            "FTP_PROXY=ftp://ftp-proxy:21",
            "HTTP_PROXY=http://host-proxy:3128",
            "ftp_proxy=ftp://ftp-proxy:21",
            "http_proxy=http://host-proxy:3128",
        ]
    );
    let theirs = c
        .prepare(Command::new("docker"), &[("DOCKER_HOST", &host)])
        .args(["run", "--rm", "bb", "env"])
        .output()
        .unwrap();
    assert_eq!(proxy_lines(&String::from_utf8_lossy(&theirs.stdout)), proxy_lines(&env));
    let env = berth(&["run", "--rm", "-e", "HTTP_PROXY=mine", "bb", "env"]);
    assert!(env.lines().any(|l| l == "HTTP_PROXY=mine"), "{env}");
    assert!(!env.lines().any(|l| l == "HTTP_PROXY=http://host-proxy:3128"), "{env}");
    assert!(env.lines().any(|l| l == "http_proxy=http://host-proxy:3128"), "{env}");

    // As build args: RUN sees them (they are predefined ARGs); --build-arg wins.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nRUN echo \"p=$HTTP_PROXY f=$ftp_proxy\" > /p\nCMD [\"cat\", \"/p\"]\n",
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    berth(&["build", "-q", "-t", "px:1", dir]);
    assert_eq!(
        berth(&["run", "--rm", "px:1"]),
        "p=http://host-proxy:3128 f=ftp://ftp-proxy:21\n"
    );
    // (Proxies are not part of a step's cache key, in Docker as here: hence --no-cache.)
    berth(&[
        "build",
        "-q",
        "--no-cache",
        "--build-arg",
        "HTTP_PROXY=given",
        "-t",
        "px:2",
        dir,
    ]);
    assert_eq!(berth(&["run", "--rm", "px:2"]), "p=given f=ftp://ftp-proxy:21\n");

    // A context switch keeps the file's other keys (docker and berth share it).
    let name = format!("keep-{}", std::process::id());
    ok(c.berth(&["context", "create", &name, "--docker", &format!("host={host}")]));
    ok(c.berth(&["context", "use", &name]));
    let cfg = c.config_json();
    assert_eq!(cfg["someOtherKey"]["kept"], true);
    assert_eq!(cfg["psFormat"], "table {{.Names}}\\t{{.Image}}");
    // Through the context (no BERTH_HOST), the same proxies apply: the host is the same.
    let env = ok(c.berth(&["run", "--rm", "bb", "env"]));
    assert!(env.lines().any(|l| l == "HTTP_PROXY=http://host-proxy:3128"), "{env}");
}

/// `context export` and `context import` between the two CLIs, with TLS material: an archive made
/// by either imports into the other with the same endpoint and files; an existing name and a
/// broken archive are refused, and nothing is left of a refused import.
#[test]
fn contexts_move_between_the_clis_as_archives() {
    let d = Daemon::start();
    let c = Clients::new(&d);
    let pem = d.root.join("pem");
    std::fs::create_dir_all(&pem).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(pem.join("ca.pem"), ck.cert.pem()).unwrap();
    std::fs::write(pem.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(pem.join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    let p = |f: &str| pem.join(f).display().to_string();
    let endpoint = format!(
        "host=tcp://127.0.0.1:2376,ca={},cert={},key={}",
        p("ca.pem"),
        p("cert.pem"),
        p("key.pem")
    );
    let r = c.docker(&[
        "context",
        "create",
        "from-docker",
        "--description",
        "d1",
        "--docker",
        &endpoint,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let archive = d.root.join("from-docker.tar");
    let r = c.docker(&["context", "export", "from-docker", archive.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = c.berth(&["context", "import", "imported", archive.to_str().unwrap()]);
    assert_eq!((r.code, r.stdout.trim()), (0, "imported"), "{r:?}");
    assert!(r.stderr.contains("Successfully imported context \"imported\""), "{r:?}");
    let strip = |v: &str| {
        let mut v: serde_json::Value = serde_json::from_str(v).unwrap();
        let o = v[0].as_object_mut().unwrap();
        o.remove("Name");
        o.remove("Storage");
        v
    };
    let theirs = c.docker(&["context", "inspect", "from-docker"]);
    let ours = c.berth(&["context", "inspect", "imported"]);
    assert_eq!(strip(&theirs.stdout), strip(&ours.stdout), "{ours:?}");

    // berth's archive into docker, the default name in the working directory.
    let r = c.berth(&["context", "create", "from-berth", "--docker", &endpoint]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = c
        .prepare(Command::new(bin("berth")), &[])
        .current_dir(&d.root)
        .args(["context", "export", "from-berth"])
        .output()
        .unwrap();
    let r: Run = r.into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Written file \"from-berth.dockercontext\""), "{r:?}");
    let file = d.root.join("from-berth.dockercontext");
    let r = c.docker(&["context", "import", "in-docker", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = c.docker(&["context", "inspect", "in-docker", "--format", "{{json .TLSMaterial}}"]);
    assert_eq!(
        r.stdout.trim(),
        r#"{"docker":["ca.pem","cert.pem","key.pem"]}"#,
        "{r:?}"
    );
    // To standard output and back through standard input.
    let out = c
        .prepare(Command::new(bin("berth")), &[])
        .args(["context", "export", "from-berth", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut child = c
        .prepare(Command::new(bin("berth")), &[])
        .args(["context", "import", "piped", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &out.stdout).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        c.berth(&["context", "inspect", "piped", "--format", "{{.Name}}"])
            .stdout
            .trim(),
        "piped"
    );

    // Refused: an existing name, a file that is no context archive; nothing is left of either.
    let r = c.berth(&["context", "import", "imported", archive.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("context \"imported\" already exists"), "{r:?}");
    let junk = d.root.join("junk.tar");
    std::fs::write(&junk, b"this is not a tar").unwrap();
    let r = c.berth(&["context", "import", "junk", junk.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    let r = c.berth(&["context", "ls", "-q"]);
    assert!(!r.stdout.contains("junk"), "{r:?}");
}
