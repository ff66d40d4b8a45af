//! The builder's parts that need no engine: [`copy`] decides which files of the build context a
//! COPY or ADD takes and where each lands in the image, with Docker's rules (wildcards, trailing
//! slashes, directory contents, `.dockerignore`, paths kept inside the context, `--exclude`,
//! `--parents`); [`remote`] tells URLs and git sources apart and downloads ADD's URLs.

pub mod chmod;
pub mod copy;
mod proxy;
pub mod remote;

pub use chmod::{Chmod, ChmodError};
pub use copy::{content_digest, exclude_patterns, plan, plan_with, Context, CopyError, CopyFlags, CopyItem, EntryKind};
