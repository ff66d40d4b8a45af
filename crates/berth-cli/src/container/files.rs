//! `berth export`, `berth diff` and `berth commit`.

use crate::args::{CommitArgs, DiffArgs, ExportArgs};
use crate::StatusError;
use anyhow::Result;
use berth_client::{Client, CommitOptions};
use std::io::IsTerminal;
use tokio::io::AsyncWriteExt;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// `berth export [-o FILE] CONTAINER`.
pub async fn export(client: &Client, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(fail("cowardly refusing to save to a terminal. Use the -o flag or redirect").into());
    }
    let body = client.container_export(&a.container).await.map_err(fail)?;
    let transfer = crate::transfer::Transfer::start("Exporting", None, false);
    let mut body = transfer.reader(body);
    let result = write_export(&mut body, a.output.as_deref()).await;
    transfer.finish().await;
    result
}

async fn write_export<R: tokio::io::AsyncRead + Unpin>(body: &mut R, output: Option<&str>) -> Result<i32> {
    match output {
        Some(path) => {
            // Written next to the target and renamed, so a failed export leaves no partial file.
            let tmp = format!("{path}.berth-tmp");
            let mut f = tokio::fs::File::create(&tmp).await.map_err(fail)?;
            let res = tokio::io::copy(body, &mut f).await;
            if let Err(e) = res {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(fail(e).into());
            }
            f.flush().await.map_err(fail)?;
            tokio::fs::rename(&tmp, path).await.map_err(fail)?;
        }
        None => {
            let mut out = tokio::io::stdout();
            tokio::io::copy(body, &mut out).await.map_err(fail)?;
            out.flush().await.map_err(fail)?;
        }
    }
    Ok(0)
}

/// `berth diff CONTAINER`: `C /etc`, `A /x`, `D /y`.
pub async fn diff(client: &Client, a: DiffArgs) -> Result<i32> {
    let changes = client.container_changes(&a.container).await.map_err(fail)?;
    for c in changes {
        let kind = match c.get("Kind").and_then(serde_json::Value::as_u64) {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        outln!(
            "{kind} {}",
            c.get("Path").and_then(serde_json::Value::as_str).unwrap_or_default()
        );
    }
    Ok(0)
}

/// `berth commit [-a] [-m] [-c]... CONTAINER [REPOSITORY[:TAG]]`: prints the new image's ID.
pub async fn commit(client: &Client, a: CommitArgs) -> Result<i32> {
    let (repo, tag) = match &a.repository {
        None => (None, None),
        Some(r) => {
            // A colon after the last slash separates the tag (a registry port comes before it).
            match r.rfind(':') {
                Some(i) if !r[i..].contains('/') => (Some(r[..i].to_string()), Some(r[i + 1..].to_string())),
                _ => (Some(r.clone()), None),
            }
        }
    };
    let o = CommitOptions {
        container: a.container.clone(),
        repo,
        tag,
        comment: a.message.clone(),
        author: a.author.clone(),
        changes: a.changes.clone(),
        pause: a.pause,
    };
    let id = client.container_commit(&o).await.map_err(fail)?;
    outln!("{id}");
    Ok(0)
}
