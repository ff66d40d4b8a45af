//! Namespaces: the network namespace's loopback.

use super::{step, Step};
use std::os::fd::{FromRawFd, OwnedFd};

/// Brings `lo` up in a new network namespace (SIOCSIFFLAGS; no netlink needed).
pub(super) fn loopback_up() -> Step {
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
