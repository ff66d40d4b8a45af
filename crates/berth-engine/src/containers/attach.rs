//! Attach, wait and resize: the calls Docker clients make around a start, and the races they rely on.
//!
//! `docker run` sends `attach` (hijacked) and `wait?condition=next-exit|removed` concurrently with
//! `start`. An attach is registered *before* the API answers 101 ([`ContainerService::prepare_attach`],
//! then [`ContainerService::finish_attach`] in the upgraded task), and a waiter before the API answers
//! 200 ([`ContainerService::prepare_wait`]). A container can start, print and exit before a
//! concurrently sent `wait` arrives: the exit of a run started for attached clients while no
//! `next-exit` waiter was registered stays claimable by one late waiter (10 s), and removed
//! containers leave a tombstone (30 s) for late `removed` waiters.

use super::runs::ready;
use super::ContainerService;
use crate::error::{EngineError, Result};
use crate::registry::Container;
use crate::shim;
use crate::state::Operation;
use berth_shim::protocol::Request;
use std::sync::Arc;
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
        Ok(c.waiter(condition))
    }

    /// `POST /containers/{id}/attach`, first half: registers the client now (so a `start` that follows
    /// the response cannot miss it) and returns a ticket and whether the container has a TTY.
    pub fn prepare_attach(&self, name: &str, stdin: bool, stdout: bool, stderr: bool) -> Result<(AttachTicket, bool)> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let tty = rec.config.tty.unwrap_or(false);
        rec.state.status.check(Operation::Attach, &c.id, &rec.name)?;
        self.publish(&c, "attach", &[]);
        match c.register_attach(stdin, stdout, stderr) {
            Some(rx) => Ok((AttachTicket::Later(rx), tty)),
            None => Ok((
                AttachTicket::Now {
                    container: c,
                    stdin,
                    stdout,
                    stderr,
                },
                tty,
            )),
        }
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
