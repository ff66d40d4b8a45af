//! Compose end to end: `berth compose` brings realistic stacks up and down against berthd (names,
//! labels, DNS between services, health-check chains, recreation by config hash, scale, logs,
//! exec, run, bad input), and the real Docker Compose v2 and docker-compose 1.29 drive the same
//! stacks through berthd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{ok, Daemon, Run};
use std::path::Path;
use std::process::Command;

/// A project directory with the given files.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("compose-").tempdir().unwrap();
    for (name, body) in files {
        let p = t.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    t
}

/// `berth compose -p NAME ARGS` in `dir`.
fn compose(d: &Daemon, dir: &Path, name: &str, args: &[&str]) -> Run {
    let mut c = d.berth_cmd(&["compose", "-p", name]);
    c.args(args).current_dir(dir);
    c.output().unwrap().into()
}

fn compose_ok(d: &Daemon, dir: &Path, name: &str, args: &[&str]) -> Run {
    let r = compose(d, dir, name, args);
    assert_eq!(
        r.code,
        0,
        "berth compose {args:?}: {r:?}\n--- daemon log\n{}",
        tail(&d.log())
    );
    r
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(30).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Container names of a project, sorted.
fn names(d: &Daemon, project: &str) -> Vec<String> {
    let out = ok(
        d,
        &[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.Names}}",
        ],
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn ids(d: &Daemon, project: &str) -> Vec<String> {
    let out = ok(
        d,
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.Names}}={{.ID}}",
        ],
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Nothing of the project is left: no containers, networks or volumes with its label.
fn assert_gone(d: &Daemon, project: &str) {
    let label = format!("label=com.docker.compose.project={project}");
    assert_eq!(ok(d, &["ps", "-aq", "--filter", &label]), "");
    assert_eq!(ok(d, &["network", "ls", "-q", "--filter", &label]), "");
    assert_eq!(ok(d, &["volume", "ls", "-q", "--filter", &label]), "");
}

const SHOP: &str = r#"
name: ignored-by-p
x-common: &common
  image: bb
  restart: "no"
  stop_signal: SIGKILL
