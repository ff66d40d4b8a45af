//! The network flags of `run`/`create` into `HostConfig.NetworkMode` and
//! `NetworkingConfig.EndpointsConfig`, as the docker CLI's `parseNetworkOpts` does: `--network`
//! may be repeated (the first is the network mode) and takes `name=..,alias=..,ip=..` fields;
//! `--network-alias`, `--ip`, `--ip6`, `--link`, `--link-local-ip` and `--mac-address` apply to
//! the first network.

use std::collections::HashMap;

use berth_api::models::{EndpointIpamConfig, EndpointSettings};
use berth_api::ContainerCreateBody;

use super::netaddr::{is_mac, validate_link};
use crate::args::ContainerOpts;

/// One `--network` value (Docker's `NetworkAttachmentOpts`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attachment {
    /// Network name or ID.
    pub target: String,
    /// Network-scoped aliases.
    pub aliases: Vec<String>,
    /// Links (an alias for another container on a user-defined network).
    pub links: Vec<String>,
    /// Requested IPv4 address.
    pub ipv4: String,
    /// Requested IPv6 address.
    pub ipv6: String,
    /// Requested MAC address.
    pub mac: String,
    /// Link-local addresses.
    pub link_local_ips: Vec<String>,
    /// Driver options of the endpoint.
    pub driver_opts: HashMap<String, String>,
}

/// Splits one CSV record (Go's `encoding/csv`, as `--network` reads its value).
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Docker's test for the long syntax (`\w+=\w+` anywhere in the value).
fn is_long_syntax(s: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let chars: Vec<char> = s.chars().collect();
    chars.windows(3).any(|w| word(w[0]) && w[1] == '=' && word(w[2]))
}

/// Parses one `--network` value: a name, or `name=net,alias=a,ip=..,ip6=..,mac-address=..,
/// link-local-ip=..,driver-opt=k=v`.
pub fn parse_network_flag(value: &str) -> Result<Attachment, String> {
    if !is_long_syntax(value) {
        return Ok(Attachment {
            target: value.to_string(),
            ..Attachment::default()
        });
    }
    let mut a = Attachment::default();
    for field in csv_fields(value) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k.trim().to_lowercase(), v.trim().to_string()),
            _ => return Err(format!("invalid field {field}")),
        };
        match key.as_str() {
            "name" => a.target = val,
            "alias" => a.aliases.push(val),
            "ip" => a.ipv4 = val,
            "ip6" => a.ipv6 = val,
            "mac-address" => a.mac = val,
            "link-local-ip" => a.link_local_ips.push(val),
            "driver-opt" => match val.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    a.driver_opts.insert(k.to_string(), v.to_string());
                }
                _ => return Err("invalid key value pair format in driver options".into()),
            },
            _ => return Err(format!("invalid field key {key}")),
        }
    }
    if a.target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(a)
}

/// Whether a network mode names a user-defined network (not `default`, `bridge`, `host`,
/// `none` or `container:<id>`).
pub fn is_user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// Applies the single-network flags to the first attachment (Docker's `applyContainerOptions`).
fn apply_container_options(n: &mut Attachment, o: &ContainerOpts) -> Result<(), String> {
    let conflict = |what: &str| Err(format!("conflicting options: cannot specify both {what}"));
    if !n.aliases.is_empty() && !o.network_alias.is_empty() {
        return conflict("--network-alias and per-network alias");
    }
    if !n.links.is_empty() && !o.link.is_empty() {
        return conflict("--link and per-network links");
    }
    let ip = o.ip.clone().unwrap_or_default();
    let ip6 = o.ip6.clone().unwrap_or_default();
    let mac = o.mac_address.clone().unwrap_or_default();
    if !n.ipv4.is_empty() && !ip.is_empty() {
        return conflict("--ip and per-network IPv4 address");
    }
    if !n.ipv6.is_empty() && !ip6.is_empty() {
        return conflict("--ip6 and per-network IPv6 address");
    }
    if !n.mac.is_empty() && !mac.is_empty() {
        return conflict("--mac-address and per-network MAC address");
    }
    if !n.link_local_ips.is_empty() && !o.link_local_ip.is_empty() {
        return conflict("--link-local-ip and per-network link-local IP addresses");
    }
    if !o.network_alias.is_empty() {
        n.aliases = o.network_alias.clone();
    }
    // On a user-defined network `--link` is an endpoint alias; on the default bridge it is a
    // legacy link, carried by HostConfig.Links only.
    if is_user_defined(&n.target) && !o.link.is_empty() {
        n.links = o.link.clone();
    }
    if !ip.is_empty() {
        n.ipv4 = ip;
    }
    if !ip6.is_empty() {
        n.ipv6 = ip6;
    }
    if !mac.is_empty() {
        n.mac = mac;
    }
    if !o.link_local_ip.is_empty() {
        n.link_local_ips = o.link_local_ip.clone();
    }
    Ok(())
}

