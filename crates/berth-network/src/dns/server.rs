//! The server: sockets on 127.0.0.11:53 inside each container's network namespace, answers from
//! [`DnsRecords`], forwarding from the daemon's namespace for everything else.
//!
//! Why the sockets are made on a thread of their own: `setns(CLONE_NEWNET)` changes the namespace of
//! the calling thread only, and a socket stays in the namespace it was created in. So a fresh thread
//! enters the container's namespace, binds, hands the sockets back and exits; tokio's threads never
//! change namespace, and the forwarding sockets are made on them, in the host's namespace, where the
//! host's resolvers (127.0.0.53 included) are reachable.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use nix::sched::CloneFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::error::DnsError;
use super::records::{DnsRecords, Family, Unknown};

/// The embedded server's address inside every container, as Docker's.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// The DNS port.
pub const DNS_PORT: u16 = 53;
/// TTL of the answers from the records (libnetwork's `respTTL`).
const TTL: u32 = 600;
/// How long one upstream gets to answer (libnetwork's `extIOTimeout`).
const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(4);
/// Forwarded queries in flight per container; more are dropped (the client retries).
const MAX_IN_FLIGHT: usize = 1024;
/// TCP connections per container.
const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP connection idle for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// EDNS payload size we advertise (the DNS flag day's 1232).
const EDNS_PAYLOAD: u16 = 1232;
/// The longest UDP query read (the usual EDNS buffer size); kept small, one buffer per container.
const UDP_QUERY_MAX: usize = 4096;
/// Size of a DNS header.
const HEADER_LEN: usize = 12;

/// The network namespace file of a process (`/proc/<pid>/ns/net`), for [`DnsServer::listen`].
pub fn netns_path_of_pid(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

/// What to do with one query, decided from the records alone (no I/O), so it can be tested and
/// fuzzed without sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back.
    Answer(Vec<u8>),
    /// The name is not the container's to know: forward the query upstream.
    Forward,
    /// Not a query (a response, or too short to answer): ignore it.
    Drop,
}

