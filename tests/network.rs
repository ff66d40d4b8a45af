//! Networking end to end: the default bridge, user-defined networks with the embedded DNS server,
//! published ports through kernel NAT, links, connect/disconnect, macvlan, IPv6, restarts and leaks,
//! driven through `berth`, the real docker CLI and the Docker SDK for Python. Each test's daemon runs
//! in a network namespace of its own (see `common`), so all traffic stays between its containers and
//! that namespace's loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, inspect, ok, Daemon};
use std::io::{Read, Write};
use std::time::Duration;

/// An HTTP GET from the daemon's namespace (the "host" of the test), body or the error.
fn http_get(d: &Daemon, addr: &str, path: &str) -> Result<String, String> {
    let (addr, path) = (addr.to_string(), path.to_string());
    d.in_netns(move || {
        let mut s = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    })
}

fn veths(d: &Daemon) -> usize {
    let out = d
        .netns_cmd("ip")
        .args(["-o", "link", "show", "type", "veth"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn default_bridge_gives_an_address_a_route_and_etc_files() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--hostname",
            "box",
            "bb",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route; cat /etc/hosts",
        ],
    );
    assert!(out.contains("inet 172.17.0.2/16"), "{out}");
    assert!(out.contains("default via 172.17.0.1 dev eth0"), "{out}");
    assert!(out.contains("172.17.0.2\tbox\n"), "{out}");

    ok(&d, &["run", "-d", "--name", "web", "bb", "sleep", "600"]);
    let c = inspect(&d, "web");
    let ns = &c["NetworkSettings"];
    let ip = ns["IPAddress"].as_str().unwrap();
    assert!(ip.starts_with("172.17.0."), "{ns}");
    assert_eq!(ns["Gateway"], "172.17.0.1");
    assert_eq!(ns["IPPrefixLen"], 16);
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let mac = format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    assert_eq!(ns["MacAddress"], mac.as_str());
    assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ip);
    assert_eq!(c["HostConfig"]["NetworkMode"], "bridge");
    // The host (the daemon's namespace) reaches the container on the bridge.
    let ping = d
        .netns_cmd("busybox")
        .args(["ping", "-c", "1", "-W", "2", ip])
        .output()
        .unwrap();
    assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));
    // Stopped: the address is given back and no longer shown.
    ok(&d, &["stop", "-t", "0", "web"]);
    let c = inspect(&d, "web");
    assert_eq!(c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], "");
    let net: serde_json::Value = serde_json::from_str(&ok(&d, &["network", "inspect", "bridge"])).unwrap();
    assert_eq!(net[0]["Containers"], serde_json::json!({}));
    assert_eq!(net[0]["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16");
    assert_eq!(net[0]["Options"]["com.docker.network.bridge.name"], "berth0");
}

