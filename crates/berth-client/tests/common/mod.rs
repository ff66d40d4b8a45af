//! Scaffolding shared by the client tests' hand-written daemons: the socket's temp directory,
//! request parsing, replies and the accept loop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};

/// A fresh `d.sock` path in a temp directory named after `prefix`, this process and `name`.
pub fn socket_path(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join("d.sock");
    let _ = std::fs::remove_file(&p);
    p
}

/// Removes the fake daemon's directory when the test ends.
pub struct DirGuard(pub PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads one HTTP request: its first line (`METHOD /target HTTP/1.1`) and its body.
pub async fn read_request(s: &mut UnixStream) -> Option<(String, Vec<u8>)> {
    let r = berth_testkit::http::read_request(s).await?;
    Some((r.line(), r.body))
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
        response("1.47", status, body)
    }
}

/// A JSON response with `status` (e.g. `200 OK`), the `Api-Version` header `api` and `body`.
pub fn response(api: &str, status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nApi-Version: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Writes a JSON response (API 1.47), ignoring a closed connection.
pub async fn reply(s: &mut UnixStream, status: &str, body: &str) {
    let _ = s.write_all(response("1.47", status, body).as_bytes()).await;
}

/// Listens on a fresh socket (see [`socket_path`]) and runs `handle` for each connection on the
/// current runtime; returns the socket and the guard removing its directory.
pub fn serve<S, F, Fut>(prefix: &str, name: &str, st: Arc<Mutex<S>>, handle: F) -> (PathBuf, DirGuard)
where
    S: Send + 'static,
    F: Fn(UnixStream, Arc<Mutex<S>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sock = socket_path(prefix, name);
    let listener = UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            tokio::spawn(handle(s, st.clone()));
        }
    });
    let dir = sock.parent().map(Path::to_path_buf).unwrap_or_default();
    (sock, DirGuard(dir))
}