/// One attachment as its endpoint settings (Docker's `parseNetworkAttachmentOpt`).
fn endpoint(n: &Attachment) -> Result<EndpointSettings, String> {
    if n.target.trim().is_empty() {
        return Err("no name set for network".into());
    }
    if !is_user_defined(&n.target) {
        if !n.aliases.is_empty() {
            return Err("network-scoped aliases are only supported for user-defined networks".into());
        }
        if !n.links.is_empty() {
            return Err("links are only supported for user-defined networks".into());
        }
    }
    let mut ep = EndpointSettings {
        aliases: (!n.aliases.is_empty()).then(|| n.aliases.clone()),
        links: (!n.links.is_empty()).then(|| n.links.clone()),
        driver_opts: (!n.driver_opts.is_empty()).then(|| n.driver_opts.clone()),
        ..EndpointSettings::default()
    };
    if !n.ipv4.is_empty() || !n.ipv6.is_empty() || !n.link_local_ips.is_empty() {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        ep.ipam_config = Some(EndpointIpamConfig {
            ipv4_address: some(&n.ipv4),
            ipv6_address: some(&n.ipv6),
            link_local_ips: (!n.link_local_ips.is_empty()).then(|| n.link_local_ips.clone()),
        });
    }
    if !n.mac.is_empty() {
        if !is_mac(n.mac.trim()) {
            return Err(format!("{} is not a valid mac address", n.mac));
        }
        ep.mac_address = Some(n.mac.clone());
    }
    Ok(ep)
}

/// What the network flags decide: the network mode and the endpoint settings per network.
#[derive(Debug, Default)]
pub struct Networking {
    /// `HostConfig.NetworkMode`: the first `--network`, else `default`.
    pub mode: String,
    /// `NetworkingConfig.EndpointsConfig`.
    pub endpoints: HashMap<String, EndpointSettings>,
}

/// The network flags of `o`, checked as the docker CLI checks them. A lone `--network` without
/// endpoint options gets no entry (the daemon creates the endpoint anyway), as in Docker.
pub fn networking(o: &ContainerOpts) -> Result<Networking, String> {
    for l in &o.link {
        validate_link(l).map_err(|e| format!("invalid argument \"{l}\" for \"--link\" flag: {e}"))?;
    }
    if let Some(m) = &o.mac_address {
        if !is_mac(m.trim()) {
            return Err(format!("{m} is not a valid mac address"));
        }
    }
    let mut attachments = Vec::new();
    for v in &o.network {
        attachments
            .push(parse_network_flag(v).map_err(|e| format!("invalid argument \"{v}\" for \"--network\" flag: {e}"))?);
    }
    let mut endpoints = HashMap::new();
    if attachments.is_empty() {
        let mut n = Attachment {
            target: "default".into(),
            ..Attachment::default()
        };
        apply_container_options(&mut n, o)?;
        let ep = endpoint(&n)?;
        // berth leaves the `default` entry out when it is empty (older daemons know no such key).
        if ep != EndpointSettings::default() {
            endpoints.insert("default".to_string(), ep);
        }
        return Ok(Networking {
            mode: "default".into(),
            endpoints,
        });
    }
    let (mut user, mut builtin) = (false, false);
    let count = attachments.len();
    let mode = attachments[0].target.clone();
    for (i, mut n) in attachments.into_iter().enumerate() {
        if is_user_defined(&n.target) {
            user = true;
        } else {
            builtin = true;
        }
        if i == 0 {
            apply_container_options(&mut n, o)?;
        }
        let ep = endpoint(&n)?;
        if endpoints.contains_key(&n.target) {
            return Err(format!("network \"{}\" is specified multiple times", n.target));
        }
        if i == 0 && count == 1 && ep == EndpointSettings::default() {
            continue;
        }
        endpoints.insert(n.target.clone(), ep);
    }
    if user && builtin {
        return Err("conflicting options: cannot attach both user-defined and non-user-defined network-modes".into());
    }
    Ok(Networking { mode, endpoints })
}

/// Adapts the body to the negotiated API version: from 1.44 the MAC address lives only in the
/// endpoint settings; before, daemons read `Config.MacAddress` (the main network's endpoint MAC).
pub fn adapt_to_api(body: &mut ContainerCreateBody, api_version: &str) {
    if !berth_client::version_less(api_version, "1.44") {
        body.config.mac_address = None;
        return;
    }
    let mode = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_else(|| "default".into());
    let main = body
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut())
        .and_then(|e| e.get_mut(&mode));
    if let Some(ep) = main {
        if let Some(mac) = ep.mac_address.take() {
            body.config.mac_address = Some(mac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_flag_syntax() {
        assert_eq!(parse_network_flag("mynet").unwrap().target, "mynet");
        assert_eq!(parse_network_flag("container:abc").unwrap().target, "container:abc");
        let a = parse_network_flag(
            "name=MyNet,alias=web,alias=www,ip=10.1.0.5,ip6=fd00::5,mac-address=02:42:ac:11:00:04,driver-opt=k=v,link-local-ip=169.254.0.9",
        )
        .unwrap();
        assert_eq!(
            a,
            Attachment {
                target: "MyNet".into(),
                aliases: vec!["web".into(), "www".into()],
                links: vec![],
                ipv4: "10.1.0.5".into(),
                ipv6: "fd00::5".into(),
                mac: "02:42:ac:11:00:04".into(),
                link_local_ips: vec!["169.254.0.9".into()],
                driver_opts: HashMap::from([("k".to_string(), "v".to_string())]),
            }
        );
        assert_eq!(
            parse_network_flag("name=a,bogus=1").unwrap_err(),
            "invalid field key bogus"
        );
        assert_eq!(
            parse_network_flag("alias=a").unwrap_err(),
            "network name/id is not specified"
        );
        assert_eq!(parse_network_flag("name=a,x").unwrap_err(), "invalid field x");
        assert_eq!(csv_fields(r#"name=a,"alias=b,c""#), ["name=a", "alias=b,c"]);
    }

    #[test]
    fn user_defined_modes() {
        for m in ["default", "bridge", "host", "none", "container:x"] {
            assert!(!is_user_defined(m), "{m}");
        }
        assert!(is_user_defined("mynet"));
    }
}
