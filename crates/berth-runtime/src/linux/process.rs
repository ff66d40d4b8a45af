//! The container's process: command lookup, user and groups, capabilities, rlimits, descriptors.

use super::plan::Plan;
use super::rootfs::path_c;
use super::{errno, step, Step};
use caps::{CapSet, CapsHashSet};
use std::ffi::CString;
use std::path::Path;

/// Go's `exec.LookPath` inside the container, with runc's messages and Docker's exit codes.
pub(super) fn look_path(plan: &Plan) -> Step<CString> {
    let name = plan.args[0].to_string_lossy().into_owned();
    let check = |p: &Path| -> Result<(), std::io::Error> {
        let md = std::fs::metadata(p)?;
        if md.is_dir() {
            return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
        }
        if std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o111 == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    let code_for = |e: &std::io::Error| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EISDIR) => 126,
        _ => 125,
    };
    let strip = |e: &std::io::Error| {
        let s = e.to_string();
        match s.find(" (os error") {
            Some(i) => s[..i].to_lowercase(),
            None => s,
        }
    };
    if name.contains('/') {
        return match check(Path::new(&name)) {
            Ok(()) => Ok(plan.args[0].clone()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                Err((127, format!("exec: \"{name}\": stat {name}: {}", strip(&e))))
            }
            Err(e) => Err((code_for(&e), format!("exec: \"{name}\": {}", strip(&e)))),
        };
    }
    for dir in plan.path_env.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(&name);
        if check(&cand).is_ok() {
            return path_c(&cand);
        }
    }
    Err((127, format!("exec: \"{name}\": executable file not found in $PATH")))
}

pub(super) fn setup_user_and_caps(plan: &Plan) -> Step {
    let what = |s: &'static str| move || s.to_string();
    if let Some(bounding) = &plan.bounding {
        for c in caps::all() {
            if !bounding.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
                caps::drop(None, CapSet::Bounding, c)
                    .map_err(|e| (125, format!("dropping bounding capability {c}: {e}")))?;
            }
        }
    }
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    step(r, what("keepcaps"))?;
    // SAFETY: gids is a valid array of gid_t of the given length.
    let r = unsafe { libc::setgroups(plan.gids.len(), plan.gids.as_ptr()) };
    step(r, what("setgroups"))?;
    // SAFETY: plain id syscalls.
    step(unsafe { libc::setresgid(plan.gid, plan.gid, plan.gid) }, what("setgid"))?;
    // SAFETY: plain id syscalls.
    step(unsafe { libc::setresuid(plan.uid, plan.uid, plan.uid) }, what("setuid"))?;
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    step(r, what("keepcaps"))?;
    // Keep every permitted capability effective until seccomp is loaded (needs CAP_SYS_ADMIN without
    // no_new_privs); the final sets are applied right before exec.
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| (125, format!("reading capabilities: {e}")))?;
    caps::set(None, CapSet::Effective, &permitted).map_err(|e| (125, format!("setting capabilities: {e}")))?;
    Ok(())
}

/// setrlimit; without CAP_SYS_RESOURCE a hard limit above ours cannot be had, so it is clamped to
/// ours (the default `nofile` may exceed what the daemon itself got).
pub(super) fn set_rlimit(res: libc::c_int, soft: u64, hard: u64) -> Step {
    let rl = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: rl is a valid rlimit.
    if unsafe { libc::setrlimit(res as _, &rl) } == 0 {
        return Ok(());
    }
    let e = errno();
    // SAFETY: zeroed rlimit filled by getrlimit.
    let mut cur: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: cur is a valid out-pointer.
    let got = unsafe { libc::getrlimit(res as _, &mut cur) } == 0;
    if e.raw_os_error() == Some(libc::EPERM) && got && hard > cur.rlim_max {
        let rl = libc::rlimit {
            rlim_cur: soft.min(cur.rlim_max),
            rlim_max: cur.rlim_max,
        };
        // SAFETY: rl is a valid rlimit.
        return step(unsafe { libc::setrlimit(res as _, &rl) }, || format!("setrlimit {res}"));
    }
    Err((125, format!("setrlimit {res}: {e}")))
}

pub(super) fn final_caps(plan: &Plan) -> Step {
    let err = |e: caps::errors::CapsError| (125, format!("applying capabilities: {e}"));
    // Capabilities the shim itself lacks (a restricted host) cannot be granted: clamp to ours.
    let ours = caps::read(None, CapSet::Permitted).map_err(err)?;
    let permitted: CapsHashSet = plan.permitted.intersection(&ours).copied().collect();
    let eff: CapsHashSet = plan.effective.intersection(&permitted).copied().collect();
    caps::set(None, CapSet::Effective, &eff).map_err(err)?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(err)?;
    caps::set(None, CapSet::Inheritable, &plan.inheritable).map_err(err)?;
    for c in &plan.ambient {
        caps::raise(None, CapSet::Ambient, *c).map_err(err)?;
    }
    Ok(())
}

/// Sets close-on-exec on every descriptor from `first` up.
pub(super) fn mark_cloexec_from(first: u32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return;
    }
    // Kernels before 5.11: walk the descriptor table up to the soft limit.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(65536) as i32
    } else {
        1024
    };
    for fd in first as i32..max {
        // SAFETY: fcntl on a descriptor number; EBADF for unused ones is ignored.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}
