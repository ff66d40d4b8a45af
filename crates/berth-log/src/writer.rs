//! The writer side, used by the shim: appends entries for each chunk of container output.

use crate::entry::encode;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Above this the scratch buffer is dropped after a write, so one burst does not pin memory in the
/// (deliberately small) shim.
const KEEP_BUFFER: usize = 64 * 1024;

/// An open json-file log. It owns its path, so rotation can reopen it.
#[derive(Debug)]
pub struct JsonLog {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
}

impl JsonLog {
    /// Opens (creates, appends to) the log, creating its directory; an empty path disables logging.
    pub fn open(path: &str) -> io::Result<Self> {
        let file = if path.is_empty() {
            None
        } else {
            if let Some(dir) = Path::new(path).parent() {
                std::fs::create_dir_all(dir)?;
            }
            Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?)
        };
        Ok(JsonLog {
            path: PathBuf::from(path),
            file,
            buf: Vec::new(),
        })
    }

    /// The log file (empty when logging is disabled).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the entries for one chunk of output of `stream` (`stdout` or `stderr`): one entry per
    /// line, and one for a trailing partial line. All of a chunk's entries share one timestamp and go
    /// to the file in one write, so a reader never sees half a chunk's line.
    pub fn write(&mut self, stream: &str, chunk: &[u8]) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let time = berth_types::time::now_rfc3339();
        self.buf.clear();
        for line in chunk.split_inclusive(|b| *b == b'\n') {
            encode(&mut self.buf, &String::from_utf8_lossy(line), stream, &time)?;
        }
        file.write_all(&self.buf)?;
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Flushes what was written to the file (entries are written unbuffered; this syncs nothing to
    /// disk, matching Docker, which does not fsync its logs either).
    pub fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_partials() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c/c-json.log");
        let mut l = JsonLog::open(p.to_str().unwrap()).unwrap();
        assert_eq!(l.path(), p);
        l.write("stdout", b"a\nb\"c\npart").unwrap();
        l.write("stderr", b"ial\n").unwrap();
        l.flush().unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        let v: Vec<serde_json::Value> = s.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0]["log"], "a\n");
        assert_eq!(v[1]["log"], "b\"c\n");
        assert_eq!(v[2]["log"], "part");
        assert_eq!(v[3]["log"], "ial\n");
        assert_eq!(v[3]["stream"], "stderr");
        assert!(v[0]["time"].as_str().unwrap().ends_with('Z'));
        // Exactly Docker's key order and nothing else.
        assert!(s.starts_with("{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\""));
    }

    #[test]
    fn appends_to_an_existing_log() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l.log");
        JsonLog::open(p.to_str().unwrap())
            .unwrap()
            .write("stdout", b"1\n")
            .unwrap();
        JsonLog::open(p.to_str().unwrap())
            .unwrap()
            .write("stdout", b"2\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
    }

    #[test]
    fn empty_path_disables_logging() {
        let mut l = JsonLog::open("").unwrap();
        l.write("stdout", b"nothing\n").unwrap();
        l.flush().unwrap();
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l.log");
        let mut l = JsonLog::open(p.to_str().unwrap()).unwrap();
        l.write("stdout", b"a\xffb\n").unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(s.trim_end()).unwrap();
        assert_eq!(v["log"], "a\u{fffd}b\n");
    }
}
