//! Paths inside the container's root filesystem, resolved and created through descriptors so that a
//! symlink (planted in the image, or swapped in by a process racing the runtime) can never send a
//! mount, a directory or a device node outside the root (the CVE-2021-30465 class).
//!
//! - [`Root::resolve`] opens a destination with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`:
//!   symlinks are followed as if the rootfs were `/` (`/data -> /var/data` in the image resolves to
//!   `<rootfs>/var/data`, as Docker and runc do), `..` stops at the root. What is missing is created
//!   one component at a time with `mkdirat`/`openat(O_CREAT | O_EXCL | O_NOFOLLOW)` relative to the
//!   already-opened parent, each component opened with `O_NOFOLLOW` and symlinks interpreted by the
//!   walker itself, inside the root.
//! - [`Root::mount`] mounts onto `/proc/self/fd/<fd>` of the resolved `O_PATH` descriptor, so the
//!   kernel mounts exactly on the object that was resolved, whatever happens to the path afterwards;
//!   then it re-resolves the destination and checks that it is now the root of a new mount whose
//!   parent is the mount the destination was on, and that it lies under the rootfs. On mismatch the
//!   container start fails with an error naming the destination.

use super::{errno, Step};
use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// What [`Root::resolve`] creates when the destination is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Create {
    /// Nothing: a missing destination is an error.
    No,
    /// Directories, the last one included.
    Dir,
    /// Directories, then an empty regular file as the last component (a file bind mount).
    File,
}

/// The container's root filesystem, as an open directory.
pub(super) struct Root {
    fd: OwnedFd,
    /// Where the root is, as the kernel names it (`/proc/self/fd` of the root descriptor).
    path: PathBuf,
    /// Owner of what is created (the container's root under a user namespace).
    owner: Option<(u32, u32)>,
}

const MAX_SYMLINKS: usize = 255;
const MAX_RETRIES: usize = 128;

/// `openat2(2)`, retried on `EINTR`/`EAGAIN` (the kernel's answer to a concurrent rename or mount
/// during a `RESOLVE_IN_ROOT` walk).
pub(super) fn openat2(dir: RawFd, path: &CStr, flags: libc::c_int, resolve: u64) -> std::io::Result<OwnedFd> {
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    let mut tries = 0;
    loop {
        // SAFETY: path is NUL-terminated and `how` a valid open_how of the size passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: openat2 returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = errno();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) if tries < MAX_RETRIES => tries += 1,
            _ => return Err(e),
        }
    }
}

/// `/proc/self/fd/<fd>`: the magic link the kernel follows to exactly the object `fd` refers to.
pub(super) fn proc_fd(fd: &OwnedFd) -> CString {
    // The formatted string never contains a NUL byte.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// `name` (one component, no `/`) in `dir`, not followed: a symlink is opened as itself.
fn open_component(dir: RawFd, name: &CStr) -> std::io::Result<OwnedFd> {
    loop {
        // SAFETY: name is NUL-terminated; the result is checked below.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = errno();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// The mount id of the mount `fd` is on (`statx(STATX_MNT_ID)`).
pub(super) fn mount_id(fd: &OwnedFd) -> std::io::Result<u64> {
    // SAFETY: statx is plain data; zeroed is a valid value to be filled.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open, the empty path with AT_EMPTY_PATH names it, st is a valid out-pointer.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    if r == 0 && st.stx_mask & libc::STATX_MNT_ID != 0 {
        return Ok(st.stx_mnt_id);
    }
    fdinfo_mount_id(fd)
}

/// [`mount_id`] before Linux 5.8: the `mnt_id` line of the descriptor's fdinfo.
fn fdinfo_mount_id(fd: &OwnedFd) -> std::io::Result<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOSYS))
}

/// The parent mount id of mount `id`, from `/proc/self/mountinfo`.
fn parent_mount(id: u64) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let mut f = l.split(' ');
        let this: u64 = f.next()?.parse().ok()?;
        let parent: u64 = f.next()?.parse().ok()?;
        (this == id).then_some(parent)
    })
}

fn file_mode(fd: &OwnedFd) -> std::io::Result<libc::mode_t> {
    // SAFETY: stat is plain data; zeroed is a valid value to be filled.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open, st is a valid out-pointer.
    if unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Err(errno());
    }
    Ok(st.st_mode & libc::S_IFMT)
}

