#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The embedded DNS server end to end: network namespaces made here (root), the server listening on
//! 127.0.0.11:53 inside them, queries sent from threads that entered them. Forwarding goes only to a
//! fake upstream this test runs on 127.0.0.1 in the host namespace; no real resolver is ever asked.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_network::dns::{DnsRecords, DnsServer, EndpointRecord};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::sched::CloneFlags;

const WEB: &str = "a1b2c3d4e5f60000000000000000000000000000000000000000000000000001";
const DB: &str = "0123456789ab0000000000000000000000000000000000000000000000000002";
const OUTSIDER: &str = "fedcba9876540000000000000000000000000000000000000000000000000003";
const LINKER: &str = "abcabcabcabc0000000000000000000000000000000000000000000000000004";

/// A network namespace of this test, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    /// None (and a loud skip message) when namespaces cannot be made here.
    fn new(tag: &str) -> Option<Netns> {
        let name = format!("berth-dns-{}-{tag}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP: cannot create network namespace {name} (needs root and iproute2)");
            return None;
        }
        let ns = Netns { name };
        let up = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"])
            .status();
        assert!(up.unwrap().success(), "bringing lo up in {}", ns.name);
        Some(ns)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn query_bytes(name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

/// Sends one query to 127.0.0.11:53 from inside `ns` (a thread that entered it); None on no answer.
async fn ask(ns: &Path, name: &str, rtype: RecordType, tcp: bool) -> Option<Message> {
    let (path, query) = (ns.to_path_buf(), query_bytes(name, rtype));
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            nix::sched::setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
            let server: SocketAddr = "127.0.0.11:53".parse().unwrap();
            let bytes = if tcp {
                let mut s = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(2)).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s.write_all(&(query.len() as u16).to_be_bytes()).unwrap();
                s.write_all(&query).unwrap();
                let mut len = [0u8; 2];
                s.read_exact(&mut len).ok()?;
                let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                s.read_exact(&mut buf).ok()?;
                buf
            } else {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s.send_to(&query, server).unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.recv(&mut buf).ok()?;
                buf.truncate(n);
                buf
            };
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.metadata.id, Message::from_vec(&query).unwrap().metadata.id);
            Some(m)
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap()
}

fn addrs(m: &Message) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What the fake upstream does with a name.
#[derive(Clone, Copy)]
enum Fake {
    /// Answers everything: `forwarded.example.` → 192.0.2.7, anything else NXDOMAIN; for
    /// `big.example.` UDP answers truncated and TCP answers 192.0.2.8.
    Answer,
    /// Never answers.
    Silent,
}

/// A fake upstream resolver on 127.0.0.1 (UDP and TCP on one port) in the host namespace; counts
/// the queries it got.
struct FakeUpstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

fn fake_answer(query: &[u8], tcp: bool) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.queries = q.queries.clone();
    let name = q.queries[0].name.to_ascii().to_ascii_lowercase();
    match name.as_str() {
        "forwarded.example." => r.answers.push(Record::from_rdata(
            q.queries[0].name.clone(),
            60,
            RData::A(A("192.0.2.7".parse().unwrap())),
        )),
        "big.example." if !tcp => r.metadata.truncation = true,
        "big.example." => r.answers.push(Record::from_rdata(
            q.queries[0].name.clone(),
            60,
            RData::A(A("192.0.2.8".parse().unwrap())),
        )),
        _ => r.metadata.response_code = ResponseCode::NXDomain,
    }
    r.to_vec().unwrap()
}

impl FakeUpstream {
    /// On 127.0.0.1 of the host namespace.
    async fn start(mode: Fake) -> FakeUpstream {
        Self::start_in(mode, None).await
    }

