//! What the child does, computed in the parent before `clone(2)` so the child only makes syscalls.

use super::idmap::{id_to_host, userns_mount_data, IdRanges};
use super::process::ProcessPlan;
use super::{cpath, cstr, CreateError, CreateOptions, Stdio};
use oci_spec::runtime::LinuxNamespaceType;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// A mount of the spec, resolved.
pub(super) struct MountOp {
    pub(super) dest: String,
    pub(super) kind: String,
    pub(super) source: CString,
    pub(super) source_path: PathBuf,
    pub(super) fstype: CString,
    pub(super) flags: libc::c_ulong,
    pub(super) propagation: libc::c_ulong,
    pub(super) data: CString,
}

pub(super) struct Device {
    pub(super) path: String,
    pub(super) host_path: CString,
    pub(super) mode: libc::mode_t,
    pub(super) dev: libc::dev_t,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

/// Everything the child does, computed before clone.
pub(super) struct Plan {
    pub(super) clone_flags: libc::c_ulong,
    pub(super) join: Vec<(CString, libc::c_int)>,
    pub(super) userns: bool,
    pub(super) uid_map: String,
    pub(super) gid_map: String,
    /// With a user namespace, the host ids of the container's root: owner of what the runtime creates
    /// in the rootfs (mount points, the working directory), as runc creates them from inside the
    /// namespace, so the container's root owns them and `commit` can map them back.
    pub(super) root_ids: Option<(u32, u32)>,
    pub(super) new_net: bool,
    /// Propagation of `/` in the container's mount namespace before anything is mounted
    /// (`linux.rootfsPropagation`; runc's default `rslave`).
    pub(super) root_propagation: libc::c_ulong,
    pub(super) rootfs: PathBuf,
    pub(super) rootfs_c: CString,
    pub(super) overlay: (CString, CString, CString),
    pub(super) overlay_cwd: Option<CString>,
    pub(super) mounts: Vec<MountOp>,
    pub(super) cgroup_mounts: Vec<(String, PathBuf)>,
    pub(super) devices: Vec<Device>,
    pub(super) stdio: Stdio,
    pub(super) hostname: Option<CString>,
    pub(super) domainname: Option<CString>,
    pub(super) sysctls: Vec<(String, String)>,
    pub(super) masked: Vec<CString>,
    pub(super) readonly: Vec<CString>,
    pub(super) readonly_root: bool,
    /// The process to exec, with the user, capabilities and limits it runs with.
    pub(super) process: ProcessPlan,
    pub(super) seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    pub(super) seccomp_cache: Option<PathBuf>,
}

/// Splits OCI mount options into `mount(2)` flags, a propagation change and the filesystem data.
/// Docker's `--mount type=tmpfs` names (`tmpfs-size=`, `tmpfs-mode=`) become tmpfs's own (`size=`,
/// `mode=`); everything unknown is data (`size=64m`, `mode=1777`, `uid=`, `gid=`, ...).
pub(super) fn mount_flags(options: &[String]) -> (libc::c_ulong, libc::c_ulong, String) {
    let mut flags = 0;
    let mut prop = 0;
    let mut data: Vec<String> = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "nosuid" => flags |= libc::MS_NOSUID,
            "suid" => flags &= !libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "dev" => flags &= !libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "exec" => flags &= !libc::MS_NOEXEC,
            "sync" => flags |= libc::MS_SYNCHRONOUS,
            "async" => flags &= !libc::MS_SYNCHRONOUS,
            "dirsync" => flags |= libc::MS_DIRSYNC,
            "mand" => flags |= libc::MS_MANDLOCK,
            "nomand" => flags &= !libc::MS_MANDLOCK,
            "noatime" => flags |= libc::MS_NOATIME,
            "atime" => flags &= !libc::MS_NOATIME,
            "nodiratime" => flags |= libc::MS_NODIRATIME,
            "diratime" => flags &= !libc::MS_NODIRATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "norelatime" => flags &= !libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "nostrictatime" => flags &= !libc::MS_STRICTATIME,
            "lazytime" => flags |= libc::MS_LAZYTIME,
            "nolazytime" => flags &= !libc::MS_LAZYTIME,
            "nosymfollow" => flags |= libc::MS_NOSYMFOLLOW,
            "symfollow" => flags &= !libc::MS_NOSYMFOLLOW,
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
            "defaults" | "" => {}
            other => {
                let other = match other.split_once('=') {
                    Some(("tmpfs-size", v)) => format!("size={v}"),
                    Some(("tmpfs-mode", v)) => format!("mode={v}"),
                    _ => other.to_string(),
                };
                data.push(other);
            }
        }
    }
    (flags, prop, data.join(","))
}