fn readlink_fd(fd: &OwnedFd) -> std::io::Result<OsString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: fd is an O_PATH descriptor of a symlink (the empty path names it); buf is writable for
    // its length.
    let n = unsafe { libc::readlinkat(fd.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(errno());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

/// The path the kernel gives an open descriptor (`readlink /proc/self/fd/<fd>`).
fn fd_path(fd: &OwnedFd) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn name_c(name: &OsStr) -> std::io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// `dest` made relative, for `openat2` under the root (`.` for the root itself).
fn relative(dest: &str) -> std::io::Result<CString> {
    let rel = dest.trim_start_matches('/');
    name_c(OsStr::new(if rel.is_empty() { "." } else { rel }))
}

/// Splits a container path into its parent and its last component (for `mknodat`, `symlinkat`).
pub(super) fn split_last(dest: &str) -> Option<(String, OsString)> {
    let p = Path::new(dest);
    let name = p.file_name()?.to_os_string();
    let parent = p.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    Some((parent, name))
}

impl Root {
    /// Opens the root filesystem at `path` (trusted: the runtime mounted it there).
    pub(super) fn open(path: &CStr, owner: Option<(u32, u32)>) -> Step<Root> {
        // SAFETY: path is NUL-terminated; the returned descriptor is checked below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err((125, format!("opening rootfs {path:?}: {}", errno())));
        }
        // SAFETY: open returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = fd_path(&fd).map_err(|e| (125, format!("resolving rootfs {path:?}: {e}")))?;
        Ok(Root { fd, path, owner })
    }

    /// Opens `dest` (a path in the container) as an `O_PATH` descriptor, resolving symlinks inside
    /// the root and creating what is missing as `create` says. The descriptor is always inside the
    /// root, whatever the image contains or a concurrent process does.
    pub(super) fn resolve(&self, dest: &str, create: Create) -> Step<OwnedFd> {
        self.resolve_io(dest, create).map_err(|e| {
            (
                125,
                format!("resolving {dest:?} in the container's root filesystem: {e}"),
            )
        })
    }

    fn resolve_io(&self, dest: &str, create: Create) -> std::io::Result<OwnedFd> {
        let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        match openat2(self.fd.as_raw_fd(), &relative(dest)?, libc::O_PATH, resolve) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create != Create::No => self.walk(dest, create),
            // Before Linux 5.6: the walk resolves the same way, one component at a time.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => self.walk(dest, create),
            r => r,
        }
    }

    /// The slow path of [`Root::resolve`]: one component at a time from the root, each opened with
    /// `O_NOFOLLOW` relative to its parent's descriptor, symlinks resolved here as if the root were
    /// `/`, `..` popping the stack of opened parents (never above the root).
    fn walk(&self, dest: &str, create: Create) -> std::io::Result<OwnedFd> {
        let mut stack = vec![self.fd.try_clone()?];
        let mut queue: VecDeque<OsString> = components(OsStr::new(dest));
        let (mut links, mut retries) = (0, 0);
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let dir = stack.last().map_or(self.fd.as_raw_fd(), AsRawFd::as_raw_fd);
            let name = name_c(&c)?;
            let last = queue.is_empty();
            // One component, not followed: the result is a child of `dir`, never anything else.
            match open_component(dir, &name) {
                Ok(fd) => {
                    let mode = file_mode(&fd)?;
                    if mode == libc::S_IFLNK {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                        }
                        let target = readlink_fd(&fd)?;
                        if Path::new(&target).is_absolute() {
                            stack.truncate(1);
                        }
                        for (i, t) in components(&target).into_iter().enumerate() {
                            queue.insert(i, t);
                        }
                        continue;
                    }
                    if !last && mode != libc::S_IFDIR {
                        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
                    }
                    stack.push(fd);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create != Create::No => {
                    retries += 1;
                    if retries > MAX_RETRIES {
                        return Err(e);
                    }
                    self.create_at(dir, &name, last && create == Create::File)?;
                    queue.push_front(c);
                }
                Err(e) => return Err(e),
            }
        }
        match stack.len() {
            1 => self.fd.try_clone(),
            _ => stack
                .pop()
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }

    /// Creates `name` in `dir` (a directory, or an empty file), owned by the root's owner. Never
    /// follows a symlink: `mkdirat` does not, and the file is opened `O_CREAT | O_EXCL | O_NOFOLLOW`.
    fn create_at(&self, dir: RawFd, name: &CStr, file: bool) -> std::io::Result<()> {
        let r = if file {
            // SAFETY: name is NUL-terminated; the descriptor is closed right away.
            let fd = unsafe {
                libc::openat(
                    dir,
                    name.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                )
            };
            if fd >= 0 {
                // SAFETY: closing the descriptor just opened.
                unsafe { libc::close(fd) };
                0
            } else {
                fd
            }
        } else {
            // SAFETY: name is NUL-terminated.
            unsafe { libc::mkdirat(dir, name.as_ptr(), 0o755) }
        };
        if r != 0 {
            let e = errno();
            // Created concurrently: the caller opens whatever is there now.
            return if e.raw_os_error() == Some(libc::EEXIST) {
                Ok(())
            } else {
                Err(e)
            };
        }
        if let Some((uid, gid)) = self.owner {
            // SAFETY: name is NUL-terminated; AT_SYMLINK_NOFOLLOW never changes a link's target.
            if unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
                return Err(errno());
            }
        }
        Ok(())
    }

    /// Mounts `source` (`fstype`, `flags`, `data` as for `mount(2)`) onto `target`, a descriptor from
    /// [`Root::resolve`] of `dest`, through `/proc/self/fd`; then checks that `dest` now resolves to
    /// the root of the new mount, under the rootfs, and returns a descriptor of it (for remounts).
    pub(super) fn mount(
        &self,
        dest: &str,
        target: &OwnedFd,
        mount: (&CStr, &CStr, libc::c_ulong, &CStr),
        what: &dyn Fn() -> String,
    ) -> Step<OwnedFd> {
        let before = mount_id(target).map_err(|e| (125, format!("{}: mount id: {e}", what())))?;
        let (source, fstype, flags, data) = mount;
        let r = super::rootfs::mount(source, &proc_fd(target), fstype, flags, data);
        if r != 0 {
            return Err((125, format!("{}: {}", what(), errno())));
        }
        self.verify(dest, before).map_err(|e| (125, format!("{}: {e}", what())))
    }

    /// `dest` must now be the root of a mount whose parent is `before`, inside the rootfs.
    fn verify(&self, dest: &str, before: u64) -> Result<OwnedFd, String> {
        let escaped = || {
            format!("the mount did not land at {dest:?} inside the container's root filesystem (was a path component swapped for a symlink?)")
        };
        let fd = self
            .resolve_io(dest, Create::No)
            .map_err(|e| format!("{}: {e}", escaped()))?;
        let id = mount_id(&fd).map_err(|e| format!("mount id of {dest:?}: {e}"))?;
        if id == before || parent_mount(id) != Some(before) {
            return Err(escaped());
        }
        let p = fd_path(&fd).map_err(|e| format!("{}: {e}", escaped()))?;
        if !p.starts_with(&self.path) {
            return Err(format!("{} (it is at {})", escaped(), p.display()));
        }
        Ok(fd)
    }
}

