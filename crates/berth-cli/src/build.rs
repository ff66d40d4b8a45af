//! `berth build`: for now the parser's view of a Dockerfile (`--print-ast`); building images comes
//! with the builder.

use anyhow::Result;
use std::io::Read;

use crate::args::BuildArgs;
use crate::StatusError;

/// `berth build --print-ast FILE`: prints the parse as a JSON array, one instruction per line.
pub fn build(a: BuildArgs) -> Result<i32> {
    let Some(file) = a.print_ast.as_deref() else {
        return Err(StatusError::new(
            1,
            "berth build: building images is not implemented yet; `berth build --print-ast FILE` parses a Dockerfile",
        )
        .into());
    };
    let src = read_source(file)?;
    let df = berth_dockerfile::parse(&src).map_err(|e| StatusError::new(1, format!("{file}: {e}")))?;
    for w in &df.warnings {
        eprintln!("warning: {file}:{}: {}", w.line, w.message);
    }
    outln!("{}", render(&berth_dockerfile::ast_json(&df)));
    Ok(0)
}

fn read_source(file: &str) -> Result<String> {
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|e| StatusError::new(1, format!("reading Dockerfile {file}: {e}")))?;
    String::from_utf8(bytes).map_err(|_| StatusError::new(1, format!("Dockerfile {file} is not UTF-8 text")).into())
}

/// The array with one instruction object per line.
fn render(ast: &serde_json::Value) -> String {
    match ast.as_array() {
        Some(items) if !items.is_empty() => {
            let lines: Vec<String> = items.iter().map(|i| i.to_string()).collect();
            format!("[\n{}\n]", lines.join(",\n"))
        }
        _ => ast.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instruction_per_line_and_valid_json() {
        let df = berth_dockerfile::parse("FROM bb AS base\nARG foo bar=baz\nRUN echo \\\n  hi\n").unwrap();
        let out = render(&berth_dockerfile::ast_json(&df));
        assert_eq!(out.lines().count(), 5, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["cmd"], "from");
        assert_eq!(v[1]["args"], serde_json::json!(["foo", null, "bar", "baz"]));
        assert_eq!(v[2]["line"], 3);
        assert_eq!(v[2]["json"], false);
    }
}
