//! Types every berth crate shares: identifiers, digests, image references and error kinds.
//! Nothing here performs I/O except [`fs`], the one way state files are written.

pub mod digest;
pub mod error;
pub mod fs;
pub mod id;
pub mod mount;
pub mod reference;
pub mod time;
pub mod userns;

pub use digest::{chain_ids, ChainId, Digest, DigestError};
pub use error::{ErrorKind, HasErrorKind};
pub use fs::{write_atomic, write_file, Durability, WriteError};
pub use id::{is_valid_container_name, new_id, short_id};
pub use mount::RootfsMount;
pub use reference::{Reference, ReferenceError};
pub use userns::{IdMap, IdentityMapping, UsernsError};
