//! Which runtime runs a container: berth's own (inside `berth-shim`) or an external OCI runtime
//! (runc, crun, youki) that the shim drives, and the static init for `--init`.

use crate::error::{EngineError, Result};
use std::collections::HashMap;
use std::path::PathBuf;

/// The runtimes this daemon offers.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    /// The `berth-shim` binary.
    pub shim: PathBuf,
    /// The static init bind-mounted for `--init` (tini-static, as Docker's docker-init), if any.
    pub init: Option<PathBuf>,
    /// External OCI runtimes by name (`runc` -> `/usr/sbin/runc`).
    pub external: HashMap<String, PathBuf>,
}

/// The name of berth's own runtime.
pub const OWN: &str = "berth";

impl Runtimes {
    /// Refuses a runtime name this daemon does not know (at create, as Docker does).
    pub fn validate(&self, name: Option<&str>) -> Result<()> {
        self.path(name.unwrap_or("")).map(|_| ())
    }

    /// The external runtime binary for `name`, or `None` for berth's own.
    pub fn path(&self, name: &str) -> Result<Option<PathBuf>> {
        match name {
            "" | OWN => Ok(None),
            n => self
                .external
                .get(n)
                .cloned()
                .map(Some)
                .ok_or_else(|| EngineError::InvalidArgument(format!("unknown or invalid runtime name: {n}"))),
        }
    }

    /// The init for `--init`, or Docker-like advice when there is none.
    pub fn init(&self) -> Result<PathBuf> {
        self.init.clone().ok_or_else(|| {
            EngineError::InvalidArgument(
                "--init: no init binary found; install tini (apt-get install tini) or start berthd with --init-path"
                    .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let mut r = Runtimes::default();
        r.external.insert("runc".into(), "/usr/sbin/runc".into());
        assert_eq!(r.path("").unwrap(), None);
        assert_eq!(r.path("berth").unwrap(), None);
        assert_eq!(r.path("runc").unwrap(), Some(PathBuf::from("/usr/sbin/runc")));
        assert_eq!(
            r.path("kata").unwrap_err().to_string(),
            "unknown or invalid runtime name: kata"
        );
        assert!(r.init().is_err());
    }
}
