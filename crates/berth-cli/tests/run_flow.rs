//! `berth run`/`create` against a small fake daemon: the request order docker uses (create,
//! attach, wait, start), exit codes (container status, 125, 127), and the pull-on-missing path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{watch, Notify};

mod common;

struct Ctr {
    cmd: Vec<String>,
    started: Arc<Notify>,
    exited: watch::Sender<Option<i64>>,
}

#[derive(Default)]
struct State {
    log: Vec<String>,
    bodies: Vec<Value>,
    ctrs: HashMap<String, Ctr>,
}

type Shared = Arc<Mutex<State>>;

async fn reply(s: &mut UnixStream, status: &str, body: &str) {
    let _ = s.write_all(common::response(status, body).as_bytes()).await;
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![stream, 0, 0, 0];
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

async fn handle(mut s: UnixStream, st: Shared) {
    let Some((line, body)) = common::read_request(&mut s).await else {
        return;
    };
    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
    st.lock()
        .unwrap()
        .log
        .push(format!("{} {}", line.split(' ').next().unwrap_or(""), path));
    let route = path.split('?').next().unwrap_or_default();
    let route = route.strip_prefix("/v1.47").unwrap_or(route);
    let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["_ping"] => reply(&mut s, "200 OK", "OK").await,
        ["containers", "create"] => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if v["Image"] == "missing" {
                return reply(
                    &mut s,
                    "404 Not Found",
                    r#"{"message":"No such image: missing:latest"}"#,
                )
                .await;
            }
            let cmd: Vec<String> = v["Cmd"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default();
            let id = {
                let mut g = st.lock().unwrap();
                let id = format!("{:064}", g.ctrs.len() + 1);
                let (tx, _) = watch::channel(None);
                let started = Arc::new(Notify::new());
                g.ctrs.insert(
                    id.clone(),
                    Ctr {
                        cmd,
                        started,
                        exited: tx,
                    },
                );
                g.bodies.push(v);
                id
            };
            reply(&mut s, "201 Created", &format!(r#"{{"Id":"{id}","Warnings":[]}}"#)).await;
        }
        ["images", "create"] => {
            reply(
                &mut s,
                "404 Not Found",
                r#"{"message":"pull access denied for missing"}"#,
            )
            .await
        }
        ["containers", id, op] => {
            let found = {
                let g = st.lock().unwrap();
                g.ctrs
                    .get(*id)
                    .map(|c| (c.cmd.clone(), c.started.clone(), c.exited.clone()))
            };
            let Some((cmd, started, exited)) = found else {
                let msg = format!(r#"{{"message":"No such container: {id}"}}"#);
                return reply(&mut s, "404 Not Found", &msg).await;
            };
            match *op {
                "start" => {
                    if cmd.first().map(String::as_str) == Some("nope") {
                        let msg = r#"{"message":"exec: \"nope\": executable file not found in $PATH"}"#;
                        return reply(&mut s, "400 Bad Request", msg).await;
                    }
                    started.notify_one();
                    let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                }
                "attach" => {
                    let _ = s
                        .write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                        .await;
                    started.notified().await;
                    let _ = s.write_all(&frame(1, b"hello\n")).await;
                    let _ = s.write_all(&frame(2, b"warn\n")).await;
                    let code = match cmd.as_slice() {
                        [a, n] if a == "exit" => n.parse().unwrap_or(0),
                        _ => 0,
                    };
                    let _ = s.shutdown().await;
                    exited.send_replace(Some(code));
                }
                "wait" => {
                    let mut rx = exited.subscribe();
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                        )
                        .await;
                    let code = loop {
                        if let Some(c) = *rx.borrow_and_update() {
                            break c;
                        }
                        if rx.changed().await.is_err() {
                            break -1;
                        }
                    };
                    let body = format!(r#"{{"StatusCode":{code}}}"#);
                    let _ = s
                        .write_all(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes())
                        .await;
                }
                _ => reply(&mut s, "200 OK", "{}").await,
            }
        }
        _ => reply(&mut s, "404 Not Found", r#"{"message":"page not found"}"#).await,
    }
}

/// The socket, the state, and the daemon (its directory is removed when dropped).
fn start_daemon(name: &str) -> (PathBuf, Shared, common::Daemon<State>) {
    let d = common::start_daemon("berth-cli-test", name, Arc::default(), handle);
    (d.sock.clone(), d.st.clone(), d)
}

fn berth(sock: &std::path::Path, args: &[&str]) -> i32 {
    let host = format!("unix://{}", sock.display());
    let mut argv = vec!["berth", "-H", host.as_str()];
    argv.extend_from_slice(args);
    berth_cli::run(argv)
}

fn requests(st: &Shared) -> Vec<String> {
    st.lock()
        .unwrap()
        .log
        .iter()
        .filter(|l| !l.contains("/_ping"))
        .map(|l| {
            let path = l.split('?').next().unwrap_or_default();
            // Drop the container ID so the order reads as operations.
            path.split('/').filter(|p| p.len() != 64).collect::<Vec<_>>().join("/")
        })
        .collect()
}

#[test]
fn run_attaches_and_waits_before_start_and_returns_the_exit_code() {
    let (sock, st, _dir) = start_daemon("run");
    assert_eq!(berth(&sock, &["run", "bb", "exit", "3"]), 3);
    assert_eq!(
        requests(&st),
        vec![
            "POST /v1.47/containers/create",
            "POST /v1.47/containers/attach",
            "POST /v1.47/containers/wait",
            "POST /v1.47/containers/start",
        ]
    );
    let log = st.lock().unwrap().log.clone();
    assert!(log.iter().any(|l| l.contains("/wait?condition=next-exit")), "{log:?}");
}

#[test]
fn run_rm_waits_for_removal() {
    let (sock, st, _dir) = start_daemon("rm");
    assert_eq!(berth(&sock, &["run", "--rm", "bb", "exit", "0"]), 0);
    let log = st.lock().unwrap().log.clone();
    assert!(log.iter().any(|l| l.contains("/wait?condition=removed")), "{log:?}");
    assert_eq!(st.lock().unwrap().bodies[0]["HostConfig"]["AutoRemove"], true);
}

#[test]
fn start_failure_maps_to_docker_exit_codes() {
    let (sock, _st, _dir) = start_daemon("nope");
    assert_eq!(berth(&sock, &["run", "bb", "nope"]), 127);
}

#[test]
fn missing_image_tries_a_pull_then_fails_with_125() {
    let (sock, st, _dir) = start_daemon("pull");
    assert_eq!(berth(&sock, &["run", "missing"]), 125);
    let log = st.lock().unwrap().log.clone();
    assert!(
        log.iter()
            .any(|l| l.contains("/images/create?fromImage=docker.io%2Flibrary%2Fmissing&tag=latest")),
        "{log:?}"
    );
    // `create` reports daemon errors like docker: plain, exit 1.
    assert_eq!(berth(&sock, &["create", "missing"]), 1);
}

#[test]
fn detached_run_and_create_send_the_flags() {
    let (sock, st, _dir) = start_daemon("detach");
    assert_eq!(
        berth(
            &sock,
            &["run", "-d", "--name", "web", "-m", "1g", "-e", "A=1", "bb", "exit", "0"]
        ),
        0
    );
    assert_eq!(
        requests(&st),
        vec!["POST /v1.47/containers/create", "POST /v1.47/containers/start"]
    );
    let log = st.lock().unwrap().log.clone();
    assert!(log.iter().any(|l| l.contains("/containers/create?name=web")), "{log:?}");
    let body = st.lock().unwrap().bodies[0].clone();
    assert_eq!(body["HostConfig"]["Memory"], 1073741824i64);
    assert_eq!(body["Env"], serde_json::json!(["A=1"]));
    assert_eq!(body["AttachStdout"], false);
    // Usage errors never reach the daemon.
    assert_eq!(berth(&sock, &["run", "-m", "lots", "bb"]), 125);
    assert_eq!(berth(&sock, &["ps", "--bogus"]), 125);
    assert_eq!(berth(&sock, &["stop"]), 1);
    assert_eq!(st.lock().unwrap().bodies.len(), 1);
}

#[test]
fn unreachable_explicit_host_is_an_error_without_autostart() {
    let sock = std::env::temp_dir().join(format!("berth-cli-test-{}-none.sock", std::process::id()));
    assert_eq!(berth(&sock, &["ps"]), 1);
    assert_eq!(berth(&sock, &["run", "bb"]), 125);
}
