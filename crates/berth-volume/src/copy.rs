//! Walking directory trees by file descriptor: Docker's copy-up of an image directory into an empty
//! volume, and the volume's size for `system df`.
//!
//! Both walk with `openat(O_NOFOLLOW)` from an open directory and `fstatat(AT_SYMLINK_NOFOLLOW)`,
//! never by path string: a symlink in the container's rootfs (or one a running container swaps in)
//! is copied or counted as a link, never followed out of the tree.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, Timestamps};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A failure while walking, with the path (relative to the tree's top) where it happened.
#[derive(Debug)]
pub(crate) struct WalkError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl WalkError {
    fn at(path: &Path) -> impl FnOnce(Errno) -> WalkError + '_ {
        move |e| WalkError {
            path: path.to_path_buf(),
            source: e.into(),
        }
    }
}

/// Opens a directory without following a symlink at its last component. `Ok(None)` when it is
/// missing, not a directory, or a symlink.
fn open_dir(path: &Path) -> Result<Option<OwnedFd>, WalkError> {
    match rfs::open(path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
        Err(e) => Err(WalkError::at(path)(e)),
    }
}

/// The entries of an open directory, without `.` and `..`.
fn entries(dir: &OwnedFd, rel: &Path) -> Result<Vec<std::ffi::CString>, WalkError> {
    let mut out = Vec::new();
    let d = rfs::Dir::read_from(dir).map_err(WalkError::at(rel))?;
    for entry in d {
        let entry = entry.map_err(WalkError::at(rel))?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        out.push(name.to_owned());
    }
    Ok(out)
}

fn join(rel: &Path, name: &CStr) -> PathBuf {
    rel.join(OsStr::from_bytes(name.to_bytes()))
}

/// Whether the directory `path` has no entries.
#[cfg(test)]
pub(crate) fn is_empty_dir(path: &Path) -> Result<bool, WalkError> {
    match open_dir(path)? {
        Some(fd) => Ok(entries(&fd, Path::new(""))?.is_empty()),
        None => Ok(false),
    }
}

