//! The per-container supervisor: owns the container's stdio, writes its json-file log, records its
//! exit status and answers the engine on a small control socket (see docs/DESIGN.md).

pub mod protocol;
pub mod launch;

pub use launch::{launch, LaunchError};