/// Answers one DNS message sent by `container_id` from the records; `udp` limits the answer's size
/// to what the client accepts (truncated with TC set beyond it). Never panics on any input.
pub fn answer_query(records: &DnsRecords, container_id: &str, query: &[u8], udp: bool) -> Reply {
    // Never answer a response (a loop) or something without a header.
    let (Some(id), Some(flags)) = (query.get(..2), query.get(2)) else {
        return Reply::Drop;
    };
    if query.len() < HEADER_LEN || flags & 0x80 != 0 {
        return Reply::Drop;
    }
    let id = u16::from_be_bytes([id[0], id[1]]);
    let Ok(request) = Message::from_vec(query) else {
        return error_reply(id, ResponseCode::FormErr);
    };
    if request.metadata.message_type != MessageType::Query {
        return Reply::Drop;
    }
    if request.metadata.op_code != OpCode::Query {
        return error_reply(id, ResponseCode::NotImp);
    }
    let [question] = request.queries.as_slice() else {
        return error_reply(id, ResponseCode::FormErr);
    };
    let qname = &question.name;
    let family = match question.query_type {
        RecordType::A => Some(Family::V4),
        RecordType::AAAA => Some(Family::V6),
        _ => None,
    };
    if question.query_class != DNSClass::IN {
        return unknown(records, container_id, &request, family, udp);
    }
    let answers: Option<Vec<Record>> = match question.query_type {
        RecordType::A | RecordType::AAAA => family
            .and_then(|family| records.lookup(container_id, &qname.to_ascii(), family))
            .map(|ips| {
                ips.into_iter()
                    .map(|ip| {
                        let data = match ip {
                            IpAddr::V4(v4) => RData::A(A(v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                        };
                        Record::from_rdata(qname.clone(), TTL, data)
                    })
                    .collect()
            }),
        RecordType::PTR => qname
            .parse_arpa_name()
            .ok()
            .filter(|net| net.prefix_len() == net.max_prefix_len())
            .and_then(|net| records.lookup_ptr(container_id, net.addr()))
            .and_then(|target| Name::from_ascii(format!("{target}.")).ok())
            .map(|target| vec![Record::from_rdata(qname.clone(), TTL, RData::PTR(PTR(target)))]),
        _ => None,
    };
    let Some(answers) = answers else {
        return unknown(records, container_id, &request, family, udp);
    };
    respond(&request, answers, ResponseCode::NoError, udp)
}

/// A name the container does not know: forwarded, or answered as its view says.
fn unknown(records: &DnsRecords, container_id: &str, request: &Message, family: Option<Family>, udp: bool) -> Reply {
    let name = request.queries.first().map(|q| q.name.to_ascii()).unwrap_or_default();
    match records.unknown_policy(container_id, &name, family) {
        Unknown::Forward => Reply::Forward,
        Unknown::Empty => respond(request, Vec::new(), ResponseCode::NoError, udp),
        Unknown::Fail => respond(request, Vec::new(), ResponseCode::ServFail, udp),
    }
}

/// The response to `request` with these answers.
fn respond(request: &Message, answers: Vec<Record>, code: ResponseCode, udp: bool) -> Reply {
    let id = request.metadata.id;
    let mut response = Message::response(id, OpCode::Query);
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.authoritative = true;
    response.metadata.recursion_available = true;
    response.metadata.response_code = code;
    response.queries = request.queries.clone();
    response.answers = answers;
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        response.edns = Some(edns);
    }
    match encode_for(&response, request, udp) {
        Some(bytes) => Reply::Answer(bytes),
        None => error_reply(id, ResponseCode::ServFail),
    }
}

/// The message's bytes, truncated (TC set, answers dropped) if longer than a UDP client accepts.
fn encode_for(response: &Message, request: &Message, udp: bool) -> Option<Vec<u8>> {
    let bytes = response.to_vec().ok()?;
    if udp && bytes.len() > usize::from(request.max_payload()) {
        return response.truncate().to_vec().ok();
    }
    Some(bytes)
}

fn error_reply(id: u16, code: ResponseCode) -> Reply {
    error_bytes(id, code).map_or(Reply::Drop, Reply::Answer)
}

fn error_bytes(id: u16, code: ResponseCode) -> Option<Vec<u8>> {
    let mut message = Message::error_msg(id, OpCode::Query, code);
    message.metadata.recursion_available = true;
    message.to_vec().ok()
}

/// SERVFAIL for a query, echoing its question and flags when it parses.
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.recursion_available = true;
    response.metadata.response_code = ResponseCode::ServFail;
    response.queries = request.queries;
    response.to_vec().ok()
}

/// The forwarding settings, shared by every container's listener.
#[derive(Debug)]
struct Config {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
}

/// Where a query is forwarded, and from which namespace (None: the daemon's).
#[derive(Debug, Clone)]
struct Upstream {
    addr: SocketAddr,
    netns: Option<Arc<PathBuf>>,
}

#[derive(Debug)]
struct Shared {
    records: DnsRecords,
    config: RwLock<Config>,
}

impl Shared {
    /// The upstreams for a container and the timeout: its own (`--dns`) ones, a loopback one
    /// reached from inside its namespace (127.0.0.1 there is the container's); else the server's,
    /// all reached from the daemon's namespace (the host's 127.0.0.53 included).
    fn forwarding(&self, container_id: &str, netns: &Arc<PathBuf>) -> (Vec<Upstream>, Duration) {
        let own = self.records.upstreams_of(container_id);
        let config = self.config.read().unwrap_or_else(PoisonError::into_inner);
        let upstreams = if own.is_empty() {
            config
                .upstreams
                .iter()
                .map(|&addr| Upstream { addr, netns: None })
                .collect()
        } else {
            own.into_iter()
                .map(|addr| Upstream {
                    addr,
                    netns: addr.ip().is_loopback().then(|| netns.clone()),
                })
                .collect()
        };
        (upstreams, config.timeout)
    }
}

