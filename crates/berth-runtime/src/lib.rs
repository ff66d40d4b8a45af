//! OCI runtime spec generation and the Linux container runtime.
//!
//! The pure part ([`build_spec`], [`resolve_user`], [`cgroups`]) is used by the engine; the Linux part
//! ([`linux`], [`external`]) by the shim, which owns the container's processes.

pub mod cgroups;
pub mod config;
mod error;
pub mod external;
pub mod linux;
pub mod seccomp;
pub mod spec;
pub mod sys;
pub mod user;

pub use config::{BindMount, IdMap, NetworkMode, ResolvedUser, RuntimeConfig, SeccompMode, TmpfsMount, Ulimit};
pub use error::{Error, Result};
pub use linux::{CreateError, CreatedContainer, CreatedProcess, ExecOptions, RootfsMount, Stdio};
pub use oci_spec;
pub use spec::{build_spec, tmpfs_options, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};
pub use user::resolve_user;
