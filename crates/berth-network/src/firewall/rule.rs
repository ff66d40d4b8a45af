//! The rules berth wants, independent of the backend that installs them: each [`Rule`] is a list of
//! matches and one action in one of berth's chains, tagged with the network or container it belongs
//! to so it can be found again (after a crash too) by listing the table.

use super::{NetworkRules, PortMapping, Proto};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};

/// The name of berth's table (nftables) and the prefix of its chains (iptables).
pub const TABLE: &str = "berth";

/// One of berth's chains. Base chains are hooked into netfilter; the others are jumped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chain {
    /// nat, prerouting: `fib daddr type local` jumps to [`Chain::Ports`].
    Prerouting,
    /// nat, output: the same jump for locally generated traffic (127.0.0.1 included).
    Output,
    /// nat, postrouting: masquerade of the networks' subnets, of 127.0.0.0/8 and of hairpin traffic.
    Postrouting,
    /// filter, forward: jumps to [`Chain::ForwardCt`], [`Chain::ForwardNetworks`] and
    /// [`Chain::ForwardAccept`], in that order (each network adds rules to all three).
    Forward,
    /// Replies, and DNATed connections (published ports), into a bridge: accepted before any
    /// isolation (Docker's DOCKER-CT comes before DOCKER-ISOLATION).
    ForwardCt,
    /// Per network: internal networks cut off, `icc=false`, the jump to [`Chain::Isolation`].
    ForwardNetworks,
    /// Per network: whatever enters or leaves the bridge and was not dropped before is accepted
    /// (explicitly, for iptables, where the host's FORWARD policy may be DROP).
    ForwardAccept,
    /// The published ports: one DNAT rule per mapping.
    Ports,
    /// Docker's isolation: `oifname <bridge> drop` for every berth bridge.
    Isolation,
}

impl Chain {
    /// Every chain, base chains first (the order they are created in).
    pub const ALL: [Chain; 9] = [
        Chain::Ports,
        Chain::Isolation,
        Chain::ForwardCt,
        Chain::ForwardNetworks,
        Chain::ForwardAccept,
        Chain::Prerouting,
        Chain::Output,
        Chain::Postrouting,
        Chain::Forward,
    ];

    /// The chain's name in berth's nftables table.
    pub fn name(self) -> &'static str {
        match self {
            Chain::Prerouting => "prerouting",
            Chain::Output => "output",
            Chain::Postrouting => "postrouting",
            Chain::Forward => "forward",
            Chain::Ports => "ports",
            Chain::Isolation => "isolation",
            Chain::ForwardCt => "forward-ct",
            Chain::ForwardNetworks => "forward-networks",
            Chain::ForwardAccept => "forward-accept",
        }
    }

    /// The chain with this nftables name.
    pub fn from_name(name: &str) -> Option<Chain> {
        Chain::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The netfilter hook, type and priority of a base chain; `None` for a regular chain.
    pub fn hook(self) -> Option<Hook> {
        match self {
            Chain::Prerouting => Some(Hook {
                num: 0,
                nat: true,
                priority: -100,
            }),
            Chain::Output => Some(Hook {
                num: 3,
                nat: true,
                priority: -100,
            }),
            Chain::Postrouting => Some(Hook {
                num: 4,
                nat: true,
                priority: 100,
            }),
            Chain::Forward => Some(Hook {
                num: 2,
                nat: false,
                priority: 0,
            }),
            Chain::Ports | Chain::Isolation | Chain::ForwardCt | Chain::ForwardNetworks | Chain::ForwardAccept => None,
        }
    }
}

/// Where a base chain hooks into netfilter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    /// `NF_INET_*` hook number.
    pub num: u32,
    /// A nat chain (else filter).
    pub nat: bool,
    /// Priority: dstnat -100, srcnat 100, filter 0, as nft names them.
    pub priority: i32,
}

