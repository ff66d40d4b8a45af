//! Validation against the compose specification's JSON schema (`compose-spec.json`, draft-07).
//!
//! A small evaluator of the keywords that schema uses (`$ref` to `#/definitions`, `type`,
//! `properties`, `patternProperties`, `additionalProperties`, `required`, `items`, `enum`, `pattern`,
//! `minimum`, `maximum`, `oneOf`) rather than the `jsonschema` crate: that crate brings an HTTP
//! client and a large tree by default, and its messages are not Compose's. Here each error names the
//! key path in Compose v2's words (`services.web additional properties 'imagee' not allowed`,
//! `services.web.ports must be a array`) so the loader can add the file and line.
//! Differences from a full validator, on purpose: `oneOf` is satisfied by at least one branch
//! (the schema's branches are disjoint by type, so this only matters for malformed schemas), and
//! `uniqueItems` is not checked (Compose removes duplicates before validating, see `merge.rs`).

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

const SCHEMA_TEXT: &str = include_str!("compose-spec.json");

fn schema() -> Result<&'static Value, String> {
    static SCHEMA: OnceLock<Result<Value, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| serde_json::from_str(SCHEMA_TEXT).map_err(|e| format!("embedded compose schema: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

/// A schema violation: the dotted key path and Compose's message for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the offending value (`services.web.ports.0`).
    pub path: String,
    /// What is wrong (`additional properties 'imagee' not allowed`).
    pub message: String,
    /// The offending key under `path`, for an unknown property (its line is the one to show).
    pub key: Option<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{} {}", self.path, self.message)
        }
    }
}

/// Validates a compose document against the embedded specification schema.
pub fn validate(doc: &Value) -> Result<(), Violation> {
    let root = schema().map_err(|m| Violation {
        path: String::new(),
        message: m,
        key: None,
    })?;
    let mut v = Validator {
        root,
        regexes: HashMap::new(),
    };
    v.check(root, doc, &mut Vec::new())
}

struct Validator<'s> {
    root: &'s Value,
    regexes: HashMap<String, Option<Regex>>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "integer" => v.as_i64().is_some() || v.as_u64().is_some() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        other => other == type_name(v),
    }
}

fn declared_types(s: &Value) -> Vec<String> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

