//! Container and object IDs: 64 random hex characters, shown truncated to 12 as Docker does.

/// A new random 64-character hex ID.
pub fn new_id() -> String {
    let mut buf = [0u8; 32];
    // getrandom only fails when the kernel has no entropy source at all; fall back to time and pid
    // rather than panicking, the ID is then still unique on this host.
    if getrandom::getrandom(&mut buf).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = format!("{t}-{}", std::process::id());
        return crate::Digest::sha256(seed.as_bytes()).hex().to_string();
    }
    hex::encode(buf)
}

/// The 12-character form Docker prints.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/` is allowed and ignored).
pub fn is_valid_container_name(name: &str) -> bool {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    name.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_id());
        assert_eq!(short_id(&a).len(), 12);
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn names() {
        for ok in ["web", "/web", "a1", "my_app.v2-x"] {
            assert!(is_valid_container_name(ok), "{ok}");
        }
        for bad in ["", "a", "-x", "_x", "a b", "a/b", "é1"] {
            assert!(!is_valid_container_name(bad), "{bad}");
        }
    }
}
