//! A connection to a daemon through `ssh HOST docker system dial-stdio` (docker's `ssh://`
//! connection helper): the child's standard input and output are the two directions of the stream.
//!
//! The child ends with the connection (it is killed when the stream is dropped). When ssh exits
//! before the daemon said anything (a refused login, no `docker` on the remote host), reading gives
//! an error naming the command, its exit status and what it printed on standard error, as docker's
//! helper does, instead of a bare end of stream.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

use crate::host::SshHost;

/// At most this much of ssh's standard error is kept for the error message.
const STDERR_KEEP: usize = 4096;

/// The program run for `ssh://` hosts.
const SSH: &str = "ssh";

/// The stream to the daemon through a running `ssh`.
pub(crate) struct SshConn {
    stdout: ChildStdout,
    stdin: Option<ChildStdin>,
    /// The exit status and standard error of ssh, once it has exited.
    exited: Option<oneshot::Receiver<(io::Result<ExitStatus>, Vec<u8>)>>,
    /// Dropping it (with the stream) kills ssh.
    _kill: oneshot::Sender<()>,
    /// Bytes read so far: an end of stream before any is ssh failing, not the daemon closing.
    read_any: bool,
    command: String,
}

impl SshConn {
    /// Starts `ssh` for `host`.
    pub(crate) fn spawn(host: &SshHost) -> io::Result<SshConn> {
        let args = host.ssh_args();
        let command = format!("{SSH} {}", args.join(" "));
        let mut child = Command::new(SSH)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let hint = match e.kind() {
                    io::ErrorKind::NotFound => ": install OpenSSH's client or put `ssh` on PATH",
                    _ => "",
                };
                io::Error::new(e.kind(), format!("running `{command}`: {e}{hint}"))
            })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(io::Error::other(format!("running `{command}`: its pipes are missing")));
        };
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (exit_tx, exit_rx) = oneshot::channel();
        tokio::spawn(async move {
            let collect = async {
                let mut kept = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    match stderr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = STDERR_KEEP.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                        }
                    }
                }
                kept
            };
            let wait = async {
                let (kept, status) = tokio::join!(collect, child.wait());
                (status, kept)
            };
            tokio::select! {
                done = wait => { let _ = exit_tx.send(done); }
                // The stream was dropped: end ssh (kill_on_drop does it as `child` goes).
                _ = kill_rx => {}
            }
        });
        Ok(SshConn {
            stdout,
            stdin: Some(stdin),
            exited: Some(exit_rx),
            _kill: kill_tx,
            read_any: false,
            command,
        })
    }

    /// A write found ssh gone (`broken`): ssh's failure once it has exited (what it said beats a
    /// broken pipe), else `broken`.
    fn poll_exit_error(&mut self, cx: &mut Context<'_>, broken: io::Error) -> Poll<io::Error> {
        ready!(self.poll_failure(cx))
            .err()
            .map_or(Poll::Ready(broken), Poll::Ready)
    }

    /// At the end of the stream with nothing read: ssh's failure, once it has exited.
    fn poll_failure(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(rx) = self.exited.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let (status, stderr) = match Pin::new(rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(done)) => done,
            Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
        };
        self.exited = None;
        let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
        let how = match status {
            Ok(s) if s.success() => return Poll::Ready(Ok(())),
            Ok(s) => match s.code() {
                Some(c) => format!("exit status {c}"),
                None => "a signal".to_string(),
            },
            Err(e) => e.to_string(),
        };
        Poll::Ready(Err(io::Error::other(format!(
            "command [{}] has exited with {how}, make sure the URL is valid, and Docker 18.09 or later \
             (or berth) is installed on the remote host: stderr={stderr}",
            self.command
        ))))
    }
}

impl AsyncRead for SshConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && !self.read_any => self.poll_failure(cx),
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.read_any = true;
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for SshConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = match self.stdin.as_mut() {
            Some(w) => ready!(Pin::new(w).poll_write(cx, data)),
            None => return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after shutdown"))),
        };
        match written {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.poll_exit_error(cx, e).map(Err),
            other => Poll::Ready(other),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = match self.stdin.as_mut() {
            Some(w) => ready!(Pin::new(w).poll_flush(cx)),
            None => return Poll::Ready(Ok(())),
        };
        match flushed {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.poll_exit_error(cx, e).map(Err),
            other => Poll::Ready(other),
        }
    }

    /// Closes ssh's standard input: the remote dial-stdio half-closes its daemon connection.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(w) = self.stdin.as_mut() {
            ready!(Pin::new(w).poll_flush(cx))?;
        }
        self.stdin = None;
        Poll::Ready(Ok(()))
    }
}
