#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One conformance suite for [`NetworkDriver`], run against every implementation: create is
//! idempotent, two joined containers talk, leave is idempotent and works after the container's
//! namespace is gone, nothing of an endpoint outlives its leave in the host namespace, delete is
//! idempotent.

mod link_support;

use berth_network::driver::{BridgeDriver, IpvlanDriver, MacvlanDriver, NetworkDriver, NetworkSpec, OPT_PARENT};
use berth_network::netlink::Netlink;
use berth_network::NetError;
use link_support::{endpoint, network, tcp_roundtrip, TestNs};

/// The links of the host namespace, by name.
fn host_links(host: &TestNs) -> Vec<String> {
    let nl = Netlink::open_in(&host.ns).unwrap();
    let mut names: Vec<String> = nl.links("").unwrap().into_iter().map(|l| l.name).collect();
    names.sort();
    names
}

/// Runs the suite; returns false (after printing why) when the kernel lacks the link type.
fn conformance(driver: &dyn NetworkDriver, host: &TestNs, net: &NetworkSpec, prefix: &str) -> bool {
    driver.create(net).unwrap();
    driver.create(net).unwrap();
    let before = host_links(host);

    let c1 = TestNs::new(&format!("{}-c1", driver.name()));
    let c2 = TestNs::new(&format!("{}-c2", driver.name()));
    let e1 = endpoint(net, "conf-one", &[&format!("{prefix}.2/24")], &[]);
    let e2 = endpoint(net, "conf-two", &[&format!("{prefix}.3/24")], &[]);
    match driver.join(net, &e1, &c1.ns) {
        Err(e @ NetError::UnsupportedLinkKind { .. }) => {
            eprintln!("SKIP conformance for {}: {e}", driver.name());
            assert_eq!(host_links(host), before, "a failed join leaves nothing");
            return false;
        }
        other => {
            other.unwrap();
        }
    }
    driver.join(net, &e2, &c2.ns).unwrap();
    tcp_roundtrip(&c2.ns, format!("{prefix}.3").parse().unwrap(), &c1.ns);

    // leave, twice.
    driver.leave(net, &e1).unwrap();
    driver.leave(net, &e1).unwrap();
    // leave after the container's namespace is gone.
    drop(c2);
    driver.leave(net, &e2).unwrap();
    driver.leave(net, &e2).unwrap();
    // The dying namespace's links go asynchronously; give the kernel a moment.
    let mut after = host_links(host);
    for _ in 0..50 {
        if after == before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = host_links(host);
    }
    assert_eq!(after, before, "endpoint links left in the host namespace");

    driver.delete(net).unwrap();
    driver.delete(net).unwrap();
    true
}

#[test]
fn bridge_conformance() {
    let host = TestNs::new("conf-br");
    let driver = BridgeDriver::in_netns(host.handle()).unwrap();
    let net = network("9a9a9a9a9a9a9a9a", &[("10.221.0.0/24", None)], &[]);
    assert!(conformance(&driver, &host, &net, "10.221.0"));
    assert!(!host_links(&host).iter().any(|l| l == "br-9a9a9a9a9a9a"));
}

fn host_with_parent(tag: &str) -> TestNs {
    let host = TestNs::new(tag);
    let nl = Netlink::open_in(&host.ns).unwrap();
    nl.create_veth("par0", "par1", None).unwrap();
    nl.set_up("par0").unwrap();
    nl.set_up("par1").unwrap();
    host
}

#[test]
fn macvlan_conformance() {
    let host = host_with_parent("conf-mv");
    let driver = MacvlanDriver::in_netns(host.handle()).unwrap();
    let mut net = network("8b8b8b8b8b8b8b8b", &[("10.222.0.0/24", None)], &[(OPT_PARENT, "par0")]);
    net.driver = "macvlan".into();
    assert!(conformance(&driver, &host, &net, "10.222.0"));
}

#[test]
fn ipvlan_conformance() {
    let host = host_with_parent("conf-iv");
    let driver = IpvlanDriver::in_netns(host.handle()).unwrap();
    let mut net = network("7c7c7c7c7c7c7c7c", &[("10.223.0.0/24", None)], &[(OPT_PARENT, "par0")]);
    net.driver = "ipvlan".into();
    // Skips loudly (inside) on a kernel without ipvlan.
    conformance(&driver, &host, &net, "10.223.0");
}