/// Docker's copy-up (`copyExistingContents`): when `dst` is empty, copies the tree under `src` into
/// it, keeping modes, owners, times, symlinks (as links), hard links, devices, fifos and xattrs,
/// then gives `dst` the owner and mode of `src`. Returns whether it copied; `false` when `dst` is
/// not empty or `src` is not a directory (missing, a file, or a symlink: never followed).
pub(crate) fn copy_up(src: &Path, dst: &Path) -> Result<bool, WalkError> {
    let Some(src_fd) = open_dir(src)? else {
        return Ok(false);
    };
    let dst_fd = open_dir(dst)?.ok_or_else(|| WalkError {
        path: dst.to_path_buf(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;
    if !entries(&dst_fd, Path::new(""))?.is_empty() {
        return Ok(false);
    }
    let mut copier = Copier {
        dst_root: dst_fd.try_clone().map_err(|e| WalkError {
            path: dst.to_path_buf(),
            source: e,
        })?,
        links: HashMap::new(),
    };
    copier.copy_dir(&src_fd, &dst_fd, Path::new(""))?;
    // copyOwnership: the volume's top directory takes the owner and mode of the image directory.
    let st = rfs::fstat(&src_fd).map_err(WalkError::at(Path::new("")))?;
    set_owner_mode(&dst_fd, &st).map_err(WalkError::at(Path::new("")))?;
    Ok(true)
}

struct Copier {
    dst_root: OwnedFd,
    /// (dev, ino) of a multiply linked source file → where its first copy is, under `dst_root`.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier {
    fn copy_dir(&mut self, src: &OwnedFd, dst: &OwnedFd, rel: &Path) -> Result<(), WalkError> {
        for name in entries(src, rel)? {
            let path = join(rel, &name);
            let at = || WalkError::at(&path);
            let st = rfs::statat(src, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(at())?;
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft != FileType::Directory && st.st_nlink > 1 {
                let key = (st.st_dev, st.st_ino);
                if let Some(first) = self.links.get(&key) {
                    self.link(first, dst, &name).map_err(at())?;
                    continue;
                }
                self.links.insert(key, path.clone());
            }
            match ft {
                FileType::Directory => {
                    rfs::mkdirat(dst, name.as_c_str(), Mode::RWXU).map_err(at())?;
                    let s = rfs::openat(src, name.as_c_str(), DIR_FLAGS, Mode::empty()).map_err(at())?;
                    let d = rfs::openat(dst, name.as_c_str(), DIR_FLAGS, Mode::empty()).map_err(at())?;
                    self.copy_dir(&s, &d, &path)?;
                    copy_xattrs(&s, &d);
                    set_owner_mode(&d, &st).map_err(at())?;
                    rfs::futimens(&d, &times(&st)).map_err(at())?;
                }
                FileType::RegularFile => {
                    let s = rfs::openat(
                        src,
                        name.as_c_str(),
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(at())?;
                    let d = rfs::openat(
                        dst,
                        name.as_c_str(),
                        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::RUSR | Mode::WUSR,
                    )
                    .map_err(at())?;
                    let mut from = std::fs::File::from(s);
                    let mut to = std::fs::File::from(d);
                    io::copy(&mut from, &mut to).map_err(|e| WalkError {
                        path: path.clone(),
                        source: e,
                    })?;
                    copy_xattrs(&from, &to);
                    set_owner_mode(&to, &st).map_err(at())?;
                    rfs::futimens(&to, &times(&st)).map_err(at())?;
                }
                FileType::Symlink => {
                    let target = rfs::readlinkat(src, name.as_c_str(), Vec::new()).map_err(at())?;
                    rfs::symlinkat(target.as_c_str(), dst, name.as_c_str()).map_err(at())?;
                    self.finish_at(dst, &name, &st, false).map_err(at())?;
                }
                FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
                    rfs::mknodat(dst, name.as_c_str(), ft, Mode::RUSR | Mode::WUSR, st.st_rdev).map_err(at())?;
                    self.finish_at(dst, &name, &st, true).map_err(at())?;
                }
                // A socket is only meaningful to the process that bound it; Docker skips them too.
                FileType::Socket | FileType::Unknown => {}
            }
        }
        Ok(())
    }

    /// Hard-links `first` (a copy made earlier, relative to the destination's top) as `name` in
    /// `dir`. The directory of `first` is opened beneath the top without symlinks, so a symlink that
    /// a container sharing the volume swapped in cannot make us link a file from elsewhere.
    fn link(&self, first: &Path, dir: &OwnedFd, name: &CStr) -> Result<(), Errno> {
        let parent = first.parent().filter(|p| !p.as_os_str().is_empty());
        let file = first.file_name().ok_or(Errno::INVAL)?;
        let parent_fd = match parent {
            Some(p) => rfs::openat2(
                &self.dst_root,
                p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                rfs::ResolveFlags::BENEATH | rfs::ResolveFlags::NO_SYMLINKS,
            )?,
            None => self.dst_root.try_clone().map_err(|_| Errno::MFILE)?,
        };
        rfs::linkat(&parent_fd, file, dir, name, AtFlags::empty())
    }

    /// Owner, mode (not for symlinks, which have none) and times of an entry that cannot be opened.
    fn finish_at(&self, dir: &OwnedFd, name: &CStr, st: &Stat, chmod: bool) -> Result<(), Errno> {
        rfs::chownat(
            dir,
            name,
            Some(rfs::Uid::from_raw(st.st_uid)),
            Some(rfs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if chmod {
            rfs::chmodat(dir, name, Mode::from_raw_mode(st.st_mode), AtFlags::empty())?;
        }
        rfs::utimensat(dir, name, &times(st), AtFlags::SYMLINK_NOFOLLOW)
    }
}

/// chown before chmod: chown clears the set-id bits that chmod then puts back.
fn set_owner_mode(fd: impl AsFd, st: &Stat) -> Result<(), Errno> {
    rfs::fchown(
        &fd,
        Some(rfs::Uid::from_raw(st.st_uid)),
        Some(rfs::Gid::from_raw(st.st_gid)),
    )?;
    rfs::fchmod(&fd, Mode::from_raw_mode(st.st_mode))
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rfs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rfs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Best effort, as Docker's copy: an attribute the destination file system refuses (`trusted.*`
/// without the capability, `security.*` under an LSM) is skipped.
fn copy_xattrs(src: impl AsFd, dst: impl AsFd) {
    let Ok(len) = rfs::flistxattr_query(&src) else {
        return;
    };
    if len == 0 {
        return;
    }
    let mut names = vec![0u8; len];
    let Ok(n) = rfs::flistxattr(&src, names.as_mut_slice()) else {
        return;
    };
    names.truncate(n);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let Ok(vlen) = rfs::fgetxattr_query(&src, name) else {
            continue;
        };
        let mut value = vec![0u8; vlen];
        let Ok(vn) = rfs::fgetxattr(&src, name, value.as_mut_slice()) else {
            continue;
        };
        value.truncate(vn);
        let _ = rfs::fsetxattr(&dst, name, &value, rfs::XattrFlags::empty());
    }
}

/// The size of the tree under `path` as dockerd's `directory.Size` reports it for `system df`: the
/// sum of the sizes of everything but directories, each hard-linked file counted once. Symlinks
/// count their own size and are never followed.
pub(crate) fn usage(path: &Path) -> Result<u64, WalkError> {
    let Some(fd) = open_dir(path)? else {
        return Ok(0);
    };
    let mut seen = HashSet::new();
    size_of_dir(&fd, Path::new(""), &mut seen)
}

fn size_of_dir(dir: &OwnedFd, rel: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64, WalkError> {
    let mut total = 0u64;
    for name in entries(dir, rel)? {
        let path = join(rel, &name);
        let st = match rfs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed by a running container while we walk: it no longer uses space.
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(WalkError::at(&path)(e)),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            match rfs::openat(dir, name.as_c_str(), DIR_FLAGS, Mode::empty()) {
                Ok(sub) => total = total.saturating_add(size_of_dir(&sub, &path, seen)?),
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(WalkError::at(&path)(e)),
            }
            continue;
        }
        if st.st_nlink > 1 && !seen.insert((st.st_dev, st.st_ino)) {
            continue;
        }
        total = total.saturating_add(u64::try_from(st.st_size).unwrap_or(0));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("berth-volume-copy").tempdir().unwrap()
    }

    #[test]
    fn copy_up_keeps_owners_modes_links_and_never_follows_symlinks() {
        let t = tmp();
        let src = t.path().join("src");
        let dst = t.path().join("dst");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(src.join("sub/deep")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"host secret").unwrap();

        std::fs::write(src.join("file"), b"hello").unwrap();
        std::os::unix::fs::chown(src.join("file"), Some(1234), Some(5678)).unwrap();
        std::fs::set_permissions(src.join("file"), std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::fs::write(src.join("sub/deep/data"), b"deep").unwrap();
        std::os::unix::fs::chown(src.join("sub"), Some(42), Some(43)).unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o710)).unwrap();
        std::fs::hard_link(src.join("file"), src.join("sub/hardlink")).unwrap();
        std::fs::create_dir(src.join("sub2")).unwrap();
        std::fs::hard_link(src.join("sub/deep/data"), src.join("sub2/data-link")).unwrap();
        // Symlinks pointing outside the tree, to a directory and to a file: copied as links.
        std::os::unix::fs::symlink(&outside, src.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), src.join("sub/secret-link")).unwrap();
        std::os::unix::fs::lchown(src.join("escape"), Some(7), Some(8)).unwrap();
        rustix::fs::setxattr(src.join("file"), "user.note", b"kept", rfs::XattrFlags::empty()).ok();
        nix::unistd::mkfifo(&src.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(&src, Some(11), Some(12)).unwrap();
        let mtime = std::fs::metadata(src.join("sub/deep/data")).unwrap().mtime();

        assert!(copy_up(&src, &dst).unwrap());

        let f = std::fs::metadata(dst.join("file")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4751);
        assert_eq!((f.uid(), f.gid()), (1234, 5678));
        assert_eq!(std::fs::read(dst.join("file")).unwrap(), b"hello");
        let h = std::fs::metadata(dst.join("sub/hardlink")).unwrap();
        assert_eq!(h.ino(), f.ino(), "hard link kept");
        assert_eq!(f.nlink(), 2);
        let nested = std::fs::metadata(dst.join("sub/deep/data")).unwrap();
        assert_eq!(
            nested.ino(),
            std::fs::metadata(dst.join("sub2/data-link")).unwrap().ino()
        );
        let sub = std::fs::metadata(dst.join("sub")).unwrap();
        assert_eq!((sub.uid(), sub.gid(), sub.mode() & 0o7777), (42, 43, 0o710));
        assert_eq!(std::fs::metadata(dst.join("sub/deep/data")).unwrap().mtime(), mtime);

        let l = std::fs::symlink_metadata(dst.join("escape")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!((l.uid(), l.gid()), (7, 8));
        assert_eq!(std::fs::read_link(dst.join("escape")).unwrap(), outside);
        assert!(std::fs::symlink_metadata(dst.join("sub/secret-link"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Nothing of the outside directory was copied in.
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        let mut top: Vec<_> = std::fs::read_dir(&dst)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, ["escape", "fifo", "file", "sub", "sub2"]);
        assert!(std::fs::symlink_metadata(dst.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo_like());

        if let Some(v) = xattr(&src.join("file")) {
            assert_eq!(xattr(&dst.join("file")), Some(v));
        }
        let top = std::fs::metadata(&dst).unwrap();
        assert_eq!((top.uid(), top.gid(), top.mode() & 0o7777), (11, 12, 0o750));

        // Second time: the volume is not empty, nothing is copied.
        std::fs::write(src.join("new"), b"x").unwrap();
        assert!(!copy_up(&src, &dst).unwrap());
        assert!(!dst.join("new").exists());
    }

    #[test]
    fn copy_up_of_a_symlinked_or_missing_source_copies_nothing() {
        let t = tmp();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("f"), b"x").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        assert!(!copy_up(&link, &dst).unwrap());
        assert!(!copy_up(&t.path().join("missing"), &dst).unwrap());
        assert!(!copy_up(&real.join("f"), &dst).unwrap());
        assert!(is_empty_dir(&dst).unwrap());
    }

    #[test]
    fn usage_counts_hard_links_once_and_does_not_follow_symlinks() {
        let t = tmp();
        let d = t.path().join("d");
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::hard_link(d.join("a/one"), d.join("a/b/two")).unwrap();
        std::fs::write(d.join("three"), vec![0u8; 24]).unwrap();
        let big = t.path().join("big");
        std::fs::write(&big, vec![0u8; 100_000]).unwrap();
        std::os::unix::fs::symlink(&big, d.join("link")).unwrap();
        let link_len = std::fs::symlink_metadata(d.join("link")).unwrap().len();
        assert_eq!(usage(&d).unwrap(), 1000 + 24 + link_len);
        assert_eq!(usage(&t.path().join("missing")).unwrap(), 0);
    }

    trait FifoLike {
        fn is_fifo_like(&self) -> bool;
    }
    impl FifoLike for std::fs::FileType {
        fn is_fifo_like(&self) -> bool {
            use std::os::unix::fs::FileTypeExt;
            self.is_fifo()
        }
    }

    fn xattr(p: &Path) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 64];
        let n = rustix::fs::getxattr(p, "user.note", buf.as_mut_slice()).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}