/// An address family of a rule that looks at addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Incoming interface is (or, negated, is not) this one.
    Iif {
        /// Interface name.
        name: String,
        /// `!=` instead of `==`.
        negate: bool,
    },
    /// Outgoing interface is (or is not) this one.
    Oif {
        /// Interface name.
        name: String,
        /// `!=` instead of `==`.
        negate: bool,
    },
    /// Source address within the subnet (the rule's family is the subnet's).
    SrcNet(IpNet),
    /// Destination address equals this one.
    DstAddr(IpAddr),
    /// Layer-4 protocol.
    L4(Proto),
    /// Destination port (after [`Match::L4`]).
    DstPort(u16),
    /// The destination address is local to the host (`fib daddr type local`, iptables'
    /// `-m addrtype --dst-type LOCAL`).
    DstLocal,
    /// Conntrack state established or related.
    CtEstablished,
    /// The connection was destination-NATed (a published port): `ct status dnat`.
    CtDnat,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Accept.
    Accept,
    /// Drop.
    Drop,
    /// Jump to another berth chain.
    Jump(Chain),
    /// Masquerade (source NAT to the outgoing interface's address).
    Masquerade,
    /// Destination NAT to the container's address and port.
    Dnat(IpAddr, u16),
}

/// Who a rule belongs to; written into the rule (an nftables comment) so listing finds it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The fixed rules of berth's table.
    Base,
    /// A network's rules, by network id.
    Network(String),
    /// A container's published ports, by container id.
    Container(String),
}

impl Owner {
    /// The comment stored in the rule: `network:<id>`, `container:<id>` or `berth`.
    pub fn comment(&self) -> String {
        match self {
            Owner::Base => "berth".to_string(),
            Owner::Network(id) => format!("network:{id}"),
            Owner::Container(id) => format!("container:{id}"),
        }
    }

    /// The owner named by a comment (the inverse of [`Owner::comment`]).
    pub fn from_comment(comment: &str) -> Option<Owner> {
        if comment == "berth" {
            Some(Owner::Base)
        } else if let Some(id) = comment.strip_prefix("network:") {
            Some(Owner::Network(id.to_string()))
        } else {
            comment
                .strip_prefix("container:")
                .map(|id| Owner::Container(id.to_string()))
        }
    }
}

/// One rule: matches, an action, the chain it is appended to, and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The chain the rule is appended to.
    pub chain: Chain,
    /// The address family the rule is limited to (`meta nfproto`), if it looks at addresses.
    pub family: Option<Family>,
    /// All must match.
    pub matches: Vec<Match>,
    /// What happens on a match.
    pub action: Action,
    /// Who the rule belongs to.
    pub owner: Owner,
}

fn iif(name: &str, negate: bool) -> Match {
    Match::Iif {
        name: name.to_string(),
        negate,
    }
}

fn oif(name: &str, negate: bool) -> Match {
    Match::Oif {
        name: name.to_string(),
        negate,
    }
}

/// The fixed rules of berth's table, created with it.
pub fn base_rules() -> Vec<Rule> {
    let rule = |chain, matches, action| Rule {
        chain,
        family: None,
        matches,
        action,
        owner: Owner::Base,
    };
    vec![
        // Published ports: any packet to one of the host's addresses, from outside or from the host
        // itself (127.0.0.1 included: kernel NAT, no userland proxy).
        rule(Chain::Prerouting, vec![Match::DstLocal], Action::Jump(Chain::Ports)),
        rule(Chain::Output, vec![Match::DstLocal], Action::Jump(Chain::Ports)),
        // The order of the forward chains is what keeps a network's rules from overriding another
        // network's: all conntrack accepts, then all drops, then all accepts.
        rule(Chain::Forward, vec![], Action::Jump(Chain::ForwardCt)),
        rule(Chain::Forward, vec![], Action::Jump(Chain::ForwardNetworks)),
        rule(Chain::Forward, vec![], Action::Jump(Chain::ForwardAccept)),
    ]
}

