//! The network service: where a container's network namespace comes from and what it is given
//! (`/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`), with a hook after the container's namespaces
//! exist and before its process runs, and a teardown on every exit path. Drivers (bridge, user
//! networks, macvlan, overlay) implement [`NetworkService`]; [`LoopbackNetworks`] is today's: a new
//! namespace with only `lo` (which the runtime brings up), the host's, or another container's.

use crate::error::{EngineError, Result};
use berth_runtime::{BindMount, NetworkMode};
use std::path::{Path, PathBuf};

/// The network a container asks for (`HostConfig.NetworkMode`), resolved by the container service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRequest {
    /// `default`, `bridge`, `none` or unset: a namespace of its own.
    Own,
    /// `host`: the host's namespace.
    Host,
    /// `container:<id>`: the namespace of that running container's init process.
    Container {
        /// The other container's init pid.
        pid: i64,
    },
}

impl NetworkRequest {
    /// Parses `NetworkMode`; `container:<name>` is resolved to a pid by `pid_of`.
    pub fn parse(mode: &str, pid_of: impl FnOnce(&str) -> Result<i64>) -> Result<NetworkRequest> {
        match mode {
            "host" => Ok(NetworkRequest::Host),
            "" | "none" | "bridge" | "default" => Ok(NetworkRequest::Own),
            m if m.starts_with("container:") => Ok(NetworkRequest::Container {
                pid: pid_of(&m["container:".len()..])?,
            }),
            m => Err(EngineError::NotFound(format!("network {m} not found"))),
        }
    }
}

/// What the network service gives a container for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// The namespace to create or join.
    pub mode: NetworkMode,
    /// Files to bind-mount (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`).
    pub mounts: Vec<BindMount>,
}

/// One container's request to the network service.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// Its hostname.
    pub hostname: &'a str,
    /// The container's directory, where its `/etc` files are kept.
    pub dir: &'a Path,
    /// What it asked for.
    pub request: NetworkRequest,
    /// Owner of the files written for it (the remapped root under `--userns-remap`).
    pub owner: Option<(u32, u32)>,
}

/// A network driver.
pub trait NetworkService: Send + Sync {
    /// Decides the container's namespace and writes its `/etc` files, before the shim starts.
    fn attach(&self, ep: &Endpoint<'_>) -> Result<NetworkAttachment>;
    /// Called once the container's namespaces exist (its init is `pid`) and before its process
    /// runs: veths, addresses, routes and NAT go here.
    fn setup(&self, id: &str, pid: i32) -> Result<()>;
    /// Called on every exit path (stop, crash, `rm -f`, a restarted daemon finding the container
    /// dead): releases what `attach` and `setup` took. Must be idempotent.
    fn teardown(&self, id: &str);
}

/// Today's driver: loopback only. A container's own namespace has `lo` (brought up by the runtime);
/// nothing is allocated, so `setup` and `teardown` have nothing to do.
#[derive(Debug, Default)]
pub struct LoopbackNetworks;

impl NetworkService for LoopbackNetworks {
    fn attach(&self, ep: &Endpoint<'_>) -> Result<NetworkAttachment> {
        let mode = match &ep.request {
            NetworkRequest::Own => NetworkMode::New,
            NetworkRequest::Host => NetworkMode::Host,
            NetworkRequest::Container { pid } => NetworkMode::Path(PathBuf::from(format!("/proc/{pid}/ns/net"))),
        };
        let mounts = etc_files(ep.dir, ep.hostname, &mode)?;
        if let Some((uid, gid)) = ep.owner {
            // Root in the container must own what the engine writes for it, as Docker does.
            for m in &mounts {
                std::os::unix::fs::chown(&m.source, Some(uid), Some(gid))
                    .map_err(|e| EngineError::io("giving to the remapped root", &m.source, e))?;
            }
        }
        Ok(NetworkAttachment { mode, mounts })
    }

    fn setup(&self, _id: &str, _pid: i32) -> Result<()> {
        Ok(())
    }

    fn teardown(&self, _id: &str) {}
}

/// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for the container and returns their mounts.
fn etc_files(dir: &Path, hostname: &str, network: &NetworkMode) -> Result<Vec<BindMount>> {
    let write = |name: &str, data: String| -> Result<PathBuf> {
        let p = dir.join(name);
        // Rewritten only when it changed: replacing a file is slow on disks with online discard.
        if std::fs::read(&p).ok().as_deref() != Some(data.as_bytes()) {
            crate::record::write_replace(&p, data.as_bytes(), false)?;
        }
        Ok(p)
    };
    let (hosts, resolv) = match network {
        NetworkMode::Host => (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
        _ => {
            let hosts = format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
            );
            // A loopback resolver of the host is unreachable from the container's namespace.
            let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let resolv: String = host_resolv
                .lines()
                .filter(|l| {
                    let mut w = l.split_whitespace();
                    !(w.next() == Some("nameserver") && w.next().is_some_and(|a| a.starts_with("127.") || a == "::1"))
                })
                .map(|l| format!("{l}\n"))
                .collect();
            (hosts, resolv)
        }
    };
    let mk = |source: PathBuf, destination: &str| BindMount {
        source,
        destination: destination.into(),
        readonly: false,
        options: vec!["rprivate".into()],
    };
    Ok(vec![
        mk(write("hostname", format!("{hostname}\n"))?, "/etc/hostname"),
        mk(write("hosts", hosts)?, "/etc/hosts"),
        mk(write("resolv.conf", resolv)?, "/etc/resolv.conf"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let none = |_: &str| -> Result<i64> { Err(EngineError::NoSuchContainer("x".into())) };
        assert_eq!(NetworkRequest::parse("", none).unwrap(), NetworkRequest::Own);
        assert_eq!(NetworkRequest::parse("bridge", none).unwrap(), NetworkRequest::Own);
        assert_eq!(NetworkRequest::parse("host", none).unwrap(), NetworkRequest::Host);
        let joined = NetworkRequest::parse("container:web", |n| {
            assert_eq!(n, "web");
            Ok(42)
        });
        assert_eq!(joined.unwrap(), NetworkRequest::Container { pid: 42 });
        assert!(NetworkRequest::parse("mynet", none)
            .unwrap_err()
            .to_string()
            .contains("not found"));
    }

    #[test]
    fn attach_writes_the_etc_files() {
        let dir = std::env::temp_dir().join(format!("berth-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ep = Endpoint {
            id: "abc",
            hostname: "web",
            dir: &dir,
            request: NetworkRequest::Own,
            owner: None,
        };
        let a = LoopbackNetworks.attach(&ep).unwrap();
        assert_eq!(a.mode, NetworkMode::New);
        let dests: Vec<_> = a.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]);
        let hosts = std::fs::read_to_string(dir.join("hosts")).unwrap();
        assert!(hosts.contains("127.0.0.1\tweb"), "{hosts}");
        assert_eq!(std::fs::read_to_string(dir.join("hostname")).unwrap(), "web\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
