//! Unpacking a tar into a directory: layer entries, whiteouts (to overlay form), xattrs, hard links,
//! owners (shifted for `--userns-remap`), modes and mtimes.

use crate::error::{io_err, ArchiveError, MAX_ENTRY_SIZE};
use crate::path::{clean_path, clear_slot, display, fchown, open_dir_path, open_dir_path_owned};
use crate::{OPAQUE_WHITEOUT, OPAQUE_XATTR, WHITEOUT_PREFIX};
use berth_types::IdentityMapping;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
    /// Refuse to replace a directory with a non-directory or the reverse (the archive API's
    /// `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Renames a member whose first component is `.0` to `.1` (and hard links to it): `docker cp`
    /// giving a copied file or directory its destination's name.
    pub rebase: Option<(OsString, OsString)>,
    /// Gives every member this owner (container ids, shifted by `id_map` like the archive's would
    /// be) instead of the archive's: `docker cp` without `-a` makes the container's root own them.
    pub chown_to: Option<(u32, u32)>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            whiteouts: true,
            preserve_owners: true,
            id_map: None,
            no_overwrite_dir_non_dir: false,
            rebase: None,
            chown_to: None,
        }
    }
}

/// Unpacks one uncompressed layer tar into `dest` (created if missing) for use as an overlay lower dir.
/// On error `dest` may hold part of the layer: the caller unpacks into a temporary dir and removes it.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats, ArchiveError> {
    unpack(reader, dest, &UnpackOptions::default())
}

/// A directory whose metadata is applied after everything below it has been written (creating
/// children changes a directory's mtime).
struct PendingDir {
    comps: Vec<OsString>,
    mtime: i64,
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
    // A layer's root belongs to the container's root too (an existing directory `unpack_at` is
    // given keeps its owner).
    if let Some(m) = opts.id_map.as_ref().filter(|m| !m.is_empty()) {
        let pair = m.root_pair().map_err(|source| ArchiveError::IdMap {
            entry: dest_s.clone(),
            source,
        })?;
        fchown(&root, pair.0, pair.1, &dest_s)?;
    }
    unpack_at(reader, root, &dest_s, opts)
}

/// Unpacks a tar below the directory `root` (an open directory fd, e.g. one resolved inside a
/// container's root): every write is relative to it and never follows a symlink. `dest_s` names the
/// destination in errors.
pub fn unpack_at(
    reader: impl Read,
    root: OwnedFd,
    dest_s: &str,
    opts: &UnpackOptions,
) -> Result<UnpackStats, ArchiveError> {
    let dest_s = dest_s.to_string();
    let id_map = opts.id_map.as_ref().filter(|m| !m.is_empty());
    // Under `--userns-remap` every directory the archive implies belongs to the container's root,
    // so it can write where the image's root could.
    let root_owner = match id_map {
        Some(m) => Some(m.root_pair().map_err(|source| ArchiveError::IdMap {
            entry: dest_s.clone(),
            source,
        })?),
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
        let mut comps = clean_path(&raw).map_err(|reason| ArchiveError::Unsafe {
            entry: name.clone(),
            reason,
        })?;
        rebase(&mut comps, opts);
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
        let (uid, gid) = match opts.chown_to {
            Some((u, g)) => (u64::from(u), u64::from(g)),
            None => (uid, gid),
        };
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

        if opts.no_overwrite_dir_non_dir {
            check_overwrite(&parent, base, etype == tar::EntryType::Directory, &name)?;
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
                let mut tcomps = clean_path(&target_raw).map_err(|reason| ArchiveError::Unsafe {
                    entry: name.clone(),
                    reason: format!("hard link target {:?}: {reason}", display(&target_raw)),
                })?;
                rebase(&mut tcomps, opts);
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

/// Applies [`UnpackOptions::rebase`] to a cleaned member name.
fn rebase(comps: &mut [OsString], opts: &UnpackOptions) {
    if let (Some((from, to)), Some(first)) = (&opts.rebase, comps.first_mut()) {
        if first == from {
            first.clone_from(to);
        }
    }
}

/// `noOverwriteDirNonDir`: refuses to replace a directory with a non-directory or the reverse, with
/// Docker's messages.
fn check_overwrite(parent: &OwnedFd, base: &OsStr, is_dir: bool, entry: &str) -> Result<(), ArchiveError> {
    let st = match rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io_err("stat", entry)(e)),
    };
    let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    let reason = match (existing_dir, is_dir) {
        (true, false) => "cannot overwrite directory with non-directory",
        (false, true) => "cannot overwrite non-directory with directory",
        _ => return Ok(()),
    };
    Err(ArchiveError::Unsafe {
        entry: entry.to_string(),
        reason: reason.into(),
    })
}

/// Reads a whole archive and checks every member as [`unpack`] would before writing anything: names
/// and hard link targets stay inside the destination, sizes are sane, the stream is well formed.
/// Returns the number of members. Used to refuse a bad archive before touching a container's files.
pub fn check_archive(reader: impl Read) -> Result<u64, ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    let mut last = String::new();
    let mut n = 0u64;
    for item in archive.entries().map_err(ArchiveError::Read)? {
        let mut e = item.map_err(|source| ArchiveError::Malformed {
            after: last.clone(),
            source,
        })?;
        let raw = e.path_bytes().into_owned();
        let name = display(&raw);
        last = name.clone();
        n += 1;
        clean_path(&raw).map_err(|reason| ArchiveError::Unsafe {
            entry: name.clone(),
            reason,
        })?;
        if e.size() > MAX_ENTRY_SIZE {
            return Err(ArchiveError::TooLarge {
                entry: name,
                size: e.size(),
                max: MAX_ENTRY_SIZE,
            });
        }
        if e.header().entry_type() == tar::EntryType::Link {
            if let Some(t) = e.link_name_bytes() {
                clean_path(&t).map_err(|reason| ArchiveError::Unsafe {
                    entry: name.clone(),
                    reason: format!("hard link target {:?}: {reason}", display(&t)),
                })?;
            }
        }
        // Drain the data so a truncated archive is found now.
        let size = e.size();
        let got = io::copy(&mut (&mut e).take(size), &mut io::sink()).map_err(|source| ArchiveError::Malformed {
            after: name.clone(),
            source,
        })?;
        if got != size {
            return Err(ArchiveError::Truncated {
                entry: name,
                expected: size,
                got,
            });
        }
    }
    Ok(n)
}
