#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bridge driver end to end, inside namespaces the tests make: a "host" namespace plays the
//! host (bridge, veths), "container" namespaces join it.

mod link_support;

use berth_network::driver::{host_veth_name, BridgeDriver, NetworkDriver, OPT_BRIDGE_NAME};
use berth_network::netlink::Netlink;
use berth_types::{ErrorKind, HasErrorKind};
use link_support::{endpoint, network, read_sysctl, tcp_roundtrip, TestNs};

#[test]
fn two_containers_on_a_bridge_talk_and_reach_the_gateway() {
    let host = TestNs::new("br-host");
    let c1 = TestNs::new("br-c1");
    let c2 = TestNs::new("br-c2");
    let driver = BridgeDriver::in_netns(host.handle()).unwrap();
    let net = network("a1b2c3d4e5f6a7b8", &[("10.213.0.0/24", None)], &[]);
    driver.create(&net).unwrap();
    driver.create(&net).unwrap(); // idempotent

    let hnl = Netlink::open_in(&host.ns).unwrap();
    let br = hnl.link("br-a1b2c3d4e5f6").unwrap().expect("bridge exists");
    assert_eq!(read_sysctl(&host.ns, "/proc/sys/net/ipv4/ip_forward"), "1");
    assert_eq!(
        read_sysctl(&host.ns, "/proc/sys/net/ipv4/conf/br-a1b2c3d4e5f6/route_localnet"),
        "1"
    );

    let e1 = endpoint(&net, "container-one", &["10.213.0.2/24"], &["10.213.0.1"]);
    let e2 = endpoint(&net, "container-two", &["10.213.0.3/24"], &["10.213.0.1"]);
    let i1 = driver.join(&net, &e1, &c1.ns).unwrap();
    driver.join(&net, &e2, &c2.ns).unwrap();
    assert_eq!(i1.mac, "02:42:0a:d5:00:02");
    let host_if = i1.host_ifname.clone().unwrap();
    assert!(host_if.starts_with("veth") && host_if.len() == 11, "{host_if}");
    assert_eq!(hnl.link(&host_if).unwrap().unwrap().master, Some(br.index));

    let cnl = Netlink::open_in(&c1.ns).unwrap();
    let eth0 = cnl.link("eth0").unwrap().expect("eth0 in the container");
    assert_eq!(eth0.mac, Some([0x02, 0x42, 10, 213, 0, 2]));
    // A v4-only network: the container gets no IPv6 on it.
    assert_eq!(read_sysctl(&c1.ns, "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"), "1");

    // Container to container over the bridge, and container to host (gateway).
    tcp_roundtrip(&c1.ns, "10.213.0.2".parse().unwrap(), &c2.ns);
    tcp_roundtrip(&host.ns, "10.213.0.1".parse().unwrap(), &c1.ns);
    // An address outside the subnet is reached through the default route.
    hnl.add_address("br-a1b2c3d4e5f6", "10.99.0.1/32".parse().unwrap())
        .unwrap();
    tcp_roundtrip(&host.ns, "10.99.0.1".parse().unwrap(), &c2.ns);

    // leave removes the host veth (and the container's end with it); twice is fine.
    driver.leave(&net, &e1).unwrap();
    driver.leave(&net, &e1).unwrap();
    assert!(hnl.link(&host_if).unwrap().is_none());
    assert!(cnl.link("eth0").unwrap().is_none());

    driver.leave(&net, &e2).unwrap();
    driver.delete(&net).unwrap();
    driver.delete(&net).unwrap();
    assert!(hnl.link("br-a1b2c3d4e5f6").unwrap().is_none());
}

#[test]
fn ipv6_network_dual_stack_endpoints() {
    let host = TestNs::new("br6-host");
    let c1 = TestNs::new("br6-c1");
    let c2 = TestNs::new("br6-c2");
    let driver = BridgeDriver::in_netns(host.handle()).unwrap();
    let mut net = network(
        "b6b6b6b6b6b6b6b6",
        &[("10.214.0.0/24", None), ("fd00:214::/64", None)],
        &[(OPT_BRIDGE_NAME, "berth0")],
    );
    net.enable_ipv6 = true;
    driver.create(&net).unwrap();
    let e1 = endpoint(
        &net,
        "c-one",
        &["10.214.0.2/24", "fd00:214::2/64"],
        &["10.214.0.1", "fd00:214::1"],
    );
    let e2 = endpoint(
        &net,
        "c-two",
        &["10.214.0.3/24", "fd00:214::3/64"],
        &["10.214.0.1", "fd00:214::1"],
    );
    driver.join(&net, &e1, &c1.ns).unwrap();
    driver.join(&net, &e2, &c2.ns).unwrap();
    assert_eq!(read_sysctl(&c1.ns, "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"), "0");
    tcp_roundtrip(&c1.ns, "fd00:214::2".parse().unwrap(), &c2.ns);
    tcp_roundtrip(&host.ns, "fd00:214::1".parse().unwrap(), &c1.ns);
    tcp_roundtrip(&c2.ns, "10.214.0.3".parse().unwrap(), &c1.ns);
}

