//! Docker's default seccomp profile (moby `profiles/seccomp/default.json`) as a table, and the
//! compiler from an OCI `LinuxSeccomp` to a libseccomp filter.

use crate::error::{Error, Result};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use serde_json::{json, Value};
use std::io::{Read, Seek};
use std::os::fd::FromRawFd;
use std::path::Path;

/// Syscalls every container may make.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // amd64/x86 only (moby lists them under `arches`)
    "arch_prctl",
    "modify_ldt",
];

/// Syscalls allowed when the container holds one of the capabilities (moby's `includes.caps`).
const CAP_ALLOWED: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWCGROUP`.
const CLONE_NS_MASK: u64 = 0x7E02_0000;
/// `AF_VSOCK`: refused by `socket` in the default profile.
const AF_VSOCK: u64 = 40;
/// `personality` values the default profile accepts.
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// Docker's default profile for a container holding `caps` (`CAP_*` names), as OCI JSON.
pub fn default_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut syscalls = vec![json!({"names": ALLOWED, "action": "SCMP_ACT_ALLOW"})];
    for (cap, names) in CAP_ALLOWED {
        if has(cap) {
            syscalls.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    syscalls.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]}));
    for p in PERSONALITIES {
        syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
    }
    if !has("CAP_SYS_ADMIN") {
        // clone without namespace flags; clone3 answers ENOSYS so libc falls back to clone.
        syscalls.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NS_MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.map(|e| e as i32).unwrap_or(libc::EPERM)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.map(|e| e as u16).unwrap_or(libc::EPERM as u16)),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Seccomp("SCMP_ACT_NOTIFY is not supported".into()));
        }
    })
}

fn arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchArm => ScmpArch::Arm,
        _ => return None,
    })
}

/// Compiles an OCI seccomp profile into a libseccomp filter (not loaded). Syscall names this libseccomp
/// does not know are skipped, as runc does. The filter does not set `no_new_privs` by itself.
pub fn compile(profile: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let err = |what: &str, e: libseccomp::error::SeccompError| Error::Seccomp(format!("{what}: {e}"));
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("new filter", e))?;
    ctx.set_ctl_nnp(false).map_err(|e| err("nnp attribute", e))?;
    // A binary tree of syscall numbers instead of a list: the kernel takes a third of the time to
    // load it (its JIT settles in fewer passes), which every container start and exec pays, and
    // each filtered syscall takes O(log n) comparisons. libseccomp before 2.5 has only the list.
    let _ = ctx.set_ctl_optimize(2);
    let native = ScmpArch::native();
    for a in profile.architectures().iter().flatten() {
        if let Some(a) = arch(*a) {
            if a != native {
                // An arch the kernel cannot run (x32 disabled) is not an error.
                let _ = ctx.add_arch(a);
            }
        }
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let op = match a.op() {
                    LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                    LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                    LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                    LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                    LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                    LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                    LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(a.value()),
                };
                let datum = if matches!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq) {
                    a.value_two().unwrap_or(0)
                } else {
                    a.value()
                };
                ScmpArgCompare::new(a.index() as u32, op, datum)
            })
            .collect();
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else { continue };
            let r = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else {
                ctx.add_rule_conditional(act, sc, &conds)
            };
            r.map_err(|e| err(&format!("rule for {name}"), e))?;
        }
    }
    Ok(ctx)
}

/// Compiles `profile` to raw BPF (an array of `struct sock_filter`), reusing a copy cached in
/// `cache_dir` under a hash of the profile: generating the program is the slow part of libseccomp
/// (milliseconds for Docker's profile), loading it is not.
pub fn compile_bpf(profile: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Vec<u8>> {
    use std::hash::{Hash, Hasher};
    let json = serde_json::to_vec(profile).map_err(|e| Error::Seccomp(format!("encoding profile: {e}")))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    let v = libseccomp::ScmpVersion::current()
        .map(|v| (v.major, v.minor, v.micro))
        .unwrap_or((0, 0, 0));
    v.hash(&mut h);
    // "t": filters compiled as a binary tree (see `compile`), not to be mixed with older lists.
    let name = format!("{:016x}-{}t.bpf", h.finish(), json.len());
    if let Some(dir) = cache_dir {
        if let Ok(b) = std::fs::read(dir.join(&name)) {
            if !b.is_empty() && b.len() % 8 == 0 {
                return Ok(b);
            }
        }
    }
    let ctx = compile(profile)?;
    let mut out = tempfile_in_memory()?;
    ctx.export_bpf(&out)
        .map_err(|e| Error::Seccomp(format!("exporting filter: {e}")))?;
    out.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| Error::io("reading seccomp filter", e))?;
    let mut bpf = Vec::new();
    out.read_to_end(&mut bpf)
        .map_err(|e| Error::io("reading seccomp filter", e))?;
    if let Some(dir) = cache_dir {
        // Best effort: a cache that cannot be written only costs time.
        let _ = std::fs::create_dir_all(dir);
        // Unique temp name: concurrent container inits all have pid 1 in their namespaces.
        let mut nonce = [0u8; 8];
        // SAFETY: getrandom fills the local buffer (a short read only weakens uniqueness).
        unsafe { libc::getrandom(nonce.as_mut_ptr().cast(), nonce.len(), 0) };
        let tmp = dir.join(format!(".{name}.{:016x}", u64::from_ne_bytes(nonce)));
        if std::fs::write(&tmp, &bpf).is_ok() && std::fs::rename(&tmp, dir.join(&name)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(bpf)
}

fn tempfile_in_memory() -> Result<std::fs::File> {
    // SAFETY: memfd_create with a static name returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Loads raw BPF from [`compile_bpf`] as this thread's seccomp filter. Needs `no_new_privs` or
/// `CAP_SYS_ADMIN`.
pub fn load_bpf(bpf: &[u8]) -> std::io::Result<()> {
    if bpf.is_empty() || !bpf.len().is_multiple_of(8) {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let prog = libc::sock_fprog {
        len: (bpf.len() / 8) as libc::c_ushort,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at a valid BPF program that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1, /* SECCOMP_SET_MODE_FILTER */
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(caps: &[&str]) -> LinuxSeccomp {
        let caps: Vec<String> = caps.iter().map(|s| s.to_string()).collect();
        serde_json::from_value(default_profile(&caps)).unwrap()
    }

    #[test]
    fn default_profile_compiles() {
        let p = profile(crate::spec::DEFAULT_CAPABILITIES);
        compile(&p).unwrap();
        assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
    }

    /// The compiled default profile, loaded in a child: ordinary syscalls pass, the ones Docker's
    /// profile denies without the capability answer EPERM (the binary tree decides as the list did).
    #[test]
    fn default_filter_allows_and_denies() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let p = profile(crate::spec::DEFAULT_CAPABILITIES);
        let bpf = compile_bpf(&p, None).unwrap();
        // SAFETY: the child only makes raw syscalls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: in the forked child: raw syscalls on local buffers, then _exit.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if load_bpf(&bpf).is_err() {
                    libc::_exit(10);
                }
                if libc::getppid() <= 0 || libc::syscall(libc::SYS_uname, [0u8; 390].as_mut_ptr()) != 0 {
                    libc::_exit(11);
                }
                // Harmless if it were let through: only this child would be in a new namespace.
                let r = libc::unshare(libc::CLONE_NEWUTS);
                if r == 0 || *libc::__errno_location() != libc::EPERM {
                    libc::_exit(12);
                }
                let r = libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0);
                if r == 0 || *libc::__errno_location() != libc::EPERM {
                    libc::_exit(13);
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: reaping our own child into a local.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "10 load, 11 allowed call failed, 12 unshare, 13 keyctl"
        );
    }

    #[test]
    fn bpf_is_cached() {
        let t = tempfile::tempdir().unwrap();
        let p = profile(crate::spec::DEFAULT_CAPABILITIES);
        let a = compile_bpf(&p, Some(t.path())).unwrap();
        assert!(!a.is_empty() && a.len().is_multiple_of(8));
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        assert_eq!(compile_bpf(&p, Some(t.path())).unwrap(), a);
        assert_eq!(compile_bpf(&p, None).unwrap(), a);
    }

    #[test]
    fn cap_conditional_rules() {
        let names = |p: &LinuxSeccomp, act: LinuxSeccompAction| -> Vec<String> {
            p.syscalls()
                .iter()
                .flatten()
                .filter(|r| r.action() == act && r.args().is_none())
                .flat_map(|r| r.names().clone())
                .collect()
        };
        let dflt = profile(crate::spec::DEFAULT_CAPABILITIES);
        let allowed = names(&dflt, LinuxSeccompAction::ScmpActAllow);
        assert!(!allowed.contains(&"mount".to_string()));
        assert!(allowed.contains(&"chroot".to_string()));
        assert!(!allowed.contains(&"reboot".to_string()));
        let admin = profile(&["CAP_SYS_ADMIN"]);
        let allowed = names(&admin, LinuxSeccompAction::ScmpActAllow);
        assert!(allowed.contains(&"mount".to_string()) && allowed.contains(&"clone".to_string()));
        compile(&admin).unwrap();
        // clone is filtered by flags without CAP_SYS_ADMIN
        assert!(dflt
            .syscalls()
            .iter()
            .flatten()
            .any(|r| r.names() == &["clone".to_string()] && r.args().is_some()));
    }
}
