//! The merged model put in the shape Compose v2 prints with `config --format json`: relative paths
//! made absolute, `env_file`s read into `environment`, commands split shell-style, durations in Go's
//! format (`1m30s`), byte sizes as strings of bytes, implicit dependencies (`network_mode:
//! service:x`, `volumes_from`, `links`), the default network, and resource names
//! (`<project>_<key>`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Number, Value};

use super::dotenv;
use super::error::{LoadError, Location};

/// Resolves a path as Compose does: `~` from HOME, relative ones against `base`.
pub fn resolve_path(p: &str, base: &Path, env: &BTreeMap<String, String>) -> String {
    if p == "~" || p.starts_with("~/") {
        let home = env.get("HOME").cloned().unwrap_or_default();
        return format!("{home}{}", &p[1..]);
    }
    let path = Path::new(p);
    if path.is_absolute() {
        return p.to_string();
    }
    clean(&base.join(path)).to_string_lossy().into_owned()
}

/// Lexically cleans a path (`a/./b/../c` → `a/c`), like Go's `filepath.Clean`.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn is_remote_context(ctx: &str) -> bool {
    ctx.contains("://") || ctx.starts_with("git@") || ctx.starts_with("github.com/")
}

/// Makes a service's relative paths absolute against `base` (the directory of the file that
/// declared them): build context, bind mount sources, env_file and label_file entries, extends.file.
pub fn resolve_service_paths(svc: &mut Map<String, Value>, base: &Path, env: &BTreeMap<String, String>) {
    if let Some(Value::Object(b)) = svc.get_mut("build") {
        let ctx = b.get("context").and_then(Value::as_str).unwrap_or(".").to_string();
        if !is_remote_context(&ctx) {
            b.insert("context".into(), json!(resolve_path(&ctx, base, env)));
        }
    }
    if let Some(Value::Array(vols)) = svc.get_mut("volumes") {
        for v in vols.iter_mut() {
            if v.get("type").and_then(Value::as_str) != Some("bind") {
                continue;
            }
            if let Some(src) = v.get("source").and_then(Value::as_str) {
                let abs = resolve_path(src, base, env);
                v["source"] = json!(abs);
            }
        }
    }
    if let Some(Value::Array(files)) = svc.get_mut("env_file") {
        for f in files.iter_mut() {
            if let Some(p) = f.get("path").and_then(Value::as_str) {
                let abs = resolve_path(p, base, env);
                f["path"] = json!(abs);
            }
        }
    }
    if let Some(Value::Array(files)) = svc.get_mut("label_file") {
        for f in files.iter_mut() {
            if let Some(p) = f.as_str() {
                *f = json!(resolve_path(p, base, env));
            }
        }
    }
    if let Some(Value::Object(ext)) = svc.get_mut("extends") {
        if let Some(p) = ext.get("file").and_then(Value::as_str) {
            let abs = resolve_path(p, base, env);
            ext.insert("file".into(), json!(abs));
        }
    }
}

/// Makes the relative `file:` of top-level secrets and configs absolute.
pub fn resolve_resource_paths(model: &mut Value, base: &Path, env: &BTreeMap<String, String>) {
    for kind in ["secrets", "configs"] {
        if let Some(Value::Object(m)) = model.get_mut(kind) {
            for v in m.values_mut() {
                if let Some(p) = v.get("file").and_then(Value::as_str) {
                    let abs = resolve_path(p, base, env);
                    v["file"] = json!(abs);
                }
            }
        }
    }
}

