//! `network create|ls|inspect|rm|connect|disconnect|prune`: Docker's flags into the Engine API's
//! `/networks` requests (built by pure functions, tested below), and Docker's output and exit codes.

use std::collections::HashMap;

use anyhow::Result;
use berth_client::models::{
    ConfigReference, EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest,
};
use berth_client::{Client, NetworkInspectOptions};
use serde_json::{json, Map, Value};

use crate::args::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs,
    NetworkRmArgs,
};
use crate::filters::parse_filters;
use crate::format::Format;
use crate::opts::{kv_map, netaddr, validate_link};
use crate::sortorder::natural_cmp;
use crate::term::confirm;
use crate::{prog, StatusError};

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// A bad flag value, as cobra reports it: exit 125 and the help hint.
fn flag_error(cmd: &str, msg: &str) -> StatusError {
    let p = prog();
    StatusError::new(125, format!("{msg}\nSee '{p} network {cmd} --help'."))
}

/// Docker's `MapOpts`: `key=value` items, a bare `key` maps to an empty value, later keys win.
fn map_opts(items: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for it in items {
        let (k, v) = it.split_once('=').unwrap_or((it.as_str(), ""));
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), v.to_string()));
    }
    out
}

/// Docker's `subnetMatches`: whether `data` (an address, or the address part of a CIDR) is
/// inside `subnet`. A bad subnet or a bad CIDR is an error; a bad plain address matches nothing.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let s = netaddr::Cidr::parse(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') {
        Some(netaddr::Cidr::parse(data)?.ip)
    } else {
        data.parse().ok()
    };
    Ok(ip.is_some_and(|ip| s.contains(ip)))
}

/// `--subnet`, `--ip-range`, `--gateway` and `--aux-address` into `IPAM.Config`, one entry per
/// subnet, with the checks and wording of the docker CLI's `createIPAMConfig`.
pub fn ipam_configs(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[String],
) -> Result<Vec<IpamConfig>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut configs: Vec<IpamConfig> = Vec::new();
    for s in subnets {
        for c in &configs {
            let k = c.subnet.as_deref().unwrap_or_default();
            if subnet_matches(s, k)? || subnet_matches(k, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        configs.push(IpamConfig {
            subnet: Some(s.clone()),
            ..IpamConfig::default()
        });
    }
    for r in ranges {
        let mut matched = false;
        for c in configs.iter_mut() {
            let s = c.subnet.clone().unwrap_or_default();
            if !subnet_matches(&s, r)? {
                continue;
            }
            if let Some(existing) = &c.ip_range {
                return Err(format!(
                    "cannot configure multiple ranges ({r}, {existing}) on the same subnet ({s})"
                ));
            }
            c.ip_range = Some(r.clone());
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in gateways {
        let mut matched = false;
        for c in configs.iter_mut() {
            let s = c.subnet.clone().unwrap_or_default();
            if !subnet_matches(&s, g)? {
                continue;
            }
            if let Some(existing) = &c.gateway {
                return Err(format!(
                    "cannot configure multiple gateways ({g}, {existing}) for the same subnet ({s})"
                ));
            }
            c.gateway = Some(g.clone());
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (name, addr) in map_opts(aux) {
        let mut matched = false;
        for c in configs.iter_mut() {
            let s = c.subnet.clone().unwrap_or_default();
            if !subnet_matches(&s, &addr)? {
                continue;
            }
            c.auxiliary_addresses
                .get_or_insert_with(HashMap::new)
                .insert(name.clone(), addr.clone());
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {addr}"));
        }
    }
    Ok(configs)
}

/// The `POST /networks/create` body for `network create`, with the fields the docker CLI always
/// sends (driver `bridge`, IPAM driver `default`, empty maps) and `EnableIPv4`/`EnableIPv6` only
/// when the flag was given (the daemon decides otherwise).
pub fn create_request(a: &NetworkCreateArgs) -> Result<NetworkCreateRequest, String> {
    let config = ipam_configs(&a.subnet, &a.ip_range, &a.gateway, &a.aux_address)?;
    let labels = kv_map(&a.label, "label")?;
    Ok(NetworkCreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        scope: Some(a.scope.clone().unwrap_or_default()),
        internal: Some(a.internal),
        attachable: Some(a.attachable),
        ingress: Some(a.ingress),
        config_only: Some(a.config_only),
        config_from: a.config_from.as_ref().map(|n| ConfigReference {
            network: Some(n.clone()),
        }),
        ipam: Some(Ipam {
            driver: Some(a.ipam_driver.clone()),
            config: Some(config),
            options: Some(map_opts(&a.ipam_opt).into_iter().collect()),
        }),
        enable_ipv4: a.ipv4,
        enable_ipv6: a.ipv6,
        options: Some(map_opts(&a.opt).into_iter().collect()),
        labels: Some(labels),
    })
}

/// `--driver-opt k=v` items, as the docker CLI's `convertDriverOpt` reads them.
pub fn driver_opts(items: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for it in items {
        match it.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err("invalid key/value pair format in driver options".into()),
        }
    }
    Ok(out)
}

/// The `POST /networks/{id}/connect` body for `network connect`.
pub fn connect_request(a: &NetworkConnectArgs) -> Result<NetworkConnectRequest, String> {
    let non_empty = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    Ok(NetworkConnectRequest {
        container: Some(a.container.clone()),
        endpoint_config: Some(EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: a.ip.clone().filter(|s| !s.is_empty()),
                ipv6_address: a.ip6.clone().filter(|s| !s.is_empty()),
                link_local_ips: non_empty(&a.link_local_ip),
            }),
            links: non_empty(&a.link),
            aliases: non_empty(&a.alias),
            driver_opts: Some(driver_opts(&a.driver_opt)?),
            ..EndpointSettings::default()
        }),
    })
}

