//! Writing state files so that a reader or a crash never sees a torn one. This is the one piece of
//! I/O in berth-types: every crate that keeps state on disk writes it through here.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A state file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct WriteError {
    /// The file that was being written.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// How hard [`write_file`] tries to keep a write across a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Temp file, rename: readers see the old or the new content; a power loss may lose the write.
    /// For files regenerated at every container start (bundles, `/etc/hosts`).
    Atomic,
    /// Temp file, fsync, rename, fsync of the directory: the write survives a power loss once this
    /// returns. For records an answer of the API depends on.
    Durable,
}

/// The prefix of the temporary files [`write_file`] makes (`.<name>.tmp-<pid>-<n>`), so that start-up
/// code can recognise and remove those a crash left.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Writes `data` to `path` atomically and durably (see [`Durability::Durable`]).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), WriteError> {
    write_file(path, data, Durability::Durable)
}

/// Writes `data` to `path` through a temporary file in the same directory, then renames it over
/// `path`; on failure the temporary file is removed and `path` is left as it was.
pub fn write_file(path: &Path, data: &[u8], durability: Durability) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let durable = durability == Durability::Durable;
    let res = (|| -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if durable {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    res.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        WriteError {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempdir();
        let p = dir.join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_file(&p, b"two", Durability::Atomic).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_names_the_file_and_keeps_nothing() {
        let dir = tempdir();
        let p = dir.join("missing-dir").join("x.json");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(e.to_string().contains("missing-dir/x.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name(".config.v2.json.tmp-12-0"));
        assert!(!is_temp_name("config.v2.json"));
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-types-fs-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
