//! The container's root filesystem, built inside its mount namespace: spec mounts (onto destinations
//! resolved inside the root, see [`super::inroot`]), `/sys/fs/cgroup`, devices, `pivot_root`, masked
//! and read-only paths.

use super::inroot::{mount_id, proc_fd, split_last, Create, Root};
use super::plan::{MountOp, Plan};
use super::{errno, step, Step};
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(super) fn mount(src: &CStr, dst: &CStr, fstype: &CStr, flags: libc::c_ulong, data: &CStr) -> libc::c_int {
    let p = |c: &CStr| if c.is_empty() { std::ptr::null() } else { c.as_ptr() };
    // SAFETY: all pointers are NUL-terminated strings or null, valid for the call.
    unsafe { libc::mount(p(src), dst.as_ptr(), p(fstype), flags, p(data).cast()) }
}

pub(super) const EMPTY: &CStr = c"";

pub(super) fn path_c(p: &Path) -> Step<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| (125, format!("path with a NUL byte: {}", p.display())))
}

pub(super) fn mkdir_all(p: &Path) -> Step {
    std::fs::create_dir_all(p).map_err(|e| (125, format!("creating {}: {e}", p.display())))
}

/// `mkdir -p`, giving the directories it creates to `owner` (the container's root under a user
/// namespace).
pub(super) fn mkdir_all_owned(p: &Path, owner: Option<(u32, u32)>) -> Step {
    let Some((uid, gid)) = owner else {
        return mkdir_all(p);
    };
    let mut missing = Vec::new();
    let mut cur = Some(p);
    while let Some(c) = cur {
        if std::fs::symlink_metadata(c).is_ok() {
            break;
        }
        missing.push(c);
        cur = c.parent();
    }
    mkdir_all(p)?;
    for m in missing.iter().rev() {
        std::os::unix::fs::lchown(m, Some(uid), Some(gid)).map_err(|e| (125, format!("chown {}: {e}", m.display())))?;
    }
    Ok(())
}

pub(super) fn touch(p: &Path) -> Step {
    if let Some(parent) = p.parent() {
        mkdir_all(parent)?;
    }
    match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
    {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Ok(()),
        Err(e) => Err((125, format!("creating {}: {e}", p.display()))),
    }
}

/// Current per-mount flags of `p` that a bind remount must keep (locked in a user namespace).
pub(super) fn locked_flags(p: &CStr) -> libc::c_ulong {
    // SAFETY: statvfs fills a zeroed local struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: p is a valid C string and st a valid out-pointer.
    if unsafe { libc::statvfs(p.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let mut f = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms;
        }
    }
    f
}

/// One spec mount, onto a destination resolved inside the root (see [`super::inroot`]): bind mounts
/// are bound, then remounted with their extra flags (keeping the locked ones); other kinds are
/// mounted with their flags and data; then the propagation is applied.
pub(super) fn do_mount(plan: &Plan, root: &Root, m: &MountOp) -> Step {
    if m.kind == "cgroup" {
        return mount_cgroup(plan, root, m);
    }
    let is_bind = m.flags & libc::MS_BIND != 0;
    let create = if is_bind && !m.source_path.is_dir() {
        Create::File
    } else {
        Create::Dir
    };
    let what = || format!("error mounting {:?} to rootfs at {:?}", m.source_path, m.dest);
    let target = root
        .resolve(&m.dest, create)
        .map_err(|(c, e)| (c, format!("{}: {e}", what())))?;
    let mounted = if is_bind {
        let mounted = root.mount(
            &m.dest,
            &target,
            (&m.source, EMPTY, m.flags & (libc::MS_BIND | libc::MS_REC), EMPTY),
            &what,
        )?;
        let extra = m.flags & !(libc::MS_BIND | libc::MS_REC);
        if extra != 0 {
            let p = proc_fd(&mounted);
            let f = libc::MS_BIND | libc::MS_REMOUNT | extra | locked_flags(&p);
            step(mount(EMPTY, &p, EMPTY, f, EMPTY), what)?;
        }
        mounted
    } else {
        root.mount(&m.dest, &target, (&m.source, &m.fstype, m.flags, &m.data), &what)?
    };
    if m.propagation != 0 {
        step(mount(EMPTY, &proc_fd(&mounted), EMPTY, m.propagation, EMPTY), what)?;
    }
    Ok(())
}

