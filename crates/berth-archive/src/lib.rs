//! Safe tar handling shared by import, load, save and export.
//!
//! Public API:
//! - [`unpack_layer`]`(reader: impl Read, dest: &Path) -> Result<UnpackStats, ArchiveError>`: unpacks one
//!   *uncompressed* layer tar into `dest` (an overlay lower dir), converting whiteouts to overlayfs form.
//! - [`unpack`]`(reader, dest, &UnpackOptions)`: the same with options (`whiteouts: false` writes `.wh.`
//!   files verbatim, for plain archives such as a `docker load` tarball).
//! - [`decompress`]`(reader) -> Result<Box<dyn Read + Send>, ArchiveError>`: sniffs gzip / zstd / plain
//!   tar (xz and bzip2 are recognised and refused with a clear error; zstd needs the default `zstd` feature).
//! - [`layer_from_dir`]`(upper: &Path, writer: impl Write) -> Result<(), ArchiveError>`: the reverse, an
//!   overlay upper dir to a layer tar (overlay whiteouts become `.wh.` entries).
//! - [`layer_from_dir_idmap`]`(upper, writer, Option<&IdentityMapping>)`: the same for a `--userns-remap`
//!   daemon: host owners are shifted back to container ids, so the layer is a normal one.
//!
//! `UnpackOptions::id_map` (for `--userns-remap`) shifts every owner into the host range (container id
//! `u` becomes the mapped host id; an id outside the mapping is an error naming the entry, as moby's
//! `idtools`); directories created implicitly and the destination itself belong to the mapped root.
//! - [`DigestReader`]: a reader that sha256-hashes and counts what passes through it.
//! - [`clean_path`]: lexical cleaning of an archive member name, refusing absolute and escaping paths.
//!
//! Writes never follow symlinks: every parent directory is opened relative to its parent with
//! `O_NOFOLLOW | O_DIRECTORY` (openat-style resolution), so a symlink inside the layer cannot redirect a
//! write outside `dest`.

