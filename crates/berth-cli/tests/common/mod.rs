//! Scaffolding shared by the CLI flow tests: a fake daemon on a unix socket (request parsing,
//! replies, the serving thread) and re-running the test binary as `berth` to read back exactly what
//! a user sees.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use tokio::net::{UnixListener, UnixStream};

/// Separates berth's output from the test harness's in a child's stdout and stderr.
pub const MARK: &str = "\u{1}BERTH-OUTPUT\u{1}\n";

/// The body of each test binary's `child_berth`: when the parent set `env`, runs berth with those
/// arguments and exits with its code.
pub fn child_main(env: &str) {
    let Ok(args) = std::env::var(env) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).unwrap();
    print!("{MARK}");
    eprint!("{MARK}");
    let _ = std::io::stdout().flush();
    let code = berth_cli::run(args);
    std::process::exit(code);
}

/// Reads one HTTP request: its first line (`METHOD /target HTTP/1.1`) and its body.
pub async fn read_request(s: &mut UnixStream) -> Option<(String, Vec<u8>)> {
    let (method, target, _, body) = read_request_with_headers(s).await?;
    Some((format!("{method} {target} HTTP/1.1"), body))
}

/// Reads one request as its method, its target, its headers (names lower-cased) and its body.
pub async fn read_request_with_headers(s: &mut UnixStream) -> Option<(String, String, Vec<(String, String)>, Vec<u8>)> {
    let r = berth_testkit::http::read_request(s).await?;
    Some((r.method, r.target, r.headers, r.body))
}

/// Reads one request as its method, its target (`/path?query`) and its JSON body (`null` when
/// there is none or it is not JSON).
pub async fn read_json_request(s: &mut UnixStream) -> Option<(String, String, serde_json::Value)> {
    let (line, body) = read_request(s).await?;
    let mut words = line.split(' ');
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Some((method, target, body))
}

/// [`response`] (API 1.47), or a bare `204 No Content` for a 204 `status`.
pub fn response_or_no_content(status: &str, body: &str) -> String {
    if status.starts_with("204") {
        "HTTP/1.1 204 No Content\r\n\r\n".to_string()
    } else {
        response(status, body)
    }
}

/// A JSON response with `status` (e.g. `200 OK`) and `body`.
pub fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A fake daemon listening on `sock`; its directory is removed when dropped.
pub struct Daemon<S> {
    pub sock: PathBuf,
    pub st: Arc<Mutex<S>>,
}

impl<S> Drop for Daemon<S> {
    fn drop(&mut self) {
        if let Some(dir) = self.sock.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Serves `handle` for each connection on a socket in a fresh temp directory named after
/// `prefix`, this process and `name`; returns once the socket listens.
pub fn start_daemon<S, F, Fut>(prefix: &str, name: &str, st: Arc<Mutex<S>>, handle: F) -> Daemon<S>
where
    S: Send + 'static,
    F: Fn(UnixStream, Arc<Mutex<S>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("d.sock");
    let _ = std::fs::remove_file(&sock);
    let (st2, sock2) = (st.clone(), sock.clone());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = UnixListener::bind(&sock2).unwrap();
            ready_tx.send(()).unwrap();
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(handle(s, st2.clone()));
            }
        });
    });
    ready_rx.recv().unwrap();
    Daemon { sock, st }
}

/// What a user sees: stdout, stderr, exit code.
#[derive(Debug, PartialEq)]
pub struct Seen {
    pub out: String,
    pub err: String,
    pub code: i32,
}

/// The expected [`Seen`].
pub fn seen(out: &str, err: &str, code: i32) -> Seen {
    Seen {
        out: out.into(),
        err: err.into(),
        code,
    }
}

fn after_mark(s: &[u8]) -> String {
    let s = String::from_utf8_lossy(s);
    match s.split_once(MARK) {
        Some((_, rest)) => rest.to_string(),
        None => s.into_owned(),
    }
}

/// Runs berth against `sock` with `args` and `input` on its stdin, in a child process (this test
/// binary re-executed with `env` set, see [`child_main`]).
pub fn berth_in(env: &str, sock: &Path, args: &[&str], input: &str) -> Seen {
    berth_in_env(env, sock, args, input, &[])
}

/// [`berth_in`] with extra environment variables (`DOCKER_CONFIG`, `PATH`).
pub fn berth_in_env(env: &str, sock: &Path, args: &[&str], input: &str, vars: &[(&str, &str)]) -> Seen {
    let host = format!("unix://{}", sock.display());
    let mut argv = vec!["berth", "-H", host.as_str()];
    argv.extend_from_slice(args);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_berth", "--nocapture", "--test-threads=1"])
        .env(env, serde_json::to_string(&argv).unwrap())
        .env("BERTH_NO_AUTOSTART", "1")
        .env_remove("DOCKER_API_VERSION")
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Seen {
        out: after_mark(&out.stdout),
        err: after_mark(&out.stderr),
        code: out.status.code().unwrap_or(-1),
    }
}
