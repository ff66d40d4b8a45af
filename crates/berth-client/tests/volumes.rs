//! The `/volumes` client methods against a small hand-written daemon keeping volumes in memory:
//! the request lines and bodies sent, and Docker's errors (404, 409) surfaced as the daemon words
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_client::models::VolumeCreateOptions;
use berth_client::{Client, Filters, Host};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

mod common;

#[derive(Default)]
struct State {
    /// Request lines and JSON bodies, in order.
    log: Vec<(String, Value)>,
    vols: Vec<Value>,
}

type Shared = Arc<Mutex<State>>;

/// Answers one request from the in-memory state: `(status line, JSON body)`.
fn route(st: &mut State, method: &str, parts: &[&str], query: &str, body: &Value) -> (&'static str, String) {
    let find = |st: &State, n: &str| st.vols.iter().position(|v| v["Name"] == n);
    let no_such = |n: &str| json!({"message": format!("get {n}: no such volume")}).to_string();
    match (method, parts) {
        ("GET", ["_ping"]) => ("200 OK", "OK".into()),
        // Leniency: a daemon may send `null` lists.
        ("GET", ["volumes"]) => ("200 OK", json!({"Volumes": st.vols, "Warnings": null}).to_string()),
        ("POST", ["volumes", "create"]) => {
            let name = body["Name"].as_str().unwrap_or("0123abcd").to_string();
            let v = json!({"Name": name, "Driver": body["Driver"], "Mountpoint": format!("/v/{name}/_data"),
                           "Labels": body["Labels"], "Options": body["DriverOpts"], "Scope": "local",
                           "CreatedAt": "2026-01-02T03:04:05Z"});
            if find(st, &name).is_none() {
                st.vols.push(v.clone());
            }
            ("201 Created", v.to_string())
        }
        ("POST", ["volumes", "prune"]) => {
            let names: Vec<Value> = st.vols.drain(..).map(|v| v["Name"].clone()).collect();
            (
                "200 OK",
                json!({"VolumesDeleted": names, "SpaceReclaimed": 4096}).to_string(),
            )
        }
        ("GET", ["volumes", n]) => match find(st, n) {
            Some(i) => ("200 OK", st.vols[i].to_string()),
            None => ("404 Not Found", no_such(n)),
        },
        ("DELETE", ["volumes", "busy"]) => (
            "409 Conflict",
            r#"{"message":"remove busy: volume is in use - [abc]"}"#.into(),
        ),
        ("DELETE", ["volumes", n]) => match find(st, n) {
            Some(i) => {
                st.vols.remove(i);
                ("204 No Content", String::new())
            }
            None if query.contains("force=1") => ("204 No Content", String::new()),
            None => ("404 Not Found", no_such(n)),
        },
        _ => ("404 Not Found", r#"{"message":"page not found"}"#.into()),
    }
}

async fn handle(mut s: UnixStream, st: Shared) {
    let Some((method, target, body)) = common::read_json_request(&mut s).await else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = path.strip_prefix("/v1.47").unwrap_or(path).replace("%20", " ");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, answer) = {
        let mut g = st.lock().unwrap();
        g.log.push((format!("{method} {target}"), body.clone()));
        route(&mut g, &method, &parts, query, &body)
    };
    let msg = common::response_or_no_content(status, &answer);
    let _ = s.write_all(msg.as_bytes()).await;
}

fn start(name: &str) -> (Client, Shared, common::DirGuard) {
    let st: Shared = Arc::default();
    let (sock, dir) = common::serve("berth-client-vol", name, st.clone(), handle);
    (Client::new(Host::Unix(sock)), st, dir)
}

fn last(st: &Shared) -> (String, Value) {
    st.lock().unwrap().log.last().cloned().unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn create_list_inspect_remove_prune() {
    let (c, st, _dir) = start("crud");
    let req = VolumeCreateOptions {
        name: Some("my data".into()),
        driver: Some("local".into()),
        driver_opts: Some(HashMap::from([("type".to_string(), "tmpfs".to_string())])),
        labels: Some(HashMap::from([("a".to_string(), "1".to_string())])),
        ..Default::default()
    };
    let v = c.volume_create(&req).await.unwrap();
    assert_eq!(v["Name"], "my data");
    assert_eq!(
        last(&st),
        (
            "POST /v1.47/volumes/create".to_string(),
            json!({"Name": "my data", "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": {"a": "1"}})
        )
    );

    let mut f = Filters::new();
    f.insert("dangling".into(), vec!["true".into()]);
    let list = c.volume_list(&f).await.unwrap();
    assert_eq!(list.volumes.len(), 1);
    assert!(list.warnings.is_empty());
    assert_eq!(
        last(&st).0,
        "GET /v1.47/volumes?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D"
    );

    let raw = c.volume_inspect_raw("my data").await.unwrap();
    // The daemon's bytes as sent (here serde_json's sorted keys).
    assert!(
        raw.starts_with(b"{\"CreatedAt\":\"2026-01-02T03:04:05Z\",\"Driver\""),
        "{raw:?}"
    );
    assert_eq!(last(&st).0, "GET /v1.47/volumes/my%20data");
    let e = c.volume_inspect("nope").await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "Error response from daemon: get nope: no such volume");

    let e = c.volume_remove("busy", false).await.unwrap_err();
    assert!(e.is_conflict());
    assert_eq!(
        e.to_string(),
        "Error response from daemon: remove busy: volume is in use - [abc]"
    );
    assert_eq!(last(&st).0, "DELETE /v1.47/volumes/busy");
    c.volume_remove("nope", true).await.unwrap();
    assert_eq!(last(&st).0, "DELETE /v1.47/volumes/nope?force=1");
    assert!(c.volume_remove("nope", false).await.unwrap_err().is_not_found());

    let mut f = Filters::new();
    f.insert("all".into(), vec!["true".into()]);
    let report = c.volumes_prune(&f).await.unwrap();
    assert_eq!(report.volumes_deleted, ["my data"]);
    assert_eq!(report.space_reclaimed, 4096);
    assert_eq!(
        last(&st).0,
        "POST /v1.47/volumes/prune?filters=%7B%22all%22%3A%7B%22true%22%3Atrue%7D%7D"
    );
    let report = c.volumes_prune(&Filters::new()).await.unwrap();
    assert!(report.volumes_deleted.is_empty());
    assert_eq!(last(&st).0, "POST /v1.47/volumes/prune");
}