#[test]
fn static_mac_mtu_and_errors() {
    let host = TestNs::new("brx-host");
    let c1 = TestNs::new("brx-c1");
    let driver = BridgeDriver::in_netns(host.handle()).unwrap();
    let net = network(
        "cccccccccccccccc",
        &[("10.215.0.0/24", Some("10.215.0.254"))],
        &[("com.docker.network.driver.mtu", "1400")],
    );
    // Joining before the bridge exists names the missing bridge.
    let e1 = endpoint(&net, "c-x", &["10.215.0.2/24"], &["10.215.0.254"]);
    let err = driver.join(&net, &e1, &c1.ns).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("br-cccccccccccc"), "{err}");

    driver.create(&net).unwrap();
    let mut e1 = e1;
    e1.mac = Some("02:00:00:00:be:ef".into());
    let info = driver.join(&net, &e1, &c1.ns).unwrap();
    assert_eq!(info.mac, "02:00:00:00:be:ef");
    let cnl = Netlink::open_in(&c1.ns).unwrap();
    assert_eq!(cnl.link("eth0").unwrap().unwrap().mtu, Some(1400));
    tcp_roundtrip(&host.ns, "10.215.0.254".parse().unwrap(), &c1.ns);

    // Joining the same endpoint again (a retry after a crash) replaces the old veth: the host
    // side has a derived name, so the stale pair is found and removed first.
    driver.join(&net, &e1, &c1.ns).unwrap();
    tcp_roundtrip(&host.ns, "10.215.0.254".parse().unwrap(), &c1.ns);
    let hnl = Netlink::open_in(&host.ns).unwrap();
    assert_eq!(hnl.links("veth").unwrap().len(), 1);

    // Another interface name already taken in the container is a Conflict, and nothing leaks.
    let mut e2 = endpoint(&net, "c-y", &["10.215.0.3/24"], &[]);
    e2.ifname = "eth0".into();
    let err = driver.join(&net, &e2, &c1.ns).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(hnl.links("veth").unwrap().len(), 1);

    // Gateway outside the subnet: Docker's message.
    let bad = network("dddddddddddddddd", &[("10.216.0.0/24", Some("10.1.0.1"))], &[]);
    let err = driver.create(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid gateway 10.1.0.1: parent subnet 10.216.0.0/24 doesn't contain this address"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn concurrent_joins_share_one_driver() {
    let host = TestNs::new("brc-host");
    let driver = BridgeDriver::in_netns(host.handle()).unwrap();
    let net = network("abababababababab", &[("10.224.0.0/24", None)], &[]);
    driver.create(&net).unwrap();
    // The bridge keeps the MAC it was made with while ports come and go (the kernel would give it
    // the lowest port MAC otherwise, and containers would hold a stale gateway MAC).
    let hnl = Netlink::open_in(&host.ns).unwrap();
    let bridge = BridgeDriver::bridge_name(&net);
    let mac = hnl.link(bridge.as_str()).unwrap().unwrap().mac;
    assert!(mac.is_some_and(|m| m[0] & 0x02 == 0x02), "{mac:?}");
    std::thread::scope(|s| {
        for t in 0..6u8 {
            let (driver, net, host) = (&driver, &net, &host);
            s.spawn(move || {
                for round in 0..5u8 {
                    let c = TestNs::new(&format!("brc-{t}-{round}"));
                    let addr = format!("10.224.0.{}/24", 2 + t * 10 + round);
                    let ep = endpoint(net, &format!("cc-{t}-{round}"), &[&addr], &["10.224.0.1"]);
                    driver.join(net, &ep, &c.ns).unwrap();
                    tcp_roundtrip(&host.ns, "10.224.0.1".parse().unwrap(), &c.ns);
                    driver.leave(net, &ep).unwrap();
                }
            });
        }
    });
    assert!(hnl.links("veth").unwrap().is_empty());
    assert_eq!(hnl.link(bridge.as_str()).unwrap().unwrap().mac, mac);
}

#[test]
fn reconcile_removes_only_leaked_veths_of_our_bridges() {
    let host = TestNs::new("brr-host");
    let c1 = TestNs::new("brr-c1");
    let c2 = TestNs::new("brr-c2");
    let driver = BridgeDriver::in_netns(host.handle()).unwrap();
    let net = network("cdcdcdcdcdcdcdcd", &[("10.225.0.0/24", None)], &[]);
    driver.create(&net).unwrap();
    let e1 = endpoint(&net, "keep-me", &["10.225.0.2/24"], &[]);
    let e2 = endpoint(&net, "leaked", &["10.225.0.3/24"], &[]);
    driver.join(&net, &e1, &c1.ns).unwrap();
    let leaked = driver.join(&net, &e2, &c2.ns).unwrap().host_ifname.unwrap();
    // A veth on no bridge of ours (someone else's) must survive.
    let hnl = Netlink::open_in(&host.ns).unwrap();
    hnl.create_veth("vethforeign", "vethforeignp", None).unwrap();

    let deleted = driver
        .reconcile(std::slice::from_ref(&net), std::slice::from_ref(&e1))
        .unwrap();
    assert_eq!(deleted, vec![leaked]);
    let mut names: Vec<String> = hnl.links("veth").unwrap().into_iter().map(|l| l.name).collect();
    names.sort();
    let mut want = vec![
        host_veth_name(&e1),
        "vethforeign".to_string(),
        "vethforeignp".to_string(),
    ];
    want.sort();
    assert_eq!(names, want);
    tcp_roundtrip(&host.ns, "10.225.0.1".parse().unwrap(), &c1.ns);
}
