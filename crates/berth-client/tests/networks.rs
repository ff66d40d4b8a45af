//! The `/networks` client methods against a small hand-written daemon keeping networks in memory:
//! the request lines and bodies sent, and Docker's errors (404, 409, 403) surfaced as the daemon
//! words them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_client::models::{EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig};
use berth_client::models::{NetworkConnectRequest, NetworkCreateRequest};
use berth_client::{Client, Filters, Host, NetworkInspectOptions};
use serde_json::{json, Value};
use tokio::net::UnixStream;

mod common;

#[derive(Default)]
struct State {
    /// Request lines and JSON bodies, in order.
    log: Vec<(String, Value)>,
    /// name -> network object.
    nets: Vec<Value>,
}

type Shared = Arc<Mutex<State>>;

fn not_found(id: &str) -> String {
    json!({"message": format!("network {id} not found")}).to_string()
}

/// Answers one request from the in-memory state: `(status line, JSON body)`.
fn route(st: &mut State, method: &str, parts: &[&str], body: &Value) -> (&'static str, String) {
    let find = |st: &State, id: &str| st.nets.iter().position(|n| n["Name"] == id || n["Id"] == id);
    match (method, parts) {
        ("GET", ["_ping"]) => ("200 OK", "OK".into()),
        ("GET", ["networks"]) => ("200 OK", Value::Array(st.nets.clone()).to_string()),
        ("POST", ["networks", "create"]) => {
            let name = body["Name"].as_str().unwrap_or_default().to_string();
            if ["bridge", "host", "none"].contains(&name.as_str()) {
                let msg = json!({"message": format!("operation is not permitted on predefined {name} network ")});
                return ("403 Forbidden", msg.to_string());
            }
            if find(st, &name).is_some() {
                let msg = json!({"message": format!("network with name {name} already exists")});
                return ("409 Conflict", msg.to_string());
            }
            let id = format!("{:064x}", st.nets.len() + 0xabc);
            st.nets
                .push(json!({"Name": name, "Id": id, "Driver": body["Driver"], "Scope": "local"}));
            // No `Warning`: the client must not insist on it.
            ("201 Created", json!({"Id": id}).to_string())
        }
        ("GET", ["networks", id]) => match find(st, id) {
            Some(i) => ("200 OK", st.nets[i].to_string()),
            None => ("404 Not Found", not_found(id)),
        },
        ("DELETE", ["networks", "bridge"]) => (
            "403 Forbidden",
            r#"{"message":"bridge is a pre-defined network and cannot be removed"}"#.into(),
        ),
        ("DELETE", ["networks", id]) => match find(st, id) {
            Some(i) => {
                st.nets.remove(i);
                ("204 No Content", String::new())
            }
            None => ("404 Not Found", not_found(id)),
        },
        ("POST", ["networks", id, "connect" | "disconnect"]) => match find(st, id) {
            Some(_) => ("200 OK", String::new()),
            None => ("404 Not Found", not_found(id)),
        },
        ("POST", ["networks", "prune"]) => {
            let names: Vec<Value> = st.nets.drain(..).map(|n| n["Name"].clone()).collect();
            ("200 OK", json!({"NetworksDeleted": names}).to_string())
        }
        _ => ("404 Not Found", r#"{"message":"page not found"}"#.into()),
    }
}

async fn handle(mut s: UnixStream, st: Shared) {
    let Some((method, target, body)) = common::read_json_request(&mut s).await else {
        return;
    };
    let path = target.split('?').next().unwrap_or_default();
    let path = path
        .strip_prefix("/v1.47")
        .or_else(|| path.strip_prefix("/v1.43"))
        .unwrap_or(path);
    let path = path.replace("%20", " ");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, answer) = {
        let mut g = st.lock().unwrap();
        g.log.push((format!("{method} {target}"), body.clone()));
        route(&mut g, &method, &parts, &body)
    };
    common::reply(&mut s, status, &answer).await;
}

fn start(name: &str) -> (Client, Shared, common::DirGuard) {
    let st: Shared = Arc::default();
    let (sock, dir) = common::serve("berth-client-net", name, st.clone(), handle);
    (Client::new(Host::Unix(sock)), st, dir)
}

