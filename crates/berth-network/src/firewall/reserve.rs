//! Host port reservations: a socket bound to the published address and port (never listening, so
//! no traffic reaches it: the kernel DNATs first), held while the container runs. Docker's port
//! allocator does the same, and answers a second request for the port with "port is already
//! allocated".

use super::{FirewallError, Proto};
use nix::errno::Errno;
use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A host port held for a published port; dropping it frees the port.
#[derive(Debug)]
pub struct PortReservation {
    proto: Proto,
    addr: SocketAddr,
    _fd: OwnedFd,
}

/// The kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), Docker's range for
/// ports published without a host port; 32768-60999 (the kernel's default) if it cannot be read.
pub fn local_port_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|w| w.parse::<u16>());
            match (it.next(), it.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) if lo > 0 && lo <= hi => Some((lo, hi)),
                _ => None,
            }
        })
        .unwrap_or((32768, 60999))
}

fn open_socket(proto: Proto, family: AddressFamily) -> Result<OwnedFd, Errno> {
    match proto {
        Proto::Tcp => socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None),
        Proto::Udp => socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None),
        Proto::Sctp => {
            let domain = if family == AddressFamily::Inet6 {
                libc::AF_INET6
            } else {
                libc::AF_INET
            };
            // SAFETY: socket(2) takes no pointers; the result is checked before use.
            let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, libc::IPPROTO_SCTP) };
            if fd < 0 {
                return Err(Errno::last());
            }
            // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    }
}

impl PortReservation {
    /// Binds `host_ip:port` (`None`: 0.0.0.0) so nobody else can take it.
    pub fn reserve(proto: Proto, host_ip: Option<IpAddr>, port: u16) -> Result<PortReservation, FirewallError> {
        let ip = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let addr = SocketAddr::new(ip, port);
        let family = if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fail = |e: Errno| {
            if e == Errno::EADDRINUSE {
                FirewallError::PortAllocated { addr: addr.to_string() }
            } else {
                FirewallError::Reserve {
                    proto,
                    addr: addr.to_string(),
                    source: e.into(),
                }
            }
        };
        let fd = open_socket(proto, family).map_err(fail)?;
        if family == AddressFamily::Inet6 {
            // [::]:port holds the IPv6 port only, as Docker's separate IPv6 binding does.
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6V6Only, &true).map_err(fail)?;
        }
        bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(fail)?;
        Ok(PortReservation { proto, addr, _fd: fd })
    }

    /// Reserves a free port of the ephemeral range (`-P`, or `-p 80` without a host port),
    /// starting at a varying point so consecutive containers do not race for the same port.
    pub fn allocate_ephemeral(proto: Proto, host_ip: Option<IpAddr>) -> Result<PortReservation, FirewallError> {
        let (low, high) = local_port_range();
        let span = u32::from(high - low) + 1;
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ std::process::id())
            .unwrap_or(0)
            % span;
        for i in 0..span {
            let port = low + ((start + i) % span) as u16;
            match Self::reserve(proto, host_ip, port) {
                Ok(r) => return Ok(r),
                Err(FirewallError::PortAllocated { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(FirewallError::NoFreePort {
            proto,
            host_ip: host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            low,
            high,
        })
    }

    /// The protocol.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The held host port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The held address and port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_sane() {
        let (lo, hi) = local_port_range();
        assert!(lo > 0 && lo <= hi);
    }
}
