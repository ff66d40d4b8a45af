//! The reader side, used by the engine for `docker logs`: filtering, `--tail` read backwards from the
//! end of the file, and a follow cursor that hands out complete lines as the shim appends them.
//!
//! Only complete lines (ending in `\n`) are ever decoded: the shim writes each chunk's entries with one
//! `write`, but a reader may still catch the file between two writes, or in the middle of a large one.
//! The cursor stops before a partial line and picks it up once its `\n` is there.

use crate::entry::{LogEntry, Stream};
use crate::error::LogError;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How much one read takes from the file (forward or backward).
const CHUNK: usize = 64 * 1024;

/// Which entries a logs request wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Filter {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only entries at or after this Unix time (seconds, fractional).
    pub since: Option<f64>,
    /// Only entries before this Unix time.
    pub until: Option<f64>,
}

impl Filter {
    /// Every entry of both streams.
    pub fn all() -> Filter {
        Filter {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
        }
    }

    /// Whether `e` passes. An entry whose time cannot be parsed counts as the epoch.
    pub fn matches(&self, e: &LogEntry) -> bool {
        let wanted = match e.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        if !wanted {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let t = e.unix_time().unwrap_or(0.0);
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
                return false;
            }
        }
        true
    }

    fn pick(&self, line: &[u8]) -> Option<LogEntry> {
        LogEntry::parse(line).filter(|e| self.matches(e))
    }
}

/// A reader over a container's log: one file, or several (oldest first, the last one being written).
/// Its cursor starts at the beginning of the oldest file; [`LogReader::tail`] moves it to the end.
#[derive(Debug)]
pub struct LogReader {
    files: Vec<PathBuf>,
    filter: Filter,
    /// Index in `files` of the file the cursor is in.
    index: usize,
    /// The open file at `index` (opened lazily for rotated files).
    current: Option<File>,
    /// The file being written, opened up front so a missing log is reported at once.
    live: File,
    /// Offset in the current file just after the last complete line consumed.
    pos: u64,
    /// Bytes read past `pos` that do not end a line yet.
    carry: Vec<u8>,
    /// Bytes of complete lines consumed so far (returned, filtered out, or skipped by `tail`).
    consumed: u64,
}

impl LogReader {
    /// Opens the log at `path`. A missing file is an error ([`LogError::is_not_found`]): the shim may
    /// not have created it yet.
    pub fn open(path: impl AsRef<Path>, filter: Filter) -> Result<LogReader, LogError> {
        LogReader::open_files(vec![path.as_ref().to_path_buf()], filter)
    }

    /// Opens a log kept in several files, oldest first; the last one is the file being written.
    /// Older files that have disappeared by the time they are read are skipped.
    pub fn open_files(files: Vec<PathBuf>, filter: Filter) -> Result<LogReader, LogError> {
        let Some(live_path) = files.last() else {
            return Err(LogError::Open {
                path: PathBuf::new(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "no log file given"),
            });
        };
        let live = File::open(live_path).map_err(|source| LogError::Open {
            path: live_path.clone(),
            source,
        })?;
        Ok(LogReader {
            files,
            filter,
            index: 0,
            current: None,
            live,
            pos: 0,
            carry: Vec::new(),
            consumed: 0,
        })
    }

    /// Bytes of complete lines consumed so far: grows whenever the cursor moves past a line, whether
    /// the line was returned or filtered out (lets a follower tell "nothing new" from "nothing wanted").
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    fn last(&self) -> usize {
        self.files.len() - 1
    }