use berth_types::{Digest, ErrorKind, HasErrorKind, IdentityMapping, UsernsError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use sha2::Digest as _;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The largest size a single entry may claim. Real layers have no file near this; a header claiming
/// more is hostile or corrupt, and refusing it early avoids streaming until the disk is full.
pub const MAX_ENTRY_SIZE: u64 = 256 << 30;

/// The overlayfs xattr marking a directory opaque (hides lower layers' contents).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The AUFS-style whiteout prefix used in layer tars (OCI image spec, layer.md).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-directory marker file in layer tars.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Errors from reading or writing archives. Each names the archive member concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A filesystem operation failed while writing `entry`.
    #[error("failed to {op} {entry:?}: {source}")]
    Io {
        /// What was attempted (`create file`, `set owner of`, ...).
        op: &'static str,
        /// The archive member (or file) concerned.
        entry: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The member would write outside the destination or is otherwise unsafe.
    #[error("refusing archive entry {entry:?}: {reason}")]
    Unsafe {
        /// The archive member.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The member's data ended before the size its header claims.
    #[error("archive truncated in entry {entry:?}: header claims {expected} bytes, found {got}")]
    Truncated {
        /// The archive member.
        entry: String,
        /// Size from the header.
        expected: u64,
        /// Bytes actually present.
        got: u64,
    },
    /// The header claims an absurd size.
    #[error("archive entry {entry:?} claims {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// The archive member.
        entry: String,
        /// Size from the header.
        size: u64,
        /// [`MAX_ENTRY_SIZE`].
        max: u64,
    },
    /// The tar stream itself is corrupt (bad checksum, truncated header, ...).
    #[error("malformed tar archive near entry {after:?}: {source}")]
    Malformed {
        /// The member being read, or the last one read successfully (empty at the start).
        after: String,
        /// The parser's error.
        #[source]
        source: io::Error,
    },
    /// The stream uses a compression we do not read.
    #[error("unsupported compression: {0}")]
    UnsupportedCompression(&'static str),
    /// Reading the input failed.
    #[error("failed to read archive: {0}")]
    Read(#[source] io::Error),
    /// An owner outside the `--userns-remap` mapping.
    #[error("cannot map the owner of archive entry {entry:?}: {source}")]
    IdMap {
        /// The archive member (or file) concerned.
        entry: String,
        /// Which id could not be mapped.
        #[source]
        source: UsernsError,
    },
    /// Writing an archive failed.
    #[error("failed to write archive entry {entry:?}: {source}")]
    Write {
        /// The member being written.
        entry: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl HasErrorKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Io { .. } | ArchiveError::Write { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// What [`unpack_layer`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Archive members processed.
    pub entries: u64,
    /// Bytes of regular file data written (hard links counted once), i.e. the layer's disk usage.
    pub size: u64,
}

/// Options for [`unpack`].
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Convert `.wh.` members to overlay whiteouts (true for image layers).
    pub whiteouts: bool,
    /// Keep the owners recorded in the archive (needs root); otherwise files belong to the caller.
    pub preserve_owners: bool,
    /// `--userns-remap`: shift owners from container ids to host ids (with `preserve_owners`).
    pub id_map: Option<IdentityMapping>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            whiteouts: true,
            preserve_owners: true,
            id_map: None,
        }
    }
}

/// Unpacks one uncompressed layer tar into `dest` (created if missing) for use as an overlay lower dir.
/// On error `dest` may hold part of the layer: the caller unpacks into a temporary dir and removes it.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats, ArchiveError> {
    unpack(reader, dest, &UnpackOptions::default())
}

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

fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn io_err<'a>(op: &'static str, entry: &'a str) -> impl FnOnce(rustix::io::Errno) -> ArchiveError + 'a {
    move |e| ArchiveError::Io {
        op,
        entry: entry.to_string(),
        source: e.into(),
    }
}

/// A directory whose metadata is applied after everything below it has been written (creating
/// children changes a directory's mtime).
struct PendingDir {
    comps: Vec<OsString>,
    mtime: i64,
}

/// Opens `dest` and walks `comps` below it, one `openat(O_NOFOLLOW|O_DIRECTORY)` at a time, creating
/// missing directories (mode 0755) when `create` is set. A symlink or non-directory anywhere on the way
/// is an error: nothing is ever resolved through a link.
fn open_dir_path(root: &OwnedFd, comps: &[OsString], create: bool, entry: &str) -> Result<OwnedFd, ArchiveError> {
    open_dir_path_owned(root, comps, create, None, entry)
}

/// [`open_dir_path`], giving directories it creates to `owner` (the mapped root under `--userns-remap`,
/// as moby's `MkdirAllAndChownNew(parent, 0755, rootIDs)`).
fn open_dir_path_owned(
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
fn clear_slot(dir: &OwnedFd, name: &OsStr, keep_dir: bool, entry: &str) -> Result<bool, ArchiveError> {
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

fn fchown(fd: &OwnedFd, uid: u32, gid: u32, entry: &str) -> Result<(), ArchiveError> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(io_err("set owner of", entry))
}

fn chown_nofollow(dir: &OwnedFd, name: &OsStr, uid: u32, gid: u32, entry: &str) -> Result<(), ArchiveError> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(io_err("set owner of", entry))
}

/// A tar header's owner, shifted to host ids when remapping. Ids beyond 32 bits cannot be represented
/// on Linux at all and are refused like unmappable ones.
fn host_owner(uid: u64, gid: u64, map: Option<&IdentityMapping>, entry: &str) -> Result<(u32, u32), ArchiveError> {
    let too_big = |kind: &'static str, id: u64| ArchiveError::Unsafe {
        entry: entry.to_string(),
        reason: format!("{kind} {id} does not fit 32 bits"),
    };
    let uid = u32::try_from(uid).map_err(|_| too_big("uid", uid))?;
    let gid = u32::try_from(gid).map_err(|_| too_big("gid", gid))?;
    match map {
        None => Ok((uid, gid)),
        Some(m) => m.to_host(uid, gid).map_err(|source| ArchiveError::IdMap {
            entry: entry.to_string(),
            source,
        }),
    }
}