#[derive(Debug)]
struct Listener {
    /// Tells the tasks to close their sockets and cancel what they have in flight.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The embedded DNS server: one UDP and one TCP socket on 127.0.0.11:53 per container namespace,
/// all served by tokio tasks. Cloning shares the server.
#[derive(Debug, Clone)]
pub struct DnsServer {
    shared: Arc<Shared>,
    listeners: Arc<Mutex<HashMap<String, Listener>>>,
}

impl DnsServer {
    /// A server answering from `records`, forwarding the rest to `upstreams` (the host's
    /// resolv.conf, see [`super::ResolvConf::upstreams`]). Listens nowhere until [`Self::listen`].
    pub fn start(records: DnsRecords, upstreams: Vec<SocketAddr>) -> Self {
        let config = Config {
            upstreams,
            timeout: DEFAULT_FORWARD_TIMEOUT,
        };
        DnsServer {
            shared: Arc::new(Shared {
                records,
                config: RwLock::new(config),
            }),
            listeners: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The records the server answers from.
    pub fn records(&self) -> &DnsRecords {
        &self.shared.records
    }

    /// Replaces the default upstreams (after the host's resolv.conf changed).
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        self.shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .upstreams = upstreams;
    }

    /// How long each upstream gets to answer before the next is tried (4 s by default, as Docker).
    pub fn set_forward_timeout(&self, timeout: Duration) {
        self.shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .timeout = timeout;
    }

    fn lock_listeners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listener>> {
        self.listeners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the server listens for this container.
    pub fn is_listening(&self, container_id: &str) -> bool {
        self.lock_listeners().contains_key(container_id)
    }

    /// Binds UDP and TCP on 127.0.0.11:53 inside the network namespace `netns` (a
    /// `/proc/<pid>/ns/net` file, see [`netns_path_of_pid`], or a bind mount of one) and answers
    /// queries there with `container_id`'s view. Its `lo` must be up. Must run inside a tokio runtime.
    pub async fn listen(&self, container_id: &str, netns: &Path) -> Result<(), DnsError> {
        if self.is_listening(container_id) {
            return Err(DnsError::AlreadyListening {
                container: container_id.to_string(),
            });
        }
        let (udp, tcp) = bind_in_netns(container_id, netns).await?;
        let addr = SocketAddr::from((DNS_ADDR, DNS_PORT));
        let bind_err = |proto, source| DnsError::Bind {
            container: container_id.to_string(),
            proto,
            addr,
            source,
        };
        let udp = UdpSocket::from_std(udp).map_err(|e| bind_err("udp", e))?;
        let tcp = TcpListener::from_std(tcp).map_err(|e| bind_err("tcp", e))?;

        let mut listeners = self.lock_listeners();
        if listeners.contains_key(container_id) {
            // Another listen for the same container won the race; these sockets are dropped.
            return Err(DnsError::AlreadyListening {
                container: container_id.to_string(),
            });
        }
        let (stop, stopped) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            shared: self.shared.clone(),
            container_id: container_id.to_string(),
            netns: Arc::new(netns.to_path_buf()),
        });
        let tasks = vec![
            tokio::spawn(serve_udp(ctx.clone(), Arc::new(udp), stopped.clone())),
            tokio::spawn(serve_tcp(ctx, tcp, stopped)),
        ];
        listeners.insert(container_id.to_string(), Listener { stop, tasks });
        tracing::debug!(container = container_id, netns = %netns.display(), "dns: listening on 127.0.0.11:53");
        Ok(())
    }

    /// Stops answering for a container: its sockets (and TCP connections, and queries in flight)
    /// are closed when this returns. False if the server was not listening for it.
    pub async fn stop(&self, container_id: &str) -> bool {
        let Some(listener) = self.lock_listeners().remove(container_id) else {
            return false;
        };
        close(listener).await;
        true
    }

    /// Stops answering for every container.
    pub async fn stop_all(&self) {
        let all: Vec<Listener> = self.lock_listeners().drain().map(|(_, l)| l).collect();
        for listener in all {
            close(listener).await;
        }
    }
}

async fn close(listener: Listener) {
    let _ = listener.stop.send(true);
    // Each task returns only after its socket and its children (which share the UDP socket) are
    // gone, so the port is free when this returns.
    for task in listener.tasks {
        let _ = task.await;
    }
}

/// Makes the sockets inside the namespace on a fresh thread (see the module's header).
async fn bind_in_netns(
    container: &str,
    netns: &Path,
) -> Result<(std::net::UdpSocket, std::net::TcpListener), DnsError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (cid, path) = (container.to_string(), netns.to_path_buf());
    std::thread::Builder::new()
        .name("berth-dns-netns".into())
        .spawn(move || {
            let _ = tx.send(bind_in_netns_blocking(&cid, &path));
        })
        .map_err(|e| DnsError::Thread {
            container: container.to_string(),
            reason: e.to_string(),
        })?;
    rx.await.map_err(|_| DnsError::Thread {
        container: container.to_string(),
        reason: "the thread ended without an answer".into(),
    })?
}

