//! Safe path resolution: archive member names are cleaned lexically, and every directory on the way to
//! a member is opened relative to its parent with `O_NOFOLLOW | O_DIRECTORY` (openat-style), so a
//! symlink inside the layer can never redirect a write outside the destination.

use crate::error::{io_err, ArchiveError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Lexically cleans an archive member name into normal components. Refuses absolute names and names
/// whose `..` would climb above the archive root. An empty result means the root itself (`./`).
pub fn clean_path(raw: &[u8]) -> Result<Vec<OsString>, String> {
    if raw.is_empty() {
        return Err("empty name".into());
    }
    if raw[0] == b'/' {
        return Err("absolute path".into());
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("path escapes the archive root".into());
                }
            }
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok(out)
}

pub(crate) fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Opens `dest` and walks `comps` below it, one `openat(O_NOFOLLOW|O_DIRECTORY)` at a time, creating
/// missing directories (mode 0755) when `create` is set. A symlink or non-directory anywhere on the way
/// is an error: nothing is ever resolved through a link.
pub(crate) fn open_dir_path(
    root: &OwnedFd,
    comps: &[OsString],
    create: bool,
    entry: &str,
) -> Result<OwnedFd, ArchiveError> {
    open_dir_path_owned(root, comps, create, None, entry)
}

/// [`open_dir_path`], giving directories it creates to `owner` (the mapped root under `--userns-remap`,
/// as moby's `MkdirAllAndChownNew(parent, 0755, rootIDs)`).
pub(crate) fn open_dir_path_owned(
    root: &OwnedFd,
    comps: &[OsString],
    create: bool,
    owner: Option<(u32, u32)>,
    entry: &str,
) -> Result<OwnedFd, ArchiveError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = rustix::io::dup(root).map_err(io_err("open", entry))?;
    for c in comps {
        let next = match rustix::fs::openat(&cur, c.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if create => {
                let created = match rustix::fs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) => true,
                    Err(rustix::io::Errno::EXIST) => false,
                    Err(e) => return Err(io_err("create parent directory for", entry)(e)),
                };
                let fd = rustix::fs::openat(&cur, c.as_os_str(), flags, Mode::empty())
                    .map_err(io_err("open parent directory of", entry))?;
                if let (true, Some((uid, gid))) = (created, owner) {
                    fchown(&fd, uid, gid, entry)?;
                }
                fd
            }
            Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::NOTDIR) => {
                return Err(ArchiveError::Unsafe {
                    entry: entry.to_string(),
                    reason: format!("parent {:?} is a symlink or not a directory", c),
                })
            }
            Err(e) => return Err(io_err("open parent directory of", entry)(e)),
        };
        cur = next;
    }
    Ok(cur)
}

/// Removes whatever is at `name` in `dir` unless it is a directory and `keep_dir` is set.
/// Returns true when a directory was kept.
pub(crate) fn clear_slot(dir: &OwnedFd, name: &OsStr, keep_dir: bool, entry: &str) -> Result<bool, ArchiveError> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(false),
        Err(e) => return Err(io_err("stat", entry)(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if keep_dir {
            return Ok(true);
        }
        remove_tree_at(dir, name, entry)?;
        return Ok(false);
    }
    rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io_err("replace", entry))?;
    Ok(false)
}

/// Removes a directory tree below `dir` without following symlinks.
fn remove_tree_at(dir: &OwnedFd, name: &OsStr, entry: &str) -> Result<(), ArchiveError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let sub = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(io_err("open", entry))?;
    let mut children = Vec::new();
    {
        let mut d = rustix::fs::Dir::read_from(&sub).map_err(io_err("read directory", entry))?;
        while let Some(ent) = d.read() {
            let ent = ent.map_err(io_err("read directory", entry))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                children.push((OsString::from_vec(n.to_vec()), ent.file_type() == FileType::Directory));
            }
        }
    }
    for (child, is_dir) in children {
        if is_dir {
            remove_tree_at(&sub, &child, entry)?;
        } else {
            rustix::fs::unlinkat(&sub, child.as_os_str(), AtFlags::empty()).map_err(io_err("remove", entry))?;
        }
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(io_err("remove directory", entry))
}

/// `dest.join(comps)`.
pub fn join_clean(dest: &Path, comps: &[OsString]) -> PathBuf {
    let mut p = dest.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

/// `fchown` naming the entry on failure.
pub(crate) fn fchown(fd: &OwnedFd, uid: u32, gid: u32, entry: &str) -> Result<(), ArchiveError> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(io_err("set owner of", entry))
}
