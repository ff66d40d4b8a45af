//! Printing the model as `docker compose config` does: `--format json` (`to_json`) and the default
//! YAML (`to_yaml`). Both escape `$` as `$$` (so the output can be loaded again), as Compose does.
//! The YAML puts keys in Compose's order (its Go structs' field order for known objects, sorted
//! for maps such as `environment` or `services`) and leaves out what Compose's YAML omits
//! (`command: null`, empty `ipam`/`placement`/`resources`). Multi-line strings are printed double
//! quoted with `\n` where Compose uses a `|-` block: the same value, another spelling.

use serde_json::Value;

fn escape_dollars(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(a) => Value::Array(a.iter().map(escape_dollars).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.replace('$', "$$"), escape_dollars(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The model as `docker compose config --format json` prints it: `$` escaped as `$$`, and a
/// service's own `x-` keys left out (Compose's JSON drops them; its YAML keeps them). Keys are in
/// Go's order: sorted where Compose marshals a map (the project), field order where it marshals a
/// struct (a service, a port, a mount, `deploy`, …); strings escaped as Go's encoder does.
pub fn to_json(model: &Value) -> String {
    let mut v = escape_dollars(model);
    if let Some(Value::Object(services)) = v.get_mut("services") {
        for svc in services.values_mut() {
            if let Value::Object(s) = svc {
                s.retain(|k, _| !k.starts_with("x-"));
            }
        }
    }
    let mut out = String::new();
    // No newline at the end, as Compose prints it.
    write_json(&v, &mut Vec::new(), Some(0), &mut out);
    out
}

/// What Docker Compose v2 hashes into a container's `com.docker.compose.config-hash`: the
/// service's JSON as `config --format json` has it, compact, without what does not reach the
/// container or is checked otherwise (`build`, `pull_policy`, `scale`, `deploy.replicas`,
/// `depends_on`, `profiles`). Equal hashes make a stack that
/// berth started one that Compose leaves alone, and the other way round.
pub fn service_hash_input(service: &Value) -> String {
    let mut v = escape_dollars(service);
    if let Value::Object(s) = &mut v {
        s.retain(|k, _| {
            !k.starts_with("x-")
                && !matches!(
                    k.as_str(),
                    "build" | "pull_policy" | "scale" | "depends_on" | "profiles"
                )
        });
        if let Some(Value::Object(d)) = s.get_mut("deploy") {
            d.remove("replicas");
        }
    }
    let mut out = String::new();
    write_json(&v, &mut vec!["services".to_string(), "*".to_string()], None, &mut out);
    out
}

/// Go's `json.Marshal` (compact, `indent` None) or `MarshalIndent` with two spaces.
fn write_json(v: &Value, path: &mut Vec<String>, indent: Option<usize>, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        if indent.is_some() {
            out.push('\n');
            out.push_str(&"  ".repeat(level));
        }
    };
    let level = indent.unwrap_or(0);
    let deeper = indent.map(|i| i + 1);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('{');
            // Compose marshals the project as a map (sorted keys), the rest as structs.
            let keys: Vec<&String> = if path.is_empty() {
                m.keys().collect()
            } else {
                ordered_keys(m, path)
            };
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                go_string(k, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                path.push((*k).clone());
                write_json(&m[*k], path, deeper, out);
                path.pop();
            }
            newline(out, level);
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                path.push("*".to_string());
                write_json(item, path, deeper, out);
                path.pop();
            }
            newline(out, level);
            out.push(']');
        }
        Value::String(s) => go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string as Go's encoder writes it (HTML-safe: `<`, `>`, `&` and U+2028/9 as `\u` escapes).
fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

const PROJECT: &[&str] = &[
    "name", "services", "networks", "volumes", "secrets", "configs", "models",
];
const SERVICE: &[&str] = &[
    "profiles",
    "annotations",
    "attach",
    "build",
    "develop",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "cgroup",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpus",
    "cpuset",
    "cpu_shares",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "dockerfile",
    "domainname",
    "entrypoint",
    "provider",
    "environment",
    "env_file",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "group_add",
    "gpus",
    "hostname",
    "healthcheck",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "label_file",
    "links",
    "logging",
    "log_driver",
    "log_opt",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "mac_address",
    "models",
    "net",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volume_driver",
    "volumes",
    "volumes_from",
    "working_dir",
    "post_start",
    "pre_stop",
];
const BUILD: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "entitlements",
    "args",
    "ssh",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "additional_contexts",
    "network",
    "pull",
    "target",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];
