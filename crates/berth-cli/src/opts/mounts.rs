//! `--mount`, `-v/--volume` and `--tmpfs` into `HostConfig.Mounts`, `HostConfig.Binds`,
//! `Config.Volumes` and `HostConfig.Tmpfs`, as Docker's `opts.MountOpt` and `parse()` read them.

use std::collections::HashMap;

use berth_api::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountTypeEnum, MountVolumeOptions,
};

use crate::units;

/// `Config.Volumes`: anonymous volume paths with empty objects.
pub type Volumes = HashMap<String, HashMap<(), ()>>;

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A relative path made absolute against the working directory, cleaned as Go's `filepath.Abs`
/// (unchanged if the working directory is unknown).
fn absolute_source(src: &str) -> String {
    {
        if let Ok(cwd) = std::env::current_dir() {
            let joined = cwd.join(src);
            // Lexically clean `.` and `..` components, as Go's `filepath.Abs`.
            let mut parts: Vec<String> = Vec::new();
            for c in joined.components() {
                match c {
                    std::path::Component::CurDir | std::path::Component::RootDir => {}
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
                }
            }
            return format!("/{}", parts.join("/"));
        }
    }
    src.to_string()
}

/// `--mount type=bind,source=/a,target=/b,readonly` into an Engine API `Mount`, with the keys,
/// checks and wording of the docker CLI's `opts.MountOpt`.
pub fn parse_mount(spec: &str) -> Result<Mount, String> {
    let bad = |why: &str| format!("invalid argument \"{spec}\" for \"--mount\" flag: {why}");
    let mut m = Mount {
        typ: Some(MountTypeEnum::VOLUME),
        ..Mount::default()
    };
    let mut bind: Option<MountBindOptions> = None;
    let mut tmpfs: Option<MountTmpfsOptions> = None;
    let mut volume: Option<MountVolumeOptions> = None;
    for field in split_csv(spec).map_err(|e| bad(&e))? {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(v) = v else {
            match k.as_str() {
                "readonly" | "ro" => m.read_only = Some(true),
                "volume-nocopy" => volume.get_or_insert_with(Default::default).no_copy = Some(true),
                "bind-nonrecursive" => bind.get_or_insert_with(Default::default).non_recursive = Some(true),
                _ => return Err(bad(&format!("invalid field '{field}' must be a key=value pair"))),
            }
            continue;
        };
        let invalid = || bad(&format!("invalid value for {k}: {v}"));
        match k.as_str() {
            "type" => {
                let t = v.to_lowercase();
                m.typ = Some(t.parse().map_err(|_| bad(&format!("unknown mount type '{t}'")))?);
            }
            "source" | "src" if v == "." || v.starts_with("./") => m.source = Some(absolute_source(&v)),
            "source" | "src" => m.source = Some(v.clone()),
            "target" | "dst" | "destination" => m.target = Some(v.clone()),
            "readonly" | "ro" => m.read_only = Some(parse_bool(&v).ok_or_else(invalid)?),
            "consistency" => m.consistency = Some(v.to_lowercase()),
            "bind-propagation" => {
                let p = v.to_lowercase();
                let p: MountBindOptionsPropagationEnum =
                    p.parse().map_err(|_| bad(&format!("invalid propagation mode '{p}'")))?;
                bind.get_or_insert_with(Default::default).propagation = Some(p);
            }
            "bind-nonrecursive" => {
                let b = parse_bool(&v).ok_or_else(invalid)?;
                bind.get_or_insert_with(Default::default).non_recursive = Some(b);
            }
            "bind-recursive" => {
                let b = bind.get_or_insert_with(Default::default);
                match v.as_str() {
                    "enabled" => {}
                    "disabled" => b.non_recursive = Some(true),
                    "writable" => b.read_only_non_recursive = Some(true),
                    "readonly" => b.read_only_force_recursive = Some(true),
                    _ => {
                        return Err(bad(&format!(
                        "invalid value for {k}: {v} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                    )))
                    }
                }
            }
            "volume-subpath" => volume.get_or_insert_with(Default::default).subpath = Some(v.clone()),
            "volume-nocopy" => {
                let b = parse_bool(&v).ok_or_else(invalid)?;
                volume.get_or_insert_with(Default::default).no_copy = Some(b);
            }
            "volume-label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((v.as_str(), ""));
                if !lk.is_empty() {
                    volume
                        .get_or_insert_with(Default::default)
                        .labels
                        .get_or_insert_with(HashMap::new)
                        .insert(lk.to_string(), lv.to_string());
                }
            }
            "volume-driver" => {
                volume
                    .get_or_insert_with(Default::default)
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .name = Some(v.clone());
            }
            "volume-opt" => {
                let (ok, ov) = v.split_once('=').unwrap_or((v.as_str(), ""));
                let opts = volume
                    .get_or_insert_with(Default::default)
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .options
                    .get_or_insert_with(HashMap::new);
                if !ok.is_empty() {
                    opts.insert(ok.to_string(), ov.to_string());
                }
            }
            "tmpfs-size" => {
                tmpfs.get_or_insert_with(Default::default).size_bytes =
                    Some(units::ram_in_bytes(&v).map_err(|_| invalid())?);
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&v, 8).map_err(|_| invalid())?;
                tmpfs.get_or_insert_with(Default::default).mode = Some(i64::from(mode));
            }
            _ => return Err(bad(&format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if m.target.as_deref().unwrap_or_default().is_empty() {
        return Err(bad("target is required"));
    }
    let typ = m.typ.map(|t| t.to_string()).unwrap_or_default();
    if volume.is_some() && m.typ != Some(MountTypeEnum::VOLUME) {
        return Err(bad(&format!("cannot mix 'volume-*' options with mount type '{typ}'")));
    }
    if bind.is_some() && m.typ != Some(MountTypeEnum::BIND) {
        return Err(bad(&format!("cannot mix 'bind-*' options with mount type '{typ}'")));
    }
    if tmpfs.is_some() && m.typ != Some(MountTypeEnum::TMPFS) {
        return Err(bad(&format!("cannot mix 'tmpfs-*' options with mount type '{typ}'")));
    }
    if let Some(b) = &bind {
        let ro = m.read_only == Some(true);
        if b.read_only_non_recursive == Some(true) && !ro {
            return Err(bad(
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction",
            ));
        }
        if b.read_only_force_recursive == Some(true) {
            if !ro {
                return Err(bad(
                    "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction",
                ));
            }
            if b.propagation != Some(MountBindOptionsPropagationEnum::RPRIVATE) {
                return Err(bad(
                    "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction",
                ));
            }
        }
    }
    m.bind_options = bind;
    m.tmpfs_options = tmpfs;
    m.volume_options = volume;
    Ok(m)
}

/// One CSV record (Go's `encoding/csv`, as the docker CLI reads `--mount`): fields split on `,`,
/// a field in double quotes may hold commas, `""` inside quotes is a quote.
pub(crate) fn split_csv(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            c => cur.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("parse error on line 1, column 0: extraneous or missing \" in quoted-field".into());
    }
    out.push(cur);
    Ok(out)
}

/// The parts of a `-v` spec as the docker CLI's `loader.ParseVolume` reads them.
#[derive(Debug, Default, PartialEq)]
pub struct VolumeSpec {
    /// Host path or volume name; empty for an anonymous volume.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// The options after the second colon (`ro`, `nocopy`, `rshared`, ...).
    pub mode: String,
}

/// `loader.ParseVolume` (Linux): `[source:]target[:mode]`, with Docker's errors.
pub fn parse_volume_spec(spec: &str) -> Result<VolumeSpec, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    if spec.len() <= 2 {
        return Ok(VolumeSpec {
            target: spec.to_string(),
            ..VolumeSpec::default()
        });
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let err = |why: &str| format!("invalid spec: {spec}: {why}");
    let mut v = VolumeSpec::default();
    let n = parts.len();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == n;
        if p.is_empty() {
            return Err(err("empty section between colons"));
        }
        if v.source.is_empty() && v.target.is_empty() && last {
            v.target = p.to_string();
        } else if v.source.is_empty() && v.target.is_empty() {
            v.source = p.to_string();
        } else if v.target.is_empty() {
            v.target = p.to_string();
        } else if !last {
            return Err(err("too many colons"));
        } else {
            v.mode = p.to_string();
        }
    }
    Ok(v)
}

/// `-v` specs into `HostConfig.Binds` and `Config.Volumes`, as the docker CLI's `parse()`: a
/// spec with a source (a host path, or a volume name) is a bind string (`./rel` sources made
/// absolute), a lone path an anonymous volume; repeated specs count once.
pub fn split_volumes(specs: &[String]) -> Result<(Vec<String>, Volumes), String> {
    let mut binds: Vec<String> = Vec::new();
    let mut volumes = Volumes::new();
    for v in specs {
        let parsed = parse_volume_spec(v)?;
        if parsed.source.is_empty() {
            volumes.insert(v.clone(), HashMap::new());
            continue;
        }
        let bind = if parsed.source.starts_with('.') {
            match v.split_once(':') {
                Some((host, rest)) => format!("{}:{rest}", absolute_source(host)),
                None => v.clone(),
            }
        } else {
            v.clone()
        };
        if !binds.contains(&bind) {
            binds.push(bind);
        }
    }
    Ok((binds, volumes))
}

/// `--tmpfs path[:options]` into `HostConfig.Tmpfs`.
pub fn parse_tmpfs(specs: &[String]) -> HashMap<String, String> {
    specs
        .iter()
        .map(|t| {
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            (path.to_string(), opts.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,src=/a,dst=/b,readonly,bind-propagation=RSLAVE").unwrap();
        assert_eq!(m.typ, Some(MountTypeEnum::BIND));
        assert_eq!((m.source.as_deref(), m.target.as_deref()), (Some("/a"), Some("/b")));
        assert_eq!(m.read_only, Some(true));
        assert_eq!(
            m.bind_options.and_then(|b| b.propagation),
            Some(MountBindOptionsPropagationEnum::RSLAVE)
        );
        let m = parse_mount("target=/v,volume-nocopy=false").unwrap();
        assert_eq!(m.typ, Some(MountTypeEnum::VOLUME));
        assert_eq!(m.volume_options.and_then(|v| v.no_copy), Some(false));
        assert!(m.tmpfs_options.is_none());
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap();
        let t = m.tmpfs_options.unwrap();
        assert_eq!((t.size_bytes, t.mode), (Some(1_048_576), Some(0o1777)));
        for (spec, want) in [
            ("type=bind,src=/a", "target is required"),
            ("type=bind,bogus=1,target=/b", "unexpected key 'bogus'"),
            ("type=floppy,target=/b", "unknown mount type 'floppy'"),
            (
                "type=bind,target=/b,bind-propagation=odd",
                "invalid propagation mode 'odd'",
            ),
            ("target=/b,ro=maybe", "invalid value for ro: maybe"),
            ("target", "must be a key=value pair"),
        ] {
            let e = parse_mount(spec).unwrap_err();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn volumes_and_tmpfs() {
        let (binds, volumes) = split_volumes(&["/h:/c:ro".into(), "/data".into()]).unwrap();
        assert_eq!(binds, ["/h:/c:ro"]);
        assert!(volumes.contains_key("/data") && volumes.len() == 1);
        let t = parse_tmpfs(&["/run:rw,size=64m".into(), "/x".into()]);
        assert_eq!(t["/run"], "rw,size=64m");
        assert_eq!(t["/x"], "");
    }

    fn mount_json(spec: &str) -> serde_json::Value {
        serde_json::to_value(parse_mount(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))).unwrap()
    }

    #[test]
    fn mount_keys_as_docker_sends_them() {
        use serde_json::json;
        assert_eq!(
            mount_json("type=volume,source=data,target=/d,volume-subpath=sub/dir,volume-nocopy"),
            json!({"Type": "volume", "Source": "data", "Target": "/d",
                   "VolumeOptions": {"NoCopy": true, "Subpath": "sub/dir"}})
        );
        assert_eq!(
            mount_json(
                "src=data,dst=/d,volume-driver=nfs,volume-opt=type=nfs,volume-opt=o=addr=1.2.3.4,volume-label=a=b"
            ),
            json!({"Type": "volume", "Source": "data", "Target": "/d",
                   "VolumeOptions": {"Labels": {"a": "b"},
                                     "DriverConfig": {"Name": "nfs", "Options": {"type": "nfs", "o": "addr=1.2.3.4"}}}})
        );
        assert_eq!(
            mount_json("type=bind,source=/h,target=/c,ro=true,bind-propagation=rshared"),
            json!({"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": true,
                   "BindOptions": {"Propagation": "rshared"}})
        );
        assert_eq!(
            mount_json("type=bind,src=/h,dst=/c,readonly,bind-recursive=readonly,bind-propagation=rprivate"),
            json!({"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": true,
                   "BindOptions": {"Propagation": "rprivate", "ReadOnlyForceRecursive": true}})
        );
        assert_eq!(
            mount_json("type=bind,src=/h,dst=/c,bind-recursive=disabled")["BindOptions"],
            json!({"NonRecursive": true})
        );
        assert_eq!(
            mount_json("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=700"),
            json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 448}})
        );
        // Quoted CSV fields may hold commas.
        assert_eq!(
            mount_json("type=volume,dst=/d,\"volume-opt=o=addr=1.2.3.4,rw\"")["VolumeOptions"]["DriverConfig"]
                ["Options"],
            json!({"o": "addr=1.2.3.4,rw"})
        );
        let rel = mount_json("type=bind,src=./x,dst=/c");
        let src = rel["Source"].as_str().unwrap();
        assert!(
            src.starts_with('/') && src.ends_with("/x") && !src.contains("/./"),
            "{src}"
        );
        for (spec, want) in [
            (
                "type=bind,src=/a,dst=/b,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=tmpfs,dst=/b,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'tmpfs'",
            ),
            (
                "type=volume,dst=/b,tmpfs-size=1m",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            (
                "type=bind,src=/a,dst=/b,bind-recursive=writable",
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction",
            ),
            (
                "type=bind,src=/a,dst=/b,ro,bind-recursive=readonly",
                "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction",
            ),
            (
                "type=bind,src=/a,dst=/b,bind-recursive=x",
                "invalid value for bind-recursive: x (must be",
            ),
            ("dst=/b,volume-nocopy=maybe", "invalid value for volume-nocopy: maybe"),
            (
                "type=tmpfs,dst=/b,tmpfs-size=huge",
                "invalid value for tmpfs-size: huge",
            ),
            ("type=tmpfs,dst=/b,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
            ("type=bind,source", "invalid field 'source' must be a key=value pair"),
            ("type=bind,src=/a,dst=", "target is required"),
        ] {
            let e = parse_mount(spec).unwrap_err();
            assert!(
                e.starts_with(&format!("invalid argument \"{spec}\" for \"--mount\" flag: ")) && e.contains(want),
                "{spec}: {e}"
            );
        }
    }

    #[test]
    fn volume_specs_as_docker_parses_them() {
        let v = |s: &str| parse_volume_spec(s);
        assert_eq!(
            v("data:/d:ro,nocopy").unwrap(),
            VolumeSpec {
                source: "data".into(),
                target: "/d".into(),
                mode: "ro,nocopy".into()
            }
        );
        assert_eq!(v("/data").unwrap().source, "");
        assert_eq!(v("/h:/c").unwrap().source, "/h");
        assert_eq!(v("").unwrap_err(), "invalid empty volume spec");
        assert_eq!(
            v("a::/b").unwrap_err(),
            "invalid spec: a::/b: empty section between colons"
        );
        assert_eq!(
            v("/a:/b:ro:x").unwrap_err(),
            "invalid spec: /a:/b:ro:x: too many colons"
        );
        assert_eq!(v(":/b").unwrap_err(), "invalid spec: :/b: empty section between colons");

        let specs: Vec<String> = [
            "data:/d",
            "/h:/c:ro,rshared",
            "/anon",
            "data:/d",
            "/anon",
            "./rel:/r:ro",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (binds, volumes) = split_volumes(&specs).unwrap();
        assert_eq!(binds[..2], ["data:/d".to_string(), "/h:/c:ro,rshared".to_string()]);
        assert_eq!(binds.len(), 3);
        assert!(
            binds[2].starts_with('/') && binds[2].ends_with("/rel:/r:ro"),
            "{}",
            binds[2]
        );
        assert_eq!(volumes.keys().collect::<Vec<_>>(), ["/anon"]);
        assert!(split_volumes(&["a:b:c:d".into()]).is_err());
    }
}
