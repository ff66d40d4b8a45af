//! Network namespaces: a handle that keeps the namespace's fd open, and [`run_in`], which runs a
//! closure on a fresh thread that has joined the namespace.
//!
//! The caller's thread never changes namespace: `setns(CLONE_NEWNET)` only affects the calling
//! thread, so a short-lived thread is the one place where it is safe (a pooled or async thread left
//! in a container's namespace would silently do the next caller's work there). Sockets keep the
//! namespace they were created in, so a netlink socket or a listener opened inside [`run_in`] can
//! be used from any thread afterwards.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};

use crate::error::NetError;

/// An open network namespace (the fd keeps it alive as long as the handle lives).
#[derive(Debug)]
pub struct Netns {
    file: File,
    label: String,
}

impl Netns {
    /// The namespace of process `pid` (`/proc/<pid>/ns/net`).
    pub fn from_pid(pid: u32) -> Result<Netns, NetError> {
        let mut ns = Netns::from_path(Path::new(&format!("/proc/{pid}/ns/net")))?;
        ns.label = format!("pid {pid}");
        Ok(ns)
    }

    /// The namespace bind-mounted (or linked in `/proc`) at `path`.
    pub fn from_path(path: &Path) -> Result<Netns, NetError> {
        let file = File::open(path).map_err(|source| NetError::Io {
            op: "open network namespace",
            object: path.display().to_string(),
            source,
        })?;
        Ok(Netns {
            file,
            label: path.display().to_string(),
        })
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<Netns, NetError> {
        let mut ns = Netns::from_path(Path::new("/proc/thread-self/ns/net"))?;
        ns.label = "host".into();
        Ok(ns)
    }

    /// A new, empty network namespace (only `lo`, down), alive as long as a handle, a socket or a
    /// process refers to it. It is made on a throwaway thread, so the caller stays where it is.
    pub fn unshare(label: &str) -> Result<Netns, NetError> {
        let joined = std::thread::scope(|s| {
            s.spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Io {
                    op: "unshare network namespace",
                    object: label.to_string(),
                    source: e.into(),
                })?;
                Netns::from_path(Path::new("/proc/thread-self/ns/net"))
            })
            .join()
        });
        let mut ns = joined.map_err(|_| NetError::ThreadPanicked(label.to_string()))??;
        ns.label = label.to_string();
        Ok(ns)
    }

    /// A second handle on the same namespace.
    pub fn try_clone(&self) -> Result<Netns, NetError> {
        let file = self.file.try_clone().map_err(|source| NetError::Io {
            op: "duplicate network namespace fd",
            object: self.label.clone(),
            source,
        })?;
        Ok(Netns {
            file,
            label: self.label.clone(),
        })
    }

    /// A name for messages: the pid, path or label it was opened with.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The path of the namespace through this process's fd (`/proc/self/fd/N`), usable by tools
    /// such as `nsenter --net=` while the handle lives.
    pub fn fd_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), self.file.as_raw_fd()))
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Runs `f` on a fresh thread that has joined `ns`, and returns its result.
///
/// The thread exits afterwards, so the namespace switch never leaks to other work.
pub fn run_in<T, F>(ns: &Netns, f: F) -> Result<T, NetError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let joined = std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Io {
                op: "enter network namespace",
                object: ns.label.clone(),
                source: e.into(),
            })?;
            Ok(f())
        })
        .join()
    });
    joined.map_err(|_| NetError::ThreadPanicked(ns.label.clone()))?
}

/// Writes a sysctl under `/proc/sys` (`key` in dotted form, e.g. `net.ipv4.ip_forward`), in `ns`
/// when given, else in the caller's namespace. `/proc/sys/net` shows the namespace of the thread
/// that opens the file, which is why this goes through [`run_in`].
pub fn write_sysctl(ns: Option<&Netns>, key: &str, value: &str) -> Result<(), NetError> {
    // sysctl(8)'s dotted form: `.` separates components, `/` stands for a dot inside a name.
    let rel: String = key
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect();
    let path = format!("/proc/sys/{rel}");
    let write = || {
        std::fs::write(&path, value).map_err(|source| NetError::Io {
            op: "write sysctl",
            object: format!("{key}={value}"),
            source,
        })
    };
    match ns {
        Some(ns) => run_in(ns, write)?,
        None => write(),
    }
}

/// Sysctl keys name interfaces as path components; an interface name with a dot (`eth0.100`) must
/// be written with `/` in the dotted form, which this does.
pub fn sysctl_key(prefix: &str, ifname: &str, leaf: &str) -> String {
    format!("{prefix}.{}.{leaf}", ifname.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_key_escapes_dots() {
        assert_eq!(
            sysctl_key("net.ipv6.conf", "eth0.100", "disable_ipv6"),
            "net.ipv6.conf.eth0/100.disable_ipv6"
        );
    }
}
