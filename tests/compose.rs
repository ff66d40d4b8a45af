//! Compose end to end: `berth compose` brings realistic stacks up and down against berthd (names,
//! labels, DNS between services, health-check chains, recreation by config hash, scale, logs,
//! exec, run, bad input), and the real Docker Compose v2 and docker-compose 1.29 drive the same
//! stacks through berthd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{ok, Daemon, Run};
use std::path::Path;

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
        logs.lines()
            .any(|l| l.starts_with("shop-db-1") && l.ends_with("| db up")),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.starts_with("shop-migrate-1") && l.ends_with("| migrated")),
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