fn last(st: &Shared) -> (String, Value) {
    st.lock().unwrap().log.last().cloned().unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn create_list_inspect_remove() {
    let (c, st, _dir) = start("crud");
    let req = NetworkCreateRequest {
        name: "web".into(),
        driver: Some("bridge".into()),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(vec![IpamConfig {
                subnet: Some("10.9.0.0/24".into()),
                gateway: Some("10.9.0.1".into()),
                ..Default::default()
            }]),
            options: None,
        }),
        labels: Some(HashMap::from([("a".to_string(), "1".to_string())])),
        ..Default::default()
    };
    let created = c.network_create(&req).await.unwrap();
    assert_eq!(created.id.len(), 64);
    assert_eq!(created.warning, "");
    let (line, body) = last(&st);
    assert_eq!(line, "POST /v1.47/networks/create");
    assert_eq!(
        body,
        json!({"Name": "web", "Driver": "bridge", "Labels": {"a": "1"},
               "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]}})
    );

    // Docker's conflict and forbidden answers reach the caller with their status and wording.
    let e = c.network_create(&req).await.unwrap_err();
    assert!(e.is_conflict());
    assert_eq!(
        e.to_string(),
        "Error response from daemon: network with name web already exists"
    );
    let bridge = NetworkCreateRequest {
        name: "bridge".into(),
        ..Default::default()
    };
    let e = c.network_create(&bridge).await.unwrap_err();
    assert!(e.is_forbidden(), "{e}");

    // An older API: Docker's client asks the daemon to refuse duplicate names.
    let mut old = c.clone();
    old.set_api_version("1.43");
    let other = NetworkCreateRequest {
        name: "old".into(),
        ..Default::default()
    };
    old.network_create(&other).await.unwrap();
    let (line, body) = last(&st);
    assert_eq!(line, "POST /v1.43/networks/create");
    assert_eq!(body, json!({"Name": "old", "CheckDuplicate": true}));
    old.network_remove("old").await.unwrap();

    let mut f = Filters::new();
    f.insert("name".into(), vec!["web".into()]);
    let list = c.network_list(&f).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["Name"], "web");
    assert_eq!(
        last(&st).0,
        "GET /v1.47/networks?filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D"
    );

    let v = c.network_inspect("web").await.unwrap();
    assert_eq!(v["Id"], created.id.as_str());
    let o = NetworkInspectOptions {
        verbose: true,
        scope: Some("local".into()),
    };
    let raw = c.network_inspect_raw("web", &o).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&raw).unwrap()["Name"], "web");
    assert_eq!(last(&st).0, "GET /v1.47/networks/web?verbose=true&scope=local");
    let e = c.network_inspect("nope").await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "Error response from daemon: network nope not found");

    let e = c.network_remove("bridge").await.unwrap_err();
    assert!(e.is_forbidden());
    assert_eq!(
        e.daemon_message(),
        Some("bridge is a pre-defined network and cannot be removed")
    );
    c.network_remove("web").await.unwrap();
    assert_eq!(last(&st).0, "DELETE /v1.47/networks/web");
    assert!(c.network_remove("web").await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "current_thread")]
async fn connect_disconnect_prune() {
    let (c, st, _dir) = start("connect");
    let req = NetworkCreateRequest {
        name: "back end".into(),
        ..Default::default()
    };
    c.network_create(&req).await.unwrap();
    let connect = NetworkConnectRequest {
        container: Some("db".into()),
        endpoint_config: Some(EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some("10.1.0.5".into()),
                ..Default::default()
            }),
            aliases: Some(vec!["database".into()]),
            ..Default::default()
        }),
    };
    c.network_connect("back end", &connect).await.unwrap();
    let (line, body) = last(&st);
    assert_eq!(line, "POST /v1.47/networks/back%20end/connect");
    assert_eq!(
        body,
        json!({"Container": "db", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.1.0.5"}, "Aliases": ["database"]}})
    );
    c.network_disconnect("back end", "db", true).await.unwrap();
    let (line, body) = last(&st);
    assert_eq!(line, "POST /v1.47/networks/back%20end/disconnect");
    assert_eq!(body, json!({"Container": "db", "Force": true}));
    let e = c.network_connect("nope", &connect).await.unwrap_err();
    assert_eq!(e.to_string(), "Error response from daemon: network nope not found");

    let mut f = Filters::new();
    f.insert("until".into(), vec!["24h".into()]);
    let report = c.networks_prune(&f).await.unwrap();
    assert_eq!(report.networks_deleted, Some(vec!["back end".to_string()]));
    assert_eq!(
        last(&st).0,
        "POST /v1.47/networks/prune?filters=%7B%22until%22%3A%7B%2224h%22%3Atrue%7D%7D"
    );
}
