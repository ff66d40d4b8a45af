//! `GET /containers/{id}/logs`: reads the json-file log the shim writes, optionally following it.

use crate::containers::ContainerService;
use crate::error::Result;
use serde::Deserialize;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

fn frame_of(line: &str, opts: &LogOptions) -> Option<LogFrame> {
    let l: Line = serde_json::from_str(line).ok()?;
    let stream = match l.stream.as_str() {
        "stdout" if opts.stdout => 1,
        "stderr" if opts.stderr => 2,
        _ => return None,
    };
    if opts.since.is_some() || opts.until.is_some() {
        let t = berth_types::time::parse_rfc3339(&l.time)
            .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
            .unwrap_or(0.0);
        if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t >= u) {
            return None;
        }
    }
    let data = if opts.timestamps {
        format!("{} {}", l.time, l.log).into_bytes()
    } else {
        l.log.into_bytes()
    };
    Some(LogFrame { stream, data })
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
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(_) if opts.follow && events.borrow().running => {
                    // Not written yet: wait for the shim to create it.
                    let mut found = None;
                    while events.borrow().running && !tx.is_closed() {
                        if let Ok(f) = std::fs::File::open(&path) {
                            found = Some(f);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    match found {
                        Some(f) => f,
                        None => return,
                    }
                }
                Err(_) => return,
            };
            let mut reader = BufReader::new(file);
            // Backlog.
            let mut backlog: std::collections::VecDeque<LogFrame> = std::collections::VecDeque::new();
            let mut line = String::new();
            let mut pos = 0u64;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(n) if line.ends_with('\n') => {
                        pos += n as u64;
                        if let Some(f) = frame_of(line.trim_end(), &opts) {
                            backlog.push_back(f);
                            if let Some(t) = opts.tail {
                                while backlog.len() > t {
                                    backlog.pop_front();
                                }
                            }
                        }
                    }
                    Ok(_) => break, // partial line: the shim is still writing it
                }
            }
            for f in backlog {
                if tx.blocking_send(f).is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            let mut idle_after_exit = 0;
            loop {
                if reader.seek(SeekFrom::Start(pos)).is_err() {
                    return;
                }
                let mut progressed = false;
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(n) if n > 0 && line.ends_with('\n') => {
                            pos += n as u64;
                            progressed = true;
                            if let Some(f) = frame_of(line.trim_end(), &opts) {
                                if tx.blocking_send(f).is_err() {
                                    return;
                                }
                            }
                        }
                        _ => break,
                    }
                }
                if tx.is_closed() {
                    return;
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
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Ok(LogStream { frames: rx, tty })
    }
}