/// `/sys/fs/cgroup`: the container's own cgroup directories, bind-mounted (v1: a tmpfs with one
/// directory per hierarchy; v2: the directory itself).
pub(super) fn mount_cgroup(plan: &Plan, root: &Root, m: &MountOp) -> Step {
    if plan.cgroup_mounts.is_empty() {
        return Ok(());
    }
    let what = || "error mounting cgroup to rootfs at \"/sys/fs/cgroup\"".to_string();
    let target = root.resolve(&m.dest, Create::Dir)?;
    let ro = m.flags & libc::MS_RDONLY;
    let bind_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | ro;
    let bind = |src: &Path, dest: &str, target: &OwnedFd| -> Step {
        let mounted = root.mount(dest, target, (&path_c(src)?, EMPTY, libc::MS_BIND, EMPTY), &what)?;
        step(
            mount(
                EMPTY,
                &proc_fd(&mounted),
                EMPTY,
                libc::MS_BIND | libc::MS_REMOUNT | bind_flags,
                EMPTY,
            ),
            what,
        )
    };
    if let [(name, dir)] = plan.cgroup_mounts.as_slice() {
        if name.is_empty() {
            return bind(dir, &m.dest, &target);
        }
    }
    let tmpfs_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let tmpfs = root.mount(&m.dest, &target, (c"tmpfs", c"tmpfs", tmpfs_flags, c"mode=755"), &what)?;
    for (name, dir) in &plan.cgroup_mounts {
        let dest = format!("{}/{name}", m.dest.trim_end_matches('/'));
        let sub = root.resolve(&dest, Create::Dir)?;
        bind(dir, &dest, &sub)?;
        // Co-mounted controllers (`cpu,cpuacct`) are also reachable by each name, as on the host.
        if name.contains(',') {
            let target = path_c(Path::new(name))?;
            for part in name.split(',') {
                let link = path_c(Path::new(part))?;
                // SAFETY: both strings are NUL-terminated; the link is made in the new tmpfs.
                unsafe { libc::symlinkat(target.as_ptr(), tmpfs.as_raw_fd(), link.as_ptr()) };
            }
        }
    }
    if ro != 0 {
        step(
            mount(
                EMPTY,
                &proc_fd(&tmpfs),
                EMPTY,
                libc::MS_REMOUNT | tmpfs_flags | ro,
                EMPTY,
            ),
            what,
        )?;
    }
    Ok(())
}

/// The spec's devices: `mknodat` in their directory (resolved inside the root), or, without
/// `CAP_MKNOD` (user namespace), a bind of the host's node; then the `/dev` symlinks.
pub(super) fn create_devices(plan: &Plan, root: &Root) -> Step {
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0) };
    let r = create_devices_masked(plan, root);
    // SAFETY: restores the mask.
    unsafe { libc::umask(old) };
    r
}

fn create_devices_masked(plan: &Plan, root: &Root) -> Step {
    for d in &plan.devices {
        let (parent, name) = split_last(&d.path).ok_or_else(|| (125, format!("bad device path {:?}", d.path)))?;
        let dir = root.resolve(&parent, Create::Dir)?;
        let name = path_c(Path::new(&name))?;
        // SAFETY: name is NUL-terminated; mknodat never follows a symlink.
        let r = unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), d.mode, d.dev) };
        if r != 0 {
            let e = errno();
            if e.raw_os_error() == Some(libc::EEXIST) {
                continue;
            }
            // No CAP_MKNOD (user namespace): bind the host's node instead.
            let what = || format!("creating device {}", d.path);
            let target = root.resolve(&d.path, Create::File)?;
            root.mount(&d.path, &target, (&d.host_path, EMPTY, libc::MS_BIND, EMPTY), &what)?;
            continue;
        }
        // SAFETY: name is NUL-terminated; AT_SYMLINK_NOFOLLOW never changes a link's target.
        let r = unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW) };
        step(r, || format!("chown device {}", d.path))?;
    }
    let dev = root.resolve("/dev", Create::Dir)?;
    for (link, target) in [
        (c"fd", c"/proc/self/fd"),
        (c"stdin", c"/proc/self/fd/0"),
        (c"stdout", c"/proc/self/fd/1"),
        (c"stderr", c"/proc/self/fd/2"),
        (c"ptmx", c"pts/ptmx"),
        (c"core", c"/proc/kcore"),
    ] {
        // SAFETY: both strings are NUL-terminated; symlinkat creates the link in `dev`.
        if unsafe { libc::symlinkat(target.as_ptr(), dev.as_raw_fd(), link.as_ptr()) } != 0 {
            let e = errno();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err((125, format!("creating symlink /dev/{}: {e}", link.to_string_lossy())));
            }
        }
    }
    Ok(())
}

