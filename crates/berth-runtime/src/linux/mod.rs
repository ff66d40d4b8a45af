//! berth's own Linux runtime: clones the container's init into new namespaces, builds its root
//! filesystem inside the new mount namespace (so nothing is mounted on the host), applies the OCI
//! spec, and execs the process once [`CreatedContainer::start`] is called.
//!
//! Everything the child needs is prepared in the parent ([`Plan`]) before `clone(2)`: the child only
//! makes syscalls. The shim is single-threaded, so the child (a fork-like clone without `CLONE_VM`)
//! may allocate.
//!
//! Parent/child protocol, on two `O_CLOEXEC` pipes:
//! - parent -> child: `G` once the child is in its cgroup (and, with a user namespace, its id maps are
//!   written), then `S` to exec. EOF aborts the container.
//! - child -> parent: with a user namespace, `U` once it unshared it (the filesystem is set up as real
//!   root first); `R` when set up, or `E` + code (i32 LE) + message. After `S`, EOF means the exec
//!   succeeded (the pipe is close-on-exec), `E...` that it failed.
//!
//! The modules follow youki's libcontainer: [`rootfs`] (overlay, mounts, devices, `pivot_root`, masked
//! and read-only paths), [`inroot`] (mount destinations resolved and created inside the rootfs through
//! descriptors, mounted through `/proc/self/fd` and verified: no symlink race sends a mount out), [`namespaces`], [`process`] (user, capabilities, rlimits, exec), [`console`]
//! (the pty), [`idmap`] (user namespace id mappings) and `plan` (what the child does, computed before
//! `clone`).

mod console;
mod exec;
mod idmap;
mod inroot;
mod namespaces;
mod plan;
mod process;
mod rootfs;

use crate::cgroups::CgroupManager;
use console::setup_console;
use namespaces::loopback_up;
use oci_spec::runtime::Spec;
use plan::Plan;
use process::{apply_limits, exec_when_started};
use rootfs::{create_devices, do_mount, mask_and_readonly, mkdir_all_owned, mount, pivot_root, EMPTY};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) use console::send_fd;
pub use exec::{exec, ExecOptions};
pub(crate) use process::rlimit_resource;

pub use berth_types::RootfsMount;

/// The container's stdin, stdout and stderr.
#[derive(Debug, Clone, Copy)]
pub enum Stdio {
    /// Descriptors that become fds 0, 1 and 2.
    Fds {
        /// Becomes fd 0.
        stdin: RawFd,
        /// Becomes fd 1.
        stdout: RawFd,
        /// Becomes fd 2.
        stderr: RawFd,
    },
    /// A terminal (`process.terminal`), made as runc makes it: the init opens a pty in the container's
    /// own devpts (`/dev/pts/ptmx`, so the slave is `/dev/pts/0`), makes the slave its stdio,
    /// controlling terminal and `/dev/console`, applies the initial size, and sends the master over
    /// `socket` (a unix socket, `SCM_RIGHTS`; runc's `--console-socket`) before it reports ready.
    Console {
        /// The sending end of a unix socket pair; the caller receives the master on the other end.
        socket: RawFd,
        /// Initial rows (0: leave unset).
        rows: u16,
        /// Initial columns (0: leave unset).
        cols: u16,
    },
}

/// What [`create`] needs.
pub struct CreateOptions<'a> {
    /// The OCI spec (`root.path` is where the rootfs is mounted, inside the container's namespace).
    pub spec: &'a Spec,
    /// The rootfs mount.
    pub rootfs: &'a RootfsMount,
    /// The container's stdio.
    pub stdio: Stdio,
    /// The container's cgroup, already created; the child joins it before it may exec.
    pub cgroup: Option<&'a dyn CgroupManager>,
    /// Where compiled seccomp filters are cached (see [`crate::seccomp::compile_bpf`]).
    pub seccomp_cache: Option<&'a Path>,
}

/// Why a container could not be created or started, with the exit code Docker reports for it
/// (127 command not found, 126 not executable, 125 anything else).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CreateError {
    /// Docker's wording, e.g. `exec: "foo": executable file not found in $PATH`.
    pub message: String,
    /// 125, 126 or 127.
    pub exit_code: i32,
}

