#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Namespaces, sysctls and host routes for IPAM, inside namespaces the tests make.

mod link_support;

use std::os::unix::fs::MetadataExt;

use berth_network::ipam::AddressPools;
use berth_network::netlink::Netlink;
use berth_network::netns::{run_in, write_sysctl, Netns};
use link_support::{read_sysctl, TestNs};

fn ns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
}

#[test]
fn run_in_never_moves_the_caller() {
    let t = TestNs::new("runin");
    let mine = ns_inode();
    let inside = run_in(&t.ns, ns_inode).unwrap();
    assert_ne!(inside, mine);
    assert_eq!(ns_inode(), mine);
    // A handle from a pid or path names the same namespace as the thread's own.
    let own = Netns::from_pid(std::process::id()).unwrap();
    assert_eq!(
        run_in(&own, ns_inode).unwrap(),
        std::fs::metadata(format!("/proc/{}/ns/net", std::process::id()))
            .unwrap()
            .ino()
    );
    assert_eq!(own.label(), format!("pid {}", std::process::id()));
    // A panic inside is an error, not a crash of the caller.
    let err = run_in(&t.ns, || panic!("boom")).map(|_: ()| ()).unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
}

#[test]
fn sysctls_are_per_namespace() {
    let a = TestNs::new("sysctl-a");
    let b = TestNs::new("sysctl-b");
    // A new namespace starts from the host's IPv4 settings (devconf_inherit_init_net), whatever
    // they are: flip `a`'s and check that `b` keeps its own.
    let before = read_sysctl(&b.ns, "/proc/sys/net/ipv4/ip_forward");
    let flipped = if before == "1" { "0" } else { "1" };
    write_sysctl(Some(&a.ns), "net.ipv4.ip_forward", flipped).unwrap();
    assert_eq!(read_sysctl(&a.ns, "/proc/sys/net/ipv4/ip_forward"), flipped);
    assert_eq!(read_sysctl(&b.ns, "/proc/sys/net/ipv4/ip_forward"), before);
    let err = write_sysctl(Some(&a.ns), "net.ipv4.conf.nosuch0.route_localnet", "1").unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn host_routes_steer_default_pools() {
    let t = TestNs::new("routes");
    let nl = Netlink::open_in(&t.ns).unwrap();
    nl.create_veth("rt0", "rt1", None).unwrap();
    nl.add_address("rt0", "172.17.5.1/16".parse().unwrap()).unwrap();
    nl.add_address("rt0", "fd00:77::1/64".parse().unwrap()).unwrap();
    nl.set_up("rt0").unwrap();
    nl.set_up("rt1").unwrap();
    let routes = nl.route_destinations().unwrap();
    assert!(routes.contains(&"172.17.0.0/16".parse().unwrap()), "{routes:?}");
    let next = AddressPools::docker_default().next_subnet(&routes, false).unwrap();
    assert_eq!(next.to_string(), "172.18.0.0/16");
    // Links of this namespace only; the caller's are not listed.
    let names: Vec<String> = nl.links("rt").unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(nl.delete_link("rt0").unwrap());
    assert!(!nl.delete_link("rt0").unwrap());
    assert!(
        nl.link("rt1").unwrap().is_none(),
        "deleting one end of a veth removes both"
    );
}

#[test]
fn netlink_works_from_the_engines_blocking_threads() {
    // berthd calls this crate through spawn_blocking; the handle's own runtime must not clash
    // with the engine's.
    let t = TestNs::new("blocking");
    let ns = t.handle();
    let engine = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let lo = engine
        .block_on(async move {
            tokio::task::spawn_blocking(move || {
                let nl = Netlink::open_in(&ns).unwrap();
                nl.set_up("lo").unwrap();
                nl.link("lo").unwrap()
            })
            .await
        })
        .unwrap()
        .expect("lo exists in every namespace");
    assert_eq!(lo.name, "lo");
}
