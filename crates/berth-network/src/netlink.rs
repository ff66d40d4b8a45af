//! Links, addresses and routes through rtnetlink, synchronously.
//!
//! A [`Netlink`] owns a netlink socket and a current-thread tokio runtime that drives rtnetlink's
//! async API with `block_on`; callers in async code run it on a blocking thread. The socket is
//! created on a thread inside the target namespace ([`Netlink::open_in`]) and stays bound to that
//! namespace for its whole life, so every request through the handle acts there. Errors name the
//! operation, the object and the namespace, and keep the kernel's errno for [`NetError::kind`].
//!
//! [`NetError::kind`]: berth_types::HasErrorKind::kind

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};

use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoPortData, InfoPortKind, InfoVeth, IpVlanMode, LinkAttribute, LinkInfo, LinkMessage,
    MacVlanMode,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
use rtnetlink::{
    Handle, LinkBridge, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::error::NetError;
use crate::netns::{run_in, Netns};

/// A macvlan mode, as Docker's `macvlan_mode` option names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacvlanMode {
    /// Sub-interfaces of one parent talk to each other directly (Docker's default).
    #[default]
    Bridge,
    /// No traffic between sub-interfaces of the same parent.
    Private,
    /// Traffic between sub-interfaces goes out to the switch and back.
    Vepa,
    /// One sub-interface owns the parent.
    Passthru,
}

impl MacvlanMode {
    /// Parses `bridge`, `private`, `vepa` or `passthru` (empty means the default, `bridge`).
    pub fn parse(s: &str) -> Result<MacvlanMode, NetError> {
        match s {
            "" | "bridge" => Ok(MacvlanMode::Bridge),
            "private" => Ok(MacvlanMode::Private),
            "vepa" => Ok(MacvlanMode::Vepa),
            "passthru" => Ok(MacvlanMode::Passthru),
            other => Err(NetError::InvalidOption(format!(
                "requested macvlan mode '{other}' is not valid, 'bridge' mode is the macvlan driver default"
            ))),
        }
    }

    fn to_netlink(self) -> MacVlanMode {
        match self {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// An ipvlan mode, as Docker's `ipvlan_mode` option names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpvlanMode {
    /// Layer 2 (Docker's default).
    #[default]
    L2,
    /// Layer 3, routed by the parent.
    L3,
    /// Layer 3 with netfilter on the parent's side.
    L3s,
}

impl IpvlanMode {
    /// Parses `l2`, `l3` or `l3s` (empty means the default, `l2`).
    pub fn parse(s: &str) -> Result<IpvlanMode, NetError> {
        match s {
            "" | "l2" => Ok(IpvlanMode::L2),
            "l3" => Ok(IpvlanMode::L3),
            "l3s" => Ok(IpvlanMode::L3s),
            other => Err(NetError::InvalidOption(format!(
                "requested ipvlan mode '{other}' is not valid, 'l2' mode is the ipvlan driver default"
            ))),
        }
    }

    fn to_netlink(self) -> IpVlanMode {
        match self {
            IpvlanMode::L2 => IpVlanMode::L2,
            IpvlanMode::L3 => IpVlanMode::L3,
            IpvlanMode::L3s => IpVlanMode::L3S,
        }
    }
}

/// Options of [`Netlink::create_veth_into`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VethOptions {
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// Index of the bridge the local end is attached to.
    pub master: Option<u32>,
    /// Bring the local end up.
    pub up: bool,
    /// MAC address of the peer end.
    pub peer_mac: Option<[u8; 6]>,
}

/// A link named by its name or by its index (an index saves a lookup round trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRef<'a> {
    /// By interface name.
    Name(&'a str),
    /// By interface index.
    Index(u32),
}

impl<'a> From<&'a str> for LinkRef<'a> {
    fn from(n: &'a str) -> Self {
        LinkRef::Name(n)
    }
}

impl<'a> From<&'a String> for LinkRef<'a> {
    fn from(n: &'a String) -> Self {
        LinkRef::Name(n)
    }
}

impl From<u32> for LinkRef<'_> {
    fn from(i: u32) -> Self {
        LinkRef::Index(i)
    }
}

impl std::fmt::Display for LinkRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkRef::Name(n) => f.write_str(n),
            LinkRef::Index(i) => write!(f, "index {i}"),
        }
    }
}