services:
  web:
    <<: *common
    command: ["sh", "-c", "echo web up; exec httpd -f -p 8080 -h /srv"]
    environment:
      DB_HOST: db
      GREETING: ${GREETING:-hello}
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
      migrate: {condition: service_completed_successfully}
    volumes: ["./site:/srv:ro", "uploads:/uploads"]
  db:
    <<: *common
    command: ["sh", "-c", "touch /tmp/ready; echo db up; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      start_interval: 100ms
      start_period: 5s
    volumes: ["dbdata:/var/lib/db"]
  cache:
    <<: *common
    command: ["sleep", "1000"]
  migrate:
    <<: *common
    command: ["sh", "-c", "echo migrated"]
volumes:
  dbdata: {}
  uploads: {}
"#;

#[test]
fn a_stack_comes_up_answers_and_goes_away() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let p = project(&[("compose.yaml", SHOP), ("site/index.html", "<h1>shop</h1>\n")]);
    let dir = p.path();
    let up = compose_ok(&d, dir, "shop", &["up", "-d"]);
    for line in [
        "Network shop_default  Created",
        "Volume shop_dbdata  Created",
        "Container shop-db-1  Healthy",
        "Container shop-migrate-1  Exited",
        "Container shop-web-1  Started",
    ] {
        assert!(up.stderr.contains(line), "{line}: {up:?}");
    }
    assert_eq!(
        names(&d, "shop"),
        ["shop-cache-1", "shop-db-1", "shop-migrate-1", "shop-web-1"]
    );

    // Compose's labels and names on what was made.
    let web = common::inspect(&d, "shop-web-1");
    let l = &web["Config"]["Labels"];
    assert_eq!(l["com.docker.compose.project"], "shop");
    assert_eq!(l["com.docker.compose.service"], "web");
    assert_eq!(l["com.docker.compose.container-number"], "1");
    assert_eq!(l["com.docker.compose.oneoff"], "False");
    assert_eq!(
        l["com.docker.compose.project.working_dir"],
        dir.canonicalize().unwrap().to_str().unwrap()
    );
    assert!(web["NetworkSettings"]["Networks"]["shop_default"].is_object(), "{web}");
    let vol = common::inspect(&d, "shop_dbdata");
    assert_eq!(vol["Labels"]["com.docker.compose.volume"], "dbdata");

    // ps as Compose prints it; the running services only.
    let ps = compose_ok(&d, dir, "shop", &["ps"]).stdout;
    let header = ps.lines().next().unwrap();
    for col in ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"] {
        assert!(header.contains(col), "{ps}");
    }
    assert!(ps.contains("shop-db-1") && ps.contains("(healthy)"), "{ps}");
    assert!(!ps.contains("shop-migrate-1"), "{ps}");
    assert!(compose_ok(&d, dir, "shop", &["ps", "-a"])
        .stdout
        .contains("shop-migrate-1"));
    assert_eq!(
        compose_ok(&d, dir, "shop", &["ps", "--services"]).stdout,
        "cache\ndb\nmigrate\nweb\n"
    );

    // Services find each other by name; the bind mount and the environment are there.
    let r = compose_ok(
        &d,
        dir,
        "shop",
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "ping -c1 -W2 db >/dev/null && echo $GREETING $DB_HOST",
        ],
    );
    assert_eq!(r.stdout, "hello db\n");
    let r = compose_ok(
        &d,
        dir,
        "shop",
        &["exec", "-T", "cache", "wget", "-qO-", "http://web:8080/"],
    );
    assert_eq!(r.stdout, "<h1>shop</h1>\n");

    // Logs, prefixed per container.
    let logs = compose_ok(&d, dir, "shop", &["logs", "--no-color"]).stdout;
    assert!(
        logs.lines().any(|l| l.starts_with("db-1 ") && l.ends_with("| db up")),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.starts_with("migrate-1 ") && l.ends_with("| migrated")),
        "{logs}"
    );
    let only = compose_ok(&d, dir, "shop", &["logs", "--no-log-prefix", "web"]).stdout;
    assert_eq!(only, "web up\n");

    // up again changes nothing; a changed service is the only one recreated.
    let before = ids(&d, "shop");
    let again = compose_ok(&d, dir, "shop", &["up", "-d"]);
    assert!(!again.stderr.contains("Created"), "{again:?}");
    assert_eq!(ids(&d, "shop"), before);
    let mut c = d.berth_cmd(&["compose", "-p", "shop", "up", "-d"]);
    let r: Run = c.current_dir(dir).env("GREETING", "bonjour").output().unwrap().into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Container shop-web-1  Recreate"), "{r:?}");
    let after = ids(&d, "shop");
    let changed: Vec<&String> = after.iter().filter(|i| !before.contains(i)).collect();
    assert_eq!(changed.len(), 1, "{before:?} {after:?}");
    assert!(changed[0].starts_with("shop-web-1="), "{changed:?}");

    // Scale up and back down.
    compose_ok(&d, dir, "shop", &["up", "-d", "--scale", "cache=3", "--no-recreate"]);
    assert!(names(&d, "shop").contains(&"shop-cache-3".to_string()));
    compose_ok(&d, dir, "shop", &["up", "-d", "--no-recreate"]);
    assert!(!names(&d, "shop").contains(&"shop-cache-2".to_string()));

    // stop/start, then down -v leaves nothing.
    compose_ok(&d, dir, "shop", &["stop", "cache"]);
    let ps = compose_ok(&d, dir, "shop", &["ps", "--format", "json"]).stdout;
    assert!(!ps.contains("shop-cache-1"), "{ps}");
    compose_ok(&d, dir, "shop", &["start", "cache"]);
    let down = compose_ok(&d, dir, "shop", &["down", "-v"]);
    assert!(down.stderr.contains("Container shop-web-1  Removed"), "{down:?}");
    assert!(down.stderr.contains("Network shop_default  Removed"), "{down:?}");
    assert_gone(&d, "shop");
}