/// `linux.rootfsPropagation`: how `/` is remounted first in the container's mount namespace (runc's
/// default `rslave`). With a shared kind the rootfs's parent mount is made private before the rootfs
/// is mounted (as runc does), so only binds of shared sources propagate back to the host.
pub(super) fn root_propagation(p: Option<&str>) -> libc::c_ulong {
    match p {
        Some("private") => libc::MS_PRIVATE,
        Some("rprivate") => libc::MS_PRIVATE | libc::MS_REC,
        Some("slave") => libc::MS_SLAVE,
        Some("shared") => libc::MS_SHARED,
        Some("rshared") => libc::MS_SHARED | libc::MS_REC,
        _ => libc::MS_SLAVE | libc::MS_REC,
    }
}

/// One spec mount as the child performs it. Binds (`type: bind`, or `bind`/`rbind` options) have no
/// filesystem type; other kinds get their data shifted to the user namespace's ids.
pub(super) fn mount_op(
    m: &oci_spec::runtime::Mount,
    userns: bool,
    uid_ranges: &IdRanges,
    gid_ranges: &IdRanges,
) -> Result<MountOp, CreateError> {
    let options = m.options().clone().unwrap_or_default();
    let (mut flags, propagation, mut data) = mount_flags(&options);
    let kind = m.typ().clone().unwrap_or_default();
    if kind == "bind" {
        flags |= libc::MS_BIND;
    }
    if userns && flags & libc::MS_BIND == 0 {
        data = userns_mount_data(&kind, &data, uid_ranges, gid_ranges);
    }
    let source_path = m.source().clone().unwrap_or_default();
    Ok(MountOp {
        dest: m.destination().to_string_lossy().into_owned(),
        source: cpath(&source_path)?,
        source_path,
        fstype: cstr(if flags & libc::MS_BIND != 0 { "" } else { kind.as_str() })?,
        kind,
        flags,
        propagation,
        data: cstr(data)?,
    })
}

impl Plan {
    pub(super) fn new(o: &CreateOptions) -> Result<Self, CreateError> {
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

        let mounts = spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| mount_op(m, userns, &uid_ranges, &gid_ranges))
            .collect::<Result<Vec<_>, _>>()?;

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