/// The rules of one network (Docker's bridge driver: masquerade, isolation, icc, internal).
pub fn network_rules(net: &NetworkRules) -> Vec<Rule> {
    let owner = Owner::Network(net.id.clone());
    let br = net.bridge.as_str();
    let mut out = Vec::new();
    let mut push = |chain, family, matches, action| {
        out.push(Rule {
            chain,
            family,
            matches,
            action,
            owner: owner.clone(),
        })
    };
    for subnet in &net.subnets {
        let family = Some(Family::of(&subnet.network()));
        if net.masquerade && !net.internal {
            // Docker: -s <subnet> ! -o <bridge> -j MASQUERADE
            push(
                Chain::Postrouting,
                family,
                vec![Match::SrcNet(subnet.trunc()), oif(br, true)],
                Action::Masquerade,
            );
        }
        // Hairpin: a container reaching a published port of its own bridge (itself included) through
        // the host's address; masquerade so the reply comes back through the host.
        push(
            Chain::Postrouting,
            family,
            vec![Match::SrcNet(subnet.trunc()), oif(br, false), Match::CtDnat],
            Action::Masquerade,
        );
    }
    if net.subnets.iter().any(|s| matches!(s, IpNet::V4(_))) {
        // 127.0.0.1:<port> from the host, DNATed into the bridge (needs route_localnet there).
        if let Ok(lo) = IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8) {
            push(
                Chain::Postrouting,
                Some(Family::V4),
                vec![Match::SrcNet(lo), oif(br, false)],
                Action::Masquerade,
            );
        }
    }
    if !net.internal {
        // Replies, and connections to published ports (from another network too), get in.
        push(
            Chain::ForwardCt,
            None,
            vec![oif(br, false), Match::CtEstablished],
            Action::Accept,
        );
        push(
            Chain::ForwardCt,
            None,
            vec![oif(br, false), Match::CtDnat],
            Action::Accept,
        );
    } else {
        push(
            Chain::ForwardNetworks,
            None,
            vec![iif(br, false), oif(br, true)],
            Action::Drop,
        );
        push(
            Chain::ForwardNetworks,
            None,
            vec![oif(br, false), iif(br, true)],
            Action::Drop,
        );
    }
    push(
        Chain::ForwardNetworks,
        None,
        vec![iif(br, false), oif(br, true)],
        Action::Jump(Chain::Isolation),
    );
    if !net.icc {
        push(
            Chain::ForwardNetworks,
            None,
            vec![iif(br, false), oif(br, false)],
            Action::Drop,
        );
    }
    push(Chain::ForwardAccept, None, vec![iif(br, false)], Action::Accept);
    push(Chain::ForwardAccept, None, vec![oif(br, false)], Action::Accept);
    push(Chain::Isolation, None, vec![oif(br, false)], Action::Drop);
    out
}

