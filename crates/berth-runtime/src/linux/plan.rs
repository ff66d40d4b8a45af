//! What the child does, computed in the parent before `clone(2)` so the child only makes syscalls.

use super::idmap::{id_to_host, userns_mount_data, IdRanges};
use super::{cpath, cstr, CreateError, CreateOptions, Stdio};
use caps::{Capability, CapsHashSet};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::str::FromStr;

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
    pub(super) rlimits: Vec<(libc::c_int, u64, u64)>,
    pub(super) oom_score_adj: Option<i32>,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) gids: Vec<libc::gid_t>,
    pub(super) bounding: Option<CapsHashSet>,
    pub(super) effective: CapsHashSet,
    pub(super) permitted: CapsHashSet,
    pub(super) inheritable: CapsHashSet,
    pub(super) ambient: CapsHashSet,
    pub(super) nnp: bool,
    pub(super) seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    pub(super) seccomp_cache: Option<PathBuf>,
    pub(super) cwd: String,
    pub(super) args: Vec<CString>,
    pub(super) env: Vec<CString>,
    pub(super) path_env: String,
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

pub(crate) fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

pub(super) fn caps_set(set: Option<&oci_spec::runtime::Capabilities>) -> Result<CapsHashSet, CreateError> {
    let mut out = CapsHashSet::new();
    for c in set.into_iter().flatten() {
        let name = format!("CAP_{c}");
        match Capability::from_str(&name) {
            Ok(c) => {
                out.insert(c);
            }
            // A capability this kernel or crate does not know is skipped, as runc does.
            Err(_) => continue,
        }
    }
    Ok(out)
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

        let caps = process.capabilities().as_ref();
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let path_env = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(crate::spec::DEFAULT_PATH)
            .to_string();
        let args: Vec<String> = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(CreateError::other("no command specified"));
        }
        let user = process.user();
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
            rlimits: process
                .rlimits()
                .iter()
                .flatten()
                .map(|r| (rlimit_resource(r.typ()), r.soft(), r.hard()))
                .collect(),
            oom_score_adj: process.oom_score_adj(),
            uid: user.uid(),
            gid: user.gid(),
            gids: user.additional_gids().clone().unwrap_or_default(),
            bounding: caps.map(|c| caps_set(c.bounding().as_ref())).transpose()?,
            effective: caps_set(caps.and_then(|c| c.effective().as_ref()))?,
            permitted: caps_set(caps.and_then(|c| c.permitted().as_ref()))?,
            inheritable: caps_set(caps.and_then(|c| c.inheritable().as_ref()))?,
            ambient: caps_set(caps.and_then(|c| c.ambient().as_ref()))?,
            nnp: process.no_new_privileges().unwrap_or(false),
            seccomp: linux.and_then(|l| l.seccomp().clone()),
            seccomp_cache: o.seccomp_cache.map(Path::to_path_buf),
            cwd: process.cwd().to_string_lossy().into_owned(),
            args: args.iter().map(cstr).collect::<Result<_, _>>()?,
            env: env.iter().map(cstr).collect::<Result<_, _>>()?,
            path_env,
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