/// A Go `time.Duration` string (`1m30s`, `1.5s`, `1h0m0s`, `500ms`) for `nanos`.
pub fn go_duration(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let frac = |v: u128, digits: u32| -> String {
        let unit = 10u128.pow(digits);
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let s = format!("{:0width$}", rest, width = digits as usize);
            format!("{whole}.{}", s.trim_end_matches('0'))
        }
    };
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 6))
    } else {
        let secs = frac(u % 60_000_000_000, 9);
        let total_min = u / 60_000_000_000;
        let (h, m) = (total_min / 60, total_min % 60);
        if h > 0 {
            format!("{h}h{m}m{secs}s")
        } else if m > 0 {
            format!("{m}m{secs}s")
        } else {
            format!("{secs}s")
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Parses a Go/compose duration (`1m30s`, `1500ms`, `1h5m30s20ms`, `10us`) to nanoseconds.
pub fn parse_duration(s: &str) -> Option<i128> {
    berth_types::units::parse_go_duration(s).map(i128::from)
}

/// Parses a byte size (`50M`, `1gb`, `1.5g`, `1024`) as Docker's `RAMInBytes` does (binary units).
pub fn parse_bytes(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => berth_types::units::ram_in_bytes(s.trim()).ok(),
        _ => None,
    }
}

/// Everything `normalize` needs to know about the project.
pub struct Context<'a> {
    /// The absolute project directory.
    pub dir: &'a Path,
    /// The interpolation environment (bare `environment` keys and `env_file` variables read it).
    pub env: &'a BTreeMap<String, String>,
    /// Make relative paths absolute (`LoadOptions::resolve_paths`).
    pub resolve_paths: bool,
    /// Where keys were declared, for errors.
    pub locate: &'a dyn Fn(&str) -> Location,
}

fn set_duration(obj: &mut Map<String, Value>, key: &str, path: &str, cx: &Context) -> Result<(), LoadError> {
    let Some(v) = obj.get(key) else { return Ok(()) };
    let Some(s) = v.as_str() else { return Ok(()) };
    match parse_duration(s) {
        Some(n) => {
            obj.insert(key.into(), json!(go_duration(n)));
            Ok(())
        }
        None => Err(LoadError::Schema {
            at: (cx.locate)(&format!("{path}.{key}")),
            message: format!("invalid duration {s:?}"),
        }),
    }
}

fn set_bytes(obj: &mut Map<String, Value>, key: &str, path: &str, cx: &Context) -> Result<(), LoadError> {
    let Some(v) = obj.get(key) else { return Ok(()) };
    match parse_bytes(v) {
        Some(n) => {
            obj.insert(key.into(), json!(n.to_string()));
            Ok(())
        }
        None => Err(LoadError::Schema {
            at: (cx.locate)(&format!("{path}.{key}")),
            message: format!("invalid size: {v}"),
        }),
    }
}

fn to_float(obj: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(s)) = obj.get(key) {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            obj.insert(key.into(), Value::Number(n));
        }
    }
}

/// Scalar fields of a service Compose prints even when false or zero (Go pointers).
const KEEP_ZERO: &[&str] = &["init", "attach", "scale"];

