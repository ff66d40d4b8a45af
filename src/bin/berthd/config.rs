//! `/etc/berth/daemon.json`: dockerd's configuration file, with dockerd's keys where berthd has the
//! setting. A key set on the command line wins over the file; a key berthd does not know is refused
//! with its name, as dockerd refuses it. The file's values become the flags they stand for, so clap
//! checks them exactly as it checks the command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use serde_json::{Map, Value};

use crate::Args;

/// Where berthd looks for its configuration file when `--config-file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// How a key's JSON value becomes command-line arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string: `--flag value`.
    Str,
    /// An array of strings: `--flag v` for each.
    List,
    /// A boolean for a flag that takes `true`/`false`.
    Bool,
    /// A boolean for a flag without a value (`"tls": true` is `--tls`).
    Switch,
    /// A non-negative integer.
    Num,
    /// An object of strings: `--flag k=v` for each (`log-opts`).
    Map,
    /// `[{"base": CIDR, "size": N}]`.
    Pools,
    /// `{"name": {"path": P}}`.
    Runtimes,
    /// `{"nofile": {"Name": "nofile", "Soft": N, "Hard": N}}`.
    Ulimits,
    /// `{"name": true}`.
    Features,
}

/// One daemon.json key: its flag, its kind, and whether `SIGHUP` applies a change to it.
struct Key {
    key: &'static str,
    flag: &'static str,
    kind: Kind,
    reloads: bool,
}

const fn key(key: &'static str, flag: &'static str, kind: Kind, reloads: bool) -> Key {
    Key {
        key,
        flag,
        kind,
        reloads,
    }
}

/// The keys berthd takes, named as dockerd names them.
const KEYS: &[Key] = &[
    key("data-root", "data-root", Kind::Str, false),
    key("exec-root", "exec-root", Kind::Str, false),
    key("hosts", "host", Kind::List, false),
    key("debug", "debug", Kind::Switch, true),
    key("log-level", "log-level", Kind::Str, true),
    key("log-format", "log-format", Kind::Str, false),
    key("pidfile", "pidfile", Kind::Str, false),
    key("group", "group", Kind::Str, false),
    key("labels", "label", Kind::List, true),
    key("log-driver", "log-driver", Kind::Str, false),
    key("log-opts", "log-opt", Kind::Map, false),
    key("default-address-pools", "default-address-pool", Kind::Pools, false),
    key("bridge", "bridge", Kind::Str, false),
    key("bip", "bip", Kind::Str, false),
    key("fixed-cidr", "fixed-cidr", Kind::Str, false),
    key("iptables", "iptables", Kind::Bool, false),
    key("dns", "dns", Kind::List, false),
    key("dns-search", "dns-search", Kind::List, false),
    key("dns-opts", "dns-opt", Kind::List, false),
    key("mtu", "mtu", Kind::Num, false),
    key("insecure-registries", "insecure-registry", Kind::List, true),
    key("registry-mirrors", "registry-mirror", Kind::List, true),
    key("userns-remap", "userns-remap", Kind::Str, false),
    key("live-restore", "live-restore", Kind::Bool, true),
    key("default-ulimits", "default-ulimit", Kind::Ulimits, true),
    key("runtimes", "add-runtime", Kind::Runtimes, false),
    key("features", "feature", Kind::Features, true),
    key("init-path", "init-path", Kind::Str, false),
    key("tls", "tls", Kind::Switch, false),
    key("tlsverify", "tlsverify", Kind::Switch, false),
    key("tlscacert", "tlscacert", Kind::Str, false),
    key("tlscert", "tlscert", Kind::Str, false),
    key("tlskey", "tlskey", Kind::Str, false),
    key("metrics-addr", "metrics-addr", Kind::Str, false),
];

/// Reads the configuration file: `None` when the default file does not exist; a file named with
/// `--config-file` must exist. Anything but a JSON object of known keys is an error naming the file.
pub fn load(path: &Path, explicit: bool) -> Result<Option<Map<String, Value>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading the configuration file {}", path.display())),
    };
    parse(&text)
        .with_context(|| format!("unable to configure the daemon with file {}", path.display()))
        .map(Some)
}

/// Parses the file's text into its keys, refusing unknown ones (all named at once).
fn parse(text: &str) -> Result<Map<String, Value>> {
    let v: Value = serde_json::from_str(text).context("invalid JSON")?;
    let Value::Object(map) = v else {
        bail!("the configuration must be a JSON object");
    };
    let unknown: Vec<&str> = map
        .keys()
        .filter(|k| !KEYS.iter().any(|key| key.key == k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the following directives don't match any configuration option: {} (remove them; `berthd --help` \
             lists the settings, each with its dockerd key)",
            unknown.join(", ")
        );
    }
    for (k, v) in &map {
        if let Some(key) = KEYS.iter().find(|key| key.key == k.as_str()) {
            to_args(key, v)?;
        }
    }
    Ok(map)
}

fn type_err(key: &str, what: &str) -> anyhow::Error {
    anyhow::anyhow!("{key:?} must be {what}")
}

