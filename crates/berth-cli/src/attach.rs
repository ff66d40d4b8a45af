//! One attach session, whatever is attached (a container for `run`, `start -a` and `attach`; an
//! exec process next): the local terminal in raw mode while a TTY is attached, the start of the
//! process once the connection is up, window size changes sent through a callback, output copied
//! (raw for a TTY, else demultiplexed to stdout/stderr), stdin copied (half-closed at EOF), and the
//! detach keys (Ctrl-P Ctrl-Q by default). Docker's CLI does the same in `hijack.go` and
//! `attach.go`; signal forwarding (`--sig-proxy`) is here too.

use std::future::Future;
use std::io::{self, Read, Write};

use berth_client::stream::{read_frame, StreamType};
use berth_client::{AttachConn, Client};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::term::{self, Std};
use crate::StatusError;

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container closed its output.
    Closed,
    /// The user typed the detach sequence.
    Detached,
}

use berth_api::detach::DetachScanner;
pub use berth_api::detach::{parse_detach_keys, DEFAULT_DETACH_KEYS};

/// Copies output to stdout/stderr until the stream ends; a closed local pipe ends it quietly.
pub async fn copy_output<R: AsyncRead + Unpin>(reader: R, tty: bool) -> io::Result<()> {
    match copy_output_inner(reader, tty).await {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

async fn copy_output_inner<R: AsyncRead + Unpin>(mut reader: R, tty: bool) -> io::Result<()> {
    if tty {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            let mut out = io::stdout().lock();
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
    }
    let mut buf = Vec::new();
    while let Some(kind) = read_frame(&mut reader, &mut buf).await? {
        match kind {
            StreamType::Stderr => {
                let mut e = io::stderr().lock();
                e.write_all(&buf)?;
                e.flush()?;
            }
            _ => {
                let mut o = io::stdout().lock();
                o.write_all(&buf)?;
                o.flush()?;
            }
        }
    }
    Ok(())
}

/// Reads stdin on a plain thread (a blocking read cannot be cancelled; the process exits anyway).
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// The terminal side of an attach: what to copy and how, independent of what is attached.
#[derive(Debug, Clone)]
pub struct AttachSession {
    /// The attached process has a TTY: output is raw bytes and the local terminal goes raw.
    pub tty: bool,
    /// Local stdin is copied to the process.
    pub stdin: bool,
    /// The key sequence that detaches (only read while a TTY is attached, as Docker does).
    pub detach_keys: Vec<u8>,
}

impl AttachSession {
    /// Docker's refusal to attach a TTY's input to something that is not a terminal.
    pub fn check_input_tty(&self) -> Result<(), StatusError> {
        if self.tty && self.stdin && !term::is_tty(Std::In) {
            return Err(StatusError::new(1, "the input device is not a TTY"));
        }
        Ok(())
    }

    /// Runs the session over an already hijacked connection (`None` when no stream is
    /// attached): puts the terminal in raw mode, awaits `start` (the container or exec start;
    /// `async { Ok(()) }` when the process already runs), then, with a TTY on stdout, sends the
    /// window size through `resize` now and at every SIGWINCH, and copies until the output ends
    /// or the user detaches. The terminal is restored on every path; a failed `start` is
    /// returned as is.
    pub async fn run<E, R, RF>(
        &self,
        conn: Option<AttachConn>,
        start: impl Future<Output = Result<(), E>>,
        resize: R,
    ) -> Result<Ended, E>
    where
        R: Fn(u16, u16) -> RF + Send + 'static,
        RF: Future<Output = ()> + Send,
    {
        let raw = self.raw_terminal();
        if let Err(e) = start.await {
            drop(raw);
            return Err(e);
        }
        if self.tty && term::is_tty(Std::Out) {
            monitor_tty_size(resize);
        }
        let ended = match conn {
            // An I/O error on the connection ends the session like a close: the exit status
            // tells the rest.
            Some(c) => pump(c, self.tty, self.stdin, self.detach_keys.clone())
                .await
                .unwrap_or(Ended::Closed),
            None => Ended::Closed,
        };
        drop(raw);
        Ok(ended)
    }

    /// Raw mode for a TTY session: on stdin when it is attached, else on stdout.
    fn raw_terminal(&self) -> Option<term::RawGuard> {
        match (self.tty, self.stdin) {
            (false, _) => None,
            (true, true) => term::make_raw(Std::In),
            (true, false) => term::make_raw(Std::Out),
        }
    }
}

/// Sends the terminal size through `resize` now and on every SIGWINCH (as a background task).
fn monitor_tty_size<R, RF>(resize: R)
where
    R: Fn(u16, u16) -> RF + Send + 'static,
    RF: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        if let Some((h, w)) = term::size() {
            resize(h, w).await;
        }
        let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some((h, w)) = term::size() {
                resize(h, w).await;
            }
        }
    });
}

