//! resolv.conf: the host's read for upstreams, search domains and options; the container's written
//! as Docker writes it for a container behind the embedded server.

use std::net::{IpAddr, SocketAddr};

use super::server::DNS_PORT;

/// The parts of a resolv.conf the embedded DNS server uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines, in order (link-local IPv6 with a `%zone` is left out: it cannot be
    /// reached without the interface).
    pub nameservers: Vec<IpAddr>,
    /// The last `search` (or `domain`) line's domains.
    pub search: Vec<String>,
    /// `options` lines' tokens, in order (`ndots:1`, `edns0`, ...).
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text as glibc reads it: comments start with `#` or `;`, unknown lines and
    /// bad addresses are skipped, the last `search`/`domain` line wins.
    pub fn parse(text: &str) -> Self {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        conf.nameservers.push(ip);
                    }
                }
                Some("search") => conf.search = words.map(str::to_string).collect(),
                Some("domain") => conf.search = words.next().map(str::to_string).into_iter().collect(),
                Some("options") => conf.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        conf
    }

    /// The nameservers as upstreams on port 53; loopback ones included, since the daemon forwards
    /// from the host's namespace.
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        upstreams_from_ips(&self.nameservers)
    }

    /// The value of option `name` (`ndots` → `Some("1")` for `ndots:1`, `Some("")` for a flag).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().find_map(|o| match o.split_once(':') {
            Some((n, v)) if n == name => Some(v),
            None if o == name => Some(""),
            _ => None,
        })
    }
}

/// `--dns` addresses (or any nameserver list) as upstreams on port 53.
pub fn upstreams_from_ips(ips: &[IpAddr]) -> Vec<SocketAddr> {
    ips.iter().map(|ip| SocketAddr::new(*ip, DNS_PORT)).collect()
}

/// The container's resolv.conf, as Docker writes it on a user-defined network: `nameserver
/// 127.0.0.11`; the search domains of `--dns-search` (`.` alone means none) or else the host's; the
/// options of `--dns-option` or else the host's, plus `ndots:0` unless an `ndots` is already set.
/// `--dns` servers do not appear: the embedded server forwards to them.
pub fn container_resolv_conf(host: &ResolvConf, dns_search: &[String], dns_options: &[String]) -> String {
    let search: Vec<&str> = if dns_search.is_empty() {
        host.search.iter().map(String::as_str).collect()
    } else {
        dns_search.iter().map(String::as_str).filter(|s| *s != ".").collect()
    };
    let mut options: Vec<&str> = if dns_options.is_empty() {
        host.options.iter().map(String::as_str).collect()
    } else {
        dns_options.iter().map(String::as_str).collect()
    };
    if !options.iter().any(|o| *o == "ndots" || o.starts_with("ndots:")) {
        options.push("ndots:0");
    }
    let mut out = String::from("nameserver 127.0.0.11\n");
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out.push_str(&format!("options {}\n", options.join(" ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text, then the nameservers, search domains and options parsed from it.
    type ParseCase<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);

    #[test]
    fn parse_table() {
        let cases: &[ParseCase] = &[
            ("", &[], &[], &[]),
            (
                "nameserver 10.0.0.1\nnameserver 127.0.0.53\n",
                &["10.0.0.1", "127.0.0.53"],
                &[],
                &[],
            ),
            ("# comment\n; other\nnameserver   ::1  # inline\n", &["::1"], &[], &[]),
            ("nameserver fe80::1%eth0\nnameserver bogus\nnameserver\n", &[], &[], &[]),
            (
                "search a.example b.example\nsearch c.example\n",
                &[],
                &["c.example"],
                &[],
            ),
            ("search a.example\ndomain d.example\n", &[], &["d.example"], &[]),
            (
                "options ndots:2 edns0\noptions rotate\n",
                &[],
                &[],
                &["ndots:2", "edns0", "rotate"],
            ),
            ("\t nameserver 1.1.1.1\r\nsortlist 1.2.3.4\n", &["1.1.1.1"], &[], &[]),
        ];
        for (text, ns, search, options) in cases {
            let conf = ResolvConf::parse(text);
            let ns: Vec<IpAddr> = ns.iter().map(|s| s.parse().unwrap()).collect();
            assert_eq!(conf.nameservers, ns, "{text:?}");
            assert_eq!(conf.search, *search, "{text:?}");
            assert_eq!(conf.options, *options, "{text:?}");
        }
    }

    #[test]
    fn upstreams_keep_loopback_on_port_53() {
        let conf = ResolvConf::parse("nameserver 127.0.0.53\nnameserver 2001:db8::1\n");
        let want: Vec<SocketAddr> = vec!["127.0.0.53:53".parse().unwrap(), "[2001:db8::1]:53".parse().unwrap()];
        assert_eq!(conf.upstreams(), want);
    }

    #[test]
    fn option_lookup() {
        let conf = ResolvConf::parse("options ndots:3 edns0\n");
        assert_eq!(conf.option("ndots"), Some("3"));
        assert_eq!(conf.option("edns0"), Some(""));
        assert_eq!(conf.option("rotate"), None);
    }

    #[test]
    fn container_file_table() {
        let host = ResolvConf::parse("nameserver 10.0.0.1\nsearch corp.example\noptions edns0\n");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], &[&str], &str)] = &[
            (
                &[],
                &[],
                "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n",
            ),
            (
                &["x.example", "y.example"],
                &[],
                "nameserver 127.0.0.11\nsearch x.example y.example\noptions edns0 ndots:0\n",
            ),
            (&["."], &[], "nameserver 127.0.0.11\noptions edns0 ndots:0\n"),
            (
                &[],
                &["ndots:5", "timeout:1"],
                "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:5 timeout:1\n",
            ),
            (
                &[],
                &["rotate"],
                "nameserver 127.0.0.11\nsearch corp.example\noptions rotate ndots:0\n",
            ),
        ];
        for (search, options, want) in cases {
            assert_eq!(container_resolv_conf(&host, &s(search), &s(options)), *want);
        }
        assert_eq!(
            container_resolv_conf(&ResolvConf::default(), &[], &[]),
            "nameserver 127.0.0.11\noptions ndots:0\n"
        );
    }
}
