//! Volume names and the `local` driver's options (`type`, `device`, `o`, `size`), checked as
//! dockerd's `volume/local` package checks them, and `o` turned into mount(2) flags and data as
//! `moby/sys/mount` does.

use crate::VolumeError;
use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The characters Docker allows in a local volume name, as its error message prints them.
pub const RESTRICTED_NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Checks Docker's local volume name rule `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`. A name that passes has no
/// `/` and cannot be `.` or `..`, so it is always one directory under the volumes root.
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    if name.len() == 1 {
        return Err(VolumeError::InvalidName(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(VolumeError::InvalidName(format!(
            "{name:?} includes invalid characters for a local volume name, only \
             {RESTRICTED_NAME_CHARS:?} are allowed. If you intended to pass a host directory, use \
             absolute path"
        )));
    }
    Ok(())
}

/// The keys the local driver accepts (dockerd's `validOpts`).
const VALID_KEYS: [&str; 4] = ["type", "o", "device", "size"];
/// Keys that need others (dockerd's `mandatoryOpts`), checked in this order.
const REQUIRED: [(&str, &[&str]); 3] = [("device", &["type"]), ("type", &["device"]), ("o", &["device", "type"])];

/// Checks the options of a `local` volume as dockerd does at create time. Beyond dockerd, the host
/// directory of a bind (`o=bind`) must exist now, so a typo is a 400 at create and not a 500 at the
/// first `docker run`.
pub fn validate_options(opts: &BTreeMap<String, String>) -> Result<(), VolumeError> {
    for key in opts.keys() {
        if !VALID_KEYS.contains(&key.as_str()) {
            return Err(VolumeError::InvalidOption(format!("invalid option: {key:?}")));
        }
    }
    if let Some(size) = opts.get("size") {
        let bytes =
            parse_ram_size(size).ok_or_else(|| VolumeError::InvalidOption(format!("invalid size: '{size}'")))?;
        // dockerd enforces `size` with XFS project quotas; berth has no quota support (yet), and
        // says so as dockerd does on a file system without it.
        if bytes > 0 {
            return Err(VolumeError::InvalidOption(
                "quota size requested but no quota support".into(),
            ));
        }
    }
    for (key, needs) in REQUIRED {
        if opts.contains_key(key) {
            for need in needs {
                if !opts.contains_key(*need) {
                    return Err(VolumeError::InvalidOption(format!("missing required option: {need:?}")));
                }
            }
        }
    }
    let mount = MountOptions::parse(opts.get("o").map(String::as_str).unwrap_or(""));
    if mount.flags.contains(MsFlags::MS_BIND) {
        let device = opts.get("device").map(String::as_str).unwrap_or("");
        if !Path::new(device).is_absolute() || std::fs::metadata(device).is_err() {
            return Err(VolumeError::InvalidOption(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {device}"
            )));
        }
    }
    Ok(())
}

/// Whether a volume with these options is mounted at its first user (dockerd's `needsMount`).
pub fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    opts.get("type").is_some_and(|t| !t.is_empty()) || opts.get("device").is_some_and(|d| !d.is_empty())
}

/// Parses a size as go-units' `RAMInBytes` does: `10m`, `1.5GiB`, `512k`, `100` (binary multiples).
pub fn parse_ram_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

/// The `o` option split as `moby/sys/mount` splits it: flags it knows become mount(2) flags,
/// propagation flags are applied by a second call, and the rest is the file system's data string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// mount(2) flags (`ro`, `nosuid`, `bind`…).
    pub flags: MsFlags,
    /// Propagation flags (`private`, `rshared`…), applied after the mount.
    pub propagation: MsFlags,
    /// What is left, comma-joined, for the file system (`size=10m,uid=1000`).
    pub data: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: String::new(),
        }
    }
}

impl MountOptions {
    /// Splits a comma-separated `o` value.
    pub fn parse(o: &str) -> MountOptions {
        let mut out = MountOptions::default();
        let mut data = Vec::new();
        for opt in o.split(',').filter(|s| !s.is_empty()) {
            let (set, flag) = match opt {
                "defaults" => continue,
                "ro" => (true, MsFlags::MS_RDONLY),
                "rw" => (false, MsFlags::MS_RDONLY),
                "suid" => (false, MsFlags::MS_NOSUID),
                "nosuid" => (true, MsFlags::MS_NOSUID),
                "dev" => (false, MsFlags::MS_NODEV),
                "nodev" => (true, MsFlags::MS_NODEV),
                "exec" => (false, MsFlags::MS_NOEXEC),
                "noexec" => (true, MsFlags::MS_NOEXEC),
                "sync" => (true, MsFlags::MS_SYNCHRONOUS),
                "async" => (false, MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (true, MsFlags::MS_DIRSYNC),
                "remount" => (true, MsFlags::MS_REMOUNT),
                "mand" => (true, MsFlags::MS_MANDLOCK),
                "nomand" => (false, MsFlags::MS_MANDLOCK),
                "atime" => (false, MsFlags::MS_NOATIME),
                "noatime" => (true, MsFlags::MS_NOATIME),
                "diratime" => (false, MsFlags::MS_NODIRATIME),
                "nodiratime" => (true, MsFlags::MS_NODIRATIME),
                "bind" => (true, MsFlags::MS_BIND),
                "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
                "relatime" => (true, MsFlags::MS_RELATIME),
                "norelatime" => (false, MsFlags::MS_RELATIME),
                "strictatime" => (true, MsFlags::MS_STRICTATIME),
                "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
                _ => {
                    if let Some(p) = propagation(opt) {
                        out.propagation = p;
                    } else {
                        data.push(opt);
                    }
                    continue;
                }
            };
            if set {
                out.flags |= flag;
            } else {
                out.flags &= !flag;
            }
        }
        out.data = data.join(",");
        out
    }
}

fn propagation(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// dockerd's `opts.json` (its `optsConfig`), kept so a volumes directory stays readable by both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DockerOpts {
    #[serde(rename = "MountType", default)]
    pub mount_type: String,
    #[serde(rename = "MountOpts", default)]
    pub mount_opts: String,
    #[serde(rename = "MountDevice", default)]
    pub mount_device: String,
    #[serde(rename = "Quota", default)]
    pub quota: DockerQuota,
}

/// dockerd's `quota.Quota`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DockerQuota {
    #[serde(rename = "Size", default)]
    pub size: u64,
}

