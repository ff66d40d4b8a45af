//! A container's files: the archive API (`docker cp`), `export`, `changes` (`docker diff`) and
//! `commit`.

use crate::{body, encode_component, flag, BodyReader, Client, Error, Query, ReqBody, Result};
use base64::Engine as _;
use hyper::{Method, StatusCode};
use serde::Deserialize;

/// The stat of a path in a container (`X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ContainerPathStat {
    /// Base name of the path.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go `os.FileMode` bits.
    pub mode: u32,
    /// Modification time (RFC 3339).
    pub mtime: String,
    /// Where a symlink leads inside the container.
    #[serde(rename = "linkTarget", default)]
    pub link_target: String,
}

/// Go's `os.ModeDir`.
const MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink`.
const MODE_SYMLINK: u32 = 1 << 27;

impl ContainerPathStat {
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }
}

fn decode_stat(resp: &hyper::Response<hyper::body::Incoming>) -> Result<ContainerPathStat> {
    let bad = |m: String| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, m));
    let raw = resp
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .ok_or_else(|| bad("the daemon sent no X-Docker-Container-Path-Stat header".into()))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|e| bad(format!("unable to decode container path stat header: {e}")))?;
    Ok(serde_json::from_slice(&json)?)
}

fn archive_query(path: &str) -> Query<'static> {
    vec![("path", path.to_string())]
}

impl Client {
    /// `HEAD /containers/{id}/archive`: a HEAD answer has no body, so a 404 is worded here as the
    /// daemon words it.
    pub async fn container_stat_path(&self, id: &str, path: &str) -> Result<ContainerPathStat> {
        let p = format!("/containers/{}/archive", encode_component(id));
        match self
            .request(Method::HEAD, &p, &archive_query(path), body::empty(), None)
            .await
        {
            Ok(resp) => decode_stat(&resp),
            Err(Error::Daemon { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => {
                // Tell a missing container from a missing path.
                self.request_bytes(
                    Method::GET,
                    &format!("/containers/{}/json", encode_component(id)),
                    &Vec::new(),
                    body::empty(),
                    None,
                )
                .await?;
                Err(Error::Daemon {
                    status,
                    message: format!("Could not find the file {path} in container {id}"),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /containers/{id}/archive`: the path's stat and a tar stream of it.
    pub async fn copy_from_container(&self, id: &str, path: &str) -> Result<(ContainerPathStat, BodyReader)> {
        let p = format!("/containers/{}/archive", encode_component(id));
        let resp = self
            .request(Method::GET, &p, &archive_query(path), body::empty(), None)
            .await?;
        let stat = decode_stat(&resp)?;
        Ok((stat, BodyReader::new(resp.into_body())))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into the directory `path`.
    pub async fn copy_to_container(
        &self,
        id: &str,
        path: &str,
        tar: ReqBody,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        let p = format!("/containers/{}/archive", encode_component(id));
        let mut q = archive_query(path);
        q.push(("noOverwriteDirNonDir", flag(no_overwrite_dir_non_dir)));
        q.push(("copyUIDGID", flag(copy_uid_gid)));
        self.request_bytes(Method::PUT, &p, &q, tar, Some("application/x-tar"))
            .await?;
        Ok(())
    }

    /// `GET /containers/{id}/export`: the container's filesystem as a tar stream.
    pub async fn container_export(&self, id: &str) -> Result<BodyReader> {
        let p = format!("/containers/{}/export", encode_component(id));
        let resp = self.request(Method::GET, &p, &Vec::new(), body::empty(), None).await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]` (Kind 0 modified, 1 added, 2 deleted).
    pub async fn container_changes(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        let p = format!("/containers/{}/changes", encode_component(id));
        let v: Option<Vec<serde_json::Value>> = self.json(Method::GET, &p, &Vec::new(), None).await?;
        Ok(v.unwrap_or_default())
    }

    /// `POST /commit`: answers the new image's ID.
    pub async fn container_commit(&self, o: &CommitOptions) -> Result<String> {
        let mut q = vec![("container", o.container.clone()), ("pause", flag(o.pause))];
        if let Some(r) = &o.repo {
            q.push(("repo", r.clone()));
        }
        if let Some(t) = &o.tag {
            q.push(("tag", t.clone()));
        }
        if let Some(m) = &o.comment {
            q.push(("comment", m.clone()));
        }
        if let Some(a) = &o.author {
            q.push(("author", a.clone()));
        }
        for c in &o.changes {
            q.push(("changes", c.clone()));
        }
        let v: serde_json::Value = self.json(Method::POST, "/commit", &q, Some(b"{}".to_vec())).await?;
        Ok(v.get("Id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string())
    }
}

/// Options of [`Client::container_commit`].
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The container.
    pub container: String,
    /// Repository of the new image.
    pub repo: Option<String>,
    /// Its tag.
    pub tag: Option<String>,
    /// Commit message.
    pub comment: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Dockerfile instructions to apply.
    pub changes: Vec<String>,
    /// Pause the container while committing.
    pub pause: bool,
}
