//! Log drivers as dockerd configures them: `HostConfig.LogConfig` (`{"Type":"json-file","Config":{}}`
//! by default, or the daemon's `--log-driver`/`--log-opt`), checked at create so a bad driver or
//! option is a 400 then and not a failed start. Drivers: `json-file` (`max-size`, `max-file`,
//! `compress`), `local` (the same files under `local-logs/`, rotated by default: 20 MB, 5 files,
//! compressed) and `none` (nothing is kept; `logs` refuses to read).

use crate::error::{EngineError, Result};
use berth_api::models::HostConfigLogConfig;
use berth_log::Rotation;
use std::collections::HashMap;
use std::path::Path;

/// The daemon-wide default log driver and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDefaults {
    /// Driver name.
    pub driver: String,
    /// Options.
    pub opts: HashMap<String, String>,
}

impl Default for LogDefaults {
    fn default() -> Self {
        LogDefaults {
            driver: "json-file".into(),
            opts: HashMap::new(),
        }
    }
}

impl LogDefaults {
    /// `--log-driver` and `--log-opt key=value` of berthd, checked as a container's would be.
    pub fn parse(driver: Option<&str>, opts: &[String]) -> Result<LogDefaults> {
        let driver = driver.filter(|d| !d.is_empty()).unwrap_or("json-file").to_string();
        let mut map = HashMap::new();
        for o in opts {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| EngineError::InvalidArgument(format!("invalid log opt {o:?}: expected key=value")))?;
            map.insert(k.to_string(), v.to_string());
        }
        validate(&driver, &map)?;
        Ok(LogDefaults { driver, opts: map })
    }

    /// The log config a container gets: its own, with the daemon's driver when it names none and
    /// the daemon's options under it when the driver is the daemon's (as dockerd merges them).
    pub fn resolve(&self, asked: Option<&HostConfigLogConfig>) -> Result<HostConfigLogConfig> {
        let mut driver = asked.and_then(|l| l.typ.clone()).unwrap_or_default();
        let mut opts = asked.and_then(|l| l.config.clone()).unwrap_or_default();
        if driver.is_empty() {
            driver = self.driver.clone();
        }
        if driver == self.driver {
            for (k, v) in &self.opts {
                opts.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        validate(&driver, &opts)?;
        Ok(HostConfigLogConfig {
            typ: Some(driver),
            config: Some(opts),
        })
    }
}

/// A size as Docker's `units.RAMInBytes` reads it (`10m`, `1g`, `512k`, `100`).
fn parse_size(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mul) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1i64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then_some((n * mul as f64) as i64)
}

/// Checks a driver and its options with dockerd's messages.
pub fn validate(driver: &str, opts: &HashMap<String, String>) -> Result<()> {
    let bad = |m: String| Err(EngineError::InvalidArgument(m));
    let allowed: &[&str] = match driver {
        "json-file" => &[
            "max-file",
            "max-size",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ],
        "local" => &["max-file", "max-size", "compress"],
        "none" => &[],
        other => return bad(format!("logger: no log driver named '{other}' is registered")),
    };
    for k in opts.keys() {
        if !allowed.contains(&k.as_str()) {
            return bad(format!("unknown log opt '{k}' for {driver} log driver"));
        }
    }
    if let Some(v) = opts.get("max-size") {
        if v != "-1" && parse_size(v).is_none() {
            return bad(format!("invalid value for max-size: {v:?}: invalid size"));
        }
    }
    let max_file = match opts.get("max-file") {
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => n,
            Ok(_) => return bad("max-file cannot be less than 1".into()),
            Err(_) => return bad(format!("invalid value for max-file: {v:?}")),
        },
        None => 1,
    };
    if max_file > 1 && driver == "json-file" && opts.get("max-size").is_none_or(|v| v == "-1") {
        return bad("max-file cannot be set when max-size is not set".into());
    }
    if let Some(v) = opts.get("compress") {
        if v.parse::<bool>().is_err() {
            return bad(format!("error reading compress log option: invalid value {v:?}"));
        }
    }
    Ok(())
}

/// The driver of a container's (resolved) log config.
pub(crate) fn driver(lc: Option<&HostConfigLogConfig>) -> &str {
    lc.and_then(|l| l.typ.as_deref())
        .filter(|d| !d.is_empty())
        .unwrap_or("json-file")
}