/// Copies output and stdin until output ends or the user detaches.
async fn pump(conn: AttachConn, tty: bool, stdin: bool, detach_keys: Vec<u8>) -> io::Result<Ended> {
    let AttachConn { reader, writer } = conn;
    let output = copy_output(reader, tty);
    tokio::pin!(output);
    let (detach_tx, mut detach_rx) = mpsc::channel::<()>(1);
    let input = async move {
        let Some(mut w) = writer.filter(|_| stdin) else {
            return std::future::pending::<()>().await;
        };
        let mut rx = stdin_chunks();
        let mut scan = DetachScanner::new(detach_keys);
        while let Some(chunk) = rx.recv().await {
            let data = if tty {
                match scan.feed(&chunk) {
                    Some(d) => d,
                    None => {
                        let _ = detach_tx.send(()).await;
                        return std::future::pending::<()>().await;
                    }
                }
            } else {
                chunk
            };
            if w.write_all(&data).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
        // EOF on stdin: half-close so the container sees EOF, keep reading output.
        let _ = w.shutdown().await;
        std::future::pending::<()>().await
    };
    tokio::pin!(input);
    tokio::select! {
        r = &mut output => r.map(|_| Ended::Closed),
        _ = detach_rx.recv() => Ok(Ended::Detached),
        _ = &mut input => Ok(Ended::Closed),
    }
}

/// Forwards the signals a user sends to the CLI to the container (`--sig-proxy`, non-TTY).
pub fn forward_signals(client: Client, id: String) {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds: [(SignalKind, &str); 7] = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
        (SignalKind::alarm(), "SIGALRM"),
    ];
    for (kind, name) in kinds {
        let Ok(mut sig) = signal(kind) else { continue };
        let client = client.clone();
        let id = id.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                let _ = client.container_kill(&id, Some(name)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> AttachSession {
        AttachSession {
            tty: false,
            stdin: false,
            detach_keys: DEFAULT_DETACH_KEYS.to_vec(),
        }
    }

    fn closed_conn() -> AttachConn {
        AttachConn {
            reader: Box::new(tokio::io::empty()),
            writer: None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn session_returns_a_failed_start_without_pumping() {
        let r = session()
            .run(
                Some(closed_conn()),
                async { Err::<(), _>("no such file") },
                |_, _| async {},
            )
            .await;
        assert_eq!(r, Err("no such file"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn session_ends_when_output_closes() {
        let started = std::cell::Cell::new(false);
        let start = async {
            started.set(true);
            Ok::<(), ()>(())
        };
        let r = session().run(Some(closed_conn()), start, |_, _| async {}).await;
        assert_eq!(r, Ok(Ended::Closed));
        assert!(started.get());
        // Nothing attached: the session is just the start.
        let r = session().run(None, async { Ok::<(), ()>(()) }, |_, _| async {}).await;
        assert_eq!(r, Ok(Ended::Closed));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn session_reads_frames_until_the_end() {
        // Empty frames, so the test prints nothing.
        let mut data = berth_api::stream::encode_header(StreamType::Stdout, 0).to_vec();
        data.extend(berth_api::stream::encode_header(StreamType::Stderr, 0));
        let conn = AttachConn {
            reader: Box::new(std::io::Cursor::new(data)),
            writer: None,
        };
        let r = session()
            .run(Some(conn), async { Ok::<(), ()>(()) }, |_, _| async {})
            .await;
        assert_eq!(r, Ok(Ended::Closed));
    }
}
