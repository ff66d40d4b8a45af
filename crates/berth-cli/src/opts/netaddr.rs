//! Address syntax the docker CLI checks before sending anything: CIDR subnets (Go's
//! `net.ParseCIDR`), `--dns`, `--add-host`, `--dns-search`, `--mac-address` and `--link`.

use std::net::IpAddr;

/// A parsed `address/prefix` (the address as written, not masked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address part.
    pub ip: IpAddr,
    /// The prefix length.
    pub prefix: u32,
}

impl Cidr {
    /// Parses `10.0.0.0/16` or `fd00::/64`, with Go's error wording.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
            return Err(bad());
        }
        let prefix: u32 = prefix.parse().map_err(|_| bad())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { ip, prefix })
    }

    /// Whether `ip` lies in this network (same family, same leading `prefix` bits).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.ip, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `--dns`: an IP address, returned in canonical form (Go's `ValidateIPAddress`).
pub fn validate_ip(s: &str) -> Result<String, String> {
    s.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("IP address is not correctly formatted: {s}"))
}

/// `--add-host host:ip` or `host=ip` (`ip` may be `[v6]` or `host-gateway`), returned as the
/// `host:ip` the API takes (the docker CLI's `ValidateExtraHost`).
pub fn validate_extra_host(s: &str) -> Result<String, String> {
    let (k, v) = match s.split_once('=') {
        Some(kv) => kv,
        None => s
            .split_once(':')
            .ok_or_else(|| format!("bad format for add-host: \"{s}\""))?,
    };
    if k.is_empty() || k.contains(':') {
        return Err(format!("bad format for add-host: \"{s}\""));
    }
    let mut v = v;
    if v != "host-gateway" {
        if v.len() > 2 && v.starts_with('[') && v.ends_with(']') {
            v = &v[1..v.len() - 1];
        }
        if validate_ip(v).is_err() {
            return Err(format!("invalid IP address in add-host: \"{v}\""));
        }
    }
    Ok(format!("{k}:{v}"))
}

/// `--dns-search`: a domain name, or `.` for none (the docker CLI's `ValidateDNSSearch`).
pub fn validate_dns_search(s: &str) -> Result<String, String> {
    let d = s.trim_end();
    if d == "." {
        return Ok(s.to_string());
    }
    let name = d.strip_suffix('.').unwrap_or(d);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 255 || !name.split('.').all(label_ok) {
        return Err(format!("{s} is not a valid domain"));
    }
    Ok(s.to_string())
}

/// Whether `s` is a MAC address Go's `net.ParseMAC` accepts (6, 8 or 20 bytes, as
/// `aa:bb:...`, `aa-bb-...` or `aabb.ccdd....`).
pub fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let sizes = [6usize, 8, 20];
    if s.contains('.') {
        let parts: Vec<&str> = s.split('.').collect();
        return sizes.contains(&(parts.len() * 2)) && parts.iter().all(|p| hex(p, 4));
    }
    for sep in [':', '-'] {
        if s.contains(sep) {
            let parts: Vec<&str> = s.split(sep).collect();
            return sizes.contains(&parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    false
}

/// `--link name[:alias]` (the docker CLI's `ValidateLink`); sent as typed, the daemon stores it
/// as `/name:/container/alias`.
pub fn validate_link(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty string specified for links".into());
    }
    if s.split(':').count() > 2 {
        return Err(format!("bad format for links: {s}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let c = Cidr::parse("fd00:1::/64").unwrap();
        assert!(c.contains("fd00:1::42".parse().unwrap()));
        assert!(!c.contains("fd00:2::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
        ] {
            assert_eq!(Cidr::parse(bad), Err(format!("invalid CIDR address: {bad}")), "{bad}");
        }
    }

    #[test]
    fn host_entries_dns_and_macs() {
        let cases = [
            ("db:10.0.0.2", Ok("db:10.0.0.2")),
            ("db=10.0.0.2", Ok("db:10.0.0.2")),
            ("gw:host-gateway", Ok("gw:host-gateway")),
            ("gw=host-gateway", Ok("gw:host-gateway")),
            ("v6:::1", Ok("v6:::1")),
            ("v6=[::1]", Ok("v6:::1")),
            ("nohost", Err("bad format for add-host: \"nohost\"")),
            (":10.0.0.1", Err("bad format for add-host: \":10.0.0.1\"")),
            ("db:nope", Err("invalid IP address in add-host: \"nope\"")),
        ];
        for (input, want) in cases {
            assert_eq!(
                validate_extra_host(input),
                want.map(String::from).map_err(String::from),
                "{input}"
            );
        }
        assert_eq!(validate_ip("8.8.8.8"), Ok("8.8.8.8".into()));
        assert_eq!(validate_ip("0:0::1"), Ok("::1".into()));
        assert_eq!(
            validate_ip("dns"),
            Err("IP address is not correctly formatted: dns".into())
        );
        assert!(validate_dns_search("example.com").is_ok());
        assert!(validate_dns_search(".").is_ok());
        assert!(validate_dns_search("a.b.").is_ok());
        assert_eq!(validate_dns_search("-bad"), Err("-bad is not a valid domain".into()));
        assert!(is_mac("02:42:ac:11:00:04"));
        assert!(is_mac("02-42-AC-11-00-04"));
        assert!(is_mac("0242.ac11.0004"));
        assert!(!is_mac("02:42:ac:11:00"));
        assert!(!is_mac("nope"));
        assert!(validate_link("db").is_ok());
        assert!(validate_link("db:alias").is_ok());
        assert_eq!(validate_link("a:b:c"), Err("bad format for links: a:b:c".into()));
    }
}