impl LinkRef<'_> {
    /// A request naming this link: the kernel resolves `IFLA_IFNAME` when the index is 0.
    fn builder(self) -> LinkMessageBuilder<LinkUnspec> {
        match self {
            LinkRef::Name(n) => LinkUnspec::new_with_name(n),
            LinkRef::Index(i) => LinkUnspec::new_with_index(i),
        }
    }
}

/// What [`Netlink::links`] reports about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSummary {
    /// The kernel's interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// The hardware address, when it has one.
    pub mac: Option<[u8; 6]>,
    /// The index of its bridge (controller), when enslaved.
    pub master: Option<u32>,
    /// The MTU.
    pub mtu: Option<u32>,
}

impl LinkSummary {
    fn from_message(m: &LinkMessage) -> LinkSummary {
        let mut s = LinkSummary {
            index: m.header.index,
            name: String::new(),
            mac: None,
            master: None,
            mtu: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => s.name = n.clone(),
                LinkAttribute::Address(b) => s.mac = <[u8; 6]>::try_from(b.as_slice()).ok(),
                LinkAttribute::Controller(i) => s.master = Some(*i),
                LinkAttribute::Mtu(m) => s.mtu = Some(*m),
                _ => {}
            }
        }
        s
    }
}

/// A netlink socket bound to one network namespace, with its own runtime.
pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    netns: String,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("netns", &self.netns).finish()
    }
}

fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

impl Netlink {
    /// A handle in the caller's own namespace (the host's, for berthd).
    pub fn open() -> Result<Netlink, NetError> {
        Netlink::open_here("host")
    }

    /// A handle in `ns`: the socket is made on a thread inside it and stays bound to it.
    pub fn open_in(ns: &Netns) -> Result<Netlink, NetError> {
        let label = ns.label().to_string();
        run_in(ns, || Netlink::open_here(&label))?
    }

    /// A handle in the calling thread's namespace, labelled `label` in errors (for code already
    /// running inside [`run_in`]).
    pub fn open_labelled(label: &str) -> Result<Netlink, NetError> {
        Netlink::open_here(label)
    }

    fn open_here(label: &str) -> Result<Netlink, NetError> {
        let io = |source| NetError::Io {
            op: "open netlink socket",
            object: label.to_string(),
            source,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(io)?;
        let handle = {
            let _enter = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(io)?;
            rt.spawn(conn);
            handle
        };
        Ok(Netlink {
            rt,
            handle,
            netns: label.to_string(),
        })
    }

    /// The namespace label used in errors.
    pub fn netns_label(&self) -> &str {
        &self.netns
    }

    fn err(&self, op: &'static str, object: &str) -> impl FnOnce(rtnetlink::Error) -> NetError {
        let object = object.to_string();
        let netns = self.netns.clone();
        move |source| NetError::Netlink {
            op,
            object,
            netns,
            errno: errno_of(&source),
            source: Box::new(source),
        }
    }

    fn not_found(&self, link: LinkRef<'_>) -> NetError {
        NetError::LinkNotFound {
            name: link.to_string(),
            netns: self.netns.clone(),
        }
    }

    /// The link, or `None` when it does not exist.
    pub fn link<'a>(&self, link: impl Into<LinkRef<'a>>) -> Result<Option<LinkSummary>, NetError> {
        let link = link.into();
        let get = self.handle.link().get();
        let req = match link {
            LinkRef::Name(n) => get.match_name(n.to_string()),
            LinkRef::Index(i) => get.match_index(i),
        }
        .execute();
        let res = self.rt.block_on(async {
            futures_util::pin_mut!(req);
            req.try_next().await
        });
        match res {
            Ok(m) => Ok(m.as_ref().map(LinkSummary::from_message)),
            Err(e) if matches!(errno_of(&e), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(None),
            Err(e) => Err(self.err("get link", &link.to_string())(e)),
        }
    }

    /// The index of `name`, or `None` when it does not exist.
    pub fn link_index(&self, name: &str) -> Result<Option<u32>, NetError> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// The index of a link that must exist (an index is returned as is, without a request).
    pub fn require_index<'a>(&self, link: impl Into<LinkRef<'a>>) -> Result<u32, NetError> {
        match link.into() {
            LinkRef::Index(i) => Ok(i),
            l @ LinkRef::Name(n) => self.link_index(n)?.ok_or_else(|| self.not_found(l)),
        }
    }