/// Runs on a thread that is thrown away afterwards: it enters the namespace for good.
fn bind_in_netns_blocking(
    container: &str,
    netns: &Path,
) -> Result<(std::net::UdpSocket, std::net::TcpListener), DnsError> {
    let file = File::open(netns).map_err(|source| DnsError::OpenNetns {
        container: container.to_string(),
        path: netns.to_path_buf(),
        source,
    })?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| DnsError::EnterNetns {
        container: container.to_string(),
        path: netns.to_path_buf(),
        source,
    })?;
    let addr = SocketAddr::from((DNS_ADDR, DNS_PORT));
    let bind_err = |proto, source| DnsError::Bind {
        container: container.to_string(),
        proto,
        addr,
        source,
    };
    let udp = std::net::UdpSocket::bind(addr).map_err(|e| bind_err("udp", e))?;
    udp.set_nonblocking(true).map_err(|e| bind_err("udp", e))?;
    let tcp = std::net::TcpListener::bind(addr).map_err(|e| bind_err("tcp", e))?;
    tcp.set_nonblocking(true).map_err(|e| bind_err("tcp", e))?;
    Ok((udp, tcp))
}

/// What a container's listener tasks share.
#[derive(Debug)]
struct Ctx {
    shared: Arc<Shared>,
    container_id: String,
    netns: Arc<PathBuf>,
}

async fn serve_udp(ctx: Arc<Ctx>, socket: Arc<UdpSocket>, mut stopped: watch::Receiver<bool>) {
    // Owned here so that stopping the listener cancels the forwards in flight too.
    let mut in_flight = JoinSet::new();
    // Queries are small; a datagram longer than this is cut and answered FORMERR.
    let mut buf = vec![0u8; UDP_QUERY_MAX];
    loop {
        while in_flight.try_join_next().is_some() {}
        let received = tokio::select! {
            _ = stopped.changed() => break,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, peer) = match received {
            Ok(got) => got,
            Err(e) => {
                tracing::debug!(container = %ctx.container_id, error = %e, "dns: udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(query) = buf.get(..len).map(<[u8]>::to_vec) else {
            continue;
        };
        match answer_query(&ctx.shared.records, &ctx.container_id, &query, true) {
            Reply::Answer(bytes) => {
                let _ = socket.send_to(&bytes, peer).await;
            }
            Reply::Drop => {}
            Reply::Forward if in_flight.len() >= MAX_IN_FLIGHT => {}
            Reply::Forward => {
                let (ctx, socket) = (ctx.clone(), socket.clone());
                in_flight.spawn(async move {
                    if let Some(bytes) = forward_reply(&ctx, &query, true).await {
                        let _ = socket.send_to(&bytes, peer).await;
                    }
                });
            }
        }
    }
    in_flight.shutdown().await;
}

async fn serve_tcp(ctx: Arc<Ctx>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(container = %ctx.container_id, error = %e, "dns: tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if connections.len() >= MAX_TCP_CONNECTIONS {
            continue;
        }
        connections.spawn(serve_tcp_connection(ctx.clone(), stream));
    }
    connections.shutdown().await;
}

/// DNS over TCP: each message prefixed by its length (RFC 1035 4.2.2); several per connection.
async fn serve_tcp_connection(ctx: Arc<Ctx>, mut stream: TcpStream) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        let mut query = vec![0u8; usize::from(len)];
        let Ok(Ok(_)) = tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await else {
            return;
        };
        let bytes = match answer_query(&ctx.shared.records, &ctx.container_id, &query, false) {
            Reply::Answer(bytes) => bytes,
            Reply::Drop => return,
            Reply::Forward => match forward_reply(&ctx, &query, false).await {
                Some(bytes) => bytes,
                None => return,
            },
        };
        let Ok(len) = u16::try_from(bytes.len()) else { return };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The upstream's answer to a query, or SERVFAIL when none answers; sized for a UDP client.
async fn forward_reply(ctx: &Ctx, query: &[u8], udp: bool) -> Option<Vec<u8>> {
    let (upstreams, timeout) = ctx.shared.forwarding(&ctx.container_id, &ctx.netns);
    let Some(response) = forward(&upstreams, query, !udp, timeout).await else {
        tracing::debug!(container = %ctx.container_id, "dns: no upstream answered; SERVFAIL");
        return servfail(query);
    };
    let limit = Message::from_vec(query).map_or(512, |m| usize::from(m.max_payload()));
    if udp && response.len() > limit {
        // A TCP answer too long for the client's UDP: hand it the truncated one so it retries on TCP.
        return Message::from_vec(&response)
            .ok()
            .and_then(|m| m.truncate().to_vec().ok())
            .or_else(|| servfail(query));
    }
    Some(response)
}

/// Tries each upstream in turn: over TCP for a TCP query, else UDP and TCP when the answer is
/// truncated (keeping the truncated one if TCP fails).
async fn forward(upstreams: &[Upstream], query: &[u8], tcp: bool, timeout: Duration) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let result = if tcp {
            tcp_exchange(upstream, query, timeout).await
        } else {
            match udp_exchange(upstream, query, timeout).await {
                Ok(response) if response.get(2).is_some_and(|flags| flags & 0x02 != 0) => {
                    Ok(tcp_exchange(upstream, query, timeout).await.unwrap_or(response))
                }
                other => other,
            }
        };
        match result {
            Ok(response) => return Some(response),
            Err(e) => tracing::debug!(upstream = %upstream.addr, error = %e, "dns: forwarding failed"),
        }
    }
    None
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the upstream did not answer in time")
}

