//! Docker's json-file log: one JSON object per line, `{"log":"..","stream":"stdout","time":".."}`.
//! Each chunk read from the container is split on newlines; a trailing partial line is written as its
//! own entry (without `\n`) rather than held back, so nothing is lost if the container dies.

use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::Path;

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// An open json-file log.
pub struct JsonLog {
    file: Option<File>,
    buf: Vec<u8>,
}

impl JsonLog {
    /// Opens (creates, appends to) the log; an empty path disables logging.
    pub fn open(path: &str) -> std::io::Result<Self> {
        let file = if path.is_empty() {
            None
        } else {
            if let Some(dir) = Path::new(path).parent() {
                std::fs::create_dir_all(dir)?;
            }
            Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?)
        };
        Ok(JsonLog { file, buf: Vec::new() })
    }

    /// Appends the entries for one chunk of output of `stream` (`stdout` or `stderr`).
    pub fn write(&mut self, stream: &str, chunk: &[u8]) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let time = berth_types::time::now_rfc3339();
        self.buf.clear();
        for line in chunk.split_inclusive(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(line);
            serde_json::to_writer(
                &mut self.buf,
                &Entry {
                    log: &text,
                    stream,
                    time: &time,
                },
            )?;
            self.buf.push(b'\n');
        }
        file.write_all(&self.buf)?;
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        Ok(())
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
        l.write("stdout", b"a\nb\"c\npart").unwrap();
        l.write("stderr", b"ial\n").unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        let v: Vec<serde_json::Value> = s.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0]["log"], "a\n");
        assert_eq!(v[1]["log"], "b\"c\n");
        assert_eq!(v[2]["log"], "part");
        assert_eq!(v[3]["log"], "ial\n");
        assert_eq!(v[3]["stream"], "stderr");
        assert!(v[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
