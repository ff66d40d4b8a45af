//! Address management, pure: a [`Pool`] per subnet hands out addresses the way Docker's default
//! IPAM does, and [`AddressPools`] picks subnets for networks created without `--subnet`.
//!
//! Nothing is stored here: after a restart the engine rebuilds each pool from its own endpoint
//! records with [`Pool::restore`]. Addresses are handled as `u128` so IPv4 and IPv6 share the code.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::NetError;

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        // Values come from an IPv4 subnet's bounds, so they fit; saturate rather than panic.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX)))
    }
}

/// Parses `a.b.c.d/n` or an IPv6 CIDR, with Docker's error text (`invalid CIDR address: ...`).
pub fn parse_cidr(s: &str) -> Result<IpNet, NetError> {
    s.trim()
        .parse::<IpNet>()
        .map_err(|_| NetError::InvalidCidr(s.to_string()))
}

/// Parses a `--subnet`: a CIDR whose host bits are zero (Docker 25+ refuses `10.1.1.5/24`).
pub fn parse_subnet(s: &str) -> Result<IpNet, NetError> {
    let net = parse_cidr(s)?;
    if net.addr() != net.network() {
        return Err(NetError::SubnetHostBits {
            given: s.to_string(),
            network: net.trunc().to_string(),
        });
    }
    Ok(net)
}

/// Whether two subnets share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Refuses `subnet` when it overlaps one of `existing`, with Docker's text.
pub fn check_overlap(subnet: &IpNet, existing: &[IpNet]) -> Result<(), NetError> {
    if existing.iter().any(|e| overlaps(subnet, e)) {
        return Err(NetError::PoolOverlap);
    }
    Ok(())
}

/// The addresses of one subnet (v4 or v6) and which of them are taken.
#[derive(Debug, Clone)]
pub struct Pool {
    subnet: IpNet,
    range: Option<IpNet>,
    gateway: IpAddr,
    /// Never handed out: the gateway and the auxiliary addresses.
    reserved: BTreeSet<u128>,
    allocated: BTreeSet<u128>,
    /// First and last address `allocate` may hand out.
    lo: u128,
    hi: u128,
    /// Where the next sequential search starts (just after the last address handed out).
    next: u128,
}

impl Pool {
    /// A pool for `subnet`: `gateway` defaults to the first usable address (of `ip_range` when
    /// given, as Docker does); `ip_range` limits dynamic allocation; `aux` addresses are reserved.
    pub fn new(
        subnet: IpNet,
        gateway: Option<IpAddr>,
        ip_range: Option<IpNet>,
        aux: &[IpAddr],
    ) -> Result<Pool, NetError> {
        let subnet = subnet.trunc();
        let v6 = matches!(subnet, IpNet::V6(_));
        if let Some(r) = ip_range {
            if r.addr() != r.network() {
                return Err(NetError::RangeHostBits {
                    given: r,
                    network: r.trunc(),
                });
            }
            if r.addr().is_ipv6() != v6 || !subnet.contains(&r) {
                return Err(NetError::RangeOutsideSubnet { range: r, subnet });
            }
        }
        let (s_lo, s_hi) = usable_bounds(&subnet);
        let (lo, hi) = match ip_range {
            Some(r) => {
                let r = r.trunc();
                (to_u128(r.network()).max(s_lo), to_u128(r.broadcast()).min(s_hi))
            }
            None => (s_lo, s_hi),
        };
        let gateway = match gateway {
            Some(g) => {
                if !subnet.contains(&g) {
                    return Err(NetError::GatewayOutsideSubnet { gateway: g, subnet });
                }
                g
            }
            None => from_u128(lo, v6),
        };
        let mut reserved = BTreeSet::new();
        reserved.insert(to_u128(gateway));
        for a in aux {
            if !subnet.contains(a) {
                return Err(NetError::AuxOutsideSubnet { addr: *a, subnet });
            }
            reserved.insert(to_u128(*a));
        }
        Ok(Pool {
            subnet,
            range: ip_range.map(|r| r.trunc()),
            gateway,
            reserved,
            allocated: BTreeSet::new(),
            lo,
            hi,
            next: lo,
        })
    }