/// The DNAT rules of a container's published ports.
pub fn port_rules(container_id: &str, ports: &[PortMapping]) -> Vec<Rule> {
    let owner = Owner::Container(container_id.to_string());
    ports
        .iter()
        .map(|p| {
            let mut matches = Vec::new();
            if let Some(host_ip) = p.host_ip.filter(|ip| !ip.is_unspecified()) {
                matches.push(Match::DstAddr(host_ip));
            }
            matches.push(Match::L4(p.proto));
            matches.push(Match::DstPort(p.host_port));
            Rule {
                chain: Chain::Ports,
                family: Some(Family::of(&p.container_ip)),
                matches,
                action: Action::Dnat(p.container_ip, p.container_port),
                owner: owner.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(internal: bool, masquerade: bool, icc: bool) -> NetworkRules {
        NetworkRules {
            id: "n1".into(),
            bridge: "br-n1".into(),
            subnets: vec!["172.18.0.0/16".parse().unwrap(), "fd00:1::/64".parse().unwrap()],
            internal,
            masquerade,
            icc,
        }
    }

    fn count(rules: &[Rule], chain: Chain, action: &Action) -> usize {
        rules.iter().filter(|r| r.chain == chain && &r.action == action).count()
    }

    #[test]
    fn a_default_bridge_masquerades_each_subnet_and_isolates() {
        let rules = network_rules(&net(false, true, true));
        // subnet masquerade x2, hairpin x2, 127.0.0.0/8 x1
        assert_eq!(count(&rules, Chain::Postrouting, &Action::Masquerade), 5);
        assert_eq!(
            count(&rules, Chain::ForwardNetworks, &Action::Jump(Chain::Isolation)),
            1
        );
        assert_eq!(count(&rules, Chain::ForwardNetworks, &Action::Drop), 0);
        assert_eq!(count(&rules, Chain::ForwardCt, &Action::Accept), 2);
        assert_eq!(count(&rules, Chain::ForwardAccept, &Action::Accept), 2);
        assert!(!rules.iter().any(|r| r.chain == Chain::Forward));
        assert_eq!(count(&rules, Chain::Isolation, &Action::Drop), 1);
        assert!(rules.iter().all(|r| r.owner == Owner::Network("n1".into())));
        let v6 = rules.iter().find(|r| r.family == Some(Family::V6)).unwrap();
        assert_eq!(v6.matches[0], Match::SrcNet("fd00:1::/64".parse().unwrap()));
    }

    #[test]
    fn an_internal_network_never_masquerades_and_drops_both_ways() {
        let rules = network_rules(&net(true, true, true));
        assert!(!rules.iter().any(|r| r.chain == Chain::Postrouting
            && r.matches.contains(&Match::Oif {
                name: "br-n1".into(),
                negate: true
            })));
        assert_eq!(count(&rules, Chain::ForwardNetworks, &Action::Drop), 2);
        assert_eq!(count(&rules, Chain::ForwardCt, &Action::Accept), 0);
    }

    #[test]
    fn icc_false_drops_bridge_to_bridge() {
        let rules = network_rules(&net(false, false, false));
        let drop = rules
            .iter()
            .find(|r| r.chain == Chain::ForwardNetworks && r.action == Action::Drop)
            .unwrap();
        assert_eq!(
            drop.matches,
            vec![
                Match::Iif {
                    name: "br-n1".into(),
                    negate: false
                },
                Match::Oif {
                    name: "br-n1".into(),
                    negate: false
                }
            ]
        );
        // no subnet masquerade without ip-masq, the hairpin and loopback ones stay
        assert_eq!(count(&rules, Chain::Postrouting, &Action::Masquerade), 3);
    }

    #[test]
    fn port_rules_dnat_with_and_without_a_host_ip() {
        let p = |host_ip: Option<&str>| PortMapping {
            proto: Proto::Tcp,
            host_ip: host_ip.map(|s| s.parse().unwrap()),
            host_port: 8080,
            container_ip: "172.18.0.2".parse().unwrap(),
            container_port: 80,
            bridge: "br-n1".into(),
        };
        let rules = port_rules("c1", &[p(None), p(Some("10.0.0.1")), p(Some("0.0.0.0"))]);
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].matches, vec![Match::L4(Proto::Tcp), Match::DstPort(8080)]);
        assert_eq!(rules[1].matches[0], Match::DstAddr("10.0.0.1".parse().unwrap()));
        assert_eq!(rules[2].matches.len(), 2);
        assert_eq!(rules[0].action, Action::Dnat("172.18.0.2".parse().unwrap(), 80));
        assert_eq!(rules[0].family, Some(Family::V4));
        assert_eq!(rules[0].owner.comment(), "container:c1");
    }

    #[test]
    fn owners_round_trip_through_comments() {
        for o in [Owner::Base, Owner::Network("a".into()), Owner::Container("b:c".into())] {
            assert_eq!(Owner::from_comment(&o.comment()), Some(o));
        }
        assert_eq!(Owner::from_comment("someone else"), None);
    }
}
