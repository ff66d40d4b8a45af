//! The container's process: command lookup, user and groups, capabilities, rlimits, descriptors,
//! and the last steps before `execve` (shared by the init and exec'd processes).

use super::rootfs::path_c;
use super::{cstr, errno, read_byte, step, CreateError, Step};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{PosixRlimitType, Process};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::str::FromStr;

/// The spec's `process`, resolved before `clone`/`fork`: what the child applies before exec.
pub(super) struct ProcessPlan {
    rlimits: Vec<(libc::c_int, u64, u64)>,
    oom_score_adj: Option<i32>,
    uid: u32,
    gid: u32,
    gids: Vec<libc::gid_t>,
    bounding: Option<CapsHashSet>,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
    nnp: bool,
    cwd: String,
    args: Vec<CString>,
    env: Vec<CString>,
    path_env: String,
}

impl ProcessPlan {
    /// Resolves `process` (capability names, rlimit types, C strings).
    pub(super) fn new(process: &Process) -> Result<Self, CreateError> {
        let caps = process.capabilities().as_ref();
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let path_env = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(crate::spec::DEFAULT_PATH)
            .to_string();
        let args: Vec<String> = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(CreateError::other("no command specified"));
        }
        let user = process.user();
        Ok(ProcessPlan {
            rlimits: process
                .rlimits()
                .iter()
                .flatten()
                .map(|r| (rlimit_resource(r.typ()), r.soft(), r.hard()))
                .collect(),
            oom_score_adj: process.oom_score_adj(),
            uid: user.uid(),
            gid: user.gid(),
            gids: user.additional_gids().clone().unwrap_or_default(),
            bounding: caps.map(|c| caps_set(c.bounding().as_ref())).transpose()?,
            effective: caps_set(caps.and_then(|c| c.effective().as_ref()))?,
            permitted: caps_set(caps.and_then(|c| c.permitted().as_ref()))?,
            inheritable: caps_set(caps.and_then(|c| c.inheritable().as_ref()))?,
            ambient: caps_set(caps.and_then(|c| c.ambient().as_ref()))?,
            nnp: process.no_new_privileges().unwrap_or(false),
            cwd: process.cwd().to_string_lossy().into_owned(),
            args: args.iter().map(cstr).collect::<Result<_, _>>()?,
            env: env.iter().map(cstr).collect::<Result<_, _>>()?,
            path_env,
        })
    }

    /// The working directory (`/` when the spec leaves it empty).
    pub(super) fn cwd(&self) -> &Path {
        Path::new(if self.cwd.is_empty() { "/" } else { &self.cwd })
    }
}

/// rlimits and `oom_score_adj`, applied while still privileged.
pub(super) fn apply_limits(plan: &ProcessPlan) -> Step {
    for (res, soft, hard) in &plan.rlimits {
        set_rlimit(*res, *soft, *hard)?;
    }
    if let Some(adj) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| (125, format!("writing oom_score_adj: {e}")))?;
    }
    Ok(())
}

/// The end of the child, after the parent's `G`: user and groups, working directory, command lookup,
/// `R`, then on `S` no_new_privs, seccomp, the final capabilities and `execve`. Returns only on failure.
pub(super) fn exec_when_started(
    plan: &ProcessPlan,
    seccomp_bpf: Option<&[u8]>,
    from_parent: &OwnedFd,
    to_parent: &OwnedFd,
) -> Step<std::convert::Infallible> {
    setup_user_and_caps(plan)?;
    let cwd_c = path_c(plan.cwd())?;
    // SAFETY: cwd_c is a valid path.
    if unsafe { libc::chdir(cwd_c.as_ptr()) } != 0 {
        let e = errno();
        return Err((
            125,
            format!("chdir to cwd ({:?}) set in config.json failed: {e}", plan.cwd),
        ));
    }
    let exe = look_path(plan)?;
    let mut argv: Vec<*const libc::c_char> = plan.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: umask only affects this process.
    unsafe { libc::umask(0o022) };

    // Ready; wait for start (EOF: the shim gave up on us).
    // SAFETY: writing one byte from a static buffer.
    if unsafe { libc::write(to_parent.as_raw_fd(), b"R".as_ptr().cast(), 1) } != 1 {
        return Err((125, "reporting readiness".into()));
    }
    match read_byte(from_parent) {
        Some(b'S') => {}
        // SAFETY: nothing to clean up: exit quietly.
        _ => unsafe { libc::_exit(0) },
    }
    // Only stdio crosses into the container: whatever else the engine or the shim inherited
    // (descriptors leaked by whoever started berthd) is closed at exec, as runc does.
    mark_cloexec_from(3);
    if plan.nnp {
        // SAFETY: prctl with integer arguments.
        step(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, || {
            "no_new_privs".into()
        })?;
    }
    if let Some(bpf) = seccomp_bpf {
        crate::seccomp::load_bpf(bpf).map_err(|e| (125, format!("loading seccomp filter: {e}")))?;
    }
    final_caps(plan)?;
    // SAFETY: exe, argv and envp are NUL-terminated and outlive the call.
    unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = errno();
    let code = match e.raw_os_error() {
        Some(libc::ENOENT) => 127,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::ENOEXEC) => 126,
        _ => 125,
    };
    let msg = e.to_string();
    let msg = msg.split(" (os error").next().unwrap_or(&msg).to_lowercase();
    Err((code, format!("exec {}: {msg}", plan.args[0].to_string_lossy())))
}

pub(crate) fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

fn caps_set(set: Option<&oci_spec::runtime::Capabilities>) -> Result<CapsHashSet, CreateError> {
    let mut out = CapsHashSet::new();
    for c in set.into_iter().flatten() {
        let name = format!("CAP_{c}");
        match Capability::from_str(&name) {
            Ok(c) => {
                out.insert(c);
            }
            // A capability this kernel or crate does not know is skipped, as runc does.
            Err(_) => continue,
        }
    }
    Ok(out)
}

/// Go's `exec.LookPath` inside the container, with runc's messages and Docker's exit codes.
pub(super) fn look_path(plan: &ProcessPlan) -> Step<CString> {
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

pub(super) fn setup_user_and_caps(plan: &ProcessPlan) -> Step {
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

pub(super) fn final_caps(plan: &ProcessPlan) -> Step {
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