/// Normalises one service in place.
pub fn normalize_service(name: &str, svc: &mut Map<String, Value>, cx: &Context) -> Result<(), LoadError> {
    let path = format!("services.{name}");
    if cx.resolve_paths {
        resolve_service_paths(svc, cx.dir, cx.env);
    }
    svc.remove("extends");

    // environment: env_file variables, then `environment` over them, bare keys from the environment
    let mut env = Map::new();
    // variables in env files read the service's own `environment` first, then the project's
    let mut scope = cx.env.clone();
    if let Some(Value::Object(declared)) = svc.get("environment") {
        for (k, v) in declared {
            if let Value::String(s) = v {
                scope.insert(k.clone(), s.clone());
            }
        }
    }
    if let Some(Value::Array(files)) = svc.remove("env_file") {
        for f in files {
            let Some(p) = f.get("path").and_then(Value::as_str) else {
                continue;
            };
            let required = f.get("required").and_then(Value::as_bool).unwrap_or(true);
            // an env file path left relative (resolve_paths off) is still read from the project
            let p = resolve_path(p, cx.dir, cx.env);
            let p = p.as_str();
            let text = match std::fs::read_to_string(p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(LoadError::Invalid {
                        at: (cx.locate)(&format!("{path}.env_file")),
                        message: format!("env file {p} not found: stat {p}: no such file or directory"),
                    })
                }
                Err(source) => {
                    return Err(LoadError::Io {
                        path: PathBuf::from(p),
                        source,
                    })
                }
            };
            let vars = dotenv::parse(&text, &scope).map_err(|e| LoadError::Invalid {
                at: Location {
                    file: Some(PathBuf::from(p)),
                    line: Some(e.line),
                    path: String::new(),
                },
                message: e.message,
            })?;
            for (k, v) in vars {
                env.insert(k, Value::String(v));
            }
        }
    }
    if let Some(Value::Object(declared)) = svc.get("environment") {
        for (k, v) in declared {
            let v = match v {
                Value::Null => cx.env.get(k).map_or(Value::Null, |s| Value::String(s.clone())),
                other => other.clone(),
            };
            env.insert(k.clone(), v);
        }
    }
    if !env.is_empty() || svc.contains_key("environment") {
        svc.insert("environment".into(), Value::Object(env));
    }

    // command and entrypoint: strings split shell-style; absent ones are printed as null
    for key in ["command", "entrypoint"] {
        let v = match svc.get(key) {
            None | Some(Value::Null) => Value::Null,
            Some(Value::String(s)) => {
                let words = shell_words::split(s).map_err(|e| LoadError::Schema {
                    at: (cx.locate)(&format!("{path}.{key}")),
                    message: format!("invalid command line: {e}"),
                })?;
                json!(words)
            }
            Some(other) => other.clone(),
        };
        svc.insert(key.into(), v);
    }

    if let Some(Value::Object(b)) = svc.get_mut("build") {
        // build args without a value take it from the environment, or are dropped
        if let Some(Value::Object(args)) = b.get_mut("args") {
            let unset: Vec<String> = args
                .iter()
                .filter(|(_, v)| v.is_null())
                .map(|(k, _)| k.clone())
                .collect();
            for k in unset {
                match cx.env.get(&k) {
                    Some(v) => {
                        args.insert(k, json!(v));
                    }
                    None => {
                        args.remove(&k);
                    }
                }
            }
        }
        if !b.contains_key("dockerfile") && !b.contains_key("dockerfile_inline") {
            b.insert("dockerfile".into(), json!("Dockerfile"));
        }
    }

    if let Some(Value::Array(hosts)) = svc.get_mut("extra_hosts") {
        hosts.sort_by_key(|h| h.as_str().unwrap_or_default().to_string());
        hosts.dedup();
    }

    // file modes print in octal, as Compose's FileMode does
    for kind in ["secrets", "configs"] {
        if let Some(Value::Array(refs)) = svc.get_mut(kind) {
            for r in refs.iter_mut() {
                if let Some(m) = r.get("mode").and_then(Value::as_u64) {
                    r["mode"] = json!(format!("0{m:o}"));
                }
            }
        }
    }
    if let Some(Value::Array(secrets)) = svc.get_mut("secrets") {
        for s in secrets.iter_mut() {
            if s.get("target").is_none() {
                if let Some(src) = s.get("source").and_then(Value::as_str) {
                    let t = format!("/run/secrets/{src}");
                    s["target"] = json!(t);
                }
            }
        }
    }

    set_duration(svc, "stop_grace_period", &path, cx)?;
    if let Some(Value::Object(hc)) = svc.get_mut("healthcheck") {
        for key in ["interval", "timeout", "start_period", "start_interval"] {
            set_duration(hc, key, &format!("{path}.healthcheck"), cx)?;
        }
        if hc.get("disable") == Some(&Value::Bool(false)) {
            hc.remove("disable");
        }
    }
    for key in [
        "mem_limit",
        "mem_reservation",
        "memswap_limit",
        "mem_swappiness",
        "shm_size",
    ] {
        set_bytes(svc, key, &path, cx)?;
    }
    if let Some(Value::Array(vols)) = svc.get_mut("volumes") {
        for (i, v) in vols.iter_mut().enumerate() {
            if let Some(Value::Object(t)) = v.get_mut("tmpfs") {
                set_bytes(t, "size", &format!("{path}.volumes.{i}.tmpfs"), cx)?;
            }
        }
    }
    to_float(svc, "cpus");
    if let Some(Value::Object(d)) = svc.get_mut("deploy") {
        let dpath = format!("{path}.deploy");
        if let Some(Value::Object(r)) = d.get_mut("resources") {
            for kind in ["limits", "reservations"] {
                if let Some(Value::Object(l)) = r.get_mut(kind) {
                    set_bytes(l, "memory", &format!("{dpath}.resources.{kind}"), cx)?;
                    to_float(l, "cpus");
                }
            }
        }
        for key in ["update_config", "rollback_config"] {
            if let Some(Value::Object(u)) = d.get_mut(key) {
                set_duration(u, "delay", &format!("{dpath}.{key}"), cx)?;
                set_duration(u, "monitor", &format!("{dpath}.{key}"), cx)?;
            }
        }
        if let Some(Value::Object(rp)) = d.get_mut("restart_policy") {
            set_duration(rp, "delay", &format!("{dpath}.restart_policy"), cx)?;
            set_duration(rp, "window", &format!("{dpath}.restart_policy"), cx)?;
        }
        d.entry("resources").or_insert_with(|| json!({}));
        d.entry("placement").or_insert_with(|| json!({}));
    }
    // Compose prints a service's scalar fields only when set (Go `omitempty`), except the
    // pointer-typed ones where `false`/`0` mean something
    svc.retain(|k, v| {
        let zero = match v {
            Value::Bool(b) => !*b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty() && k != "command" && k != "entrypoint",
            Value::Object(m) => m.is_empty(),
            Value::Null => false,
        };
        !zero || KEEP_ZERO.contains(&k.as_str()) || k.starts_with("x-")
    });

    if !svc.contains_key("network_mode") {
        match svc.get("networks") {
            Some(Value::Object(n)) if !n.is_empty() => {}
            _ => {
                svc.insert("networks".into(), json!({"default": null}));
            }
        }
    }
    Ok(())
}

