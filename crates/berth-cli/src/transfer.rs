//! A live line of bytes moved, for `load`, `import`, `save`, `export` and `cp`: on a terminal
//! (stderr), `Loading [=====>     ]  12.3MB/50MB` when the size is known, else
//! `Copying to container - 12.3MB` as docker cp draws it; nothing at all otherwise or with `-q`.

use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use berth_api::ProgressDetail;
use tokio::io::{AsyncRead, ReadBuf};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// A transfer's live line; [`Transfer::finish`] clears it.
pub struct Transfer {
    done: Arc<AtomicU64>,
    drawer: Option<(tokio::task::JoinHandle<()>, tokio::sync::oneshot::Sender<()>)>,
}

/// The line for `done` bytes of `total`.
fn line(label: &str, done: u64, total: Option<u64>, width: usize) -> String {
    match total.filter(|t| *t > 0) {
        Some(total) => {
            let d = ProgressDetail {
                current: Some(done as i64),
                total: Some(total as i64),
            };
            format!("{label} {}", crate::progress::bar(&d, width))
        }
        None => format!("{label} - {}", crate::units::human_size(done as f64)),
    }
}

impl Transfer {
    /// Starts drawing `label` on stderr if it is a terminal and `quiet` is off; `total` is the
    /// size when known.
    pub fn start(label: &str, total: Option<u64>, quiet: bool) -> Transfer {
        let done = Arc::new(AtomicU64::new(0));
        if quiet || !std::io::stderr().is_terminal() {
            return Transfer { done, drawer: None };
        }
        let width = crate::term::size().map(|(_, w)| usize::from(w)).unwrap_or(80);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (label, counter) = (label.to_string(), done.clone());
        let task = tokio::spawn(async move {
            let draw = |n: u64| {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{}", line(&label, n, total, width));
                let _ = err.flush();
            };
            loop {
                draw(counter.load(Ordering::Relaxed));
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = &mut stopped => break,
                }
            }
            draw(counter.load(Ordering::Relaxed));
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        });
        Transfer {
            done,
            drawer: Some((task, stop)),
        }
    }

    /// The byte counter to add to.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    /// Wraps `inner` so what is read from it is counted.
    pub fn reader<R>(&self, inner: R) -> CountingReader<R> {
        CountingReader {
            inner,
            done: self.counter(),
        }
    }

    /// Draws the last count and clears the line.
    pub async fn finish(self) {
        if let Some((task, stop)) = self.drawer {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// An [`AsyncRead`] that counts the bytes read through it.
pub struct CountingReader<R> {
    inner: R,
    done: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = (buf.filled().len() - before) as u64;
            self.done.fetch_add(n, Ordering::Relaxed);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn lines() {
        assert_eq!(
            line("Copying to container", 2560, None, 80),
            "Copying to container - 2.56kB"
        );
        assert_eq!(line("Loading", 1_000_000, Some(4_000_000), 80), "Loading      1MB/4MB");
        let wide = line("Loading", 2_000_000, Some(4_000_000), 120);
        assert!(wide.starts_with("Loading [=========================>"), "{wide}");
    }

    #[tokio::test]
    async fn counts_what_is_read() {
        let t = Transfer::start("x", None, true);
        let mut r = t.reader(&b"hello world"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(t.counter().load(Ordering::Relaxed), 11);
        t.finish().await;
    }
}
