//! `exec`: an extra process in a running container (`docker exec`), set up like runc's `exec`.
//!
//! The parent forks a helper that opens every namespace of the container's init
//! (`/proc/<init>/ns/*`) before it joins any, joins them, and clones the process itself with
//! `CLONE_PARENT` (joining a pid namespace only applies to children), so the process is the shim's
//! child and the helper exits at once. berth's init creates its namespaces as host root and unshares
//! its user namespace last, so the other namespaces belong to the host's user namespace: they are
//! joined first (needing host root's capabilities) and the user namespace last.
//!
//! Parent/child protocol, on the same two `O_CLOEXEC` pipes as [`super::create`]:
//! - helper -> parent: `P` + the process's host pid (i32 LE), or `E` + code (i32 LE) + message.
//! - parent -> process: `G` once it is in the container's cgroup, then `S` to exec. EOF aborts it.
//! - process -> parent: `R` when set up, or `E` + code + message; after `S`, EOF means the exec
//!   succeeded, `E...` that it failed (Docker's codes: 127 not found, 126 not executable, 125 other).

use super::console::setup_console;
use super::process::{apply_limits, exec_when_started, ProcessPlan};
use super::{
    abandon_child, child_error, cpath, cstr, errno, join_cgroup, parse_report, pipe, report, step, CreateError,
    CreatedProcess, Stdio, Step,
};
use crate::cgroups::CgroupManager;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// What [`exec`] needs.
pub struct ExecOptions<'a> {
    /// The container's init, as seen from the host: its namespaces are joined.
    pub init_pid: i32,
    /// The container's spec (`config.json`): which namespaces it has, its seccomp profile.
    pub spec: &'a Spec,
    /// The process to run (args, env, cwd, user, capabilities, rlimits, terminal).
    pub process: &'a Process,
    /// The process's stdio (`Stdio::Console` when `process.terminal`).
    pub stdio: Stdio,
    /// The container's cgroup; the process joins it before it may exec.
    pub cgroup: Option<&'a dyn CgroupManager>,
    /// Where compiled seccomp filters are cached (see [`crate::seccomp::compile_bpf`]).
    pub seccomp_cache: Option<&'a Path>,
    /// The spec's seccomp profile already compiled by [`crate::seccomp::compile_bpf`] (a caller
    /// that execs often keeps it, and may then pass a spec without the profile); `None` compiles
    /// the spec's (through the cache).
    pub seccomp_bpf: Option<&'a [u8]>,
    /// Let the process exec as soon as it is set up, without waiting for
    /// [`CreatedProcess::start`] (which must still be called: it reports how the exec went).
    /// Saves a round trip when the caller has nothing to do in between.
    pub start: bool,
}

/// The kernel's name of a namespace under `/proc/<pid>/ns/`.
fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The order namespaces are joined in: the user namespace last (see the module header), the mount
/// namespace first (its root becomes our root and working directory).
fn join_order(t: LinuxNamespaceType) -> u8 {
    match t {
        LinuxNamespaceType::Mount => 0,
        LinuxNamespaceType::Pid => 1,
        LinuxNamespaceType::Ipc => 2,
        LinuxNamespaceType::Uts => 3,
        LinuxNamespaceType::Network => 4,
        LinuxNamespaceType::Cgroup => 5,
        LinuxNamespaceType::Time => 6,
        LinuxNamespaceType::User => 7,
    }
}

/// The namespaces of the container's init to join, in join order: `(path, CLONE_NEW*)`.
fn namespaces(spec: &Spec, init_pid: i32) -> Result<Vec<(CString, libc::c_int)>, CreateError> {
    let mut types: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    types.sort_by_key(|t| join_order(*t));
    types.dedup();
    types
        .into_iter()
        .map(|t| Ok((cstr(format!("/proc/{init_pid}/ns/{}", ns_name(t)))?, t as libc::c_int)))
        .collect()
}

