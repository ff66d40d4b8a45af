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

use crate::cgroups::CgroupManager;
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Spec};
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

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

/// A container whose init is set up and waits to exec.
#[derive(Debug)]
pub struct CreatedContainer {
    pid: i32,
    to_child: OwnedFd,
    from_child: OwnedFd,
}

impl CreatedContainer {
    /// The init process, as seen from the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the init exec its process; returns once the exec happened (or failed: the init then exits
    /// with the error's exit code).
    pub fn start(self) -> Result<(), CreateError> {
        let mut w = std::fs::File::from(self.to_child);
        w.write_all(b"S")
            .map_err(|e| CreateError::other(format!("starting container process: {e}")))?;
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
    let fail = |msg: String| -> CreateError {
        // SAFETY: pid is our own child; killing and reaping it is what we want on failure.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        CreateError::other(msg)
    };
    if let Some(cg) = o.cgroup {
        if let Err(e) = cg.add_process(pid) {
            return Err(fail(format!("joining cgroup: {e}")));
        }
    }
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
        return Err(fail(format!("signalling container init: {e}")));
    }
    match r.read(&mut first) {
        Ok(1) if first[0] == b'R' => Ok(CreatedContainer {
            pid,
            to_child: w.into(),
            from_child: r.into(),
        }),
        Ok(1) => Err(child_error(pid, first[0], &mut r)),
        Ok(_) => Err(fail("container init exited during setup".into())),
        Err(e) => Err(fail(format!("reading container init report: {e}"))),
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

/// A mount of the spec, resolved.
struct MountOp {
    dest: String,
    kind: String,
    source: CString,
    source_path: PathBuf,
    fstype: CString,
    flags: libc::c_ulong,
    propagation: libc::c_ulong,
    data: CString,
}

struct Device {
    path: String,
    host_path: CString,
    mode: libc::mode_t,
    dev: libc::dev_t,
    uid: u32,
    gid: u32,
}

/// Everything the child does, computed before clone.
struct Plan {
    clone_flags: libc::c_ulong,
    join: Vec<(CString, libc::c_int)>,
    userns: bool,
    uid_map: String,
    gid_map: String,
    /// With a user namespace, the host ids of the container's root: owner of what the runtime creates
    /// in the rootfs (mount points, the working directory), as runc creates them from inside the
    /// namespace, so the container's root owns them and `commit` can map them back.
    root_ids: Option<(u32, u32)>,
    new_net: bool,
    rootfs: PathBuf,
    rootfs_c: CString,
    overlay: (CString, CString, CString),
    overlay_cwd: Option<CString>,
    mounts: Vec<MountOp>,
    cgroup_mounts: Vec<(String, PathBuf)>,
    devices: Vec<Device>,
    stdio: Stdio,
    hostname: Option<CString>,
    domainname: Option<CString>,
    sysctls: Vec<(String, String)>,
    masked: Vec<CString>,
    readonly: Vec<CString>,
    readonly_root: bool,
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
    seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    seccomp_cache: Option<PathBuf>,
    cwd: String,
    args: Vec<CString>,
    env: Vec<CString>,
    path_env: String,
}

/// `(container_id, host_id, size)` ranges of one id mapping.
type IdRanges = Vec<(u32, u32, u32)>;

fn id_to_host(ranges: &IdRanges, id: u32) -> Option<u32> {
    ranges.iter().find_map(|&(c, h, n)| {
        id.checked_sub(c)
            .filter(|off| *off < n)
            .and_then(|off| h.checked_add(off))
    })
}

/// Mount data for a filesystem the runtime mounts as host root on behalf of a user-namespaced
/// container: `uid=`/`gid=` options are container ids (runc mounts from inside the namespace) so they
/// are shifted to host ids, and a tmpfs root without them belongs to the container's root (Docker's
/// `/dev` and `/dev/shm` are root-owned inside a remapped container).
fn userns_mount_data(kind: &str, data: &str, uids: &IdRanges, gids: &IdRanges) -> String {
    if kind != "tmpfs" && kind != "devpts" {
        return data.to_string();
    }
    let mut out = Vec::new();
    let (mut has_uid, mut has_gid) = (false, false);
    for o in data.split(',').filter(|o| !o.is_empty()) {
        let shifted = if let Some(v) = o.strip_prefix("uid=") {
            has_uid = true;
            v.parse()
                .ok()
                .and_then(|id| id_to_host(uids, id))
                .map(|h| format!("uid={h}"))
        } else if let Some(v) = o.strip_prefix("gid=") {
            has_gid = true;
            v.parse()
                .ok()
                .and_then(|id| id_to_host(gids, id))
                .map(|h| format!("gid={h}"))
        } else {
            None
        };
        out.push(shifted.unwrap_or_else(|| o.to_string()));
    }
    if kind == "tmpfs" {
        if let (false, Some(h)) = (has_uid, id_to_host(uids, 0)) {
            out.push(format!("uid={h}"));
        }
        if let (false, Some(h)) = (has_gid, id_to_host(gids, 0)) {
            out.push(format!("gid={h}"));
        }
    }
    out.join(",")
}

fn mount_flags(options: &[String]) -> (libc::c_ulong, libc::c_ulong, String) {
    let mut flags = 0;
    let mut prop = 0;
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "sync" => flags |= libc::MS_SYNCHRONOUS,
            "dirsync" => flags |= libc::MS_DIRSYNC,
            "noatime" => flags |= libc::MS_NOATIME,
            "nodiratime" => flags |= libc::MS_NODIRATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "bind" => flags |= libc::MS_BIND,
            "rbind" => flags |= libc::MS_BIND | libc::MS_REC,
            "private" => prop = libc::MS_PRIVATE,
            "rprivate" => prop = libc::MS_PRIVATE | libc::MS_REC,
            "slave" => prop = libc::MS_SLAVE,
            "rslave" => prop = libc::MS_SLAVE | libc::MS_REC,
            "shared" => prop = libc::MS_SHARED,
            "rshared" => prop = libc::MS_SHARED | libc::MS_REC,
            "unbindable" => prop = libc::MS_UNBINDABLE,
            "runbindable" => prop = libc::MS_UNBINDABLE | libc::MS_REC,
            "suid" | "dev" | "exec" | "async" | "atime" | "diratime" | "norelatime" | "nostrictatime" | "defaults" => {}
            other => data.push(other),
        }
    }
    (flags, prop, data.join(","))
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

impl Plan {
    fn new(o: &CreateOptions) -> Result<Self, CreateError> {
        let spec = o.spec;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| CreateError::other("spec has no root"))?;
        let rootfs = root.path().clone();
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| CreateError::other("spec has no process"))?;
        let linux = spec.linux().as_ref();

