//! The client against a minimal hand-written daemon on a unix socket: version negotiation, error
//! bodies, and a hijacked attach (101, bidirectional stream, half-close).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_client::stream::{read_frame, StreamType};
use berth_client::{AttachOptions, Client, Host};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

mod common;

async fn read_head(s: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

async fn respond(s: &mut UnixStream, status: &str, body: &str) {
    s.write_all(common::response("1.45", status, body).as_bytes())
        .await
        .unwrap();
}

async fn serve(listener: UnixListener, log: tokio::sync::mpsc::UnboundedSender<String>) {
    loop {
        let (mut s, _) = listener.accept().await.unwrap();
        let log = log.clone();
        tokio::spawn(async move {
            let head = read_head(&mut s).await;
            let line = head.lines().next().unwrap_or_default().to_string();
            let _ = log.send(line.clone());
            if line.starts_with("GET /_ping") {
                respond(&mut s, "200 OK", "OK").await;
            } else if line.contains("/containers/nope/json") {
                respond(&mut s, "404 Not Found", r#"{"message":"No such container: nope"}"#).await;
            } else if line.contains("/attach?") {
                assert!(head.to_lowercase().contains("upgrade: tcp"), "{head}");
                s.write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                    .await
                    .unwrap();
                // Echo stdin as stdout frames until the client half-closes, then say bye on stderr.
                let mut buf = [0u8; 1024];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    let mut frame = vec![1, 0, 0, 0];
                    frame.extend_from_slice(&(n as u32).to_be_bytes());
                    frame.extend_from_slice(&buf[..n]);
                    s.write_all(&frame).await.unwrap();
                }
                s.write_all(&[2, 0, 0, 0, 0, 0, 0, 3]).await.unwrap();
                s.write_all(b"bye").await.unwrap();
                s.shutdown().await.unwrap();
            } else if line.contains("/wait?") {
                // Headers first (the wait is registered), the body later.
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let body = r#"{"StatusCode":7}"#;
                let chunk = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
                s.write_all(chunk.as_bytes()).await.unwrap();
            } else {
                respond(&mut s, "404 Not Found", r#"{"message":"page not found"}"#).await;
            }
        });
    }
}

#[tokio::test(flavor = "current_thread")]
async fn negotiation_errors_attach_and_wait() {
    let path = common::socket_path("berth-client-test", "main");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(serve(listener, tx));

    let mut c = Client::new(Host::Unix(path.clone()));
    c.negotiate().await.unwrap();
    assert_eq!(c.api_version(), "1.45");

    let e = c.container_inspect("nope").await.unwrap_err();
    assert_eq!(e.to_string(), "Error response from daemon: No such container: nope");
    assert_eq!(e.status(), Some(404));
    let _ = rx.recv().await; // ping
    assert_eq!(rx.recv().await.unwrap(), "GET /v1.45/containers/nope/json HTTP/1.1");

    let opts = AttachOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        logs: false,
    };
    let conn = c.container_attach("abc", opts).await.unwrap();
    let mut reader = conn.reader;
    let mut writer = conn.writer.expect("a 101 gives a writable stream");
    writer.write_all(b"hello").await.unwrap();
    writer.flush().await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        read_frame(&mut reader, &mut buf).await.unwrap(),
        Some(StreamType::Stdout)
    );
    assert_eq!(buf, b"hello");
    writer.shutdown().await.unwrap();
    assert_eq!(
        read_frame(&mut reader, &mut buf).await.unwrap(),
        Some(StreamType::Stderr)
    );
    assert_eq!(buf, b"bye");
    assert_eq!(read_frame(&mut reader, &mut buf).await.unwrap(), None);

    let resp = c.container_wait("abc", "next-exit").await.unwrap();
    assert_eq!(Client::wait_result(resp).await.unwrap(), (7, None));
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
