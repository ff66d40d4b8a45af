//! The container's root filesystem, built inside its mount namespace: spec mounts (resolved with
//! `secure_join`), `/sys/fs/cgroup`, devices, `pivot_root`, masked and read-only paths.

use super::plan::{MountOp, Plan};
use super::{errno, step, Step};
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

pub(super) fn mount(src: &CStr, dst: &CStr, fstype: &CStr, flags: libc::c_ulong, data: &CStr) -> libc::c_int {
    let p = |c: &CStr| if c.is_empty() { std::ptr::null() } else { c.as_ptr() };
    // SAFETY: all pointers are NUL-terminated strings or null, valid for the call.
    unsafe { libc::mount(p(src), dst.as_ptr(), p(fstype), flags, p(data).cast()) }
}

pub(super) const EMPTY: &CStr = c"";

pub(super) fn path_c(p: &Path) -> Step<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| (125, format!("path with a NUL byte: {}", p.display())))
}

/// Joins `unsafe_path` to `root` resolving symlinks as if `root` were `/` (runc's `securejoin`), so a
/// symlink in the image cannot send a mount outside the rootfs.
pub(super) fn secure_join(root: &Path, unsafe_path: &str) -> Step<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut queue: VecDeque<std::ffi::OsString> = Path::new(unsafe_path)
        .components()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        match Path::new(&c).components().next() {
            None | Some(Component::RootDir) | Some(Component::CurDir) => continue,
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let cand = resolved.join(&c);
        match std::fs::read_link(root.join(&cand)) {
            Ok(target) => {
                links += 1;
                if links > 255 {
                    return Err((125, format!("too many symlinks resolving {unsafe_path}")));
                }
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for (i, tc) in target.components().map(|c| c.as_os_str().to_os_string()).enumerate() {
                    queue.insert(i, tc);
                }
            }
            Err(_) => resolved = cand,
        }
    }
    Ok(root.join(resolved))
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

