//! berthd as an operator runs it: daemon.json (keys, flags over the file, errors named, SIGHUP
//! reload), TLS on TCP with client certificates (the docker CLI and berth), the refusal of an open
//! TCP port, live restore off, and Prometheus metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bin, eventually, ok, Daemon};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn hup(d: &Daemon) {
    let pid = d.pid().unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn daemon_json_is_applied_and_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("daemon.json");
    write(
        &file,
        r#"{"labels": ["team=a"],
            "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1234, "Hard": 1234}},
            "insecure-registries": ["10.0.0.0/8"],
            "data-root": "/nonexistent/overridden"}"#,
    );
    let d = Daemon::start_with(&["--config-file", file.to_str().unwrap()]);
    d.load_busybox("bb");
    let info = d.api_json("/info");
    assert_eq!(info["Labels"], serde_json::json!(["team=a"]), "{info}");
    let cidrs = info["RegistryConfig"]["InsecureRegistryCIDRs"].to_string();
    assert!(cidrs.contains("10.0.0.0/8"), "{cidrs}");
    // The command line's --data-root wins over the file's.
    assert_eq!(info["DockerRootDir"], d.data_root().display().to_string());
    assert!(
        d.log().contains("data-root: the command line's value is used"),
        "{}",
        d.log()
    );
    assert_eq!(ok(&d, &["run", "--rm", "bb", "sh", "-c", "ulimit -n"]).trim(), "1234");
    // A container's own ulimit beats the daemon's default.
    let own = ok(
        &d,
        &["run", "--rm", "--ulimit", "nofile=99:99", "bb", "sh", "-c", "ulimit -n"],
    );
    assert_eq!(own.trim(), "99");

    let since = ok(&d, &["version", "--format", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    write(
        &file,
        r#"{"labels": ["team=b"], "debug": true, "mtu": 1400,
            "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 2048, "Hard": 2048}}}"#,
    );
    hup(&d);
    assert!(
        eventually(Duration::from_secs(10), || d.api_json("/info")["Labels"]
            == serde_json::json!(["team=b"])),
        "labels not reloaded; log:\n{}",
        d.log()
    );
    let info = d.api_json("/info");
    assert_eq!(info["Debug"], true);
    assert!(!info["RegistryConfig"]["InsecureRegistryCIDRs"]
        .to_string()
        .contains("10.0.0.0/8"));
    assert_eq!(ok(&d, &["run", "--rm", "bb", "sh", "-c", "ulimit -n"]).trim(), "2048");
    assert!(
        d.log().contains("mtu changed in the configuration: restart berthd"),
        "{}",
        d.log()
    );
    let events = d.api(
        "GET",
        &format!(
            "/events?since=0&until={}&filters=%7B%22type%22%3A%5B%22daemon%22%5D%7D",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 1
        ),
        None,
    );
    let events = String::from_utf8_lossy(&events.1);
    assert!(events.contains(r#""Action":"reload""#), "{events}");

    // A broken file is refused whole and the running configuration stays.
    write(&file, r#"{"labels": ["team=c"], "bogus-key": 1}"#);
    hup(&d);
    assert!(
        eventually(Duration::from_secs(10), || d.log().contains("bogus-key")),
        "{}",
        d.log()
    );
    assert_eq!(d.api_json("/info")["Labels"], serde_json::json!(["team=b"]));
}

#[test]
fn configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("daemon.json");
    let validate = |text: &str| {
        write(&file, text);
        let out = Command::new(bin("berthd"))
            .args(["--validate", "--config-file"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = validate(r#"{"storage-driver": "vfs", "labels": []}"#);
    assert_ne!(code, Some(0));
    assert!(
        out.contains("the following directives don't match any configuration option: storage-driver"),
        "{out}"
    );
    assert!(out.contains(file.to_str().unwrap()), "{out}");
    let (code, out) = validate(r#"{"mtu": "big"}"#);
    assert_ne!(code, Some(0));
    assert!(out.contains(r#""mtu" must be a non-negative integer"#), "{out}");
    let (code, out) = validate(r#"{"log-format": "yaml"}"#);
    assert_ne!(code, Some(0));
    assert!(out.contains("yaml"), "{out}");
    let (code, out) = validate(r#"{"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 10, "Hard": 5}}}"#);
    assert_ne!(code, Some(0));
    assert!(out.contains("soft limit is above the hard limit"), "{out}");
    let (code, out) = validate("{not json");
    assert_ne!(code, Some(0));
    assert!(out.contains("invalid JSON"), "{out}");
    let (code, out) = validate(
        r#"{"labels": ["a=1"], "log-opts": {"max-size": "1m"}, "live-restore": false,
            "default-address-pools": [{"base": "10.99.0.0/16", "size": 24}], "features": {"buildkit": false}}"#,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("configuration OK"), "{out}");
    // A file named on the command line must exist.
    let out = Command::new(bin("berthd"))
        .args(["--validate", "--config-file", "/nonexistent/daemon.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/daemon.json"));
}

/// Stops the daemon with SIGTERM and waits until it is gone.
fn terminate(d: &Daemon) {
    let pid = d.pid().unwrap();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let gone = eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(gone, "berthd did not exit on SIGTERM; log:\n{}", d.log());
}

#[test]
fn without_live_restore_a_stopping_daemon_stops_its_containers() {
    let mut d = Daemon::start_with(&["--live-restore=false"]);
    d.load_busybox("bb");
    ok(&d, &["run", "-d", "--name", "sleeper", "bb", "sleep", "1000"]);
    terminate(&d);
    d.restart();
    let state = common::inspect(&d, "sleeper")["State"].clone();
    assert_eq!(state["Running"], false, "{state}");
    assert_eq!(d.api_json("/info")["LiveRestoreEnabled"], false);

    // With live restore (berth's default) the container outlives the daemon.
    let mut d = Daemon::start();
    d.load_busybox("bb");
    ok(&d, &["run", "-d", "--name", "sleeper", "bb", "sleep", "1000"]);
    terminate(&d);
    d.restart();
    assert_eq!(common::inspect(&d, "sleeper")["State"]["Running"], true);
    assert_eq!(d.api_json("/info")["LiveRestoreEnabled"], true);
}

/// A CA, a daemon certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`
/// (`ca.pem`, `server-cert.pem`, `server-key.pem`, `cert.pem`, `key.pem`: a client's
/// DOCKER_CERT_PATH layout).
fn make_pki(dir: &Path, name: &str) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    std::fs::create_dir_all(dir).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, format!("{name} CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name.push(DnType::CommonName, "client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
    for (file, pem) in [
        ("ca.pem", ca_cert.pem()),
        ("server-cert.pem", server_cert.pem()),
        ("server-key.pem", server_key.serialize_pem()),
        ("cert.pem", client_cert.pem()),
        ("key.pem", client_key.serialize_pem()),
    ] {
        write(&dir.join(file), &pem);
    }
}

/// `program` (docker, or the berth under test) in the daemon's network namespace, with no daemon,
/// TLS setting or autostart from the environment.
fn client_cmd(d: &Daemon, program: &str) -> Command {
    let program = if program == "berth" {
        bin("berth").display().to_string()
    } else {
        program.to_string()
    };
    let mut c = d.netns_cmd(&program);
    for var in ["BERTH_HOST", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
        c.env_remove(var);
    }
    c.env("BERTH_NO_AUTOSTART", "1");
    c
}

fn run(mut c: Command) -> common::Run {
    c.output().unwrap().into()
}

/// A client pointed at the daemon's TLS port with `cert_path` (docker's variables).
fn tls_client(d: &Daemon, program: &str, cert_path: &Path, args: &[&str]) -> common::Run {
    let mut c = client_cmd(d, program);
    c.args(args)
        .env("DOCKER_HOST", "tcp://127.0.0.1:2376")
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", cert_path)
        .env("DOCKER_CONFIG", d.root.join("docker-config"));
    run(c)
}

#[test]
fn tls_with_client_certificates_admits_only_the_cas_clients() {
    let pki = tempfile::tempdir().unwrap();
    let good = pki.path().join("good");
    let rogue = pki.path().join("rogue");
    make_pki(&good, "good");
    make_pki(&rogue, "rogue");
    let f = |n: &str| good.join(n).display().to_string();
    let d = Daemon::start_with(&[
        "--host",
        "tcp://127.0.0.1:2376",
        "--tlsverify",
        "--tlscacert",
        &f("ca.pem"),
        "--tlscert",
        &f("server-cert.pem"),
        "--tlskey",
        &f("server-key.pem"),
    ]);
    d.load_busybox("bb");

    let r = tls_client(&d, "docker", &good, &["version", "--format", "{{.Server.Version}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = tls_client(&d, "docker", &good, &["run", "--rm", "bb", "echo", "over tls"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "over tls"), "{r:?}");
    let r = tls_client(&d, "berth", &good, &["run", "--rm", "bb", "echo", "berth over tls"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "berth over tls"), "{r:?}");
    let r = tls_client(&d, "berth", &good, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    // The flags instead of the variables.
    let mut flags = client_cmd(&d, "berth");
    flags
        .args(["-H", "tcp://127.0.0.1:2376", "--tlsverify", "--tlscacert", &f("ca.pem")])
        .args([
            "--tlscert",
            &f("cert.pem"),
            "--tlskey",
            &f("key.pem"),
            "info",
            "--format",
            "{{.ID}}",
        ]);
    let r = run(flags);
    assert_eq!(r.code, 0, "{r:?}");

    // A context holding the TLS material, made by berth and used by both CLIs (and the reverse).
    let config = d.root.join("ctx-config");
    let cli = |program: &str, args: &[&str]| -> common::Run {
        let mut c = client_cmd(&d, program);
        c.args(args).env("DOCKER_CONFIG", &config);
        run(c)
    };
    let endpoint = format!(
        "host=tcp://127.0.0.1:2376,ca={},cert={},key={}",
        f("ca.pem"),
        f("cert.pem"),
        f("key.pem")
    );
    let r = cli("berth", &["context", "create", "secure", "--docker", &endpoint]);
    assert_eq!(r.code, 0, "{r:?}");
    for program in ["berth", "docker"] {
        let r = cli(
            program,
            &["--context", "secure", "version", "--format", "{{.Server.Version}}"],
        );
        assert_eq!(r.code, 0, "{program}: {r:?}");
    }
    let r = cli("docker", &["context", "create", "dsecure", "--docker", &endpoint]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = cli("berth", &["--context", "dsecure", "run", "--rm", "bb", "echo", "ctx"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "ctx"), "{r:?}");

    // No client certificate, one from another CA, or a daemon checked against another CA: refused.
    let ca_only = pki.path().join("ca-only");
    std::fs::create_dir_all(&ca_only).unwrap();
    std::fs::copy(good.join("ca.pem"), ca_only.join("ca.pem")).unwrap();
    let mixed = pki.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::copy(good.join("ca.pem"), mixed.join("ca.pem")).unwrap();
    std::fs::copy(rogue.join("cert.pem"), mixed.join("cert.pem")).unwrap();
    std::fs::copy(rogue.join("key.pem"), mixed.join("key.pem")).unwrap();
    for (what, dir) in [
        ("no client certificate", &ca_only),
        ("a rogue client certificate", &mixed),
    ] {
        for program in ["berth", "docker"] {
            let r = tls_client(&d, program, dir, &["ps"]);
            assert_ne!(r.code, 0, "{program} with {what}: {r:?}");
        }
    }
    let r = tls_client(&d, "berth", &rogue, &["ps"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("TLS"), "{r:?}");
    // Plain HTTP to the TLS port gets nothing.
    let mut plain = client_cmd(&d, "berth");
    plain.args(["-H", "tcp://127.0.0.1:2376", "ps"]);
    let r = run(plain);
    assert_ne!(r.code, 0, "{r:?}");
}

#[test]
fn an_open_tcp_port_needs_tls_or_insecure_tcp() {
    let d = Daemon::start();
    let dir = d.root.join("second");
    let out = d
        .berthd_cmd(&dir.join("s.sock"), &dir.join("data"), &dir.join("run"))
        .args(["--host", "tcp://0.0.0.0:2375"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on tcp://0.0.0.0:2375 without --tlsverify"),
        "{err}"
    );
    assert!(err.contains("--insecure-tcp"), "{err}");
    drop(d);

    let d = Daemon::start_with(&["--host", "tcp://0.0.0.0:2375", "--insecure-tcp"]);
    let warnings = d.api_json("/info")["Warnings"].to_string();
    assert!(
        warnings.contains("http://0.0.0.0:2375 without client certificates"),
        "{warnings}"
    );
    assert!(d.log().contains("anyone who reaches"), "{}", d.log());
}

/// `GET /metrics` on the daemon's metrics address, in its network namespace.
fn scrape(d: &Daemon, port: u16) -> String {
    d.in_netns(|| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
}

/// The value of the sample `name{labels}` (labels as the exposition writes them).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn metrics_are_served_for_prometheus() {
    let d = Daemon::start_with(&["--metrics-addr", "127.0.0.1:9323"]);
    d.load_busybox("bb");
    ok(&d, &["run", "-d", "--name", "m1", "bb", "sleep", "1000"]);
    ok(&d, &["ps"]);
    // A pull from a registry that is not there fails, and is counted.
    assert_ne!(d.berth(&["pull", "127.0.0.1:1/none/such"]).code, 0);
    let page = scrape(&d, 9323);
    let (head, text) = page.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    // Every sample line parses as `name{labels} value`.
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let value = line.rsplit_once(' ').map(|(_, v)| v).unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "unparsable sample {line:?}");
    }
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_eq!(
        sample(text, r#"engine_daemon_container_states_containers{state="running"}"#),
        Some(1.0),
        "{text}"
    );
    let ps = sample(
        text,
        r#"berth_api_requests_total{method="GET",route="/containers/json",status="200"}"#,
    );
    assert!(ps.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        text.contains(
            r#"berth_api_request_duration_seconds_bucket{le="+Inf",method="POST",route="/containers/create"}"#
        ),
        "{text}"
    );
    assert_eq!(
        sample(text, r#"berth_image_pulls_total{result="failure"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(sample(text, "berth_events_dropped_total").is_some(), "{text}");
}
