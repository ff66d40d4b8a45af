//! A container's mounts as Docker reads them at create: `HostConfig.Binds` (`-v`),
//! `HostConfig.Mounts` (`--mount`), `HostConfig.Tmpfs` (`--tmpfs`), `Config.Volumes` (anonymous
//! volumes and the image's `VOLUME`s) and `HostConfig.VolumesFrom`, into one list of mount points
//! kept in the container's record. Pure: volumes are created by the service afterwards.

use crate::error::{EngineError, Result};
use berth_api::models::{Mount, MountBindOptionsPropagationEnum, MountPointTypeEnum, MountTypeEnum};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path.
    #[default]
    Bind,
    /// A named or anonymous volume.
    Volume,
    /// A tmpfs.
    Tmpfs,
}

/// One mount of a container, resolved at create and kept in its record (Docker's `MountPoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MountPoint {
    /// Bind, volume or tmpfs.
    pub kind: MountKind,
    /// The volume's name (empty for binds, tmpfs, and anonymous volumes not yet created).
    #[serde(default)]
    pub name: String,
    /// Host path of a bind; a volume's mount point once created.
    #[serde(default)]
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// Volume driver (`local`).
    #[serde(default)]
    pub driver: String,
    /// Docker's `Mode` as inspect shows it (`ro`, `z`, `rw,rshared`...).
    #[serde(default)]
    pub mode: String,
    /// Writable.
    pub rw: bool,
    /// Bind propagation (`rprivate` by default for binds).
    #[serde(default)]
    pub propagation: String,
    /// Fill a new volume with the image's content at the destination (not `nocopy`).
    #[serde(default)]
    pub copy: bool,
    /// Mount only this path inside the volume (`volume-subpath`).
    #[serde(default)]
    pub subpath: String,
    /// tmpfs options (`size=..`, `mode=..`).
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
    /// Create a missing bind source (`-v` does; `--mount` refuses).
    #[serde(default)]
    pub create_source: bool,
    /// An anonymous volume (removed with `rm -v` and `--rm`).
    #[serde(default)]
    pub anonymous: bool,
    /// Options for a volume created by this mount (`volume-opt`).
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// Labels for a volume created by this mount.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// From `--tmpfs` (`HostConfig.Tmpfs`): mounted, but not listed in inspect's `Mounts`, as Docker.
    #[serde(default)]
    pub tmpfs_flag: bool,
}

impl MountPoint {
    /// Whether inspect's and ps's `Mounts` list it (Docker leaves `--tmpfs` mounts out).
    pub fn listed(&self) -> bool {
        !self.tmpfs_flag
    }

    /// The API's `MountPoint` (inspect's `Mounts`).
    pub fn to_api(&self) -> berth_api::models::MountPoint {
        berth_api::models::MountPoint {
            typ: Some(match self.kind {
                MountKind::Bind => MountPointTypeEnum::BIND,
                MountKind::Volume => MountPointTypeEnum::VOLUME,
                MountKind::Tmpfs => MountPointTypeEnum::TMPFS,
            }),
            name: (self.kind == MountKind::Volume).then(|| self.name.clone()),
            source: Some(self.source.clone()),
            destination: Some(self.destination.clone()),
            driver: (self.kind == MountKind::Volume).then(|| self.driver.clone()),
            mode: Some(self.mode.clone()),
            rw: Some(self.rw),
            propagation: Some(self.propagation.clone()),
        }
    }
}

/// Everything about a container's mounts in its create request.
#[derive(Debug, Clone, Default)]
pub struct MountRequest<'a> {
    /// `HostConfig.Binds`.
    pub binds: &'a [String],
    /// `HostConfig.Mounts`.
    pub mounts: &'a [Mount],
    /// `HostConfig.Tmpfs`.
    pub tmpfs: Option<&'a HashMap<String, String>>,
    /// `Config.Volumes` (anonymous volumes and the image's `VOLUME`s).
    pub volumes: Vec<String>,
    /// Mount points taken from `--volumes-from` containers, with `:ro` already applied.
    pub from: Vec<MountPoint>,
    /// `HostConfig.VolumeDriver`.
    pub volume_driver: Option<&'a str>,
}

fn invalid(spec: &str, why: &str) -> EngineError {
    EngineError::InvalidArgument(format!("invalid volume specification: '{spec}': {why}"))
}

fn check_destination(spec: &str, dst: &str) -> Result<String> {
    if !dst.starts_with('/') {
        return Err(invalid(
            spec,
            "invalid mount config: destination must be an absolute path",
        ));
    }
    let clean = clean_path(dst);
    if clean == "/" {
        return Err(invalid(spec, "invalid specification: destination can't be '/'"));
    }
    Ok(clean)
}