    /// The subnet.
    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    /// The gateway (given or defaulted).
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// The gateway with the subnet's prefix, as configured on the bridge.
    pub fn gateway_cidr(&self) -> IpNet {
        self.with_prefix(self.gateway)
    }

    /// The `ip_range`, when one was given.
    pub fn ip_range(&self) -> Option<IpNet> {
        self.range
    }

    /// `ip` with the subnet's prefix length (what goes on the container's interface).
    pub fn with_prefix(&self, ip: IpAddr) -> IpNet {
        // The prefix comes from a valid subnet of the same family; fall back to a host route.
        IpNet::new(ip, self.subnet.prefix_len()).unwrap_or_else(|_| IpNet::from(ip))
    }

    /// How many addresses are handed out.
    pub fn allocated_count(&self) -> usize {
        self.allocated.len()
    }

    /// Whether `ip` is handed out.
    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.allocated.contains(&to_u128(ip))
    }

    fn is_v6(&self) -> bool {
        matches!(self.subnet, IpNet::V6(_))
    }

    fn taken(&self, v: u128) -> bool {
        self.allocated.contains(&v) || self.reserved.contains(&v)
    }

    /// The next free address, sequentially after the last one handed out, wrapping around (Docker's
    /// serial allocation: a released address is not reused until the pool wraps).
    pub fn allocate(&mut self) -> Result<IpAddr, NetError> {
        if self.lo > self.hi {
            return Err(NetError::PoolExhausted(self.subnet));
        }
        let size = self.hi - self.lo;
        let in_range = |v: &&u128| **v >= self.lo && **v <= self.hi;
        let busy = self.allocated.iter().filter(in_range).count() as u128
            + self
                .reserved
                .iter()
                .filter(in_range)
                .filter(|v| !self.allocated.contains(v))
                .count() as u128;
        if busy > size {
            return Err(NetError::PoolExhausted(self.subnet));
        }
        let mut v = if self.next < self.lo || self.next > self.hi {
            self.lo
        } else {
            self.next
        };
        // At most `busy + 1` candidates are looked at: each taken one is skipped once.
        loop {
            if !self.taken(v) {
                break;
            }
            v = if v >= self.hi { self.lo } else { v + 1 };
        }
        self.allocated.insert(v);
        self.next = if v >= self.hi { self.lo } else { v + 1 };
        Ok(from_u128(v, self.is_v6()))
    }

    /// Takes a specific address (`--ip`/`--ip6`): it must be a host address of the subnet and free.
    pub fn reserve(&mut self, ip: IpAddr) -> Result<(), NetError> {
        let v = to_u128(ip);
        let (s_lo, s_hi) = usable_bounds(&self.subnet);
        if ip.is_ipv6() != self.is_v6() || !self.subnet.contains(&ip) || v < s_lo || v > s_hi {
            return Err(NetError::AddressOutOfRange(ip));
        }
        if self.taken(v) {
            return Err(NetError::AddressInUse(ip));
        }
        self.allocated.insert(v);
        Ok(())
    }

    /// Gives an address back; releasing one that is not handed out does nothing.
    pub fn release(&mut self, ip: IpAddr) {
        self.allocated.remove(&to_u128(ip));
    }

    /// Rebuilds the state from the engine's records after a restart: every address in `ips` is
    /// marked handed out (the gateway and addresses of another subnet are skipped), and sequential
    /// allocation resumes after the highest one.
    pub fn restore<I: IntoIterator<Item = IpAddr>>(&mut self, ips: I) {
        for ip in ips {
            let v = to_u128(ip);
            if ip.is_ipv6() != self.is_v6() || !self.subnet.contains(&ip) || self.reserved.contains(&v) {
                continue;
            }
            self.allocated.insert(v);
        }
        if let Some(max) = self.allocated.iter().rfind(|v| **v >= self.lo && **v <= self.hi) {
            self.next = if *max >= self.hi { self.lo } else { max + 1 };
        }
    }
}