#[test]
fn user_networks_resolve_names_aliases_and_ids_and_stay_apart() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let id = ok(&d, &["network", "create", "--label", "team=a", "front"]);
    assert_eq!(id.trim().len(), 64);
    ok(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--gateway",
            "10.77.0.254",
            "back",
        ],
    );
    let web = ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "front",
            "--network-alias",
            "www",
            "bb",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ],
    );
    let short = &web.trim()[..12];
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "front",
            "bb",
            "sh",
            "-c",
            &format!(
                "cat /etc/resolv.conf; nslookup web; nslookup www; nslookup {short}; wget -qO- http://www/hostname"
            ),
        ],
    );
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert_eq!(out.matches("Address: 172.").count(), 3, "{out}");
    assert!(out.contains(short), "{out}");
    // Another network does not see it.
    let r = d.berth(&["run", "--rm", "--network", "back", "bb", "nslookup", "web"]);
    assert_ne!(r.code, 0, "{r:?}");
    let ip = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "back",
            "--ip",
            "10.77.0.9",
            "bb",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route",
        ],
    );
    assert!(ip.contains("10.77.0.9/24"), "{ip}");
    assert!(ip.contains("default via 10.77.0.254"), "{ip}");
    // ls, filters and inspect as Docker shows them.
    let ls = ok(
        &d,
        &[
            "network",
            "ls",
            "--filter",
            "label=team=a",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ],
    );
    assert_eq!(ls, "front bridge local\n");
    let builtin = ok(&d, &["network", "ls", "-f", "type=builtin", "--format", "{{.Name}}"]);
    assert_eq!(builtin, "bridge\nhost\nnone\n");
    let net: serde_json::Value = serde_json::from_str(&ok(&d, &["network", "inspect", "front"])).unwrap();
    let containers = net[0]["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[web.trim()]["Name"], "web");
    // In use: refused; once the container is gone: removed.
    let r = d.berth(&["network", "rm", "front"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("has active endpoints"), "{r:?}");
    ok(&d, &["rm", "-f", "web"]);
    assert_eq!(ok(&d, &["network", "rm", "front", "back"]), "front\nback\n");
}

#[test]
fn published_ports_answer_on_loopback_and_go_away_with_the_container() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(
        &d,
        &[
            "run", "-d", "--name", "pub", "-p", "18080:80", "--expose", "9999", "bb", "httpd", "-f", "-p", "80", "-h",
            "/etc",
        ],
    );
    let hostname = inspect(&d, "pub")["Config"]["Hostname"].as_str().unwrap().to_string();
    let mut body = Err(String::new());
    assert!(eventually(Duration::from_secs(5), || {
        body = http_get(&d, "127.0.0.1:18080", "/hostname");
        body.is_ok()
    }));
    assert!(body.unwrap().contains(&hostname));
    let ps = ok(&d, &["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains("0.0.0.0:18080->80/tcp"), "{ps}");
    assert!(ps.contains("9999/tcp"), "{ps}");
    assert_eq!(ok(&d, &["port", "pub", "80"]), "0.0.0.0:18080\n");
    let ports = &inspect(&d, "pub")["NetworkSettings"]["Ports"];
    assert_eq!(ports["80/tcp"][0]["HostPort"], "18080");
    assert_eq!(ports["9999/tcp"], serde_json::Value::Null);
    // Another container reaches it through the host's address on the bridge (hairpin through NAT).
    let out = ok(
        &d,
        &["run", "--rm", "bb", "wget", "-qO-", "http://172.17.0.1:18080/hostname"],
    );
    assert!(out.contains(&hostname), "{out}");
    // The port is taken while it runs.
    let r = d.berth(&["run", "-d", "-p", "18080:80", "bb", "sleep", "60"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("port is already allocated"), "{r:?}");
    // -P picks free host ports for the exposed ones.
    ok(
        &d,
        &[
            "run", "-d", "--name", "all", "-P", "--expose", "80", "bb", "httpd", "-f", "-p", "80", "-h", "/etc",
        ],
    );
    let port = ok(&d, &["port", "all", "80"]);
    let host_port = port.trim().rsplit(':').next().unwrap().to_string();
    assert!(host_port.parse::<u16>().unwrap() >= 1024, "{port}");
    assert!(eventually(Duration::from_secs(5), || http_get(
        &d,
        &format!("127.0.0.1:{host_port}"),
        "/hostname"
    )
    .is_ok()));
    // Stopped: nothing answers any more, and the port is free again.
    ok(&d, &["stop", "-t", "0", "pub"]);
    assert!(http_get(&d, "127.0.0.1:18080", "/hostname").is_err());
    ok(&d, &["run", "-d", "-p", "18080:80", "bb", "sleep", "60"]);
}

#[test]
fn addresses_ports_and_names_survive_a_daemon_crash() {
    let mut d = Daemon::start();
    d.load_busybox("bb");
    ok(&d, &["network", "create", "app"]);
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "one",
            "--network",
            "app",
            "-p",
            "18081:80",
            "bb",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ],
    );
    let ip1 = inspect(&d, "one")["NetworkSettings"]["Networks"]["app"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    d.kill9();
    d.restart();
    // The running container keeps its address; a new one gets another.
    let again = inspect(&d, "one")["NetworkSettings"]["Networks"]["app"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(again, ip1);
    ok(
        &d,
        &["run", "-d", "--name", "two", "--network", "app", "bb", "sleep", "600"],
    );
    let ip2 = inspect(&d, "two")["NetworkSettings"]["Networks"]["app"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(ip1, ip2);
    // Its port and its name still work.
    assert!(eventually(Duration::from_secs(5), || http_get(
        &d,
        "127.0.0.1:18081",
        "/hostname"
    )
    .is_ok()));
    let out = ok(&d, &["exec", "two", "nslookup", "one"]);
    assert!(out.contains(&ip1), "{out}");
    // A container that ended while the daemon was away gives everything back.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "three",
            "--network",
            "app",
            "-p",
            "18082:80",
            "bb",
            "sleep",
            "1",
        ],
    );
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    d.restart();
    assert!(eventually(Duration::from_secs(5), || {
        inspect(&d, "three")["State"]["Running"] == false
    }));
    ok(&d, &["run", "-d", "-p", "18082:80", "bb", "sleep", "60"]);
}

#[test]
fn a_hundred_runs_leave_no_veth_rule_or_address_behind() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(&d, &["network", "create", "--subnet", "10.78.0.0/28", "small"]);
    // A /28 has 13 addresses for containers: 100 runs only fit if every one is given back.
    for i in 0..100 {
        let name = format!("c{i}");
        ok(
            &d,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "small",
                "-p",
                "18090:80",
                "bb",
                "sleep",
                "60",
            ],
        );
        ok(&d, &["rm", "-f", &name]);
    }
    assert!(
        eventually(Duration::from_secs(10), || veths(&d) == 0),
        "veths left: {}",
        veths(&d)
    );
    let endpoints = d.data_root().join("network/endpoints");
    assert_eq!(std::fs::read_dir(&endpoints).unwrap().count(), 0);
    let rules = d.in_netns(|| {
        berth_network::firewall::Firewall::new()
            .and_then(|f| f.list())
            .unwrap()
            .into_iter()
            .filter(|r| matches!(r.owner, Some(berth_network::firewall::rule::Owner::Container(_))))
            .count()
    });
    assert_eq!(rules, 0);
}

