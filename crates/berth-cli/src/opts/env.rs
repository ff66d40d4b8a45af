//! `-e` and `--env-file`, as Docker's `opts.ParseEnvFile` and `opts.ValidateEnv` read them.

/// Reads `--env-file` lines as Docker's `opts.ParseEnvFile`: `#` comments and blank lines skipped,
/// `KEY` alone takes the value from the environment (and is dropped when unset).
pub fn parse_env_file(
    name: &str,
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if key.contains(char::is_whitespace) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Some(v) = lookup(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    let _ = name;
    Ok(out)
}

/// `-e KEY=VAL`, or `-e KEY` taking the value from the environment (kept as `KEY` if unset).
pub fn expand_env(e: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match lookup(e) {
        Some(v) => format!("{e}={v}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files() {
        let lookup = |k: &str| (k == "SET").then(|| "v".to_string());
        assert_eq!(
            parse_env_file("f", "\u{feff}A=1\n# c\n\nSET\nUNSET\n  B = x\n", &lookup),
            Err("variable 'B ' contains whitespaces".to_string())
        );
        assert_eq!(
            parse_env_file("f", "A=1\n# c\n\nSET\nUNSET\nC=a=b\nD=\n", &lookup).unwrap(),
            vec!["A=1", "SET=v", "C=a=b", "D="]
        );
        assert!(parse_env_file("f", "=x", &lookup)
            .unwrap_err()
            .contains("no variable name"));
    }
}