    /// On 127.0.0.1 of `netns` (the host's if None).
    async fn start_in(mode: Fake, netns: Option<PathBuf>) -> FakeUpstream {
        // Same port for UDP and TCP; retry if another test holds the TCP one.
        for _ in 0..20 {
            let ns = netns.clone();
            let bound = std::thread::spawn(move || {
                if let Some(ns) = ns {
                    nix::sched::setns(File::open(ns).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
                }
                let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let tcp = std::net::TcpListener::bind(udp.local_addr().unwrap()).ok()?;
                udp.set_nonblocking(true).unwrap();
                tcp.set_nonblocking(true).unwrap();
                Some((udp, tcp))
            })
            .join()
            .unwrap();
            let Some((udp, tcp)) = bound else { continue };
            let udp = tokio::net::UdpSocket::from_std(udp).unwrap();
            let tcp = tokio::net::TcpListener::from_std(tcp).unwrap();
            let addr = udp.local_addr().unwrap();
            let queries = Arc::new(AtomicUsize::new(0));
            let counter = queries.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
                    counter.fetch_add(1, Ordering::SeqCst);
                    if let Fake::Answer = mode {
                        udp.send_to(&fake_answer(&buf[..n], false), peer).await.unwrap();
                    }
                }
            });
            let counter = queries.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                loop {
                    let (mut s, _) = tcp.accept().await.unwrap();
                    counter.fetch_add(1, Ordering::SeqCst);
                    if let Fake::Silent = mode {
                        continue;
                    }
                    let len = s.read_u16().await.unwrap();
                    let mut q = vec![0u8; len as usize];
                    s.read_exact(&mut q).await.unwrap();
                    let a = fake_answer(&q, true);
                    s.write_all(&(a.len() as u16).to_be_bytes()).await.unwrap();
                    s.write_all(&a).await.unwrap();
                }
            });
            return FakeUpstream { addr, queries };
        }
        panic!("no free port for the fake upstream");
    }
}

/// Records with two networks: `front` (web, db) and `back` (outsider); and the views of the four
/// containers.
fn records() -> DnsRecords {
    let r = DnsRecords::new();
    r.set_network_name("front-id", "front");
    r.set_network_name("back-id", "back");
    r.add_endpoint(
        "front-id",
        EndpointRecord {
            container_id: WEB.into(),
            names: vec!["web".into(), "www".into()],
            v4: Some("172.30.0.2".parse().unwrap()),
            v6: Some("fd30::2".parse().unwrap()),
        },
    );
    r.add_endpoint(
        "front-id",
        EndpointRecord {
            container_id: DB.into(),
            names: vec!["db".into(), "database".into()],
            v4: Some("172.30.0.3".parse().unwrap()),
            v6: None,
        },
    );
    r.add_endpoint(
        "back-id",
        EndpointRecord {
            container_id: OUTSIDER.into(),
            names: vec!["outsider".into()],
            v4: Some("172.31.0.2".parse().unwrap()),
            v6: None,
        },
    );
    r.set_view(WEB, vec!["front-id".into()], vec![]);
    r.set_view(OUTSIDER, vec!["back-id".into()], vec![]);
    r.set_view(LINKER, vec!["back-id".into()], vec![("olddb".into(), ip("172.30.0.3"))]);
    r
}