#[test]
fn links_give_hosts_entries_and_docker_variables() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "-e",
            "PGDATA=/data",
            "--expose",
            "5432",
            "bb",
            "sleep",
            "600",
        ],
    );
    let ip = inspect(&d, "db")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--name",
            "web",
            "--link",
            "db:mydb",
            "bb",
            "sh",
            "-c",
            "env; cat /etc/hosts; ping -c1 -W2 mydb >/dev/null && echo pinged",
        ],
    );
    assert!(out.contains(&format!("MYDB_PORT_5432_TCP_ADDR={ip}")), "{out}");
    assert!(out.contains("MYDB_ENV_PGDATA=/data"), "{out}");
    assert!(out.contains("MYDB_NAME=/web/mydb"), "{out}");
    assert!(out.contains(&format!("{ip}\tmydb")), "{out}");
    assert!(out.contains("pinged"), "{out}");
    let r = d.berth(&["run", "--rm", "--link", "nope:x", "bb", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
}

#[test]
fn dns_options_extra_hosts_and_namespace_modes() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--dns",
            "10.1.2.3",
            "--dns-search",
            "corp.example",
            "--dns-option",
            "ndots:3",
            "--add-host",
            "gw:host-gateway",
            "--add-host",
            "db.local:10.0.0.7",
            "bb",
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts",
        ],
    );
    assert!(out.contains("nameserver 10.1.2.3\n"), "{out}");
    assert!(out.contains("search corp.example\n"), "{out}");
    assert!(out.contains("options ndots:3\n"), "{out}");
    assert!(out.contains("172.17.0.1\tgw\n"), "{out}");
    assert!(out.contains("10.0.0.7\tdb.local\n"), "{out}");
    let none = ok(&d, &["run", "--rm", "--network", "none", "bb", "ip", "-o", "link"]);
    assert_eq!(none.lines().count(), 1, "{none}");
    ok(&d, &["run", "-d", "--name", "base", "bb", "sleep", "600"]);
    let ip = inspect(&d, "base")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let shared = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:base",
            "bb",
            "ip",
            "-4",
            "-o",
            "addr",
        ],
    );
    assert!(shared.contains(&ip), "{shared}");
    let host = ok(&d, &["run", "--rm", "--network", "host", "bb", "ip", "-o", "link"]);
    assert!(host.contains("berth0"), "{host}");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(&d, &["network", "create", "extra"]);
    ok(&d, &["run", "-d", "--name", "c1", "bb", "sleep", "600"]);
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "peer",
            "--network",
            "extra",
            "bb",
            "sleep",
            "600",
        ],
    );
    ok(&d, &["network", "connect", "--alias", "one", "extra", "c1"]);
    let links = ok(&d, &["exec", "c1", "ip", "-o", "link"]);
    assert!(links.contains("eth1"), "{links}");
    let out = ok(&d, &["exec", "peer", "nslookup", "one"]);
    let ip = inspect(&d, "c1")["NetworkSettings"]["Networks"]["extra"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(out.contains(&ip), "{out}");
    let r = d.berth(&["network", "connect", "extra", "c1"]);
    assert_ne!(r.code, 0, "{r:?}");
    ok(&d, &["network", "disconnect", "extra", "c1"]);
    let links = ok(&d, &["exec", "c1", "ip", "-o", "link"]);
    assert!(!links.contains("eth1"), "{links}");
    assert!(inspect(&d, "c1")["NetworkSettings"]["Networks"].get("extra").is_none());
    let r = d.berth(&["network", "disconnect", "extra", "c1"]);
    assert_ne!(r.code, 0, "{r:?}");
    // Connected while stopped: joined at the next start.
    ok(&d, &["create", "--name", "later", "bb", "sleep", "600"]);
    ok(&d, &["network", "connect", "extra", "later"]);
    ok(&d, &["start", "later"]);
    let links = ok(&d, &["exec", "later", "ip", "-o", "link"]);
    assert!(links.contains("eth1"), "{links}");
}