/// Everything the helper and the process do, computed before `fork`.
struct ExecPlan {
    join: Vec<(CString, libc::c_int)>,
    process: ProcessPlan,
    stdio: Stdio,
    seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    seccomp_cache: Option<std::path::PathBuf>,
    seccomp_bpf: Option<Vec<u8>>,
    /// The cgroup files the helper writes `0` to before it clones the process, so the process is
    /// born in the container's cgroup ([`CgroupManager::self_join_files`]); empty: the parent
    /// moves the process by pid.
    cgroup_tasks: Vec<CString>,
}

/// Starts `o.process` in the container of `o.init_pid`; unless `o.start`, it waits for
/// [`CreatedProcess::start`] to exec, so its stdio can be attached first. A short-lived helper
/// child (which joins the namespaces) is left for the caller to reap with its other children.
pub fn exec(o: &ExecOptions) -> Result<CreatedProcess, CreateError> {
    let plan = ExecPlan {
        join: namespaces(o.spec, o.init_pid)?,
        process: ProcessPlan::new(o.process)?,
        stdio: o.stdio,
        // A filter compiled by the caller stands for the spec's profile (which need not be kept).
        seccomp: match o.seccomp_bpf {
            Some(_) => None,
            None => o.spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
        },
        seccomp_cache: o.seccomp_cache.map(Path::to_path_buf),
        seccomp_bpf: o.seccomp_bpf.map(<[u8]>::to_vec),
        cgroup_tasks: o
            .cgroup
            .map(|c| c.self_join_files())
            .unwrap_or_default()
            .iter()
            .map(|p| cpath(p))
            .collect::<Result<_, _>>()?,
    };
    let (p2c_r, p2c_w) = pipe()?;
    let (c2p_r, c2p_w) = pipe()?;
    // SAFETY: the shim is single-threaded, so the child may allocate; it only runs `helper`, which
    // never returns.
    let helper_pid = unsafe { libc::fork() };
    if helper_pid < 0 {
        return Err(CreateError::other(format!("fork: {}", errno())));
    }
    if helper_pid == 0 {
        drop(p2c_w);
        drop(c2p_r);
        helper(&plan, p2c_r, c2p_w);
    }
    drop(p2c_r);
    drop(c2p_w);
    let mut r = std::fs::File::from(c2p_r);
    let mut head = [0u8; 5];
    let got = read_full(&mut r, &mut head);
    // The helper exits right after reporting; it is not waited for here (its exit would sit on the
    // exec's critical path): the caller's SIGCHLD reaping collects it, as any child of its.
    let pid = match got {
        Ok(5) if head[0] == b'P' => i32::from_le_bytes([head[1], head[2], head[3], head[4]]),
        Ok(n) if n > 0 && head[0] == b'E' => {
            let mut buf = head[..n].to_vec();
            let _ = r.read_to_end(&mut buf);
            return Err(parse_report(&buf).unwrap_or_else(|| CreateError::other("exec helper sent a bad report")));
        }
        Ok(_) => return Err(CreateError::other("exec helper exited during setup")),
        Err(e) => return Err(CreateError::other(format!("reading exec helper report: {e}"))),
    };
    let fail = |msg: String| abandon_child(pid, msg);
    if plan.cgroup_tasks.is_empty() {
        join_cgroup(o.cgroup, pid)?;
    }
    let mut w = std::fs::File::from(p2c_w);
    // `G`: go on with the set-up; `S` right behind it: exec once ready, without a round trip.
    let go: &[u8] = if o.start { b"GS" } else { b"G" };
    if let Err(e) = w.write_all(go) {
        return Err(fail(format!("signalling exec process: {e}")));
    }
    let mut first = [0u8; 1];
    match r.read(&mut first) {
        Ok(1) if first[0] == b'R' => Ok(CreatedProcess {
            pid,
            to_child: w.into(),
            from_child: r.into(),
            start_sent: o.start,
        }),
        Ok(1) => Err(child_error(pid, first[0], &mut r)),
        Ok(_) => Err(fail("exec process exited during setup".into())),
        Err(e) => Err(fail(format!("reading exec process report: {e}"))),
    }
}

