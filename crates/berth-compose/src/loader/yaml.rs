//! YAML to JSON values, the way Compose v2 (go-yaml v3) reads a compose file.
//!
//! Built on `saphyr-parser`'s event stream (a maintained YAML 1.2 parser that reports where each
//! event starts) rather than a serde front-end, because the loader needs what a serde front-end
//! throws away: the line of every key (for error messages), the `!reset`/`!override` tags (for
//! merging), duplicate keys (an error in Compose) and control over alias expansion (a billion-laughs
//! document must fail cleanly). Merge keys (`<<`, one map or a list of maps) are applied here as
//! the YAML merge type says: the mapping's own keys win, then earlier merged maps over later ones.
//! Plain scalars resolve like go-yaml v3: `true`/`false` (three casings) are booleans, `yes`/`no`
//! are strings, `~`/`null`/empty are null, integers in decimal/0x/0o/0b, floats with `.inf`/`.nan`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput, Tag};
use serde_json::{Map, Number, Value};

use super::error::{LoadError, Location};

/// Compose files larger than this are refused before parsing.
pub const MAX_FILE_SIZE: usize = 16 * 1024 * 1024;
/// The most nodes a document may expand to once aliases are resolved (billion-laughs guard).
pub const MAX_NODES: usize = 1_000_000;
/// The deepest nesting accepted (keeps the recursive builder off the end of the stack).
const MAX_DEPTH: usize = 200;

/// A custom tag Compose gives meaning to when merging files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeTag {
    /// `!reset`: the attribute is removed from the model built so far, and this value ignored.
    Reset,
    /// `!override`: the attribute replaces the one built so far instead of merging with it.
    Override,
}

/// One YAML document read into a JSON value, with the line of every key path and the merge tags.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// The document's content.
    pub value: Value,
    /// Key path (`services.web.ports.0`) to the 1-based line where its value starts.
    pub lines: BTreeMap<String, usize>,
    /// Paths carrying `!reset` or `!override`, in document order.
    pub tags: Vec<(String, MergeTag)>,
}

/// Parses every document in `text` (a multi-document file's documents are merged by the caller, as
/// Compose does). `file` only names the file in errors.
pub fn parse(text: &str, file: &Path) -> Result<Vec<Document>, LoadError> {
    if text.len() > MAX_FILE_SIZE {
        return Err(yaml_err(
            file,
            None,
            format!("file is larger than {} MiB", MAX_FILE_SIZE / 1024 / 1024),
        ));
    }
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        file,
        anchors: HashMap::new(),
        budget: MAX_NODES,
        doc: Document::default(),
    };
    let mut docs = Vec::new();
    loop {
        let (ev, span) = b.next()?;
        match ev {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                let (ev, span) = b.next()?;
                if matches!(ev, Event::DocumentEnd) {
                    docs.push(Document {
                        value: Value::Null,
                        ..Document::default()
                    });
                    continue;
                }
                b.anchors.clear();
                let (value, _) = b.node(ev, span, "", 0)?;
                let mut doc = std::mem::take(&mut b.doc);
                doc.value = value;
                docs.push(doc);
            }
            _ => return Err(yaml_err(file, Some(span.start.line()), "unexpected event".into())),
        }
    }
    Ok(docs)
}

fn yaml_err(file: &Path, line: Option<usize>, message: String) -> LoadError {
    LoadError::Yaml {
        at: Location {
            file: Some(file.to_path_buf()),
            line,
            path: String::new(),
        },
        message,
    }
}