    /// All links whose name starts with `prefix` (empty: all), to reconcile leaked veths.
    pub fn links(&self, prefix: &str) -> Result<Vec<LinkSummary>, NetError> {
        let req = self.handle.link().get().execute();
        let msgs: Vec<LinkMessage> = self
            .rt
            .block_on(req.try_collect())
            .map_err(self.err("list links", prefix))?;
        Ok(msgs
            .iter()
            .map(LinkSummary::from_message)
            .filter(|l| l.name.starts_with(prefix))
            .collect())
    }

    fn set(&self, op: &'static str, link: LinkRef<'_>, msg: LinkMessage) -> Result<(), NetError> {
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(self.err(op, &link.to_string()))
    }

    fn add(&self, op: &'static str, name: &str, msg: LinkMessage) -> Result<(), NetError> {
        self.rt
            .block_on(self.handle.link().add(msg).execute())
            .map_err(self.err(op, name))
    }

    /// Makes sure bridge `name` exists, is up, carries `addrs` (gateway addresses with the subnet's
    /// prefix; ones already there are kept) and, when given, has `mtu`. Returns its index.
    pub fn ensure_bridge(&self, name: &str, addrs: &[IpNet], mtu: Option<u32>) -> Result<u32, NetError> {
        if self.link_index(name)?.is_none() {
            // A MAC of its own, set at creation: otherwise the kernel gives the bridge the lowest
            // MAC of its ports, which changes as containers come and go, and containers holding
            // the gateway's old MAC in their ARP cache lose it until the entry expires (dockerd
            // sets one for the same reason).
            let mut b = LinkBridge::new(name).address(random_mac().to_vec());
            if let Some(m) = mtu {
                b = b.mtu(m);
            }
            match self.add("create bridge", name, b.build()) {
                Err(e) if e.is_exists() => {}
                other => other?,
            }
        }
        let index = self.require_index(name)?;
        if let Some(m) = mtu {
            self.set_mtu(index, m)?;
        }
        for a in addrs {
            self.ensure_address(index, *a)?;
        }
        self.set_up(index)?;
        Ok(index)
    }

    /// Creates a veth pair `name` ↔ `peer`, both in this namespace, with `mtu` on both when given.
    pub fn create_veth(&self, name: &str, peer: &str, mtu: Option<u32>) -> Result<(), NetError> {
        let mut v = LinkVeth::new(name, peer);
        if let Some(m) = mtu {
            v = v.mtu(m);
        }
        self.add("create veth", name, v.build())?;
        if let Some(m) = mtu {
            self.set_mtu(peer, m)?;
        }
        Ok(())
    }

    /// Creates a veth pair whose `peer` end is made directly inside `peer_ns` (so its final name,
    /// `eth0` say, never exists in this namespace), in one request: MTU on both ends, the local end
    /// attached to `master` and up when asked, the peer's MAC set. An `EEXIST` (either name taken)
    /// is a Conflict.
    pub fn create_veth_into(&self, name: &str, peer: &str, peer_ns: &Netns, opts: VethOptions) -> Result<(), NetError> {
        let mut p = LinkUnspec::new_with_name(peer).setns_by_fd(peer_ns.as_fd().as_raw_fd());
        let mut v = LinkMessageBuilder::<LinkVeth>::new(name, peer);
        if let Some(m) = opts.mtu {
            p = p.mtu(m);
            v = v.mtu(m);
        }
        if let Some(mac) = opts.peer_mac {
            p = p.address(mac.to_vec());
        }
        if let Some(master) = opts.master {
            v = v.controller(master);
        }
        if opts.up {
            v = v.up();
        }
        let msg = v.set_info_data(InfoData::Veth(InfoVeth::Peer(p.build()))).build();
        self.add(
            "create veth",
            &format!("{name} (peer {peer} in {})", peer_ns.label()),
            msg,
        )
    }

    /// Attaches `link` to bridge `master`.
    pub fn set_master<'a, 'b>(
        &self,
        link: impl Into<LinkRef<'a>>,
        master: impl Into<LinkRef<'b>>,
    ) -> Result<(), NetError> {
        let link = link.into();
        let mi = self.require_index(master)?;
        let msg = link.builder().controller(mi).build();
        self.set("set master", link, msg)
    }

