//! Attaching the terminal to a container, shared by `run`, `start -a` and `attach`: the hijacked
//! attach connection, the wait that yields the exit status (registered before the start, so a
//! fast container cannot exit unseen), `--sig-proxy`, and the [`AttachSession`] on top.

use berth_client::{AttachOptions, Client, Error};
use tokio::task::JoinHandle;

use crate::attach::{self, AttachSession, Ended};
use crate::{prog, StatusError};

/// The outcome of a wait: the exit code and the daemon's error text, if any.
type WaitResult = Result<(i64, Option<String>), Error>;

/// What a command attaches to a container, and how.
pub struct ContainerAttach<'a> {
    /// The daemon.
    pub client: &'a Client,
    /// The container's full id.
    pub id: &'a str,
    /// The streams to attach; none at all means no attach connection (`run -a` with nothing).
    pub streams: AttachOptions,
    /// The terminal side.
    pub session: AttachSession,
    /// The wait condition that yields the exit status: `next-exit`, `removed` or `not-running`.
    pub wait: &'static str,
    /// Forward the CLI's signals to the container (`--sig-proxy`; never done with a TTY).
    pub sig_proxy: bool,
}

/// Why an attached container command failed; each command words these its own way.
#[derive(Debug)]
pub enum AttachError {
    /// The attach request failed.
    Attach(Error),
    /// The container did not start.
    Start(Error),
    /// The exit status could not be read (Docker exits 125).
    Status(StatusError),
}

impl ContainerAttach<'_> {
    /// Attaches, registers the wait, starts the container when `start` is set (`run`,
    /// `start -a`), runs the session, and returns the container's exit code (0 when the user
    /// detached).
    pub async fn run(self, start: bool) -> Result<i32, AttachError> {
        let ContainerAttach {
            client,
            id,
            streams,
            session,
            wait,
            sig_proxy,
        } = self;
        if sig_proxy && !session.tty {
            attach::forward_signals(client.clone(), id.to_string());
        }
        let conn = if streams.stdin || streams.stdout || streams.stderr {
            Some(
                client
                    .container_attach(id, streams)
                    .await
                    .map_err(AttachError::Attach)?,
            )
        } else {
            None
        };
        let waiter = register_wait(client, id, wait).await;
        let start_container = async {
            if start {
                client.container_start(id).await?;
            }
            Ok::<(), Error>(())
        };
        let resize = {
            let client = client.clone();
            let id = id.to_string();
            move |h: u16, w: u16| {
                let client = client.clone();
                let id = id.clone();
                async move {
                    let _ = client.container_resize(&id, h, w).await;
                }
            }
        };
        match session.run(conn, start_container, resize).await {
            Err(e) => {
                waiter.abort();
                Err(AttachError::Start(e))
            }
            Ok(Ended::Detached) => Ok(0),
            Ok(Ended::Closed) => exit_status(waiter).await.map_err(AttachError::Status),
        }
    }
}

/// Registers a wait for `condition` and returns once the daemon has acknowledged it (or after a
/// short grace period, for daemons that only answer at exit), with a handle for the result.
pub async fn register_wait(client: &Client, id: &str, condition: &'static str) -> JoinHandle<WaitResult> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let c = client.clone();
    let id = id.to_string();
    let handle = tokio::spawn(async move {
        let resp = c.container_wait(&id, condition).await;
        let _ = tx.send(());
        Client::wait_result(resp?).await
    });
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), rx).await;
    handle
}

/// The exit code a wait yielded; the daemon's error (a failed exec, say) is printed as Docker does.
async fn exit_status(waiter: JoinHandle<WaitResult>) -> Result<i32, StatusError> {
    match waiter.await {
        Ok(Ok((code, err))) => {
            if let Some(e) = err {
                eprintln!("{}: {e}", prog());
            }
            // An exit code is 0..=255; a status beyond i32 is no exit code at all.
            Ok(i32::try_from(code).unwrap_or(125))
        }
        Ok(Err(e)) => Err(StatusError::new(125, e.to_string())),
        Err(e) => Err(StatusError::new(125, e.to_string())),
    }
}