struct Builder<'a> {
    parser: Parser<'a, StrInput<'a>>,
    file: &'a Path,
    anchors: HashMap<usize, (Value, usize)>,
    budget: usize,
    doc: Document,
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), LoadError> {
        match self.parser.next_event() {
            Some(Ok(x)) => Ok(x),
            Some(Err(e)) => Err(yaml_err(self.file, Some(e.marker().line()), e.info().to_string())),
            None => Err(yaml_err(self.file, None, "unexpected end of document".into())),
        }
    }

    fn spend(&mut self, n: usize, line: usize) -> Result<(), LoadError> {
        if n > self.budget {
            return Err(yaml_err(
                self.file,
                Some(line),
                format!("document is too large: more than {MAX_NODES} nodes once aliases are expanded"),
            ));
        }
        self.budget -= n;
        Ok(())
    }

    fn note_tag(&mut self, tag: Option<&Tag>, path: &str) {
        if let Some(t) = tag {
            if t.handle == "!" {
                let kind = match t.suffix.as_str() {
                    "reset" => Some(MergeTag::Reset),
                    "override" => Some(MergeTag::Override),
                    _ => None,
                };
                if let Some(k) = kind {
                    self.doc.tags.push((path.to_string(), k));
                }
            }
        }
    }

    /// Builds the node that starts with `ev`; returns it with its size in nodes.
    fn node(&mut self, ev: Event<'a>, span: Span, path: &str, depth: usize) -> Result<(Value, usize), LoadError> {
        let line = span.start.line();
        if depth > MAX_DEPTH {
            return Err(yaml_err(
                self.file,
                Some(line),
                format!("document is nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.doc.lines.entry(path.to_string()).or_insert(line);
        match ev {
            Event::Alias(id) => {
                let Some((v, size)) = self.anchors.get(&id).cloned() else {
                    return Err(yaml_err(self.file, Some(line), "unknown anchor".into()));
                };
                self.spend(size, line)?;
                Ok((v, size))
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.spend(1, line)?;
                self.note_tag(tag.as_deref(), path);
                let v = resolve_scalar(&text, style, tag.as_deref()).map_err(|m| yaml_err(self.file, Some(line), m))?;
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), 1));
                }
                Ok((v, 1))
            }
            Event::SequenceStart(anchor, tag) => {
                self.spend(1, line)?;
                self.note_tag(tag.as_deref(), path);
                let mut items = Vec::new();
                let mut size = 1;
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    let (v, n) = self.node(ev, span, &join(path, &items.len().to_string()), depth + 1)?;
                    size += n;
                    items.push(v);
                }
                let v = Value::Array(items);
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), size));
                }
                Ok((v, size))
            }
            Event::MappingStart(anchor, tag) => {
                self.spend(1, line)?;
                self.note_tag(tag.as_deref(), path);
                let mut map = Map::new();
                let mut seen: HashMap<String, usize> = HashMap::new();
                let mut merges: Vec<Value> = Vec::new();
                let mut size = 1;
                loop {
                    let (kev, kspan) = self.next()?;
                    let kline = kspan.start.line();
                    let key = match kev {
                        Event::MappingEnd => break,
                        Event::Scalar(text, style, kanchor, _) => {
                            if style == ScalarStyle::Plain && text == "<<" {
                                let (vev, vspan) = self.next()?;
                                let (v, n) = self.node(vev, vspan, path, depth + 1)?;
                                size += n;
                                match v {
                                    Value::Object(_) => merges.push(v),
                                    Value::Array(list) => {
                                        for item in list {
                                            if !item.is_object() {
                                                return Err(yaml_err(
                                                    self.file,
                                                    Some(kline),
                                                    "map merge requires map or sequence of maps as the value".into(),
                                                ));
                                            }
                                            merges.push(item);
                                        }
                                    }
                                    _ => {
                                        return Err(yaml_err(
                                            self.file,
                                            Some(kline),
                                            "map merge requires map or sequence of maps as the value".into(),
                                        ))
                                    }
                                }
                                continue;
                            }
                            let k = text.to_string();
                            if kanchor > 0 {
                                self.anchors.insert(kanchor, (Value::String(k.clone()), 1));
                            }
                            k
                        }
                        Event::Alias(id) => match self.anchors.get(&id) {
                            Some((Value::String(s), _)) => s.clone(),
                            Some((v, _)) if !v.is_object() && !v.is_array() => scalar_key(v),
                            _ => return Err(yaml_err(self.file, Some(kline), "invalid map key".into())),
                        },
                        _ => return Err(yaml_err(self.file, Some(kline), "invalid map key: not a scalar".into())),
                    };
                    if let Some(first) = seen.get(&key) {
                        return Err(yaml_err(
                            self.file,
                            Some(kline),
                            format!("mapping key {key:?} already defined at line {first}"),
                        ));
                    }
                    seen.insert(key.clone(), kline);
                    let (vev, vspan) = self.next()?;
                    let child = join(path, &key);
                    self.doc.lines.insert(child.clone(), kline);
                    let (v, n) = self.node(vev, vspan, &child, depth + 1)?;
                    size += n;
                    map.insert(key, v);
                }
                for m in merges {
                    if let Value::Object(m) = m {
                        for (k, v) in m {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
                let v = Value::Object(map);
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), size));
                }
                Ok((v, size))
            }
            _ => Err(yaml_err(self.file, Some(line), "unexpected YAML event".into())),
        }
    }
}

fn scalar_key(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Resolves a scalar's text to a JSON value following go-yaml v3 (YAML 1.2 core schema, with
/// `!!str`, `!!int`, `!!float`, `!!bool` and `!!null` honoured).
pub fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(t) = tag {
        if t.is_yaml_core_schema() {
            return match t.suffix.as_str() {
                "str" => Ok(Value::String(text.to_string())),
                "null" => Ok(Value::Null),
                "bool" => match resolve_plain(text) {
                    v @ Value::Bool(_) => Ok(v),
                    _ => Err(format!("cannot decode {text:?} as a !!bool")),
                },
                "int" => match resolve_plain(text) {
                    v @ Value::Number(_) if v.is_i64() || v.is_u64() => Ok(v),
                    _ => Err(format!("cannot decode {text:?} as an !!int")),
                },
                "float" => match resolve_plain(text) {
                    Value::Number(n) => Ok(n.as_f64().and_then(Number::from_f64).map_or(Value::Null, Value::Number)),
                    _ => Err(format!("cannot decode {text:?} as a !!float")),
                },
                _ => Ok(resolve_by_style(text, style)),
            };
        }
    }
    Ok(resolve_by_style(text, style))
}