const PORT: &[&str] = &[
    "name",
    "mode",
    "host_ip",
    "target",
    "published",
    "protocol",
    "app_protocol",
];
const VOLUME_MOUNT: &[&str] = &[
    "type",
    "source",
    "target",
    "read_only",
    "consistency",
    "bind",
    "volume",
    "tmpfs",
    "image",
];
const BIND: &[&str] = &["selinux", "propagation", "create_host_path", "recursive"];
const HEALTHCHECK: &[&str] = &[
    "test",
    "timeout",
    "interval",
    "retries",
    "start_period",
    "start_interval",
    "disable",
];
const DEPENDS: &[&str] = &["condition", "restart", "required"];
const DEPLOY: &[&str] = &[
    "mode",
    "replicas",
    "labels",
    "update_config",
    "rollback_config",
    "resources",
    "restart_policy",
    "placement",
    "endpoint_mode",
];
const NETWORK: &[&str] = &[
    "name",
    "driver",
    "driver_opts",
    "ipam",
    "external",
    "internal",
    "enable_ipv4",
    "enable_ipv6",
    "attachable",
    "labels",
];
const VOLUME: &[&str] = &["name", "driver", "driver_opts", "external", "labels"];
const SECRET: &[&str] = &[
    "name",
    "content",
    "environment",
    "file",
    "external",
    "labels",
    "driver",
    "driver_opts",
    "template_driver",
];
const FILE_REF: &[&str] = &["source", "target", "uid", "gid", "mode"];

fn matches(pattern: &[&str], path: &[String]) -> bool {
    pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

/// The field order of the object at `path`, when it is one of Compose's structs.
fn order_for(path: &[String]) -> Option<&'static [&'static str]> {
    let table: &[(&[&str], &[&str])] = &[
        (&[], PROJECT),
        (&["services", "*"], SERVICE),
        (&["services", "*", "build"], BUILD),
        (&["services", "*", "ports", "*"], PORT),
        (&["services", "*", "volumes", "*"], VOLUME_MOUNT),
        (&["services", "*", "volumes", "*", "bind"], BIND),
        (&["services", "*", "healthcheck"], HEALTHCHECK),
        (&["services", "*", "depends_on", "*"], DEPENDS),
        (&["services", "*", "deploy"], DEPLOY),
        (&["services", "*", "ulimits", "*"], &["soft", "hard"]),
        (&["services", "*", "secrets", "*"], FILE_REF),
        (&["services", "*", "configs", "*"], FILE_REF),
        (&["networks", "*"], NETWORK),
        (&["volumes", "*"], VOLUME),
        (&["secrets", "*"], SECRET),
        (&["configs", "*"], SECRET),
    ];
    table.iter().find(|(p, _)| matches(p, path)).map(|(_, o)| *o)
}

/// What Compose's YAML leaves out at `path` (Go `omitempty` on values its JSON keeps).
fn omitted(path: &[String], key: &str, v: &Value) -> bool {
    let empty_obj = v.as_object().is_some_and(|m| m.is_empty());
    (matches(&["services", "*"], path) && (key == "command" || key == "entrypoint") && v.is_null())
        || (matches(&["networks", "*"], path) && key == "ipam" && empty_obj)
        || (matches(&["services", "*", "deploy"], path) && (key == "placement" || key == "resources") && empty_obj)
}

