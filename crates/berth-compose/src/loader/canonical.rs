//! Short syntaxes to long ones, per file and before merging (the spec's chapter 3: "merges apply
//! to the expanded form"): `ports: ["8080:80"]`, `volumes: ["./d:/d:ro"]`, list-form
//! `environment`/`labels`/`sysctls`, `depends_on`, `networks`, `secrets`/`configs`, `build`,
//! `extends`, `env_file`, `healthcheck.test`, `include`. The results match Compose v2's.

use serde_json::{json, Map, Value};

/// Expands the short syntaxes of one compose document in place. Errors carry the key path.
pub fn canonicalize(doc: &mut Value) -> Result<(), (String, String)> {
    let Some(top) = doc.as_object_mut() else { return Ok(()) };
    if let Some(inc) = top.get_mut("include") {
        canonical_include(inc);
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Object(m)) = top.get_mut(kind) {
            for v in m.values_mut() {
                if v.is_null() {
                    *v = json!({});
                }
                if let Some(obj) = v.as_object_mut() {
                    for key in ["labels", "driver_opts"] {
                        if let Some(l) = obj.get_mut(key) {
                            to_string_map(l, key == "labels");
                        }
                    }
                }
            }
        }
    }
    if let Some(Value::Object(services)) = top.get_mut("services") {
        for (name, svc) in services.iter_mut() {
            if svc.is_null() {
                *svc = json!({});
            }
            if let Some(obj) = svc.as_object_mut() {
                canonical_service(obj).map_err(|(p, m)| (format!("services.{name}.{p}"), m))?;
            }
        }
    }
    Ok(())
}