/// The components of a path that matter to resolution: names and `..` (`/` and `.` dropped).
fn components(p: &OsStr) -> VecDeque<OsString> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root(dir: &Path) -> Root {
        let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
        Root::open(&c, None).unwrap()
    }

    fn where_(r: &Root, fd: &OwnedFd) -> PathBuf {
        fd_path(fd).unwrap().strip_prefix(&r.path).unwrap().to_path_buf()
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/hosts"), "").unwrap();
        symlink("/etc", d.join("a/abs")).unwrap();
        symlink("../../../..", d.join("a/b/up")).unwrap();
        symlink("/../../../../../tmp/outside", d.join("a/out")).unwrap();
        symlink("/var/data", d.join("data")).unwrap();
        let r = root(d);
        for (dest, create, want) in [
            ("/a/abs/hosts", Create::No, "etc/hosts"),
            ("/a/b/up", Create::No, ""),
            ("../../a", Create::No, "a"),
            ("/a/b/up/new/dir", Create::Dir, "new/dir"),
            ("/a/out/x", Create::Dir, "tmp/outside/x"),
            ("/data", Create::Dir, "var/data"),
            ("/a/abs/file", Create::File, "etc/file"),
            ("/", Create::No, ""),
        ] {
            let fd = r.resolve(dest, create).unwrap_or_else(|e| panic!("{dest}: {e:?}"));
            assert_eq!(where_(&r, &fd), Path::new(want), "{dest}");
        }
        assert!(d.join("etc/file").is_file());
        assert!(d.join("tmp/outside/x").is_dir());
        assert!(r.resolve("/missing", Create::No).is_err());
        let e = r.resolve("/etc/hosts/x", Create::Dir).unwrap_err();
        assert!(e.1.contains("/etc/hosts/x"), "{e:?}");
    }

    #[test]
    fn mount_id_from_statx_and_fdinfo_agree() {
        let r = root(Path::new("/proc"));
        let t = tempfile::tempdir().unwrap();
        let tmp = root(t.path());
        assert_eq!(mount_id(&r.fd).unwrap(), fdinfo_mount_id(&r.fd).unwrap());
        assert_ne!(mount_id(&r.fd).unwrap(), mount_id(&tmp.fd).unwrap());
    }

    #[test]
    fn created_entries_belong_to_the_owner() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let c = CString::new(t.path().as_os_str().as_bytes()).unwrap();
        let r = Root::open(&c, Some((4242, 4343))).unwrap();
        std::fs::create_dir(t.path().join("a")).unwrap();
        r.resolve("/a/b/c", Create::File).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ids = |p: &str| {
            let m = std::fs::symlink_metadata(t.path().join(p)).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(ids("a"), (0, 0), "existing dirs keep their owner");
        assert_eq!(ids("a/b"), (4242, 4343));
        assert_eq!(ids("a/b/c"), (4242, 4343));
        assert!(t.path().join("a/b/c").is_file());
    }
}