fn render_enum(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

impl<'s> Validator<'s> {
    fn resolve(&self, mut s: &'s Value) -> &'s Value {
        for _ in 0..32 {
            match s
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/definitions/"))
            {
                Some(name) => match self.root.get("definitions").and_then(|d| d.get(name)) {
                    Some(target) => s = target,
                    None => return s,
                },
                None => return s,
            }
        }
        s
    }

    fn regex(&mut self, pattern: &str) -> Option<Regex> {
        self.regexes
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok())
            .clone()
    }

    fn err(path: &[String], message: String) -> Violation {
        Violation {
            path: path.join("."),
            message,
            key: None,
        }
    }

    fn check(&mut self, schema: &'s Value, v: &Value, path: &mut Vec<String>) -> Result<(), Violation> {
        let s = self.resolve(schema);
        if let Some(Value::Array(branches)) = s.get("oneOf") {
            let mut typed_err = None;
            let mut types = Vec::new();
            let mut ok = false;
            for b in branches {
                match self.check(b, v, path) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) => {
                        let bt = declared_types(self.resolve(b));
                        if typed_err.is_none() && bt.iter().any(|t| type_ok(t, v)) {
                            typed_err = Some(e);
                        }
                        types.extend(bt);
                    }
                }
            }
            if !ok {
                if let Some(e) = typed_err {
                    return Err(e);
                }
                types.dedup();
                return Err(Self::err(path, format!("must be a {}", types.join(" or "))));
            }
        }
        let types = declared_types(s);
        if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
            return Err(Self::err(path, format!("must be a {}", types.join(" or "))));
        }
        if let Some(Value::Array(allowed)) = s.get("enum") {
            if !allowed.contains(v) {
                let list: Vec<String> = allowed.iter().map(render_enum).collect();
                return Err(Self::err(path, format!("value must be one of {}", list.join(", "))));
            }
        }
        if let (Some(Value::String(p)), Value::String(text)) = (s.get("pattern"), v) {
            if let Some(re) = self.regex(p) {
                if !re.is_match(text) {
                    return Err(Self::err(path, format!("'{text}' does not match pattern '{p}'")));
                }
            }
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                if n < min {
                    return Err(Self::err(path, format!("must be >= {min} but found {v}")));
                }
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                if n > max {
                    return Err(Self::err(path, format!("must be <= {max} but found {v}")));
                }
            }
        }
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(req)) = s.get("required") {
                    for r in req.iter().filter_map(Value::as_str) {
                        if !map.contains_key(r) {
                            return Err(Self::err(path, format!("missing property '{r}'")));
                        }
                    }
                }
                let props = s.get("properties").and_then(Value::as_object);
                let patterns = s.get("patternProperties").and_then(Value::as_object);
                for (k, child) in map {
                    let mut matched = false;
                    path.push(k.clone());
                    if let Some(ps) = props.and_then(|p| p.get(k)) {
                        matched = true;
                        let r = self.check(ps, child, path);
                        if r.is_err() {
                            path.pop();
                            return r;
                        }
                    }
                    if let Some(pats) = patterns {
                        for (pat, ps) in pats {
                            if self.regex(pat).is_some_and(|re| re.is_match(k)) {
                                matched = true;
                                let r = self.check(ps, child, path);
                                if r.is_err() {
                                    path.pop();
                                    return r;
                                }
                            }
                        }
                    }
                    path.pop();
                    if !matched {
                        match s.get("additionalProperties") {
                            Some(Value::Bool(false)) => {
                                let mut e = Self::err(path, format!("additional properties '{k}' not allowed"));
                                e.key = Some(k.clone());
                                return Err(e);
                            }
                            Some(extra @ Value::Object(_)) => {
                                path.push(k.clone());
                                let r = self.check(extra, child, path);
                                path.pop();
                                r?;
                            }
                            _ => {}
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(i.to_string());
                        let r = self.check(item_schema, item, path);
                        path.pop();
                        r?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_violations_table() {
        let cases: &[(Value, &str)] = &[
            (json!({"services": {"web": {"imagee": "x"}}}), "services.web additional properties 'imagee' not allowed"),
            (json!({"services": {"web": {"image": "x", "ports": 80}}}), "services.web.ports must be a array"),
            (json!({"services": {"web": {"image": "x", "restart": 5}}}), "services.web.restart must be a string"),
            (
                json!({"services": {"web": {"image": "x", "pull_policy": "sometimes"}}}),
                "services.web.pull_policy 'sometimes' does not match pattern 'always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+'",
            ),
            (
                json!({"services": {"web": {"image": "x", "depends_on": {"db": {"condition": "bogus"}}}}}),
                "services.web.depends_on.db.condition value must be one of 'service_started', 'service_healthy', 'service_completed_successfully'",
            ),
            (
                json!({"services": {"web": {"image": "x", "ports": [{"target": 80, "bad": 1}]}}}),
                "services.web.ports.0 additional properties 'bad' not allowed",
            ),
            (json!({"servicess": {}}), "additional properties 'servicess' not allowed"),
        ];
        for (doc, want) in cases {
            assert_eq!(validate(doc).unwrap_err().to_string(), *want, "{doc}");
        }
    }

    #[test]
    fn valid_documents_pass() {
        let doc = json!({
            "name": "x",
            "x-top": {"anything": 1},
            "services": {"web": {"image": "x", "ports": ["80:80", 90, {"target": 1}], "x-foo": "bar",
                "environment": {"A": "b", "N": null}, "healthcheck": {"test": ["CMD", "true"], "interval": "5s"},
                "deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "50M"}}}, "ulimits": {"nproc": 5}}},
            "volumes": {"data": {}},
            "networks": {"back": null}
        });
        validate(&doc).unwrap();
    }
}
