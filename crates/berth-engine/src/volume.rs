//! The volume service: turns a container's binds and volumes into the mounts of one run. Drivers
//! implement [`VolumeService`]; [`HostBinds`] is today's: absolute host paths (`-v /src:/dst[:ro]`),
//! created when missing, as Docker does.

use crate::error::{EngineError, Result};
use berth_runtime::BindMount;
use std::path::Path;

/// A volume driver.
pub trait VolumeService: Send + Sync {
    /// Checks a container's binds at create time, so a bad one is a 400 then and not at start.
    fn validate(&self, binds: &[String]) -> Result<()>;
    /// The mounts for the next run of container `id` (sources created or reference-counted here).
    fn mounts(&self, id: &str, binds: &[String]) -> Result<Vec<BindMount>>;
    /// The container is gone: release what `mounts` took (anonymous volumes with `--rm`…).
    fn release(&self, id: &str);
}

/// Absolute-path binds only.
#[derive(Debug, Default)]
pub struct HostBinds;

impl VolumeService for HostBinds {
    fn validate(&self, binds: &[String]) -> Result<()> {
        for b in binds {
            parse_bind(b)?;
        }
        Ok(())
    }

    fn mounts(&self, _id: &str, binds: &[String]) -> Result<Vec<BindMount>> {
        let mut out = Vec::new();
        for b in binds {
            let m = parse_bind(b)?;
            if !m.source.exists() {
                // Docker creates a missing bind source directory.
                std::fs::create_dir_all(&m.source)
                    .map_err(|e| EngineError::io("creating bind source", &m.source, e))?;
            }
            out.push(m);
        }
        Ok(out)
    }

    fn release(&self, _id: &str) {}
}

/// Parses `host:container[:ro|rw,...]` (Docker's short `-v` syntax for host paths).
fn parse_bind(b: &str) -> Result<BindMount> {
    let parts: Vec<&str> = b.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid volume specification: '{b}'"
            )))
        }
    };
    if !dst.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid volume specification: '{b}': invalid mount config: destination must be an absolute path"
        )));
    }
    if !src.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid volume specification: '{b}': named volumes are not available in this berth version; use an absolute host path"
        )));
    }
    let mut readonly = false;
    let mut options = Vec::new();
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" | "nocopy" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => options.push(m.to_string()),
            _ => return Err(EngineError::InvalidArgument(format!("invalid mode: {m}"))),
        }
    }
    Ok(BindMount {
        source: Path::new(src).to_path_buf(),
        destination: dst.into(),
        readonly,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        let dir = std::env::temp_dir().join(format!("berth-binds-{}", std::process::id()));
        let spec = format!("{}:/data:ro", dir.display());
        HostBinds.validate(std::slice::from_ref(&spec)).unwrap();
        assert!(!dir.exists(), "validation creates nothing");
        let b = HostBinds.mounts("x", &[spec]).unwrap();
        assert_eq!(b[0].destination, "/data");
        assert!(b[0].readonly);
        assert!(dir.exists());
        std::fs::remove_dir_all(&dir).ok();
        assert!(HostBinds.validate(&["named:/data".into()]).is_err());
        assert!(HostBinds.validate(&["/x:relative".into()]).is_err());
        assert!(HostBinds.validate(&["/x:/y:bogus".into()]).is_err());
    }
}