/// A server with short forwarding timeouts, listening for `container` in a new namespace.
async fn serve(
    records: DnsRecords,
    upstreams: Vec<SocketAddr>,
    container: &str,
    tag: &str,
) -> Option<(DnsServer, Netns)> {
    let ns = Netns::new(tag)?;
    let server = DnsServer::start(records, upstreams);
    server.set_forward_timeout(Duration::from_millis(400));
    server.listen(container, &ns.path()).await.unwrap();
    Some((server, ns))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_names_aliases_short_ids_and_ptr() {
    let Some((server, ns)) = serve(records(), vec![], WEB, "names").await else {
        return;
    };
    let p = ns.path();
    let db = vec![ip("172.30.0.3")];
    for name in ["db", "database", "0123456789ab", "DataBase.", "db.front", "DB.FRONT."] {
        let m = ask(&p, name, RecordType::A, false).await.expect(name);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(addrs(&m), db, "{name}");
    }
    // Its own names too, in both families.
    assert_eq!(
        addrs(&ask(&p, "www", RecordType::A, false).await.unwrap()),
        vec![ip("172.30.0.2")]
    );
    assert_eq!(
        addrs(&ask(&p, "web", RecordType::AAAA, false).await.unwrap()),
        vec![ip("fd30::2")]
    );

    // Known name, no AAAA: NOERROR with no answers, not NXDOMAIN.
    let m = ask(&p, "db", RecordType::AAAA, false).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());

    let m = ask(&p, "3.0.30.172.in-addr.arpa.", RecordType::PTR, false)
        .await
        .unwrap();
    assert_eq!(
        m.answers[0].data,
        RData::PTR(PTR(Name::from_ascii("db.front.").unwrap()))
    );

    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_networks_and_links_are_private() {
    let up = FakeUpstream::start(Fake::Answer).await;
    let Some(outsider) = Netns::new("outsider") else { return };
    let Some(linker) = Netns::new("linker") else { return };
    let server = DnsServer::start(records(), vec![up.addr]);
    server.set_forward_timeout(Duration::from_millis(400));
    server.listen(OUTSIDER, &outsider.path()).await.unwrap();
    server.listen(LINKER, &linker.path()).await.unwrap();

    // Not on `front`: `db` is not known there, so it goes upstream, which says NXDOMAIN.
    let m = ask(&outsider.path(), "db", RecordType::A, false).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert_eq!(
        addrs(&ask(&outsider.path(), "outsider", RecordType::A, false).await.unwrap()),
        vec![ip("172.31.0.2")]
    );

    // The link alias answers for the container that has it, and for it alone.
    assert_eq!(
        addrs(&ask(&linker.path(), "olddb", RecordType::A, false).await.unwrap()),
        vec![ip("172.30.0.3")]
    );
    let m = ask(&outsider.path(), "olddb", RecordType::A, false).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_unknown_names_to_the_upstream() {
    let up = FakeUpstream::start(Fake::Answer).await;
    let Some((server, ns)) = serve(records(), vec![up.addr], WEB, "fwd").await else {
        return;
    };
    let m = ask(&ns.path(), "forwarded.example", RecordType::A, false)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&m), vec![ip("192.0.2.7")]);
    let before = up.queries.load(Ordering::SeqCst);
    assert!(before >= 1);
    // Known names never leave.
    ask(&ns.path(), "db", RecordType::A, false).await.unwrap();
    assert_eq!(up.queries.load(Ordering::SeqCst), before);
    // A truncated UDP answer is retried over TCP.
    assert_eq!(
        addrs(&ask(&ns.path(), "big.example", RecordType::A, false).await.unwrap()),
        vec![ip("192.0.2.8")]
    );
    // A TCP query is forwarded over TCP.
    assert_eq!(
        addrs(&ask(&ns.path(), "forwarded.example", RecordType::A, true).await.unwrap()),
        vec![ip("192.0.2.7")]
    );
    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_when_the_upstream_is_silent() {
    let silent = FakeUpstream::start(Fake::Silent).await;
    let Some((server, ns)) = serve(records(), vec![silent.addr], WEB, "silent").await else {
        return;
    };
    let m = ask(&ns.path(), "forwarded.example", RecordType::A, false)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(silent.queries.load(Ordering::SeqCst) >= 1);
    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_upstreams_win_and_loopback_ones_are_asked_inside_the_namespace() {
    let Some(ns) = Netns::new("own") else { return };
    let host_default = FakeUpstream::start(Fake::Silent).await;
    // `--dns 127.0.0.1`: a resolver in the container's own namespace, not the host's.
    let inside = FakeUpstream::start_in(Fake::Answer, Some(ns.path())).await;
    let r = records();
    let mut view = r.view(WEB).unwrap();
    view.upstreams = vec![inside.addr];
    r.set_container_view(WEB, view);
    let server = DnsServer::start(r, vec![host_default.addr]);
    server.set_forward_timeout(Duration::from_millis(400));
    server.listen(WEB, &ns.path()).await.unwrap();
    let m = ask(&ns.path(), "forwarded.example", RecordType::A, false)
        .await
        .unwrap();
    assert_eq!(addrs(&m), vec![ip("192.0.2.7")]);
    let m = ask(&ns.path(), "forwarded.example", RecordType::A, true).await.unwrap();
    assert_eq!(addrs(&m), vec![ip("192.0.2.7")]);
    assert_eq!(inside.queries.load(Ordering::SeqCst), 2);
    assert_eq!(host_default.queries.load(Ordering::SeqCst), 0);
    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_queries_are_answered() {
    let Some((server, ns)) = serve(records(), vec![], WEB, "tcp").await else {
        return;
    };
    let m = ask(&ns.path(), "db", RecordType::A, true).await.unwrap();
    assert_eq!(addrs(&m), vec![ip("172.30.0.3")]);
    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_the_sockets() {
    let Some((server, ns)) = serve(records(), vec![], WEB, "stop").await else {
        return;
    };
    assert!(ask(&ns.path(), "db", RecordType::A, false).await.is_some());
    assert!(
        server.listen(WEB, &ns.path()).await.is_err(),
        "a second listen is refused"
    );
    assert!(server.stop(WEB).await);
    assert!(!server.is_listening(WEB));
    assert!(ask(&ns.path(), "db", RecordType::A, false).await.is_none());
    assert!(ask(&ns.path(), "db", RecordType::A, true).await.is_none());
    assert!(!server.stop(WEB).await);
    // The port is free again: listening anew works.
    server.listen(WEB, &ns.path()).await.unwrap();
    assert!(ask(&ns.path(), "db", RecordType::A, false).await.is_some());
    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_on_a_missing_namespace_fails() {
    let server = DnsServer::start(records(), vec![]);
    let err = server
        .listen(WEB, Path::new("/run/netns/berth-dns-no-such-namespace"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("berth-dns-no-such-namespace"), "{err}");
}

/// What busybox's `nslookup` (a real resolver client) prints inside the namespace.
async fn nslookup(ns: &Netns, args: &[&str]) -> String {
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "busybox", "nslookup"])
        .args(args)
        .arg("127.0.0.11")
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_nslookup_resolves() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is not installed");
        return;
    }
    let Some((server, ns)) = serve(records(), vec![], WEB, "busybox").await else {
        return;
    };
    let out = nslookup(&ns, &["database"]).await;
    assert!(out.contains("172.30.0.3"), "{out}");
    let out = nslookup(&ns, &["-type=aaaa", "web.front"]).await;
    assert!(out.contains("fd30::2"), "{out}");
    let out = nslookup(&ns, &["172.30.0.2"]).await;
    assert!(out.contains("name = web.front"), "{out}");
    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_forwards_in_flight_and_frees_the_port() {
    let silent = FakeUpstream::start(Fake::Silent).await;
    let Some((server, ns)) = serve(records(), vec![silent.addr], WEB, "inflight").await else {
        return;
    };
    server.set_forward_timeout(Duration::from_secs(30));
    let path = ns.path();
    let pending = tokio::spawn(async move { ask(&path, "forwarded.example", RecordType::A, false).await });
    for _ in 0..100 {
        if silent.queries.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        silent.queries.load(Ordering::SeqCst),
        1,
        "the query reached the upstream"
    );
    assert!(server.stop(WEB).await);
    // The forward held the UDP socket; stop waited for it, so binding again works at once.
    server.listen(WEB, &ns.path()).await.unwrap();
    assert!(pending.await.unwrap().is_none(), "a cancelled forward is not answered");
    server.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_wire_does_not_stop_the_server() {
    let Some((server, ns)) = serve(records(), vec![], WEB, "garbage").await else {
        return;
    };
    let path = ns.path();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            nix::sched::setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
            let server: SocketAddr = "127.0.0.11:53".parse().unwrap();
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut valid = query_bytes("db.", RecordType::A);
            valid[2] |= 0x80; // a "response": must be ignored, not answered
            let datagrams: Vec<Vec<u8>> = vec![
                vec![],
                vec![0xff],
                vec![0u8; 11],
                vec![0xab; 600],
                valid,
                (0..=255u8).collect(),
            ];
            for d in &datagrams {
                udp.send_to(d, server).unwrap();
            }
            // TCP: a length longer than what follows, then a close; and a zero length.
            for bytes in [&[0x10u8, 0x00, 1, 2, 3][..], &[0, 0][..]] {
                let mut s = std::net::TcpStream::connect(server).unwrap();
                s.write_all(bytes).unwrap();
            }
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap();
    let m = ask(&ns.path(), "db", RecordType::A, false).await.unwrap();
    assert_eq!(addrs(&m), vec![ip("172.30.0.3")]);
    let m = ask(&ns.path(), "db", RecordType::A, true).await.unwrap();
    assert_eq!(addrs(&m), vec![ip("172.30.0.3")]);
    server.stop_all().await;
}
