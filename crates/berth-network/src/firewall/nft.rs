//! nftables through netlink: the nf_tables messages written by hand over a `NETLINK_NETFILTER`
//! socket, no `nft` process and no libnftnl. A change is one batch (`NFNL_MSG_BATCH_BEGIN` ..
//! `NFNL_MSG_BATCH_END`), which the kernel commits atomically or not at all; every message asks for
//! an ack so the failing one can be named.
//!
//! Message layout (linux/netfilter/nfnetlink.h, nf_tables.h): `nlmsghdr` (16 bytes), `nfgenmsg`
//! (family, version 0, big-endian `res_id`), then attributes (`nlattr`: u16 length, u16 type, data
//! padded to 4). Integers in attributes are big-endian; register contents (a `meta` or `ct` value
//! compared with `cmp`) are in host order, as the kernel stores them.

use super::rule::{Action, Chain, Family, Match, Owner, Rule, TABLE};
use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use nix::sys::time::TimeVal;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_ECHO: u16 = 0x8;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

// Attribute numbers (enum nft_*_attributes).
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
/// libnftnl's `NFTNL_UDATA_RULE_COMMENT`: `nft list` shows our tag as the rule's comment.
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CT_STATE: u32 = 0;
const NFT_CT_STATUS: u32 = 2;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
const RTN_LOCAL: u32 = 2;
const NFT_NAT_DNAT: u32 = 1;
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
/// `NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)`.
const CT_STATE_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
/// `IPS_DST_NAT`.
const IPS_DST_NAT: u32 = 1 << 5;
const IFNAMSIZ: usize = 16;

/// One netlink message being written.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        buf.push(family);
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        Msg { buf, nests: Vec::new() }
    }

    fn pad(&mut self) {
        while self.buf.len() & 3 != 0 {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn str(&mut self, ty: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(ty, &data);
    }

    fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Msg)) {
        let start = self.buf.len();
        self.nests.push(start);
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(self);
        self.nests.pop();
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }

    /// One expression (`NFTA_LIST_ELEM` { name, data }).
    fn expr(&mut self, name: &str, f: impl FnOnce(&mut Msg)) {
        self.nest(NFTA_LIST_ELEM, |m| {
            m.str(NFTA_EXPR_NAME, name);
            m.nest(NFTA_EXPR_DATA, f);
        });
    }

    fn meta(&mut self, key: u32) {
        self.expr("meta", |m| {
            m.u32(1, NFT_REG_1); // NFTA_META_DREG
            m.u32(2, key); // NFTA_META_KEY
        });
    }

    fn cmp(&mut self, op: u32, data: &[u8]) {
        self.expr("cmp", |m| {
            m.u32(1, NFT_REG_1); // NFTA_CMP_SREG
            m.u32(2, op); // NFTA_CMP_OP
            m.nest(3, |m| m.attr(NFTA_DATA_VALUE, data)); // NFTA_CMP_DATA
        });
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32) {
        self.expr("payload", |m| {
            m.u32(1, NFT_REG_1); // NFTA_PAYLOAD_DREG
            m.u32(2, base);
            m.u32(3, offset);
            m.u32(4, len);
        });
    }

    fn bitwise_and(&mut self, mask: &[u8]) {
        let zeros = vec![0u8; mask.len()];
        self.expr("bitwise", |m| {
            m.u32(1, NFT_REG_1); // NFTA_BITWISE_SREG
            m.u32(2, NFT_REG_1); // NFTA_BITWISE_DREG
            m.u32(3, mask.len() as u32); // NFTA_BITWISE_LEN
            m.nest(4, |m| m.attr(NFTA_DATA_VALUE, mask)); // NFTA_BITWISE_MASK
            m.nest(5, |m| m.attr(NFTA_DATA_VALUE, &zeros)); // NFTA_BITWISE_XOR
        });
    }

    fn ct(&mut self, key: u32) {
        self.expr("ct", |m| {
            m.u32(1, NFT_REG_1); // NFTA_CT_DREG
            m.u32(2, key); // NFTA_CT_KEY
        });
    }

    fn verdict(&mut self, code: i32, chain: Option<&str>) {
        self.expr("immediate", |m| {
            m.u32(1, NFT_REG_VERDICT); // NFTA_IMMEDIATE_DREG
            m.nest(2, |m| {
                m.nest(NFTA_DATA_VERDICT, |m| {
                    m.attr(NFTA_VERDICT_CODE, &code.to_be_bytes());
                    if let Some(chain) = chain {
                        m.str(NFTA_VERDICT_CHAIN, chain);
                    }
                })
            });
        });
    }

    fn immediate(&mut self, reg: u32, data: &[u8]) {
        self.expr("immediate", |m| {
            m.u32(1, reg);
            m.nest(2, |m| m.attr(NFTA_DATA_VALUE, data));
        });
    }
}

fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.truncate(IFNAMSIZ - 1);
    v.push(0);
    v
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The `nfnetlink` family number of a rule family.
fn nfproto(f: Family) -> u8 {
    match f {
        Family::V4 => NFPROTO_IPV4,
        Family::V6 => NFPROTO_IPV6,
    }
}

/// The expressions of a rule, appended to `m` inside `NFTA_RULE_EXPRESSIONS`.
fn encode_rule(m: &mut Msg, rule: &Rule) {
    m.str(NFTA_RULE_TABLE, TABLE);
    m.str(NFTA_RULE_CHAIN, rule.chain.name());
    m.nest(NFTA_RULE_EXPRESSIONS, |m| {
        if let Some(f) = rule.family {
            m.meta(NFT_META_NFPROTO);
            m.cmp(NFT_CMP_EQ, &[nfproto(f)]);
        }
        for mt in &rule.matches {
            encode_match(m, mt);
        }
        match &rule.action {
            Action::Accept => m.verdict(NF_ACCEPT, None),
            Action::Drop => m.verdict(NF_DROP, None),
            Action::Jump(chain) => m.verdict(NFT_JUMP, Some(chain.name())),
            Action::Masquerade => m.nest(NFTA_LIST_ELEM, |m| m.str(NFTA_EXPR_NAME, "masq")),
            Action::Dnat(ip, port) => {
                m.immediate(NFT_REG_1, &ip_bytes(ip));
                m.immediate(NFT_REG_2, &port.to_be_bytes());
                let family = nfproto(Family::of(ip));
                m.expr("nat", |m| {
                    m.u32(1, NFT_NAT_DNAT); // NFTA_NAT_TYPE
                    m.u32(2, u32::from(family)); // NFTA_NAT_FAMILY
                    m.u32(3, NFT_REG_1); // NFTA_NAT_REG_ADDR_MIN
                    m.u32(5, NFT_REG_2); // NFTA_NAT_REG_PROTO_MIN
                });
            }
        }
    });
    let comment = rule.owner.comment();
    let mut ud = vec![NFTNL_UDATA_RULE_COMMENT, (comment.len() + 1).min(255) as u8];
    ud.extend_from_slice(comment.as_bytes());
    ud.push(0);
    m.attr(NFTA_RULE_USERDATA, &ud);
}

fn encode_match(m: &mut Msg, mt: &Match) {
    match mt {
        Match::Iif { name, negate } | Match::Oif { name, negate } => {
            let key = if matches!(mt, Match::Iif { .. }) {
                NFT_META_IIFNAME
            } else {
                NFT_META_OIFNAME
            };
            m.meta(key);
            m.cmp(if *negate { NFT_CMP_NEQ } else { NFT_CMP_EQ }, &ifname_bytes(name));
        }
        Match::SrcNet(net) => {
            let offset = if net.addr().is_ipv4() { 12 } else { 8 };
            let addr = ip_bytes(&net.network());
            m.payload(NFT_PAYLOAD_NETWORK_HEADER, offset, addr.len() as u32);
            if net.prefix_len() < net.max_prefix_len() {
                m.bitwise_and(&ip_bytes(&net.netmask()));
            }
            m.cmp(NFT_CMP_EQ, &addr);
        }
        Match::DstAddr(ip) => {
            let offset = if ip.is_ipv4() { 16 } else { 24 };
            let addr = ip_bytes(ip);
            m.payload(NFT_PAYLOAD_NETWORK_HEADER, offset, addr.len() as u32);
            m.cmp(NFT_CMP_EQ, &addr);
        }
        Match::L4(proto) => {
            m.meta(NFT_META_L4PROTO);
            m.cmp(NFT_CMP_EQ, &[proto.number()]);
        }
        Match::DstPort(port) => {
            // The destination port is at offset 2 in TCP, UDP and SCTP alike.
            m.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
            m.cmp(NFT_CMP_EQ, &port.to_be_bytes());
        }
        Match::DstLocal => {
            m.expr("fib", |m| {
                m.u32(1, NFT_REG_1); // NFTA_FIB_DREG
                m.u32(2, NFT_FIB_RESULT_ADDRTYPE); // NFTA_FIB_RESULT
                m.u32(3, NFTA_FIB_F_DADDR); // NFTA_FIB_FLAGS
            });
            m.cmp(NFT_CMP_EQ, &RTN_LOCAL.to_ne_bytes());
        }
        Match::CtEstablished | Match::CtDnat => {
            let (key, mask) = if matches!(mt, Match::CtEstablished) {
                (NFT_CT_STATE, CT_STATE_ESTABLISHED_RELATED)
            } else {
                (NFT_CT_STATUS, IPS_DST_NAT)
            };
            m.ct(key);
            m.bitwise_and(&mask.to_ne_bytes());
            m.cmp(NFT_CMP_NEQ, &0u32.to_ne_bytes());
        }
    }
}

