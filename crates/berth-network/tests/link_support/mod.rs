//! Helpers shared by the `link_*` tests: every namespace is a fresh, anonymous one made by the test
//! itself (the fd is the only reference, so dropping the guard — on success or on a panic —
//! destroys the namespace and every link in it). The real host's links are never touched.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use berth_network::driver::{EndpointSpec, NetworkSpec, SubnetSpec};
use berth_network::netns::{run_in, Netns};

/// A test namespace, labelled with the test's tag and the pid.
pub struct TestNs {
    pub ns: Netns,
}

impl TestNs {
    pub fn new(tag: &str) -> TestNs {
        let label = format!("berth-test-{tag}-{}", std::process::id());
        TestNs {
            ns: Netns::unshare(&label).expect("unshare a network namespace (needs root)"),
        }
    }

    pub fn handle(&self) -> Netns {
        self.ns.try_clone().unwrap()
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        // The namespace goes with its last fd; nothing is mounted or named on the host.
    }
}

pub fn network(id: &str, subnets: &[(&str, Option<&str>)], opts: &[(&str, &str)]) -> NetworkSpec {
    NetworkSpec {
        id: id.to_string(),
        name: format!("net-{id}"),
        driver: "bridge".into(),
        subnets: subnets
            .iter()
            .map(|(s, g)| SubnetSpec {
                subnet: s.parse().unwrap(),
                gateway: g.map(|g| g.parse().unwrap()),
            })
            .collect(),
        internal: false,
        enable_ipv6: false,
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub fn endpoint(net: &NetworkSpec, container: &str, addrs: &[&str], gws: &[&str]) -> EndpointSpec {
    EndpointSpec {
        network_id: net.id.clone(),
        container_id: container.to_string(),
        ifname: "eth0".into(),
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        mac: None,
        gateways: gws.iter().map(|g| g.parse().unwrap()).collect(),
        mtu: None,
    }
}

/// A TCP round trip: a listener on `server` inside `server_ns`, a client connecting from
/// `client_ns`; the server answers what it read, reversed.
pub fn tcp_roundtrip(server_ns: &Netns, server: IpAddr, client_ns: &Netns) {
    let listener = run_in(server_ns, move || TcpListener::bind(SocketAddr::new(server, 0)))
        .unwrap()
        .unwrap_or_else(|e| panic!("bind {server}: {e}"));
    let addr = listener.local_addr().unwrap();
    let srv = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        buf.reverse();
        s.write_all(&buf).unwrap();
    });
    let got = run_in(client_ns, move || -> std::io::Result<[u8; 4]> {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf)?;
        Ok(buf)
    })
    .unwrap()
    .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    assert_eq!(&got, b"gnip");
    srv.join().unwrap();
}

pub fn read_sysctl(ns: &Netns, path: &str) -> String {
    let path = path.to_string();
    run_in(ns, move || std::fs::read_to_string(path).unwrap())
        .unwrap()
        .trim()
        .to_string()
}