/// A stack for the real Compose tools: a web server, a client of it, a named volume.
const INTEROP: &str = r#"
services:
  web:
    image: bb
    command: ["sh", "-c", "echo serving; exec httpd -f -p 8080 -h /srv"]
    stop_signal: SIGKILL
    volumes: ["site:/srv"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
  client:
    image: bb
    command: ["sh", "-c", "echo client up; exec sleep 1000"]
    stop_signal: SIGKILL
    depends_on: [web]
volumes:
  site: {}
"#;

/// Runs a real Compose tool (`docker compose` v2, or `docker-compose` 1.29) against the daemon.
fn real(d: &Daemon, dir: &Path, v1: bool, args: &[&str]) -> Run {
    let mut c = if v1 {
        let mut c = Command::new("docker-compose");
        c.env("DOCKER_HOST", d.host());
        c
    } else {
        d.docker_cmd(&["compose"])
    };
    c.args(args).current_dir(dir).stdin(std::process::Stdio::null());
    c.output().unwrap().into()
}

fn real_ok(d: &Daemon, dir: &Path, v1: bool, args: &[&str]) -> Run {
    let r = real(d, dir, v1, args);
    assert_eq!(
        r.code,
        0,
        "compose (v1: {v1}) {args:?}: {r:?}\n--- daemon log\n{}",
        tail(&d.log())
    );
    r
}

fn real_compose_drives_berthd(v1: bool) {
    let d = Daemon::start();
    d.load_busybox("bb");
    let p = project(&[("docker-compose.yml", INTEROP)]);
    let dir = p.path();
    let name = if v1 { "legacy" } else { "modern" };
    real_ok(&d, dir, v1, &["-p", name, "up", "-d"]);
    let sep = if v1 { "_" } else { "-" };
    let web = format!("{name}{sep}web{sep}1");
    let client = format!("{name}{sep}client{sep}1");
    let ps = real_ok(&d, dir, v1, &["-p", name, "ps"]).stdout;
    assert!(ps.contains(&web) && ps.contains(&client), "{ps}");
    // berth sees the stack as Compose's.
    let ours = compose_ok(&d, dir, name, &["ps", "--format", "json"]).stdout;
    assert!(ours.contains(&web), "{ours}");
    // Files through exec, served across the project network by service name.
    real_ok(
        &d,
        dir,
        v1,
        &["-p", name, "exec", "-T", "web", "sh", "-c", "echo hi > /srv/index.html"],
    );
    let r = real_ok(
        &d,
        dir,
        v1,
        &["-p", name, "exec", "-T", "client", "wget", "-qO-", "http://web:8080/"],
    );
    assert_eq!(r.stdout.trim(), "hi");
    let logs = real_ok(&d, dir, v1, &["-p", name, "logs", "--no-color"]).stdout;
    assert!(logs.contains("serving") && logs.contains("client up"), "{logs}");
    // A one-off container on the same network (1.29 checks the network's options against the file).
    let r = real_ok(
        &d,
        dir,
        v1,
        &[
            "-p",
            name,
            "run",
            "--rm",
            "-T",
            "client",
            "wget",
            "-qO-",
            "http://web:8080/",
        ],
    );
    assert!(r.stdout.contains("hi"), "{r:?}");
    real_ok(&d, dir, v1, &["-p", name, "down", "-v"]);
    assert_gone(&d, name);
    if !v1 {
        // The other way round: a stack berth started is Compose's to list and take down.
        compose_ok(&d, dir, "mixed", &["up", "-d"]);
        let ps = real_ok(
            &d,
            dir,
            false,
            &["-p", "mixed", "ps", "--format", "{{.Name}} {{.Service}}"],
        )
        .stdout;
        assert_eq!(ps, "mixed-client-1 client\nmixed-web-1 web\n");
        // The same config hash: Compose finds berth's containers up to date, and berth Compose's.
        let before = ids(&d, "mixed");
        let r = real_ok(&d, dir, false, &["-p", "mixed", "up", "-d"]);
        assert!(!r.stderr.contains("Recreate"), "{r:?}");
        assert_eq!(ids(&d, "mixed"), before);
        real_ok(&d, dir, false, &["-p", "mixed", "up", "-d", "--force-recreate"]);
        let theirs = ids(&d, "mixed");
        assert_ne!(theirs, before);
        let r = compose_ok(&d, dir, "mixed", &["up", "-d"]);
        assert!(!r.stderr.contains("Recreate"), "{r:?}");
        assert_eq!(ids(&d, "mixed"), theirs);
        // `config --format json` prints what Compose prints, byte for byte.
        let ours = compose_ok(&d, dir, "mixed", &["config", "--format", "json"]).stdout;
        let theirs = real_ok(&d, dir, false, &["-p", "mixed", "config", "--format", "json"]).stdout;
        assert_eq!(ours, theirs);
        real_ok(&d, dir, false, &["-p", "mixed", "down", "-v"]);
        assert_gone(&d, "mixed");
    }
}

#[test]
fn docker_compose_v2_drives_berthd() {
    real_compose_drives_berthd(false);
}

#[test]
fn docker_compose_v1_drives_berthd() {
    real_compose_drives_berthd(true);
}

#[test]
fn bad_input_names_file_line_and_key_and_starts_nothing() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let cases: &[(&str, &[&str])] = &[
        (
            "services:\n  web:\n    image: bb\n    imagee: typo\n",
            &["compose.yaml:4", "services.web", "imagee"],
        ),
        (
            "services:\n  web:\n    image: bb\n    ports: {a: b}\n",
            &["compose.yaml:4", "services.web.ports"],
        ),
        (
            "services:\n  a:\n    image: bb\n    depends_on: [b]\n  b:\n    image: bb\n    depends_on: [a]\n",
            &["dependency cycle detected"],
        ),
        (
            "services:\n  web:\n    image: ${NOPE:?set NOPE to the image}\n",
            &["compose.yaml:3", "services.web.image", "set NOPE to the image"],
        ),
        ("services:\n  web:\n    build: ./missing\n", &["missing"]),
        (
            "services:\n  web:\n    image: bb\n    depends_on: [ghost]\n",
            &["ghost"],
        ),
    ];
    for (i, (yaml, wants)) in cases.iter().enumerate() {
        let p = project(&[("compose.yaml", yaml)]);
        let name = format!("bad{i}");
        let r = compose(&d, p.path(), &name, &["up", "-d"]);
        assert_ne!(r.code, 0, "{yaml}: {r:?}");
        for w in *wants {
            assert!(r.stderr.contains(w), "{yaml}: want {w:?} in {r:?}");
        }
        assert_gone(&d, &name);
    }
}