/// First and last host address of a subnet: IPv4 skips the network and broadcast addresses (except
/// /31 and /32), IPv6 skips the subnet-router anycast address (except /127 and /128).
fn usable_bounds(subnet: &IpNet) -> (u128, u128) {
    let net = to_u128(subnet.network());
    let bcast = to_u128(subnet.broadcast());
    let small = match subnet {
        IpNet::V4(n) => n.prefix_len() >= 31,
        IpNet::V6(n) => n.prefix_len() >= 127,
    };
    if small {
        return (net, bcast);
    }
    match subnet {
        IpNet::V4(_) => (net + 1, bcast - 1),
        IpNet::V6(_) => (net + 1, bcast),
    }
}

/// One `--default-address-pool`: subnets of prefix length `size` carved out of `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultPool {
    /// The range subnets are taken from.
    pub base: IpNet,
    /// The prefix length of each subnet.
    pub size: u8,
}

impl DefaultPool {
    /// A pool, validated: `size` must be at least the base's prefix and at most the family's width.
    pub fn new(base: IpNet, size: u8) -> Result<DefaultPool, NetError> {
        let bad = |reason| NetError::InvalidDefaultPool {
            base: base.to_string(),
            size,
            reason,
        };
        if size < base.prefix_len() {
            return Err(bad("size is smaller than the base's prefix"));
        }
        if size > base.max_prefix_len() {
            return Err(bad("size is larger than the address family allows"));
        }
        Ok(DefaultPool {
            base: base.trunc(),
            size,
        })
    }

    /// Parses dockerd's `base=172.80.0.0/16,size=24`.
    pub fn parse(s: &str) -> Result<DefaultPool, NetError> {
        let mut base = None;
        let mut size = None;
        for part in s.split(',') {
            match part.trim().split_once('=') {
                Some(("base", v)) => base = Some(parse_cidr(v)?),
                Some(("size", v)) => {
                    size =
                        Some(v.trim().parse::<u8>().map_err(|_| {
                            NetError::InvalidOption(format!("invalid size in default address pool: {v}"))
                        })?)
                }
                _ => {
                    return Err(NetError::InvalidOption(format!(
                        "invalid field in default address pool: {part}"
                    )))
                }
            }
        }
        match (base, size) {
            (Some(b), Some(sz)) => DefaultPool::new(b, sz),
            _ => Err(NetError::InvalidOption(format!(
                "default address pool needs base and size: {s}"
            ))),
        }
    }
}

/// The pools new networks get their subnets from when none is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPools {
    pools: Vec<DefaultPool>,
}

impl Default for AddressPools {
    fn default() -> Self {
        Self::docker_default()
    }
}

impl AddressPools {
    /// Docker's local defaults: 172.17.0.0/16 … 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s.
    pub fn docker_default() -> AddressPools {
        let mut pools: Vec<DefaultPool> = (17u8..=31)
            .map(|b| DefaultPool {
                base: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(172, b, 0, 0), 16)),
                size: 16,
            })
            .collect();
        pools.push(DefaultPool {
            base: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16)),
            size: 20,
        });
        AddressPools { pools }
    }

    /// Configured pools (`--default-address-pool`), tried in order.
    pub fn new(pools: Vec<DefaultPool>) -> AddressPools {
        AddressPools { pools }
    }

    /// The pools, in order.
    pub fn pools(&self) -> &[DefaultPool] {
        &self.pools
    }

    /// The first subnet of the given family that overlaps none of `taken` (the other networks'
    /// subnets and the host's routes, see [`crate::netlink::Netlink::route_destinations`]). Default
    /// routes (prefix 0) in `taken` are ignored, as Docker does.
    pub fn next_subnet(&self, taken: &[IpNet], ipv6: bool) -> Result<IpNet, NetError> {
        let taken: Vec<&IpNet> = taken.iter().filter(|t| t.prefix_len() > 0).collect();
        for pool in self.pools.iter().filter(|p| p.base.addr().is_ipv6() == ipv6) {
            if let Some(net) = first_free(pool, &taken) {
                return Ok(net);
            }
        }
        Err(NetError::NoFreeSubnet { ipv6 })
    }
}

