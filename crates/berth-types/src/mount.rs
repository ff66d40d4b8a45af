//! The container's root filesystem mount, one type from the snapshotter (which describes it) through
//! the shim's options file to the runtime (which mounts it inside the container's mount namespace).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `mount(2)` needs for a container's root filesystem (an overlay).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsMount {
    /// Filesystem type, `overlay`.
    pub fstype: String,
    /// Mount source, `overlay`.
    pub source: String,
    /// `lowerdir=<top>:...:<bottom>`, `upperdir=...`, `workdir=...` (and `index=off` when supported).
    pub options: Vec<String>,
    /// When set, the paths in `options` are relative to this directory: `chdir` here before mounting
    /// (keeps the option string under one page for images with many layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
}

impl RootfsMount {
    /// The comma-joined mount data string.
    pub fn data(&self) -> String {
        self.options.join(",")
    }
}
