//! The crate's error type for links, namespaces, address management and drivers.

use berth_types::{ErrorKind, HasErrorKind};

/// An error from IPAM, netlink, a network namespace or a network driver.
///
/// Messages are lower-case and name the operation and the object; where Docker has a fixed text
/// (IPAM, driver options) it is used verbatim so `docker` users see what they know.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request failed; `errno` is the kernel's answer when there was one.
    #[error("netlink {op} {object}{}: {source}", ns_suffix(.netns))]
    Netlink {
        /// The operation, e.g. `create veth`.
        op: &'static str,
        /// The link, address or route concerned.
        object: String,
        /// The namespace the request ran in (`host` for the caller's own).
        netns: String,
        /// The kernel's errno, positive, when the request was refused.
        errno: Option<i32>,
        /// The netlink library's error.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// A system call or file operation failed (namespaces, sysctls, the netlink socket).
    #[error("{op} {object}: {source}")]
    Io {
        /// The operation, e.g. `open network namespace`.
        op: &'static str,
        /// The path or object concerned.
        object: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A link that must exist does not.
    #[error("link {name} not found{}", ns_suffix(.netns))]
    LinkNotFound {
        /// The link's name.
        name: String,
        /// The namespace searched.
        netns: String,
    },
    /// A CIDR that does not parse: Docker's text.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// A subnet given with host bits set (Docker 25+ rejects these).
    #[error("invalid subnet {given}: it should be {network}")]
    SubnetHostBits {
        /// What was given.
        given: String,
        /// The network it should have been.
        network: String,
    },
    /// A pool overlaps another one: Docker's text.
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap,
    /// The gateway is not inside the subnet: Docker's text (API `ValidateIPAM`).
    #[error("invalid gateway {gateway}: parent subnet {subnet} doesn't contain this address")]
    GatewayOutsideSubnet {
        /// The gateway given.
        gateway: std::net::IpAddr,
        /// The subnet.
        subnet: ipnet::IpNet,
    },
    /// The ip-range is not inside the subnet: Docker's text.
    #[error("invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range")]
    RangeOutsideSubnet {
        /// The ip-range given.
        range: ipnet::IpNet,
        /// The subnet.
        subnet: ipnet::IpNet,
    },
    /// The ip-range has host bits set: Docker's text.
    #[error("invalid ip-range {given}: it should be {network}")]
    RangeHostBits {
        /// What was given.
        given: ipnet::IpNet,
        /// The network it should have been.
        network: ipnet::IpNet,
    },
    /// An auxiliary address is not inside the subnet: Docker's text.
    #[error("invalid auxiliary address {addr}: parent subnet {subnet} doesn't contain this address")]
    AuxOutsideSubnet {
        /// The address given.
        addr: std::net::IpAddr,
        /// The subnet.
        subnet: ipnet::IpNet,
    },
    /// A static address outside the subnet or ip-range: Docker's text.
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    AddressOutOfRange(std::net::IpAddr),
    /// A static address already handed out: Docker's text.
    #[error("Address already in use")]
    AddressInUse(std::net::IpAddr),
    /// Every address of the pool is in use: Docker's text.
    #[error("no available addresses on this pool")]
    PoolExhausted(ipnet::IpNet),
    /// No default pool is left for a new network: Docker's text.
    #[error(
        "could not find an available, non-overlapping IPv{} address pool among the defaults to assign to the network",
        if *.ipv6 { 6 } else { 4 }
    )]
    NoFreeSubnet {
        /// Whether an IPv6 subnet was asked for.
        ipv6: bool,
    },
    /// A default address pool (`--default-address-pool`) that cannot be used.
    #[error("invalid default address pool base={base} size={size}: {reason}")]
    InvalidDefaultPool {
        /// The pool's base.
        base: String,
        /// The requested subnet size (prefix length).
        size: u8,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A driver option that is missing or has a bad value.
    #[error("{0}")]
    InvalidOption(String),
    /// A MAC address that does not parse.
    #[error("invalid MAC address: {0}")]
    InvalidMac(String),
    /// The kernel lacks a link type (e.g. no `ipvlan` module).
    #[error("the kernel does not support {kind} links: {source}")]
    UnsupportedLinkKind {
        /// The link type.
        kind: &'static str,
        /// The netlink answer.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// A thread running in another namespace panicked.
    #[error("thread in network namespace {0} panicked")]
    ThreadPanicked(String),
}

fn ns_suffix(netns: &str) -> String {
    if netns.is_empty() || netns == "host" {
        String::new()
    } else {
        format!(" in netns {netns}")
    }
}

impl NetError {
    /// The kernel errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Netlink { errno, .. } => *errno,
            NetError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the object was absent (`ENODEV`, `ENOENT`, ...), so a delete can treat it as done.
    pub fn is_not_found(&self) -> bool {
        matches!(self, NetError::LinkNotFound { .. })
            || matches!(
                self.errno(),
                Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL)
            )
    }

    /// Whether the object already existed (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}

/// The kind of a kernel errno, in one place.
fn errno_kind(errno: i32) -> ErrorKind {
    match errno {
        libc::EEXIST | libc::EBUSY | libc::EADDRINUSE => ErrorKind::Conflict,
        libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL | libc::ENXIO => ErrorKind::NotFound,
        libc::EINVAL | libc::ERANGE | libc::ENAMETOOLONG | libc::EAFNOSUPPORT => ErrorKind::InvalidArgument,
        libc::EPERM | libc::EACCES => ErrorKind::Forbidden,
        libc::EOPNOTSUPP => ErrorKind::Unsupported,
        _ => ErrorKind::Internal,
    }
}

impl HasErrorKind for NetError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetError::Netlink { errno: Some(e), .. } => errno_kind(*e),
            NetError::Netlink { errno: None, .. } => ErrorKind::Internal,
            NetError::Io { source, .. } => match source.raw_os_error() {
                Some(e) => errno_kind(e),
                None if source.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                None => ErrorKind::Internal,
            },
            NetError::LinkNotFound { .. } => ErrorKind::NotFound,
            NetError::InvalidCidr(_)
            | NetError::SubnetHostBits { .. }
            | NetError::GatewayOutsideSubnet { .. }
            | NetError::RangeOutsideSubnet { .. }
            | NetError::RangeHostBits { .. }
            | NetError::AuxOutsideSubnet { .. }
            | NetError::AddressOutOfRange(_)
            | NetError::InvalidDefaultPool { .. }
            | NetError::InvalidOption(_)
            | NetError::InvalidMac(_) => ErrorKind::InvalidArgument,
            // The kinds of libnetwork's ipamapi errors: ErrIPAlreadyAllocated and ErrPoolOverlap
            // are Forbidden, ErrNoAvailableIPs Unavailable; the default-pool search answers
            // NotFound.
            NetError::PoolOverlap | NetError::AddressInUse(_) => ErrorKind::Forbidden,
            NetError::PoolExhausted(_) => ErrorKind::Unavailable,
            NetError::NoFreeSubnet { .. } => ErrorKind::NotFound,
            NetError::UnsupportedLinkKind { .. } => ErrorKind::Unsupported,
            NetError::ThreadPanicked(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_kinds() {
        for (errno, kind) in [
            (libc::EEXIST, ErrorKind::Conflict),
            (libc::ENODEV, ErrorKind::NotFound),
            (libc::EINVAL, ErrorKind::InvalidArgument),
            (libc::EPERM, ErrorKind::Forbidden),
            (libc::EOPNOTSUPP, ErrorKind::Unsupported),
            (libc::EIO, ErrorKind::Internal),
        ] {
            let e = NetError::Io {
                op: "test",
                object: "x".into(),
                source: std::io::Error::from_raw_os_error(errno),
            };
            assert_eq!(e.kind(), kind, "errno {errno}");
        }
        assert_eq!(
            NetError::AddressInUse("10.0.0.2".parse().unwrap()).to_string(),
            "Address already in use"
        );
        assert_eq!(
            NetError::InvalidCidr("foo".into()).to_string(),
            "invalid CIDR address: foo"
        );
    }
}