/// Top-level resources: `name: <project>_<key>` unless named or external, `ipam: {}` on networks
/// (Compose prints it), a `default` network when a service uses it.
pub fn normalize_resources(model: &mut Map<String, Value>, project: &str) {
    let uses_default = model.get("services").and_then(Value::as_object).is_some_and(|s| {
        s.values()
            .any(|svc| svc.get("networks").and_then(|n| n.get("default")).is_some())
    });
    if uses_default {
        let nets = model.entry("networks").or_insert_with(|| json!({}));
        if let Value::Object(n) = nets {
            n.entry("default").or_insert_with(|| json!({}));
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Object(m)) = model.get_mut(kind) {
            for (key, v) in m.iter_mut() {
                if v.is_null() {
                    *v = json!({});
                }
                let Some(obj) = v.as_object_mut() else { continue };
                let external = obj.get("external").and_then(Value::as_bool).unwrap_or(false);
                if !external && obj.get("external") == Some(&Value::Bool(false)) {
                    obj.remove("external");
                }
                if !obj.contains_key("name") {
                    let n = if external {
                        key.clone()
                    } else {
                        format!("{project}_{key}")
                    };
                    obj.insert("name".into(), json!(n));
                }
                if kind == "networks" && !external {
                    obj.entry("ipam").or_insert_with(|| json!({}));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases: &[(&str, &str)] = &[
            ("90s", "1m30s"),
            ("1500ms", "1.5s"),
            ("1h", "1h0m0s"),
            ("10s", "10s"),
            ("1m30s", "1m30s"),
            ("500ms", "500ms"),
            ("10us", "10µs"),
            ("1h5m30s20ms", "1h5m30.02s"),
            ("0", "0s"),
            ("2.5m", "2m30s"),
        ];
        for (input, want) in cases {
            assert_eq!(go_duration(parse_duration(input).unwrap()), *want, "{input}");
        }
        assert!(parse_duration("10").is_none());
        assert!(parse_duration("5 days").is_none());
    }

    #[test]
    fn byte_sizes() {
        let cases: &[(Value, i64)] = &[
            (json!("50M"), 52_428_800),
            (json!("1g"), 1_073_741_824),
            (json!("1gb"), 1_073_741_824),
            (json!("1.5g"), 1_610_612_736),
            (json!("64m"), 67_108_864),
            (json!("2b"), 2),
            (json!("1024kb"), 1_048_576),
            (json!(1000000), 1_000_000),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bytes(input), Some(*want), "{input}");
        }
        assert_eq!(parse_bytes(&json!("lots")), None);
    }

    #[test]
    fn paths() {
        let env: BTreeMap<String, String> = [("HOME".to_string(), "/home/u".to_string())].into();
        let base = Path::new("/p/proj");
        assert_eq!(resolve_path("./data", base, &env), "/p/proj/data");
        assert_eq!(resolve_path("../x/./y", base, &env), "/p/x/y");
        assert_eq!(resolve_path("/abs", base, &env), "/abs");
        assert_eq!(resolve_path("~/foo", base, &env), "/home/u/foo");
        assert_eq!(resolve_path(".", base, &env), "/p/proj");
    }
}
