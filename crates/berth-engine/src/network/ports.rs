//! Published ports: `HostConfig.PortBindings` and `PublishAllPorts` turned into the mappings the
//! firewall installs, and back into `NetworkSettings.Ports` as Docker shows them.

use crate::error::{EngineError, Result};
use berth_api::models::{PortBinding, PortMap};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Proto {
    /// Docker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// A container port with its protocol (`80/tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContainerPort {
    /// The port.
    pub port: u16,
    /// Its protocol.
    pub proto: Proto,
}

impl ContainerPort {
    /// Parses Docker's `80`, `80/tcp`, `53/udp` keys.
    pub fn parse(key: &str) -> Result<ContainerPort> {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" | "" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            other => return Err(EngineError::InvalidArgument(format!("invalid proto: {other}"))),
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| EngineError::InvalidArgument(format!("invalid port specification: \"{port}\"")))?;
        Ok(ContainerPort { port, proto })
    }

    /// Docker's key: `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.port, self.proto.as_str())
    }
}

/// What a container asked to publish, before host ports are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    /// The container's port.
    pub container: ContainerPort,
    /// The host address; `None` is every address.
    pub host_ip: Option<IpAddr>,
    /// The host ports acceptable (`8080`, `8080-8090`); `None` picks a free one.
    pub host_ports: Option<(u16, u16)>,
}

/// A published port as installed: the host side chosen, the container side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The container's port.
    pub container: ContainerPort,
    /// The host address; `None` is every address.
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
}

/// Reads the requests from `PortBindings` and, with `publish_all`, every exposed port without a
/// binding (on a free host port), as Docker does.
pub fn requests(
    bindings: Option<&PortMap>,
    exposed: Option<&HashMap<String, HashMap<(), ()>>>,
    publish_all: bool,
) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    let mut bound: BTreeMap<ContainerPort, ()> = BTreeMap::new();
    let mut keys: Vec<&String> = bindings.map(|b| b.keys().collect()).unwrap_or_default();
    keys.sort();
    for key in keys {
        let container = ContainerPort::parse(key)?;
        let list = bindings.and_then(|b| b.get(key)).cloned().flatten().unwrap_or_default();
        if list.is_empty() && !publish_all {
            continue;
        }
        bound.insert(container, ());
        if list.is_empty() {
            out.push(PortRequest {
                container,
                host_ip: None,
                host_ports: None,
            });
        }
        for b in list {
            out.push(PortRequest {
                container,
                host_ip: parse_host_ip(b.host_ip.as_deref())?,
                host_ports: parse_host_ports(b.host_port.as_deref())?,
            });
        }
    }
    if publish_all {
        let mut exposed: Vec<ContainerPort> = exposed
            .map(|e| e.keys().map(|k| ContainerPort::parse(k)).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        exposed.sort();
        for container in exposed {
            if !bound.contains_key(&container) {
                out.push(PortRequest {
                    container,
                    host_ip: None,
                    host_ports: None,
                });
            }
        }
    }
    Ok(out)
}

fn parse_host_ip(ip: Option<&str>) -> Result<Option<IpAddr>> {
    match ip.map(|s| s.trim_start_matches('[').trim_end_matches(']')) {
        None | Some("") => Ok(None),
        Some(s) => {
            let ip: IpAddr = s
                .parse()
                .map_err(|_| EngineError::InvalidArgument(format!("invalid host IP address: {s}")))?;
            Ok(if ip.is_unspecified() && ip.is_ipv4() {
                None
            } else {
                Some(ip)
            })
        }
    }
}

fn parse_host_ports(p: Option<&str>) -> Result<Option<(u16, u16)>> {
    let p = match p {
        None | Some("") | Some("0") => return Ok(None),
        Some(p) => p,
    };
    let bad = || EngineError::InvalidArgument(format!("invalid port specification: \"{p}\""));
    let (a, b) = p.split_once('-').unwrap_or((p, p));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// `NetworkSettings.Ports`: every exposed port (`null` when not published) and every published one
/// with its host side, as Docker shows them.
pub fn port_map(exposed: Option<&HashMap<String, HashMap<(), ()>>>, published: &[PublishedPort]) -> PortMap {
    let mut map: PortMap = HashMap::new();
    for k in exposed.map(|e| e.keys()).into_iter().flatten() {
        if let Ok(cp) = ContainerPort::parse(k) {
            map.insert(cp.key(), None);
        }
    }
    for p in published {
        let e = map
            .entry(p.container.key())
            .or_insert(None)
            .get_or_insert_with(Vec::new);
        let ip = p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
        e.push(PortBinding {
            host_ip: Some(ip),
            host_port: Some(p.host_port.to_string()),
        });
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        }
    }

    #[test]
    fn requests_follow_docker() {
        let mut b: PortMap = HashMap::new();
        b.insert("80/tcp".into(), Some(vec![bind("", "8080")]));
        b.insert("53/udp".into(), Some(vec![bind("127.0.0.1", "5353")]));
        b.insert("443".into(), Some(vec![bind("", "9000-9010")]));
        b.insert("22/tcp".into(), None);
        let r = requests(Some(&b), None, false).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0].container,
            ContainerPort {
                port: 443,
                proto: Proto::Tcp
            }
        );
        assert_eq!(r[0].host_ports, Some((9000, 9010)));
        assert_eq!(r[1].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r[1].container.proto, Proto::Udp);
        assert_eq!(r[2].host_ports, Some((8080, 8080)));
        assert_eq!(r[2].host_ip, None);

        let mut exposed = HashMap::new();
        exposed.insert("22/tcp".to_string(), HashMap::new());
        exposed.insert("80/tcp".to_string(), HashMap::new());
        let r = requests(Some(&b), Some(&exposed), true).unwrap();
        // 22 gets a free port once (bound without a host side), 80 keeps its binding.
        assert_eq!(r.iter().filter(|q| q.container.port == 22).count(), 1);
        assert_eq!(r.iter().filter(|q| q.container.port == 80).count(), 1);
    }

    #[test]
    fn bad_specs_are_refused() {
        for (k, ip, port) in [
            ("0/tcp", "", "80"),
            ("80/foo", "", "1"),
            ("80", "x.y", "1"),
            ("80", "", "9-3"),
        ] {
            let mut b: PortMap = HashMap::new();
            b.insert(k.into(), Some(vec![bind(ip, port)]));
            assert!(requests(Some(&b), None, false).is_err(), "{k} {ip} {port}");
        }
    }

    #[test]
    fn port_map_shows_exposed_and_published() {
        let mut exposed = HashMap::new();
        exposed.insert("22/tcp".to_string(), HashMap::new());
        let m = port_map(
            Some(&exposed),
            &[PublishedPort {
                container: ContainerPort {
                    port: 80,
                    proto: Proto::Tcp,
                },
                host_ip: None,
                host_port: 8080,
            }],
        );
        assert_eq!(m["22/tcp"], None);
        assert_eq!(m["80/tcp"], Some(vec![bind("0.0.0.0", "8080")]));
    }
}