/// Whether `response` answers `query`: same ID, QR set.
fn answers(query: &[u8], response: &[u8]) -> bool {
    response.len() >= HEADER_LEN
        && query.get(..2) == response.get(..2)
        && response.get(2).is_some_and(|f| f & 0x80 != 0)
}

/// Runs `make` on a fresh thread inside the network namespace `netns`, for a socket that must live
/// there (the thread is thrown away: it never leaves the namespace).
async fn in_netns<T: Send + 'static>(
    netns: &Path,
    make: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = netns.to_path_buf();
    std::thread::Builder::new()
        .name("berth-dns-netns".into())
        .spawn(move || {
            let made = File::open(&path).and_then(|file| {
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                make()
            });
            let _ = tx.send(made);
        })?;
    rx.await
        .map_err(|_| io::Error::other("the namespace thread ended without an answer"))?
}

async fn udp_exchange(upstream: &Upstream, query: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream.addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A fresh socket (random port) per query, connected so only the upstream's datagrams arrive.
    let socket = match &upstream.netns {
        None => UdpSocket::bind(local).await?,
        Some(netns) => UdpSocket::from_std(
            in_netns(netns, move || {
                let socket = std::net::UdpSocket::bind(local)?;
                socket.set_nonblocking(true)?;
                Ok(socket)
            })
            .await?,
        )?,
    };
    socket.connect(upstream.addr).await?;
    socket.send(query).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| timed_out())??;
        let response = buf.get(..len).unwrap_or_default();
        if answers(query, response) {
            return Ok(response.to_vec());
        }
    }
}

