//! What a running container holds on its networks, kept in `<data-root>/network/endpoints/<id>.json`
//! (written atomically before the container's process runs, removed at teardown): the source the
//! address pools, the DNS records and the NAT rules are rebuilt from after a daemon restart.

use super::ports::{ContainerPort, PublishedPort};
use crate::error::{EngineError, Result};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// One interface of a running container on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointState {
    /// The network's ID.
    pub network_id: String,
    /// The network's name when joined.
    pub network_name: String,
    /// A random 64-hex ID, new for each join (Docker's `EndpointID`).
    pub endpoint_id: String,
    /// The interface in the container (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// The interface's MAC address.
    pub mac: String,
    /// IPv4 address with the subnet's prefix length.
    #[serde(default)]
    pub ipv4: Option<IpNet>,
    /// IPv6 address with the subnet's prefix length.
    #[serde(default)]
    pub ipv6: Option<IpNet>,
    /// IPv4 gateway.
    #[serde(default)]
    pub gateway4: Option<IpAddr>,
    /// IPv6 gateway.
    #[serde(default)]
    pub gateway6: Option<IpAddr>,
    /// Whether the default routes go through this network.
    #[serde(default)]
    pub default_route: bool,
    /// Network-scoped aliases.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The names the embedded DNS answers for it.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// The driver's host-side interface, if any (a bridge's veth).
    #[serde(default)]
    pub host_ifname: Option<String>,
}

/// Everything a running container holds on its networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEndpoints {
    /// The container's name when it started.
    pub container_name: String,
    /// Its interfaces, `eth0` first.
    pub endpoints: Vec<EndpointState>,
    /// Its published ports.
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
    /// Legacy link aliases the embedded DNS answers for this container only.
    #[serde(default)]
    pub links: Vec<(String, IpAddr)>,
    /// Servers the embedded DNS forwards to for this container (`--dns`); empty is the host's.
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// Its search domains (`--dns-search`); empty is the host's.
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// Its resolver options (`--dns-option`).
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// Whether the container resolves through the embedded DNS server.
    #[serde(default)]
    pub embedded_dns: bool,
    /// The container's init process while it runs (not saved: a restarted daemon learns it again).
    #[serde(skip)]
    pub pid: Option<i32>,
}

impl RunEndpoints {
    fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Saves atomically. Not fsynced: the file matters only while the container runs, and no
    /// container outlives a reboot; a daemon crash leaves the page cache intact.
    pub fn save(&self, dir: &Path, id: &str) -> Result<()> {
        let data = serde_json::to_vec(self)
            .map_err(|e| EngineError::Internal(format!("encoding the endpoints of {id}: {e}")))?;
        crate::record::write_replace(&Self::path(dir, id), &data, false)
    }

    /// Loads a container's endpoints, if it has any.
    pub fn load(dir: &Path, id: &str) -> Option<RunEndpoints> {
        let data = std::fs::read(Self::path(dir, id)).ok()?;
        match serde_json::from_slice(&data) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("ignoring the unreadable endpoints of {id}: {e}");
                None
            }
        }
    }

    /// Removes the file (absent is fine).
    pub fn delete(dir: &Path, id: &str) {
        let _ = std::fs::remove_file(Self::path(dir, id));
    }

    /// IDs of the containers that have a file.
    pub fn list(dir: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if name.starts_with('.') {
                    let _ = std::fs::remove_file(e.path());
                    return None;
                }
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect()
    }

    /// The endpoint on the given network.
    pub fn on(&self, network_id: &str) -> Option<&EndpointState> {
        self.endpoints.iter().find(|e| e.network_id == network_id)
    }
}

/// A container a legacy `--link` points at, resolved by the container service at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    /// The linked container's name.
    pub name: String,
    /// The alias the link gives it.
    pub alias: String,
    /// Its ID.
    pub id: String,
    /// Its address on the network the two share (set by the network service).
    pub ip: Option<IpAddr>,
    /// Its exposed ports.
    pub exposed: Vec<ContainerPort>,
    /// Its environment.
    pub env: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let r = RunEndpoints {
            container_name: "web".into(),
            endpoints: vec![EndpointState {
                network_id: "n".into(),
                network_name: "bridge".into(),
                endpoint_id: "e".into(),
                ifname: "eth0".into(),
                mac: "02:42:ac:11:00:02".into(),
                ipv4: Some("172.17.0.2/16".parse().unwrap()),
                ipv6: None,
                gateway4: Some("172.17.0.1".parse().unwrap()),
                gateway6: None,
                default_route: true,
                aliases: vec![],
                dns_names: vec![],
                host_ifname: Some("veth1234567".into()),
            }],
            pid: Some(5),
            ..Default::default()
        };
        r.save(dir.path(), "c1").unwrap();
        let back = RunEndpoints::load(dir.path(), "c1").unwrap();
        assert_eq!(back.pid, None);
        assert_eq!(back.endpoints, r.endpoints);
        assert_eq!(RunEndpoints::list(dir.path()), vec!["c1".to_string()]);
        assert!(back.on("n").is_some());
        RunEndpoints::delete(dir.path(), "c1");
        assert!(RunEndpoints::load(dir.path(), "c1").is_none());
    }
}
