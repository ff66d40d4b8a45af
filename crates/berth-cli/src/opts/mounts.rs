//! `--mount`, `-v/--volume` and `--tmpfs` into `HostConfig.Mounts`, `HostConfig.Binds`,
//! `Config.Volumes` and `HostConfig.Tmpfs`, as Docker's `opts.MountOpt` and `parse()` read them.

use std::collections::HashMap;

use berth_api::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountTypeEnum, MountVolumeOptions,
};

use crate::units;

/// `Config.Volumes`: anonymous volume paths with empty objects.
pub type Volumes = HashMap<String, HashMap<(), ()>>;

/// `--mount type=bind,source=/a,target=/b,readonly` into an Engine API `Mount`.
pub fn parse_mount(spec: &str) -> Result<Mount, String> {
    let bad = |why: &str| format!("invalid argument \"{spec}\" for \"--mount\" flag: {why}");
    let mut m = Mount {
        typ: Some(MountTypeEnum::VOLUME),
        ..Mount::default()
    };
    let mut bind = MountBindOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let mut volume = MountVolumeOptions::default();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim())),
            None => (field.trim().to_lowercase(), None),
        };
        let flag = |v: Option<&str>| -> Result<bool, String> {
            match v.map(str::to_lowercase).as_deref() {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(x) => Err(bad(&format!("invalid value for {k}: {x}"))),
            }
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| bad(&format!("invalid field '{field}' must be a key=value pair")))
        };
        match k.as_str() {
            "type" => {
                let t = need(v)?.to_lowercase();
                m.typ = Some(t.parse().map_err(|_| bad(&format!("unknown mount type '{t}'")))?);
            }
            "source" | "src" => m.source = Some(need(v)?),
            "target" | "dst" | "destination" => m.target = Some(need(v)?),
            "readonly" | "ro" => m.read_only = Some(flag(v)?),
            "consistency" => m.consistency = Some(need(v)?),
            "bind-propagation" => {
                let p = need(v)?.to_lowercase();
                let p: MountBindOptionsPropagationEnum =
                    p.parse().map_err(|_| bad(&format!("invalid propagation mode '{p}'")))?;
                bind.propagation = Some(p);
            }
            "bind-recursive" => {}
            "volume-nocopy" => volume.no_copy = Some(flag(v)?),
            "tmpfs-size" => {
                tmpfs.size_bytes = Some(units::ram_in_bytes(&need(v)?).map_err(|e| bad(&e))?);
            }
            "tmpfs-mode" => {
                tmpfs.mode = Some(i64::from_str_radix(&need(v)?, 8).map_err(|e| bad(&e.to_string()))?);
            }
            _ => return Err(bad(&format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if m.target.is_none() {
        return Err(bad("target is required"));
    }
    m.bind_options = (bind != MountBindOptions::default()).then_some(bind);
    m.tmpfs_options = (tmpfs != MountTmpfsOptions::default()).then_some(tmpfs);
    m.volume_options = (volume != MountVolumeOptions::default()).then_some(volume);
    Ok(m)
}

/// `-v` specs: `host:container[:opts]` are binds, a lone path is an anonymous volume.
pub fn split_volumes(specs: &[String]) -> (Vec<String>, Volumes) {
    let mut binds = Vec::new();
    let mut volumes = Volumes::new();
    for v in specs {
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            volumes.insert(v.clone(), HashMap::new());
        }
    }
    (binds, volumes)
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
        let (binds, volumes) = split_volumes(&["/h:/c:ro".into(), "/data".into()]);
        assert_eq!(binds, ["/h:/c:ro"]);
        assert!(volumes.contains_key("/data") && volumes.len() == 1);
        let t = parse_tmpfs(&["/run:rw,size=64m".into(), "/x".into()]);
        assert_eq!(t["/run"], "rw,size=64m");
        assert_eq!(t["/x"], "");
    }
}
