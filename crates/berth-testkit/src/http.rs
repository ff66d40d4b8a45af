//! Hand-written fake daemons' side of HTTP/1.1: reading one request off a stream.

use tokio::io::{AsyncRead, AsyncReadExt};

/// One request as a fake daemon sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `/path?query`.
    pub target: String,
    /// The header fields, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; none without it).
    pub body: Vec<u8>,
}

impl Request {
    /// The request line as sent: `METHOD /target HTTP/1.1`.
    pub fn line(&self) -> String {
        format!("{} {} HTTP/1.1", self.method, self.target)
    }
}

/// Reads one request (head byte by byte, then `Content-Length` bytes of body); `None` at EOF or on
/// a read error.
pub async fn read_request(s: &mut (impl AsyncRead + Unpin)) -> Option<Request> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    let mut words = first.split(' ');
    Some(Request {
        method: words.next().unwrap_or_default().to_string(),
        target: words.next().unwrap_or_default().to_string(),
        headers,
        body,
    })
}