/// Column titles of `network ls` (the docker CLI's network formatter).
const NETWORK_HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

const DEFAULT_LS_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// An RFC 3339 time as Go's `time.Time.String()` prints it (`2016-10-19 06:21:00.416543526 +0000 UTC`).
pub fn go_time(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return rfc3339.to_string();
    };
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        out.push_str(format!(".{nanos:09}").trim_end_matches('0'));
    }
    let offset = t.format("%z").to_string();
    // Go names a zone only when it knows it: `Z` parses as UTC, other offsets stay numeric.
    let zone = if rfc3339.ends_with('Z') || rfc3339.ends_with('z') {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{out} {offset} {zone}")
}

/// One `network ls` row as the template context (`.ID`, `.Name`, `.Driver`, ...).
pub fn network_row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or_default();
    let id = if trunc {
        berth_types::short_id(id).to_string()
    } else {
        id.to_string()
    };
    let flag = |k: &str| n[k].as_bool().unwrap_or(false).to_string();
    let labels_map = n["Labels"].as_object().cloned().unwrap_or_default();
    let mut labels: Vec<String> = labels_map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let mut row = Map::new();
    row.insert("ID".into(), json!(id));
    row.insert("Name".into(), json!(n["Name"].as_str().unwrap_or_default()));
    row.insert("Driver".into(), json!(n["Driver"].as_str().unwrap_or_default()));
    row.insert("Scope".into(), json!(n["Scope"].as_str().unwrap_or_default()));
    row.insert("IPv4".into(), json!(flag("EnableIPv4")));
    row.insert("IPv6".into(), json!(flag("EnableIPv6")));
    row.insert("Internal".into(), json!(flag("Internal")));
    row.insert("Labels".into(), json!(labels.join(",")));
    row.insert("__berthLabels".into(), Value::Object(labels_map));
    row.insert(
        "CreatedAt".into(),
        json!(go_time(n["Created"].as_str().unwrap_or("0001-01-01T00:00:00Z"))),
    );
    Value::Object(row)
}

/// The template `network ls` renders: Docker's `NewNetworkFormat` (`-q` only changes the
/// built-in formats; a custom template wins).
fn ls_format(format: Option<&str>, quiet: bool) -> String {
    match format.filter(|f| !f.is_empty()) {
        None | Some("table") if quiet => "{{.ID}}".into(),
        None | Some("table") => DEFAULT_LS_FORMAT.into(),
        Some("raw") if quiet => "network_id: {{.ID}}".into(),
        Some("raw") => "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n".into(),
        Some(f) => f.to_string(),
    }
}