async fn tcp_exchange(upstream: &Upstream, query: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let exchange = async {
        let len =
            u16::try_from(query.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
        let addr = upstream.addr;
        let mut stream = match &upstream.netns {
            None => TcpStream::connect(addr).await?,
            Some(netns) => TcpStream::from_std(
                in_netns(netns, move || {
                    let stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
                    stream.set_nonblocking(true)?;
                    Ok(stream)
                })
                .await?,
            )?,
        };
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut response = vec![0u8; usize::from(len)];
        stream.read_exact(&mut response).await?;
        if !answers(query, &response) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the upstream's answer does not match the query",
            ));
        }
        Ok(response)
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| timed_out())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::EndpointRecord;
    use hickory_proto::op::Query;

    const WEB: &str = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";

    fn records() -> DnsRecords {
        let r = DnsRecords::new();
        r.set_network_name("n1", "mynet");
        r.add_endpoint(
            "n1",
            EndpointRecord {
                container_id: WEB.into(),
                names: vec!["web".into()],
                v4: Some("172.18.0.2".parse().unwrap()),
                v6: None,
            },
        );
        r.set_view(WEB, vec!["n1".into()], vec![]);
        r
    }

    fn query(name: &str, rtype: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        m.to_vec().unwrap()
    }

    fn answer(r: &DnsRecords, q: &[u8]) -> Message {
        match answer_query(r, WEB, q, true) {
            Reply::Answer(b) => Message::from_vec(&b).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn answers_a_and_empty_aaaa() {
        let r = records();
        let m = answer(&r, &query("WEB.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, RData::A(A("172.18.0.2".parse().unwrap())));
        assert_eq!(m.answers[0].name.to_ascii(), "WEB.");
        let m = answer(&r, &query("web", RecordType::AAAA));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn ptr_and_forward_decisions() {
        let r = records();
        let m = answer(&r, &query("2.0.18.172.in-addr.arpa.", RecordType::PTR));
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("web.mynet.").unwrap()))
        );
        assert_eq!(
            answer_query(&r, WEB, &query("9.0.18.172.in-addr.arpa.", RecordType::PTR), true),
            Reply::Forward
        );
        assert_eq!(
            answer_query(&r, WEB, &query("18.172.in-addr.arpa.", RecordType::PTR), true),
            Reply::Forward
        );
        assert_eq!(
            answer_query(&r, WEB, &query("example.com.", RecordType::A), true),
            Reply::Forward
        );
        assert_eq!(
            answer_query(&r, WEB, &query("web.", RecordType::MX), true),
            Reply::Forward
        );
    }

    #[test]
    fn ndots_set_and_no_forward_views() {
        let r = records();
        let mut view = r.view(WEB).unwrap();
        view.ndots_set = true;
        r.set_container_view(WEB, view.clone());
        let m = answer(&r, &query("unknown.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(
            answer_query(&r, WEB, &query("unknown.example.", RecordType::A), true),
            Reply::Forward
        );
        assert_eq!(
            answer_query(&r, WEB, &query("unknown.", RecordType::MX), true),
            Reply::Forward
        );
        view.no_forward = true;
        r.set_container_view(WEB, view);
        let m = answer(&r, &query("unknown.example.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(answer(&r, &query("web.", RecordType::A)).answers.len(), 1);
    }

    #[test]
    fn responses_and_short_messages_are_dropped() {
        let r = records();
        let mut q = query("web.", RecordType::A);
        assert_eq!(answer_query(&r, WEB, &q[..5], true), Reply::Drop);
        q[2] |= 0x80;
        assert_eq!(answer_query(&r, WEB, &q, true), Reply::Drop);
    }

    #[test]
    fn garbage_never_panics() {
        let r = records();
        // A small xorshift generator: deterministic, no extra dependency.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = query("web.mynet.", RecordType::A);
        for round in 0..5000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 80) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                // Mutate a valid query, which reaches deeper into the parser.
                let mut b = valid.clone();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                b.truncate((next() as usize) % (b.len() + 1));
                b
            };
            let _ = answer_query(&r, WEB, &bytes, round % 3 == 0);
            let _ = servfail(&bytes);
        }
    }

    #[test]
    fn big_udp_answers_are_truncated() {
        let r = DnsRecords::new();
        for i in 0..60u8 {
            r.add_endpoint(
                "n1",
                EndpointRecord {
                    container_id: format!("{i:0>64}"),
                    names: vec!["many".into()],
                    v4: Some(Ipv4Addr::new(10, 0, 0, i)),
                    v6: None,
                },
            );
        }
        r.set_view(WEB, vec!["n1".into()], vec![]);
        let q = query("many.", RecordType::A);
        let m = answer(&r, &q);
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        let Reply::Answer(b) = answer_query(&r, WEB, &q, false) else {
            panic!("no answer")
        };
        assert_eq!(Message::from_vec(&b).unwrap().answers.len(), 60);
    }
}