/// Walks `pool`'s subnets in order, jumping past any taken subnet larger than one step.
fn first_free(pool: &DefaultPool, taken: &[&IpNet]) -> Option<IpNet> {
    let v6 = pool.base.addr().is_ipv6();
    let bits = u32::from(pool.base.max_prefix_len());
    let shift = bits - u32::from(pool.size);
    let step: u128 = 1u128.checked_shl(shift).unwrap_or(0);
    let end = to_u128(pool.base.broadcast());
    let mut c = to_u128(pool.base.network());
    loop {
        let cand = make_net(c, pool.size, v6)?;
        match taken.iter().find(|t| overlaps(&cand, t)) {
            None => return Some(cand),
            Some(t) => {
                // Next aligned candidate after both this one and the taken subnet.
                let past = to_u128(t.broadcast()).checked_add(1)?;
                let next_step = c.checked_add(step)?;
                let aligned = past
                    .checked_add(step.checked_sub(1)?)?
                    .checked_div(step)?
                    .checked_mul(step)?;
                c = next_step.max(aligned);
                if c > end || c < to_u128(pool.base.network()) {
                    return None;
                }
            }
        }
    }
}

fn make_net(v: u128, prefix: u8, v6: bool) -> Option<IpNet> {
    if v6 {
        Ipv6Net::new(Ipv6Addr::from(v), prefix).ok().map(IpNet::V6)
    } else {
        let v4 = u32::try_from(v).ok()?;
        Ipv4Net::new(Ipv4Addr::from(v4), prefix).ok().map(IpNet::V4)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn parse_cidr_table() {
        for (input, want) in [
            ("172.17.0.0/16", Ok("172.17.0.0/16")),
            ("fd00::/64", Ok("fd00::/64")),
            ("10.0.0.0", Err("invalid CIDR address: 10.0.0.0")),
            ("10.0.0.0/33", Err("invalid CIDR address: 10.0.0.0/33")),
            ("garbage", Err("invalid CIDR address: garbage")),
        ] {
            let got = parse_cidr(input).map(|n| n.to_string()).map_err(|e| e.to_string());
            assert_eq!(got, want.map(String::from).map_err(String::from), "{input}");
        }
        assert_eq!(
            parse_subnet("10.1.1.5/24").unwrap_err().to_string(),
            "invalid subnet 10.1.1.5/24: it should be 10.1.1.0/24"
        );
        assert!(parse_subnet("10.1.1.0/24").is_ok());
    }

    #[test]
    fn overlap_table() {
        for (a, b, want) in [
            ("10.0.0.0/8", "10.1.0.0/16", true),
            ("10.1.0.0/16", "10.0.0.0/8", true),
            ("10.0.0.0/16", "10.1.0.0/16", false),
            ("fd00::/64", "fd00::/48", true),
            ("fd00::/64", "10.0.0.0/8", false),
        ] {
            assert_eq!(overlaps(&net(a), &net(b)), want, "{a} {b}");
        }
        assert_eq!(
            check_overlap(&net("10.1.0.0/16"), &[net("10.0.0.0/8")])
                .unwrap_err()
                .to_string(),
            "Pool overlaps with other one on this address space"
        );
    }

    #[test]
    fn new_pool_table() {
        // (subnet, gateway, range, aux) -> Ok(gateway) or Err(message)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [&'a str],
            Result<&'a str, &'a str>,
        );
        let cases: &[Case] = &[
            ("172.17.0.0/16", None, None, &[], Ok("172.17.0.1")),
            ("172.18.0.0/16", Some("172.18.0.254"), None, &[], Ok("172.18.0.254")),
            (
                "172.18.0.0/16",
                Some("10.0.0.1"),
                None,
                &[],
                Err("invalid gateway 10.0.0.1: parent subnet 172.18.0.0/16 doesn't contain this address"),
            ),
            ("172.18.0.0/16", None, Some("172.18.5.0/24"), &[], Ok("172.18.5.0")),
            ("10.0.0.0/24", None, Some("10.0.0.0/25"), &[], Ok("10.0.0.1")),
            (
                "172.18.0.0/16",
                None,
                Some("10.0.0.0/24"),
                &[],
                Err("invalid ip-range 10.0.0.0/24: parent subnet 172.18.0.0/16 doesn't contain ip-range"),
            ),
            (
                "172.18.0.0/16",
                None,
                None,
                &["10.0.0.9"],
                Err("invalid auxiliary address 10.0.0.9: parent subnet 172.18.0.0/16 doesn't contain this address"),
            ),
            ("fd00:1::/64", None, None, &[], Ok("fd00:1::1")),
            (
                "10.0.0.0/8",
                None,
                Some("10.10.10.0/16"),
                &[],
                Err("invalid ip-range 10.10.10.0/16: it should be 10.10.0.0/16"),
            ),
        ];
        for (subnet, gw, range, aux, want) in cases {
            let aux: Vec<IpAddr> = aux.iter().map(|a| ip(a)).collect();
            let got = Pool::new(net(subnet), gw.map(ip), range.map(net), &aux)
                .map(|p| p.gateway().to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(String::from).map_err(String::from),
                "{subnet} {gw:?} {range:?}"
            );
        }
    }

    #[test]
    fn allocate_is_sequential_and_wraps() {
        let mut p = Pool::new(net("10.0.0.0/29"), None, None, &[]).unwrap();
        // .0 network, .1 gateway, .7 broadcast: .2 to .6 are handed out.
        let got: Vec<String> = (0..5).map(|_| p.allocate().unwrap().to_string()).collect();
        assert_eq!(got, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
        assert_eq!(
            p.allocate().unwrap_err().to_string(),
            "no available addresses on this pool"
        );
        p.release(ip("10.0.0.3"));
        p.release(ip("10.0.0.5"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.3"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.5"));
    }

    #[test]
    fn released_address_not_reused_before_wrap() {
        let mut p = Pool::new(net("10.0.0.0/24"), None, None, &[]).unwrap();
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        p.release(a);
        let c = p.allocate().unwrap();
        assert_eq!((a, b, c), (ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4")));
    }

    #[test]
    fn allocation_skips_reserved_and_static() {
        let mut p = Pool::new(net("10.0.0.0/24"), Some(ip("10.0.0.3")), None, &[ip("10.0.0.2")]).unwrap();
        p.reserve(ip("10.0.0.4")).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.1"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.5"));
    }

    #[test]
    fn range_limits_dynamic_allocation() {
        let mut p = Pool::new(
            net("10.0.0.0/24"),
            Some(ip("10.0.0.1")),
            Some(net("10.0.0.128/30")),
            &[],
        )
        .unwrap();
        let got: Vec<IpAddr> = (0..4).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(
            got,
            [ip("10.0.0.128"), ip("10.0.0.129"), ip("10.0.0.130"), ip("10.0.0.131")]
        );
        assert!(p.allocate().is_err());
        // A static address may still come from the rest of the subnet.
        p.reserve(ip("10.0.0.9")).unwrap();
    }

    #[test]
    fn reserve_table() {
        let mut p = Pool::new(net("10.0.0.0/24"), None, None, &[]).unwrap();
        p.reserve(ip("10.0.0.10")).unwrap();
        for (addr, want) in [
            ("10.0.0.10", "Address already in use"),
            ("10.0.0.1", "Address already in use"),
            (
                "10.0.1.5",
                "no configured subnet or ip-range contain the IP address 10.0.1.5",
            ),
            (
                "10.0.0.0",
                "no configured subnet or ip-range contain the IP address 10.0.0.0",
            ),
            (
                "10.0.0.255",
                "no configured subnet or ip-range contain the IP address 10.0.0.255",
            ),
            (
                "fd00::5",
                "no configured subnet or ip-range contain the IP address fd00::5",
            ),
        ] {
            assert_eq!(p.reserve(ip(addr)).unwrap_err().to_string(), want, "{addr}");
        }
        assert!(p.is_allocated(ip("10.0.0.10")));
    }

    #[test]
    fn restore_rebuilds_state() {
        let mut p = Pool::new(net("10.0.0.0/24"), None, None, &[]).unwrap();
        p.restore([ip("10.0.0.2"), ip("10.0.0.7"), ip("10.0.0.1"), ip("192.168.0.1")]);
        assert_eq!(p.allocated_count(), 2);
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.8"));
        assert_eq!(
            p.reserve(ip("10.0.0.7")).unwrap_err().to_string(),
            "Address already in use"
        );
    }

    #[test]
    fn ipv6_pool() {
        let mut p = Pool::new(net("fd00:1::/64"), None, None, &[]).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("fd00:1::2"));
        assert_eq!(p.with_prefix(ip("fd00:1::2")).to_string(), "fd00:1::2/64");
        assert_eq!(p.gateway_cidr().to_string(), "fd00:1::1/64");
    }

    #[test]
    fn default_pools() {
        let pools = AddressPools::docker_default();
        for (taken, want) in [
            (vec![], Ok("172.17.0.0/16")),
            (vec!["172.17.0.0/16"], Ok("172.18.0.0/16")),
            (vec!["0.0.0.0/0", "172.17.0.0/16", "172.18.5.0/24"], Ok("172.19.0.0/16")),
            (vec!["172.16.0.0/12"], Ok("192.168.0.0/20")),
            (vec!["172.16.0.0/12", "192.168.0.0/19"], Ok("192.168.32.0/20")),
            (
                vec!["172.16.0.0/12", "192.168.0.0/16"],
                Err("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"),
            ),
        ] {
            let taken: Vec<IpNet> = taken.iter().map(|t| net(t)).collect();
            let got = pools
                .next_subnet(&taken, false)
                .map(|n| n.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map(String::from).map_err(String::from), "{taken:?}");
        }
        assert!(pools.next_subnet(&[], true).is_err());
    }

    #[test]
    fn configured_pools() {
        let p = DefaultPool::parse("base=10.10.0.0/16,size=24").unwrap();
        assert_eq!(
            p,
            DefaultPool {
                base: net("10.10.0.0/16"),
                size: 24
            }
        );
        assert!(DefaultPool::parse("base=10.10.0.0/16,size=8").is_err());
        assert!(DefaultPool::parse("base=10.10.0.0/16").is_err());
        assert_eq!(
            DefaultPool::parse("base=nope,size=24").unwrap_err().to_string(),
            "invalid CIDR address: nope"
        );
        let v6 = DefaultPool::parse("base=fd00::/48,size=64").unwrap();
        let pools = AddressPools::new(vec![p, v6]);
        assert_eq!(
            pools.next_subnet(&[net("10.10.0.0/24")], false).unwrap(),
            net("10.10.1.0/24")
        );
        assert_eq!(
            pools.next_subnet(&[net("fd00::/63")], true).unwrap(),
            net("fd00:0:0:2::/64")
        );
    }
}