/// The writer's rotation for a container's log config (`local` rotates by default, as dockerd).
pub(crate) fn rotation(lc: Option<&HostConfigLogConfig>) -> Rotation {
    let local = driver(lc) == "local";
    let opt = |k: &str| {
        lc.and_then(|l| l.config.as_ref())
            .and_then(|c| c.get(k))
            .map(String::as_str)
    };
    let max_size = match opt("max-size") {
        Some(v) => parse_size(v).unwrap_or(0).max(0) as u64,
        None if local => 20 << 20,
        None => 0,
    };
    let max_files = opt("max-file")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if local { 5 } else { 1 });
    let compress = opt("compress").and_then(|v| v.parse().ok()).unwrap_or(local);
    Rotation {
        max_size,
        max_files,
        compress,
    }
}

/// Where the container's log is written (`<id>-json.log`, `local-logs/container.log`), or empty
/// for `none`.
pub(crate) fn log_path(dir: &Path, id: &str, lc: Option<&HostConfigLogConfig>) -> String {
    match driver(lc) {
        "none" => String::new(),
        "local" => dir.join("local-logs").join("container.log").display().to_string(),
        _ => dir.join(format!("{id}-json.log")).display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lc(t: &str, kv: &[(&str, &str)]) -> HostConfigLogConfig {
        HostConfigLogConfig {
            typ: Some(t.into()),
            config: Some(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        }
    }

    #[test]
    fn defaults_and_merging() {
        let d = LogDefaults::default();
        assert_eq!(d.resolve(None).unwrap(), lc("json-file", &[]));
        let d = LogDefaults::parse(Some("json-file"), &["max-size=1m".into(), "max-file=2".into()]).unwrap();
        let got = d.resolve(Some(&lc("", &[("max-file", "3")]))).unwrap();
        assert_eq!(got, lc("json-file", &[("max-size", "1m"), ("max-file", "3")]));
        // Another driver does not get the daemon's options.
        assert_eq!(d.resolve(Some(&lc("none", &[]))).unwrap(), lc("none", &[]));
    }

    #[test]
    fn refusals_use_dockers_words() {
        let d = LogDefaults::default();
        let err = |l: HostConfigLogConfig| d.resolve(Some(&l)).unwrap_err().to_string();
        assert_eq!(
            err(lc("bogus", &[])),
            "logger: no log driver named 'bogus' is registered"
        );
        assert_eq!(
            err(lc("json-file", &[("max-sise", "1m")])),
            "unknown log opt 'max-sise' for json-file log driver"
        );
        assert_eq!(
            err(lc("json-file", &[("max-size", "1m"), ("max-file", "0")])),
            "max-file cannot be less than 1"
        );
        assert_eq!(
            err(lc("json-file", &[("max-file", "3")])),
            "max-file cannot be set when max-size is not set"
        );
        assert!(err(lc("json-file", &[("max-size", "lots")])).contains("max-size"));
        assert!(err(lc("local", &[("compress", "maybe")])).contains("compress"));
        assert!(err(lc("none", &[("max-size", "1m")])).contains("unknown log opt"));
        assert!(LogDefaults::parse(Some("nope"), &[]).is_err());
        assert!(LogDefaults::parse(None, &["novalue".into()]).is_err());
    }

    #[test]
    fn rotation_and_paths() {
        let r = rotation(Some(&lc(
            "json-file",
            &[("max-size", "10k"), ("max-file", "3"), ("compress", "true")],
        )));
        assert_eq!(
            r,
            Rotation {
                max_size: 10240,
                max_files: 3,
                compress: true
            }
        );
        assert_eq!(
            rotation(None),
            Rotation {
                max_size: 0,
                max_files: 1,
                compress: false
            }
        );
        let local = rotation(Some(&lc("local", &[])));
        assert_eq!((local.max_size, local.max_files, local.compress), (20 << 20, 5, true));
        let dir = Path::new("/d/c");
        assert_eq!(log_path(dir, "c", None), "/d/c/c-json.log");
        assert_eq!(
            log_path(dir, "c", Some(&lc("local", &[]))),
            "/d/c/local-logs/container.log"
        );
        assert_eq!(log_path(dir, "c", Some(&lc("none", &[]))), "");
        assert_eq!(parse_size("1.5m"), Some(1572864));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("2KB"), Some(2048));
    }
}
