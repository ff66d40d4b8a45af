//! Output formatting as the docker CLI does it: tab-aligned tables (Go's `text/tabwriter` with
//! Docker's settings), `--format` Go templates (via gtmpl), and `json.Indent`-style inspect output.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use gtmpl::{Context, FuncError, Template, Value as TValue};
use serde_json::Value;

/// Docker's table writer: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
pub fn tabwrite(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let cols = lines.iter().map(|l| l.len().saturating_sub(1)).max().unwrap_or(0);
    let mut widths = vec![MIN_WIDTH; cols];
    for line in &lines {
        // The last cell of a line is not tab-terminated and so not part of a column.
        for (i, cell) in line.iter().take(line.len().saturating_sub(1)).enumerate() {
            let w = cell.chars().count() + PADDING;
            if w > widths[i] {
                widths[i] = w;
            }
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    for line in &lines {
        let last = line.len().saturating_sub(1);
        for (i, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Docker's `formatter.Ellipsis`: cut to `max` characters, the last being `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Re-indents JSON text as Go's `json.Indent(dst, src, "", indent)` does, keeping key order.
pub fn json_indent(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut need_indent = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    for c in src.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    // An empty object or array stays `{}` / `[]`.
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Converts JSON to a template value; objects become maps so a missing key prints `<no value>`.
pub fn to_tvalue(v: &Value) -> TValue {
    match v {
        Value::Null => TValue::Nil,
        Value::Bool(b) => TValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                TValue::from(i)
            } else if let Some(u) = n.as_u64() {
                TValue::from(u)
            } else {
                TValue::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => TValue::String(s.clone()),
        Value::Array(a) => TValue::Array(a.iter().map(to_tvalue).collect()),
        Value::Object(o) => TValue::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), to_tvalue(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// The reverse of [`to_tvalue`], for `{{json .X}}` (map keys come out sorted, as Go's encoder does).
pub fn from_tvalue(v: &TValue) -> Value {
    match v {
        TValue::NoValue | TValue::Nil | TValue::Function(_) => Value::Null,
        TValue::Bool(b) => Value::Bool(*b),
        TValue::String(s) => Value::String(s.clone()),
        TValue::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        TValue::Array(a) => Value::Array(a.iter().map(from_tvalue).collect()),
        // `__berth*` keys are helpers for template methods, not part of the object.
        TValue::Object(o) | TValue::Map(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with("__berth"))
                .map(|(k, v)| (k.clone(), from_tvalue(v)))
                .collect(),
        ),
    }
}

fn arg_str(args: &[TValue], i: usize, name: &str) -> Result<String, FuncError> {
    match args.get(i) {
        Some(TValue::String(s)) => Ok(s.clone()),
        Some(v) => Ok(v.to_string()),
        None => Err(FuncError::AtLeastXArgs(name.into(), i + 1)),
    }
}

fn f_json(args: &[TValue]) -> Result<TValue, FuncError> {
    let v = args.first().ok_or_else(|| FuncError::ExactlyXArgs("json".into(), 1))?;
    let s = serde_json::to_string(&from_tvalue(v)).map_err(|e| FuncError::Generic(e.to_string()))?;
    // Docker's `json` template function encodes with SetEscapeHTML(false).
    Ok(TValue::String(s))
}

/// `--format json` marshals with Go's default HTML escaping (unlike the `json` function).
fn f_json_marshal(args: &[TValue]) -> Result<TValue, FuncError> {
    let v = args.first().ok_or_else(|| FuncError::ExactlyXArgs("json".into(), 1))?;
    let s = serde_json::to_string(&from_tvalue(v)).map_err(|e| FuncError::Generic(e.to_string()))?;
    Ok(TValue::String(go_json_escape(&s)))
}

/// Prints a value the way Go's template engine does (see [`display`]).
fn f_fmt(args: &[TValue]) -> Result<TValue, FuncError> {
    Ok(TValue::String(args.first().map(display).unwrap_or_default()))
}

const FMT_FUNC: &str = "__berthFmt";

/// `{{.Label "key"}}` (a method in docker's ps context): the value, or empty when absent.
fn f_label(args: &[TValue]) -> Result<TValue, FuncError> {
    let key = arg_str(args, 1, "Label")?;
    Ok(match args.first() {
        Some(TValue::Map(m)) | Some(TValue::Object(m)) => match m.get(&key) {
            Some(TValue::String(v)) => TValue::String(v.clone()),
            _ => TValue::String(String::new()),
        },
        _ => TValue::String(String::new()),
    })
}

/// Wraps each output action `{{X}}` as `{{__berthFmt (X)}}` so slices, maps and nil print as Go
/// prints them (`[a b]`, `map[k:v]`, `<nil>`) rather than gtmpl's debug form. Control actions
/// (`if`, `range`, `end`, ...), comments and variable declarations are left alone.
pub fn wrap_actions(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 32);
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = find_action_end(after) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        out.push_str("{{");
        out.push_str(&wrap_inner(inner));
        out.push_str("}}");
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The offset of the `}}` closing an action, skipping quoted strings.
fn find_action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn wrap_inner(inner: &str) -> String {
    let (lead, body) = match inner.strip_prefix('-') {
        Some(r) if r.starts_with(char::is_whitespace) => ("- ", r.trim_start()),
        _ => ("", inner.trim_start()),
    };
    let (body, trail) = match body.trim_end().strip_suffix('-') {
        Some(r) if r.ends_with(char::is_whitespace) => (r.trim_end(), " -"),
        _ => (body.trim_end(), ""),
    };
    let first = body.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    let control = matches!(
        first,
        "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block" | "break" | "continue"
    );
    let declaration = body.starts_with('$') && (body.contains(":=") || body.contains(" = "));
    if body.is_empty() || control || declaration || body.starts_with("/*") {
        return inner.to_string();
    }
    format!("{lead}{FMT_FUNC} ({body}){trail}")
}

fn f_upper(args: &[TValue]) -> Result<TValue, FuncError> {
    Ok(TValue::String(arg_str(args, 0, "upper")?.to_uppercase()))
}

fn f_lower(args: &[TValue]) -> Result<TValue, FuncError> {
    Ok(TValue::String(arg_str(args, 0, "lower")?.to_lowercase()))
}

fn f_title(args: &[TValue]) -> Result<TValue, FuncError> {
    let s = arg_str(args, 0, "title")?;
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(TValue::String(out))
}

fn f_join(args: &[TValue]) -> Result<TValue, FuncError> {
    let sep = arg_str(args, 1, "join")?;
    let items: Vec<String> = match args.first() {
        Some(TValue::Array(a)) => a.iter().map(display).collect(),
        Some(v) => vec![display(v)],
        None => return Err(FuncError::ExactlyXArgs("join".into(), 2)),
    };
    Ok(TValue::String(items.join(&sep)))
}

fn f_split(args: &[TValue]) -> Result<TValue, FuncError> {
    let s = arg_str(args, 0, "split")?;
    let sep = arg_str(args, 1, "split")?;
    Ok(TValue::Array(
        s.split(sep.as_str()).map(|p| TValue::String(p.into())).collect(),
    ))
}

fn f_pad(args: &[TValue]) -> Result<TValue, FuncError> {
    let s = arg_str(args, 0, "pad")?;
    let n = |i| match args.get(i) {
        Some(TValue::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        _ => 0,
    };
    Ok(TValue::String(format!("{}{}{}", " ".repeat(n(1)), s, " ".repeat(n(2)))))
}

fn f_truncate(args: &[TValue]) -> Result<TValue, FuncError> {
    let s = arg_str(args, 0, "truncate")?;
    let n = match args.get(1) {
        Some(TValue::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        _ => return Err(FuncError::ExactlyXArgs("truncate".into(), 2)),
    };
    Ok(TValue::String(s.chars().take(n).collect()))
}

/// Go's encoder escapes `<`, `>` and `&` (they can only occur inside JSON strings).
pub fn go_json_escape(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// How Go's template engine prints a value: `[a b]` for slices, `map[k:v]` for maps.
pub fn display(v: &TValue) -> String {
    match v {
        TValue::NoValue => "<no value>".into(),
        TValue::Nil => "<nil>".into(),
        TValue::String(s) => s.clone(),
        TValue::Array(a) => format!("[{}]", a.iter().map(display).collect::<Vec<_>>().join(" ")),
        TValue::Map(m) | TValue::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", display(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

/// A parsed `--format` template.
pub struct Format {
    tmpl: Template,
    /// `table ...`: rows go through the tab writer with a header line.
    pub table: bool,
    source: String,
}

impl Format {
    /// Parses a user format: `table` prefix, `json` shorthand, `\t`/`\n` escapes as Docker does.
    pub fn parse(format: &str) -> Result<Format> {
        let trimmed = format.trim();
        let (table, body) = match trimmed.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, trimmed),
        };
        let body = if body == "json" { "{{__jsonMarshal .}}" } else { body };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        // docker's ps context has a `Label` method; rows carry the labels as `LabelMap`.
        let body = body.replace(".Label \"", "__label .__berthLabels \"");
        let mut tmpl = Template::default();
        tmpl.add_func("json", f_json);
        tmpl.add_func("__jsonMarshal", f_json_marshal);
        tmpl.add_func(FMT_FUNC, f_fmt);
        tmpl.add_func("__label", f_label);
        tmpl.add_func("upper", f_upper);
        tmpl.add_func("lower", f_lower);
        tmpl.add_func("title", f_title);
        tmpl.add_func("join", f_join);
        tmpl.add_func("split", f_split);
        tmpl.add_func("pad", f_pad);
        tmpl.add_func("truncate", f_truncate);
        tmpl.parse(wrap_actions(&body))
            .map_err(|e| anyhow!("template parsing error: {e}"))?;
        Ok(Format {
            tmpl,
            table,
            source: body,
        })
    }

    /// Renders one value.
    pub fn render(&self, v: &Value) -> Result<String> {
        self.render_t(to_tvalue(v))
    }

    /// Renders a template value.
    pub fn render_t(&self, v: TValue) -> Result<String> {
        self.tmpl
            .render(&Context::from(v))
            .map_err(|e| anyhow!("template: {e}"))
    }

    /// Renders rows (and, for `table`, the header from `headers`: field name -> column title)
    /// into the final text.
    pub fn render_rows(&self, rows: &[Value], headers: &[(&str, &str)]) -> Result<String> {
        self.render_rows_with_flags(rows, headers, &[])
    }

    /// [`Format::render_rows`] where the boolean fields `flags` are false in the header row, so a
    /// template's `{{if .Current}} *{{end}}` adds nothing to the title (docker's header context
    /// has no such field).
    pub fn render_rows_with_flags(&self, rows: &[Value], headers: &[(&str, &str)], flags: &[&str]) -> Result<String> {
        let mut text = String::new();
        if self.table {
            let hmap: HashMap<String, TValue> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), TValue::String(v.to_string())))
                .chain(flags.iter().map(|f| (f.to_string(), TValue::Bool(false))))
                .collect();
            // Fields without a known header render as empty, like Docker's header context.
            let mut full = hmap;
            for field in template_fields(&self.source) {
                full.entry(field.clone())
                    .or_insert_with(|| TValue::String(field.to_uppercase()));
            }
            text.push_str(&self.render_t(TValue::Map(full))?);
            text.push('\n');
        }
        for row in rows {
            text.push_str(&self.render(row)?);
            text.push('\n');
        }
        Ok(if self.table { tabwrite(&text) } else { text })
    }
}

/// The top-level fields a template references (`{{.ID}}` -> `ID`).
fn template_fields(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while let Some(pos) = src[i..].find('.') {
        let start = i + pos + 1;
        let prev = if i + pos > 0 { bytes[i + pos - 1] } else { b' ' };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if end > start && !(prev.is_ascii_alphanumeric() || prev == b'_' || prev == b')') {
            out.push(src[start..end].to_string());
        }
        i = end.max(start);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwriter_matches_docker() {
        let text = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n\
                    0123456789ab\tbusybox\t\"sh\"\t2 seconds ago\tUp 1 second\t\tweb\n";
        let out = tabwrite(text);
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            "CONTAINER ID   IMAGE     COMMAND   CREATED         STATUS        PORTS     NAMES"
        );
        assert_eq!(
            lines.next().unwrap(),
            "0123456789ab   busybox   \"sh\"      2 seconds ago   Up 1 second             web"
        );
    }

    #[test]
    fn tabwriter_counts_chars() {
        let out = tabwrite("A\tB\n\"sh -c 'echo hi…\"\tx\n");
        assert_eq!(out, "A                   B\n\"sh -c 'echo hi…\"   x\n");
    }

    #[test]
    fn ellipsis_and_quote() {
        assert_eq!(ellipsis("sh -c 'echo hello world'", 20), "sh -c 'echo hello w…");
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(go_quote("sh -c 'echo \"x\"'\n"), "\"sh -c 'echo \\\"x\\\"'\\n\"");
        assert_eq!(go_quote("a…"), "\"a…\"");
    }

    #[test]
    fn json_indent_like_go() {
        let src = r#"[{"Id":"x","Args":[],"Config":{"Env":["A=1","B=2"],"Labels":{}},"S":"a,b:{c}"}]"#;
        let want = "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"Config\": {\n            \"Env\": [\n                \"A=1\",\n                \"B=2\"\n            ],\n            \"Labels\": {}\n        },\n        \"S\": \"a,b:{c}\"\n    }\n]";
        assert_eq!(json_indent(src, "    "), want);
        assert_eq!(json_indent("[]", "    "), "[]");
        assert_eq!(json_indent(r#"{"a":"q\"}"}"#, "  "), "{\n  \"a\": \"q\\\"}\"\n}");
    }

    #[test]
    fn templates() {
        let v = json!({
            "ID": "abc", "Names": "web", "State": {"Status": "running", "Pid": 42},
            "Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "Null": null,
            "__berthLabels": {"a": "1"}
        });
        let cases = [
            ("{{.ID}}", "abc"),
            ("{{.State.Status}}", "running"),
            ("{{.State.Pid}}", "42"),
            ("{{json .State}}", r#"{"Pid":42,"Status":"running"}"#),
            ("{{upper .Names}}", "WEB"),
            ("{{lower \"ABC\"}}", "abc"),
            ("{{join .Env \",\"}}", "A=1,B=2"),
            ("{{range .Env}}{{.}};{{end}}", "A=1;B=2;"),
            ("{{index .Labels \"a\"}}", "1"),
            ("{{.Missing}}", "<no value>"),
            ("{{title \"hello world\"}}", "Hello World"),
            ("{{if eq .ID \"abc\"}}yes{{end}}", "yes"),
            ("{{.ID}}\\t{{.Names}}", "abc\tweb"),
            ("{{.Env}}", "[A=1 B=2]"),
            ("{{.Labels}}", "map[a:1 b:2]"),
            ("{{.Null}}", "<nil>"),
            ("{{- .ID -}} x", "abcx"),
            ("{{$n := .Names}}{{$n}}", "web"),
            ("{{range $i, $e := .Env}}{{$i}}={{$e}} {{end}}", "0=A=1 1=B=2 "),
            ("{{if .State}}{{.State.Status}}{{else}}none{{end}}", "running"),
            ("{{/* comment */}}{{.ID}}", "abc"),
            ("{{.State.Pid | printf \"%d\"}}", "42"),
            ("{{.Label \"a\"}}|{{.Label \"zz\"}}", "1|"),
            ("{{join .Env \"}}\"}}", "A=1}}B=2"),
        ];
        for (tmpl, want) in cases {
            let f = Format::parse(tmpl).unwrap();
            assert_eq!(f.render(&v).unwrap(), want, "{tmpl}");
        }
        let f = Format::parse("json").unwrap();
        assert!(f.render(&v).unwrap().starts_with("{\"Env\":[\"A=1\",\"B=2\"]"));
        assert!(Format::parse("{{.ID").is_err());
        let f = Format::parse("json").unwrap();
        assert_eq!(
            f.render(&json!({"R": "<none>&"})).unwrap(),
            r#"{"R":"\u003cnone\u003e\u0026"}"#
        );
        let f = Format::parse("{{json .}}").unwrap();
        assert_eq!(f.render(&json!({"R": "<none>&"})).unwrap(), r#"{"R":"<none>&"}"#);
    }

    #[test]
    fn table_templates() {
        let rows = vec![
            json!({"ID": "abc", "Names": "web"}),
            json!({"ID": "defghi", "Names": "db"}),
        ];
        let f = Format::parse("table {{.ID}}\t{{.Names}}").unwrap();
        let out = f
            .render_rows(&rows, &[("ID", "CONTAINER ID"), ("Names", "NAMES")])
            .unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\ndefghi         db\n");
        let f = Format::parse("table{{.Names}}").unwrap();
        assert_eq!(f.render_rows(&rows, &[("Names", "NAMES")]).unwrap(), "NAMES\nweb\ndb\n");
        let f = Format::parse("{{.Names}}").unwrap();
        assert_eq!(f.render_rows(&rows, &[]).unwrap(), "web\ndb\n");
    }

    #[test]
    fn go_display() {
        let v = to_tvalue(&json!({"a": ["x", "y"], "m": {"k": "v"}}));
        if let TValue::Map(m) = &v {
            assert_eq!(display(&m["a"]), "[x y]");
            assert_eq!(display(&m["m"]), "map[k:v]");
        } else {
            panic!("not a map");
        }
    }
}
