//! Detach keys: the key sequence that ends an attach to a TTY and leaves the process running
//! (`--detach-keys`, the `detachKeys` query, `detachKeys` in the CLI's config; Docker's default is
//! Ctrl-P, Ctrl-Q). The daemon watches the client's input for it (as dockerd does for TTY attaches
//! and execs), and so does the CLI.

/// Docker's default detach keys: Ctrl-P, Ctrl-Q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Parses a detach key list as Docker's `term.ToBytes`: comma-separated `ctrl-<x>` or single
/// characters (`ctrl-p,ctrl-q`, `ctrl-a,x`).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.to_lowercase().strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [x @ b'a'..=b'z'] => x - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    if out.is_empty() {
        return Err("empty detach keys".into());
    }
    Ok(out)
}

/// Watches input for the detach sequence. Bytes that could start the sequence are held back; a
/// partial match that fails is passed through as typed; the sequence itself is never passed on.
#[derive(Debug, Clone)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    /// A scanner for `keys` (Docker's default when empty).
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        let keys = if keys.is_empty() {
            DEFAULT_DETACH_KEYS.to_vec()
        } else {
            keys
        };
        DetachScanner { keys, matched: 0 }
    }

    /// The bytes of `chunk` to pass on, or `None` when the sequence is complete (detach).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(chunk.len());
        for &b in chunk {
            if b != self.keys[self.matched] && self.matched > 0 {
                // A partial match that failed is passed through as typed; `b` may start a new one.
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return None;
                }
            } else {
                out.push(b);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-[").unwrap(), [0, 27]);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn the_sequence_detaches_and_partials_pass_through() {
        let mut s = DetachScanner::new(vec![]);
        assert_eq!(s.feed(b"ls\n").as_deref(), Some(&b"ls\n"[..]));
        // Ctrl-P then a letter: both typed.
        assert_eq!(s.feed(&[0x10]).as_deref(), Some(&[][..]));
        assert_eq!(s.feed(b"a").as_deref(), Some(&[0x10, b'a'][..]));
        // Ctrl-P Ctrl-P Ctrl-Q: the first Ctrl-P is typed, then the sequence.
        assert_eq!(s.feed(&[0x10, 0x10, 0x11]), None);
        // Split across reads.
        let mut s = DetachScanner::new(vec![0x10, 0x11]);
        assert_eq!(s.feed(b"x\x10").as_deref(), Some(&b"x"[..]));
        assert_eq!(s.feed(b"\x11"), None);
        // A one-key sequence.
        let mut s = DetachScanner::new(vec![b'q']);
        assert_eq!(s.feed(b"abq"), None);
    }
}
