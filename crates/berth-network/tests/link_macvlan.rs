#![allow(clippy::unwrap_used, clippy::expect_used)]
//! macvlan and ipvlan end to end: the "host" is a namespace of the test's own, whose parent link is
//! one end of a veth pair (this kernel has no `dummy`).

mod link_support;

use berth_network::driver::{
    IpvlanDriver, MacvlanDriver, NetworkDriver, OPT_IPVLAN_MODE, OPT_MACVLAN_MODE, OPT_PARENT,
};
use berth_network::netlink::Netlink;
use berth_network::NetError;
use berth_types::{ErrorKind, HasErrorKind};
use link_support::{endpoint, network, tcp_roundtrip, TestNs};

/// A host namespace with an up veth pair `par0` ↔ `par1` to hang sub-interfaces on.
fn host_with_parent(tag: &str) -> TestNs {
    let host = TestNs::new(tag);
    let nl = Netlink::open_in(&host.ns).unwrap();
    nl.create_veth("par0", "par1", None).unwrap();
    nl.set_up("par0").unwrap();
    nl.set_up("par1").unwrap();
    host
}

#[test]
fn macvlan_bridge_mode_between_two_containers() {
    let host = host_with_parent("mv-host");
    let c1 = TestNs::new("mv-c1");
    let c2 = TestNs::new("mv-c2");
    let driver = MacvlanDriver::in_netns(host.handle()).unwrap();
    let mut net = network(
        "f0f0f0f0f0f0f0f0",
        &[("10.218.0.0/24", None)],
        &[(OPT_PARENT, "par0"), (OPT_MACVLAN_MODE, "bridge")],
    );
    net.driver = "macvlan".into();
    driver.create(&net).unwrap();
    let e1 = endpoint(&net, "mv-one", &["10.218.0.2/24"], &["10.218.0.1"]);
    let e2 = endpoint(&net, "mv-two", &["10.218.0.3/24"], &["10.218.0.1"]);
    let i1 = driver.join(&net, &e1, &c1.ns).unwrap();
    driver.join(&net, &e2, &c2.ns).unwrap();
    assert_eq!(i1.mac, "02:42:0a:da:00:02");
    assert_eq!(i1.host_ifname, None);
    tcp_roundtrip(&c1.ns, "10.218.0.2".parse().unwrap(), &c2.ns);

    // Nothing of the endpoints is left in the host namespace.
    let hnl = Netlink::open_in(&host.ns).unwrap();
    let names: Vec<String> = hnl.links("").unwrap().into_iter().map(|l| l.name).collect();
    assert!(names.iter().all(|n| !n.starts_with("bmv")), "{names:?}");

    driver.leave(&net, &e1).unwrap();
    driver.leave(&net, &e1).unwrap();
    assert!(berth_network::driver::remove_interface(&c1.ns, "eth0").unwrap());
    assert!(!berth_network::driver::remove_interface(&c1.ns, "eth0").unwrap());
    driver.delete(&net).unwrap();
}

#[test]
fn macvlan_option_errors() {
    let host = host_with_parent("mverr-host");
    let driver = MacvlanDriver::in_netns(host.handle()).unwrap();
    let mut net = network(
        "f1f1f1f1f1f1f1f1",
        &[("10.219.0.0/24", None)],
        &[(OPT_PARENT, "nosuch0")],
    );
    net.driver = "macvlan".into();
    let err = driver.create(&net).unwrap_err();
    assert_eq!(
        err.to_string(),
        "-o parent interface was not found on the host: nosuch0"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    net.options.remove(OPT_PARENT);
    assert!(driver.create(&net).unwrap_err().to_string().contains("-o parent"));

    net.options.insert(OPT_PARENT.into(), "par0".into());
    net.options.insert(OPT_MACVLAN_MODE.into(), "l3".into());
    let err = driver.create(&net).unwrap_err();
    assert!(err.to_string().contains("macvlan mode 'l3' is not valid"), "{err}");
}

#[test]
fn ipvlan_l2_between_two_containers() {
    let host = host_with_parent("iv-host");
    let c1 = TestNs::new("iv-c1");
    let c2 = TestNs::new("iv-c2");
    let driver = IpvlanDriver::in_netns(host.handle()).unwrap();
    let mut net = network(
        "f2f2f2f2f2f2f2f2",
        &[("10.220.0.0/24", None)],
        &[(OPT_PARENT, "par0"), (OPT_IPVLAN_MODE, "l2")],
    );
    net.driver = "ipvlan".into();
    driver.create(&net).unwrap();
    let e1 = endpoint(&net, "iv-one", &["10.220.0.2/24"], &[]);
    let e2 = endpoint(&net, "iv-two", &["10.220.0.3/24"], &[]);
    match driver.join(&net, &e1, &c1.ns) {
        Err(e @ NetError::UnsupportedLinkKind { .. }) => {
            assert_eq!(e.kind(), ErrorKind::Unsupported);
            eprintln!("SKIP ipvlan_l2_between_two_containers: {e} (kernel built without CONFIG_IPVLAN)");
            // A failed create leaves nothing behind.
            let hnl = Netlink::open_in(&host.ns).unwrap();
            assert!(hnl.links("biv").unwrap().is_empty());
            return;
        }
        other => {
            other.unwrap();
        }
    }
    driver.join(&net, &e2, &c2.ns).unwrap();
    tcp_roundtrip(&c1.ns, "10.220.0.2".parse().unwrap(), &c2.ns);
    driver.leave(&net, &e1).unwrap();
    driver.leave(&net, &e2).unwrap();
}