#[test]
fn builds_profiles_overrides_and_one_off_runs() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let p = project(&[
        (
            "compose.yaml",
            r#"
services:
  app:
    build:
      context: ./app
      args: {MESSAGE: built by compose}
    stop_signal: SIGKILL
  inline:
    build:
      context: ./app
      dockerfile_inline: |
        FROM bb
        RUN echo inline > /msg
    profiles: [debug]
    command: ["cat", "/msg"]
  tools:
    image: bb
    profiles: [debug]
    command: ["echo", "tools ran"]
  job:
    image: bb
    command: ["sh", "-c", "echo job says $$WHO; exit 3"]
    environment: {WHO: nobody}
"#,
        ),
        (
            "compose.override.yaml",
            "services:\n  job:\n    environment:\n      WHO: override\n",
        ),
        (
            "app/Dockerfile",
            "FROM bb\nARG MESSAGE\nRUN echo \"$MESSAGE\" > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; exec sleep 1000\"]\n",
        ),
    ]);
    let dir = p.path();
    // The build happens on up; the profile's service stays out.
    let up = compose_ok(&d, dir, "prof", &["up", "-d", "app"]);
    assert!(!names(&d, "prof").contains(&"prof-tools-1".to_string()), "{up:?}");
    let r = compose_ok(&d, dir, "prof", &["exec", "-T", "app", "cat", "/msg"]);
    assert_eq!(r.stdout, "built by compose\n");
    assert!(ok(&d, &["images", "--format", "{{.Repository}}"]).contains("prof-app"));
    assert_eq!(
        compose_ok(&d, dir, "prof", &["config", "--services"]).stdout,
        "app\njob\n"
    );
    let r = compose_ok(&d, dir, "prof", &["--profile", "debug", "config", "--services"]);
    assert_eq!(r.stdout, "app\ninline\njob\ntools\n");
    let r = compose(&d, dir, "prof", &["--profile", "debug", "run", "--rm", "-T", "inline"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "inline\n"), "{r:?}");

    // A one-off run: the override's environment, the exit code, nothing left with --rm.
    let r = compose(&d, dir, "prof", &["run", "--rm", "-T", "job"]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "job says override\n"), "{r:?}");
    let r = compose(&d, dir, "prof", &["run", "--rm", "-T", "tools"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "tools ran\n"), "{r:?}");
    assert_eq!(names(&d, "prof"), ["prof-app-1"]);

    // Attached up ends with the exit code of the service asked for.
    let r = compose(&d, dir, "prof", &["up", "--exit-code-from", "job", "job"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("job says override"), "{r:?}");
    compose_ok(&d, dir, "prof", &["down", "--rmi", "local"]);
    assert_gone(&d, "prof");
    assert!(!ok(&d, &["images", "--format", "{{.Repository}}"]).contains("prof-app"));
}