/// One change in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create berth's table if missing.
    AddTable,
    /// Delete berth's table with everything in it.
    DeleteTable,
    /// Create a chain if missing.
    AddChain(Chain),
    /// Append a rule.
    AddRule(Rule),
    /// Delete a rule by handle.
    DeleteRule {
        /// The rule's chain.
        chain: String,
        /// The kernel's handle of the rule.
        handle: u64,
    },
}

impl Op {
    /// What the op does, for an error message.
    fn describe(&self) -> String {
        match self {
            Op::AddTable => format!("add table inet {TABLE}"),
            Op::DeleteTable => format!("delete table inet {TABLE}"),
            Op::AddChain(c) => format!("add chain inet {TABLE} {}", c.name()),
            Op::AddRule(r) => {
                format!("add rule inet {TABLE} {} for {}", r.chain.name(), r.owner.comment())
            }
            Op::DeleteRule { chain, handle } => {
                format!("delete rule inet {TABLE} {chain} handle {handle}")
            }
        }
    }

    /// The message; `ack` asks the kernel to answer even on success, `echo` to send an added rule
    /// back (with the handle it was given).
    fn encode(&self, seq: u32, ack: bool, echo: bool) -> Vec<u8> {
        let ty = |t: u16| (NFNL_SUBSYS_NFTABLES << 8) | t;
        let req = match (ack, echo && matches!(self, Op::AddRule(_))) {
            (true, true) => NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO,
            (true, false) => NLM_F_REQUEST | NLM_F_ACK,
            (false, true) => NLM_F_REQUEST | NLM_F_ECHO,
            (false, false) => NLM_F_REQUEST,
        };
        match self {
            Op::AddTable | Op::DeleteTable => {
                let (t, flags) = match self {
                    Op::AddTable => (NFT_MSG_NEWTABLE, req | NLM_F_CREATE),
                    _ => (NFT_MSG_DELTABLE, req),
                };
                let mut m = Msg::new(ty(t), flags, seq, NFPROTO_INET, 0);
                m.str(NFTA_TABLE_NAME, TABLE);
                m.finish()
            }
            Op::AddChain(chain) => {
                let mut m = Msg::new(ty(NFT_MSG_NEWCHAIN), req | NLM_F_CREATE, seq, NFPROTO_INET, 0);
                m.str(NFTA_CHAIN_TABLE, TABLE);
                m.str(NFTA_CHAIN_NAME, chain.name());
                if let Some(hook) = chain.hook() {
                    m.nest(NFTA_CHAIN_HOOK, |m| {
                        m.u32(NFTA_HOOK_HOOKNUM, hook.num);
                        m.attr(NFTA_HOOK_PRIORITY, &hook.priority.to_be_bytes());
                    });
                    m.u32(NFTA_CHAIN_POLICY, NF_ACCEPT as u32);
                    m.str(NFTA_CHAIN_TYPE, if hook.nat { "nat" } else { "filter" });
                }
                m.finish()
            }
            Op::AddRule(rule) => {
                let flags = req | NLM_F_CREATE | NLM_F_APPEND;
                let mut m = Msg::new(ty(NFT_MSG_NEWRULE), flags, seq, NFPROTO_INET, 0);
                encode_rule(&mut m, rule);
                m.finish()
            }
            Op::DeleteRule { chain, handle } => {
                let mut m = Msg::new(ty(NFT_MSG_DELRULE), req, seq, NFPROTO_INET, 0);
                m.str(NFTA_RULE_TABLE, TABLE);
                m.str(NFTA_RULE_CHAIN, chain);
                m.attr(NFTA_RULE_HANDLE, &handle.to_be_bytes());
                m.finish()
            }
        }
    }
}