fn resolve_by_style(text: &str, style: ScalarStyle) -> Value {
    if style == ScalarStyle::Plain {
        resolve_plain(text)
    } else {
        Value::String(text.to_string())
    }
}

/// go-yaml v3's resolution of a plain (unquoted) scalar.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::String(text.to_string());
    }
    if let Some(i) = parse_int(text) {
        return Value::Number(i);
    }
    if let Some(f) = parse_float(text) {
        if let Some(n) = Number::from_f64(f) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(r) = body.strip_prefix("0x") {
        (16, r)
    } else if let Some(r) = body.strip_prefix("0o") {
        (8, r)
    } else if let Some(r) = body.strip_prefix("0b") {
        (2, r)
    } else if body.len() > 1 && body.starts_with('0') {
        // Go's ParseInt with base 0, as go-yaml v3 uses it: a leading 0 is octal
        (8, &body[1..])
    } else {
        (10, body)
    };
    let cleaned: String;
    let digits = if radix != 10 && digits.contains('_') {
        cleaned = digits.replace('_', "");
        cleaned.as_str()
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            return Some(Number::from((mag as i128).wrapping_neg() as i64));
        }
        None
    } else {
        Some(Number::from(mag))
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN"
        | ".NAN" => return None,
        _ => {}
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let b = text.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Result<Document, LoadError> {
        let mut docs = parse(text, Path::new("compose.yaml"))?;
        Ok(docs.remove(0))
    }

    #[test]
    fn scalars_resolve_like_go_yaml_v3() {
        let cases: &[(&str, Value)] = &[
            ("a: 1", json!({"a": 1})),
            ("a: -3", json!({"a": -3})),
            ("a: 0x1f", json!({"a": 31})),
            ("a: 0440", json!({"a": 288})),
            ("a: 0o17", json!({"a": 15})),
            ("a: 089", json!({"a": 89.0})),
            ("a: 1.5", json!({"a": 1.5})),
            ("a: yes", json!({"a": "yes"})),
            ("a: True", json!({"a": true})),
            ("a: ~", json!({"a": null})),
            ("a:", json!({"a": null})),
            ("a: '1'", json!({"a": "1"})),
            ("a: 8080:80", json!({"a": "8080:80"})),
            ("a: !!str 5", json!({"a": "5"})),
            ("a: 1e3", json!({"a": 1000.0})),
            ("a: 1.2.3", json!({"a": "1.2.3"})),
        ];
        for (text, want) in cases {
            assert_eq!(&one(text).unwrap().value, want, "{text}");
        }
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let doc = one(
            "x: &base\n  a: 1\n  b: 2\ny: &other\n  c: 3\n  b: 9\nz:\n  <<: *base\n  b: 5\nw:\n  <<: [*other, *base]\nv: *base\n",
        )
        .unwrap();
        assert_eq!(doc.value["z"], json!({"a": 1, "b": 5}));
        assert_eq!(doc.value["w"], json!({"a": 1, "b": 9, "c": 3}));
        assert_eq!(doc.value["v"], json!({"a": 1, "b": 2}));
    }

    #[test]
    fn lines_and_tags_are_recorded() {
        let doc =
            one("services:\n  web:\n    image: x\n    ports: !reset []\n    env: !override\n      A: b\n").unwrap();
        assert_eq!(doc.lines.get("services.web.image"), Some(&3));
        assert_eq!(doc.lines.get("services.web.ports"), Some(&4));
        assert_eq!(
            doc.tags,
            vec![
                ("services.web.ports".to_string(), MergeTag::Reset),
                ("services.web.env".to_string(), MergeTag::Override)
            ]
        );
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_lines() {
        let err = one("services:\n  web:\n    image: a\n  web:\n    image: b\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "compose.yaml:4: mapping key \"web\" already defined at line 2");
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
        }
        let err = one(&text).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = one("services:\n  web:\n    image: [a\n").unwrap_err().to_string();
        assert!(err.starts_with("compose.yaml:"), "{err}");
    }

    #[test]
    fn multiple_documents() {
        let docs = parse("a: 1\n---\nb: 2\n", Path::new("c.yaml")).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value, json!({"b": 2}));
    }
}