impl CreateError {
    fn other(message: impl Into<String>) -> Self {
        CreateError {
            message: message.into(),
            exit_code: 125,
        }
    }
}

impl berth_types::HasErrorKind for CreateError {
    fn kind(&self) -> berth_types::ErrorKind {
        berth_types::ErrorKind::Internal
    }
}

/// A container's process (its init, or one started by [`exec`]) that is set up and waits to exec.
#[derive(Debug)]
pub struct CreatedProcess {
    pid: i32,
    to_child: OwnedFd,
    from_child: OwnedFd,
    /// The start byte went with the go-ahead ([`ExecOptions::start`]).
    start_sent: bool,
}

/// The container's init, set up and waiting to exec (what [`create`] returns).
pub type CreatedContainer = CreatedProcess;

impl CreatedProcess {
    /// The process, as seen from the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the process exec; returns once the exec happened (or failed: the process then exits with
    /// the error's exit code).
    pub fn start(self) -> Result<(), CreateError> {
        let mut w = std::fs::File::from(self.to_child);
        if !self.start_sent {
            w.write_all(b"S")
                .map_err(|e| CreateError::other(format!("starting container process: {e}")))?;
        }
        let mut r = std::fs::File::from(self.from_child);
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)
            .map_err(|e| CreateError::other(format!("starting container process: {e}")))?;
        match parse_report(&buf) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

fn parse_report(buf: &[u8]) -> Option<CreateError> {
    if buf.first() != Some(&b'E') || buf.len() < 5 {
        return None;
    }
    let code = i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]);
    Some(CreateError {
        message: String::from_utf8_lossy(&buf[5..]).into_owned(),
        exit_code: code,
    })
}

/// Clones the container's init and sets it up; it waits for [`CreatedContainer::start`] to exec.
pub fn create(o: &CreateOptions) -> Result<CreatedContainer, CreateError> {
    let plan = Plan::new(o)?;
    let (p2c_r, p2c_w) = pipe()?;
    let (c2p_r, c2p_w) = pipe()?;
    // SAFETY: raw clone without CLONE_VM and with a null stack behaves like fork(2): the child gets a
    // copy of the address space. The shim is single-threaded, so no lock can be held by another thread.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            plan.clone_flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(CreateError::other(format!(
            "clone: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        drop(p2c_w);
        drop(c2p_r);
        child(&plan, p2c_r, c2p_w);
    }
    let pid = pid as i32;
    drop(p2c_r);
    drop(c2p_w);
    let fail = |msg: String| abandon_child(pid, msg);
    join_cgroup(o.cgroup, pid)?;
    let mut r = std::fs::File::from(c2p_r);
    let mut first = [0u8; 1];
    if plan.userns {
        // The child set up its filesystem as real root, then unshared its user namespace: map it.
        match r.read(&mut first) {
            Ok(1) if first[0] == b'U' => {
                for (file, map) in [("uid_map", &plan.uid_map), ("gid_map", &plan.gid_map)] {
                    if let Err(e) = std::fs::write(format!("/proc/{pid}/{file}"), map) {
                        return Err(fail(format!("writing {file}: {e}")));
                    }
                }
            }
            Ok(1) => return Err(child_error(pid, first[0], &mut r)),
            Ok(_) => return Err(fail("container init exited during setup".into())),
            Err(e) => return Err(fail(format!("reading container init report: {e}"))),
        }
    }
    let mut w = std::fs::File::from(p2c_w);
    if let Err(e) = w.write_all(b"G") {
        // The init fails its setup (mounts) without waiting for `G`: its report says why.
        if let Ok(1) = r.read(&mut first) {
            return Err(child_error(pid, first[0], &mut r));
        }
        return Err(fail(format!("signalling container init: {e}")));
    }
    match r.read(&mut first) {
        Ok(1) if first[0] == b'R' => Ok(CreatedContainer {
            start_sent: false,
            pid,
            to_child: w.into(),
            from_child: r.into(),
        }),
        Ok(1) => Err(child_error(pid, first[0], &mut r)),
        Ok(_) => Err(fail("container init exited during setup".into())),
        Err(e) => Err(fail(format!("reading container init report: {e}"))),
    }
}