#[test]
fn macvlan_and_ipv6_networks() {
    let d = Daemon::start();
    d.load_busybox("bb");
    // A parent interface of the test's own, in the daemon's namespace.
    let st = d
        .netns_cmd("ip")
        .args(["link", "add", "mvp0", "type", "veth", "peer", "name", "mvp1"])
        .status()
        .unwrap();
    assert!(st.success());
    d.netns_cmd("ip").args(["link", "set", "mvp0", "up"]).status().unwrap();
    d.netns_cmd("ip").args(["link", "set", "mvp1", "up"]).status().unwrap();
    ok(
        &d,
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            "parent=mvp0",
            "--subnet",
            "10.79.0.0/24",
            "mv",
        ],
    );
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "m1",
            "--network",
            "mv",
            "--ip",
            "10.79.0.10",
            "bb",
            "sleep",
            "600",
        ],
    );
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "mv",
            "bb",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "10.79.0.10",
        ],
    );
    assert!(out.contains("1 packets received"), "{out}");
    let r = d.berth(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=nosuch0",
        "--subnet",
        "10.80.0.0/24",
        "bad",
    ]);
    assert_ne!(r.code, 0, "{r:?}");

    ok(&d, &["network", "create", "--ipv6", "--subnet", "fd00:77::/64", "v6"]);
    ok(
        &d,
        &["run", "-d", "--name", "six", "--network", "v6", "bb", "sleep", "600"],
    );
    let c = inspect(&d, "six");
    let v6 = c["NetworkSettings"]["Networks"]["v6"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(v6.starts_with("fd00:77::"), "{c}");
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "v6",
            "bb",
            "ping",
            "-6",
            "-c",
            "1",
            "-W",
            "3",
            &v6,
        ],
    );
    assert!(out.contains("1 packets received"), "{out}");
}

