//! `GET /containers/{id}/logs`: the async glue over [`berth_log::LogReader`] (which parses, filters,
//! tails and follows the json-file log the shim writes): a blocking task that streams frames into a
//! channel, and the follow loop that polls until the container stops.

use crate::containers::ContainerService;
use crate::error::{EngineError, Result};
use berth_log::{Filter, LogEntry, LogError, LogReader};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a follower looks for new lines (and for the log file to appear).
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// Options of a logs request.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Keep streaming new lines until the container stops.
    pub follow: bool,
    /// Only the last n lines (`None` for all).
    pub tail: Option<usize>,
    /// Only lines at or after this Unix time (seconds, fractional).
    pub since: Option<f64>,
    /// Only lines before this Unix time.
    pub until: Option<f64>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
}

/// One chunk of log output.
#[derive(Debug, Clone)]
pub struct LogFrame {
    /// 1 for stdout, 2 for stderr.
    pub stream: u8,
    /// The bytes (with the timestamp prefix when asked for).
    pub data: Vec<u8>,
}

/// The output of a logs request, and whether the container has a TTY (raw stream).
pub struct LogStream {
    /// Frames in order.
    pub frames: mpsc::Receiver<LogFrame>,
    /// The container has a TTY: Docker sends the log raw rather than multiplexed.
    pub tty: bool,
}

/// The reader's filter for a request.
fn filter_of(opts: &LogOptions) -> Filter {
    Filter {
        stdout: opts.stdout,
        stderr: opts.stderr,
        since: opts.since,
        until: opts.until,
    }
}

fn frame_of(entry: LogEntry, timestamps: bool) -> LogFrame {
    LogFrame {
        stream: entry.stream.fd(),
        data: entry.into_output(timestamps),
    }
}

/// Sends what a read returned as frames; false when the read failed or the client has gone.
fn deliver(tx: &mpsc::Sender<LogFrame>, read: Result<Vec<LogEntry>, LogError>, timestamps: bool) -> bool {
    read.is_ok_and(|entries| {
        entries
            .into_iter()
            .all(|e| tx.blocking_send(frame_of(e, timestamps)).is_ok())
    })
}

/// A log and its rotated files (`<log>.N`, `<log>.N.gz`), oldest first. Compressed files are read
/// from a decompressed copy in a temporary directory, removed when this value is dropped (the
/// reader opens rotated files lazily, so the copies live as long as the request).
struct Rotated {
    path: PathBuf,
    max_files: u32,
    tmp: Option<PathBuf>,
}

impl Rotated {
    fn new(path: &Path, max_files: u32) -> Rotated {
        Rotated {
            path: path.to_path_buf(),
            max_files,
            tmp: None,
        }
    }

    fn gunzip(&mut self, gz: &Path) -> io::Result<PathBuf> {
        let dir = match &self.tmp {
            Some(d) => d.clone(),
            None => {
                let d = std::env::temp_dir().join(format!("berth-log-{}", berth_types::new_id()));
                std::fs::create_dir_all(&d)?;
                self.tmp = Some(d.clone());
                d
            }
        };
        let out = dir.join(gz.file_name().unwrap_or_default());
        let mut dec = flate2::read::GzDecoder::new(std::fs::File::open(gz)?);
        let mut f = std::fs::File::create(&out)?;
        io::copy(&mut dec, &mut f)?;
        Ok(out)
    }

    fn open(&mut self, filter: Filter) -> Result<LogReader, LogError> {
        let mut files = Vec::new();
        for f in berth_log::log_files(&self.path, self.max_files) {
            if f.extension().is_some_and(|e| e == "gz") {
                // A file rotated away meanwhile is skipped, as the reader skips vanished files.
                if let Ok(p) = self.gunzip(&f) {
                    files.push(p);
                }
            } else {
                files.push(f);
            }
        }
        LogReader::open_files(files, filter)
    }
}

impl Drop for Rotated {
    fn drop(&mut self) {
        if let Some(d) = &self.tmp {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl ContainerService {
    /// Streams a container's log.
    pub async fn logs(self: &Arc<Self>, name: &str, opts: LogOptions) -> Result<LogStream> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let tty = rec.config.tty.unwrap_or(false);
        let lc = rec.host_config.log_config.as_ref();
        if rec.log_path.is_empty() || crate::logconfig::driver(lc) == "none" {
            return Err(EngineError::Unsupported(
                "configured logging driver does not support reading".into(),
            ));
        }
        let max_files = crate::logconfig::rotation(lc).max_files;
        let (tx, rx) = mpsc::channel(64);
        let path = rec.log_path.clone();
        let events = c.events.subscribe();
        tokio::task::spawn_blocking(move || {
            let filter = filter_of(&opts);
            let mut rotated = Rotated::new(Path::new(&path), max_files);
            let mut reader = match rotated.open(filter) {
                Ok(r) => r,
                Err(_) if opts.follow && events.borrow().running => {
                    // Not written yet: wait for the shim to create it.
                    let mut found = None;
                    while events.borrow().running && !tx.is_closed() {
                        if let Ok(r) = rotated.open(filter) {
                            found = Some(r);
                            break;
                        }
                        std::thread::sleep(FOLLOW_POLL);
                    }
                    match found {
                        Some(r) => r,
                        None => return,
                    }
                }
                Err(_) => return,
            };
            // Backlog: the last n lines read from the end, or everything in steps.
            match opts.tail {
                Some(n) => {
                    if !deliver(&tx, reader.tail(n), opts.timestamps) {
                        return;
                    }
                }
                None => loop {
                    let before = reader.consumed();
                    if !deliver(&tx, reader.read_new(), opts.timestamps) {
                        return;
                    }
                    if reader.consumed() == before {
                        break;
                    }
                },
            }
            if !opts.follow {
                return;
            }
            let inode = |p: &str| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).ok()?).into();
            let mut live_ino: Option<u64> = inode(&path);
            let mut idle_after_exit = 0;
            loop {
                let before = reader.consumed();
                if !deliver(&tx, reader.read_new(), opts.timestamps) {
                    return;
                }
                if tx.is_closed() {
                    return;
                }
                let progressed = reader.consumed() > before;
                // The writer rotated the file this reader follows: go on with the new live file.
                if !progressed {
                    let now = inode(&path);
                    if now.is_some() && now != live_ino {
                        if let Ok(r) = LogReader::open(&path, filter) {
                            reader = r;
                            live_ino = now;
                            continue;
                        }
                    }
                }
                let running = events.borrow().running;
                if !running && !progressed {
                    // One more pass after the exit so the last lines written are not lost.
                    idle_after_exit += 1;
                    if idle_after_exit > 1 {
                        return;
                    }
                }
                if !progressed {
                    std::thread::sleep(FOLLOW_POLL);
                }
            }
        });
        Ok(LogStream { frames: rx, tty })
    }
}
