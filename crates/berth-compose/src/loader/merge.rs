//! Merging compose files (the spec's chapter 13), on their canonical (long) forms: mappings merge
//! key by key, sequences append, `command`/`entrypoint`/`healthcheck.test` are replaced, and the
//! sequences with a unique key (`ports`, `volumes`, `secrets`, `configs`, and the value lists such
//! as `dns` or `cap_add`) keep one entry per key: a later entry replaces the earlier one in its place,
//! as Compose v2's `EnforceUnicity` does. `!reset` and `!override` are applied before the merge.

use serde_json::Value;

use super::canonical::scalar_string;
use super::yaml::MergeTag;

fn matches(pattern: &str, path: &[&str]) -> bool {
    let segs: Vec<&str> = pattern.split('.').collect();
    segs.len() == path.len() && segs.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

const REPLACED: &[&str] = &[
    "services.*.command",
    "services.*.entrypoint",
    "services.*.healthcheck.test",
];

/// The unique key of a sequence entry, for the sequences Compose keeps unique.
fn unique_key(path: &[&str], entry: &Value) -> Option<String> {
    let field = |k: &str| entry.get(k).and_then(scalar_string).unwrap_or_default();
    if matches("services.*.ports", path) {
        return Some(format!(
            "{}|{}|{}|{}",
            field("host_ip"),
            field("target"),
            field("published"),
            field("protocol")
        ));
    }
    if matches("services.*.volumes", path) || matches("services.*.devices", path) {
        return Some(field("target"));
    }
    if matches("services.*.secrets", path) {
        let t = field("target");
        return Some(if t.is_empty() {
            format!("/run/secrets/{}", field("source"))
        } else {
            t
        });
    }
    if matches("services.*.configs", path) {
        let t = field("target");
        return Some(if t.is_empty() {
            format!("/{}", field("source"))
        } else {
            t
        });
    }
    if matches("services.*.env_file", path) {
        return Some(field("path"));
    }
    const BY_VALUE: &[&str] = &[
        "services.*.cap_add",
        "services.*.cap_drop",
        "services.*.dns",
        "services.*.dns_opt",
        "services.*.dns_search",
        "services.*.expose",
        "services.*.links",
        "services.*.profiles",
        "services.*.tmpfs",
        "services.*.extra_hosts",
        "services.*.networks.*.aliases",
        "services.*.networks.*.link_local_ips",
        "services.*.build.tags",
        "services.*.build.platforms",
    ];
    if BY_VALUE.iter().any(|p| matches(p, path)) {
        return Some(scalar_string(entry).unwrap_or_else(|| entry.to_string()));
    }
    None
}

/// Keeps one entry per unique key in every sequence Compose keeps unique, under `value`.
pub fn enforce_unicity(value: &mut Value, path: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            if items.first().and_then(|e| unique_key(&p, e)).is_some() {
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                let mut keys: Vec<String> = Vec::new();
                for item in items.drain(..) {
                    let key = unique_key(&p, &item).unwrap_or_default();
                    match keys.iter().position(|k| *k == key) {
                        Some(i) => out[i] = item,
                        None => {
                            keys.push(key);
                            out.push(item);
                        }
                    }
                }
                *items = out;
            }
        }
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.clone());
                enforce_unicity(v, path);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Merges `over` into `base` (both canonical); `path` is where they sit in the document.
pub fn merge(base: &mut Value, over: Value, path: &mut Vec<String>) {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    if REPLACED.iter().any(|r| matches(r, &p)) {
        *base = over;
        return;
    }
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                path.push(k.clone());
                match b.get_mut(&k) {
                    Some(existing) if !existing.is_null() => merge(existing, v, path),
                    _ => {
                        b.insert(k, v);
                    }
                }
                path.pop();
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            b.extend(o);
        }
        (b, o) => *b = o,
    }
}

