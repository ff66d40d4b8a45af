//! A network's record on disk (`<data-root>/network/networks/<id>.json`, written atomically and
//! durably) and its shape in the API.

use crate::error::{EngineError, Result};
use berth_api::models::{Ipam, IpamConfig, Network, NetworkContainer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One subnet of a network's IPAM configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRecord {
    /// The subnet (`172.18.0.0/16`).
    pub subnet: String,
    /// The gateway address.
    pub gateway: String,
    /// The part of the subnet containers are given addresses from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// Addresses kept out of allocation (`--aux-address name=ip`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
}

/// A network as berth keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64-hex ID.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `bridge`, `macvlan`, `ipvlan`, `host`, `null`.
    pub driver: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// No route outside (`--internal`).
    #[serde(default)]
    pub internal: bool,
    /// Standalone containers may attach (`--attachable`).
    #[serde(default)]
    pub attachable: bool,
    /// IPv6 enabled (`--ipv6`).
    #[serde(default)]
    pub enable_ipv6: bool,
    /// IPAM driver name (`default`).
    #[serde(default = "default_ipam")]
    pub ipam_driver: String,
    /// IPAM driver options.
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// Subnets, v4 first.
    #[serde(default)]
    pub subnets: Vec<SubnetRecord>,
    /// Driver options (`-o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_ipam() -> String {
    "default".into()
}

/// The three networks every Docker host has: they cannot be created or removed by users.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

impl NetworkRecord {
    /// Whether this is one of `bridge`, `host`, `none`.
    pub fn predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }

    /// Whether containers on it get the embedded DNS server (user-defined networks, as Docker).
    pub fn embedded_dns(&self) -> bool {
        !self.predefined() && self.driver != "host" && self.driver != "null"
    }

    fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Saves the record atomically and durably: a created network survives a crash.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let data = serde_json::to_vec_pretty(self)
            .map_err(|e| EngineError::Internal(format!("encoding network {}: {e}", self.name)))?;
        crate::record::write_replace(&Self::path(dir, &self.id), &data, true)
    }

    /// Removes the record (absent is fine).
    pub fn delete(dir: &Path, id: &str) -> Result<()> {
        match std::fs::remove_file(Self::path(dir, id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(EngineError::io("removing", Self::path(dir, id), e))
            }
            _ => Ok(()),
        }
    }

    /// Loads every record in `dir`; unreadable ones are reported and skipped.
    pub fn load_all(dir: &Path) -> Result<Vec<NetworkRecord>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(EngineError::io("reading", dir, e)),
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                // Temporary files of an interrupted write.
                if p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
                {
                    let _ = std::fs::remove_file(&p);
                }
                continue;
            }
            match std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|d| serde_json::from_slice::<NetworkRecord>(&d).map_err(|e| e.to_string()))
            {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!("skipping network record {}: {e}", p.display()),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    /// The API's `Network`, with the given endpoints in `Containers`.
    pub fn to_api(&self, containers: HashMap<String, NetworkContainer>) -> Network {
        let config = self
            .subnets
            .iter()
            .map(|s| IpamConfig {
                subnet: Some(s.subnet.clone()),
                gateway: Some(s.gateway.clone()).filter(|g| !g.is_empty()),
                ip_range: s.ip_range.clone(),
                auxiliary_addresses: (!s.aux_addresses.is_empty())
                    .then(|| s.aux_addresses.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            })
            .collect();
        let map = |m: &BTreeMap<String, String>| -> HashMap<String, String> {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        Network {
            name: Some(self.name.clone()),
            id: Some(self.id.clone()),
            created: Some(self.created.clone()),
            scope: Some("local".into()),
            driver: Some(self.driver.clone()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(self.enable_ipv6),
            ipam: Some(Ipam {
                driver: Some(self.ipam_driver.clone()),
                config: Some(config),
                options: Some(map(&self.ipam_options)),
            }),
            internal: Some(self.internal),
            attachable: Some(self.attachable),
            ingress: Some(false),
            config_from: Some(berth_api::models::ConfigReference {
                network: Some(String::new()),
            }),
            config_only: Some(false),
            containers: Some(containers),
            options: Some(map(&self.options)),
            labels: Some(map(&self.labels)),
            peers: None,
        }
    }
}

/// Docker's rule for network names: a letter or digit, then letters, digits, `_`, `.` or `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "invalid network name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "my-net", "net_1.x", "0abc"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "-a", "a/b", "../x", "a b", ".x"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn save_load_delete() {
        let dir = tempfile::tempdir().unwrap();
        let r = NetworkRecord {
            id: "a".repeat(64),
            name: "n".into(),
            driver: "bridge".into(),
            created: "2024-01-01T00:00:00Z".into(),
            internal: true,
            attachable: false,
            enable_ipv6: false,
            ipam_driver: "default".into(),
            ipam_options: BTreeMap::new(),
            subnets: vec![SubnetRecord {
                subnet: "10.9.0.0/24".into(),
                gateway: "10.9.0.1".into(),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            }],
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
        };
        r.save(dir.path()).unwrap();
        std::fs::write(dir.path().join("broken.json"), b"{").unwrap();
        let all = NetworkRecord::load_all(dir.path()).unwrap();
        assert_eq!(all, vec![r.clone()]);
        let api = r.to_api(HashMap::new());
        assert_eq!(
            api.ipam.unwrap().config.unwrap()[0].subnet.as_deref(),
            Some("10.9.0.0/24")
        );
        NetworkRecord::delete(dir.path(), &r.id).unwrap();
        NetworkRecord::delete(dir.path(), &r.id).unwrap();
    }
}
