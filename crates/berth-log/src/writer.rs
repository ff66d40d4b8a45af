//! The writer side, used by the shim: appends entries for each chunk of container output.

use crate::entry::encode;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Above this the scratch buffer is dropped after a write, so one burst does not pin memory in the
/// (deliberately small) shim.
const KEEP_BUFFER: usize = 64 * 1024;

/// Docker's rotation options of the json-file and local drivers (`max-size`, `max-file`, `compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Rotation {
    /// Rotate once the file would grow past this many bytes (0: never).
    #[serde(default)]
    pub max_size: u64,
    /// Files kept, the live one included (0 or 1: the file is truncated instead).
    #[serde(default)]
    pub max_files: u32,
    /// gzip the rotated files (`<log>.1.gz`).
    #[serde(default)]
    pub compress: bool,
}

/// An open json-file log. It owns its path, so rotation can reopen it.
#[derive(Debug)]
pub struct JsonLog {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    rotation: Rotation,
    /// Bytes in the live file.
    size: u64,
}

/// The name of the `n`th rotated file of `path` (`<log>.n`, or `<log>.n.gz` when compressed).
pub fn rotated_path(path: &Path, n: u32, compressed: bool) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    if compressed {
        s.push(".gz");
    }
    PathBuf::from(s)
}

fn gzip_file(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = File::open(from)?;
    let tmp = to.with_extension("gz.tmp");
    let out = File::create(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    io::copy(&mut src, &mut enc)?;
    enc.finish()?;
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

impl JsonLog {
    /// Opens (creates, appends to) the log, creating its directory; an empty path disables logging.
    pub fn open(path: &str) -> io::Result<Self> {
        Self::open_rotating(path, Rotation::default())
    }

    /// Opens the log with Docker's rotation options.
    pub fn open_rotating(path: &str, rotation: Rotation) -> io::Result<Self> {
        let file = if path.is_empty() {
            None
        } else {
            if let Some(dir) = Path::new(path).parent() {
                std::fs::create_dir_all(dir)?;
            }
            Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?)
        };
        let size = match &file {
            Some(f) => f.metadata()?.len(),
            None => 0,
        };
        Ok(JsonLog {
            path: PathBuf::from(path),
            file,
            buf: Vec::new(),
            rotation,
            size,
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
        if self.file.is_none() {
            return Ok(());
        }
        let time = berth_types::time::now_rfc3339();
        self.buf.clear();
        let max = self.rotation.max_size;
        for line in chunk.split_inclusive(|b| *b == b'\n') {
            let before = self.buf.len();
            encode(&mut self.buf, &String::from_utf8_lossy(line), stream, &time)?;
            // Rotate between entries, so a file ends on a whole entry and stays near max-size.
            let pending = self.size + self.buf.len() as u64;
            if max > 0 && pending > max && self.size + before as u64 > 0 {
                let entry = self.buf.split_off(before);
                self.append()?;
                self.rotate()?;
                self.buf = entry;
            }
        }
        self.append()?;
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Writes the buffered entries to the live file.
    fn append(&mut self) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        if !self.buf.is_empty() {
            file.write_all(&self.buf)?;
            self.size += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Moves `<log>` to `<log>.1` (and `.1` to `.2`, ...), dropping the oldest, and starts a new
    /// file, as Docker's json-file driver does; with one file it is truncated.
    fn rotate(&mut self) -> io::Result<()> {
        let Rotation {
            max_files, compress, ..
        } = self.rotation;
        if max_files <= 1 {
            if let Some(f) = &self.file {
                f.set_len(0)?;
            }
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated_path(&self.path, max_files - 1, compress));
        for n in (1..max_files - 1).rev() {
            let from = rotated_path(&self.path, n, compress);
            if from.exists() {
                std::fs::rename(&from, rotated_path(&self.path, n + 1, compress))?;
            }
        }
        let first = rotated_path(&self.path, 1, false);
        std::fs::rename(&self.path, &first)?;
        self.file = Some(std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?);
        self.size = 0;
        if compress {
            gzip_file(&first, &rotated_path(&self.path, 1, true))?;
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
    fn rotates_at_max_size_and_keeps_max_files() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l.log");
        let rot = Rotation {
            max_size: 200,
            max_files: 3,
            compress: false,
        };
        let mut l = JsonLog::open_rotating(p.to_str().unwrap(), rot).unwrap();
        for i in 0..40 {
            l.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(std::fs::metadata(&p).unwrap().len() <= 200);
        assert!(rotated_path(&p, 1, false).exists());
        assert!(rotated_path(&p, 2, false).exists());
        assert!(!rotated_path(&p, 3, false).exists());
        let live = std::fs::read_to_string(&p).unwrap();
        assert!(live.contains("line 39"), "{live}");
        let one = std::fs::read_to_string(rotated_path(&p, 1, false)).unwrap();
        assert!(one
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
        // A reopened log goes on from the file's size.
        drop(l);
        let mut l = JsonLog::open_rotating(p.to_str().unwrap(), rot).unwrap();
        for i in 40..60 {
            l.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(std::fs::metadata(&p).unwrap().len() <= 200);
    }

    #[test]
    fn compressed_rotation_and_single_file_truncation() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l.log");
        let rot = Rotation {
            max_size: 100,
            max_files: 2,
            compress: true,
        };
        let mut l = JsonLog::open_rotating(p.to_str().unwrap(), rot).unwrap();
        for i in 0..10 {
            l.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        let gz = rotated_path(&p, 1, true);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(File::open(&gz).unwrap()), &mut text).unwrap();
        assert!(text.contains("\"log\":\"line"), "{text}");
        assert!(!rotated_path(&p, 1, false).exists());
        let q = t.path().join("one.log");
        let one = Rotation {
            max_size: 100,
            max_files: 1,
            compress: false,
        };
        let mut l = JsonLog::open_rotating(q.to_str().unwrap(), one).unwrap();
        for i in 0..10 {
            l.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(std::fs::metadata(&q).unwrap().len() <= 100);
        assert!(!rotated_path(&q, 1, false).exists());
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