fn ts(secs: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn set_xattrs(fd: &OwnedFd, xattrs: &[(String, Vec<u8>)], entry: &str) -> Result<(), ArchiveError> {
    for (name, value) in xattrs {
        match rustix::fs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty()) {
            Ok(()) => {}
            // Filesystems without xattr support (or a namespace they refuse) lose the attribute, as
            // with Docker's unpacker; anything else is a real failure.
            Err(rustix::io::Errno::OPNOTSUPP) => {}
            Err(e) => return Err(io_err("set extended attribute on", entry)(e)),
        }
    }
    Ok(())
}

/// Copies an entry's data, telling a damaged archive (read side) from a failing disk (write side).
fn copy_entry(r: &mut impl Read, w: &mut impl Write, name: &str) -> Result<u64, ArchiveError> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ArchiveError::Malformed {
                    after: name.to_string(),
                    source,
                })
            }
        };
        w.write_all(&buf[..n]).map_err(|source| ArchiveError::Io {
            op: "write file",
            entry: name.to_string(),
            source,
        })?;
        total += n as u64;
    }
}

/// Unpacks a tar into `dest` with the given options. See [`unpack_layer`].
pub fn unpack(reader: impl Read, dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats, ArchiveError> {
    let dest_s = dest.display().to_string();
    std::fs::create_dir_all(dest).map_err(|e| ArchiveError::Io {
        op: "create",
        entry: dest_s.clone(),
        source: e,
    })?;
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("open", &dest_s))?;
    let id_map = opts.id_map.as_ref().filter(|m| !m.is_empty());
    // Under `--userns-remap` the layer root and every directory the archive implies belong to the
    // container's root, so it can write where the image's root could.
    let root_owner = match id_map {
        Some(m) => {
            let pair = m.root_pair().map_err(|source| ArchiveError::IdMap {
                entry: dest_s.clone(),
                source,
            })?;
            fchown(&root, pair.0, pair.1, &dest_s)?;
            Some(pair)
        }
        None => None,
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_ignore_zeros(false);
    let mut stats = UnpackStats::default();
    let mut pending_dirs: Vec<PendingDir> = Vec::new();
    let mut last = String::new();
    let entries = archive.entries().map_err(ArchiveError::Read)?;
    for item in entries {
        let mut e = item.map_err(|source| ArchiveError::Malformed {
            after: last.clone(),
            source,
        })?;
        let raw = e.path_bytes().into_owned();
        let name = display(&raw);
        last = name.clone();
        stats.entries += 1;
        let comps = clean_path(&raw).map_err(|reason| ArchiveError::Unsafe {
            entry: name.clone(),
            reason,
        })?;
        let hdr = e.header().clone();
        let etype = hdr.entry_type();
        let mode = hdr.mode().unwrap_or(0o644) & 0o7777;
        let uid = hdr.uid().unwrap_or(0);
        let gid = hdr.gid().unwrap_or(0);
        let mtime = hdr.mtime().unwrap_or(0) as i64;
        let size = e.size();
        if size > MAX_ENTRY_SIZE {
            return Err(ArchiveError::TooLarge {
                entry: name,
                size,
                max: MAX_ENTRY_SIZE,
            });
        }
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(|source| ArchiveError::Malformed {
            after: name.clone(),
            source,
        })? {
            for ext in exts {
                let ext = ext.map_err(|source| ArchiveError::Malformed {
                    after: name.clone(),
                    source,
                })?;
                if let Ok(key) = ext.key() {
                    if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                        xattrs.push((x.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        let Some((base, parents)) = comps.split_last() else {
            // `./` itself: the root directory's metadata is the snapshot's, nothing to write.
            continue;
        };
        if matches!(etype, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        let parent = open_dir_path_owned(&root, parents, true, root_owner, &name)?;
        // The owner to give this entry, already shifted (None: leave the caller's).
        let ids = if opts.preserve_owners {
            Some(host_owner(uid, gid, id_map, &name)?)
        } else {
            None
        };
        let owner = |fd: &OwnedFd| -> Result<(), ArchiveError> {
            match ids {
                Some((u, g)) => fchown(fd, u, g, &name),
                None => Ok(()),
            }
        };

        let base_bytes = base.as_bytes();
        if opts.whiteouts && base_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            if base_bytes == OPAQUE_WHITEOUT.as_bytes() {
                rustix::fs::fsetxattr(&parent, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(io_err("mark opaque the directory of", &name))?;
            } else if base_bytes.starts_with(b".wh..wh.") {
                // AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless to overlay.
            } else {
                let target = OsStr::from_bytes(&base_bytes[WHITEOUT_PREFIX.len()..]);
                if target.is_empty() || target == "." || target == ".." {
                    return Err(ArchiveError::Unsafe {
                        entry: name,
                        reason: "whiteout without a valid name".into(),
                    });
                }
                clear_slot(&parent, target, false, &name)?;
                rustix::fs::mknodat(
                    &parent,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(io_err("create whiteout for", &name))?;
                // Owned like the `.wh.` member, as moby's overlay whiteout converter does (the kernel
                // ignores a whiteout's owner, but a remapped layer then holds no unmappable inode).
                if let Some((u, g)) = ids {
                    chown_nofollow(&parent, target, u, g, &name)?;
                }
            }
            continue;
        }

        match etype {
            tar::EntryType::Directory => {
                let kept = clear_slot(&parent, base, true, &name)?;
                if !kept {
                    rustix::fs::mkdirat(&parent, base.as_os_str(), Mode::from_raw_mode(0o700))
                        .map_err(io_err("create directory", &name))?;
                }
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&parent, base.as_os_str(), flags, Mode::empty())
                    .map_err(io_err("open directory", &name))?;
                owner(&fd)?;
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err("set mode of", &name))?;
                set_xattrs(&fd, &xattrs, &name)?;
                pending_dirs.push(PendingDir {
                    comps: comps.clone(),
                    mtime,
                });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                clear_slot(&parent, base, false, &name)?;
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&parent, base.as_os_str(), flags, Mode::from_raw_mode(0o600))
                    .map_err(io_err("create file", &name))?;
                let mut file = std::fs::File::from(fd);
                let got = copy_entry(&mut (&mut e).take(size), &mut file, &name)?;
                if got != size {
                    return Err(ArchiveError::Truncated {
                        entry: name,
                        expected: size,
                        got,
                    });
                }
                stats.size += size;
                let fd = OwnedFd::from(file);
                owner(&fd)?;
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err("set mode of", &name))?;
                set_xattrs(&fd, &xattrs, &name)?;
                rustix::fs::futimens(&fd, &ts(mtime)).map_err(io_err("set times of", &name))?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| ArchiveError::Unsafe {
                        entry: name.clone(),
                        reason: "symlink without target".into(),
                    })?
                    .into_owned();
                clear_slot(&parent, base, false, &name)?;
                // Created as-is: a symlink may point anywhere, it is never followed while unpacking.
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, base.as_os_str())
                    .map_err(io_err("create symlink", &name))?;
                if let Some((u, g)) = ids {
                    chown_nofollow(&parent, base.as_os_str(), u, g, &name)?;
                }
                rustix::fs::utimensat(&parent, base.as_os_str(), &ts(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("set times of", &name))?;
            }
            tar::EntryType::Link => {
                let target_raw = e
                    .link_name_bytes()
                    .ok_or_else(|| ArchiveError::Unsafe {
                        entry: name.clone(),
                        reason: "hard link without target".into(),
                    })?
                    .into_owned();
                let tcomps = clean_path(&target_raw).map_err(|reason| ArchiveError::Unsafe {
                    entry: name.clone(),
                    reason: format!("hard link target {:?}: {reason}", display(&target_raw)),
                })?;
                let Some((tbase, tparents)) = tcomps.split_last() else {
                    return Err(ArchiveError::Unsafe {
                        entry: name,
                        reason: "hard link to the root directory".into(),
                    });
                };
                let tparent = open_dir_path(&root, tparents, false, &name)?;
                if tcomps == comps {
                    continue;
                }
                clear_slot(&parent, base, false, &name)?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself, never its target.
                rustix::fs::linkat(&tparent, tbase.as_os_str(), &parent, base.as_os_str(), AtFlags::empty()).map_err(
                    |err| ArchiveError::Io {
                        op: "create hard link",
                        entry: format!("{name} -> {}", display(&target_raw)),
                        source: err.into(),
                    },
                )?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match etype {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = hdr.device_major().ok().flatten().unwrap_or(0);
                let minor = hdr.device_minor().ok().flatten().unwrap_or(0);
                clear_slot(&parent, base, false, &name)?;
                rustix::fs::mknodat(
                    &parent,
                    base.as_os_str(),
                    ft,
                    Mode::from_raw_mode(mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(io_err("create device node", &name))?;
                if let Some((u, g)) = ids {
                    chown_nofollow(&parent, base.as_os_str(), u, g, &name)?;
                }
                rustix::fs::chmodat(&parent, base.as_os_str(), Mode::from_raw_mode(mode), AtFlags::empty())
                    .map_err(io_err("set mode of", &name))?;
                rustix::fs::utimensat(&parent, base.as_os_str(), &ts(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("set times of", &name))?;
            }
            // Volume labels and other exotic GNU types carry no file.
            _ => {}
        }
    }
    for d in pending_dirs.iter().rev() {
        let entry = d
            .comps
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        // A later member may have replaced the directory (with a file, say): nothing to restore then.
        let Ok(fd) = open_dir_path(&root, &d.comps, false, &entry) else {
            continue;
        };
        rustix::fs::futimens(&fd, &ts(d.mtime)).map_err(io_err("set times of", &entry))?;
    }
    Ok(stats)
}

/// Sniffs the stream and returns a reader of the uncompressed tar: gzip, zstd (feature `zstd`, on by
/// default) or plain.
pub fn decompress<'a, R: Read + Send + 'a>(reader: R) -> Result<Box<dyn Read + Send + 'a>, ArchiveError> {
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf.fill_buf().map_err(ArchiveError::Read)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buf)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        #[cfg(feature = "zstd")]
        return Ok(Box::new(zstd::ZstdReader::new(buf)));
        #[cfg(not(feature = "zstd"))]
        return Err(ArchiveError::UnsupportedCompression("zstd"));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Err(ArchiveError::UnsupportedCompression("xz"));
    }
    if head.starts_with(b"BZh") {
        return Err(ArchiveError::UnsupportedCompression("bzip2"));
    }
    Ok(Box::new(buf))
}

/// A reader that computes the sha256 digest and byte count of everything read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: Read> DigestReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (so the digest covers all of it) and returns digest and size.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let hex = hex::encode(self.hasher.finalize());
        let d = Digest::from_sha256_hex(&hex).map_err(io::Error::other)?;
        Ok((d, self.count))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn lgetxattr_vec(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

fn xattrs_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else { continue };
        // Overlay's own bookkeeping never goes into a layer (opaque dirs become `.wh..wh..opq`).
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(v) = lgetxattr_vec(path, name) {
            out.push((name.to_string(), v));
        }
    }
    out
}

struct LayerWriter<'m, W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), String>,
    id_map: Option<&'m IdentityMapping>,
}

impl<W: Write> LayerWriter<'_, W> {
    fn header(&self, md: &std::fs::Metadata, kind: tar::EntryType, name: &str) -> Result<tar::Header, ArchiveError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(md.mode() & 0o7777);
        let (uid, gid) = match self.id_map {
            Some(m) => m
                .to_container(md.uid(), md.gid())
                .map_err(|source| ArchiveError::IdMap {
                    entry: name.to_string(),
                    source,
                })?,
            None => (md.uid(), md.gid()),
        };
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        Ok(h)
    }

    /// A whiteout's header: the kernel creates overlay whiteouts with the mounter's (host) ids, which
    /// moby leaves unmapped; a remapped layer records them as root.
    fn whiteout_header(&self, md: &std::fs::Metadata) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        let (uid, gid) = match self.id_map {
            Some(m) => m.to_container(md.uid(), md.gid()).unwrap_or((0, 0)),
            None => (md.uid(), md.gid()),
        };
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    fn write_xattrs(&mut self, path: &Path, name: &str) -> Result<(), ArchiveError> {
        let xs = xattrs_of(path);
        if xs.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, Vec<u8>)> = xs.into_iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v)).collect();
        self.builder
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(|source| ArchiveError::Write {
                entry: name.to_string(),
                source,
            })
    }

    fn walk(&mut self, dir: &Path, rel: &str) -> Result<(), ArchiveError> {
        let rd = std::fs::read_dir(dir).map_err(|source| ArchiveError::Io {
            op: "read directory",
            entry: rel.into(),
            source,
        })?;
        let mut names: Vec<OsString> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|source| ArchiveError::Io {
                op: "read directory",
                entry: rel.into(),
                source,
            })?;
            names.push(ent.file_name());
        }
        names.sort();
        for n in names {
            let path = dir.join(&n);
            let name = format!("{rel}{}", n.to_string_lossy());
            let werr = |source: io::Error| ArchiveError::Write {
                entry: name.clone(),
                source,
            };
            let md = std::fs::symlink_metadata(&path).map_err(|source| ArchiveError::Io {
                op: "stat",
                entry: name.clone(),
                source,
            })?;
            let ft = md.file_type();
            if ft.is_char_device() && md.rdev() == 0 {
                // Overlay whiteout -> `.wh.<name>` (OCI image spec, layer.md "Whiteouts").
                let wh = format!("{rel}{WHITEOUT_PREFIX}{}", n.to_string_lossy());
                let mut h = self.whiteout_header(&md);
                self.builder.append_data(&mut h, &wh, io::empty()).map_err(werr)?;
            } else if ft.is_dir() {
                let mut h = self.header(&md, tar::EntryType::Directory, &name)?;
                self.write_xattrs(&path, &name)?;
                self.builder
                    .append_data(&mut h, format!("{name}/"), io::empty())
                    .map_err(werr)?;
                if lgetxattr_vec(&path, OPAQUE_XATTR).as_deref() == Some(b"y") {
                    let mut oh = self.whiteout_header(&md);
                    self.builder
                        .append_data(&mut oh, format!("{name}/{OPAQUE_WHITEOUT}"), io::empty())
                        .map_err(werr)?;
                }
                self.walk(&path, &format!("{name}/"))?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|source| ArchiveError::Io {
                    op: "read symlink",
                    entry: name.clone(),
                    source,
                })?;
                let mut h = self.header(&md, tar::EntryType::Symlink, &name)?;
                self.builder.append_link(&mut h, &name, &target).map_err(werr)?;
            } else if ft.is_file() {
                if md.nlink() > 1 {
                    if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                        let mut h = self.header(&md, tar::EntryType::Link, &name)?;
                        let first = first.clone();
                        self.builder.append_link(&mut h, &name, &first).map_err(werr)?;
                        continue;
                    }
                    self.links.insert((md.dev(), md.ino()), name.clone());
                }
                let f = std::fs::File::open(&path).map_err(|source| ArchiveError::Io {
                    op: "open",
                    entry: name.clone(),
                    source,
                })?;
                let mut h = self.header(&md, tar::EntryType::Regular, &name)?;
                h.set_size(md.len());
                self.write_xattrs(&path, &name)?;
                self.builder
                    .append_data(&mut h, &name, f.take(md.len()))
                    .map_err(werr)?;
            } else {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else {
                    // Sockets cannot be archived; Docker skips them too.
                    continue;
                };
                let mut h = self.header(&md, kind, &name)?;
                let dev = md.rdev();
                h.set_device_major(rustix::fs::major(dev)).map_err(werr)?;
                h.set_device_minor(rustix::fs::minor(dev)).map_err(werr)?;
                self.builder.append_data(&mut h, &name, io::empty()).map_err(werr)?;
            }
        }
        Ok(())
    }
}

