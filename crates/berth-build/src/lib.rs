//! The builder's parts that need no engine: [`copy`] decides which files of the build context a
//! COPY or ADD takes and where each lands in the image, with Docker's rules (wildcards, trailing
//! slashes, directory contents, `.dockerignore`, paths kept inside the context).

pub mod copy;

pub use copy::{content_digest, plan, Context, CopyError, CopyItem, EntryKind};