/// Removes the value at a dotted `path` (list indices as numbers); true when something was there.
pub fn remove_path(value: &mut Value, path: &str) -> bool {
    let segs: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        cur = match cur {
            Value::Object(m) => match m.get_mut(*seg) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(a) => match seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match cur {
        Value::Object(m) => m.remove(*last).is_some(),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Applies an override file's `!reset`/`!override` tags: the tagged attributes leave `base`, and the
/// `!reset` ones leave `over` too (their value is ignored).
pub fn apply_tags(base: &mut Value, over: &mut Value, tags: &[(String, MergeTag)]) {
    // deepest paths first, so removing a list element does not shift a later one
    let mut tags: Vec<&(String, MergeTag)> = tags.iter().collect();
    tags.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('.').count()));
    for (path, tag) in tags {
        remove_path(base, path);
        if *tag == MergeTag::Reset {
            remove_path(over, path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(a: Value, b: Value) -> Value {
        let mut a = a;
        merge(&mut a, b, &mut Vec::new());
        enforce_unicity(&mut a, &mut Vec::new());
        a
    }

    #[test]
    fn merge_rules_table() {
        let port = |p: &str, t: u32| json!({"mode": "ingress", "target": t, "published": p, "protocol": "tcp"});
        let vol = |s: &str, t: &str| json!({"type": "volume", "source": s, "target": t, "volume": {}});
        let cases: Vec<(Value, Value, Value)> = vec![
            // mappings merge, scalars are replaced
            (
                json!({"services": {"foo": {"key1": "value1", "key2": "value2"}}}),
                json!({"services": {"foo": {"key2": "VALUE", "key3": "value3"}}}),
                json!({"services": {"foo": {"key1": "value1", "key2": "VALUE", "key3": "value3"}}}),
            ),
            // plain sequences append, value lists stay unique
            (
                json!({"services": {"foo": {"dns": ["1.1.1.1"], "security_opt": ["a"]}}}),
                json!({"services": {"foo": {"dns": ["8.8.8.8", "1.1.1.1"], "security_opt": ["a"]}}}),
                json!({"services": {"foo": {"dns": ["1.1.1.1", "8.8.8.8"], "security_opt": ["a", "a"]}}}),
            ),
            // commands are replaced
            (
                json!({"services": {"foo": {"command": ["echo", "foo"], "healthcheck": {"test": ["CMD", "a"]}}}}),
                json!({"services": {"foo": {"command": ["echo", "bar"], "healthcheck": {"test": ["CMD", "b"]}}}}),
                json!({"services": {"foo": {"command": ["echo", "bar"], "healthcheck": {"test": ["CMD", "b"]}}}}),
            ),
            // unique resources: volumes by target, ports by (ip, target, published, protocol)
            (
                json!({"services": {"foo": {"volumes": [vol("foo", "/work"), vol("x", "/x")],
                    "ports": [port("8080", 80), port("9000", 90)]}}}),
                json!({"services": {"foo": {"volumes": [vol("bar", "/work")], "ports": [port("8080", 80), port("9001", 90)]}}}),
                json!({"services": {"foo": {"volumes": [vol("bar", "/work"), vol("x", "/x")],
                    "ports": [port("8080", 80), port("9000", 90), port("9001", 90)]}}}),
            ),
            // maps from list forms merge by key
            (
                json!({"services": {"foo": {"environment": {"A": "1", "B": "2"}}}}),
                json!({"services": {"foo": {"environment": {"B": "3", "C": null}}}}),
                json!({"services": {"foo": {"environment": {"A": "1", "B": "3", "C": null}}}}),
            ),
            // secrets by target, the default target derived from the source
            (
                json!({"services": {"foo": {"secrets": [{"source": "s"}]}}}),
                json!({"services": {"foo": {"secrets": [{"source": "s", "target": "/run/secrets/s", "mode": 256}]}}}),
                json!({"services": {"foo": {"secrets": [{"source": "s", "target": "/run/secrets/s", "mode": 256}]}}}),
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(merged(a.clone(), b.clone()), want, "{a} + {b}");
        }
    }

    #[test]
    fn reset_and_override_tags() {
        let mut base =
            json!({"services": {"app": {"image": "myapp", "ports": [1], "environment": {"FOO": "BAR"}, "dns": ["a"]}}});
        let mut over = json!({"services": {"app": {"ports": [], "environment": {"FOO": null}, "dns": ["b"]}}});
        apply_tags(
            &mut base,
            &mut over,
            &[
                ("services.app.ports".into(), MergeTag::Reset),
                ("services.app.environment.FOO".into(), MergeTag::Reset),
                ("services.app.dns".into(), MergeTag::Override),
            ],
        );
        merge(&mut base, over, &mut Vec::new());
        assert_eq!(
            base,
            json!({"services": {"app": {"image": "myapp", "environment": {}, "dns": ["b"]}}})
        );
    }
}