#[test]
fn service_options_reach_the_container_and_the_verbs_act() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let p = project(&[
        (
            "compose.yaml",
            r#"
include: [extra.yaml]
services:
  app:
    extends: {file: base.yaml, service: base}
    hostname: apphost
    user: "1000:1000"
    working_dir: /tmp
    environment: {ROLE: app}
    ports: ["127.0.0.1::8080"]
    tmpfs: ["/scratch:size=1m"]
    ulimits: {nofile: {soft: 512, hard: 1024}}
    cap_drop: [NET_RAW]
    init: true
    extra_hosts: ["db.example:10.1.2.3"]
    labels: {team: shop}
    secrets: [token]
    configs: [{source: settings, target: /etc/app.conf}]
    networks:
      back:
        aliases: [backend]
        ipv4_address: 172.31.250.10
    deploy: {resources: {limits: {memory: 64M, cpus: "0.5"}}}
secrets:
  token: {file: ./token.txt}
configs:
  settings: {content: "mode=fast\n"}
networks:
  back:
    ipam: {config: [{subnet: 172.31.250.0/24}]}
"#,
        ),
        (
            "base.yaml",
            "services:\n  base:\n    image: bb\n    command: [\"sh\", \"-c\", \"exec httpd -f -p 8080 -h /tmp\"]\n    stop_signal: SIGKILL\n    environment: {FROM_BASE: yes}\n",
        ),
        ("extra.yaml", "services:\n  sidecar:\n    image: bb\n    command: [\"sleep\", \"1000\"]\n    stop_signal: SIGKILL\n    networks: [back]\n"),
        ("token.txt", "s3cret\n"),
    ]);
    let dir = p.path();
    compose_ok(&d, dir, "opts", &["up", "-d", "--wait"]);
    let app = common::inspect(&d, "opts-app-1");
    let c = &app["Config"];
    let h = &app["HostConfig"];
    assert_eq!(c["Hostname"], "apphost");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/tmp");
    assert_eq!(c["Labels"]["team"], "shop");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"ROLE=app") && env.contains(&"FROM_BASE=yes"), "{env:?}");
    assert_eq!(h["Memory"], 64 << 20);
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["Init"], true);
    assert_eq!(h["CapDrop"], serde_json::json!(["NET_RAW"]));
    assert_eq!(h["ExtraHosts"], serde_json::json!(["db.example:10.1.2.3"]));
    assert_eq!(
        h["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Soft": 512, "Hard": 1024}])
    );
    let net = &app["NetworkSettings"]["Networks"]["opts_back"];
    assert_eq!(net["IPAddress"], "172.31.250.10", "{net}");
    // Inside: the secret, the config, the tmpfs, the limits.
    let r = compose_ok(
        &d,
        dir,
        "opts",
        &[
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            "cat /run/secrets/token /etc/app.conf; ulimit -n; grep -c scratch /proc/mounts",
        ],
    );
    assert_eq!(r.stdout, "s3cret\nmode=fast\n512\n1\n");
    // The included service reaches the app by its alias on the shared network.
    let r = compose_ok(
        &d,
        dir,
        "opts",
        &[
            "exec",
            "-T",
            "sidecar",
            "sh",
            "-c",
            "nslookup backend | grep -c 172.31.250.10",
        ],
    );
    assert_eq!(r.stdout.trim(), "1", "{r:?}");
    // port, top, images, ls, cp.
    let port = compose_ok(&d, dir, "opts", &["port", "app", "8080"]).stdout;
    assert!(port.starts_with("127.0.0.1:"), "{port}");
    let top = compose_ok(&d, dir, "opts", &["top", "app"]).stdout;
    assert!(top.contains("opts-app-1") && top.contains("httpd"), "{top}");
    let images = compose_ok(&d, dir, "opts", &["images"]).stdout;
    assert!(images.contains("opts-app-1") && images.contains("bb"), "{images}");
    let ls = compose_ok(&d, dir, "opts", &["ls"]).stdout;
    assert!(
        ls.lines().any(|l| l.starts_with("opts") && l.contains("running(2)")),
        "{ls}"
    );
    std::fs::write(dir.join("page.html"), "copied\n").unwrap();
    compose_ok(&d, dir, "opts", &["cp", "page.html", "sidecar:/tmp/page.html"]);
    compose_ok(&d, dir, "opts", &["cp", "sidecar:/tmp/page.html", "back.html"]);
    assert_eq!(std::fs::read_to_string(dir.join("back.html")).unwrap(), "copied\n");
    // pause, kill, restart, rm.
    compose_ok(&d, dir, "opts", &["pause", "sidecar"]);
    assert_eq!(common::inspect(&d, "opts-sidecar-1")["State"]["Status"], "paused");
    compose_ok(&d, dir, "opts", &["unpause", "sidecar"]);
    compose_ok(&d, dir, "opts", &["kill", "sidecar"]);
    assert_eq!(common::inspect(&d, "opts-sidecar-1")["State"]["Status"], "exited");
    compose_ok(&d, dir, "opts", &["restart", "sidecar"]);
    assert_eq!(common::inspect(&d, "opts-sidecar-1")["State"]["Status"], "running");
    // An orphan: a service the file no longer has.
    std::fs::write(dir.join("extra.yaml"), "services: {}\n").unwrap();
    let r = compose_ok(&d, dir, "opts", &["up", "-d"]);
    assert!(r.stderr.contains("Found orphan containers ([opts-sidecar-1])"), "{r:?}");
    compose_ok(&d, dir, "opts", &["up", "-d", "--remove-orphans"]);
    assert_eq!(names(&d, "opts"), ["opts-app-1"]);
    compose_ok(&d, dir, "opts", &["down"]);
    assert_gone(&d, "opts");
}

