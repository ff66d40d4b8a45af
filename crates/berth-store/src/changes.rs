//! `docker import --change`: Dockerfile-style instructions applied to an image's `config`.
//! A pure function over strings, so it is table-tested.

use crate::StoreError;
use serde_json::{json, Map, Value};

/// Applies each change line (`CMD ["sh"]`, `ENV A=B`, ...) to the container config object `cfg`.
pub fn apply_changes(cfg: &mut Map<String, Value>, changes: &[String]) -> Result<(), StoreError> {
    for raw in changes {
        for line in raw.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            apply_one(cfg, line)?;
        }
    }
    Ok(())
}

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidChange(msg)
}

fn apply_one(cfg: &mut Map<String, Value>, line: &str) -> Result<(), StoreError> {
    let (instr, rest) = match line.split_once(char::is_whitespace) {
        Some((i, r)) => (i.to_ascii_uppercase(), r.trim()),
        None => (line.to_ascii_uppercase(), ""),
    };
    match instr.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let key = if instr == "CMD" { "Cmd" } else { "Entrypoint" };
            let v = json_or_shell(rest);
            cfg.insert(key.into(), json!(v));
        }
        "ENV" => {
            let pairs = key_values(rest, &instr)?;
            let env = cfg.entry("Env").or_insert_with(|| json!([]));
            if !env.is_array() {
                *env = json!([]);
            }
            if let Some(list) = env.as_array_mut() {
                for (k, v) in pairs {
                    let prefix = format!("{k}=");
                    let entry = json!(format!("{k}={v}"));
                    match list
                        .iter_mut()
                        .find(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix)))
                    {
                        Some(slot) => *slot = entry,
                        None => list.push(entry),
                    }
                }
            }
        }
        "LABEL" => {
            let pairs = key_values(rest, &instr)?;
            let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            if let Some(m) = labels.as_object_mut() {
                for (k, v) in pairs {
                    m.insert(k, json!(v));
                }
            }
        }
        "EXPOSE" => {
            let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for word in rest.split_whitespace() {
                let (port, proto) = word.split_once('/').unwrap_or((word, "tcp"));
                let proto = proto.to_ascii_lowercase();
                let (lo, hi) = match port.split_once('-') {
                    Some((a, b)) => (a, b),
                    None => (port, port),
                };
                let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
                    return Err(invalid(format!("invalid containerPort: {word}")));
                };
                if lo > hi || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(invalid(format!("invalid containerPort: {word}")));
                }
                if let Some(m) = ports.as_object_mut() {
                    for p in lo..=hi {
                        m.insert(format!("{p}/{proto}"), json!({}));
                    }
                }
            }
        }
        "VOLUME" => {
            let vols = cfg.entry("Volumes").or_insert_with(|| json!({}));
            if !vols.is_object() {
                *vols = json!({});
            }
            let list = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(l) if rest.starts_with('[') => l,
                _ => rest.split_whitespace().map(str::to_string).collect(),
            };
            if list.is_empty() {
                return Err(invalid("VOLUME requires at least one argument".into()));
            }
            if let Some(m) = vols.as_object_mut() {
                for v in list {
                    m.insert(v, json!({}));
                }
            }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" => {
            if rest.is_empty() {
                return Err(invalid(format!("{instr} requires exactly one argument")));
            }
            let key = match instr.as_str() {
                "WORKDIR" => "WorkingDir",
                "USER" => "User",
                _ => "StopSignal",
            };
            cfg.insert(key.into(), json!(rest));
        }
        "ONBUILD" => {
            let list = cfg.entry("OnBuild").or_insert_with(|| json!([]));
            if let Some(l) = list.as_array_mut() {
                l.push(json!(rest));
            }
        }
        // Docker's wording (builder/dockerfile: validCommitCommands).
        _ => return Err(invalid(format!("{instr} is not a valid change command"))),
    }
    Ok(())
}

/// JSON array form (`["a","b"]`) or shell form (`/bin/sh -c "<rest>"`), as in a Dockerfile.
fn json_or_shell(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), rest.into()]
}

/// `K=V K2="v 2"` pairs, or the legacy single `K V...` form.
fn key_values(rest: &str, instr: &str) -> Result<Vec<(String, String)>, StoreError> {
    let words = shell_words(rest);
    if words.is_empty() {
        return Err(invalid(format!("{instr} requires at least one argument")));
    }
    if !words[0].contains('=') {
        // Legacy `ENV KEY value with spaces`.
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if v.trim().is_empty() {
            return Err(invalid(format!("{instr} names can not be blank")));
        }
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(invalid(format!("{instr}: key=value pair expected, got {w:?}")));
        };
        if k.is_empty() {
            return Err(invalid(format!("{instr} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn unquote(s: &str) -> String {
    shell_words(s).join(" ")
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_table() {
        let cases: &[(&[&str], Value)] = &[
            (
                &[r#"CMD ["sh", "-c", "echo hi"]"#],
                json!({"Cmd": ["sh", "-c", "echo hi"]}),
            ),
            (&["CMD echo hi"], json!({"Cmd": ["/bin/sh", "-c", "echo hi"]})),
            (&[r#"ENTRYPOINT ["/bin/app"]"#], json!({"Entrypoint": ["/bin/app"]})),
            (&["ENV A=B C=\"d e\""], json!({"Env": ["A=B", "C=d e"]})),
            (&["ENV A=1", "ENV A=2"], json!({"Env": ["A=2"]})),
            (&["ENV LEGACY some value"], json!({"Env": ["LEGACY=some value"]})),
            (&["WORKDIR /app"], json!({"WorkingDir": "/app"})),
            (&["USER 1000:1000"], json!({"User": "1000:1000"})),
            (
                &["EXPOSE 80 53/udp 8000-8001"],
                json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}}),
            ),
            (&["LABEL a=b \"c d\"=e"], json!({"Labels": {"a": "b", "c d": "e"}})),
            (
                &[r#"VOLUME ["/data", "/logs"]"#],
                json!({"Volumes": {"/data": {}, "/logs": {}}}),
            ),
            (&["VOLUME /data"], json!({"Volumes": {"/data": {}}})),
            (&["STOPSIGNAL SIGKILL"], json!({"StopSignal": "SIGKILL"})),
            (&["cmd [\"lower\"]"], json!({"Cmd": ["lower"]})),
        ];
        for (lines, want) in cases {
            let mut cfg = Map::new();
            let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            apply_changes(&mut cfg, &lines).unwrap_or_else(|e| panic!("{lines:?}: {e}"));
            assert_eq!(&Value::Object(cfg), want, "{lines:?}");
        }
    }

    #[test]
    fn bad_changes() {
        for (line, msg) in [
            ("RUN echo hi", "RUN is not a valid change command"),
            ("FROM busybox", "FROM is not a valid change command"),
            ("EXPOSE http", "invalid containerPort: http"),
            ("WORKDIR", "WORKDIR requires exactly one argument"),
            ("ENV", "ENV requires at least one argument"),
        ] {
            let err = apply_changes(&mut Map::new(), &[line.to_string()]).unwrap_err();
            assert_eq!(err.to_string(), msg, "{line}");
        }
    }
}
