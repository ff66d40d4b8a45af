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

/// `image prune`'s list of deleted images: `untagged: ref` and `deleted: id` lines under
/// `Deleted Images:`, then a blank line; nothing when the report lists no image.
pub fn images_deleted_section(items: &[Value]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = String::from("Deleted Images:\n");
    for it in items {
        if let Some(u) = it["Untagged"].as_str() {
            out.push_str(&format!("untagged: {u}\n"));
        }
        if let Some(d) = it["Deleted"].as_str() {
            out.push_str(&format!("deleted: {d}\n"));
        }
    }
    out.push('\n');
    out
}

/// The last line of a prune: `Total reclaimed space: 1.5MB`.
pub fn reclaimed_line(space: f64) -> String {
    format!("Total reclaimed space: {}\n", crate::units::human_size_prec(space, 4))
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

    #[test]
    fn images_deleted_and_reclaimed() {
        assert_eq!(images_deleted_section(&[]), "");
        let items = [
            serde_json::json!({"Untagged": "bb:1"}),
            serde_json::json!({"Deleted": "sha256:ab"}),
        ];
        assert_eq!(
            images_deleted_section(&items),
            "Deleted Images:\nuntagged: bb:1\ndeleted: sha256:ab\n\n"
        );
        assert_eq!(reclaimed_line(1_500_000.0), "Total reclaimed space: 1.5MB\n");
    }
}