#[test]
fn a_dependency_made_anew_restarts_dependents_that_ask_for_it() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let file = |tag: &str| {
        format!(
            r#"
services:
  db:
    image: bb
    command: ["sh", "-c", "echo {tag}; exec sleep 1000"]
    stop_signal: SIGKILL
  app:
    image: bb
    command: ["sh", "-c", "date +%s%N > /tmp/started; exec sleep 1000"]
    stop_signal: SIGKILL
    depends_on: {{db: {{condition: service_started, restart: true}}}}
  other:
    image: bb
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    depends_on: [db]
"#
        )
    };
    let p = project(&[("compose.yaml", &file("one"))]);
    let dir = p.path();
    compose_ok(&d, dir, "rst", &["up", "-d"]);
    let started = |svc: &str| common::inspect(&d, &format!("rst-{svc}-1"))["State"]["StartedAt"].clone();
    let (app0, other0) = (started("app"), started("other"));
    // Changing db recreates it; app (restart: true) restarts, other does not.
    std::fs::write(dir.join("compose.yaml"), file("two")).unwrap();
    compose_ok(&d, dir, "rst", &["up", "-d"]);
    assert_ne!(started("app"), app0);
    assert_eq!(started("other"), other0);
    // `restart db` takes app along.
    let app1 = started("app");
    compose_ok(&d, dir, "rst", &["restart", "db"]);
    assert_ne!(started("app"), app1);
    assert_eq!(started("other"), other0);
    compose_ok(&d, dir, "rst", &["down"]);
    assert_gone(&d, "rst");
}