    fn read_err(&self, index: usize) -> impl FnOnce(io::Error) -> LogError + '_ {
        move |source| LogError::Read {
            path: self.files[index].clone(),
            source,
        }
    }

    /// The last `n` entries that pass the filter, oldest first, read backwards from the end of the log
    /// (so a large log is not read whole); leaves the cursor after the last complete line, where
    /// [`LogReader::read_new`] continues.
    pub fn tail(&mut self, n: usize) -> Result<Vec<LogEntry>, LogError> {
        let last = self.last();
        let live_end = {
            let len = self.live.metadata().map_err(self.read_err(last))?.len();
            last_line_end(&self.live, len).map_err(self.read_err(last))?
        };
        let mut found = Vec::new();
        if n > 0 {
            let filter = self.filter;
            let mut visit = |line: &[u8]| {
                if let Some(e) = filter.pick(line) {
                    found.push(e);
                }
                found.len() < n
            };
            let more = scan_back(&self.live, live_end, &mut visit).map_err(self.read_err(last))?;
            if more {
                for i in (0..last).rev() {
                    // A rotated file removed meanwhile holds nothing more to show.
                    let Ok(f) = File::open(&self.files[i]) else { continue };
                    let len = f.metadata().map_err(self.read_err(i))?.len();
                    let end = last_line_end(&f, len).map_err(self.read_err(i))?;
                    if !scan_back(&f, end, &mut visit).map_err(self.read_err(i))? {
                        break;
                    }
                }
            }
        }
        found.reverse();
        self.consumed += if self.index == last {
            live_end.saturating_sub(self.pos)
        } else {
            live_end
        };
        self.index = last;
        self.current = None;
        self.pos = live_end;
        self.carry.clear();
        Ok(found)
    }

    /// The follow cursor: the entries passing the filter among the complete lines written since the
    /// last read (at most about one read's worth, so a caller streams a large log in steps; call again
    /// until [`LogReader::consumed`] stops growing). A partial last line is left for a later call.
    pub fn read_new(&mut self) -> Result<Vec<LogEntry>, LogError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let last = self.last();
            if self.index < last && self.current.is_none() {
                match File::open(&self.files[self.index]) {
                    Ok(f) => self.current = Some(f),
                    Err(_) => {
                        // Rotated away meanwhile: go on with the next file.
                        self.next_file();
                        continue;
                    }
                }
            }
            let file = match (&self.current, self.index < last) {
                (Some(f), true) => f,
                _ => &self.live,
            };
            let at = self.pos + self.carry.len() as u64;
            let n = read_at_retry(file, &mut buf, at).map_err(self.read_err(self.index))?;
            if n == 0 {
                if self.index < last {
                    // A rotated file is complete: whatever partial line it ends with is lost, as in Docker.
                    self.next_file();
                    continue;
                }
                return Ok(out);
            }
            self.carry.extend_from_slice(&buf[..n]);
            let before = self.consumed;
            let mut start = 0;
            while let Some(i) = self.carry[start..].iter().position(|b| *b == b'\n') {
                let line = &self.carry[start..start + i];
                if let Some(e) = self.filter.pick(line) {
                    out.push(e);
                }
                start += i + 1;
            }
            self.carry.drain(..start);
            self.pos += start as u64;
            self.consumed += start as u64;
            if self.consumed > before {
                return Ok(out);
            }
            // Only part of a (long) line so far: keep reading.
        }
    }

    fn next_file(&mut self) {
        self.index += 1;
        self.current = None;
        self.pos = 0;
        self.carry.clear();
    }
}

fn read_at_retry(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match f.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// The offset just after the last `\n` before `len` (0 if there is none): the end of the complete lines.
fn last_line_end(f: &File, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut end = len;
    while end > 0 {
        let n = CHUNK.min(end as usize);
        let start = end - n as u64;
        f.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Calls `visit` with each complete line of `f[..end]` (without its `\n`), last line first, until it
/// returns false. `end` must be a line end (see [`last_line_end`]). Returns whether the start of the
/// file was reached with `visit` still wanting more.
fn scan_back(f: &File, end: u64, visit: &mut impl FnMut(&[u8]) -> bool) -> io::Result<bool> {
    // `pending` is the chunk just read followed by the start-less rest of a line from later chunks; it
    // always ends with `\n` when not empty.
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut pos = end;
    while pos > 0 {
        let n = CHUNK.min(pos as usize);
        pos -= n as u64;
        f.read_exact_at(&mut chunk[..n], pos)?;
        pending.splice(0..0, chunk[..n].iter().copied());
        // `stop` is one past the `\n` ending the line being cut off.
        let mut stop = pending.len();
        while let Some(i) = pending[..stop - 1].iter().rposition(|b| *b == b'\n') {
            if !visit(&pending[i + 1..stop - 1]) {
                return Ok(false);
            }
            stop = i + 1;
        }
        pending.truncate(stop);
    }
    if let Some((_, line)) = pending.split_last() {
        if !visit(line) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
