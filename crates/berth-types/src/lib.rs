//! Types every berth crate shares: identifiers, digests, image references and error kinds.
//! Nothing here performs I/O except [`fs`], the one way state files are written.

pub mod digest;
pub mod error;
pub mod fs;
pub mod id;
pub mod mount;
pub mod reference;
pub mod time;
pub mod units;
pub mod userns;

pub use digest::{chain_ids, ChainId, Digest, DigestError};
pub use error::{error_chain, ErrorKind, HasErrorKind};
pub use fs::{write_atomic, write_file, Durability, WriteError};
pub use id::{is_valid_container_name, new_id, short_id};
pub use mount::RootfsMount;
pub use reference::{Reference, ReferenceError};
pub use userns::{IdMap, IdentityMapping, UsernsError};

/// Percent-encodes a URL path segment, query value or form value (RFC 3986: unreserved characters
/// pass through, every other byte is `%XX`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
