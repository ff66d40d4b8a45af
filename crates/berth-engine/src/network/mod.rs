//! The network service: Docker's networks (`bridge`, `host`, `none` and user-defined bridge,
//! macvlan and ipvlan networks), their records, and what each container run is given on them.
//!
//! It owns `<data-root>/network/`: `networks/<id>.json` (one record per network, durable) and
//! `endpoints/<container-id>.json` (what a running container holds: addresses, MACs, published
//! ports; atomic, rewritten at every start). Addresses are never stored apart from those: the pools
//! are rebuilt from the running containers' endpoint files at start-up, so an address is never handed
//! out twice, across restarts too.
//!
//! A container's run goes through three steps the container service calls: [`Networks::attach`]
//! before the shim starts (addresses, ports and the `/etc` files), [`Networks::setup`] once its
//! namespaces exist (links through the driver, the embedded DNS server, NAT rules), and
//! [`Networks::teardown`] on every exit path. The mechanisms (netlink, IPAM, nftables, DNS) are in
//! the `berth-network` crate; this module keeps the books.

mod endpoints;
pub mod etc;
mod links;
pub mod ports;
pub mod record;
mod service;

pub use endpoints::{LinkTarget, RunEndpoints};
pub use service::{DefaultBridge, NetworkCreate, Networks, NetworksConfig};

use crate::error::{EngineError, Result};
use berth_api::models::EndpointSettings;
use berth_runtime::{BindMount, NetworkMode};
use std::collections::BTreeMap;
use std::path::Path;

/// The network a container asks for (`HostConfig.NetworkMode`), resolved by the container service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRequest {
    /// `none`: a namespace of its own with only `lo`.
    None,
    /// `default`, `bridge` or a user-defined network: a namespace of its own joined to the networks
    /// of the container's record.
    Networks,
    /// `host`: the host's namespace.
    Host,
    /// `container:<id>`: the namespace of that running container's init process.
    Container {
        /// The other container's init pid.
        pid: i64,
    },
}

impl NetworkRequest {
    /// Parses `NetworkMode`; `container:<name>` is resolved to a pid by `pid_of`.
    pub fn parse(mode: &str, pid_of: impl FnOnce(&str) -> Result<i64>) -> Result<NetworkRequest> {
        match mode {
            "host" => Ok(NetworkRequest::Host),
            "none" => Ok(NetworkRequest::None),
            m if m.starts_with("container:") => Ok(NetworkRequest::Container {
                pid: pid_of(&m["container:".len()..])?,
            }),
            _ => Ok(NetworkRequest::Networks),
        }
    }
}

/// What the network service gives a container for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// The namespace to create or join.
    pub mode: NetworkMode,
    /// Files to bind-mount (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`).
    pub mounts: Vec<BindMount>,
    /// Environment Docker adds for legacy links (`DB_PORT_5432_TCP=...`).
    pub env: Vec<String>,
}

/// One container's request to the network service for a run.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// Its name (without `/`), a DNS name on user-defined networks.
    pub name: &'a str,
    /// Its hostname.
    pub hostname: &'a str,
    /// Its domain name.
    pub domainname: &'a str,
    /// The container's directory, where its `/etc` files are kept.
    pub dir: &'a Path,
    /// What it asked for.
    pub request: NetworkRequest,
    /// The networks it is connected to, by name, the `NetworkMode` one first.
    pub networks: Vec<(String, EndpointSettings)>,
    /// Ports to publish.
    pub ports: Vec<ports::PortRequest>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: etc::DnsSettings,
    /// `--add-host` entries (`name:ip`, `ip` may be `host-gateway`).
    pub extra_hosts: &'a [String],
    /// Legacy links, resolved by the container service.
    pub links: Vec<LinkTarget>,
    /// Owner of the files written for it (the remapped root under `--userns-remap`).
    pub owner: Option<(u32, u32)>,
}

/// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for the container and returns their
/// mounts.
fn write_etc_files(dir: &Path, hostname: &str, hosts: String, resolv: String) -> Result<Vec<BindMount>> {
    let write = |name: &str, data: String| -> Result<std::path::PathBuf> {
        let p = dir.join(name);
        // Rewritten only when it changed: replacing a file is slow on disks with online discard.
        if std::fs::read(&p).ok().as_deref() != Some(data.as_bytes()) {
            crate::record::write_replace(&p, data.as_bytes(), false)?;
        }
        Ok(p)
    };
    let mk = |source: std::path::PathBuf, destination: &str| BindMount {
        source,
        destination: destination.into(),
        readonly: false,
        options: vec!["rprivate".into()],
    };
    Ok(vec![
        mk(write("hostname", format!("{hostname}\n"))?, "/etc/hostname"),
        mk(write("hosts", hosts)?, "/etc/hosts"),
        mk(write("resolv.conf", resolv)?, "/etc/resolv.conf"),
    ])
}

/// Parses `--add-host` entries (`name:ip`, `name=ip`, `ip` possibly `[v6]` or `host-gateway`).
pub fn parse_extra_hosts(
    entries: &[String],
    host_gateway: Option<std::net::IpAddr>,
) -> Result<Vec<(String, std::net::IpAddr)>> {
    let mut out = Vec::new();
    for e in entries {
        let (name, ip) = e
            .split_once('=')
            .or_else(|| e.split_once(':'))
            .ok_or_else(|| EngineError::InvalidArgument(format!("invalid IP address in add-host: \"{e}\"")))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip = if ip == "host-gateway" {
            host_gateway.ok_or_else(|| {
                EngineError::InvalidArgument("unable to derive the IP value for host-gateway: no default bridge".into())
            })?
        } else {
            ip.parse()
                .map_err(|_| EngineError::InvalidArgument(format!("invalid IP address in add-host: \"{ip}\"")))?
        };
        out.push((name.to_string(), ip));
    }
    Ok(out)
}

/// Checks `--add-host` entries at create, without resolving `host-gateway`.
pub fn validate_extra_hosts(entries: &[String]) -> Result<()> {
    parse_extra_hosts(entries, Some(std::net::IpAddr::from([0, 0, 0, 0]))).map(|_| ())
}

/// Endpoint settings of a record keyed by network name, sorted for a stable order.
pub type EndpointsConfig = BTreeMap<String, EndpointSettings>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let none = |_: &str| -> Result<i64> { Err(EngineError::NoSuchContainer("x".into())) };
        assert_eq!(NetworkRequest::parse("", none).unwrap(), NetworkRequest::Networks);
        assert_eq!(NetworkRequest::parse("bridge", none).unwrap(), NetworkRequest::Networks);
        assert_eq!(NetworkRequest::parse("mynet", none).unwrap(), NetworkRequest::Networks);
        assert_eq!(NetworkRequest::parse("none", none).unwrap(), NetworkRequest::None);
        assert_eq!(NetworkRequest::parse("host", none).unwrap(), NetworkRequest::Host);
        let joined = NetworkRequest::parse("container:web", |n| {
            assert_eq!(n, "web");
            Ok(42)
        });
        assert_eq!(joined.unwrap(), NetworkRequest::Container { pid: 42 });
    }

    #[test]
    fn extra_hosts() {
        let gw_ip: std::net::IpAddr = "172.17.0.1".parse().unwrap();
        let gw = Some(gw_ip);
        let h = parse_extra_hosts(
            &[
                "db:10.0.0.2".into(),
                "v6=[::1]".into(),
                "host.docker.internal:host-gateway".into(),
            ],
            gw,
        )
        .unwrap();
        assert_eq!(h[0], ("db".into(), "10.0.0.2".parse().unwrap()));
        assert_eq!(h[1], ("v6".into(), "::1".parse().unwrap()));
        assert_eq!(h[2].1, gw_ip);
        assert!(parse_extra_hosts(&["nocolon".into()], gw).is_err());
        assert!(parse_extra_hosts(&["a:b".into()], gw).is_err());
        assert!(parse_extra_hosts(&["a:host-gateway".into()], None).is_err());
    }
}
