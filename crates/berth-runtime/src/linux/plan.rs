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

pub(super) fn mount_flags(options: &[String]) -> (libc::c_ulong, libc::c_ulong, String) {
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
            process: ProcessPlan::new(process)?,
            seccomp: linux.and_then(|l| l.seccomp().clone()),
            seccomp_cache: o.seccomp_cache.map(Path::to_path_buf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