/// A WordPress-shaped file with the forms people write: `version:`, `.env`, `env_file`, list and map
/// environments, short and long ports and volumes, a required variable, logging, limits.
const WORDPRESS: &str = r#"version: "3.9"
services:
  db:
    image: mysql:${TAG}
    restart: always
    environment:
      MYSQL_ROOT_PASSWORD: ${DB_PASS}
      MYSQL_DATABASE: wordpress
    volumes:
      - type: volume
        source: db_data
        target: /var/lib/mysql
    healthcheck:
      test: ["CMD-SHELL", "mysqladmin ping -h localhost"]
      interval: 10s
      timeout: 5s
      retries: 5
  wordpress:
    depends_on:
      db:
        condition: service_healthy
    image: wordpress:latest
    ports:
      - "8000:80"
      - "3000"
      - "127.0.0.1:9000:9000/udp"
    env_file: [app.env]
    environment:
      - WORDPRESS_DB_HOST=db:3306
      - WORDPRESS_DB_PASSWORD=${DB_PASS:?need a password}
    labels:
      - "traefik.enable=true"
    logging:
      driver: json-file
      options: {max-size: "10m"}
    command: php -S 0.0.0.0:80 "quoted arg"
    mem_limit: 512m
    cpus: 1.5
    ulimits: {nofile: 65535}
    sysctls: [net.core.somaxconn=1024]
volumes:
  db_data: {}
"#;

/// Networks with IPAM and aliases, ranges of ports, deploy, ulimits, tmpfs, secrets, a build.
const NETWORKED: &str = r#"services:
  web:
    image: busybox
    command: httpd -f -p 80
    ports: ["8080:80", "127.0.0.1:9000-9001:9000-9001/udp"]
    volumes: ["./data:/data:ro", "cache:/cache", "/tmp"]
    environment: [A=b, C]
    depends_on:
      db: {condition: service_healthy}
    healthcheck: {test: ["CMD", "true"], interval: 90s}
    networks: {front: {aliases: [www]}, back: {ipv4_address: 172.28.0.5}}
    deploy: {replicas: 2, resources: {limits: {memory: 64M, cpus: "0.5"}}}
    ulimits: {nofile: 1024, nproc: {soft: 10, hard: 20}}
    tmpfs: /run
    extra_hosts: ["a:1.2.3.4"]
    stop_grace_period: 1m30s
    build: ./web
    secrets: [s1]
  db:
    image: busybox
    entrypoint: ["sh", "-c"]
    labels: [x=y]
    expose: [5432]
    healthcheck: {test: "true"}
volumes: {cache: {}}
networks:
  front: {}
  back: {ipam: {config: [{subnet: 172.28.0.0/16}]}}
secrets: {s1: {file: ./s1.txt}}
"#;

#[test]
fn config_prints_what_compose_v2_prints() {
    for (file, extra) in [
        (
            WORDPRESS,
            vec![
                (".env", "DB_PASS=secret\nTAG=1.2\n"),
                ("app.env", "EXTRA=1\n# c\nQUOTED=\"a b\"\n"),
            ],
        ),
        (NETWORKED, vec![("s1.txt", "x\n")]),
        (SHOP, vec![]),
        (INTEROP, vec![]),
    ] {
        let mut files = vec![("compose.yaml", file)];
        files.extend(extra);
        let p = project(&files);
        for format in ["yaml", "json"] {
            let run = |program: &str, pre: &[&str]| -> Run {
                let mut c = Command::new(program);
                c.args(pre)
                    .args(["compose", "-p", "cfg", "config", "--format", format])
                    .current_dir(p.path())
                    .env("BERTH_NO_AUTOSTART", "1")
                    .env_remove("DB_PASS");
                c.output().unwrap().into()
            };
            let ours = run(common::bin("berth").to_str().unwrap(), &[]);
            let theirs = run("docker", &[]);
            assert_eq!(theirs.code, 0, "{theirs:?}");
            assert_eq!(ours.code, 0, "{ours:?}");
            assert_eq!(ours.stdout, theirs.stdout, "{format} of\n{file}");
        }
    }
}

