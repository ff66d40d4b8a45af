//! Small safe wrappers over the process-level syscalls the shim needs (daemonising, ptys, poll), so
//! that `unsafe` stays in this crate.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Forks; the parent exits at once (status 0) and the child starts a new session, so it is no longer
/// the caller's child and survives it. Call while single-threaded.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: the process is single-threaded at this point (documented precondition); the parent
    // only calls _exit.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid > 0 {
        // SAFETY: ends the intermediate process without running destructors.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: plain syscall.
    cvt(unsafe { libc::setsid() })?;
    Ok(())
}

/// `prctl(PR_SET_CHILD_SUBREAPER)`: orphans of the container are re-parented to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

/// `TIOCSWINSZ` on a pty.
pub fn set_winsize(fd: &impl AsRawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ws is a valid winsize for TIOCSWINSZ.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(|_| ())
}

/// `poll(2)` over raw pollfds; EINTR is reported as zero ready descriptors.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a valid slice of pollfd.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: &impl AsRawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(|_| ())
}

/// A pipe, both ends close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two fresh descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Takes ownership of an inherited descriptor (such as the readiness pipe on fd 3) if it is open.
pub fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open and, by the shim's contract, ours alone.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: mark it close-on-exec so the container never inherits it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(owned)
}

/// Points fd 0 at `/dev/null` (a daemon reads nothing from its parent).
pub fn stdin_to_devnull() -> io::Result<()> {
    let f = std::fs::File::open("/dev/null")?;
    // SAFETY: dup2 onto fd 0.
    cvt(unsafe { libc::dup2(f.as_raw_fd(), 0) }).map(|_| ())
}

/// Sends a signal to a process.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::kill(pid, signal) }).map(|_| ())
}

/// Ignores `SIGPIPE` (writes to closed sockets/pipes fail with EPIPE instead) and blocks `SIGCHLD`,
/// returning a non-blocking signalfd that reports it.
pub fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: signal mask/disposition changes of this single-threaded process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        cvt(libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()))?;
        let fd = cvt(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// Exited with a status.
    Exited(i32, i32),
    /// Killed by a signal.
    Signaled(i32, i32),
}

/// Reaps one exited child without blocking (`waitpid(-1, WNOHANG)`); `None` when none is left.
pub fn reap_any() -> Option<Reaped> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    if libc::WIFSIGNALED(status) {
        Some(Reaped::Signaled(pid, libc::WTERMSIG(status)))
    } else {
        Some(Reaped::Exited(pid, libc::WEXITSTATUS(status)))
    }
}

/// Sets a send timeout on a socket.
pub fn set_send_timeout(fd: &impl AsRawFd, ms: u32) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_usec: ((ms % 1000) * 1000) as libc::suseconds_t,
    };
    // SAFETY: tv is a valid timeval for SO_SNDTIMEO.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Returns freed heap memory to the kernel (keeps a long-lived shim's private memory small after
/// the one-off work of creating the container).
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory of this process's allocator.
    unsafe { libc::malloc_trim(0) };
}

/// A connected pair of unix stream sockets, both close-on-exec (the console socket: the runtime
/// sends the container's pty master over it).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair returned two fresh descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Receives one descriptor sent with `SCM_RIGHTS` (made close-on-exec); blocks until it arrives.
pub fn recv_fd(socket: &impl AsRawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // u64 alignment suffices for cmsghdr; room for a few descriptors (extra ones are closed).
    let mut cbuf = [0u64; 8];
    // SAFETY: zeroed msghdr; the pointers set below point at locals that outlive recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    let n = loop {
        // SAFETY: msg describes valid buffers.
        let r = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if r >= 0 {
            break r;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut got: Option<OwnedFd> = None;
    // SAFETY: walking the control messages recvmsg filled in, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                    if got.is_none() {
                        got = Some(fd);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    got.ok_or_else(|| {
        if n == 0 {
            io::Error::new(io::ErrorKind::UnexpectedEof, "the runtime closed the console socket")
        } else {
            io::Error::new(io::ErrorKind::InvalidData, "no descriptor on the console socket")
        }
    })
}
