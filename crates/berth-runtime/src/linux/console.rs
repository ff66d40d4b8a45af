//! The container's terminal: a pty made inside the container, its master sent to the shim.

use super::rootfs::{mount, path_c, touch, EMPTY};
use super::{errno, step, Step};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// runc's `setupConsole`, in the container (after `pivot_root`, so `/dev/pts` is its own devpts): a
/// new pty whose slave becomes stdio, the controlling terminal and `/dev/console`; the master goes to
/// the shim over `socket`. The size is set before the shim or the process can see the pty, so the
/// first `stty size` already reads it. An exec'd process (`bind_console` false) gets its own pty the
/// same way, but `/dev/console` stays the init's.
pub(super) fn setup_console(
    socket: RawFd,
    rows: u16,
    cols: u16,
    owner: Option<(u32, u32)>,
    bind_console: bool,
) -> Step {
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
    if bind_console {
        touch(Path::new("/dev/console"))?;
        step(mount(&slave_path, c"/dev/console", EMPTY, libc::MS_BIND, EMPTY), || {
            "binding /dev/console".into()
        })?;
    }
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
