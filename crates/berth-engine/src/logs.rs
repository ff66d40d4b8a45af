//! `GET /containers/{id}/logs`: the async glue over [`berth_log::LogReader`] (which parses, filters,
//! tails and follows the json-file log the shim writes): a blocking task that streams frames into a
//! channel, and the follow loop that polls until the container stops.

use crate::containers::ContainerService;
use crate::error::Result;
use berth_log::{Filter, LogEntry, LogError, LogReader};
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

impl ContainerService {
    /// Streams a container's log.
    pub async fn logs(self: &Arc<Self>, name: &str, opts: LogOptions) -> Result<LogStream> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let tty = rec.config.tty.unwrap_or(false);
        let (tx, rx) = mpsc::channel(64);
        let path = rec.log_path.clone();
        let events = c.events.subscribe();
        tokio::task::spawn_blocking(move || {
            let filter = filter_of(&opts);
            let mut reader = match LogReader::open(&path, filter) {
                Ok(r) => r,
                Err(_) if opts.follow && events.borrow().running => {
                    // Not written yet: wait for the shim to create it.
                    let mut found = None;
                    while events.borrow().running && !tx.is_closed() {
                        if let Ok(r) = LogReader::open(&path, filter) {
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
