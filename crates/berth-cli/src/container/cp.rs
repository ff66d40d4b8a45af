//! `berth cp`: copies files between a container and the local filesystem with Docker's rules for
//! directories and trailing slashes (`docker cp` reference), `-a` (keep owners), `-L` (follow a
//! symlink source) and `-` (a tar on stdin or stdout).

use crate::args::CpArgs;
use crate::StatusError;
use anyhow::Result;
use berth_client::{body, Client, ContainerPathStat};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// One side of a copy: `CONTAINER:PATH` or a local path (Docker's `splitCpArg`: a path starting
/// with `/` or `.` is local even with a colon in it).
enum Endpoint {
    Container(String, String),
    Local(String),
}

fn split_arg(arg: &str) -> Endpoint {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Endpoint::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => Endpoint::Container(c.to_string(), p.to_string()),
        _ => Endpoint::Local(arg.to_string()),
    }
}

/// The name a path's object is copied as: its last component, `.` for `dir/.` (the contents).
fn base_of(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        None if !trimmed.is_empty() => trimmed.to_string(),
        _ => "/".into(),
    }
}

/// The directory part of a container path (`/` at the top).
fn dir_of(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((d, _)) => d.to_string(),
    }
}

/// `berth cp`.
pub async fn cp(client: &Client, a: CpArgs) -> Result<i32> {
    match (split_arg(&a.src), split_arg(&a.dst)) {
        (Endpoint::Container(c, p), Endpoint::Local(dst)) => from_container(client, &a, &c, &p, &dst).await,
        (Endpoint::Local(src), Endpoint::Container(c, p)) => to_container(client, &a, &src, &c, &p).await,
        (Endpoint::Container(..), Endpoint::Container(..)) => {
            Err(fail("copying between containers is not supported").into())
        }
        (Endpoint::Local(_), Endpoint::Local(_)) => Err(fail("must specify at least one container source").into()),
    }
}

async fn from_container(client: &Client, a: &CpArgs, id: &str, path: &str, dst: &str) -> Result<i32> {
    // The root is asked for as `/.` (its contents, members named `./...`): the same copy.
    let src = match path.trim_end_matches('/') {
        "" => "/.".to_string(),
        _ => path.to_string(),
    };
    if a.follow_link {
        let st = client.container_stat_path(id, &src).await.map_err(fail)?;
        if st.is_symlink() {
            // Copied under the link's name, with its target's content.
            let name = base_of(&src);
            let (stat, mut reader) = client.copy_from_container(id, &st.link_target).await.map_err(fail)?;
            let tar_name = stat.name.clone();
            return extract_local(a, &stat, (&tar_name, &name), &mut reader, dst).await;
        }
    }
    let (stat, mut reader) = client.copy_from_container(id, &src).await.map_err(fail)?;
    if dst == "-" {
        let mut out = tokio::io::stdout();
        tokio::io::copy(&mut reader, &mut out).await.map_err(fail)?;
        out.flush().await.map_err(fail)?;
        return Ok(0);
    }
    let name = base_of(&src);
    extract_local(a, &stat, (&name, &name), &mut reader, dst).await
}