    /// Sets hairpin mode on a bridge port: frames may leave through the port they came in by, so a
    /// container reaches its own published port through the host's NAT (Docker sets it when the
    /// kernel does the NAT instead of its userland proxy).
    pub fn set_hairpin<'a>(&self, link: impl Into<LinkRef<'a>>, on: bool) -> Result<(), NetError> {
        let link = link.into();
        let mut msg = link.builder().build();
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(on)])),
        ]));
        self.set("set hairpin mode", link, msg)
    }

    /// Moves `link` into namespace `ns` (it disappears from this one).
    pub fn move_to_netns<'a>(&self, link: impl Into<LinkRef<'a>>, ns: &Netns) -> Result<(), NetError> {
        let link = link.into();
        let msg = link.builder().setns_by_fd(ns.as_fd().as_raw_fd()).build();
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(self.err("move link to netns", &format!("{link} (to {})", ns.label())))
    }

    /// Renames `link` to `new` (the link must be down); returns its index.
    pub fn rename<'a>(&self, link: impl Into<LinkRef<'a>>, new: &str) -> Result<u32, NetError> {
        let link = link.into();
        let i = self.require_index(link)?;
        let msg = LinkUnspec::new_with_index(i).name(new.to_string()).build();
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(self.err("rename link", &format!("{link} to {new}")))?;
        Ok(i)
    }

    /// Sets the hardware address of `link`.
    pub fn set_mac<'a>(&self, link: impl Into<LinkRef<'a>>, mac: [u8; 6]) -> Result<(), NetError> {
        let link = link.into();
        self.set("set mac address", link, link.builder().address(mac.to_vec()).build())
    }

    /// Sets the MTU of `link`.
    pub fn set_mtu<'a>(&self, link: impl Into<LinkRef<'a>>, mtu: u32) -> Result<(), NetError> {
        let link = link.into();
        self.set("set mtu", link, link.builder().mtu(mtu).build())
    }

    /// Brings `link` up.
    pub fn set_up<'a>(&self, link: impl Into<LinkRef<'a>>) -> Result<(), NetError> {
        let link = link.into();
        self.set("set link up", link, link.builder().up().build())
    }

    /// Brings `link` down.
    pub fn set_down<'a>(&self, link: impl Into<LinkRef<'a>>) -> Result<(), NetError> {
        let link = link.into();
        self.set("set link down", link, link.builder().down().build())
    }

    /// Adds `addr` (address with prefix) to `link`; an address already there is a Conflict. IPv6
    /// addresses skip duplicate address detection, as Docker does, so they are usable at once.
    pub fn add_address<'a>(&self, link: impl Into<LinkRef<'a>>, addr: IpNet) -> Result<(), NetError> {
        let link = link.into();
        let i = self.require_index(link)?;
        let mut req = self.handle.address().add(i, addr.addr(), addr.prefix_len());
        if addr.addr().is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.rt
            .block_on(req.execute())
            .map_err(self.err("add address", &format!("{addr} on {link}")))
    }

    /// Adds `addr` to `link` unless it is already there.
    pub fn ensure_address<'a>(&self, link: impl Into<LinkRef<'a>>, addr: IpNet) -> Result<(), NetError> {
        match self.add_address(link, addr) {
            Err(e) if e.is_exists() => Ok(()),
            other => other,
        }
    }

    /// Adds a default route through `gateway` (IPv4 or IPv6) out of `link`.
    pub fn add_default_route<'a>(&self, link: impl Into<LinkRef<'a>>, gateway: IpAddr) -> Result<(), NetError> {
        let link = link.into();
        let i = self.require_index(link)?;
        let msg = match gateway {
            IpAddr::V4(g) => RouteMessageBuilder::<Ipv4Addr>::new()
                .output_interface(i)
                .gateway(g)
                .build(),
            IpAddr::V6(g) => RouteMessageBuilder::<Ipv6Addr>::new()
                .output_interface(i)
                .gateway(g)
                .build(),
        };
        self.rt
            .block_on(self.handle.route().add(msg).execute())
            .map_err(self.err("add default route", &format!("via {gateway} dev {link}")))
    }

    /// Deletes `link`; returns false when it did not exist (which is not an error).
    pub fn delete_link<'a>(&self, link: impl Into<LinkRef<'a>>) -> Result<bool, NetError> {
        let link = link.into();
        let req = match link {
            LinkRef::Name(_) => self.handle.link().del_with_message(link.builder().build()),
            LinkRef::Index(i) => self.handle.link().del(i),
        };
        match self
            .rt
            .block_on(req.execute())
            .map_err(self.err("delete link", &link.to_string()))
        {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates macvlan `name` on `parent` in this namespace.
    pub fn create_macvlan<'a>(
        &self,
        name: &str,
        parent: impl Into<LinkRef<'a>>,
        mode: MacvlanMode,
    ) -> Result<(), NetError> {
        let p = self.require_index(parent)?;
        let msg = LinkMacVlan::new(name, p, mode.to_netlink()).build();
        self.add("create macvlan", name, msg)
            .map_err(|e| unsupported(e, "macvlan"))
    }

    /// Creates ipvlan `name` on `parent` in this namespace.
    pub fn create_ipvlan<'a>(
        &self,
        name: &str,
        parent: impl Into<LinkRef<'a>>,
        mode: IpvlanMode,
    ) -> Result<(), NetError> {
        let p = self.require_index(parent)?;
        let msg = LinkIpVlan::new(name, p, mode.to_netlink()).build();
        self.add("create ipvlan", name, msg)
            .map_err(|e| unsupported(e, "ipvlan"))
    }

    /// The destinations of the main table's routes, IPv4 and IPv6, without default routes: what
    /// [`crate::ipam::AddressPools::next_subnet`] must not overlap.
    pub fn route_destinations(&self) -> Result<Vec<IpNet>, NetError> {
        let mut out = Vec::new();
        let queries = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for q in queries {
            let msgs: Vec<_> = self
                .rt
                .block_on(self.handle.route().get(q).execute().try_collect())
                .map_err(self.err("list routes", "main table"))?;
            for m in msgs {
                let len = m.header.destination_prefix_length;
                let mut table = u32::from(m.header.table);
                let mut dest = None;
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Table(t) => table = *t,
                        RouteAttribute::Destination(RouteAddress::Inet(v4)) => dest = Some(IpAddr::V4(*v4)),
                        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => dest = Some(IpAddr::V6(*v6)),
                        _ => {}
                    }
                }
                if table != u32::from(RouteHeader::RT_TABLE_MAIN) || len == 0 {
                    continue;
                }
                if let Some(net) = dest.and_then(|d| IpNet::new(d, len).ok()) {
                    out.push(net.trunc());
                }
            }
        }
        Ok(out)
    }
}

