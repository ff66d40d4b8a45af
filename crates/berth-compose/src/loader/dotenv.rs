//! `.env` (and service `env_file`) parsing the way Compose v2 reads them: `#` comment lines,
//! an optional `export ` prefix, `KEY=value` with unquoted values cut at ` #` and trimmed,
//! single-quoted values taken literally, double-quoted values with `\n`-style escapes, quoted values
//! spanning lines, and `${VAR}` expansion in unquoted and double-quoted values from the file's earlier
//! variables and then `lookup`. A bare `KEY` takes its value from `lookup`, or stays unset.

use std::collections::BTreeMap;

use super::interpolate::Interpolator;

/// A line of an env file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses `text`; `lookup` resolves bare keys and variables the file does not define. Returns the
/// variables in file order (later definitions replace earlier ones in the map).
pub fn parse(text: &str, lookup: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, DotenvError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        // skip blank space and newlines
        if chars[i].is_whitespace() {
            if chars[i] == '\n' {
                line += 1;
            }
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start_line = line;
        // key
        let mut key = String::new();
        while i < chars.len() && chars[i] != '=' && chars[i] != '\n' {
            key.push(chars[i]);
            i += 1;
        }
        let mut key = key.trim().to_string();
        if let Some(rest) = key.strip_prefix("export ") {
            key = rest.trim().to_string();
        }
        if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
            return Err(DotenvError {
                line: start_line,
                message: format!("unexpected character in variable name {key:?}"),
            });
        }
        if i >= chars.len() || chars[i] == '\n' {
            // bare KEY: from the environment, or unset
            if let Some(v) = lookup.get(&key) {
                vars.insert(key.clone(), v.clone());
                out.push((key, v.clone()));
            }
            continue;
        }
        i += 1; // '='
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let value = match chars.get(i) {
            Some(&q @ ('\'' | '"')) => {
                i += 1;
                let mut raw = String::new();
                let mut closed = false;
                while i < chars.len() {
                    let c = chars[i];
                    if c == '\n' {
                        line += 1;
                    }
                    if c == '\\' && q == '"' && i + 1 < chars.len() {
                        raw.push(c);
                        raw.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if c == q {
                        closed = true;
                        i += 1;
                        break;
                    }
                    raw.push(c);
                    i += 1;
                }
                if !closed {
                    return Err(DotenvError {
                        line: start_line,
                        message: format!("unterminated quoted value for {key}"),
                    });
                }
                // the rest of the line after the closing quote is ignored (a comment)
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                if q == '\'' {
                    raw
                } else {
                    let unescaped = unescape(&raw);
                    expand(&unescaped, &vars, lookup)
                }
            }
            _ => {
                let mut raw = String::new();
                while i < chars.len() && chars[i] != '\n' {
                    if chars[i] == '#' && raw.ends_with([' ', '\t']) {
                        while i < chars.len() && chars[i] != '\n' {
                            i += 1;
                        }
                        break;
                    }
                    raw.push(chars[i]);
                    i += 1;
                }
                let raw = raw.trim_end_matches(['\r']).trim();
                if raw.is_empty() {
                    String::new()
                } else {
                    expand(raw, &vars, lookup)
                }
            }
        };
        vars.insert(key.clone(), value.clone());
        out.push((key, value));
    }
    Ok(out)
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str("$$"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn expand(value: &str, vars: &BTreeMap<String, String>, lookup: &BTreeMap<String, String>) -> String {
    if !value.contains('$') {
        return value.to_string();
    }
    let mut env = lookup.clone();
    for (k, v) in vars {
        env.insert(k.clone(), v.clone());
    }
    let mut i = Interpolator::new(&env);
    // an unparsable template is kept as written, as Compose does
    i.substitute(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_table() {
        let text = "A=1\nB=${A}x\nexport C=\"q ${B} \\n z\" # c\nD='lit $A'\nE=a # comment\nF=\"multi\nline\"\nG\nH=\n  I = spaced  \nJ=x#y\nK=${UNSET:-def}\n# comment\n\nL=${FROM_ENV}\nM\n";
        let lookup: BTreeMap<String, String> = [("FROM_ENV", "e"), ("M", "m")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let got = parse(text, &lookup).unwrap();
        let want: Vec<(&str, &str)> = vec![
            ("A", "1"),
            ("B", "1x"),
            ("C", "q 1x \n z"),
            ("D", "lit $A"),
            ("E", "a"),
            ("F", "multi\nline"),
            ("H", ""),
            ("I", "spaced"),
            ("J", "x#y"),
            ("K", "def"),
            ("L", "e"),
            ("M", "m"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unterminated_quote_names_the_line() {
        let err = parse("A=1\nB=\"open\n", &BTreeMap::new()).unwrap_err();
        assert_eq!(err.line, 2);
    }
}
