//! Output shared by the object commands (`network`, `volume`, `inspect`, the prunes): the same
//! shapes the docker CLI prints for each kind of object.

use anyhow::Result;
use serde_json::Value;

use crate::format::{json_indent, Format};
use crate::StatusError;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// Prints what an `inspect` found, then its errors on stderr: each object rendered with `tmpl`
/// (after `fill` completes its JSON) or, without one, all of them as an indented JSON array (`[]`
/// when none was found). Exit code 1 if any name failed.
pub fn print_inspected(
    found: &[String],
    errors: &[String],
    tmpl: Option<Format>,
    fill: impl Fn(&mut Value),
) -> Result<i32> {
    match tmpl {
        Some(t) => {
            let mut out = String::new();
            for raw in found {
                let mut v: Value = serde_json::from_str(raw).map_err(fail)?;
                fill(&mut v);
                out.push_str(&t.render(&v).map_err(fail)?);
                out.push('\n');
            }
            crate::write_out(&out);
        }
        None => outln!("{}", json_indent(&format!("[{}]", found.join(",")), "    ")),
    }
    for e in errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// A prune report's list: `title:`, one line per deleted item and a blank line (the docker CLI
/// prints it with Println); nothing when no item was deleted.
pub fn deleted_section<S: AsRef<str>>(title: &str, deleted: &[S]) -> String {
    if deleted.is_empty() {
        return String::new();
    }
    let mut out = format!("{title}:\n");
    for d in deleted {
        out.push_str(d.as_ref());
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_section_lists_or_is_empty() {
        assert_eq!(deleted_section::<&str>("Deleted Things", &[]), "");
        assert_eq!(
            deleted_section("Deleted Things", &["a", "b"]),
            "Deleted Things:\na\nb\n\n"
        );
    }
}