fn unsupported(e: NetError, kind: &'static str) -> NetError {
    match e {
        NetError::Netlink {
            errno: Some(libc::EOPNOTSUPP),
            source,
            ..
        } => NetError::UnsupportedLinkKind { kind, source },
        other => other,
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], NetError> {
    let bad = || NetError::InvalidMac(s.to_string());
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in out.iter_mut() {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

/// Formats a MAC as Docker shows it (`02:42:ac:11:00:02`).
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A random locally administered unicast MAC (`x2:…`), as dockerd gives its bridges.
pub fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    if getrandom::getrandom(&mut mac).is_err() {
        // No entropy source: the time's nanoseconds still differ between bridges made apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        mac.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bridge_macs_are_local_unicast_and_differ() {
        let (a, b) = (random_mac(), random_mac());
        assert_eq!(a[0] & 0x03, 0x02);
        assert_ne!(a, b);
    }

    #[test]
    fn mac_round_trip() {
        let m = parse_mac("02:42:AC:11:00:02").unwrap();
        assert_eq!(m, [2, 0x42, 0xac, 0x11, 0, 2]);
        assert_eq!(format_mac(m), "02:42:ac:11:00:02");
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "zz:42:ac:11:00:02",
            "2:42:ac:11:00:02",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_parse() {
        assert_eq!(MacvlanMode::parse("").unwrap(), MacvlanMode::Bridge);
        assert_eq!(MacvlanMode::parse("passthru").unwrap(), MacvlanMode::Passthru);
        assert!(MacvlanMode::parse("l2").is_err());
        assert_eq!(IpvlanMode::parse("l3s").unwrap(), IpvlanMode::L3s);
        assert!(IpvlanMode::parse("bridge").is_err());
    }
}
