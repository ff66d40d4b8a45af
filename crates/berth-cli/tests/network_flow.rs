//! `berth network ...`, `run --network ...`, `port` and `ps` against a small fake daemon, asserting
//! what a user sees: stdout, stderr and the exit code. Each command runs in a child process (this
//! test binary re-executed, see `child_berth`) so its output can be read back exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{seen, Seen};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

mod common;

const CHILD_ENV: &str = "BERTH_NETWORK_FLOW_CHILD_ARGS";

/// Not a test of its own: when the parent sets `CHILD_ENV`, runs berth with those arguments and
/// exits with its code (the markers separate berth's output from the test harness's).
#[test]
fn child_berth() {
    common::child_main(CHILD_ENV);
}

#[derive(Default)]
struct State {
    /// `METHOD /path?query` and the JSON body of each request.
    log: Vec<(String, Value)>,
    nets: Vec<Value>,
}

type Shared = Arc<Mutex<State>>;

fn net(name: &str, id: &str, driver: &str) -> Value {
    json!({"Name": name, "Id": id, "Created": "2026-01-02T03:04:05.5Z", "Scope": "local", "Driver": driver,
           "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": []},
           "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""},
           "ConfigOnly": false, "Containers": {}, "Options": {}, "Labels": {}})
}

fn route(st: &mut State, method: &str, path: &str, body: &Value) -> (&'static str, String) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let find = |st: &State, id: &str| {
        st.nets
            .iter()
            .position(|n| n["Name"] == id || n["Id"].as_str().is_some_and(|i| i.starts_with(id)))
    };
    let not_found = |id: &str| json!({"message": format!("network {id} not found")}).to_string();
    match (method, parts.as_slice()) {
        ("GET", ["_ping"]) => ("200 OK", "OK".into()),
        ("GET", ["networks"]) => ("200 OK", Value::Array(st.nets.clone()).to_string()),
        ("POST", ["networks", "create"]) => {
            let name = body["Name"].as_str().unwrap_or_default();
            if find(st, name).is_some() {
                let msg = json!({"message": format!("network with name {name} already exists")});
                return ("409 Conflict", msg.to_string());
            }
            let id = format!("{:064x}", 0xfeed + st.nets.len());
            st.nets
                .push(net(name, &id, body["Driver"].as_str().unwrap_or("bridge")));
            ("201 Created", json!({"Id": id, "Warning": ""}).to_string())
        }
        ("GET", ["networks", id]) => match find(st, id) {
            Some(i) => ("200 OK", st.nets[i].to_string()),
            None => ("404 Not Found", not_found(id)),
        },
        ("DELETE", ["networks", "bridge" | "host" | "none"]) => {
            let msg = json!({"message": format!("{} is a pre-defined network and cannot be removed", parts[1])});
            ("403 Forbidden", msg.to_string())
        }
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
            let builtin = |n: &Value| matches!(n["Name"].as_str(), Some("bridge" | "host" | "none"));
            let deleted: Vec<Value> = st
                .nets
                .iter()
                .filter(|n| !builtin(n))
                .map(|n| n["Name"].clone())
                .collect();
            st.nets.retain(builtin);
            ("200 OK", json!({"NetworksDeleted": deleted}).to_string())
        }
        ("POST", ["containers", "create"]) => {
            ("201 Created", json!({"Id": "c".repeat(64), "Warnings": []}).to_string())
        }
        ("POST", ["containers", _, "start"]) => ("204 No Content", String::new()),
        ("GET", ["containers", "json"]) => {
            let c = json!([{"Id": "c".repeat(64), "Names": ["/web"], "Image": "bb", "Command": "sh",
                "Created": 0, "State": "running", "Status": "Up 1 second",
                "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                          {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                          {"PrivatePort": 443, "Type": "tcp"}]}]);
            ("200 OK", c.to_string())
        }
        ("GET", ["containers", "app", "json"]) => {
            let c = json!({"Id": "c".repeat(64), "NetworkSettings": {"Ports": {
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
                "443/tcp": null}}});
            ("200 OK", c.to_string())
        }
        _ => ("404 Not Found", r#"{"message":"page not found"}"#.into()),
    }
}

async fn handle(mut s: UnixStream, st: Shared) {
    let Some((method, target, body)) = common::read_json_request(&mut s).await else {
        return;
    };
    let path = target.split('?').next().unwrap_or_default();
    let path = path.strip_prefix("/v1.47").unwrap_or(path).to_string();
    let (status, answer) = {
        let mut g = st.lock().unwrap();
        if !path.ends_with("_ping") {
            g.log.push((format!("{method} {target}"), body.clone()));
        }
        route(&mut g, &method, &path, &body)
    };
    let msg = common::response_or_no_content(status, &answer);
    let _ = s.write_all(msg.as_bytes()).await;
}

type Daemon = common::Daemon<State>;

fn start_daemon(name: &str) -> Daemon {
    let st: Shared = Arc::default();
    {
        let mut g = st.lock().unwrap();
        g.nets.push(net("bridge", &"b".repeat(64), "bridge"));
        g.nets.push(net("host", &"4".repeat(64), "host"));
        g.nets.push(net("none", &"0".repeat(64), "null"));
    }
    common::start_daemon("berth-cli-net", name, st, handle)
}

fn berth(sock: &Path, args: &[&str]) -> Seen {
    common::berth_in(CHILD_ENV, sock, args, "")
}

fn last_body(d: &Daemon) -> (String, Value) {
    d.st.lock().unwrap().log.last().cloned().unwrap()
}

#[test]
fn network_create_ls_inspect_rm() {
    let d = start_daemon("crud");
    let id = format!("{:064x}", 0xfeed + 3);
    assert_eq!(
        berth(
            &d.sock,
            &[
                "network",
                "create",
                "--subnet",
                "10.5.0.0/24",
                "--gateway",
                "10.5.0.1",
                "web"
            ]
        ),
        seen(&format!("{id}\n"), "", 0)
    );
    let (line, body) = last_body(&d);
    assert_eq!(line, "POST /v1.47/networks/create");
    assert_eq!(
        body["IPAM"]["Config"],
        json!([{"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.1"}])
    );
    assert_eq!(
        berth(&d.sock, &["network", "create", "web"]),
        seen(
            "",
            "Error response from daemon: network with name web already exists\n",
            1
        )
    );
    assert_eq!(
        berth(
            &d.sock,
            &[
                "network",
                "create",
                "--subnet",
                "10.0.0.0/24",
                "--gateway",
                "10.9.0.1",
                "x"
            ]
        ),
        seen("", "no matching subnet for gateway 10.9.0.1\n", 1)
    );

    assert_eq!(
        berth(&d.sock, &["network", "ls"]),
        seen(
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             bbbbbbbbbbbb   bridge    bridge    local\n\
             444444444444   host      host      local\n\
             000000000000   none      null      local\n\
             000000000000   web       bridge    local\n",
            "",
            0
        )
    );
    let ls = berth(&d.sock, &["network", "ls", "-q", "--no-trunc", "-f", "driver=bridge"]);
    assert_eq!(ls.code, 0);
    assert_eq!(ls.out.lines().last(), Some(id.as_str()));
    assert_eq!(
        last_body(&d).0,
        "GET /v1.47/networks?filters=%7B%22driver%22%3A%7B%22bridge%22%3Atrue%7D%7D"
    );

    let inspect = berth(&d.sock, &["network", "inspect", "web", "nope"]);
    assert_eq!(inspect.code, 1);
    assert_eq!(inspect.err, "Error response from daemon: network nope not found\n");
    // Docker's layout: a JSON array indented by four spaces, the daemon's object inside.
    assert!(
        inspect.out.starts_with("[\n    {\n        \"Attachable\": false,\n"),
        "{}",
        inspect.out
    );
    let arr: Value = serde_json::from_str(&inspect.out).unwrap();
    assert_eq!(arr.as_array().map(Vec::len), Some(1));
    assert_eq!(arr[0]["Name"], "web");
    assert!(inspect.out.ends_with("\n    }\n]\n"), "{}", inspect.out);
    assert_eq!(
        berth(
            &d.sock,
            &[
                "network",
                "inspect",
                "-f",
                "{{.Name}} {{.Driver}} {{.Scope}}",
                "web",
                "bridge"
            ]
        ),
        seen("web bridge local\nbridge bridge local\n", "", 0)
    );
    assert_eq!(
        berth(&d.sock, &["network", "inspect", "nope"]),
        seen("[]\n", "Error response from daemon: network nope not found\n", 1)
    );

    // The generic `inspect` finds networks after containers and images.
    assert_eq!(
        berth(&d.sock, &["inspect", "-f", "{{.Name}}", "web"]),
        seen("web\n", "", 0)
    );
    assert_eq!(
        berth(
            &d.sock,
            &["inspect", "--type", "network", "-f", "{{.Driver}}", "bridge"]
        ),
        seen("bridge\n", "", 0)
    );

    assert_eq!(
        berth(&d.sock, &["network", "rm", "nope", "web", "bridge"]),
        seen(
            "web\n",
            "Error response from daemon: network nope not found\n\
             Error response from daemon: bridge is a pre-defined network and cannot be removed\n",
            1
        )
    );
    assert_eq!(berth(&d.sock, &["network", "remove", "-f", "nope"]), seen("", "", 0));
}

#[test]
fn network_connect_disconnect_prune() {
    let d = start_daemon("connect");
    assert_eq!(berth(&d.sock, &["network", "create", "back"]).code, 0);
    assert_eq!(
        berth(
            &d.sock,
            &["network", "connect", "--ip", "10.5.0.9", "--alias", "db", "--link", "cache:c", "back", "ctr"]
        ),
        seen("", "", 0)
    );
    let (line, body) = last_body(&d);
    assert_eq!(line, "POST /v1.47/networks/back/connect");
    assert_eq!(
        body,
        json!({"Container": "ctr", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.5.0.9"},
               "Aliases": ["db"], "Links": ["cache:c"], "DriverOpts": {}}})
    );
    let bad = berth(&d.sock, &["network", "connect", "--link", "a:b:c", "back", "ctr"]);
    assert_eq!(bad.code, 125);
    assert!(
        bad.err
            .starts_with("invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c\n"),
        "{}",
        bad.err
    );
    assert_eq!(
        berth(&d.sock, &["network", "disconnect", "-f", "back", "ctr"]),
        seen("", "", 0)
    );
    assert_eq!(last_body(&d).1, json!({"Container": "ctr", "Force": true}));
    assert_eq!(
        berth(&d.sock, &["network", "disconnect", "nope", "ctr"]),
        seen("", "Error response from daemon: network nope not found\n", 1)
    );
    assert_eq!(
        berth(&d.sock, &["network", "prune", "-f", "--filter", "until=1h"]),
        seen("Deleted Networks:\nback\n\n", "", 0)
    );
    assert_eq!(
        last_body(&d).0,
        "POST /v1.47/networks/prune?filters=%7B%22until%22%3A%7B%221h%22%3Atrue%7D%7D"
    );
    assert_eq!(berth(&d.sock, &["network", "prune", "-f"]), seen("", "", 0));
}

#[test]
fn run_network_flags_ports_and_ps() {
    let d = start_daemon("run");
    let run = berth(
        &d.sock,
        &[
            "run",
            "-d",
            "--network",
            "front",
            "--network",
            "back",
            "--network-alias",
            "web",
            "--ip",
            "10.1.0.5",
            "--mac-address",
            "02:42:ac:11:00:04",
            "--add-host",
            "gw=host-gateway",
            "--dns-search",
            "example.com",
            "-P",
            "bb",
        ],
    );
    assert_eq!(run, seen(&format!("{}\n", "c".repeat(64)), "", 0));
    let create =
        d.st.lock()
            .unwrap()
            .log
            .iter()
            .find(|(l, _)| l.starts_with("POST /v1.47/containers/create"))
            .cloned()
            .unwrap()
            .1;
    assert_eq!(create["HostConfig"]["NetworkMode"], "front");
    assert_eq!(create["HostConfig"]["ExtraHosts"], json!(["gw:host-gateway"]));
    assert_eq!(create["HostConfig"]["DnsSearch"], json!(["example.com"]));
    assert_eq!(create["HostConfig"]["PublishAllPorts"], true);
    assert_eq!(
        create["NetworkingConfig"]["EndpointsConfig"],
        json!({"front": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}, "MacAddress": "02:42:ac:11:00:04"},
               "back": {}})
    );
    assert_eq!(create.get("MacAddress"), None);

    let bad = berth(&d.sock, &["run", "--network", "host", "--network", "back", "bb"]);
    assert_eq!(bad.code, 125);
    assert!(
        bad.err
            .contains(": conflicting options: cannot attach both user-defined and non-user-defined network-modes\n"),
        "{}",
        bad.err
    );

    assert_eq!(
        berth(&d.sock, &["port", "app"]),
        seen("80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n", "", 0)
    );
    assert_eq!(
        berth(&d.sock, &["port", "app", "443"]),
        seen("", "Error: No public port '443' published for app\n", 1)
    );
    let ps = berth(&d.sock, &["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps, seen("443/tcp, 0.0.0.0:8080->80/tcp, :::8080->80/tcp\n", "", 0));
}