/// Renders `network ls` output from the daemon's list: sorted by name in natural order.
pub fn render_ls(list: &[Value], a: &NetworkLsArgs) -> Result<String> {
    let mut nets: Vec<&Value> = list.iter().collect();
    nets.sort_by(|x, y| natural_cmp(x["Name"].as_str().unwrap_or(""), y["Name"].as_str().unwrap_or("")));
    let rows: Vec<Value> = nets.iter().map(|n| network_row(n, !a.no_trunc)).collect();
    let f = Format::parse(&ls_format(a.format.as_deref(), a.quiet))?;
    f.render_rows(&rows, NETWORK_HEADERS)
}

/// `docker network create`: prints the new network's ID.
pub async fn create(client: &Client, a: NetworkCreateArgs) -> Result<i32> {
    let req = create_request(&a).map_err(|e| {
        if e.starts_with("invalid argument") {
            flag_error("create", &e)
        } else {
            fail(e)
        }
    })?;
    let created = client.network_create(&req).await.map_err(fail)?;
    outln!("{}", created.id);
    Ok(0)
}

/// `docker network ls`.
pub async fn ls(client: &Client, a: NetworkLsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    let list = client.network_list(&filters).await.map_err(fail)?;
    let out = render_ls(&list, &a).map_err(fail)?;
    crate::write_out(&out);
    Ok(0)
}

