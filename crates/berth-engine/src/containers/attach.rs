//! Attach, wait and resize: the calls Docker clients make around a start, and the races they rely on.
//!
//! `docker run` sends `attach` (hijacked) and `wait?condition=next-exit|removed` concurrently with
//! `start`. An attach is registered *before* the API answers 101 ([`ContainerService::prepare_attach`],
//! then [`ContainerService::finish_attach`] in the upgraded task), and a waiter before the API answers
//! 200 ([`ContainerService::prepare_wait`]). A container can start, print and exit before a
//! concurrently sent `wait` arrives: the exit of a run started for attached clients while no
//! `next-exit` waiter was registered stays claimable by one late waiter (10 s), and removed
//! containers leave a tombstone (30 s) for late `removed` waiters.

use super::ContainerService;
use crate::error::{EngineError, Result};
use crate::registry::{Container, PendingAttach, RunEvent};
use crate::shim;
use crate::state::Operation;
use berth_shim::protocol::Request;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::UnixStream;

/// A connection to a container's stdio through its shim: output frames come out, stdin goes in.
pub type AttachStream = BufReader<UnixStream>;

/// A boxed future that is `Send`.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// A registered attach request (see [`ContainerService::prepare_attach`]).
pub enum AttachTicket {
    /// The container runs: connect to its shim now.
    Now {
        /// The container.
        container: Arc<Container>,
        /// Forward stdin.
        stdin: bool,
        /// Send stdout.
        stdout: bool,
        /// Send stderr.
        stderr: bool,
    },
    /// Connected when the container next starts.
    Later(tokio::sync::oneshot::Receiver<Result<AttachStream>>),
}

/// `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return as soon as the container is not running (the default).
    NotRunning,
    /// Wait for the next exit, even if the container is not running now.
    NextExit,
    /// Wait until the container is removed.
    Removed,
}

impl WaitCondition {
    /// Parses the API's condition names.
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::InvalidArgument(format!("invalid condition: \"{other}\""))),
        }
    }

    /// Whether `now` satisfies a waiter that registered when `start` was current.
    fn done(self, start: &RunEvent, now: &RunEvent) -> bool {
        match self {
            WaitCondition::NotRunning => !now.running,
            WaitCondition::NextExit => now.exits > start.exits,
            WaitCondition::Removed => now.removed,
        }
    }
}

/// Decrements the next-exit waiter count when a waiter goes away.
struct WaiterGuard(Option<Arc<Container>>);

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            let mut inner = crate::lock(&c.inner);
            inner.next_exit_waiters = inner.next_exit_waiters.saturating_sub(1);
        }
    }
}

fn ready(code: i64, err: Option<String>) -> BoxFuture<(i64, Option<String>)> {
    Box::pin(async move { (code, err) })
}

impl ContainerService {
    /// `POST /containers/{id}/wait`: registers the waiter now and returns the future of the exit code
    /// and error of the awaited run.
    pub fn prepare_wait(&self, name: &str, condition: WaitCondition) -> Result<BoxFuture<(i64, Option<String>)>> {
        let c = match self.lookup(name) {
            Ok(c) => c,
            Err(EngineError::NoSuchContainer(n)) => {
                return match self.registry.tombstone(&n) {
                    Some((code, err)) => Ok(ready(code, err)),
                    None => Err(EngineError::NoSuchContainer(n)),
                }
            }
            Err(e) => return Err(e),
        };
        let mut rx = c.events.subscribe();
        let start = rx.borrow_and_update().clone();
        if condition == WaitCondition::NextExit && !start.running && start.claimable {
            let recent = start.finished.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
            if recent {
                c.events.send_modify(|e| e.claimable = false);
                return Ok(ready(start.exit_code, start.error));
            }
        }
        let guard = if condition == WaitCondition::NextExit {
            crate::lock(&c.inner).next_exit_waiters += 1;
            WaiterGuard(Some(c.clone()))
        } else {
            WaiterGuard(None)
        };
        Ok(Box::pin(async move {
            let _guard = guard;
            loop {
                let now = rx.borrow_and_update().clone();
                if condition.done(&start, &now) {
                    return (now.exit_code, now.error);
                }
                if rx.changed().await.is_err() {
                    let e = rx.borrow().clone();
                    return (e.exit_code, e.error);
                }
            }
        }))
    }

    /// `POST /containers/{id}/attach`, first half: registers the client now (so a `start` that follows
    /// the response cannot miss it) and returns a ticket and whether the container has a TTY.
    pub fn prepare_attach(&self, name: &str, stdin: bool, stdout: bool, stderr: bool) -> Result<(AttachTicket, bool)> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let tty = rec.config.tty.unwrap_or(false);
        rec.state.status.check(Operation::Attach, &c.id, &rec.name)?;
        self.publish(&c, "attach", &[]);
        let mut inner = crate::lock(&c.inner);
        if !inner.accepting_attaches {
            drop(inner);
            let ticket = AttachTicket::Now {
                container: c,
                stdin,
                stdout,
                stderr,
            };
            return Ok((ticket, tty));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        inner.pending_attaches.push(PendingAttach {
            stdin,
            stdout,
            stderr,
            reply: tx,
        });
        Ok((AttachTicket::Later(rx), tty))
    }

    /// Second half of attach: the stream, once the container runs.
    pub async fn finish_attach(&self, ticket: AttachTicket) -> Result<AttachStream> {
        match ticket {
            AttachTicket::Now {
                container,
                stdin,
                stdout,
                stderr,
            } => self.attach_now(&container, stdin, stdout, stderr).await,
            AttachTicket::Later(rx) => rx
                .await
                .map_err(|_| EngineError::Conflict("the container was removed before it started".into()))?,
        }
    }

    pub(crate) async fn attach_now(
        &self,
        c: &Container,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<AttachStream> {
        let (_, stream) = shim::call(&c.id, &c.socket, &Request::Attach { stdin, stdout, stderr }).await?;
        Ok(stream)
    }

    /// Ends attach requests that wait for a start that will not come.
    pub(crate) fn fail_pending_attaches(&self, c: &Container, msg: &str) {
        let list = std::mem::take(&mut crate::lock(&c.inner).pending_attaches);
        for p in list {
            let _ = p.reply.send(Err(EngineError::Conflict(msg.to_string())));
        }
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let c = self.lookup(name)?;
        c.status().check(Operation::Resize, &c.id, name)?;
        shim::simple(&c.id, &c.socket, Request::Resize { height, width })
            .await
            .map(|_| ())
    }
}