/// A rule as listed from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    /// The chain holding it.
    pub chain: String,
    /// The kernel's handle (for deletion).
    pub handle: u64,
    /// Its owner, from the comment berth wrote (`None`: a rule berth did not write).
    pub owner: Option<Owner>,
}

/// The failure of a netlink exchange: what was being done, and the kernel's (or socket's) error.
#[derive(Debug)]
pub struct NftError {
    /// The operation, e.g. `add rule inet berth ports for container:abc`.
    pub op: String,
    /// The error.
    pub source: io::Error,
}

fn err(op: impl Into<String>, e: impl Into<io::Error>) -> NftError {
    NftError {
        op: op.into(),
        source: e.into(),
    }
}

/// A `NETLINK_NETFILTER` socket, bound to the network namespace it was opened in.
pub struct Nft {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// One message read back: type, sequence number, payload after the `nlmsghdr`.
struct Reply {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: Vec<u8>,
}

impl Reply {
    /// The kernel's explanation of an error (`NLMSGERR_ATTR_MSG` with `NETLINK_EXT_ACK`).
    fn ext_ack_message(&self) -> Option<String> {
        if self.flags & NLM_F_ACK_TLVS == 0 {
            return None;
        }
        let orig_len = if self.flags & NLM_F_CAPPED != 0 {
            16
        } else {
            let b = self.payload.get(4..8)?;
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let mut tlvs = self.payload.get(4 + orig_len..)?;
        while tlvs.len() >= 4 {
            let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
            let ty = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & NLA_TYPE_MASK;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if ty == NLMSGERR_ATTR_MSG {
                let v = &tlvs[4..len];
                let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                return Some(String::from_utf8_lossy(&v[..end]).into_owned());
            }
            tlvs = &tlvs[((len + 3) & !3).min(tlvs.len())..];
        }
        None
    }
}

/// Sets an int option at `SOL_NETLINK`; failure is ignored (older kernels lack the option).
fn set_netlink_flag(fd: &OwnedFd, option: libc::c_int) {
    let one: libc::c_int = 1;
    // SAFETY: the pointer and length describe `one`, a live c_int; `fd` is an open socket.
    let _ = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            option,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

impl Nft {
    /// Opens the socket (in the calling thread's network namespace).
    pub fn open() -> Result<Nft, NftError> {
        let op = "open netlink netfilter socket";
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| err(op, e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| err(op, e))?;
        // A kernel that never answers must not hang the daemon.
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(10, 0)).map_err(|e| err(op, e))?;
        // Errors without the whole failed message echoed back, but with the kernel's reason.
        set_netlink_flag(&fd, libc::NETLINK_CAP_ACK);
        set_netlink_flag(&fd, libc::NETLINK_EXT_ACK);
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(Nft {
            fd,
            seq,
            buf: vec![0u8; 256 * 1024],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, op: &str, data: &[u8]) -> Result<(), NftError> {
        if data.len() > 100 * 1024 {
            // One batch is one datagram: make room for large `sync`s.
            let size = data.len().saturating_mul(2);
            setsockopt(&self.fd, sockopt::SndBufForce, &size).map_err(|e| err(op, e))?;
        }
        send(self.fd.as_raw_fd(), data, MsgFlags::empty()).map_err(|e| err(op, e))?;
        Ok(())
    }

    /// Reads one datagram and splits it into messages.
    fn recv(&mut self, op: &str, flags: MsgFlags) -> Result<Vec<Reply>, NftError> {
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, flags) {
                Err(Errno::EINTR) => continue,
                r => break r.map_err(|e| err(op, e))?,
            }
        };
        let mut out = Vec::new();
        let mut data = &self.buf[..n];
        while data.len() >= 16 {
            let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
            if len < 16 || len > data.len() {
                break;
            }
            out.push(Reply {
                ty: u16::from_ne_bytes([data[4], data[5]]),
                flags: u16::from_ne_bytes([data[6], data[7]]),
                seq: u32::from_ne_bytes([data[8], data[9], data[10], data[11]]),
                payload: data[16..len].to_vec(),
            });
            data = &data[((len + 3) & !3).min(data.len())..];
        }
        Ok(out)
    }

    /// Commits `ops` as one transaction: all or nothing.
    pub fn commit(&mut self, ops: &[Op]) -> Result<(), NftError> {
        self.commit_inner(ops, false).map(drop)
    }

    /// Commits `ops` as one transaction and returns the rules it added, with their handles.
    pub fn commit_echo(&mut self, ops: &[Op]) -> Result<Vec<ListedRule>, NftError> {
        self.commit_inner(ops, true)
    }

    fn commit_inner(&mut self, ops: &[Op], echo: bool) -> Result<Vec<ListedRule>, NftError> {
        let mut added = Vec::new();
        if ops.is_empty() {
            return Ok(added);
        }
        let mut data = Vec::new();
        let begin_seq = self.next_seq();
        data.extend(Msg::new(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, begin_seq, 0, NFNL_SUBSYS_NFTABLES).finish());
        let first = self.seq.wrapping_add(1);
        for (i, op) in ops.iter().enumerate() {
            let seq = self.next_seq();
            data.extend(op.encode(seq, i + 1 == ops.len(), echo));
        }
        let last = self.seq;
        let end_seq = self.next_seq();
        data.extend(Msg::new(NFNL_MSG_BATCH_END, NLM_F_REQUEST, end_seq, 0, NFNL_SUBSYS_NFTABLES).finish());
        let what = || {
            if ops.len() == 1 {
                ops[0].describe()
            } else {
                format!("commit {} changes to table inet {TABLE}", ops.len())
            }
        };
        self.send(&what(), &data)?;
        // The kernel processes the batch inside send(2) and then queues its answers, in order: an
        // error for each failed message and an ack for the last one (the only one asking for an
        // ack on success). Acking every message would queue one skb per rule, enough to overflow
        // the receive buffer on a large `sync`. A refused batch (e.g. EPERM) is answered on the
        // BATCH_BEGIN message alone.
        let mut failure: Option<NftError> = None;
        let mut done = false;
        while !done {
            let flags = if failure.is_some() {
                MsgFlags::MSG_DONTWAIT
            } else {
                MsgFlags::empty()
            };
            let replies = match self.recv(&what(), flags) {
                Ok(r) => r,
                Err(e) if failure.is_none() => return Err(e),
                Err(_) => break, // drained
            };
            for r in replies {
                if r.ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE {
                    added.extend(parse_rule(&r.payload));
                    continue;
                }
                if r.ty != NLMSG_ERROR || r.payload.len() < 4 {
                    continue;
                }
                let code = i32::from_ne_bytes([r.payload[0], r.payload[1], r.payload[2], r.payload[3]]);
                let what_failed = if r.seq == begin_seq || r.seq == end_seq {
                    done = true;
                    what()
                } else {
                    let idx = r.seq.wrapping_sub(first) as usize;
                    if idx >= ops.len() {
                        continue; // not ours (a late answer to an earlier request)
                    }
                    done |= r.seq == last;
                    ops[idx].describe()
                };
                if code != 0 && failure.is_none() {
                    let what_failed = match r.ext_ack_message() {
                        Some(msg) => format!("{what_failed} ({msg})"),
                        None => what_failed,
                    };
                    failure = Some(err(what_failed, io::Error::from_raw_os_error(-code)));
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(added),
        }
    }

    /// Whether berth's table exists. `Err` with `EOPNOTSUPP`/`EPROTONOSUPPORT` when the kernel
    /// has no nf_tables.
    pub fn table_exists(&mut self) -> Result<bool, NftError> {
        let op = format!("get table inet {TABLE}");
        let seq = self.next_seq();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
        let mut m = Msg::new(ty, NLM_F_REQUEST | NLM_F_ACK, seq, NFPROTO_INET, 0);
        m.str(NFTA_TABLE_NAME, TABLE);
        self.send(&op, &m.finish())?;
        loop {
            for r in self.recv(&op, MsgFlags::empty())? {
                if r.seq != seq || r.ty != NLMSG_ERROR || r.payload.len() < 4 {
                    continue;
                }
                let code = i32::from_ne_bytes([r.payload[0], r.payload[1], r.payload[2], r.payload[3]]);
                return match code {
                    0 => Ok(true),
                    c if -c == libc::ENOENT => Ok(false),
                    c => Err(err(op, io::Error::from_raw_os_error(-c))),
                };
            }
        }
    }

    /// Every rule in berth's table, or in one of its chains (empty when the table does not exist).
    pub fn list_rules(&mut self, chain: Option<Chain>) -> Result<Vec<ListedRule>, NftError> {
        let op = format!("list rules of table inet {TABLE}");
        let seq = self.next_seq();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE;
        let mut m = Msg::new(ty, NLM_F_REQUEST | NLM_F_DUMP, seq, NFPROTO_INET, 0);
        m.str(NFTA_RULE_TABLE, TABLE);
        if let Some(chain) = chain {
            m.str(NFTA_RULE_CHAIN, chain.name());
        }
        self.send(&op, &m.finish())?;
        let mut out = Vec::new();
        loop {
            for r in self.recv(&op, MsgFlags::empty())? {
                if r.seq != seq {
                    continue;
                }
                match r.ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = r
                            .payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        return match code {
                            0 => Ok(out),
                            c if -c == libc::ENOENT => Ok(Vec::new()),
                            c => Err(err(op, io::Error::from_raw_os_error(-c))),
                        };
                    }
                    _ => {
                        if let Some(rule) = parse_rule(&r.payload) {
                            out.push(rule);
                        }
                    }
                }
            }
        }
    }
}

/// The chain, handle and comment of a `NFT_MSG_NEWRULE` message (payload after `nlmsghdr`).
fn parse_rule(payload: &[u8]) -> Option<ListedRule> {
    let mut data = payload.get(4..)?; // nfgenmsg
    let (mut table, mut chain, mut handle, mut comment) = (None, None, None, None);
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            break;
        }
        let value = &data[4..len];
        let cstr = |v: &[u8]| {
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        };
        match ty {
            NFTA_RULE_TABLE => table = Some(cstr(value)),
            NFTA_RULE_CHAIN => chain = Some(cstr(value)),
            NFTA_RULE_HANDLE if value.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(value);
                handle = Some(u64::from_be_bytes(b));
            }
            NFTA_RULE_USERDATA => comment = parse_comment(value),
            _ => {}
        }
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    if table.as_deref() != Some(TABLE) {
        return None;
    }
    Some(ListedRule {
        chain: chain?,
        handle: handle?,
        owner: comment.and_then(|c| Owner::from_comment(&c)),
    })
}