impl DockerOpts {
    pub(crate) fn from_options(opts: &BTreeMap<String, String>) -> DockerOpts {
        let get = |k: &str| opts.get(k).cloned().unwrap_or_default();
        DockerOpts {
            mount_type: get("type"),
            mount_opts: get("o"),
            mount_device: get("device"),
            quota: DockerQuota {
                size: opts.get("size").and_then(|s| parse_ram_size(s)).unwrap_or(0),
            },
        }
    }

    /// The driver options these stand for (for a volume dockerd created, which has no volume.json).
    pub(crate) fn to_options(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in [
            ("type", &self.mount_type),
            ("o", &self.mount_opts),
            ("device", &self.mount_device),
        ] {
            if !v.is_empty() {
                out.insert(k.to_string(), v.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn names() {
        for ok in ["ab", "my-vol", "v_1.2", "A9", "0123456789abcdef"] {
            validate_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "a", "..", ".a", "-ab", "_ab", "a/b", "../etc", "a b", "é1", "ab/"] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(
                berth_types::HasErrorKind::kind(&e),
                berth_types::ErrorKind::InvalidArgument
            );
        }
        let e = validate_name("x/y").unwrap_err().to_string();
        assert_eq!(
            e,
            "\"x/y\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
             use absolute path"
        );
        assert!(validate_name("a").unwrap_err().to_string().contains("too short"));
    }

    #[test]
    fn option_validation() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let table: &[Case] = &[
            (&[], None),
            (
                &[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=10m,uid=1000")],
                None,
            ),
            (&[("type", "none"), ("device", "/tmp"), ("o", "bind")], None),
            (&[("bogus", "1")], Some("invalid option: \"bogus\"")),
            (&[("type", "tmpfs")], Some("missing required option: \"device\"")),
            (&[("device", "tmpfs")], Some("missing required option: \"type\"")),
            (
                &[("o", "size=1m"), ("device", "tmpfs")],
                Some("missing required option: \"type\""),
            ),
            (
                &[("type", "none"), ("device", "/nonexistent-berth"), ("o", "bind")],
                Some("bind source path does not exist: /nonexistent-berth"),
            ),
            (
                &[("type", "none"), ("device", "rel"), ("o", "rbind")],
                Some("does not exist"),
            ),
            (&[("size", "0")], None),
            (&[("size", "10m")], Some("quota size requested but no quota support")),
            (&[("size", "lots")], Some("invalid size: 'lots'")),
        ];
        for (kv, want) in table {
            let got = validate_options(&opts(kv));
            match (want, got) {
                (None, Ok(())) => {}
                (Some(w), Err(e)) => {
                    assert!(e.to_string().contains(w), "{kv:?}: {e}");
                    assert_eq!(
                        berth_types::HasErrorKind::kind(&e),
                        berth_types::ErrorKind::InvalidArgument
                    );
                }
                (w, g) => panic!("{kv:?}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn sizes() {
        let table = [
            ("100", Some(100)),
            ("10m", Some(10 << 20)),
            ("10M", Some(10 << 20)),
            ("1.5GiB", Some(3 << 29)),
            ("512kb", Some(512 << 10)),
            ("1 k", Some(1024)),
            ("x", None),
            ("10q", None),
            ("", None),
        ];
        for (s, want) in table {
            assert_eq!(parse_ram_size(s), want, "{s}");
        }
    }

    #[test]
    fn mount_options() {
        let m = MountOptions::parse("size=10m,uid=1000,noexec,ro,rw,rshared");
        assert_eq!(m.flags, MsFlags::MS_NOEXEC);
        assert_eq!(m.propagation, MsFlags::MS_SHARED | MsFlags::MS_REC);
        assert_eq!(m.data, "size=10m,uid=1000");
        let b = MountOptions::parse("bind,ro");
        assert_eq!(b.flags, MsFlags::MS_BIND | MsFlags::MS_RDONLY);
        assert!(b.data.is_empty());
        assert_eq!(MountOptions::parse(""), MountOptions::default());
    }

    #[test]
    fn docker_opts_round_trip() {
        let o = opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]);
        let d = DockerOpts::from_options(&o);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"MountType":"tmpfs","MountOpts":"size=1m","MountDevice":"tmpfs","Quota":{"Size":0}}"#
        );
        let back: DockerOpts = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_options(), o);
        assert!(needs_mount(&o));
        assert!(!needs_mount(&BTreeMap::new()));
    }
}
