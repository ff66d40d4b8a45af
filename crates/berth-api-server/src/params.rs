//! Query-string helpers with Docker's conventions (`1`/`true` booleans, JSON filters).

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::Serialize;
use std::collections::HashMap;

/// A parsed query string; keys may repeat (`names=a&names=b`).
#[derive(Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses the request's query string.
    pub fn from_query(q: Option<&str>) -> Params {
        Params(form_urlencoded(q.unwrap_or("")))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// All values of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's boolean: absent, empty, `0`, `false`, `no` are false.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false" | "no"),
        }
    }

    /// An integer parameter; a malformed one is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}: not an integer"))),
        }
    }

    /// `filters={"key":["v"]}` or the legacy `{"key":{"v":true}}`.
    pub fn filters(&self) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(HashMap::new());
        };
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter: expected an object"))?;
        let mut out = HashMap::new();
        for (k, vals) in obj {
            let list = match vals {
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(s, _)| s.clone())
                    .collect(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter: values of {k:?} must be a list"
                    )))
                }
            };
            out.insert(k.clone(), list);
        }
        Ok(out)
    }
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_urlencoded(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A JSON response with status 200.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_default(),
        Err(e) => crate::error::json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding response: {e}")),
    }
}

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap_or_default()
}

/// The content type of an attach or exec stream: raw with a TTY, else Docker's multiplexed frames.
pub fn stream_content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The `101 Switching Protocols` answer of a hijacked attach or exec (`Upgrade: tcp`).
pub fn switching_protocols(content_type: &str) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let p = Params::from_query(Some(
            "all=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D&names=a&names=b%2Fc&x=false",
        ));
        assert!(p.flag("all"));
        assert!(!p.flag("x"));
        assert!(!p.flag("missing"));
        assert_eq!(p.all("names"), vec!["a".to_string(), "b/c".to_string()]);
        assert_eq!(p.filters().unwrap()["status"], vec!["exited".to_string()]);
        let legacy = Params::from_query(Some("filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"));
        assert_eq!(legacy.filters().unwrap()["label"], vec!["a=b".to_string()]);
        assert!(Params::from_query(Some("filters=notjson")).filters().is_err());
    }
}