/// Reads until `buf` is full or EOF; returns how much was read.
fn read_full(r: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The forked helper: joins the namespaces and clones the process. Never returns.
fn helper(plan: &ExecPlan, from_parent: OwnedFd, to_parent: OwnedFd) -> ! {
    let code = match helper_setup(plan, &from_parent, &to_parent) {
        Ok(()) => 0,
        Err((code, msg)) => {
            report(&to_parent, code, &msg);
            code
        }
    };
    // SAFETY: _exit ends the helper without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

fn helper_setup(plan: &ExecPlan, from_parent: &OwnedFd, to_parent: &OwnedFd) -> Step {
    // SAFETY: resetting this process's signal mask and dispositions.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for s in [libc::SIGPIPE, libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(s, libc::SIG_DFL);
        }
    }
    let mut keep = vec![from_parent.as_raw_fd(), to_parent.as_raw_fd()];
    match plan.stdio {
        Stdio::Fds { stdin, stdout, stderr } => {
            for (src, dst) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
                // SAFETY: duplicating descriptors the shim passed us onto 0..2.
                step(unsafe { libc::dup2(src, dst) }, || "setting up stdio".into())?;
            }
        }
        Stdio::Console { socket, .. } => keep.push(socket),
    }
    // The shim's other descriptors (other processes' pipes and ptys, its sockets) must not be held
    // by this process until it execs: an EOF the shim waits for would never come.
    close_fds_except(&keep);
    // Into the container's cgroup while the host's cgroup files are visible: the process cloned
    // below is born there.
    for path in &plan.cgroup_tasks {
        join_cgroup_self(path).map_err(|e| (125, format!("joining cgroup: {path:?}: {e}")))?;
    }
    // Compiled here, while the host's cache directory is still visible.
    let seccomp_bpf = match &plan.seccomp {
        _ if plan.seccomp_bpf.is_some() => plan.seccomp_bpf.clone(),
        Some(p) => {
            Some(crate::seccomp::compile_bpf(p, plan.seccomp_cache.as_deref()).map_err(|e| (125, e.to_string()))?)
        }
        None => None,
    };
    // Open every namespace first: after joining the mount namespace `/proc/<pid>` is the container's.
    let mut fds = Vec::with_capacity(plan.join.len());
    for (path, nstype) in &plan.join {
        // SAFETY: path is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        step(fd, || format!("opening namespace {path:?}"))?;
        // SAFETY: fd is a fresh descriptor nothing else owns.
        fds.push((unsafe { OwnedFd::from_raw_fd(fd) }, *nstype, path));
    }
    for (fd, nstype, path) in &fds {
        if same_namespace(fd, *nstype) {
            // Already ours (a namespace the container shares with the host, `--pid=host` and the
            // like): joining our own user namespace would fail with EINVAL.
            continue;
        }
        // SAFETY: fd is a namespace descriptor we opened.
        step(unsafe { libc::setns(fd.as_raw_fd(), *nstype) }, || {
            format!("joining namespace {path:?}")
        })?;
    }
    drop(fds);
    // SAFETY: clone without CLONE_VM and a null stack behaves like fork(2); CLONE_PARENT makes the
    // process the shim's child. Single-threaded, so the child may allocate.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_PARENT as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err((125, format!("clone: {}", errno())));
    }
    if pid > 0 {
        let mut msg = [b'P', 0, 0, 0, 0];
        msg[1..].copy_from_slice(&(pid as i32).to_le_bytes());
        // SAFETY: writing a local buffer to a descriptor we own.
        if unsafe { libc::write(to_parent.as_raw_fd(), msg.as_ptr().cast(), msg.len()) } != msg.len() as isize {
            return Err((125, "reporting the exec process".into()));
        }
        return Ok(());
    }
    // The process itself, inside every namespace of the container.
    let code = match process_setup(plan, seccomp_bpf.as_deref(), from_parent, to_parent) {
        Ok(never) => match never {},
        Err((code, msg)) => {
            report(to_parent, code, &msg);
            code
        }
    };
    // SAFETY: _exit ends the process without running destructors.
    unsafe { libc::_exit(code) }
}

