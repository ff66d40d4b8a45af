//! The engine's side of the shim control socket (see `berth_shim::protocol`).

use crate::error::{EngineError, Result};
use berth_shim::protocol::{Call, ExitStatus, Request, Response};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

fn shim_err(id: &str, message: impl Into<String>) -> EngineError {
    EngineError::Shim {
        id: id.to_string(),
        message: message.into(),
    }
}

/// Opens a connection, sends `req` and reads the one-line answer. Returns the answer and the stream
/// (positioned right after the answer line, for `attach`).
pub async fn call(id: &str, socket: &Path, req: &Request) -> Result<(Response, BufReader<UnixStream>)> {
    let (resp, stream) = call_raw(id, socket, req).await?;
    if let Some(err) = resp.error.clone() {
        return Err(shim_err(id, err));
    }
    Ok((resp, stream))
}

/// Sends `req` for the exec `exec_id` (`None`: the init) as a [`Call`]; the answer is returned as
/// is, errors included (a failed `exec` carries Docker's exit code beside its message).
pub async fn call_exec(
    id: &str,
    socket: &Path,
    exec_id: Option<&str>,
    request: Request,
) -> Result<(Response, BufReader<UnixStream>)> {
    let call = Call {
        exec_id: exec_id.map(str::to_string),
        request,
    };
    call_raw(id, socket, &call).await
}

/// Waits for the exit of the exec `exec_id`. `None` when the shim went away without saying.
pub async fn wait_exec(id: &str, socket: &Path, exec_id: &str) -> Result<Option<ExitStatus>> {
    let call = Call {
        exec_id: Some(exec_id.to_string()),
        request: Request::Wait,
    };
    wait_for(id, socket, &call).await
}

/// Sends one request line and reads the one-line answer, without judging it.
async fn call_raw<T: serde::Serialize>(id: &str, socket: &Path, req: &T) -> Result<(Response, BufReader<UnixStream>)> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| shim_err(id, format!("connecting to {}: {e}", socket.display())))?;
    let mut stream = BufReader::new(stream);
    let mut line = serde_json::to_vec(req).map_err(|e| shim_err(id, format!("encoding request: {e}")))?;
    line.push(b'\n');
    stream
        .get_mut()
        .write_all(&line)
        .await
        .map_err(|e| shim_err(id, format!("sending request: {e}")))?;
    let mut answer = String::new();
    let n = stream
        .read_line(&mut answer)
        .await
        .map_err(|e| shim_err(id, format!("reading answer: {e}")))?;
    if n == 0 {
        return Err(shim_err(id, "the shim closed the connection without answering"));
    }
    let resp: Response =
        serde_json::from_str(answer.trim_end()).map_err(|e| shim_err(id, format!("bad answer {answer:?}: {e}")))?;
    Ok((resp, stream))
}

/// Sends a simple request and checks the answer.
pub async fn simple(id: &str, socket: &Path, req: Request) -> Result<Response> {
    call(id, socket, &req).await.map(|(r, _)| r)
}

/// Waits for the container's exit. `None` when the shim went away without saying (crashed or killed).
pub async fn wait(id: &str, socket: &Path) -> Result<Option<ExitStatus>> {
    wait_for(id, socket, &Request::Wait).await
}

async fn wait_for<T: serde::Serialize>(id: &str, socket: &Path, req: &T) -> Result<Option<ExitStatus>> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| shim_err(id, format!("connecting to {}: {e}", socket.display())))?;
    let mut stream = BufReader::new(stream);
    let mut line = serde_json::to_vec(req).map_err(|e| shim_err(id, e.to_string()))?;
    line.push(b'\n');
    stream
        .get_mut()
        .write_all(&line)
        .await
        .map_err(|e| shim_err(id, format!("sending wait: {e}")))?;
    let mut answer = String::new();
    match stream.read_line(&mut answer).await {
        Ok(0) | Err(_) => Ok(None),
        Ok(_) => match serde_json::from_str::<ExitStatus>(answer.trim_end()) {
            Ok(st) => Ok(Some(st)),
            Err(_) => Ok(None),
        },
    }
}

/// What a live shim says about its container.
#[derive(Debug, Clone, Copy)]
pub struct ShimState {
    /// The init pid.
    pub pid: Option<i32>,
    /// The init was let exec.
    pub started: bool,
    /// The init still runs (false while a shim finishes after its exit).
    pub running: bool,
}

/// Asks the shim at `socket` for its state; `None` when no shim answers there.
pub async fn state(id: &str, socket: &Path) -> Option<ShimState> {
    if !socket.exists() {
        return None;
    }
    let r = simple(id, socket, Request::State).await.ok()?;
    Some(ShimState {
        pid: r.pid,
        started: r.started.unwrap_or(r.running.unwrap_or(false)),
        running: r.running.unwrap_or(false),
    })
}

/// Kills the container's init and waits (bounded) for the shim to record the exit and go.
pub async fn kill_and_wait(id: &str, socket: &Path) {
    let _ = simple(id, socket, Request::Kill { signal: libc::SIGKILL }).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait(id, socket)).await;
    // The exit is answered before the shim finishes; let it finish (it removes its socket) so a shim
    // started next for the same container owns the socket path alone.
    let gone = async {
        while state(id, socket).await.is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(6), gone).await;
}
