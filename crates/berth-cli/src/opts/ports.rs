//! `-p/--publish` and `--expose` into `ExposedPorts` and `HostConfig.PortBindings`, as Docker's
//! `nat.ParsePortSpecs` reads them.

use std::collections::HashMap;

use berth_api::models::{PortBinding, PortMap};

/// `Config.ExposedPorts`: `"80/tcp"` keys with empty objects.
pub type ExposedPorts = HashMap<String, HashMap<(), ()>>;

fn split_port(spec: &str) -> (&str, &str) {
    match spec.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (spec, "tcp"),
    }
}

fn port_range(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("invalid containerPort: {s}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u32 = a.parse().map_err(|_| bad())?;
    let b: u32 = b.parse().map_err(|_| bad())?;
    if a > b || b > 65535 {
        return Err(bad());
    }
    Ok((a, b))
}

/// `-p [ip:][hostPort:]containerPort[/proto]` into `ExposedPorts` keys and `PortBindings`.
pub fn parse_publish(spec: &str, exposed: &mut ExposedPorts, bindings: &mut PortMap) -> Result<(), String> {
    let (addr, proto) = split_port(spec);
    let parts: Vec<&str> = if addr.starts_with('[') {
        // [ipv6]:host:container
        let end = addr.find(']').ok_or_else(|| format!("invalid ip address: {addr}"))?;
        let ip = &addr[1..end];
        let rest: Vec<&str> = addr[end + 1..].trim_start_matches(':').split(':').collect();
        let mut v = vec![ip];
        v.extend(rest);
        v
    } else {
        addr.split(':').collect()
    };
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => return Err(format!("invalid port format for --publish: {spec}")),
    };
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (c0, c1) = port_range(container)?;
    let host_range = if host.is_empty() { None } else { Some(port_range(host)?) };
    if let Some((h0, h1)) = host_range {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
    }
    for (p, offset) in (c0..=c1).zip(0u32..) {
        let key = format!("{p}/{proto}");
        exposed.insert(key.clone(), HashMap::new());
        let host_port = match host_range {
            None => String::new(),
            Some((h0, h1)) if h0 == h1 => h0.to_string(),
            Some((h0, _)) => (h0 + offset).to_string(),
        };
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(ip.to_string()),
                host_port: Some(host_port),
            });
    }
    Ok(())
}

/// `--expose port[-port][/proto]` into `ExposedPorts` keys.
pub fn parse_expose(spec: &str, exposed: &mut ExposedPorts) -> Result<(), String> {
    let (port, proto) = split_port(spec);
    let (a, b) =
        port_range(port).map_err(|_| format!("invalid range format for --expose specification: \"{spec}\""))?;
    for p in a..=b {
        exposed.insert(format!("{p}/{proto}"), HashMap::new());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        }
    }

    #[test]
    fn publish() {
        // (spec, container port key, bindings)
        let cases: &[(&str, &str, Vec<PortBinding>)] = &[
            ("80", "80/tcp", vec![binding("", "")]),
            ("8080:80", "80/tcp", vec![binding("", "8080")]),
            ("127.0.0.1:53:53/udp", "53/udp", vec![binding("127.0.0.1", "53")]),
            ("[::1]:8080:80", "80/tcp", vec![binding("::1", "8080")]),
            ("7000-7001:8000-8001", "8001/tcp", vec![binding("", "7001")]),
        ];
        for (spec, key, want) in cases {
            let (mut exposed, mut bindings) = (ExposedPorts::new(), PortMap::new());
            parse_publish(spec, &mut exposed, &mut bindings).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert!(exposed.contains_key(*key), "{spec}");
            assert_eq!(bindings[*key].as_ref(), Some(want), "{spec}");
        }
        let (mut exposed, mut bindings) = (ExposedPorts::new(), PortMap::new());
        for bad in ["1:2:3:4", "x", "80:", "1-2:3-5"] {
            assert!(parse_publish(bad, &mut exposed, &mut bindings).is_err(), "{bad}");
        }
    }

    #[test]
    fn expose() {
        let mut exposed = ExposedPorts::new();
        parse_expose("7000-7001", &mut exposed).unwrap();
        parse_expose("53/udp", &mut exposed).unwrap();
        let mut keys: Vec<&String> = exposed.keys().collect();
        keys.sort();
        assert_eq!(keys, ["53/udp", "7000/tcp", "7001/tcp"]);
        assert_eq!(
            parse_expose("x", &mut exposed),
            Err("invalid range format for --expose specification: \"x\"".to_string())
        );
    }
}