/// The model as `docker compose config` prints it (YAML).
pub fn to_yaml(model: &Value) -> String {
    let v = escape_dollars(model);
    let mut out = String::new();
    let mut path = Vec::new();
    match &v {
        Value::Object(m) if !m.is_empty() => emit_map(&v, 0, &mut path, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn ordered_keys<'v>(m: &'v serde_json::Map<String, Value>, path: &[String]) -> Vec<&'v String> {
    let mut keys: Vec<&String> = m.keys().collect();
    if let Some(order) = order_for(path) {
        keys.sort_by_key(|k| {
            let ext = k.starts_with("x-");
            let pos = order.iter().position(|o| o == k).unwrap_or(order.len());
            (ext, pos, (*k).clone())
        });
    }
    keys
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn emit_map(v: &Value, indent: usize, path: &mut Vec<String>, out: &mut String) {
    let Value::Object(m) = v else { return };
    let pad = " ".repeat(indent);
    for k in ordered_keys(m, path) {
        let child = &m[k.as_str()];
        if omitted(path, k, child) {
            continue;
        }
        out.push_str(&pad);
        out.push_str(&scalar(&Value::String(k.clone())));
        out.push(':');
        path.push(k.clone());
        write_value(child, indent, path, out);
        path.pop();
    }
}

fn write_value(child: &Value, indent: usize, path: &mut Vec<String>, out: &mut String) {
    match child {
        Value::Object(_) if is_block(child) => {
            out.push('\n');
            emit_map(child, indent + 2, path, out);
        }
        Value::Array(_) if is_block(child) => {
            out.push('\n');
            emit_seq(child, indent + 2, path, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar_at(other, indent));
            out.push('\n');
        }
    }
}

fn emit_seq(v: &Value, indent: usize, path: &mut Vec<String>, out: &mut String) {
    let Value::Array(items) = v else { return };
    let pad = " ".repeat(indent);
    for (i, item) in items.iter().enumerate() {
        path.push(i.to_string());
        match item {
            Value::Object(m) if !m.is_empty() => {
                // the first key shares the dash's line
                let mut body = String::new();
                emit_map(item, indent + 2, path, &mut body);
                let trimmed = body.get(indent + 2..).unwrap_or_default();
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(trimmed);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push_str(&pad);
                out.push_str("-\n");
                emit_seq(item, indent + 2, path, out);
            }
            other => {
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&scalar_at(other, indent));
                out.push('\n');
            }
        }
        path.pop();
    }
}

/// How go-yaml v3 writes a string: plain, single-quoted (special characters), double-quoted (it
/// would read back as another type, or holds control characters).
enum Style {
    Plain,
    Single,
    Double,
}

/// go-yaml's `isBase60Float`, which it quotes so YAML 1.1 readers keep the string.
fn is_base60_float(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int_part, frac) = t.split_once('.').unwrap_or((t, ""));
    if !frac.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    let mut parts = int_part.split(':');
    let head = parts.next().unwrap_or_default();
    if !head.starts_with(|c: char| c.is_ascii_digit()) || !head.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    let mut groups = 0;
    for g in parts {
        let ok = match g.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    groups > 0
}

fn style(s: &str) -> Style {
    if s.is_empty() || !matches!(super::yaml::resolve_plain(s), Value::String(_)) {
        return Style::Double;
    }
    // YAML 1.1 booleans go-yaml quotes to stay readable by older parsers
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if WORDS.contains(&s) || (s.starts_with('.') && s[1..].parse::<f64>().is_ok()) {
        return Style::Double;
    }
    // numbers older YAML reads as numbers: with underscores, or sexagesimal (go-yaml's
    // isBase60Float: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)
    let digits_only = s
        .chars()
        .all(|c| c.is_ascii_digit() || c == '_' || c == '.' || c == '-' || c == '+');
    if (digits_only && s.contains('_') && s.chars().any(|c| c.is_ascii_digit())) || is_base60_float(s) {
        return Style::Double;
    }
    if s.chars().any(|c| c.is_control()) {
        return Style::Double;
    }
    let first = s.chars().next().unwrap_or(' ');
    let special_start =
        "?:,[]{}#&*!|>'\"%@`".contains(first) || (first == '-' && (s.len() == 1 || s[1..].starts_with(' ')));
    if s.trim() != s || special_start || s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return if s.contains('\'') { Style::Double } else { Style::Single };
    }
    Style::Plain
}

fn scalar_at(v: &Value, indent: usize) -> String {
    if let Value::String(s) = v {
        if s.contains('\n') && !s.chars().any(|c| c.is_control() && c != '\n') && s.lines().all(|l| l.trim_end() == l) {
            let pad = " ".repeat(indent + 2);
            let mut out = String::from(if s.ends_with('\n') { "|" } else { "|-" });
            for line in s.trim_end_matches('\n').split('\n') {
                out.push('\n');
                if !line.is_empty() {
                    out.push_str(&pad);
                    out.push_str(line);
                }
            }
            return out;
        }
    }
    scalar(v)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => match style(s) {
            Style::Plain => s.clone(),
            Style::Single => format!("'{s}'"),
            Style::Double => serde_json::to_string(s).unwrap_or_default(),
        },
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base60_floats_as_go_yaml_sees_them() {
        for (s, want) in [
            ("1:20", true),
            ("190:20:30.15", true),
            ("-1:5", true),
            ("8000:80", false),
            ("0.0.0.0:80", false),
            ("1:60", false),
            ("80", false),
            ("a:1", false),
        ] {
            assert_eq!(is_base60_float(s), want, "{s}");
        }
    }
    use serde_json::json;

    #[test]
    fn yaml_like_compose() {
        let model = json!({
            "name": "o1",
            "services": {"web": {
                "image": "x",
                "command": ["echo", "$HOME"],
                "entrypoint": null,
                "environment": {"B": "1", "A": "", "N": null},
                "ports": [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}],
                "expose": ["3000", "4000-4001"],
                "networks": {"default": null},
                "x-foo": "bar"
            }},
            "networks": {"default": {"name": "o1_default", "ipam": {}}},
            "x-top": {"k": "v"}
        });
        let want = "name: o1
services:
  web:
    command:
      - echo
      - $$HOME
    environment:
      A: \"\"
      B: \"1\"
      \"N\": null
    expose:
      - \"3000\"
      - 4000-4001
    image: x
    networks:
      default: null
    ports:
      - mode: ingress
        target: 80
        published: \"8080\"
        protocol: tcp
    x-foo: bar
networks:
  default:
    name: o1_default
x-top:
  k: v
";
        assert_eq!(to_yaml(&model), want);
    }

    #[test]
    fn json_escapes_and_drops_service_extensions() {
        let model = json!({"services": {"w": {"image": "a$b", "x-foo": 1}}});
        let out: Value = serde_json::from_str(&to_json(&model)).unwrap();
        assert_eq!(out, json!({"services": {"w": {"image": "a$$b"}}}));
    }
}
