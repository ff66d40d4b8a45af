//! Types every berth crate shares: identifiers, digests, image references and error kinds.
//! Nothing here performs I/O.

pub mod digest;
pub mod error;
pub mod id;
pub mod reference;
pub mod time;
pub mod userns;

pub use digest::{chain_ids, ChainId, Digest, DigestError};
pub use error::{ErrorKind, HasErrorKind};
pub use id::{is_valid_container_name, new_id, short_id};
pub use reference::{Reference, ReferenceError};
pub use userns::{IdMap, IdentityMapping, UsernsError};