/// The command-line arguments a key's value stands for.
fn to_args(key: &Key, v: &Value) -> Result<Vec<String>> {
    let flag = format!("--{}", key.flag);
    let k = key.key;
    let str_of = |v: &Value, what: &str| v.as_str().map(str::to_string).ok_or_else(|| type_err(k, what));
    let mut out = Vec::new();
    let mut push = |value: String| {
        out.push(flag.clone());
        out.push(value);
    };
    match key.kind {
        Kind::Str => push(str_of(v, "a string")?),
        Kind::List => {
            let items = v.as_array().ok_or_else(|| type_err(k, "an array of strings"))?;
            for item in items {
                push(str_of(item, "an array of strings")?);
            }
        }
        Kind::Bool => push(v.as_bool().ok_or_else(|| type_err(k, "true or false"))?.to_string()),
        Kind::Switch => {
            if v.as_bool().ok_or_else(|| type_err(k, "true or false"))? {
                out.push(flag.clone());
            }
        }
        Kind::Num => push(
            v.as_u64()
                .ok_or_else(|| type_err(k, "a non-negative integer"))?
                .to_string(),
        ),
        Kind::Map => {
            let m = v.as_object().ok_or_else(|| type_err(k, "an object of strings"))?;
            for (name, value) in m {
                push(format!("{name}={}", str_of(value, "an object of strings")?));
            }
        }
        Kind::Pools => {
            let what = "an array of {\"base\": CIDR, \"size\": N}";
            for pool in v.as_array().ok_or_else(|| type_err(k, what))? {
                let base = pool
                    .get("base")
                    .and_then(Value::as_str)
                    .ok_or_else(|| type_err(k, what))?;
                let size = pool
                    .get("size")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| type_err(k, what))?;
                push(format!("base={base},size={size}"));
            }
        }
        Kind::Runtimes => {
            let what = "an object of {\"path\": PATH}";
            for (name, rt) in v.as_object().ok_or_else(|| type_err(k, what))? {
                let path = rt
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| type_err(k, what))?;
                if rt
                    .get("runtimeArgs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                {
                    bail!("\"runtimes\": {name:?} has runtimeArgs, which berthd does not pass on; wrap the runtime in a script instead");
                }
                push(format!("{name}={path}"));
            }
        }
        Kind::Ulimits => {
            let what = "an object of {\"Name\": NAME, \"Soft\": N, \"Hard\": N}";
            for (name, u) in v.as_object().ok_or_else(|| type_err(k, what))? {
                let num = |f: &str| u.get(f).and_then(Value::as_i64).ok_or_else(|| type_err(k, what));
                let (soft, hard) = (num("Soft")?, num("Hard")?);
                if let Some(n) = u.get("Name").and_then(Value::as_str) {
                    if n != name {
                        bail!("\"default-ulimits\": the entry {name:?} is named {n:?}");
                    }
                }
                push(format!("{name}={soft}:{hard}"));
            }
        }
        Kind::Features => {
            for (name, on) in v.as_object().ok_or_else(|| type_err(k, "an object of booleans"))? {
                let on = on.as_bool().ok_or_else(|| type_err(k, "an object of booleans"))?;
                push(format!("{name}={on}"));
            }
        }
    }
    Ok(out)
}

/// What the command line and the file make together.
pub struct Merged {
    /// The settings in effect.
    pub args: Args,
    /// The configuration file used, if any.
    pub file: Option<PathBuf>,
    /// Keys of the file that a flag overrode.
    pub overridden: Vec<&'static str>,
    /// Each key's effective value, as its flag's raw values (for telling what a reload changed).
    values: Vec<Vec<OsString>>,
}

/// The raw values of each key's flag in `matches`, in the order of [`KEYS`].
fn key_values(matches: &clap::ArgMatches) -> Vec<Vec<OsString>> {
    let cmd = Args::command();
    KEYS.iter()
        .map(|key| {
            cmd.get_arguments()
                .find(|a| a.get_long() == Some(key.flag))
                .and_then(|a| matches.get_raw(a.get_id().as_str()))
                .map(|v| v.map(OsString::from).collect())
                .unwrap_or_default()
        })
        .collect()
}

/// Parses `cmdline` (argv, program name first), reads the configuration file it names (or the
/// default one), and applies the file's keys whose flags the command line did not give.
pub fn merge(cmdline: &[OsString]) -> Result<Merged> {
    let cmd = Args::command();
    let matches = cmd.clone().get_matches_from(cmdline);
    let plain = Args::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!("{e}"))?;
    let explicit = plain.config_file.is_some();
    let path = plain
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let Some(file) = load(&path, explicit)? else {
        return Ok(Merged {
            args: plain,
            file: None,
            overridden: Vec::new(),
            values: key_values(&matches),
        });
    };
    let mut extra: Vec<OsString> = Vec::new();
    let mut overridden = Vec::new();
    for key in KEYS {
        let Some(v) = file.get(key.key) else { continue };
        let given = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.flag))
            .is_some_and(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine));
        if given {
            overridden.push(key.key);
            continue;
        }
        extra.extend(to_args(key, v)?.into_iter().map(OsString::from));
    }
    let mut argv: Vec<OsString> = cmdline.iter().take(1).cloned().collect();
    argv.extend(extra);
    argv.extend(cmdline.iter().skip(1).cloned());
    let refused = |e: clap::Error| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        anyhow::anyhow!("unable to configure the daemon with file {}: {first}", path.display())
    };
    let matches = cmd.try_get_matches_from(&argv).map_err(refused)?;
    let args = Args::from_arg_matches(&matches).map_err(refused)?;
    Ok(Merged {
        args,
        file: Some(path),
        overridden,
        values: key_values(&matches),
    })
}