/// [`touch`] whose new file and parents belong to `owner`.
pub(super) fn touch_owned(p: &Path, owner: Option<(u32, u32)>) -> Step {
    let Some((uid, gid)) = owner else {
        return touch(p);
    };
    if let Some(parent) = p.parent() {
        mkdir_all_owned(parent, owner)?;
    }
    let existed = std::fs::symlink_metadata(p).is_ok();
    touch(p)?;
    if !existed {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(|e| (125, format!("chown {}: {e}", p.display())))?;
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

pub(super) fn do_mount(plan: &Plan, m: &MountOp) -> Step {
    if m.kind == "cgroup" {
        return mount_cgroup(plan, m);
    }
    let dest = secure_join(&plan.rootfs, &m.dest)?;
    let is_bind = m.flags & libc::MS_BIND != 0;
    if is_bind && !m.source_path.is_dir() {
        touch_owned(&dest, plan.root_ids)?;
    } else {
        mkdir_all_owned(&dest, plan.root_ids)?;
    }
    let dest_c = path_c(&dest)?;
    let what = || format!("error mounting {:?} to rootfs at {:?}", m.source_path, m.dest);
    if is_bind {
        step(
            mount(
                &m.source,
                &dest_c,
                EMPTY,
                m.flags & (libc::MS_BIND | libc::MS_REC),
                EMPTY,
            ),
            what,
        )?;
        let extra = m.flags & !(libc::MS_BIND | libc::MS_REC);
        if extra != 0 {
            let f = libc::MS_BIND | libc::MS_REMOUNT | extra | locked_flags(&dest_c);
            step(mount(EMPTY, &dest_c, EMPTY, f, EMPTY), what)?;
        }
    } else {
        step(mount(&m.source, &dest_c, &m.fstype, m.flags, &m.data), what)?;
    }
    if m.propagation != 0 {
        step(mount(EMPTY, &dest_c, EMPTY, m.propagation, EMPTY), what)?;
    }
    Ok(())
}

/// `/sys/fs/cgroup`: the container's own cgroup directories, bind-mounted (v1: a tmpfs with one
/// directory per hierarchy; v2: the directory itself).
pub(super) fn mount_cgroup(plan: &Plan, m: &MountOp) -> Step {
    if plan.cgroup_mounts.is_empty() {
        return Ok(());
    }
    let dest = secure_join(&plan.rootfs, &m.dest)?;
    mkdir_all(&dest)?;
    let dest_c = path_c(&dest)?;
    let what = || "error mounting cgroup to rootfs at \"/sys/fs/cgroup\"".to_string();
    let ro = m.flags & libc::MS_RDONLY;
    let bind_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | ro;
    let bind = |src: &Path, dst: &CStr| -> Step {
        step(mount(&path_c(src)?, dst, EMPTY, libc::MS_BIND, EMPTY), what)?;
        step(
            mount(EMPTY, dst, EMPTY, libc::MS_BIND | libc::MS_REMOUNT | bind_flags, EMPTY),
            what,
        )
    };
    if let [(name, dir)] = plan.cgroup_mounts.as_slice() {
        if name.is_empty() {
            return bind(dir, &dest_c);
        }
    }
    let tmpfs_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    step(mount(c"tmpfs", &dest_c, c"tmpfs", tmpfs_flags, c"mode=755"), what)?;
    for (name, dir) in &plan.cgroup_mounts {
        let sub = dest.join(name);
        mkdir_all(&sub)?;
        bind(dir, &path_c(&sub)?)?;
        // Co-mounted controllers (`cpu,cpuacct`) are also reachable by each name, as on the host.
        if name.contains(',') {
            for part in name.split(',') {
                let _ = std::os::unix::fs::symlink(name, dest.join(part));
            }
        }
    }
    if ro != 0 {
        step(
            mount(EMPTY, &dest_c, EMPTY, libc::MS_REMOUNT | tmpfs_flags | ro, EMPTY),
            what,
        )?;
    }
    Ok(())
}

pub(super) fn create_devices(plan: &Plan) -> Step {
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0) };
    for d in &plan.devices {
        let p = secure_join(&plan.rootfs, &d.path)?;
        if let Some(parent) = p.parent() {
            mkdir_all(parent)?;
        }
        let pc = path_c(&p)?;
        // SAFETY: pc is a valid path; mknod creates a node or fails.
        let r = unsafe { libc::mknod(pc.as_ptr(), d.mode, d.dev) };
        if r != 0 {
            let e = errno();
            if e.raw_os_error() == Some(libc::EEXIST) {
                continue;
            }
            // No CAP_MKNOD (user namespace): bind the host's node instead.
            touch(&p)?;
            step(mount(&d.host_path, &pc, EMPTY, libc::MS_BIND, EMPTY), || {
                format!("creating device {}", d.path)
            })?;
            continue;
        }
        // SAFETY: pc is a valid path.
        step(unsafe { libc::chown(pc.as_ptr(), d.uid, d.gid) }, || {
            format!("chown device {}", d.path)
        })?;
    }
    // SAFETY: restores the mask.
    unsafe { libc::umask(old) };
    let dev = plan.rootfs.join("dev");
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        match std::os::unix::fs::symlink(target, dev.join(link)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err((125, format!("creating symlink /dev/{link}: {e}"))),
        }
    }
    Ok(())
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
    fn mkdir_and_touch_owned_chown_only_what_they_create() {
        let dir = tempfile::tempdir().expect("tmp");
        let existing = dir.path().join("a");
        std::fs::create_dir(&existing).expect("mkdir");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let owner = if root { Some((4242, 4343)) } else { None };
        mkdir_all_owned(&existing.join("b/c"), owner).expect("mkdir");
        touch_owned(&existing.join("d/e"), owner).expect("touch");
        use std::os::unix::fs::MetadataExt;
        let ids = |p: &Path| {
            let md = std::fs::symlink_metadata(p).expect("stat");
            (md.uid(), md.gid())
        };
        if root {
            assert_eq!(ids(&existing), (0, 0), "existing dirs keep their owner");
            for p in ["a/b", "a/b/c", "a/d", "a/d/e"] {
                assert_eq!(ids(&dir.path().join(p)), (4242, 4343), "{p}");
            }
        }
        assert!(dir.path().join("a/d/e").is_file());
    }

    #[test]
    fn secure_join_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("a/b/up")).unwrap();
        assert_eq!(secure_join(r, "/a/abs/hosts").unwrap(), r.join("etc/hosts"));
        assert_eq!(secure_join(r, "/a/b/up/x").unwrap(), r.join("x"));
        assert_eq!(secure_join(r, "../../x").unwrap(), r.join("x"));
        assert_eq!(secure_join(r, "/a/b/c").unwrap(), r.join("a/b/c"));
    }
}