#[test]
fn bad_network_input_is_refused_with_nothing_made() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let api = |method: &str, path: &str, body: &str| d.api(method, path, Some(body.as_bytes()));
    ok(&d, &["network", "create", "--subnet", "10.81.0.0/16", "a"]);
    let (s, b) = api(
        "POST",
        "/networks/create",
        r#"{"Name":"b","IPAM":{"Config":[{"Subnet":"10.81.5.0/24"}]}}"#,
    );
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("overlaps"));
    let (s, _) = api(
        "POST",
        "/networks/create",
        r#"{"Name":"c","IPAM":{"Config":[{"Subnet":"10.300.0.0/16"}]}}"#,
    );
    assert_eq!(s, 400);
    let (s, _) = api("POST", "/networks/create", r#"{"Name":"../etc"}"#);
    assert_eq!(s, 400);
    let (s, _) = api("POST", "/networks/create", r#"{"Name":"a"}"#);
    assert_eq!(s, 409);
    let (s, _) = api("POST", "/networks/create", r#"{"Name":"d","Driver":"nosuch"}"#);
    assert_eq!(s, 404);
    let (s, _) = d.api("DELETE", "/networks/bridge", None);
    assert_eq!(s, 403);
    let (s, _) = d.api("GET", "/networks/nosuch", None);
    assert_eq!(s, 404);
    let r = d.berth(&["run", "--rm", "--network", "nosuch", "bb", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("network nosuch not found"), "{r:?}");
    let r = d.berth(&["run", "--rm", "--ip", "172.17.0.50", "bb", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("user defined networks"), "{r:?}");
    let r = d.berth(&["run", "--rm", "--network", "a", "--ip", "10.99.0.5", "bb", "true"]);
    assert_ne!(r.code, 0);
    // Nothing half-made: only the predefined networks and `a`.
    let names = ok(&d, &["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names, "a\nbridge\nhost\nnone\n");
    assert_eq!(veths(&d), 0);
}

#[test]
fn docker_cli_and_sdk_drive_networks() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let r = d.docker(&["network", "create", "--subnet", "10.82.0.0/24", "dnet"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "--network",
        "dnet",
        "-p",
        "18083:80",
        "bb",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["port", "dweb"]);
    assert!(r.stdout.contains("80/tcp -> 0.0.0.0:18083"), "{r:?}");
    let r = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "dnet",
    ]);
    assert!(r.stdout.starts_with("dweb 10.82.0."), "{r:?}");
    assert!(eventually(Duration::from_secs(5), || http_get(
        &d,
        "127.0.0.1:18083",
        "/hostname"
    )
    .is_ok()));
    let r = d.docker(&["ps", "--format", "{{.Ports}} {{.Networks}}"]);
    assert!(r.stdout.contains("0.0.0.0:18083->80/tcp dnet"), "{r:?}");

    let probe = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import docker"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: the Docker SDK for Python is missing (apt-get install python3-docker)");
        return;
    }
    let script = r#"
import docker
c = docker.from_env()
n = c.networks.create("pynet", driver="bridge", labels={"k": "v"})
ctr = c.containers.run("bb", "sleep 600", detach=True, name="pyc", network="pynet")
n.reload()
assert list(n.attrs["Containers"].keys()) == [ctr.id], n.attrs
ctr.reload()
ip = ctr.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
print("ip", ip)
n.disconnect(ctr)
ctr.reload()
assert "pynet" not in ctr.attrs["NetworkSettings"]["Networks"], ctr.attrs["NetworkSettings"]
ctr.remove(force=True)
n.remove()
print("names", sorted(x.name for x in c.networks.list()))
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("names ['bridge', 'dnet', 'host', 'none']"), "{stdout}");
}

#[test]
fn rename_link_removal_filters_internal_networks_and_events() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(&d, &["network", "create", "--internal", "inside"]);
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "old",
            "--network",
            "inside",
            "bb",
            "sleep",
            "600",
        ],
    );
    // Internal: no default route, and names still resolve.
    let routes = ok(&d, &["exec", "old", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    ok(&d, &["rename", "old", "renamed"]);
    let out = ok(&d, &["run", "--rm", "--network", "inside", "bb", "nslookup", "renamed"]);
    assert!(out.contains("Address: 172."), "{out}");
    // ps filters by network, published and exposed ports.
    ok(
        &d,
        &[
            "run", "-d", "--name", "pub", "-p", "18084:80", "--expose", "81", "bb", "sleep", "600",
        ],
    );
    assert_eq!(
        ok(&d, &["ps", "--filter", "network=inside", "--format", "{{.Names}}"]),
        "renamed\n"
    );
    assert_eq!(
        ok(&d, &["ps", "--filter", "publish=80", "--format", "{{.Names}}"]),
        "pub\n"
    );
    assert_eq!(
        ok(&d, &["ps", "--filter", "expose=81/tcp", "--format", "{{.Names}}"]),
        "pub\n"
    );
    // A legacy link is removed with `rm --link`.
    ok(&d, &["create", "--name", "child", "--link", "pub:alias", "bb", "true"]);
    let links = inspect(&d, "child")["HostConfig"]["Links"].clone();
    assert_eq!(links, serde_json::json!(["/pub:/child/alias"]));
    let (status, body) = d.api("DELETE", "/containers//child/alias?link=1", None);
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert_eq!(inspect(&d, "child")["HostConfig"]["Links"], serde_json::Value::Null);
    // Starting and stopping a container announces its network connects and disconnects.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let until = now.to_string();
    let r = d.docker(&[
        "events",
        "--since",
        "1",
        "--until",
        &until,
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert!(r.stdout.contains("create inside"), "{r:?}");
    assert!(r.stdout.contains("connect inside"), "{r:?}");
    assert!(r.stdout.contains("connect bridge"), "{r:?}");
}

#[test]
fn daemon_and_network_address_options() {
    let d = Daemon::start_with(&[
        "--bip",
        "10.84.0.1/24",
        "--fixed-cidr",
        "10.84.0.128/25",
        "--default-address-pool",
        "base=10.85.0.0/16,size=24",
    ]);
    d.load_busybox("bb");
    let out = ok(&d, &["run", "--rm", "bb", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(
        out.contains("inet 10.84.0.128/24") || out.contains("inet 10.84.0.129/24"),
        "{out}"
    );
    ok(&d, &["network", "create", "auto"]);
    let net: serde_json::Value = serde_json::from_str(&ok(&d, &["network", "inspect", "auto"])).unwrap();
    assert_eq!(net[0]["IPAM"]["Config"][0]["Subnet"], "10.85.0.0/24", "{net}");
    ok(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.83.0.0/24",
            "--ip-range",
            "10.83.0.128/25",
            "-o",
            "com.docker.network.bridge.name=brtest",
            "rng",
        ],
    );
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "rng",
            "bb",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(
        out.contains("inet 10.83.0.12") || out.contains("inet 10.83.0.13"),
        "{out}"
    );
    let links = d
        .netns_cmd("ip")
        .args(["-o", "link", "show", "brtest"])
        .output()
        .unwrap();
    assert!(links.status.success(), "no bridge brtest");
    ok(&d, &["network", "create", "--ipv6", "--subnet", "fd00:88::/64", "six"]);
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "six",
            "--ip6",
            "fd00:88::99",
            "bb",
            "ip",
            "-6",
            "-o",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(out.contains("fd00:88::99/64"), "{out}");
    ok(&d, &["network", "rm", "rng"]);
    let links = d
        .netns_cmd("ip")
        .args(["-o", "link", "show", "brtest"])
        .output()
        .unwrap();
    assert!(!links.status.success(), "bridge brtest left behind");
}

/// `-o com.docker.network.bridge.enable_icc=false`: containers on the network still resolve each
/// other, but cannot connect to each other; on a network with icc they can.
#[test]
fn icc_false_keeps_containers_on_a_network_apart() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(
        &d,
        &[
            "network",
            "create",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "quiet",
        ],
    );
    ok(&d, &["network", "create", "chatty"]);
    let probe =
        "nslookup web >/dev/null && echo resolved; timeout 3 wget -qO- http://web/hostname >/dev/null && echo reached";
    for net in ["quiet", "chatty"] {
        ok(
            &d,
            &[
                "run",
                "-d",
                "--name",
                "web",
                "--network",
                net,
                "bb",
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/etc",
            ],
        );
        let r = d.berth(&["run", "--rm", "--network", net, "bb", "sh", "-c", probe]);
        let want = if net == "quiet" {
            "resolved\n"
        } else {
            "resolved\nreached\n"
        };
        assert_eq!(r.stdout, want, "{net}: {r:?}");
        ok(&d, &["rm", "-f", "web"]);
    }
    let opts = d.api_json("/networks/quiet");
    assert_eq!(
        opts["Options"]["com.docker.network.bridge.enable_icc"], "false",
        "{opts}"
    );
}