#[test]
fn build_push_and_pull_through_a_registry() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let _registry = common::Registry::start(&d, 5002);
    let p = project(&[
        (
            "compose.yaml",
            "services:\n  app:\n    image: 127.0.0.1:5002/shop/app:1\n    build: ./app\n    stop_signal: SIGKILL\n",
        ),
        (
            "app/Dockerfile",
            "FROM bb\nRUN echo pushed > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; exec sleep 1000\"]\n",
        ),
    ]);
    let dir = p.path();
    compose_ok(&d, dir, "reg", &["build"]);
    compose_ok(&d, dir, "reg", &["push"]);
    assert_eq!(d.berth(&["rmi", "127.0.0.1:5002/shop/app:1"]).code, 0);
    compose_ok(&d, dir, "reg", &["pull"]);
    compose_ok(&d, dir, "reg", &["up", "-d", "--no-build"]);
    let r = compose_ok(&d, dir, "reg", &["logs", "--no-log-prefix"]);
    assert_eq!(r.stdout, "pushed\n");
    compose_ok(&d, dir, "reg", &["down"]);
    assert_gone(&d, "reg");
    // build.cache_from: without the image and the build cache, the steps come from the registry's
    // image (pulled for it).
    std::fs::write(
        dir.join("cached.yaml"),
        "services:\n  app:\n    image: shop-app-cached\n    build:\n      context: ./app\n      cache_from: [\"127.0.0.1:5002/shop/app:1\"]\n",
    )
    .unwrap();
    assert_eq!(d.berth(&["rmi", "127.0.0.1:5002/shop/app:1"]).code, 0);
    assert_eq!(d.berth(&["builder", "prune", "-f"]).code, 0);
    let r = compose_ok(&d, dir, "reg2", &["-f", "cached.yaml", "build"]);
    assert_eq!(r.stderr.matches("Using cache").count(), 2, "{r:?}");
    assert!(!r.stderr.contains("Running in"), "{r:?}");
    assert!(!r.stderr.contains("not supported"), "{r:?}");
}

#[test]
fn a_project_is_taken_down_by_name_without_its_files() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let p = project(&[(
        "compose.yaml",
        "services:\n  a:\n    image: bb\n    command: [\"sleep\", \"1000\"]\n    stop_signal: SIGKILL\n    volumes: [\"v:/v\"]\nvolumes:\n  v: {}\n",
    )]);
    compose_ok(&d, p.path(), "byname", &["up", "-d"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let ps = compose_ok(&d, elsewhere.path(), "byname", &["ps", "-q"]).stdout;
    assert_eq!(ps.lines().count(), 1, "{ps}");
    compose_ok(&d, elsewhere.path(), "byname", &["stop"]);
    compose_ok(&d, elsewhere.path(), "byname", &["start"]);
    compose_ok(&d, elsewhere.path(), "byname", &["down", "-v"]);
    assert_gone(&d, "byname");
    // Without -p or a file, it is Compose's error.
    let mut c = d.berth_cmd(&["compose", "ps"]);
    let r: Run = c.current_dir(elsewhere.path()).output().unwrap().into();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no configuration file provided"), "{r:?}");
}

/// `build.secrets` and `build.ssh`: the project's secrets (a file, a variable of the project's
/// `.env`) reach the build's RUN under their target's name.
#[test]
fn build_secrets_from_files_and_the_environment() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let p = project(&[
        (
            "compose.yaml",
            "services:\n  app:\n    image: sec-app\n    build:\n      context: ./app\n      secrets:\n        - tok\n        - source: key\n          target: api\nsecrets:\n  tok:\n    file: ./tok.txt\n  key:\n    environment: API_KEY\n",
        ),
        ("tok.txt", "from-file"),
        (".env", "API_KEY=from-env\n"),
        (
            "app/Dockerfile",
            "FROM bb\nRUN --mount=type=secret,id=tok --mount=type=secret,id=api,env=K sh -c 'cat /run/secrets/tok; echo \" $K\"' > /got\n",
        ),
    ]);
    compose_ok(&d, p.path(), "sec", &["build"]);
    assert_eq!(
        ok(&d, &["run", "--rm", "sec-app", "cat", "/got"]),
        "from-file from-env\n"
    );
}