        let mut clone_flags: libc::c_ulong = 0;
        let mut join = Vec::new();
        let mut userns = false;
        let mut new_net = false;
        for ns in linux.and_then(|l| l.namespaces().as_ref()).into_iter().flatten() {
            let flag = ns.typ() as libc::c_ulong;
            match ns.path() {
                Some(p) => join.push((cpath(p)?, flag as libc::c_int)),
                // The user namespace is unshared by the child once its filesystem is set up.
                None if ns.typ() == LinuxNamespaceType::User => userns = true,
                None => {
                    clone_flags |= flag;
                    new_net |= ns.typ() == LinuxNamespaceType::Network;
                }
            }
        }
        let idmap = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
            m.into_iter()
                .flatten()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        let ranges = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> IdRanges {
            m.into_iter()
                .flatten()
                .map(|m| (m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        let (uid_ranges, gid_ranges) = if userns {
            (
                ranges(linux.and_then(|l| l.uid_mappings().as_ref())),
                ranges(linux.and_then(|l| l.gid_mappings().as_ref())),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let root_ids = match (id_to_host(&uid_ranges, 0), id_to_host(&gid_ranges, 0)) {
            (Some(u), Some(g)) => Some((u, g)),
            _ => None,
        };

        let mut mounts = Vec::new();
        for m in spec.mounts().iter().flatten() {
            let options = m.options().clone().unwrap_or_default();
            let (mut flags, propagation, mut data) = mount_flags(&options);
            let kind = m.typ().clone().unwrap_or_default();
            if kind == "bind" {
                flags |= libc::MS_BIND;
            }
            if userns && flags & libc::MS_BIND == 0 {
                data = userns_mount_data(&kind, &data, &uid_ranges, &gid_ranges);
            }
            let source_path = m.source().clone().unwrap_or_default();
            mounts.push(MountOp {
                dest: m.destination().to_string_lossy().into_owned(),
                source: cpath(&source_path)?,
                source_path,
                fstype: cstr(if flags & libc::MS_BIND != 0 { "" } else { kind.as_str() })?,
                kind,
                flags,
                propagation,
                data: cstr(data)?,
            });
        }

        let mut devices = Vec::new();
        for d in linux.and_then(|l| l.devices().as_ref()).into_iter().flatten() {
            let ty = match d.typ().as_str() {
                "b" => libc::S_IFBLK,
                "p" => libc::S_IFIFO,
                _ => libc::S_IFCHR,
            };
            devices.push(Device {
                path: d.path().to_string_lossy().into_owned(),
                host_path: cpath(d.path())?,
                mode: ty | d.file_mode().unwrap_or(0o666) as libc::mode_t,
                dev: libc::makedev(d.major() as u32, d.minor() as u32),
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            });
        }

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
        Ok(Plan {
            clone_flags,
            join,
            userns,
            uid_map: idmap(linux.and_then(|l| l.uid_mappings().as_ref())),
            gid_map: idmap(linux.and_then(|l| l.gid_mappings().as_ref())),
            root_ids,
            new_net,
            rootfs_c: cpath(&rootfs)?,
            rootfs,
            overlay: (
                cstr(&o.rootfs.source)?,
                cstr(&o.rootfs.fstype)?,
                cstr(o.rootfs.options.join(","))?,
            ),
            overlay_cwd: o.rootfs.cwd.as_deref().map(cpath).transpose()?,
            mounts,
            cgroup_mounts: o.cgroup.map(|c| c.container_mounts()).unwrap_or_default(),
            devices,
            stdio: o.stdio,
            hostname: spec
                .hostname()
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(cstr)
                .transpose()?,
            domainname: spec
                .domainname()
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(cstr)
                .transpose()?,
            sysctls: linux
                .and_then(|l| l.sysctl().as_ref())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (format!("/proc/sys/{}", k.replace('.', "/")), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            masked: linux
                .and_then(|l| l.masked_paths().as_ref())
                .into_iter()
                .flatten()
                .map(cstr)
                .collect::<Result<_, _>>()?,
            readonly: linux
                .and_then(|l| l.readonly_paths().as_ref())
                .into_iter()
                .flatten()
                .map(cstr)
                .collect::<Result<_, _>>()?,
            readonly_root: root.readonly().unwrap_or(false),
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
            seccomp: linux.and_then(|l| l.seccomp().clone()),
            seccomp_cache: o.seccomp_cache.map(Path::to_path_buf),
            cwd: process.cwd().to_string_lossy().into_owned(),
            args: args.iter().map(cstr).collect::<Result<_, _>>()?,
            env: env.iter().map(cstr).collect::<Result<_, _>>()?,
            path_env,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The child. Every function returns `Err(message)` naming the failed step.

type Step<T = ()> = Result<T, (i32, String)>;

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn step(ret: libc::c_int, what: impl FnOnce() -> String) -> Step {
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

fn read_byte(fd: &OwnedFd) -> Option<u8> {
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

fn mount(src: &CStr, dst: &CStr, fstype: &CStr, flags: libc::c_ulong, data: &CStr) -> libc::c_int {
    let p = |c: &CStr| if c.is_empty() { std::ptr::null() } else { c.as_ptr() };
    // SAFETY: all pointers are NUL-terminated strings or null, valid for the call.
    unsafe { libc::mount(p(src), dst.as_ptr(), p(fstype), flags, p(data).cast()) }
}

const EMPTY: &CStr = c"";

fn path_c(p: &Path) -> Step<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| (125, format!("path with a NUL byte: {}", p.display())))
}

/// Joins `unsafe_path` to `root` resolving symlinks as if `root` were `/` (runc's `securejoin`), so a
/// symlink in the image cannot send a mount outside the rootfs.
fn secure_join(root: &Path, unsafe_path: &str) -> Step<PathBuf> {
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

fn mkdir_all(p: &Path) -> Step {
    std::fs::create_dir_all(p).map_err(|e| (125, format!("creating {}: {e}", p.display())))
}

/// `mkdir -p`, giving the directories it creates to `owner` (the container's root under a user
/// namespace).
fn mkdir_all_owned(p: &Path, owner: Option<(u32, u32)>) -> Step {
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
fn touch_owned(p: &Path, owner: Option<(u32, u32)>) -> Step {
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

fn touch(p: &Path) -> Step {
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
fn locked_flags(p: &CStr) -> libc::c_ulong {
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

fn do_mount(plan: &Plan, m: &MountOp) -> Step {
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
fn mount_cgroup(plan: &Plan, m: &MountOp) -> Step {
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

fn create_devices(plan: &Plan) -> Step {
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

/// runc's `setupConsole`, in the container (after `pivot_root`, so `/dev/pts` is its own devpts): a
/// new pty whose slave becomes stdio, the controlling terminal and `/dev/console`; the master goes to
/// the shim over `socket`. The size is set before the shim or the process can see the pty, so the
/// first `stty size` already reads it.
fn setup_console(socket: RawFd, rows: u16, cols: u16, owner: Option<(u32, u32)>) -> Step {
    // SAFETY: opening a fixed path; the descriptor is owned right below.
    let m = unsafe {
        libc::open(
            c"/dev/pts/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    step(m, || "opening /dev/pts/ptmx".into())?;
    // SAFETY: m is a fresh descriptor nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from a valid pointer.
    step(unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) }, || {
        "unlockpt".into()
    })?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int to a valid pointer.
    step(unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) }, || "ptsname".into())?;
    // SAFETY: TIOCGPTPEER opens the slave of this master (no path lookup that could be raced).
    let s = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    step(s, || "opening the pty slave".into())?;
    // SAFETY: s is a fresh descriptor nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    if rows > 0 && cols > 0 {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: ws is a valid winsize for TIOCSWINSZ.
        step(unsafe { libc::ioctl(m, libc::TIOCSWINSZ, &ws) }, || {
            "setting the console size".into()
        })?;
    }
    if let Some((uid, _)) = owner {
        // The container's root owns its terminal, as when runc opens it inside the user namespace; the
        // group stays devpts' `gid=` (tty), already shifted.
        // SAFETY: fchown on a descriptor we own; gid -1 leaves the group unchanged.
        step(unsafe { libc::fchown(s, uid, libc::gid_t::MAX) }, || {
            "chown the pty slave".into()
        })?;
    }
    let slave_path = path_c(Path::new(&format!("/dev/pts/{n}")))?;
    touch(Path::new("/dev/console"))?;
    step(mount(&slave_path, c"/dev/console", EMPTY, libc::MS_BIND, EMPTY), || {
        "binding /dev/console".into()
    })?;
    // SAFETY: new session (we are not a group leader: the shim's child), then the slave becomes its
    // controlling terminal.
    step(unsafe { libc::setsid() }, || "setsid".into())?;
    // SAFETY: ioctl on the slave we own.
    step(unsafe { libc::ioctl(s, libc::TIOCSCTTY, 0) }, || {
        "setting the controlling terminal".into()
    })?;
    for dst in 0..3 {
        // SAFETY: duplicating our slave onto 0..2.
        step(unsafe { libc::dup2(s, dst) }, || "setting up stdio".into())?;
    }
    drop(slave);
    send_fd(socket, &master).map_err(|e| (125, format!("sending the console to the shim: {e}")))?;
    // SAFETY: the socket is ours (the shim passed its end) and not needed after this.
    unsafe { libc::close(socket) };
    Ok(())
}

/// Sends one descriptor with a one-byte message (`SCM_RIGHTS`).
pub(crate) fn send_fd(socket: RawFd, fd: &impl AsRawFd) -> std::io::Result<()> {
    let mut byte = [b'M'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // u64 alignment suffices for cmsghdr.
    let mut cbuf = [0u64; 4];
    // SAFETY: zeroed msghdr; every pointer set below points at locals that outlive sendmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: the control buffer is large enough for one cmsghdr carrying one int.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
    }
    loop {
        // SAFETY: msg is fully initialised above.
        let r = unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = errno();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn pivot_root(plan: &Plan) -> Step {
    let what = |s: &'static str| move || format!("pivot_root: {s}");
    // SAFETY: rootfs_c is a valid path.
    step(unsafe { libc::chdir(plan.rootfs_c.as_ptr()) }, what("chdir"))?;
    // SAFETY: "." is a valid path; new root and put_old are the same directory, as runc does.
    step(
        unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } as libc::c_int,
        what("pivot"),
    )?;
    // The old root is stacked under the new one: detach it.
    // SAFETY: "." is a valid path.
    step(
        unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) },
        what("unmount old root"),
    )?;
    // SAFETY: "/" is a valid path.
    step(unsafe { libc::chdir(c"/".as_ptr()) }, what("chdir /"))
}

fn mask_and_readonly(plan: &Plan) -> Step {
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

/// Brings `lo` up in a new network namespace (SIOCSIFFLAGS; no netlink needed).
fn loopback_up() -> Step {
    #[repr(C)]
    struct IfReq {
        name: [libc::c_char; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    step(fd, || "bringing up lo: socket".into())?;
    // SAFETY: fd is the socket we just created.
    let _guard = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[0] = b'l' as libc::c_char;
    req.name[1] = b'o' as libc::c_char;
    // SAFETY: req is a properly sized ifreq for SIOCGIFFLAGS/SIOCSIFFLAGS.
    step(unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) }, || {
        "bringing up lo".into()
    })?;
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: as above.
    step(unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) }, || {
        "bringing up lo".into()
    })
}

/// Go's `exec.LookPath` inside the container, with runc's messages and Docker's exit codes.
fn look_path(plan: &Plan) -> Step<CString> {
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

fn setup_user_and_caps(plan: &Plan) -> Step {
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
    step(
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) },
        what("keepcaps"),
    )?;
    // SAFETY: gids is a valid array of gid_t of the given length.
    step(
        unsafe { libc::setgroups(plan.gids.len(), plan.gids.as_ptr()) },
        what("setgroups"),
    )?;
    // SAFETY: plain id syscalls.
    step(unsafe { libc::setresgid(plan.gid, plan.gid, plan.gid) }, what("setgid"))?;
    // SAFETY: plain id syscalls.
    step(unsafe { libc::setresuid(plan.uid, plan.uid, plan.uid) }, what("setuid"))?;
    // SAFETY: prctl with integer arguments.
    step(
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) },
        what("keepcaps"),
    )?;
    // Keep every permitted capability effective until seccomp is loaded (needs CAP_SYS_ADMIN without
    // no_new_privs); the final sets are applied right before exec.
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| (125, format!("reading capabilities: {e}")))?;
    caps::set(None, CapSet::Effective, &permitted).map_err(|e| (125, format!("setting capabilities: {e}")))?;
    Ok(())
}

/// setrlimit; without CAP_SYS_RESOURCE a hard limit above ours cannot be had, so it is clamped to
/// ours (the default `nofile` may exceed what the daemon itself got).
fn set_rlimit(res: libc::c_int, soft: u64, hard: u64) -> Step {
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

fn final_caps(plan: &Plan) -> Step {
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
    // Mounts: private, so nothing we do propagates to the host.
    step(
        mount(EMPTY, c"/", EMPTY, libc::MS_REC | libc::MS_PRIVATE, EMPTY),
        || "making / rprivate".into(),
    )?;
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
    for m in &plan.mounts {
        do_mount(plan, m)?;
    }
    create_devices(plan)?;
    pivot_root(plan)?;
    if let Stdio::Console { socket, rows, cols } = plan.stdio {
        setup_console(socket, rows, cols, plan.root_ids)?;
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
    for (res, soft, hard) in &plan.rlimits {
        set_rlimit(*res, *soft, *hard)?;
    }
    if let Some(adj) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| (125, format!("writing oom_score_adj: {e}")))?;
    }
    let cwd = Path::new(if plan.cwd.is_empty() { "/" } else { &plan.cwd });
    mkdir_all_owned(cwd, plan.root_ids)?;
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
    setup_user_and_caps(plan)?;
    let cwd_c = path_c(cwd)?;
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
    if let Some(bpf) = &seccomp_bpf {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userns_mount_data_table() {
        let uids = vec![(0, 100_000, 65_536)];
        let gids = vec![(0, 200_000, 1_000), (1_000, 300_000, 10)];
        let cases = [
            (
                "tmpfs",
                "mode=755,size=65536k",
                "mode=755,size=65536k,uid=100000,gid=200000",
            ),
            ("tmpfs", "", "uid=100000,gid=200000"),
            (
                "tmpfs",
                "uid=1000,gid=1005,mode=1777",
                "uid=101000,gid=300005,mode=1777",
            ),
            // Ids outside the mapping are left for the kernel to apply as given.
            ("tmpfs", "uid=70000,gid=2000", "uid=70000,gid=2000"),
            (
                "devpts",
                "newinstance,ptmxmode=0666,mode=0620,gid=5",
                "newinstance,ptmxmode=0666,mode=0620,gid=200005",
            ),
            ("devpts", "newinstance", "newinstance"),
            ("proc", "", ""),
            ("sysfs", "", ""),
            ("mqueue", "", ""),
        ];
        for (kind, data, want) in cases {
            assert_eq!(userns_mount_data(kind, data, &uids, &gids), want, "{kind} {data}");
        }
        assert_eq!(id_to_host(&gids, 1_009), Some(300_009));
        assert_eq!(id_to_host(&gids, 1_010), None);
    }

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
    fn flags() {
        let (f, p, d) = mount_flags(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "size=1k".into(),
            "rprivate".into(),
        ]);
        assert_eq!(f, libc::MS_NOSUID | libc::MS_RDONLY);
        assert_eq!(p, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(d, "mode=755,size=1k");
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

/// Sets close-on-exec on every descriptor from `first` up.
fn mark_cloexec_from(first: u32) {
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