/// Kills and reaps a child whose setup failed; the error says what failed.
fn abandon_child(pid: i32, msg: String) -> CreateError {
    // SAFETY: pid is our own child (or, for an exec, ours through CLONE_PARENT); killing and reaping
    // it is what we want on failure.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    CreateError::other(msg)
}

/// Puts a just-created child into the container's cgroup, or abandons it.
fn join_cgroup(cgroup: Option<&dyn crate::cgroups::CgroupManager>, pid: i32) -> Result<(), CreateError> {
    match cgroup.map(|cg| cg.add_process(pid)) {
        Some(Err(e)) => Err(abandon_child(pid, format!("joining cgroup: {e}"))),
        _ => Ok(()),
    }
}

/// Reads the rest of an `E` report and reaps the child, which exits right after sending it.
fn child_error(pid: i32, first: u8, r: &mut std::fs::File) -> CreateError {
    let mut buf = vec![first];
    let _ = r.read_to_end(&mut buf);
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    parse_report(&buf).unwrap_or_else(|| CreateError::other("container init sent a bad report"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), CreateError> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(CreateError::other(format!("pipe: {}", std::io::Error::last_os_error())));
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn cstr(s: impl AsRef<[u8]>) -> Result<CString, CreateError> {
    CString::new(s.as_ref()).map_err(|_| CreateError::other("string with a NUL byte in the spec"))
}

fn cpath(p: &Path) -> Result<CString, CreateError> {
    cstr(p.as_os_str().as_bytes())
}

// ---------------------------------------------------------------------------------------------
// The child. Every function returns `Err(message)` naming the failed step.

pub(super) type Step<T = ()> = Result<T, (i32, String)>;

pub(super) fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

pub(super) fn step(ret: libc::c_int, what: impl FnOnce() -> String) -> Step {
    if ret < 0 {
        Err((125, format!("{}: {}", what(), errno())))
    } else {
        Ok(())
    }
}

fn report(fd: &OwnedFd, code: i32, msg: &str) {
    let mut buf = Vec::with_capacity(5 + msg.len());
    buf.push(b'E');
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(msg.as_bytes());
    // SAFETY: writing a local buffer to a descriptor we own.
    unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
}

fn child(plan: &Plan, from_parent: OwnedFd, to_parent: OwnedFd) -> ! {
    let code = match child_setup(plan, &from_parent, &to_parent) {
        Ok(never) => match never {},
        Err((code, msg)) => {
            report(&to_parent, code, &msg);
            code
        }
    };
    // SAFETY: _exit ends the child without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

pub(super) fn read_byte(fd: &OwnedFd) -> Option<u8> {
    let mut b = 0u8;
    loop {
        // SAFETY: reading one byte into a local.
        let n = unsafe { libc::read(fd.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            return Some(b);
        }
        if n < 0 && errno().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

fn child_setup(plan: &Plan, from_parent: &OwnedFd, to_parent: &OwnedFd) -> Step<std::convert::Infallible> {
    // Signals: the shim blocks/ignores some; the container starts clean.
    // SAFETY: resetting this process's signal mask and dispositions.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for s in [libc::SIGPIPE, libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(s, libc::SIG_DFL);
        }
    }
    if let Stdio::Fds { stdin, stdout, stderr } = plan.stdio {
        for (src, dst) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
            // SAFETY: duplicating descriptors the shim passed us onto 0..2.
            step(unsafe { libc::dup2(src, dst) }, || "setting up stdio".into())?;
        }
    }
    for (path, nstype) in &plan.join {
        // SAFETY: path is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        step(fd, || format!("opening namespace {path:?}"))?;
        // SAFETY: fd is a namespace descriptor we opened.
        let r = unsafe { libc::setns(fd, *nstype) };
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(fd) };
        step(r, || format!("joining namespace {path:?}"))?;
    }
    // The seccomp program is generated here (or read from the host's cache, still visible before
    // pivot_root), in parallel with the parent's cgroup work, keeping libseccomp out of the shim.
    let seccomp_bpf = match &plan.seccomp {
        Some(p) => {
            Some(crate::seccomp::compile_bpf(p, plan.seccomp_cache.as_deref()).map_err(|e| (125, e.to_string()))?)
        }
        None => None,
    };
    // Mounts: `rslave` by default (runc's default), so nothing we do propagates to the host while
    // mounts made later on the host still reach binds that ask for it (`rshared`/`rslave`).
    step(mount(EMPTY, c"/", EMPTY, plan.root_propagation, EMPTY), || {
        "setting the propagation of /".into()
    })?;
    if plan.root_propagation & libc::MS_SHARED != 0 {
        rootfs::rootfs_parent_private(&plan.rootfs_c)?;
    }
    let (src, fstype, data) = &plan.overlay;
    if let Some(cwd) = &plan.overlay_cwd {
        // SAFETY: cwd is a valid path; relative layer paths resolve from here.
        step(unsafe { libc::chdir(cwd.as_ptr()) }, || format!("chdir to {cwd:?}"))?;
    }
    if !fstype.is_empty() {
        step(mount(src, &plan.rootfs_c, fstype, 0, data), || {
            format!("mounting rootfs at {}", plan.rootfs.display())
        })?;
    } else {
        step(
            mount(
                &plan.rootfs_c,
                &plan.rootfs_c,
                EMPTY,
                libc::MS_BIND | libc::MS_REC,
                EMPTY,
            ),
            || "binding rootfs".into(),
        )?;
    }
    {
        let root = inroot::Root::open(&plan.rootfs_c, plan.root_ids)?;
        for m in &plan.mounts {
            do_mount(plan, &root, m)?;
        }
        create_devices(plan, &root)?;
    }
    pivot_root(plan)?;
    if let Stdio::Console { socket, rows, cols } = plan.stdio {
        setup_console(socket, rows, cols, plan.root_ids, true)?;
    }
    for (path, value) in &plan.sysctls {
        std::fs::write(path, value).map_err(|e| (125, format!("writing sysctl {path}: {e}")))?;
    }
    mask_and_readonly(plan)?;
    if let Some(h) = &plan.hostname {
        // SAFETY: h is a valid buffer of the given length.
        step(unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) }, || {
            "sethostname".into()
        })?;
    }
    if let Some(d) = &plan.domainname {
        // SAFETY: d is a valid buffer of the given length.
        step(unsafe { libc::setdomainname(d.as_ptr(), d.as_bytes().len()) }, || {
            "setdomainname".into()
        })?;
    }
    if plan.new_net {
        loopback_up()?;
    }
    apply_limits(&plan.process)?;
    mkdir_all_owned(plan.process.cwd(), plan.root_ids)?;
    if plan.userns {
        // Everything above needed real root (an overlay of root-owned layers, mounts in namespaces
        // owned by the host); from here on the container's root is the mapped user.
        // SAFETY: single-threaded process; plain syscall.
        step(unsafe { libc::unshare(libc::CLONE_NEWUSER) }, || {
            "unshare user namespace".into()
        })?;
        // SAFETY: writing one byte from a static buffer.
        if unsafe { libc::write(to_parent.as_raw_fd(), b"U".as_ptr().cast(), 1) } != 1 {
            return Err((125, "reporting the user namespace".into()));
        }
    }
    read_byte(from_parent).ok_or((125, "parent went away".to_string()))?;
    exec_when_started(&plan.process, seccomp_bpf.as_deref(), from_parent, to_parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_roundtrip() {
        let mut buf = vec![b'E'];
        buf.extend_from_slice(&127i32.to_le_bytes());
        buf.extend_from_slice(b"exec: \"x\": executable file not found in $PATH");
        let e = parse_report(&buf).unwrap();
        assert_eq!(e.exit_code, 127);
        assert!(e.message.ends_with("$PATH"));
        assert!(parse_report(b"").is_none());
    }
}