        Ok(Plan {
            clone_flags,
            join,
            userns,
            uid_map: idmap(linux.and_then(|l| l.uid_mappings().as_ref())),
            gid_map: idmap(linux.and_then(|l| l.gid_mappings().as_ref())),
            root_ids,
            new_net,
            root_propagation: root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref())),
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
            process: ProcessPlan::new(process)?,
            seccomp: linux.and_then(|l| l.seccomp().clone()),
            seccomp_cache: o.seccomp_cache.map(Path::to_path_buf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: libc::c_ulong = 0;

    #[test]
    fn flags() {
        use libc::*;
        // (options, flags, propagation, data)
        let table: &[(&[&str], c_ulong, c_ulong, &str)] = &[
            (
                &["nosuid", "ro", "mode=755", "size=1k", "rprivate"],
                MS_NOSUID | MS_RDONLY,
                MS_PRIVATE | MS_REC,
                "mode=755,size=1k",
            ),
            (&["rbind", "ro"], MS_BIND | MS_REC | MS_RDONLY, NONE, ""),
            (
                &["bind", "rw", "nosuid", "nodev", "noexec"],
                MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                NONE,
                "",
            ),
            (&["rbind", "private"], MS_BIND | MS_REC, MS_PRIVATE, ""),
            (&["rbind", "rprivate"], MS_BIND | MS_REC, MS_PRIVATE | MS_REC, ""),
            (&["rbind", "shared"], MS_BIND | MS_REC, MS_SHARED, ""),
            (&["rbind", "rshared"], MS_BIND | MS_REC, MS_SHARED | MS_REC, ""),
            (&["rbind", "slave"], MS_BIND | MS_REC, MS_SLAVE, ""),
            (&["rbind", "rslave"], MS_BIND | MS_REC, MS_SLAVE | MS_REC, ""),
            (&["rbind", "unbindable"], MS_BIND | MS_REC, MS_UNBINDABLE, ""),
            (&["rbind", "runbindable"], MS_BIND | MS_REC, MS_UNBINDABLE | MS_REC, ""),
            // docker run --tmpfs /run:rw,size=64m,mode=1777 (the engine adds noexec,nosuid,nodev)
            (
                &["noexec", "nosuid", "nodev", "rw", "size=64m", "mode=1777"],
                MS_NOEXEC | MS_NOSUID | MS_NODEV,
                NONE,
                "size=64m,mode=1777",
            ),
            // docker run --mount type=tmpfs,dst=/x,tmpfs-size=1048576,tmpfs-mode=1770
            (
                &["tmpfs-size=1048576", "tmpfs-mode=1770"],
                NONE,
                NONE,
                "size=1048576,mode=1770",
            ),
            (
                &["size=10%", "uid=1000", "gid=1000", "nr_inodes=1k"],
                NONE,
                NONE,
                "size=10%,uid=1000,gid=1000,nr_inodes=1k",
            ),
            (&["ro", "rw"], NONE, NONE, ""),
            (&["noexec", "exec", "nosuid", "suid", "nodev", "dev"], NONE, NONE, ""),
            (
                &["noatime", "nodiratime", "strictatime", "lazytime", "nosymfollow"],
                MS_NOATIME | MS_NODIRATIME | MS_STRICTATIME | MS_LAZYTIME | MS_NOSYMFOLLOW,
                NONE,
                "",
            ),
            (
                &["relatime", "norelatime", "sync", "async", "dirsync", "defaults"],
                MS_DIRSYNC,
                NONE,
                "",
            ),
            (
                &["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
                NONE,
                NONE,
                "newinstance,ptmxmode=0666,mode=0620,gid=5",
            ),
        ];
        for (opts, flags, prop, data) in table {
            let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
            let (f, p, d) = mount_flags(&opts);
            assert_eq!((f, p, d.as_str()), (*flags, *prop, *data), "{opts:?}");
        }
    }

    #[test]
    fn root_propagation_defaults_to_rslave() {
        use libc::*;
        for (spec, want) in [
            (None, MS_SLAVE | MS_REC),
            (Some("rslave"), MS_SLAVE | MS_REC),
            (Some("slave"), MS_SLAVE),
            (Some("private"), MS_PRIVATE),
            (Some("rprivate"), MS_PRIVATE | MS_REC),
            (Some("rshared"), MS_SHARED | MS_REC),
            (Some("shared"), MS_SHARED),
            (Some("bogus"), MS_SLAVE | MS_REC),
        ] {
            assert_eq!(root_propagation(spec), want, "{spec:?}");
        }
    }

    #[test]
    fn mount_ops() {
        use libc::*;
        let ranges: IdRanges = vec![(0, 100_000, 65_536)];
        // (mount, userns, fstype, flags, propagation, data)
        let table: &[(serde_json::Value, bool, &str, c_ulong, c_ulong, &str)] = &[
            (
                serde_json::json!({"destination": "/data", "type": "bind", "source": "/v/_data", "options": ["rbind", "ro", "rshared"]}),
                false,
                "",
                MS_BIND | MS_REC | MS_RDONLY,
                MS_SHARED | MS_REC,
                "",
            ),
            (
                serde_json::json!({"destination": "/data", "type": "none", "source": "/v/_data", "options": ["bind", "nosuid", "rslave"]}),
                false,
                "",
                MS_BIND | MS_NOSUID,
                MS_SLAVE | MS_REC,
                "",
            ),
            (
                serde_json::json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "nosuid", "nodev", "size=64m", "mode=1777"]}),
                false,
                "tmpfs",
                MS_NOEXEC | MS_NOSUID | MS_NODEV,
                NONE,
                "size=64m,mode=1777",
            ),
            (
                serde_json::json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["tmpfs-size=65536", "tmpfs-mode=700", "rprivate"]}),
                false,
                "tmpfs",
                NONE,
                MS_PRIVATE | MS_REC,
                "size=65536,mode=700",
            ),
            (
                serde_json::json!({"destination": "/data", "type": "bind", "source": "/v/_data", "options": ["rbind"]}),
                true,
                "",
                MS_BIND | MS_REC,
                NONE,
                "",
            ),
        ];
        for (m, userns, fstype, flags, prop, data) in table {
            let mount: oci_spec::runtime::Mount = serde_json::from_value(m.clone()).unwrap();
            let op = mount_op(&mount, *userns, &ranges, &ranges).unwrap();
            assert_eq!(op.fstype.to_str().unwrap(), *fstype, "{m}");
            assert_eq!((op.flags, op.propagation), (*flags, *prop), "{m}");
            assert_eq!(op.data.to_str().unwrap(), *data, "{m}");
            assert_eq!(op.dest, m["destination"].as_str().unwrap());
            assert_eq!(op.source_path, Path::new(m["source"].as_str().unwrap()));
        }
        // Under a user namespace a tmpfs gets the mapped root as owner unless it names one.
        let m: oci_spec::runtime::Mount = serde_json::from_value(
            serde_json::json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        )
        .unwrap();
        let op = mount_op(&m, true, &ranges, &ranges).unwrap();
        let d = op.data.to_str().unwrap();
        assert!(
            d.starts_with("size=1m") && d.contains("uid=100000") && d.contains("gid=100000"),
            "{d}"
        );
        let m: oci_spec::runtime::Mount = serde_json::from_value(
            serde_json::json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["uid=1000", "gid=1000"]}),
        )
        .unwrap();
        let op = mount_op(&m, true, &ranges, &ranges).unwrap();
        assert_eq!(op.data.to_str().unwrap(), "uid=101000,gid=101000");
    }
}