/// Extracts the tar of a container path (members named `names.0/...`, to be copied as `names.1`)
/// at the local `dst`.
async fn extract_local(
    a: &CpArgs,
    stat: &ContainerPathStat,
    (tar_name, name): (&str, &str),
    reader: &mut berth_client::BodyReader,
    dst: &str,
) -> Result<i32> {
    let dst_path = PathBuf::from(dst);
    let (into, rebase): (PathBuf, Option<(OsString, OsString)>) = match std::fs::metadata(&dst_path) {
        Ok(md) if md.is_dir() => (
            dst_path.clone(),
            (tar_name != name).then(|| (tar_name.into(), name.into())),
        ),
        Ok(_) if stat.is_dir() => return Err(fail("cannot copy a directory to a file").into()),
        Ok(_) => (parent_of(&dst_path), Some((tar_name.into(), file_name(&dst_path)))),
        Err(_) => {
            if dst.ends_with('/') && !stat.is_dir() {
                return Err(fail(format!("destination directory {dst} does not exist")).into());
            }
            let parent = parent_of(&dst_path);
            if !parent.is_dir() {
                return Err(fail(format!("destination directory {} does not exist", parent.display())).into());
            }
            if name == "." {
                // The contents of a directory, into a new directory of that name.
                (dst_path.clone(), None)
            } else {
                (parent, Some((tar_name.into(), file_name(&dst_path))))
            }
        }
    };
    let opts = berth_archive::UnpackOptions {
        whiteouts: false,
        preserve_owners: a.archive,
        rebase,
        ..Default::default()
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(fail)?;
    let job = tokio::task::spawn_blocking(move || berth_archive::unpack(std::io::BufReader::new(theirs), &into, &opts));
    ours.set_nonblocking(true).map_err(fail)?;
    let mut w = tokio::net::UnixStream::from_std(ours).map_err(fail)?;
    let transfer = crate::transfer::Transfer::start("Copying from container", None, a.quiet);
    let copied = tokio::io::copy(&mut transfer.reader(reader), &mut w).await;
    drop(w);
    transfer.finish().await;
    let unpacked = job.await.map_err(fail)?;
    unpacked.map_err(fail)?;
    let n = copied.map_err(fail)?;
    if !a.quiet {
        eprintln!("Successfully copied {} to {dst}", crate::units::human_size(n as f64));
    }
    Ok(0)
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(p: &Path) -> OsString {
    p.file_name().map(OsString::from).unwrap_or_else(|| OsString::from("."))
}

async fn to_container(client: &Client, a: &CpArgs, src: &str, id: &str, path: &str) -> Result<i32> {
    let mut dst = if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    };
    if src == "-" {
        // A tar on stdin, extracted into the directory `dst` as it is.
        let tar = body::from_reader(tokio::io::stdin());
        client
            .copy_to_container(id, &dst, tar, true, a.archive)
            .await
            .map_err(fail)?;
        return Ok(0);
    }
    let follow = a.follow_link;
    let src_md = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| fail(format!("lstat {src}: {}", e.to_string().to_lowercase())))?;
    // The destination's stat; a symlink destination is followed inside the container.
    let mut dst_stat = match client.container_stat_path(id, &dst).await {
        Ok(st) => Some(st),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(fail(e).into()),
    };
    if let Some(st) = dst_stat.clone() {
        if st.is_symlink() {
            dst = st.link_target.clone();
            dst_stat = match client.container_stat_path(id, &dst).await {
                Ok(st) => Some(st),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(fail(e).into()),
            };
        }
    }
    let src_base = base_of(src);
    let (into, name) = match &dst_stat {
        Some(st) if st.is_dir() => (dst.clone(), src_base),
        Some(_) if src_md.is_dir() => return Err(fail("cannot copy a directory to a file").into()),
        Some(_) => (dir_of(&dst), base_of(&dst)),
        None => {
            if dst.ends_with('/') && !src_md.is_dir() {
                return Err(fail(format!("destination directory {dst} does not exist")).into());
            }
            (dir_of(&dst), base_of(&dst))
        }
    };
    let fd = open_local(src, follow)?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(fail)?;
    let transfer = crate::transfer::Transfer::start("Copying to container", None, a.quiet);
    let live = transfer.counter();
    let job = tokio::task::spawn_blocking(move || {
        let mut counted = Counting(theirs, 0, live);
        let w = std::io::BufWriter::with_capacity(128 * 1024, &mut counted);
        berth_archive::tar_at(fd, &name, w, berth_archive::TarOptions::default()).map(|()| counted.1)
    });
    ours.set_nonblocking(true).map_err(fail)?;
    let r = tokio::net::UnixStream::from_std(ours).map_err(fail)?;
    let sent = client
        // As the docker CLI: a directory is never replaced by a file or the reverse.
        .copy_to_container(id, &into, body::from_reader(r), true, a.archive)
        .await;
    let tarred = job.await.map_err(fail)?;
    transfer.finish().await;
    sent.map_err(fail)?;
    let n = tarred.map_err(fail)?;
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {id}:{into}",
            crate::units::human_size(n as f64)
        );
    }
    Ok(0)
}

/// A writer that counts what passes through it (also into a live transfer line).
struct Counting<W>(W, u64, std::sync::Arc<std::sync::atomic::AtomicU64>);

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        self.2.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Opens the local source as an `O_PATH` fd (the link itself unless `-L`).
fn open_local(src: &str, follow: bool) -> Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let p = if src.ends_with("/.") {
        src.trim_end_matches('.')
    } else {
        src
    };
    Ok(rustix::fs::open(p, flags, Mode::empty()).map_err(|e| fail(format!("open {src}: {e}")))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_args_as_docker() {
        assert!(matches!(split_arg("c:/x"), Endpoint::Container(c, p) if c == "c" && p == "/x"));
        assert!(matches!(split_arg("/a:b"), Endpoint::Local(_)));
        assert!(matches!(split_arg("./a:b"), Endpoint::Local(_)));
        assert!(matches!(split_arg("file"), Endpoint::Local(_)));
        assert!(matches!(split_arg("-"), Endpoint::Local(_)));
    }

    #[test]
    fn base_and_dir_names() {
        for (p, base, dir) in [
            ("/a/b", "b", "/a"),
            ("/a/b/", "b", "/a"),
            ("/a/b/.", ".", "/a/b"),
            ("/a", "a", "/"),
            ("/", "/", "/"),
            ("rel", "rel", "/"),
        ] {
            assert_eq!(base_of(p), base, "{p}");
            assert_eq!(dir_of(p), dir, "{p}");
        }
    }
}