/// Lexical cleaning as Go's `filepath.Clean` (the container path is resolved safely at start).
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    format!("/{}", out.join("/"))
}

const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

/// Docker's rule for named volumes (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn valid_volume_name(name: &str) -> bool {
    berth_volume::validate_name(name).is_ok()
}

/// Parses one `-v` entry: `/host:/dst[:opts]` (a bind) or `name:/dst[:opts]` (a named volume).
pub fn parse_bind(spec: &str, volume_driver: Option<&str>) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid(spec, "invalid number of fields")),
    };
    if src.is_empty() {
        return Err(invalid(spec, "empty section between colons"));
    }
    let destination = check_destination(spec, dst)?;
    let mut rw = true;
    let mut propagation = String::new();
    let (mut seen_rw, mut seen_label, mut nocopy) = (false, false, false);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" | "rw" if !seen_rw => {
                seen_rw = true;
                rw = m == "rw";
            }
            "z" | "Z" if !seen_label => seen_label = true,
            "nocopy" if !nocopy => nocopy = true,
            p if PROPAGATIONS.contains(&p) && propagation.is_empty() => propagation = p.to_string(),
            _ => return Err(invalid(spec, &format!("invalid mode: {mode}"))),
        }
    }
    if src.starts_with('/') {
        if nocopy {
            return Err(invalid(spec, "invalid mode: nocopy applies to volumes only"));
        }
        return Ok(MountPoint {
            kind: MountKind::Bind,
            source: clean_path(src),
            destination,
            mode: mode.to_string(),
            rw,
            propagation: if propagation.is_empty() {
                "rprivate".into()
            } else {
                propagation
            },
            create_source: true,
            ..Default::default()
        });
    }
    if !valid_volume_name(src) {
        return Err(EngineError::InvalidArgument(format!(
            "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    if !propagation.is_empty() {
        return Err(invalid(spec, "invalid mode: propagation applies to binds only"));
    }
    Ok(MountPoint {
        kind: MountKind::Volume,
        name: src.to_string(),
        destination,
        driver: volume_driver.filter(|d| !d.is_empty()).unwrap_or("local").to_string(),
        // Docker shows `z` for a named volume given without a label mode.
        mode: if mode.is_empty() { "z".into() } else { mode.to_string() },
        rw,
        copy: !nocopy,
        ..Default::default()
    })
}

/// Parses one `--mount` (`HostConfig.Mounts` entry), as Docker validates it.
pub fn parse_mount(m: &Mount, volume_driver: Option<&str>) -> Result<MountPoint> {
    let target = m.target.clone().unwrap_or_default();
    if target.is_empty() {
        return Err(EngineError::InvalidArgument(
            "invalid mount config: Target must not be empty".into(),
        ));
    }
    let kind = m.typ.unwrap_or(MountTypeEnum::VOLUME);
    let type_name = format!("{kind}");
    let bad = |why: &str| EngineError::InvalidArgument(format!("invalid mount config for type \"{type_name}\": {why}"));
    if !target.starts_with('/') {
        return Err(bad(&format!(
            "invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let destination = clean_path(&target);
    let source = m.source.clone().unwrap_or_default();
    let rw = !m.read_only.unwrap_or(false);
    match kind {
        MountTypeEnum::BIND => {
            if source.is_empty() {
                return Err(bad("field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(bad(&format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            if m.volume_options.is_some() || m.tmpfs_options.is_some() {
                return Err(bad("field VolumeOptions/TmpfsOptions must not be specified"));
            }
            let opts = m.bind_options.clone().unwrap_or_default();
            let create = opts.create_mountpoint.unwrap_or(false);
            if !create && !std::path::Path::new(&source).exists() {
                return Err(bad(&format!("bind source path does not exist: {source}")));
            }
            let propagation = match opts.propagation {
                Some(p) if p != MountBindOptionsPropagationEnum::EMPTY => format!("{p}"),
                _ => "rprivate".into(),
            };
            Ok(MountPoint {
                kind: MountKind::Bind,
                source: clean_path(&source),
                destination,
                rw,
                propagation,
                create_source: create,
                ..Default::default()
            })
        }
        MountTypeEnum::VOLUME => {
            if m.bind_options.is_some() || m.tmpfs_options.is_some() {
                return Err(bad("field BindOptions/TmpfsOptions must not be specified"));
            }
            if !source.is_empty() && !valid_volume_name(&source) {
                return Err(EngineError::InvalidArgument(format!(
                    "create {source}: \"{source}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
                )));
            }
            let vo = m.volume_options.clone().unwrap_or_default();
            let dc = vo.driver_config.clone().unwrap_or_default();
            let subpath = vo.subpath.clone().unwrap_or_default();
            if subpath.starts_with('/') || subpath.split('/').any(|c| c == "..") {
                return Err(bad(&format!(
                    "invalid subpath {subpath}: must be relative and stay inside the volume"
                )));
            }
            Ok(MountPoint {
                kind: MountKind::Volume,
                name: source.clone(),
                destination,
                driver: dc
                    .name
                    .filter(|d| !d.is_empty())
                    .or(volume_driver.map(str::to_string))
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "local".into()),
                rw,
                copy: !vo.no_copy.unwrap_or(false),
                subpath,
                anonymous: source.is_empty(),
                driver_opts: dc.options.unwrap_or_default().into_iter().collect(),
                labels: vo.labels.unwrap_or_default().into_iter().collect(),
                ..Default::default()
            })
        }
        MountTypeEnum::TMPFS => {
            if !source.is_empty() {
                return Err(bad("field Source must not be specified"));
            }
            if m.bind_options.is_some() || m.volume_options.is_some() {
                return Err(bad("field BindOptions/VolumeOptions must not be specified"));
            }
            let t = m.tmpfs_options.clone().unwrap_or_default();
            let mut options = Vec::new();
            if let Some(size) = t.size_bytes {
                if size < 0 {
                    return Err(bad(&format!("invalid tmpfs size {size}")));
                }
                if size > 0 {
                    options.push(format!("size={size}"));
                }
            }
            if let Some(mode) = t.mode.filter(|m| *m != 0) {
                options.push(format!("mode={mode:o}"));
            }
            if !rw {
                options.push("ro".into());
            }
            Ok(MountPoint {
                kind: MountKind::Tmpfs,
                destination,
                rw,
                tmpfs_options: options,
                ..Default::default()
            })
        }
        other => Err(EngineError::InvalidArgument(format!(
            "mount type unknown or not supported: {other}"
        ))),
    }
}

/// Parses `--tmpfs /dst[:opts]` (`HostConfig.Tmpfs`).
pub fn parse_tmpfs(dst: &str, opts: &str) -> Result<MountPoint> {
    let destination = check_destination(dst, dst)?;
    let mut options = Vec::new();
    let mut rw = true;
    for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let known = o.starts_with("size=")
            || o.starts_with("mode=")
            || o.starts_with("uid=")
            || o.starts_with("gid=")
            || o.starts_with("nr_inodes=")
            || o.starts_with("nr_blocks=")
            || matches!(
                o,
                "ro" | "rw"
                    | "exec"
                    | "noexec"
                    | "suid"
                    | "nosuid"
                    | "dev"
                    | "nodev"
                    | "sync"
                    | "async"
                    | "atime"
                    | "noatime"
                    | "relatime"
            );
        if !known {
            return Err(EngineError::InvalidArgument(format!("invalid tmpfs option \"{o}\"")));
        }
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            _ => {}
        }
        options.push(o.to_string());
    }
    Ok(MountPoint {
        kind: MountKind::Tmpfs,
        destination,
        rw,
        mode: opts.to_string(),
        tmpfs_options: options,
        tmpfs_flag: true,
        ..Default::default()
    })
}

/// Parses `--volumes-from name[:ro|:rw]` into the container name and whether it is read-only.
pub fn parse_volumes_from(spec: &str) -> Result<(String, Option<bool>)> {
    match spec.rsplit_once(':') {
        Some((name, "ro")) => Ok((name.to_string(), Some(true))),
        Some((name, "rw")) => Ok((name.to_string(), Some(false))),
        Some((_, mode)) => Err(EngineError::InvalidArgument(format!(
            "invalid mode for volumes-from: {mode}"
        ))),
        None => Ok((spec.to_string(), None)),
    }
}

/// All the container's mount points, checked: no two on the same destination (Docker's
/// "Duplicate mount point"); a `Config.Volumes` path already mounted otherwise is not a volume of
/// its own; `--volumes-from` mounts yield to the container's own.
pub fn plan(req: &MountRequest<'_>) -> Result<Vec<MountPoint>> {
    let mut out: Vec<MountPoint> = Vec::new();
    let push = |out: &mut Vec<MountPoint>, m: MountPoint| -> Result<()> {
        if out.iter().any(|o| o.destination == m.destination) {
            return Err(EngineError::InvalidArgument(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
        out.push(m);
        Ok(())
    };
    for b in req.binds {
        push(&mut out, parse_bind(b, req.volume_driver)?)?;
    }
    for m in req.mounts {
        push(&mut out, parse_mount(m, req.volume_driver)?)?;
    }
    let mut tmpfs: Vec<(&String, &String)> = req.tmpfs.map(|t| t.iter().collect()).unwrap_or_default();
    tmpfs.sort();
    for (dst, opts) in tmpfs {
        push(&mut out, parse_tmpfs(dst, opts)?)?;
    }
    for m in &req.from {
        if !out.iter().any(|o| o.destination == m.destination) {
            out.push(m.clone());
        }
    }
    let mut anon: Vec<String> = req.volumes.clone();
    anon.sort();
    for v in anon {
        let destination = check_destination(&v, &v)?;
        if out.iter().any(|o| o.destination == destination) {
            continue;
        }
        out.push(MountPoint {
            kind: MountKind::Volume,
            destination,
            driver: req
                .volume_driver
                .filter(|d| !d.is_empty())
                .unwrap_or("local")
                .to_string(),
            rw: true,
            copy: true,
            anonymous: true,
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::{MountTmpfsOptions, MountVolumeOptions};

    #[test]
    fn binds_as_docker_reads_them() {
        let b = parse_bind("/src:/data:ro,rshared", None).unwrap();
        assert_eq!(
            (b.kind, b.rw, b.propagation.as_str(), b.mode.as_str()),
            (MountKind::Bind, false, "rshared", "ro,rshared")
        );
        let v = parse_bind("cache:/var/cache:nocopy", None).unwrap();
        assert_eq!(
            (v.kind, v.name.as_str(), v.copy, v.driver.as_str()),
            (MountKind::Volume, "cache", false, "local")
        );
        assert_eq!(parse_bind("cache:/x", None).unwrap().mode, "z");
        for bad in [
            "a:/x:bogus",
            "/a:x",
            "/a:/",
            "../x:/y",
            "a/b:/y",
            ":/y",
            "/a:/b:ro,rw",
            "v:/b:rshared",
            "/a",
        ] {
            assert!(parse_bind(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts_as_docker_reads_them() {
        let m = Mount {
            target: Some("/data".into()),
            typ: Some(MountTypeEnum::VOLUME),
            volume_options: Some(MountVolumeOptions {
                no_copy: Some(true),
                subpath: Some("sub/dir".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = parse_mount(&m, None).unwrap();
        assert!(p.anonymous && !p.copy && p.subpath == "sub/dir");
        let t = Mount {
            target: Some("/t".into()),
            typ: Some(MountTypeEnum::TMPFS),
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: Some(1 << 20),
                mode: Some(0o1777),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            parse_mount(&t, None).unwrap().tmpfs_options,
            ["size=1048576", "mode=1777"]
        );
        let missing = Mount {
            target: Some("/x".into()),
            source: Some("/no/such/dir/anywhere".into()),
            typ: Some(MountTypeEnum::BIND),
            ..Default::default()
        };
        let e = parse_mount(&missing, None).unwrap_err().to_string();
        assert!(e.contains("bind source path does not exist"), "{e}");
        let escape = Mount {
            target: Some("/x".into()),
            typ: Some(MountTypeEnum::VOLUME),
            volume_options: Some(MountVolumeOptions {
                subpath: Some("../../etc".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(parse_mount(&escape, None).is_err());
    }

    #[test]
    fn plan_merges_and_refuses_duplicates() {
        let binds = vec!["/h:/a".to_string(), "named:/b".to_string()];
        let mut tmpfs = HashMap::new();
        tmpfs.insert("/run".to_string(), "size=64m,noexec".to_string());
        let req = MountRequest {
            binds: &binds,
            tmpfs: Some(&tmpfs),
            volumes: vec!["/b".into(), "/c".into()],
            ..Default::default()
        };
        let p = plan(&req).unwrap();
        let dests: Vec<&str> = p.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, ["/a", "/b", "/run", "/c"]);
        assert!(p[3].anonymous);
        let dup = vec!["/h:/a".to_string(), "/g:/a/".to_string()];
        let e = plan(&MountRequest {
            binds: &dup,
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("Duplicate mount point: /a"), "{e}");
        assert!(parse_tmpfs("/t", "size=1m,bogus").is_err());
        assert_eq!(parse_volumes_from("web:ro").unwrap(), ("web".to_string(), Some(true)));
    }
}