/// `docker network inspect`: a JSON array of the networks found (or each rendered through
/// `--format`), then one error line per name not found; exit 1 if any failed.
pub async fn inspect(client: &Client, a: NetworkInspectArgs) -> Result<i32> {
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(Format::parse(f).map_err(fail)?),
        None => None,
    };
    let opts = NetworkInspectOptions {
        verbose: a.verbose,
        scope: None,
    };
    let mut found: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for name in &a.networks {
        match client.network_inspect_raw(name, &opts).await {
            Ok(bytes) => found.push(String::from_utf8_lossy(&bytes).trim().to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    crate::objects::print_inspected(&found, &errors, tmpl, |_| {})
}

/// `docker network rm`: each name on success, each error on stderr; exit 1 if any failed
/// (`-f` forgives networks that do not exist).
pub async fn rm(client: &Client, a: NetworkRmArgs) -> Result<i32> {
    let mut failed = false;
    for name in &a.networks {
        match client.network_remove(name).await {
            Ok(()) => outln!("{name}"),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `docker network connect`.
pub async fn connect(client: &Client, a: NetworkConnectArgs) -> Result<i32> {
    for l in &a.link {
        validate_link(l)
            .map_err(|e| flag_error("connect", &format!("invalid argument \"{l}\" for \"--link\" flag: {e}")))?;
    }
    let req = connect_request(&a).map_err(fail)?;
    client.network_connect(&a.network, &req).await.map_err(fail)?;
    Ok(0)
}

/// `docker network disconnect`.
pub async fn disconnect(client: &Client, a: NetworkDisconnectArgs) -> Result<i32> {
    client
        .network_disconnect(&a.network, &a.container, a.force)
        .await
        .map_err(fail)?;
    Ok(0)
}

/// The text `network prune` prints for the daemon's report.
pub fn prune_output(deleted: &[String]) -> String {
    crate::objects::deleted_section("Deleted Networks", deleted)
}

/// `docker network prune`.
pub async fn prune(client: &Client, a: NetworkPruneArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    if !a.force && !confirm("WARNING! This will remove all custom networks not used by at least one container.") {
        return Ok(0);
    }
    let report = client.networks_prune(&filters).await.map_err(fail)?;
    crate::write_out(&prune_output(&report.networks_deleted.unwrap_or_default()));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Cmd, NetworkCmd};
    use clap::Parser;

    fn parse(args: &[&str]) -> NetworkCmd {
        let mut argv = vec!["berth", "network"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .cmd
        {
            Some(Cmd::Network(n)) => n,
            other => panic!("{other:?}"),
        }
    }

    fn create_body(args: &[&str]) -> Result<Value, String> {
        let mut argv = vec!["create"];
        argv.extend_from_slice(args);
        match parse(&argv) {
            NetworkCmd::Create(a) => create_request(&a).map(|r| serde_json::to_value(r).unwrap_or_default()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_flags_to_request_body() {
        let b = create_body(&["web"]).unwrap();
        assert_eq!(
            b,
            json!({"Name": "web", "Driver": "bridge", "Scope": "", "Internal": false, "Attachable": false,
                   "Ingress": false, "ConfigOnly": false, "Options": {}, "Labels": {},
                   "IPAM": {"Driver": "default", "Config": [], "Options": {}}})
        );
        // (args, JSON pointer, expected)
        let cases: &[(&[&str], &str, Value)] = &[
            (&["-d", "macvlan", "n"], "/Driver", json!("macvlan")),
            (&["--driver=ipvlan", "n"], "/Driver", json!("ipvlan")),
            (&["--internal", "--attachable", "n"], "/Internal", json!(true)),
            (&["--internal", "--attachable", "n"], "/Attachable", json!(true)),
            (&["--ipv6", "n"], "/EnableIPv6", json!(true)),
            (&["--ipv6=false", "n"], "/EnableIPv6", json!(false)),
            (&["n"], "/EnableIPv6", Value::Null),
            (&["--ipv4=false", "n"], "/EnableIPv4", json!(false)),
            (
                &["-o", "com.docker.network.bridge.name=br-web", "--opt", "mtu", "n"],
                "/Options",
                json!({"com.docker.network.bridge.name": "br-web", "mtu": ""}),
            ),
            (
                &["--label", "a=1", "--label", "b", "n"],
                "/Labels",
                json!({"a": "1", "b": ""}),
            ),
            (&["--ipam-driver", "foo", "n"], "/IPAM/Driver", json!("foo")),
            (&["--ipam-opt", "x=y", "n"], "/IPAM/Options", json!({"x": "y"})),
            (&["--scope", "local", "n"], "/Scope", json!("local")),
            (
                &["--config-from", "tmpl", "n"],
                "/ConfigFrom",
                json!({"Network": "tmpl"}),
            ),
            (
                &[
                    "--subnet",
                    "10.1.0.0/16",
                    "--gateway",
                    "10.1.0.1",
                    "--ip-range",
                    "10.1.2.0/24",
                    "n",
                ],
                "/IPAM/Config",
                json!([{"Subnet": "10.1.0.0/16", "Gateway": "10.1.0.1", "IPRange": "10.1.2.0/24"}]),
            ),
            // Several subnet/gateway pairs, each gateway finding its own subnet.
            (
                &[
                    "--subnet",
                    "10.1.0.0/24",
                    "--subnet",
                    "fd00:1::/64",
                    "--gateway",
                    "fd00:1::1",
                    "--gateway",
                    "10.1.0.254",
                    "--ipv6",
                    "n",
                ],
                "/IPAM/Config",
                json!([{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254"}, {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"}]),
            ),
            (
                &["--subnet", "10.2.0.0/24,10.3.0.0/24", "n"],
                "/IPAM/Config",
                json!([{"Subnet": "10.2.0.0/24"}, {"Subnet": "10.3.0.0/24"}]),
            ),
            (
                &[
                    "--subnet",
                    "10.1.0.0/24",
                    "--aux-address",
                    "router=10.1.0.2",
                    "--aux-address",
                    "dns=10.1.0.3",
                    "n",
                ],
                "/IPAM/Config/0/AuxiliaryAddresses",
                json!({"router": "10.1.0.2", "dns": "10.1.0.3"}),
            ),
        ];
        for (args, pointer, want) in cases {
            let b = create_body(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(
                b.pointer(pointer).unwrap_or(&Value::Null),
                want,
                "{args:?} {pointer}: {b}"
            );
        }
    }

    /// Every key of the create body is a property of the spec's `NetworkCreateRequest` / `IPAM` /
    /// `IPAMConfig` (names checked against engine-api-v1.47.yaml).
    #[test]
    fn create_field_names_match_spec() {
        let Ok(spec) = std::fs::read_to_string("/work/shared/specs/engine-api-v1.47.yaml") else {
            eprintln!("skipping: engine API spec not present");
            return;
        };
        let Some(start) = spec.find("title: \"NetworkCreateRequest\"") else {
            panic!("NetworkCreateRequest not in spec");
        };
        let section = &spec[start..start + 4000];
        let b = create_body(&[
            "--ipv4",
            "--ipv6",
            "--config-from",
            "c",
            "--config-only",
            "--ingress",
            "--scope",
            "local",
            "--subnet",
            "10.0.0.0/24",
            "--gateway",
            "10.0.0.1",
            "--ip-range",
            "10.0.0.0/25",
            "--aux-address",
            "a=10.0.0.3",
            "n",
        ])
        .unwrap();
        for k in b.as_object().unwrap().keys() {
            assert!(
                section.contains(&format!("\n              {k}:")),
                "{k} not in NetworkCreateRequest"
            );
        }
        let ipam = &b["IPAM"];
        for k in ipam
            .as_object()
            .unwrap()
            .keys()
            .chain(ipam["Config"][0].as_object().unwrap().keys())
        {
            assert!(spec.contains(&format!("\n      {k}:")), "{k} not in IPAM/IPAMConfig");
        }
    }

    #[test]
    fn create_ipam_errors_like_docker() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--gateway", "10.0.0.1", "n"],
                "every ip-range or gateway must have a corresponding subnet",
            ),
            (
                &["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16", "n"],
                "multiple overlapping subnet configuration is not supported",
            ),
            (
                &["--subnet", "10.0.0.0/24", "--gateway", "10.9.0.1", "n"],
                "no matching subnet for gateway 10.9.0.1",
            ),
            (
                &["--subnet", "10.0.0.0/24", "--gateway", "nonsense", "n"],
                "no matching subnet for gateway nonsense",
            ),
            (
                &["--subnet", "10.0.0.0/24", "--ip-range", "10.9.0.0/25", "n"],
                "no matching subnet for range 10.9.0.0/25",
            ),
            (
                &[
                    "--subnet",
                    "10.0.0.0/24",
                    "--subnet",
                    "10.1.0.0/24",
                    "--ip-range",
                    "10.0.0.0/25",
                    "--ip-range",
                    "10.0.0.128/25",
                    "n",
                ],
                "cannot configure multiple ranges (10.0.0.128/25, 10.0.0.0/25) on the same subnet (10.0.0.0/24)",
            ),
            (
                &[
                    "--subnet",
                    "10.0.0.0/24",
                    "--gateway",
                    "10.0.0.1",
                    "--gateway",
                    "10.0.0.2",
                    "n",
                ],
                "every ip-range or gateway must have a corresponding subnet",
            ),
            (
                &["--subnet", "10.0.0.0/24", "--aux-address", "a=10.5.0.1", "n"],
                "no matching subnet for aux-address 10.5.0.1",
            ),
        ];
        for (args, want) in cases {
            let e = create_body(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        // A lone bad subnet goes to the daemon as in Docker; a second one is compared, so parsed.
        assert!(create_body(&["--subnet", "10.0.0.0/33", "n"]).is_ok());
        assert_eq!(
            create_body(&["--subnet", "10.0.0.0/24", "--subnet", "10.0.0.0/33", "n"]).unwrap_err(),
            "invalid subnet: invalid CIDR address: 10.0.0.0/33"
        );
    }

    #[test]
    fn connect_flags_to_request_body() {
        let body = |args: &[&str]| {
            let mut argv = vec!["connect"];
            argv.extend_from_slice(args);
            match parse(&argv) {
                NetworkCmd::Connect(a) => connect_request(&a).map(|r| serde_json::to_value(r).unwrap_or_default()),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            body(&["net", "web"]).unwrap(),
            json!({"Container": "web", "EndpointConfig": {"IPAMConfig": {}, "DriverOpts": {}}})
        );
        assert_eq!(
            body(&[
                "--ip",
                "10.1.0.5",
                "--ip6",
                "fd00::5",
                "--alias",
                "db,database",
                "--link",
                "cache:c",
                "--link-local-ip",
                "169.254.1.1",
                "--driver-opt",
                "com.example=1",
                "net",
                "web",
            ])
            .unwrap(),
            json!({"Container": "web", "EndpointConfig": {
                "IPAMConfig": {"IPv4Address": "10.1.0.5", "IPv6Address": "fd00::5", "LinkLocalIPs": ["169.254.1.1"]},
                "Links": ["cache:c"], "Aliases": ["db", "database"], "DriverOpts": {"com.example": "1"}}})
        );
        assert_eq!(
            body(&["--driver-opt", "novalue", "net", "web"]).unwrap_err(),
            "invalid key/value pair format in driver options"
        );
    }

    #[test]
    fn ls_table_quiet_json_and_sorting() {
        let list = vec![
            json!({"Name": "net10", "Id": "ab".repeat(32), "Driver": "bridge", "Scope": "local",
                   "Created": "2026-01-02T03:04:05.123Z", "Labels": {"b": "2", "a": "1"}, "EnableIPv6": true}),
            json!({"Name": "bridge", "Id": "cd".repeat(32), "Driver": "bridge", "Scope": "local",
                   "Created": "2026-01-02T03:04:05Z", "Labels": {}}),
            json!({"Name": "net2", "Id": "ef".repeat(32), "Driver": "null", "Scope": "local", "Labels": null}),
        ];
        let ls = |args: &[&str]| {
            let mut argv = vec!["ls"];
            argv.extend_from_slice(args);
            match parse(&argv) {
                NetworkCmd::Ls(a) => render_ls(&list, &a).unwrap(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            ls(&[]),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             cdcdcdcdcdcd   bridge    bridge    local\n\
             efefefefefef   net2      null      local\n\
             abababababab   net10     bridge    local\n"
        );
        assert_eq!(ls(&["-q"]), "cdcdcdcdcdcd\nefefefefefef\nabababababab\n");
        assert_eq!(ls(&["-q", "--no-trunc"]).lines().next().unwrap(), "cd".repeat(32));
        assert_eq!(ls(&["--format", "{{.Name}}", "-q"]), "bridge\nnet2\nnet10\n");
        assert_eq!(
            ls(&["--format", "table {{.Name}}\t{{.IPv6}}\t{{.Labels}}", "-f", "x=y"]),
            "NAME      IPV6      LABELS\nbridge    false     \nnet2      false     \nnet10     true      a=1,b=2\n"
        );
        assert_eq!(ls(&["--format", "{{.Label \"a\"}}"]), "\n\n1\n");
        assert_eq!(
            ls(&["--format", "{{.CreatedAt}}"]).lines().last().unwrap(),
            "2026-01-02 03:04:05.123 +0000 UTC"
        );
        let json_line = ls(&["--format", "json"]);
        let first: Value = serde_json::from_str(json_line.lines().next().unwrap()).unwrap();
        assert_eq!(
            first,
            json!({"CreatedAt": "2026-01-02 03:04:05 +0000 UTC", "Driver": "bridge", "ID": "cdcdcdcdcdcd",
                   "IPv4": "false", "IPv6": "false", "Internal": "false", "Labels": "", "Name": "bridge", "Scope": "local"})
        );
        assert_eq!(
            ls(&["--format", "raw"]).lines().take(4).collect::<Vec<_>>(),
            [
                "network_id: cdcdcdcdcdcd",
                "name: bridge",
                "driver: bridge",
                "scope: local"
            ]
        );
    }

    #[test]
    fn go_times() {
        assert_eq!(go_time("0001-01-01T00:00:00Z"), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time("2016-10-19T06:21:00.416543526Z"),
            "2016-10-19 06:21:00.416543526 +0000 UTC"
        );
        assert_eq!(go_time("2016-10-19T08:21:00+02:00"), "2016-10-19 08:21:00 +0200 +0200");
    }

    #[test]
    fn prune_report() {
        assert_eq!(prune_output(&[]), "");
        assert_eq!(
            prune_output(&["n1".into(), "n2".into()]),
            "Deleted Networks:\nn1\nn2\n\n"
        );
    }

    #[test]
    fn subcommands_and_aliases() {
        assert!(matches!(parse(&["list"]), NetworkCmd::Ls(_)));
        assert!(
            matches!(parse(&["remove", "a", "b"]), NetworkCmd::Rm(NetworkRmArgs { ref networks, .. }) if networks.len() == 2)
        );
        assert!(matches!(
            parse(&["rm", "-f", "a"]),
            NetworkCmd::Rm(NetworkRmArgs { force: true, .. })
        ));
        assert!(matches!(
            parse(&["disconnect", "-f", "n", "c"]),
            NetworkCmd::Disconnect(NetworkDisconnectArgs { force: true, .. })
        ));
        assert!(matches!(
            parse(&["inspect", "-v", "-f", "{{.Id}}", "a", "b"]),
            NetworkCmd::Inspect(NetworkInspectArgs { verbose: true, .. })
        ));
        assert!(matches!(
            parse(&["prune", "-f", "--filter", "until=1h"]),
            NetworkCmd::Prune(NetworkPruneArgs { force: true, .. })
        ));
        assert!(Cli::try_parse_from(["berth", "network", "create"]).is_err());
        assert!(Cli::try_parse_from(["berth", "network", "connect", "n"]).is_err());
    }
}