/// The keys whose effective value differs between two configurations and that a reload cannot
/// apply (they need a restart).
pub fn changed_needing_restart(old: &Merged, new: &Merged) -> Vec<&'static str> {
    KEYS.iter()
        .zip(old.values.iter().zip(&new.values))
        .filter(|(k, (a, b))| !k.reloads && a != b)
        .map(|(k, _)| k.key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(json: &str) -> Result<Vec<String>> {
        let map = parse(json)?;
        let mut out = Vec::new();
        for (k, v) in &map {
            let key = KEYS.iter().find(|key| key.key == k.as_str()).unwrap();
            out.extend(to_args(key, v)?);
        }
        Ok(out)
    }

    #[test]
    fn keys_become_flags() {
        let a = args_of(
            r#"{"labels":["a=1"],"log-opts":{"max-size":"1m"},"debug":true,"tls":false,
                "default-address-pools":[{"base":"10.9.0.0/16","size":24}],
                "default-ulimits":{"nofile":{"Name":"nofile","Soft":100,"Hard":200}},
                "runtimes":{"r":{"path":"/bin/r"}},"mtu":1400,"iptables":false}"#,
        )
        .unwrap();
        let joined = a.join(" ");
        for want in [
            "--label a=1",
            "--log-opt max-size=1m",
            "--debug",
            "--default-address-pool base=10.9.0.0/16,size=24",
            "--default-ulimit nofile=100:200",
            "--add-runtime r=/bin/r",
            "--mtu 1400",
            "--iptables false",
        ] {
            assert!(joined.contains(want), "{want} in {joined}");
        }
        assert!(!joined.contains("--tls"), "{joined}");
    }

    #[test]
    fn unknown_keys_and_bad_types_are_named() {
        let e = args_of(r#"{"storage-driver":"vfs","bogus":1,"labels":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage-driver") && e.contains("bogus"), "{e}");
        assert!(e.contains("don't match any configuration option"), "{e}");
        let e = args_of(r#"{"mtu":"big"}"#).unwrap_err().to_string();
        assert!(e.contains("\"mtu\" must be a non-negative integer"), "{e}");
        let e = args_of(r#"{"labels":"a=1"}"#).unwrap_err().to_string();
        assert!(e.contains("\"labels\" must be an array of strings"), "{e}");
        assert!(args_of("[1]").unwrap_err().to_string().contains("JSON object"));
        assert!(args_of("{").unwrap_err().to_string().contains("invalid JSON"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(
            &file,
            r#"{"log-level":"debug","labels":["from=file"],"data-root":"/tmp/file-root"}"#,
        )
        .unwrap();
        let argv: Vec<OsString> = [
            "berthd",
            "--config-file",
            file.to_str().unwrap(),
            "--data-root",
            "/tmp/flag-root",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let m = merge(&argv).unwrap();
        assert_eq!(m.args.data_root, PathBuf::from("/tmp/flag-root"));
        assert_eq!(m.args.log_level, "debug");
        assert_eq!(m.args.label, vec!["from=file".to_string()]);
        assert_eq!(m.overridden, vec!["data-root"]);
        std::fs::write(&file, r#"{"log-format":"yaml"}"#).unwrap();
        let e = merge(&argv).err().unwrap().to_string();
        assert!(e.contains("daemon.json") && e.contains("yaml"), "{e}");
    }

    #[test]
    fn a_reload_tells_what_needs_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        let argv: Vec<OsString> = ["berthd", "--config-file", file.to_str().unwrap(), "--mtu", "1500"]
            .iter()
            .map(OsString::from)
            .collect();
        std::fs::write(&file, r#"{"labels":["a=1"],"bip":"10.1.0.1/24","tls":false}"#).unwrap();
        let old = merge(&argv).unwrap();
        std::fs::write(&file, r#"{"labels":["a=2"],"bip":"10.2.0.1/24","tls":true,"mtu":9000}"#).unwrap();
        let new = merge(&argv).unwrap();
        // labels reload; bip and tls need a restart; mtu is the command line's in both.
        assert_eq!(changed_needing_restart(&old, &new), vec!["bip", "tls"]);
        assert!(changed_needing_restart(&new, &new).is_empty());
    }

    #[test]
    fn a_named_file_must_exist() {
        let argv: Vec<OsString> = ["berthd", "--config-file", "/nonexistent/daemon.json"]
            .iter()
            .map(OsString::from)
            .collect();
        let e = merge(&argv).err().unwrap();
        assert!(format!("{e:#}").contains("/nonexistent/daemon.json"), "{e:#}");
    }
}
