//! Variable interpolation (the spec's chapter 12): `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, nested defaults and
//! `$$`, applied to every string value (never to keys), then the values Compose reads as numbers or
//! booleans at known paths cast from their strings as Compose v2 does (`privileged: "yes"` → true).

use std::collections::BTreeMap;

use serde_json::{Number, Value};

/// What a substitution failed on; the caller adds the file, line and key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstError(pub String);

/// The variables interpolation reads, and the warnings it leaves (unset variables).
pub struct Interpolator<'a> {
    env: &'a BTreeMap<String, String>,
    /// `The "X" variable is not set. Defaulting to a blank string.`, once per variable.
    pub warnings: Vec<String>,
}

impl<'a> Interpolator<'a> {
    /// An interpolator over `env`.
    pub fn new(env: &'a BTreeMap<String, String>) -> Self {
        Interpolator {
            env,
            warnings: Vec::new(),
        }
    }

    /// Substitutes every variable in `text`.
    pub fn substitute(&mut self, text: &str) -> Result<String, SubstError> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            match after.chars().next() {
                Some('$') => {
                    out.push('$');
                    rest = &after[1..];
                }
                Some('{') => {
                    let body_start = &after[1..];
                    let Some(end) = matching_brace(body_start) else {
                        return Err(SubstError(format!("Invalid template: {text:?}")));
                    };
                    let body = &body_start[..end];
                    out.push_str(&self.braced(body, text)?);
                    rest = &body_start[end + 1..];
                }
                Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                    let len = after
                        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                        .unwrap_or(after.len());
                    let name = &after[..len];
                    out.push_str(&self.lookup_or_warn(name));
                    rest = &after[len..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup_or_warn(&mut self, name: &str) -> String {
        match self.env.get(name) {
            Some(v) => v.clone(),
            None => {
                let w = format!("The {name:?} variable is not set. Defaulting to a blank string.");
                if !self.warnings.contains(&w) {
                    self.warnings.push(w);
                }
                String::new()
            }
        }
    }

    fn braced(&mut self, body: &str, whole: &str) -> Result<String, SubstError> {
        let name_len = body
            .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
            .unwrap_or(body.len());
        let name = &body[..name_len];
        let valid_name = name.chars().next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
        if !valid_name {
            return Err(SubstError(format!("Invalid template: {whole:?}")));
        }
        let op = &body[name_len..];
        if op.is_empty() {
            return Ok(self.lookup_or_warn(name));
        }
        let value = self.env.get(name);
        let (colon, op) = match op.strip_prefix(':') {
            Some(r) => (true, r),
            None => (false, op),
        };
        let (kind, arg) = match op.chars().next() {
            Some(k @ ('-' | '?' | '+')) => (k, &op[1..]),
            _ => return Err(SubstError(format!("Invalid template: {whole:?}"))),
        };
        // `:` makes the empty string count as unset.
        let set = match value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match kind {
            '-' => {
                if set {
                    Ok(value.cloned().unwrap_or_default())
                } else {
                    self.substitute(arg)
                }
            }
            '+' => {
                if set {
                    self.substitute(arg)
                } else {
                    Ok(String::new())
                }
            }
            _ => {
                if set {
                    Ok(value.cloned().unwrap_or_default())
                } else {
                    let msg = self.substitute(arg)?;
                    if msg.is_empty() {
                        Err(SubstError(format!("required variable {name} is missing a value")))
                    } else {
                        Err(SubstError(format!(
                            "required variable {name} is missing a value: {msg}"
                        )))
                    }
                }
            }
        }
    }

    /// Interpolates every string value under `value` (keys untouched); `path` is the dotted path of
    /// `value`. Returns the failing path with the error.
    pub fn interpolate_value(&mut self, value: &mut Value, path: &mut Vec<String>) -> Result<(), (String, SubstError)> {
        match value {
            Value::String(s) => {
                let new = self.substitute(s).map_err(|e| (path.join("."), e))?;
                *value = cast_at(path, new).map_err(|e| (path.join("."), e))?;
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    let r = self.interpolate_value(item, path);
                    path.pop();
                    r?;
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    path.push(k.clone());
                    let r = self.interpolate_value(v, path);
                    path.pop();
                    r?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The end (index of the closing `}`) of a `${` body, nested `${...}` included.
fn matching_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 1;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'$' if b.get(i + 1) == Some(&b'$') => {
                i += 2;
                continue;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// Paths (relative to the document; `*` any key, `#` any list index) whose string values Compose
/// casts after interpolation (compose-go's `interpolateTypeCastMapping`).
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.#.mode", Cast::Int),
    ("services.*.cpu_count", Cast::Int),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Int),
    ("services.*.cpu_quota", Cast::Int),
    ("services.*.cpu_rt_period", Cast::Int),
    ("services.*.cpu_rt_runtime", Cast::Int),
    ("services.*.cpus", Cast::Float),
    ("services.*.cpu_shares", Cast::Int),
    ("services.*.init", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    ("services.*.deploy.update_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    ("services.*.deploy.rollback_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    ("services.*.deploy.placement.max_replicas_per_node", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.pids_limit", Cast::Int),
    ("services.*.ports.#.target", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.scale", Cast::Int),
    ("services.*.secrets.#.mode", Cast::Int),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.volumes.#.read_only", Cast::Bool),
    ("services.*.volumes.#.volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn path_matches(pattern: &str, path: &[String]) -> bool {
    let segs: Vec<&str> = pattern.split('.').collect();
    segs.len() == path.len()
        && segs.iter().zip(path).all(|(p, s)| match *p {
            "*" => true,
            "#" => s.parse::<usize>().is_ok(),
            lit => lit == s,
        })
}

fn cast_at(path: &[String], s: String) -> Result<Value, SubstError> {
    let Some((_, cast)) = CASTS.iter().find(|(p, _)| path_matches(p, path)) else {
        return Ok(Value::String(s));
    };
    match cast {
        Cast::Int => s.parse::<i64>().map(|i| Value::Number(i.into())).map_err(|_| {
            SubstError(format!(
                "failed to cast to expected type: strconv.ParseInt: parsing {s:?}: invalid syntax"
            ))
        }),
        Cast::Float => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| {
                SubstError(format!(
                    "failed to cast to expected type: strconv.ParseFloat: parsing {s:?}: invalid syntax"
                ))
            }),
        Cast::Bool => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
            _ => Err(SubstError(format!(
                "failed to cast to expected type: invalid boolean: {s}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("A", "alpha"), ("EMPTY", ""), ("DOLLAR", "p$q")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitution_table() {
        let env = env();
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$A", "alpha"),
            ("${A}", "alpha"),
            ("x${A}y", "xalphay"),
            ("$A_B", ""),
            ("${NOPE:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${NOPE-def}", "def"),
            ("${A:-def}", "alpha"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${NOPE+alt}", ""),
            ("${NOPE:-${A}}", "alpha"),
            ("${NOPE:-${NOPE2:-deep}}", "deep"),
            ("$$A", "$A"),
            ("$$", "$"),
            ("$1 $ end", "$1 $ end"),
            ("${DOLLAR}", "p$q"),
            ("${A?err}", "alpha"),
        ];
        for (input, want) in cases {
            let mut i = Interpolator::new(&env);
            assert_eq!(i.substitute(input).unwrap(), *want, "{input}");
        }
    }

    #[test]
    fn errors_and_warnings() {
        let env = env();
        let mut i = Interpolator::new(&env);
        assert_eq!(
            i.substitute("${NOPE:?need it}").unwrap_err().0,
            "required variable NOPE is missing a value: need it"
        );
        assert_eq!(
            i.substitute("${EMPTY:?}").unwrap_err().0,
            "required variable EMPTY is missing a value"
        );
        assert!(i.substitute("${EMPTY?x}").is_ok());
        assert!(i.substitute("${1A}").unwrap_err().0.starts_with("Invalid template"));
        assert!(i.substitute("${A").unwrap_err().0.starts_with("Invalid template"));
        i.substitute("$UNSET and $UNSET").unwrap();
        assert_eq!(
            i.warnings,
            vec!["The \"UNSET\" variable is not set. Defaulting to a blank string.".to_string()]
        );
    }

    #[test]
    fn casts_at_known_paths() {
        let env = env();
        let mut i = Interpolator::new(&env);
        let mut v = serde_json::json!({"services": {"w": {"privileged": "yes", "cpu_shares": "512", "image": "1",
            "ports": [{"target": "80"}], "ulimits": {"nproc": "5"}}}});
        i.interpolate_value(&mut v, &mut Vec::new()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"services": {"w": {"privileged": true, "cpu_shares": 512, "image": "1",
                "ports": [{"target": 80}], "ulimits": {"nproc": 5}}}})
        );
        let mut bad = serde_json::json!({"services": {"w": {"cpu_shares": "abc"}}});
        let (path, err) = i.interpolate_value(&mut bad, &mut Vec::new()).unwrap_err();
        assert_eq!(path, "services.w.cpu_shares");
        assert!(err.0.contains("strconv.ParseInt"));
    }
}