/// Writes the contents of an overlay upper dir as a layer tar: overlay whiteouts (char 0/0) become
/// `.wh.<name>`, opaque directories get a `.wh..wh..opq` member, hard links are kept.
pub fn layer_from_dir(upper: &Path, writer: impl Write) -> Result<(), ArchiveError> {
    layer_from_dir_idmap(upper, writer, None)
}

/// [`layer_from_dir`] for a `--userns-remap` daemon: owners are shifted back from host to container ids
/// (moby's `TarOptions.IDMap`); a file whose owner is outside the mapping is an error naming it.
pub fn layer_from_dir_idmap(
    upper: &Path,
    writer: impl Write,
    id_map: Option<&IdentityMapping>,
) -> Result<(), ArchiveError> {
    let mut lw = LayerWriter {
        builder: tar::Builder::new(writer),
        links: HashMap::new(),
        id_map: id_map.filter(|m| !m.is_empty()),
    };
    lw.builder.follow_symlinks(false);
    lw.walk(upper, "")?;
    lw.builder.into_inner().map_err(|source| ArchiveError::Write {
        entry: "end of archive".into(),
        source,
    })?;
    Ok(())
}

/// `dest.join(comps)`.
pub fn join_clean(dest: &Path, comps: &[OsString]) -> PathBuf {
    let mut p = dest.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

#[cfg(feature = "zstd")]
mod zstd {
    //! A zstd reader for whole streams: ruzstd's `StreamingDecoder` reads one frame, layers may hold
    //! several (and skippable frames, as zstd:chunked writes).
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
    use std::io::{self, BufRead, Read};

    pub(crate) struct ZstdReader<R> {
        src: R,
        dec: FrameDecoder,
        in_frame: bool,
    }

    impl<R: BufRead> ZstdReader<R> {
        pub(crate) fn new(src: R) -> Self {
            ZstdReader {
                src,
                dec: FrameDecoder::new(),
                in_frame: false,
            }
        }
    }

    impl<R: BufRead> Read for ZstdReader<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if buf.is_empty() {
                return Ok(0);
            }
            loop {
                if !self.in_frame {
                    if self.src.fill_buf()?.is_empty() {
                        return Ok(0);
                    }
                    match self.dec.reset(&mut self.src) {
                        Ok(()) => self.in_frame = true,
                        Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                            length,
                            ..
                        })) => {
                            let skipped = io::copy(&mut (&mut self.src).take(length as u64), &mut io::sink())?;
                            if skipped != length as u64 {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "truncated zstd skippable frame",
                                ));
                            }
                        }
                        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                    }
                    continue;
                }
                while self.dec.can_collect() < buf.len() && !self.dec.is_finished() {
                    let want = buf.len() - self.dec.can_collect();
                    self.dec
                        .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(want))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
                let n = self.dec.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if self.dec.is_finished() {
                    self.in_frame = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
