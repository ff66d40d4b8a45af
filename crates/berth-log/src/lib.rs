//! Docker's json-file log driver, both halves: the shim writes it, the engine reads it for
//! `GET /containers/{id}/logs`.
//!
//! The format is exactly Docker's: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}` (`time` is Go's
//! `RFC3339Nano`). stdout and stderr are kept apart; TTY output is written as stdout.
//!
//! - [`JsonLog`] (writer): `open(path)`, `write(stream, chunk)`, `flush()`. Each chunk of container
//!   output is split on newlines; a trailing partial line is written as its own entry (without `\n`)
//!   rather than held back, so nothing is lost if the container dies.
//! - [`LogReader`] (reader): over one file or a list of files (oldest first, the last one live, the
//!   shape rotation will need), with a [`Filter`] (stdout/stderr, `since`, `until`). `tail(n)` reads the
//!   last `n` matching lines backwards from the end of the file; `read_new()` is the follow cursor: the
//!   complete lines written since the last read (a line the shim is still writing is left for later).
//!   Lines that are not valid entries are skipped.
//!
//! Rotation (`max-size`, `max-file`, `compress`) is the writer's ([`Rotation`]): `<log>` moves to
//! `<log>.1` (gzipped to `<log>.1.gz` with `compress`) and older files shift up, as Docker names them;
//! [`log_files`] lists them oldest first for the reader.

mod entry;
mod error;
mod reader;
mod writer;

pub use entry::{LogEntry, Stream};
pub use error::LogError;
pub use reader::{Filter, LogReader};
pub use writer::{rotated_path, JsonLog, Rotation};

/// The files of a (possibly rotated) log, oldest first, the live one last, whether compressed or not.
pub fn log_files(path: &std::path::Path, max_files: u32) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for n in (1..max_files.max(1)).rev() {
        for gz in [true, false] {
            let p = rotated_path(path, n, gz);
            if p.exists() {
                out.push(p);
            }
        }
    }
    out.push(path.to_path_buf());
    out
}