/// Makes the mount the rootfs directory is on private (in the container's namespace), as runc does
/// when `/` is shared: the rootfs mount then does not propagate to the host, and `pivot_root` accepts
/// it (it refuses a new root whose parent mount is shared).
pub(super) fn rootfs_parent_private(rootfs: &CStr) -> Step {
    let what = || format!("making the mount of {rootfs:?} private");
    // SAFETY: rootfs is NUL-terminated; the descriptor is owned below.
    let fd = unsafe { libc::open(rootfs.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    step(fd, what)?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let id = mount_id(&fd).map_err(|e| (125, format!("{}: {e}", what())))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| (125, format!("{}: {e}", what())))?;
    let point = info
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let point = f.get(4)?;
            (f.first()?.parse::<u64>().ok()? == id).then(|| unescape_mountinfo(point))
        })
        .ok_or_else(|| (125, format!("{}: mount {id} not in mountinfo", what())))?;
    step(
        mount(
            EMPTY,
            &path_c(Path::new(std::ffi::OsStr::from_bytes(&point)))?,
            EMPTY,
            libc::MS_PRIVATE,
            EMPTY,
        ),
        what,
    )
}

/// A mountinfo path field: `\040`-style octal escapes decoded.
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            out.push((d(1) * 64 + d(2) * 8 + d(3)) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub(super) fn pivot_root(plan: &Plan) -> Step {
    let what = |s: &'static str| move || format!("pivot_root: {s}");
    // SAFETY: rootfs_c is a valid path.
    step(unsafe { libc::chdir(plan.rootfs_c.as_ptr()) }, what("chdir"))?;
    // SAFETY: "." is a valid path; new root and put_old are the same directory, as runc does.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } as libc::c_int;
    step(r, what("pivot"))?;
    // The old root is stacked under the new one: detach it.
    // SAFETY: "." is a valid path.
    let r = unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) };
    step(r, what("unmount old root"))?;
    // SAFETY: "/" is a valid path.
    step(unsafe { libc::chdir(c"/".as_ptr()) }, what("chdir /"))
}

pub(super) fn mask_and_readonly(plan: &Plan) -> Step {
    for p in &plan.masked {
        // SAFETY: zeroed stat buffer filled by lstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: p is a valid path, st a valid out-pointer.
        if unsafe { libc::stat(p.as_ptr(), &mut st) } != 0 {
            continue;
        }
        let r = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            mount(c"tmpfs", p, c"tmpfs", libc::MS_RDONLY, EMPTY)
        } else {
            mount(c"/dev/null", p, EMPTY, libc::MS_BIND, EMPTY)
        };
        step(r, || format!("masking {p:?}"))?;
    }
    for p in &plan.readonly {
        let r = mount(p, p, EMPTY, libc::MS_BIND | libc::MS_REC, EMPTY);
        if r != 0 {
            if errno().raw_os_error() == Some(libc::ENOENT) {
                continue;
            }
            return step(r, || format!("making {p:?} read-only"));
        }
        let f = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | locked_flags(p);
        step(mount(EMPTY, p, EMPTY, f, EMPTY), || format!("making {p:?} read-only"))?;
    }
    if plan.readonly_root {
        let f = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(c"/");
        step(mount(EMPTY, c"/", EMPTY, f, EMPTY), || {
            "making the rootfs read-only".into()
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b\\011c\\134d"), b"/a b\tc\\d");
        assert_eq!(unescape_mountinfo("/plain\\04"), b"/plain\\04");
    }

    #[test]
    fn mkdir_all_owned_chowns_only_what_it_creates() {
        let dir = tempfile::tempdir().expect("tmp");
        let existing = dir.path().join("a");
        std::fs::create_dir(&existing).expect("mkdir");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let owner = if root { Some((4242, 4343)) } else { None };
        mkdir_all_owned(&existing.join("b/c"), owner).expect("mkdir");
        use std::os::unix::fs::MetadataExt;
        let ids = |p: &Path| {
            let md = std::fs::symlink_metadata(p).expect("stat");
            (md.uid(), md.gid())
        };
        if root {
            assert_eq!(ids(&existing), (0, 0), "existing dirs keep their owner");
            for p in ["a/b", "a/b/c"] {
                assert_eq!(ids(&dir.path().join(p)), (4242, 4343), "{p}");
            }
        }
    }
}
