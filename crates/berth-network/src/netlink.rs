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
use netlink_packet_route::link::{IpVlanMode, LinkAttribute, LinkMessage, MacVlanMode};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
use rtnetlink::{Handle, LinkBridge, LinkIpVlan, LinkMacVlan, LinkUnspec, LinkVeth, RouteMessageBuilder};

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

    fn not_found(&self, name: &str) -> NetError {
        NetError::LinkNotFound {
            name: name.to_string(),
            netns: self.netns.clone(),
        }
    }

    /// The link called `name`, or `None`.
    pub fn link(&self, name: &str) -> Result<Option<LinkSummary>, NetError> {
        let req = self.handle.link().get().match_name(name.to_string()).execute();
        let res = self.rt.block_on(async {
            futures_util::pin_mut!(req);
            req.try_next().await
        });
        match res {
            Ok(m) => Ok(m.as_ref().map(LinkSummary::from_message)),
            Err(e) if matches!(errno_of(&e), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(None),
            Err(e) => Err(self.err("get link", name)(e)),
        }
    }

    /// The index of `name`, or `None` when it does not exist.
    pub fn link_index(&self, name: &str) -> Result<Option<u32>, NetError> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    fn require_index(&self, name: &str) -> Result<u32, NetError> {
        self.link_index(name)?.ok_or_else(|| self.not_found(name))
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

    fn set(&self, op: &'static str, name: &str, msg: LinkMessage) -> Result<(), NetError> {
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(self.err(op, name))
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
            let mut b = LinkBridge::new(name);
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
            self.set_mtu(name, m)?;
        }
        for a in addrs {
            self.ensure_address(name, *a)?;
        }
        self.set_up(name)?;
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

    /// Attaches `name` to bridge `master`.
    pub fn set_master(&self, name: &str, master: &str) -> Result<(), NetError> {
        let mi = self.require_index(master)?;
        self.set_master_index(name, mi)
    }

    /// Attaches `name` to the bridge with index `master`.
    pub fn set_master_index(&self, name: &str, master: u32) -> Result<(), NetError> {
        let msg = LinkUnspec::new_with_name(name).controller(master).build();
        self.set("set master", name, msg)
    }

    /// Moves `name` into namespace `ns` (it disappears from this one).
    pub fn move_to_netns(&self, name: &str, ns: &Netns) -> Result<(), NetError> {
        let msg = LinkUnspec::new_with_name(name)
            .setns_by_fd(ns.as_fd().as_raw_fd())
            .build();
        self.set("move link to netns", &format!("{name} (to {})", ns.label()), msg)
    }

    /// Renames `old` to `new` (the link must be down).
    pub fn rename(&self, old: &str, new: &str) -> Result<(), NetError> {
        let i = self.require_index(old)?;
        let msg = LinkUnspec::new_with_index(i).name(new.to_string()).build();
        self.set("rename link", &format!("{old} to {new}"), msg)
    }

    /// Sets the hardware address of `name`.
    pub fn set_mac(&self, name: &str, mac: [u8; 6]) -> Result<(), NetError> {
        let msg = LinkUnspec::new_with_name(name).address(mac.to_vec()).build();
        self.set("set mac address", name, msg)
    }

    /// Sets the MTU of `name`.
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetError> {
        let msg = LinkUnspec::new_with_name(name).mtu(mtu).build();
        self.set("set mtu", name, msg)
    }

    /// Brings `name` up.
    pub fn set_up(&self, name: &str) -> Result<(), NetError> {
        let msg = LinkUnspec::new_with_name(name).up().build();
        self.set("set link up", name, msg)
    }

    /// Brings `name` down.
    pub fn set_down(&self, name: &str) -> Result<(), NetError> {
        let msg = LinkUnspec::new_with_name(name).down().build();
        self.set("set link down", name, msg)
    }

    /// Adds `addr` (address with prefix) to `name`; an address already there is a Conflict. IPv6
    /// addresses skip duplicate address detection, as Docker does, so they are usable at once.
    pub fn add_address(&self, name: &str, addr: IpNet) -> Result<(), NetError> {
        let i = self.require_index(name)?;
        let mut req = self.handle.address().add(i, addr.addr(), addr.prefix_len());
        if addr.addr().is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.rt
            .block_on(req.execute())
            .map_err(self.err("add address", &format!("{addr} on {name}")))
    }

    /// Adds `addr` to `name` unless it is already there.
    pub fn ensure_address(&self, name: &str, addr: IpNet) -> Result<(), NetError> {
        match self.add_address(name, addr) {
            Err(e) if e.is_exists() => Ok(()),
            other => other,
        }
    }

    /// Adds a default route through `gateway` (IPv4 or IPv6) out of `name`.
    pub fn add_default_route(&self, name: &str, gateway: IpAddr) -> Result<(), NetError> {
        let i = self.require_index(name)?;
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
            .map_err(self.err("add default route", &format!("via {gateway} dev {name}")))
    }

    /// Deletes `name`; returns false when it did not exist (which is not an error).
    pub fn delete_link(&self, name: &str) -> Result<bool, NetError> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self
            .rt
            .block_on(self.handle.link().del_with_message(msg).execute())
            .map_err(self.err("delete link", name))
        {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates macvlan `name` on `parent` in this namespace.
    pub fn create_macvlan(&self, name: &str, parent: &str, mode: MacvlanMode) -> Result<(), NetError> {
        let p = self.require_index(parent)?;
        let msg = LinkMacVlan::new(name, p, mode.to_netlink()).build();
        self.add("create macvlan", name, msg)
            .map_err(|e| unsupported(e, "macvlan"))
    }

    /// Creates ipvlan `name` on `parent` in this namespace.
    pub fn create_ipvlan(&self, name: &str, parent: &str, mode: IpvlanMode) -> Result<(), NetError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