fn process_setup(
    plan: &ExecPlan,
    seccomp_bpf: Option<&[u8]>,
    from_parent: &OwnedFd,
    to_parent: &OwnedFd,
) -> Step<std::convert::Infallible> {
    // Wait until the shim put us in the container's cgroup.
    match super::read_byte(from_parent) {
        Some(b'G') => {}
        _ => return Err((125, "parent went away".into())),
    }
    if let Stdio::Console { socket, rows, cols } = plan.stdio {
        setup_console(socket, rows, cols, None, false)?;
    }
    apply_limits(&plan.process)?;
    exec_when_started(&plan.process, seccomp_bpf, from_parent, to_parent)
}

/// Moves this (single-threaded) process into a v1 cgroup by writing `0` to its `tasks` file.
fn join_cgroup_self(path: &CString) -> std::io::Result<()> {
    // SAFETY: path is a valid C string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: writing a static buffer to a descriptor we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
    if n != 1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` (a namespace) is the one this process is already in.
fn same_namespace(fd: &OwnedFd, nstype: libc::c_int) -> bool {
    let name = match nstype {
        libc::CLONE_NEWNS => "mnt",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "net",
        _ => return false,
    };
    // The pid namespace our children are born in (`pid_for_children`) is what a join changes.
    let own = if nstype == libc::CLONE_NEWPID {
        "/proc/self/ns/pid_for_children".to_string()
    } else {
        format!("/proc/self/ns/{name}")
    };
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::File::from(match fd.try_clone() {
        Ok(f) => f,
        Err(_) => return false,
    });
    match (theirs.metadata(), std::fs::metadata(own)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Closes every descriptor from 3 up except `keep` (whose numbers must be 3 or more to survive).
fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep.iter().filter(|fd| **fd >= 3).map(|fd| *fd as u32).collect();
    keep.sort_unstable();
    let mut from = 3u32;
    for k in keep.iter().copied().chain(std::iter::once(u32::MAX)) {
        if k > from {
            let to = if k == u32::MAX { u32::MAX } else { k - 1 };
            // SAFETY: close_range closes descriptors of this process only; no memory is passed.
            let r = unsafe { libc::syscall(libc::SYS_close_range, from, to, 0u32) };
            if r != 0 {
                // Kernels before 5.9: close one by one up to a sane bound.
                let end = to.min(65_535);
                for fd in from..=end {
                    // SAFETY: closing a descriptor number of our own; EBADF is ignored.
                    unsafe { libc::close(fd as RawFd) };
                }
            }
        }
        from = k.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_join_user_last_and_mount_first() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"namespaces": [
                {"type": "user"}, {"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"},
                {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ]}
        }))
        .unwrap();
        let got: Vec<(String, libc::c_int)> = namespaces(&spec, 42)
            .unwrap()
            .into_iter()
            .map(|(p, t)| (p.into_string().unwrap(), t))
            .collect();
        let want = [
            ("mnt", libc::CLONE_NEWNS),
            ("pid", libc::CLONE_NEWPID),
            ("ipc", libc::CLONE_NEWIPC),
            ("uts", libc::CLONE_NEWUTS),
            ("net", libc::CLONE_NEWNET),
            ("cgroup", libc::CLONE_NEWCGROUP),
            ("user", libc::CLONE_NEWUSER),
        ];
        assert_eq!(got.len(), want.len());
        for ((path, t), (name, flag)) in got.iter().zip(want) {
            assert_eq!(path, &format!("/proc/42/ns/{name}"));
            assert_eq!(*t, flag);
        }
    }

    #[test]
    fn own_namespaces_are_recognised() {
        let fd: OwnedFd = std::fs::File::open("/proc/self/ns/uts").unwrap().into();
        assert!(same_namespace(&fd, libc::CLONE_NEWUTS));
        assert!(!same_namespace(&fd, libc::CLONE_NEWNET));
    }
}
