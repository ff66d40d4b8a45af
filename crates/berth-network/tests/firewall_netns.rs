#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The firewall against the kernel, entirely inside network namespaces this test creates (root).
//! A "host" namespace holds the bridges; each "container" namespace a veth and a TCP server. The
//! host's real ruleset and links are never touched; all traffic stays inside the namespaces.

use berth_network::firewall::{
    enable_route_localnet, Backend, Firewall, FirewallError, NetworkRules, PortMapping, PortReservation, Proto,
};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace, deleted on drop.
struct Netns {
    name: String,
    file: File,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!(
            "bfw{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let file = File::open(format!("/run/netns/{name}")).unwrap();
        let ns = Netns { name, file };
        ns.ip("link set lo up");
        ns
    }

    /// Runs `f` on a thread that has entered this namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&self.file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }

    fn ip(&self, args: &str) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args.split_whitespace());
        run("ip", &all);
    }

    /// Prints the namespace's ruleset when `nft` is installed (a debugging aid; optional).
    fn dump(&self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "list", "ruleset"])
            .output()
        {
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(|| std::fs::write(&path, value).unwrap());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP server in a namespace answering every connection with its name; stopped on drop.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Netns, port: u16, answer: &str) -> Server {
        let listener = ns.run(|| TcpListener::bind(("::", port)).unwrap()); // dual-stack
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, answer) = (stop.clone(), answer.to_string());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, peer)) => {
                        let text = answer.replace("{peer}", &peer.ip().to_canonical().to_string());
                        let _ = s.write_all(text.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns` and reads the answer; `None` when the connection fails.
fn fetch(ns: &Netns, addr: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run(|| {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(700)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    })
}

/// A host namespace with bridges, and containers attached to them.
struct Lab {
    host: Netns,
    containers: Vec<Netns>,
    fw: Firewall,
}

impl Lab {
    fn new(backend: Backend) -> Lab {
        let host = Netns::new("host");
        host.sysctl("net.ipv4.ip_forward", "1");
        let fw = host.run(|| Firewall::with_backend(backend).unwrap());
        assert_eq!(fw.backend(), backend);
        Lab {
            host,
            containers: Vec::new(),
            fw,
        }
    }

    /// Bridge `br<n>` with 10.88.<n>.1/24; returns its rules.
    fn bridge(&self, n: u8) -> NetworkRules {
        let br = format!("br{n}");
        self.host.ip(&format!("link add {br} type bridge"));
        self.host.ip(&format!("addr add 10.88.{n}.1/24 dev {br}"));
        self.host.ip(&format!("link set {br} up"));
        self.host.run(|| enable_route_localnet(&br).unwrap());
        NetworkRules {
            id: format!("net{n}"),
            bridge: br,
            subnets: vec![format!("10.88.{n}.0/24").parse().unwrap()],
            internal: false,
            masquerade: true,
            icc: true,
        }
    }

    /// A container on bridge `br<n>` with address 10.88.<n>.<host>; returns its index.
    fn container(&mut self, n: u8, host: u8) -> usize {
        let ns = Netns::new("ctr");
        let veth = format!("v{n}x{host}");
        self.host
            .ip(&format!("link add {veth} type veth peer name eth0 netns {}", ns.name));
        self.host.ip(&format!("link set {veth} master br{n} up"));
        // Hairpin (a container reaching its own published port through the host) needs the
        // bridge port's hairpin mode, as Docker sets it without the userland proxy.
        self.host.ip(&format!("link set {veth} type bridge_slave hairpin on"));
        ns.ip(&format!("addr add 10.88.{n}.{host}/24 dev eth0"));
        ns.ip("link set eth0 up");
        ns.ip(&format!("route add default via 10.88.{n}.1"));
        self.containers.push(ns);
        self.containers.len() - 1
    }
}

impl Lab {
    /// "outside": a namespace behind the host's uplink (10.99.0.2), with a server answering with
    /// the peer's address.
    fn outside(&self) -> (Netns, Server) {
        let outside = Netns::new("out");
        self.host
            .ip(&format!("link add up0 type veth peer name eth0 netns {}", outside.name));
        self.host.ip("addr add 10.99.0.1/24 dev up0");
        self.host.ip("link set up0 up");
        outside.ip("addr add 10.99.0.2/24 dev eth0");
        outside.ip("link set eth0 up");
        outside.ip("route add 10.88.0.0/16 via 10.99.0.1");
        let server = Server::start(&outside, 80, "out {peer}");
        (outside, server)
    }

    /// `iptables-nft` in the host namespace (what dockerd runs on Debian 12).
    fn iptables(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.host.name, "iptables-nft", "-w"];
        all.extend_from_slice(args);
        let out = Command::new("ip").args(&all).output().unwrap();
        assert!(
            out.status.success(),
            "iptables {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.host.dump();
        }
    }
}

fn tcp(host_port: u16, container_ip: &str, container_port: u16, bridge: &str) -> PortMapping {
    PortMapping {
        proto: Proto::Tcp,
        host_ip: None,
        host_port,
        container_ip: container_ip.parse().unwrap(),
        container_port,
        bridge: bridge.into(),
    }
}

fn owners(fw: &Firewall) -> Vec<String> {
    let mut v: Vec<String> = fw
        .list()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.owner.map(|o| o.comment()))
        .filter(|c| c != "berth")
        .collect();
    v.sort();
    v
}

fn published_port_reaches_the_container_from_loopback_and_the_bridge_address(backend: Backend) {
    let mut lab = Lab::new(backend);
    let net = lab.bridge(1);
    let c = lab.container(1, 2);
    let _srv = Server::start(&lab.containers[c], 80, "c1");
    lab.fw.reset().unwrap();
    lab.fw.setup_network(&net).unwrap();
    assert_eq!(fetch(&lab.host, "127.0.0.1:8080"), None);

    lab.fw.add_ports("c1", &[tcp(8080, "10.88.1.2", 80, "br1")]).unwrap();
    assert_eq!(fetch(&lab.host, "127.0.0.1:8080").as_deref(), Some("c1"));
    assert_eq!(fetch(&lab.host, "10.88.1.1:8080").as_deref(), Some("c1"));
    // hairpin: the container reaches its own published port through the host's address
    assert_eq!(fetch(&lab.containers[c], "10.88.1.1:8080").as_deref(), Some("c1"));

    lab.fw.remove_ports("c1").unwrap();
    assert_eq!(fetch(&lab.host, "127.0.0.1:8080"), None);
    assert_eq!(fetch(&lab.host, "10.88.1.1:8080"), None);
    assert_eq!(
        owners(&lab.fw).iter().filter(|o| o.starts_with("container:")).count(),
        0
    );

    lab.fw.remove_network("net1").unwrap();
    assert!(owners(&lab.fw).is_empty());
    lab.fw.remove_all().unwrap();
    assert!(lab.fw.list().unwrap().is_empty());
}

fn sync_after_a_crash_drops_stale_rules_and_installs_the_wanted_ones(backend: Backend) {
    let mut lab = Lab::new(backend);
    let net = lab.bridge(1);
    let c = lab.container(1, 2);
    let _srv = Server::start(&lab.containers[c], 80, "c1");
    lab.fw.setup_network(&net).unwrap();
    lab.fw.add_ports("stale", &[tcp(9090, "10.88.1.2", 80, "br1")]).unwrap();
    assert_eq!(fetch(&lab.host, "127.0.0.1:9090").as_deref(), Some("c1"));
    // "kill -9": a new daemon (a new Firewall) starts and syncs what its records say.
    drop(std::mem::replace(
        &mut lab.fw,
        lab.host.run(|| Firewall::with_backend(backend).unwrap()),
    ));
    lab.fw
        .sync(
            std::slice::from_ref(&net),
            &[("c1".to_string(), vec![tcp(8080, "10.88.1.2", 80, "br1")])],
        )
        .unwrap();
    assert_eq!(fetch(&lab.host, "127.0.0.1:9090"), None);
    assert_eq!(fetch(&lab.host, "127.0.0.1:8080").as_deref(), Some("c1"));
    let o = owners(&lab.fw);
    assert!(o.contains(&"container:c1".to_string()));
    assert!(!o.contains(&"container:stale".to_string()));
    assert!(o.contains(&"network:net1".to_string()));
    lab.fw.remove_all().unwrap();
}

fn two_bridges_are_isolated_but_published_ports_cross(backend: Backend) {
    let mut lab = Lab::new(backend);
    let (n1, n2) = (lab.bridge(1), lab.bridge(2));
    let a = lab.container(1, 2);
    let b = lab.container(2, 2);
    let _sa = Server::start(&lab.containers[a], 80, "a");
    let _sb = Server::start(&lab.containers[b], 80, "b");
    // Without berth's rules the host routes between the bridges.
    assert_eq!(fetch(&lab.containers[a], "10.88.2.2:80").as_deref(), Some("b"));
    lab.fw.sync(&[n1, n2], &[]).unwrap();
    assert_eq!(fetch(&lab.containers[a], "10.88.2.2:80"), None);
    assert_eq!(fetch(&lab.containers[b], "10.88.1.2:80"), None);
    // ... and each still reaches the host.
    lab.fw.add_ports("b", &[tcp(8081, "10.88.2.2", 80, "br2")]).unwrap();
    assert_eq!(fetch(&lab.containers[a], "10.88.1.1:8081").as_deref(), Some("b"));
    assert_eq!(fetch(&lab.containers[a], "10.88.2.1:8081").as_deref(), Some("b"));
    lab.fw.remove_all().unwrap();
}

fn masquerade_to_the_outside_and_internal_networks_cut_off(backend: Backend) {
    let mut lab = Lab::new(backend);
    let n1 = lab.bridge(1);
    let mut n2 = lab.bridge(2);
    n2.internal = true;
    let a = lab.container(1, 2);
    let b = lab.container(2, 2);
    let (outside, _s) = lab.outside();
    let _sb = Server::start(&lab.containers[b], 80, "b");
    if backend == Backend::Iptables {
        // As dockerd leaves it: berth's chains must accept their bridges' traffic themselves.
        run(
            "ip",
            &[
                "netns",
                "exec",
                &lab.host.name,
                "iptables-legacy",
                "-P",
                "FORWARD",
                "DROP",
            ],
        );
    }
    lab.fw.sync(&[n1, n2], &[]).unwrap();
    // masqueraded: the outside sees the host's uplink address, and needs no route back
    assert_eq!(
        fetch(&lab.containers[a], "10.99.0.2:80").as_deref(),
        Some("out 10.99.0.1")
    );
    // an internal network reaches nothing outside its bridge, and nothing outside reaches in
    assert_eq!(fetch(&lab.containers[b], "10.99.0.2:80"), None);
    assert_eq!(fetch(&outside, "10.88.2.2:80"), None);
    assert_eq!(fetch(&lab.containers[a], "10.88.2.2:80"), None);
    lab.fw.remove_all().unwrap();
}

#[test]
fn a_held_port_gives_dockers_error_and_is_freed_on_drop() {
    let ns = Netns::new("res");
    ns.run(|| {
        let r = PortReservation::reserve(Proto::Tcp, None, 8080).unwrap();
        let err = PortReservation::reserve(Proto::Tcp, None, 8080).unwrap_err();
        assert!(matches!(err, FirewallError::PortAllocated { .. }));
        assert_eq!(
            err.to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        // another program cannot take it either
        assert!(TcpListener::bind("0.0.0.0:8080").is_err());
        // UDP is another port space
        let _u = PortReservation::reserve(Proto::Udp, None, 8080).unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let e = PortReservation::reserve(Proto::Tcp, Some(lo), 8080).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 127.0.0.1:8080 failed: port is already allocated"
        );
        drop(r);
        let _again = PortReservation::reserve(Proto::Tcp, Some(lo), 8080).unwrap();

        let (low, high) = berth_network::firewall::local_port_range();
        let e1 = PortReservation::allocate_ephemeral(Proto::Tcp, None).unwrap();
        let e2 = PortReservation::allocate_ephemeral(Proto::Tcp, None).unwrap();
        assert_ne!(e1.port(), e2.port());
        for p in [e1.port(), e2.port()] {
            assert!((low..=high).contains(&p), "{p} outside {low}-{high}");
        }
    });
}

fn a_hundred_add_remove_cycles_leave_no_rule_behind(backend: Backend) {
    let mut lab = Lab::new(backend);
    let net = lab.bridge(1);
    let c = lab.container(1, 2);
    let _srv = Server::start(&lab.containers[c], 80, "c1");
    lab.fw.reset().unwrap();
    lab.fw.setup_network(&net).unwrap();
    let baseline = lab.fw.list().unwrap().len();
    let (mut add, mut remove) = (Duration::ZERO, Duration::ZERO);
    for i in 0..100u16 {
        let id = format!("c{i}");
        let ports = [
            tcp(20000 + i, "10.88.1.2", 80, "br1"),
            tcp(30000 + i, "10.88.1.2", 80, "br1"),
        ];
        let t = Instant::now();
        lab.fw.add_ports(&id, &ports).unwrap();
        add += t.elapsed();
        let t = Instant::now();
        lab.fw.remove_ports(&id).unwrap();
        remove += t.elapsed();
    }
    eprintln!(
        "add_ports: {:?} per call, remove_ports: {:?} per call",
        add / 100,
        remove / 100
    );
    assert_eq!(lab.fw.list().unwrap().len(), baseline);
    lab.fw.add_ports("last", &[tcp(8080, "10.88.1.2", 80, "br1")]).unwrap();
    assert_eq!(fetch(&lab.host, "127.0.0.1:8080").as_deref(), Some("c1"));
    lab.fw.remove_all().unwrap();
}

#[test]
fn a_failed_batch_names_the_change_and_changes_nothing() {
    use berth_network::firewall::nft::{Nft, Op};
    let host = Netns::new("fail");
    let fw = host.run(|| Firewall::with_backend(Backend::Nftables).unwrap());
    fw.reset().unwrap();
    let before = fw.list().unwrap();
    let err = host
        .run(|| {
            let mut nft = Nft::open().unwrap();
            nft.commit(&[
                Op::DeleteTable,
                Op::DeleteRule {
                    chain: "ports".into(),
                    handle: 999_999,
                },
            ])
        })
        .unwrap_err();
    assert!(err.op.contains("handle 999999"), "{}", err.op);
    assert_eq!(err.source.raw_os_error(), Some(libc::ENOENT));
    // the table deleted by the first op of the failed batch is still there
    assert_eq!(fw.list().unwrap(), before);
    fw.remove_all().unwrap();
}

#[test]
fn a_large_sync_is_one_transaction() {
    let host = Netns::new("big");
    let fw = host.run(|| Firewall::with_backend(Backend::Nftables).unwrap());
    let containers: Vec<(String, Vec<PortMapping>)> = (0..3000u16)
        .map(|i| (format!("c{i}"), vec![tcp(10000 + i, "10.88.1.2", 80, "br1")]))
        .collect();
    let t = Instant::now();
    fw.sync(&[], &containers).unwrap();
    eprintln!("sync of 3000 containers: {:?}", t.elapsed());
    assert_eq!(owners(&fw).len(), 3000);
    let t = Instant::now();
    fw.add_ports("one-more", &[tcp(8080, "10.88.1.2", 80, "br1")]).unwrap();
    fw.remove_ports("one-more").unwrap();
    eprintln!("first add+remove after sync (lists the table once): {:?}", t.elapsed());
    let t = Instant::now();
    fw.add_ports("one-more", &[tcp(8080, "10.88.1.2", 80, "br1")]).unwrap();
    fw.remove_ports("one-more").unwrap();
    eprintln!("add+remove with 3000 containers published: {:?}", t.elapsed());
    assert_eq!(owners(&fw).len(), 3000);
    fw.reset().unwrap();
    assert!(owners(&fw).is_empty());
    fw.remove_all().unwrap();
}

#[test]
fn a_table_deleted_behind_our_back_is_recreated() {
    let mut lab = Lab::new(Backend::Nftables);
    let net = lab.bridge(1);
    let c = lab.container(1, 2);
    let _srv = Server::start(&lab.containers[c], 80, "c1");
    lab.fw.setup_network(&net).unwrap();
    lab.fw.add_ports("c1", &[tcp(8080, "10.88.1.2", 80, "br1")]).unwrap();
    let other = lab.host.run(|| Firewall::with_backend(Backend::Nftables).unwrap());
    other.remove_all().unwrap();
    lab.fw.remove_ports("c1").unwrap();
    lab.fw.setup_network(&net).unwrap();
    lab.fw.add_ports("c2", &[tcp(8080, "10.88.1.2", 80, "br1")]).unwrap();
    assert_eq!(fetch(&lab.host, "127.0.0.1:8080").as_deref(), Some("c1"));
    assert_eq!(
        owners(&lab.fw).iter().filter(|o| o.starts_with("container:")).count(),
        1
    );
    lab.fw.remove_all().unwrap();
}

fn ipv6_published_port(backend: Backend) {
    let mut lab = Lab::new(backend);
    let mut net = lab.bridge(1);
    lab.host.ip("addr add fd88:1::1/64 dev br1 nodad");
    net.subnets.push("fd88:1::/64".parse().unwrap());
    let c = lab.container(1, 2);
    lab.containers[c].ip("addr add fd88:1::2/64 dev eth0 nodad");
    let _srv = Server::start(&lab.containers[c], 80, "c6");
    lab.fw.sync(&[net], &[]).unwrap();
    let p = tcp(8080, "fd88:1::2", 80, "br1");
    lab.fw.add_ports("c1", &[p]).unwrap();
    assert_eq!(fetch(&lab.host, "[fd88:1::1]:8080").as_deref(), Some("c6"));
    assert_eq!(fetch(&lab.host, "127.0.0.1:8080"), None); // an IPv6 mapping only
    lab.fw.remove_ports("c1").unwrap();
    assert_eq!(fetch(&lab.host, "[fd88:1::1]:8080"), None);
    lab.fw.remove_all().unwrap();
}

/// dockerd sets iptables' FORWARD policy to DROP and puts DOCKER-USER first in FORWARD: berth's
/// bridges get accepts there (an accept in berth's own table cannot undo another table's drop),
/// written with iptables-nft so dockerd still reads its table, and taken away with the network;
/// berth's own drops (internal networks) still apply.
#[test]
fn dockers_forward_drop_policy_lets_berths_bridges_through() {
    if Command::new("iptables-nft").arg("-V").output().is_err() {
        eprintln!("skipping: no iptables-nft");
        return;
    }
    let mut lab = Lab::new(Backend::Nftables);
    let n1 = lab.bridge(1);
    let mut n2 = lab.bridge(2);
    n2.internal = true;
    let a = lab.container(1, 2);
    let b = lab.container(2, 2);
    let (_outside, _s) = lab.outside();
    lab.iptables(&["-P", "FORWARD", "DROP"]);
    lab.iptables(&["-N", "DOCKER-USER"]);
    lab.iptables(&["-A", "DOCKER-USER", "-j", "RETURN"]);
    lab.iptables(&["-I", "FORWARD", "-j", "DOCKER-USER"]);
    lab.fw.sync(&[n1.clone(), n2.clone()], &[]).unwrap();
    assert_eq!(
        fetch(&lab.containers[a], "10.99.0.2:80").as_deref(),
        Some("out 10.99.0.1")
    );
    assert_eq!(
        fetch(&lab.containers[b], "10.99.0.2:80"),
        None,
        "internal stays cut off"
    );
    let listing = lab.iptables(&["-S", "DOCKER-USER"]);
    for line in [
        "-A DOCKER-USER -i br1 -m comment --comment \"berth network net1\" -j ACCEPT",
        "-A DOCKER-USER -o br1 -m comment --comment \"berth network net1\" -j ACCEPT",
    ] {
        assert!(listing.contains(line), "{listing}");
    }
    assert!(listing.ends_with("-A DOCKER-USER -j RETURN\n"), "{listing}");
    // The network goes: so do its accepts, and its traffic is Docker's policy's again.
    lab.fw.remove_network("net1").unwrap();
    assert!(!lab.iptables(&["-S", "DOCKER-USER"]).contains("berth network net1"));
    assert_eq!(fetch(&lab.containers[a], "10.99.0.2:80"), None);
    // Set up again (daemon start): once, however often it is asked.
    lab.fw.setup_network(&n1).unwrap();
    lab.fw.setup_network(&n1).unwrap();
    assert_eq!(
        lab.iptables(&["-S", "DOCKER-USER"])
            .matches("berth network net1")
            .count(),
        2
    );
    assert_eq!(
        fetch(&lab.containers[a], "10.99.0.2:80").as_deref(),
        Some("out 10.99.0.1")
    );
    lab.fw.remove_all().unwrap();
    assert!(!lab.iptables(&["-S"]).contains("berth network"));
}

/// `icc=false`: two containers on one bridge cannot reach each other, also in a namespace where
/// bridged frames did not pass the IP hooks (berth turns `bridge-nf-call-iptables` on); they still
/// reach the host and the outside, and with icc on again they reach each other.
#[test]
fn icc_false_separates_containers_on_one_bridge() {
    let mut lab = Lab::new(Backend::Nftables);
    lab.host.sysctl("net.bridge.bridge-nf-call-iptables", "0");
    let mut n1 = lab.bridge(1);
    let a = lab.container(1, 2);
    let c = lab.container(1, 3);
    let _sc = Server::start(&lab.containers[c], 80, "c");
    let (_outside, _s) = lab.outside();
    lab.fw.setup_network(&n1).unwrap();
    assert_eq!(fetch(&lab.containers[a], "10.88.1.3:80").as_deref(), Some("c"));
    n1.icc = false;
    lab.fw.setup_network(&n1).unwrap();
    assert_eq!(fetch(&lab.containers[a], "10.88.1.3:80"), None);
    assert_eq!(
        fetch(&lab.containers[a], "10.99.0.2:80").as_deref(),
        Some("out 10.99.0.1")
    );
    n1.icc = true;
    lab.fw.sync(&[n1], &[]).unwrap();
    assert_eq!(fetch(&lab.containers[a], "10.88.1.3:80").as_deref(), Some("c"));
    lab.fw.remove_all().unwrap();
}

/// Each scenario as a test against each backend: `nftables::NAME` and `iptables::NAME`.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        /// The scenarios against the Nftables backend.
        mod nftables {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Nftables);
                }
            )*
        }

        /// The scenarios against the Iptables backend.
        mod iptables {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Iptables);
                }
            )*
        }
    };
}

per_backend!(
    ipv6_published_port,
    published_port_reaches_the_container_from_loopback_and_the_bridge_address,
    sync_after_a_crash_drops_stale_rules_and_installs_the_wanted_ones,
    two_bridges_are_isolated_but_published_ports_cross,
    masquerade_to_the_outside_and_internal_networks_cut_off,
    a_hundred_add_remove_cycles_leave_no_rule_behind,
);