fn canonical_include(inc: &mut Value) {
    if let Value::Array(items) = inc {
        for item in items.iter_mut() {
            match item {
                Value::String(s) => *item = json!({"path": [s.clone()]}),
                Value::Object(o) => {
                    for key in ["path", "env_file"] {
                        if let Some(Value::String(s)) = o.get(key) {
                            let s = s.clone();
                            o.insert(key.into(), json!([s]));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// A scalar as the string Compose keeps in a string map (numbers and booleans as written).
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `["A=b", "C"]` or `{A: b}` to `{A: "b", C: null}` (environment) or `{C: ""}` (labels, when
/// `bare_empty`).
pub fn to_string_map(v: &mut Value, bare_empty: bool) {
    match v {
        Value::Array(items) => {
            let mut m = Map::new();
            for item in items.iter() {
                let Some(s) = scalar_string(item) else { continue };
                match s.split_once('=') {
                    Some((k, val)) => {
                        m.insert(k.to_string(), Value::String(val.to_string()));
                    }
                    None if bare_empty => {
                        m.insert(s, Value::String(String::new()));
                    }
                    None => {
                        m.insert(s, Value::Null);
                    }
                }
            }
            *v = Value::Object(m);
        }
        Value::Object(m) => {
            for val in m.values_mut() {
                if let Some(s) = scalar_string(val) {
                    *val = Value::String(s);
                } else if val.is_null() && bare_empty {
                    *val = Value::String(String::new());
                }
            }
        }
        _ => {}
    }
}

fn canonical_service(svc: &mut Map<String, Value>) -> Result<(), (String, String)> {
    if let Some(Value::String(ctx)) = svc.get("build") {
        let ctx = ctx.clone();
        svc.insert("build".into(), json!({"context": ctx}));
    }
    if let Some(Value::Object(b)) = svc.get_mut("build") {
        for key in ["args", "labels"] {
            if let Some(v) = b.get_mut(key) {
                to_string_map(v, key == "labels");
            }
        }
    }
    if let Some(Value::Object(d)) = svc.get_mut("deploy") {
        if let Some(v) = d.get_mut("labels") {
            to_string_map(v, true);
        }
    }
    if let Some(Value::Object(l)) = svc.get_mut("logging") {
        if let Some(v) = l.get_mut("options") {
            to_string_map(v, true);
        }
    }
    if let Some(Value::String(s)) = svc.get("extends") {
        let s = s.clone();
        svc.insert("extends".into(), json!({"service": s}));
    }
    if let Some(dep) = svc.get_mut("depends_on") {
        match dep {
            Value::Array(items) => {
                let mut m = Map::new();
                for item in items.iter() {
                    if let Some(s) = item.as_str() {
                        m.insert(s.to_string(), json!({"condition": "service_started", "required": true}));
                    }
                }
                *dep = Value::Object(m);
            }
            Value::Object(m) => {
                for v in m.values_mut() {
                    if v.is_null() {
                        *v = json!({});
                    }
                    if let Some(o) = v.as_object_mut() {
                        o.entry("condition").or_insert_with(|| json!("service_started"));
                        o.entry("required").or_insert(Value::Bool(true));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(ef) = svc.get_mut("env_file") {
        let items = match ef {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(a) => a.clone(),
            _ => Vec::new(),
        };
        let list: Vec<Value> = items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => json!({"path": s, "required": true}),
                Value::Object(mut o) => {
                    o.entry("required").or_insert(Value::Bool(true));
                    Value::Object(o)
                }
                other => other,
            })
            .collect();
        *ef = Value::Array(list);
    }
    for key in ["environment", "labels", "annotations", "sysctls"] {
        if let Some(v) = svc.get_mut(key) {
            to_string_map(v, key != "environment");
        }
    }
    if let Some(v) = svc.get_mut("extra_hosts") {
        canonical_extra_hosts(v);
    }
    for key in ["dns", "dns_search", "tmpfs", "env_file"] {
        if let Some(Value::String(s)) = svc.get(key) {
            let s = s.clone();
            svc.insert(key.into(), json!([s]));
        }
    }
    if let Some(Value::Array(items)) = svc.get_mut("networks") {
        let mut m = Map::new();
        for item in items.iter() {
            if let Some(s) = item.as_str() {
                m.insert(s.to_string(), Value::Null);
            }
        }
        svc.insert("networks".into(), Value::Object(m));
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Array(items)) = svc.get_mut(key) {
            for item in items.iter_mut() {
                if let Value::String(s) = item {
                    *item = json!({"source": s.clone()});
                }
            }
        }
    }
    if let Some(Value::Array(items)) = svc.get_mut("expose") {
        for item in items.iter_mut() {
            if let Some(s) = scalar_string(item) {
                *item = Value::String(s);
            }
        }
    }
    if let Some(Value::Array(items)) = svc.get_mut("ports") {
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.extend(parse_port(item).map_err(|m| (format!("ports.{i}"), m))?);
        }
        *items = out;
    }
    if let Some(Value::Array(items)) = svc.get_mut("volumes") {
        for (i, item) in items.iter_mut().enumerate() {
            *item = parse_volume(item).map_err(|m| (format!("volumes.{i}"), m))?;
        }
    }
    if let Some(Value::Array(items)) = svc.get_mut("devices") {
        for item in items.iter_mut() {
            if let Value::String(s) = item {
                let parts: Vec<&str> = s.split(':').collect();
                let (src, dst, perm) = match parts.as_slice() {
                    [a] => (*a, *a, "rwm"),
                    [a, b] => (*a, *b, "rwm"),
                    [a, b, c, ..] => (*a, *b, *c),
                    [] => continue,
                };
                *item = json!({"source": src, "target": dst, "permissions": perm});
            }
        }
    }
    if let Some(Value::Object(hc)) = svc.get_mut("healthcheck") {
        if let Some(Value::String(s)) = hc.get("test") {
            let s = s.clone();
            hc.insert("test".into(), json!(["CMD-SHELL", s]));
        }
    }
    Ok(())
}

fn canonical_extra_hosts(v: &mut Value) {
    let mut out = Vec::new();
    match v {
        Value::Array(items) => {
            for item in items.iter() {
                if let Some(s) = item.as_str() {
                    // `host:ip` or `host=ip`; an IPv6 address holds colons, so split at the first
                    // separator of the host name.
                    let entry = match s.split_once('=') {
                        Some((h, ip)) => format!("{h}={ip}"),
                        None => match s.split_once(':') {
                            Some((h, ip)) => format!("{h}={ip}"),
                            None => s.to_string(),
                        },
                    };
                    out.push(Value::String(entry));
                }
            }
        }
        Value::Object(m) => {
            for (h, ip) in m.iter() {
                match ip {
                    Value::Array(ips) => {
                        for ip in ips {
                            if let Some(ip) = scalar_string(ip) {
                                out.push(Value::String(format!("{h}={ip}")));
                            }
                        }
                    }
                    other => {
                        if let Some(ip) = scalar_string(other) {
                            out.push(Value::String(format!("{h}={ip}")));
                        }
                    }
                }
            }
        }
        _ => return,
    }
    *v = Value::Array(out);
}

fn port_range(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("invalid port {s:?}");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (
            a.parse::<u32>().map_err(|_| bad())?,
            b.parse::<u32>().map_err(|_| bad())?,
        ),
        None => {
            let a = s.parse::<u32>().map_err(|_| bad())?;
            (a, a)
        }
    };
    if b < a || b > 65535 {
        return Err(bad());
    }
    Ok((a, b))
}

/// One `ports` entry (short string, number, or long map) to its long form(s), ranges expanded as
/// Compose does (`8000-8001:80-81` gives two entries, `5000-5002:500` one with a published range).
pub fn parse_port(item: &Value) -> Result<Vec<Value>, String> {
    match item {
        Value::Number(n) => Ok(vec![json!({"mode": "ingress", "target": n, "protocol": "tcp"})]),
        Value::Object(o) => {
            let mut o = o.clone();
            o.entry("mode").or_insert_with(|| json!("ingress"));
            o.entry("protocol").or_insert_with(|| json!("tcp"));
            if let Some(p) = o.get("published") {
                match scalar_string(p) {
                    Some(s) if !s.is_empty() => {
                        o.insert("published".into(), Value::String(s));
                    }
                    _ => {
                        o.remove("published");
                    }
                }
            }
            Ok(vec![Value::Object(o)])
        }
        Value::String(s) => parse_port_str(s),
        _ => Err("invalid port".into()),
    }
}

fn parse_port_str(s: &str) -> Result<Vec<Value>, String> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (s, "tcp"),
    };
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| format!("invalid IP address in {s:?}"))?;
        (
            Some(ip.to_string()),
            after.strip_prefix(':').unwrap_or(after).to_string(),
        )
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() > 3 {
            let n = parts.len();
            (Some(parts[..n - 2].join(":")), parts[n - 2..].join(":"))
        } else if parts.len() == 3 {
            (Some(parts[0].to_string()), parts[1..].join(":"))
        } else {
            (None, spec.to_string())
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (p.to_string(), t.to_string()),
        None => (String::new(), rest.clone()),
    };
    let (t0, t1) = port_range(&target).map_err(|_| format!("invalid containerPort: {target}"))?;
    let host = if published.is_empty() {
        None
    } else {
        Some(port_range(&published)?)
    };
    let entry = |target: u32, published: Option<String>| {
        let mut o = Map::new();
        o.insert("mode".into(), json!("ingress"));
        if let Some(ip) = ip.as_ref().filter(|ip| !ip.is_empty()) {
            o.insert("host_ip".into(), json!(ip));
        }
        o.insert("target".into(), json!(target));
        if let Some(p) = published {
            o.insert("published".into(), json!(p));
        }
        o.insert("protocol".into(), json!(proto));
        Value::Object(o)
    };
    let mut out = Vec::new();
    match host {
        None => {
            for t in t0..=t1 {
                out.push(entry(t, None));
            }
        }
        Some((h0, h1)) if t0 == t1 => {
            let p = if h0 == h1 { h0.to_string() } else { format!("{h0}-{h1}") };
            out.push(entry(t0, Some(p)));
        }
        Some((h0, h1)) => {
            if h1 - h0 != t1 - t0 {
                return Err(format!(
                    "invalid ranges specified for container and host Ports: {target} and {published}"
                ));
            }
            for (i, t) in (t0..=t1).enumerate() {
                out.push(entry(t, Some((h0 + i as u32).to_string())));
            }
        }
    }
    Ok(out)
}

fn is_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// One `volumes` entry (short `[SOURCE:]TARGET[:OPTIONS]` or long map) to its long form.
pub fn parse_volume(item: &Value) -> Result<Value, String> {
    let s = match item {
        Value::String(s) => s,
        Value::Object(_) => return Ok(item.clone()),
        _ => return Err("invalid volume".into()),
    };
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => (None, *t, None),
        [a, b] => (Some(*a), *b, None),
        [a, b, c] => (Some(*a), *b, Some(*c)),
        _ => return Err(format!("invalid spec: {s}: too many colons")),
    };
    if target.is_empty() {
        return Err(format!("invalid spec: {s}: empty section between colons"));
    }
    let mut o = Map::new();
    let bind = source.is_some_and(is_path);
    o.insert("type".into(), json!(if bind { "bind" } else { "volume" }));
    if let Some(src) = source {
        o.insert("source".into(), json!(src));
    }
    o.insert("target".into(), json!(target));
    let mut bind_opts = Map::new();
    let mut vol_opts = Map::new();
    for opt in opts.into_iter().flat_map(|o| o.split(',')) {
        match opt {
            "ro" => {
                o.insert("read_only".into(), Value::Bool(true));
            }
            "rw" | "" => {}
            "z" | "Z" => {
                bind_opts.insert("selinux".into(), json!(opt));
            }
            "nocopy" => {
                vol_opts.insert("nocopy".into(), Value::Bool(true));
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind_opts.insert("propagation".into(), json!(opt));
            }
            _ => return Err(format!("invalid spec: {s}: unknown option {opt:?}")),
        }
    }
    if bind {
        bind_opts.insert("create_host_path".into(), Value::Bool(true));
        o.insert("bind".into(), Value::Object(bind_opts));
        if !vol_opts.is_empty() {
            o.insert("volume".into(), Value::Object(vol_opts));
        }
    } else {
        o.insert("volume".into(), Value::Object(vol_opts));
    }
    Ok(Value::Object(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_short_syntax_table() {
        let cases: &[(Value, Value)] = &[
            (
                json!("8080:80"),
                json!([{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}]),
            ),
            (
                json!(443),
                json!([{"mode": "ingress", "target": 443, "protocol": "tcp"}]),
            ),
            (
                json!("127.0.0.1:9000-9001:9000-9001/udp"),
                json!([
                    {"mode": "ingress", "host_ip": "127.0.0.1", "target": 9000, "published": "9000", "protocol": "udp"},
                    {"mode": "ingress", "host_ip": "127.0.0.1", "target": 9001, "published": "9001", "protocol": "udp"}
                ]),
            ),
            (
                json!("[::1]:7000:70"),
                json!([{"mode": "ingress", "host_ip": "::1", "target": 70, "published": "7000", "protocol": "tcp"}]),
            ),
            (
                json!("5000-5002:500"),
                json!([{"mode": "ingress", "target": 500, "published": "5000-5002", "protocol": "tcp"}]),
            ),
            (
                json!("127.0.0.1::99"),
                json!([{"mode": "ingress", "host_ip": "127.0.0.1", "target": 99, "protocol": "tcp"}]),
            ),
            (
                json!("3000-3001"),
                json!([{"mode": "ingress", "target": 3000, "protocol": "tcp"}, {"mode": "ingress", "target": 3001, "protocol": "tcp"}]),
            ),
            (
                json!({"target": 81, "published": 8081}),
                json!([{"mode": "ingress", "target": 81, "published": "8081", "protocol": "tcp"}]),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&Value::Array(parse_port(input).unwrap()), want, "{input}");
        }
        assert_eq!(
            parse_port(&json!("6000:600-601")).unwrap_err(),
            "invalid ranges specified for container and host Ports: 600-601 and 6000"
        );
        assert!(parse_port(&json!("abc")).is_err());
    }

    #[test]
    fn volumes_short_syntax_table() {
        let cases: &[(&str, Value)] = &[
            (
                "data:/d",
                json!({"type": "volume", "source": "data", "target": "/d", "volume": {}}),
            ),
            ("/anon", json!({"type": "volume", "target": "/anon", "volume": {}})),
            (
                "./a:/a:ro",
                json!({"type": "bind", "source": "./a", "target": "/a", "read_only": true, "bind": {"create_host_path": true}}),
            ),
            (
                "/c:/c:z,nocopy",
                json!({"type": "bind", "source": "/c", "target": "/c", "bind": {"selinux": "z", "create_host_path": true},
                    "volume": {"nocopy": true}}),
            ),
            (
                "./b:/b:rshared,ro",
                json!({"type": "bind", "source": "./b", "target": "/b", "read_only": true,
                    "bind": {"propagation": "rshared", "create_host_path": true}}),
            ),
            (
                "v:/v:ro,nocopy",
                json!({"type": "volume", "source": "v", "target": "/v", "read_only": true, "volume": {"nocopy": true}}),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_volume(&json!(input)).unwrap(), want, "{input}");
        }
        assert!(parse_volume(&json!("a:/b:bogus")).is_err());
    }

    #[test]
    fn list_forms_become_maps() {
        let mut doc = json!({"services": {"web": {
            "environment": ["A=b", "C", "D="],
            "labels": ["x=1", "y"],
            "depends_on": ["db"],
            "networks": ["back"],
            "build": ".",
            "extra_hosts": ["h:1.2.3.4", "i=::1"],
            "healthcheck": {"test": "curl x"},
            "secrets": ["s"],
            "env_file": ".env.web"
        }}});
        canonicalize(&mut doc).unwrap();
        assert_eq!(
            doc,
            json!({"services": {"web": {
                "environment": {"A": "b", "C": null, "D": ""},
                "labels": {"x": "1", "y": ""},
                "depends_on": {"db": {"condition": "service_started", "required": true}},
                "networks": {"back": null},
                "build": {"context": "."},
                "extra_hosts": ["h=1.2.3.4", "i=::1"],
                "healthcheck": {"test": ["CMD-SHELL", "curl x"]},
                "secrets": [{"source": "s"}],
                "env_file": [{"path": ".env.web", "required": true}]
            }}})
        );
    }
}