/// The comment TLV in a rule's user data.
fn parse_comment(mut ud: &[u8]) -> Option<String> {
    while ud.len() >= 2 {
        let (ty, len) = (ud[0], ud[1] as usize);
        let value = ud.get(2..2 + len)?;
        if ty == NFTNL_UDATA_RULE_COMMENT {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            return Some(String::from_utf8_lossy(&value[..end]).into_owned());
        }
        ud = &ud[2 + len..];
    }
    None
}

/// The ops that create berth's table with its chains and fixed rules.
pub fn skeleton() -> Vec<Op> {
    let mut ops = vec![Op::AddTable];
    ops.extend(Chain::ALL.into_iter().map(Op::AddChain));
    ops.extend(super::rule::base_rules().into_iter().map(Op::AddRule));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::rule::port_rules;
    use crate::firewall::{PortMapping, Proto};

    #[test]
    fn attributes_are_padded_and_nests_sized() {
        let mut m = Msg::new(1, 1, 7, NFPROTO_INET, 0);
        m.str(1, "abc"); // 4 + 4 bytes
        m.nest(2, |m| m.u32(1, 5)); // 4 + 8 bytes
        let buf = m.finish();
        assert_eq!(buf.len(), 20 + 8 + 12);
        assert_eq!(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize, buf.len());
        assert_eq!(&buf[24..28], b"abc\0");
        assert_eq!(u16::from_ne_bytes([buf[28], buf[29]]), 12);
        assert_eq!(u16::from_ne_bytes([buf[30], buf[31]]), 2 | NLA_F_NESTED);
    }

    #[test]
    fn a_rule_message_carries_its_comment_back() {
        let rule = port_rules(
            "c1",
            &[PortMapping {
                proto: Proto::Udp,
                host_ip: None,
                host_port: 53,
                container_ip: "10.1.0.2".parse().unwrap(),
                container_port: 5353,
                bridge: "br0".into(),
            }],
        )
        .remove(0);
        let msg = Op::AddRule(rule).encode(9, true, false);
        // parse_rule needs a handle, which the kernel adds; append one.
        let mut payload = msg[16..].to_vec();
        payload.extend_from_slice(&12u16.to_ne_bytes());
        payload.extend_from_slice(&NFTA_RULE_HANDLE.to_ne_bytes());
        payload.extend_from_slice(&42u64.to_be_bytes());
        let listed = parse_rule(&payload).unwrap();
        assert_eq!(listed.chain, "ports");
        assert_eq!(listed.handle, 42);
        assert_eq!(listed.owner, Some(Owner::Container("c1".into())));
    }
}
