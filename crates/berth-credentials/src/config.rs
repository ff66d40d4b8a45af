//! Docker's client credentials file, `~/.docker/config.json` (the caller resolves
//! `DOCKER_CONFIG`): `auths` entries (base64 `user:password` in `auth`, or `identitytoken`),
//! `credHelpers` per registry and `credsStore` for all, through the `docker-credential-<name>`
//! protocol (`get`/`store`/`erase`, the server URL or a JSON record on stdin, JSON on stdout).
//!
//! Docker Hub's key is `https://index.docker.io/v1/`; other registries are keyed by `host[:port]`.
//! Writes go to a temp file (mode 0600) renamed over the file, and keep every other key of the
//! file: values are kept as they were, though keys are written in sorted order.
//!
//! Helpers are run synchronously: call these from `spawn_blocking` in async code (the CLI, which
//! runs one command at a time, may call them directly).

use crate::auth::{decode_basic, encode_basic, AuthConfig};
use crate::{registry_domain, DOCKER_HUB_DOMAIN};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Docker Hub's key in config.json.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The user name a credential helper returns for an identity token.
const TOKEN_USER: &str = "<token>";

/// Why the credentials file or a helper failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Reading or writing the file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// `reading`, `writing`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON, or an entry is malformed.
    #[error("{path}: invalid docker config: {reason}; fix or remove the file")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Credentials (an `X-Registry-Auth` header, an `auth` value) are malformed.
    #[error("{0}")]
    InvalidAuth(String),
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} {action}: {reason}")]
    Helper {
        /// The helper's name.
        helper: String,
        /// `get`, `store`, `erase`.
        action: &'static str,
        /// Its message, or why it could not run.
        reason: String,
    },
}

impl berth_types::HasErrorKind for CredentialsError {
    fn kind(&self) -> berth_types::ErrorKind {
        match self {
            CredentialsError::Invalid { .. } | CredentialsError::InvalidAuth(_) => {
                berth_types::ErrorKind::InvalidArgument
            }
            _ => berth_types::ErrorKind::Internal,
        }
    }
}

/// The config.json key of a registry: Docker Hub's URL, or `host[:port]`.
pub fn config_key(registry: &str) -> String {
    match registry_domain(registry).as_str() {
        DOCKER_HUB_DOMAIN => DOCKER_HUB_KEY.into(),
        d => d.into(),
    }
}

/// The CLI's config.json: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (the docker
/// CLI's lookup; its `--config` flag is the caller's to apply). `None` without `HOME`.
pub fn default_config_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

/// A loaded config.json.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    raw: Map<String, Value>,
    helper_dir: Option<PathBuf>,
}

/// Loads `path`; a missing file is an empty config.
pub fn load(path: &Path) -> Result<DockerConfig, CredentialsError> {
    let raw = match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(CredentialsError::Invalid {
                    path: path.into(),
                    reason: "not a JSON object".into(),
                })
            }
            Err(e) => {
                return Err(CredentialsError::Invalid {
                    path: path.into(),
                    reason: e.to_string(),
                })
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(source) => {
            return Err(CredentialsError::Io {
                op: "reading",
                path: path.into(),
                source,
            })
        }
    };
    Ok(DockerConfig {
        path: path.into(),
        raw,
        helper_dir: None,
    })
}

impl DockerConfig {
    /// Runs helpers from `dir` instead of `$PATH` (tests, packaged helpers).
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// The file this config was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw JSON object, every key kept.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// `currentContext`: the docker context `docker context use` chose, if any.
    pub fn current_context(&self) -> Option<&str> {
        self.raw
            .get("currentContext")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Sets `currentContext` (empty removes the key, as docker's `omitempty` does) and writes the
    /// file, only when the value changes (so `context use default` creates no file); returns
    /// whether it wrote.
    pub fn set_current_context(&mut self, name: &str) -> Result<bool, CredentialsError> {
        if self.current_context().unwrap_or("") == name {
            return Ok(false);
        }
        if name.is_empty() {
            self.raw.remove("currentContext");
        } else {
            self.raw.insert("currentContext".into(), Value::String(name.into()));
        }
        self.save()?;
        Ok(true)
    }

    /// Credentials for `registry`, or `None`; a failing helper counts as none (use
    /// [`DockerConfig::try_get`] to see, or log, its error).
    pub fn get(&self, registry: &str) -> Option<AuthConfig> {
        self.try_get(registry).ok().flatten()
    }

    /// Credentials for `registry`: its credential helper, else `credsStore`, else `auths`.
    pub fn try_get(&self, registry: &str) -> Result<Option<AuthConfig>, CredentialsError> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(&key) {
            return self.helper_get(&helper, &key);
        }
        let Some(Value::Object(auths)) = self.raw.get("auths") else {
            return Ok(None);
        };
        let entry = auths
            .get(&key)
            .or_else(|| auths.iter().find(|(k, _)| config_key(k) == key).map(|(_, v)| v));
        let Some(Value::Object(e)) = entry else {
            return Ok(None);
        };
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut a = AuthConfig {
            auth: s("auth"),
            email: s("email"),
            identitytoken: s("identitytoken"),
            registrytoken: s("registrytoken"),
            serveraddress: key.clone(),
            ..Default::default()
        };
        if !a.auth.is_empty() {
            let (u, p) = decode_basic(&a.auth).ok_or_else(|| CredentialsError::Invalid {
                path: self.path.clone(),
                reason: format!("auths[{key:?}].auth is not base64 of user:password"),
            })?;
            a.username = u;
            a.password = p;
        }
        if a.auth.is_empty() && a.identitytoken.is_empty() && a.registrytoken.is_empty() {
            return Ok(None);
        }
        Ok(Some(a))
    }

    /// Every registry's credentials, keyed as config.json keys them: what `docker build` sends in
    /// `X-Registry-Config` (the `auths` entries, the `credHelpers` registries and what `credsStore`
    /// lists). A registry whose helper fails is left out.
    pub fn all(&self) -> std::collections::BTreeMap<String, AuthConfig> {
        let mut keys: Vec<String> = Vec::new();
        for section in ["auths", "credHelpers"] {
            if let Some(Value::Object(m)) = self.raw.get(section) {
                keys.extend(m.keys().map(|k| config_key(k)));
            }
        }
        if let Some(Value::String(store)) = self.raw.get("credsStore").filter(|s| s.as_str() != Some("")) {
            // `list`: a JSON object of server URL → user name.
            if let Ok(out) = self.run_helper(store, "list", "") {
                if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&out) {
                    keys.extend(m.keys().map(|k| config_key(k)));
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys.into_iter().filter_map(|k| self.get(&k).map(|a| (k, a))).collect()
    }

    /// Saves credentials (after a successful login) and writes the file. With a helper, the
    /// secret goes to the helper and the file is left as it was.
    pub fn store(&mut self, registry: &str, auth: &AuthConfig) -> Result<(), CredentialsError> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(&key) {
            let (user, secret) = if auth.identitytoken.is_empty() {
                (auth.username.as_str(), auth.password.as_str())
            } else {
                (TOKEN_USER, auth.identitytoken.as_str())
            };
            let input = serde_json::json!({ "ServerURL": key, "Username": user, "Secret": secret }).to_string();
            self.run_helper(&helper, "store", &input)?;
            return Ok(());
        }
        let mut entry = Map::new();
        if auth.identitytoken.is_empty() {
            entry.insert(
                "auth".into(),
                Value::String(encode_basic(&auth.username, &auth.password)),
            );
        } else {
            // Docker keeps the user name in `auth` with an empty password next to the token.
            if !auth.username.is_empty() {
                entry.insert("auth".into(), Value::String(encode_basic(&auth.username, "")));
            }
            entry.insert("identitytoken".into(), Value::String(auth.identitytoken.clone()));
        }
        let auths = self.raw.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(m) = auths {
            m.insert(key, Value::Object(entry));
        }
        self.save()
    }

    /// Removes credentials (`docker logout`) and writes the file.
    pub fn erase(&mut self, registry: &str) -> Result<(), CredentialsError> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(&key) {
            match self.run_helper(&helper, "erase", &key) {
                Ok(_) => {}
                Err(CredentialsError::Helper { reason, .. }) if is_not_found(&reason) => {}
                Err(e) => return Err(e),
            }
        }
        let mut changed = false;
        if let Some(Value::Object(m)) = self.raw.get_mut("auths") {
            let keys: Vec<String> = m.keys().filter(|k| config_key(k) == key).cloned().collect();
            for k in keys {
                m.remove(&k);
                changed = true;
            }
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self) -> Result<(), CredentialsError> {
        let io = |op, source| CredentialsError::Io {
            op,
            path: self.path.clone(),
            source,
        };
        let mut data =
            serde_json::to_vec_pretty(&Value::Object(self.raw.clone())).map_err(|e| CredentialsError::Invalid {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        data.push(b'\n');
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| io("creating the directory of", e))?;
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let res = (|| -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            Ok(())
        })();
        res.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("writing", e)
        })
    }

    fn helper_for(&self, key: &str) -> Option<String> {
        if let Some(Value::Object(h)) = self.raw.get("credHelpers") {
            let found = h
                .get(key)
                .or_else(|| h.iter().find(|(k, _)| config_key(k) == key).map(|(_, v)| v));
            if let Some(Value::String(name)) = found {
                if !name.is_empty() {
                    return Some(name.clone());
                }
            }
        }
        match self.raw.get("credsStore") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    fn helper_get(&self, helper: &str, key: &str) -> Result<Option<AuthConfig>, CredentialsError> {
        let out = match self.run_helper(helper, "get", key) {
            Ok(o) => o,
            Err(CredentialsError::Helper { reason, .. }) if is_not_found(&reason) => return Ok(None),
            Err(e) => return Err(e),
        };
        #[derive(serde::Deserialize)]
        struct Creds {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let c: Creds = serde_json::from_slice(&out).map_err(|e| CredentialsError::Helper {
            helper: helper.into(),
            action: "get",
            reason: format!("invalid answer: {e}"),
        })?;
        let mut a = AuthConfig {
            serveraddress: key.into(),
            ..Default::default()
        };
        if c.username == TOKEN_USER {
            a.identitytoken = c.secret;
        } else {
            a.username = c.username;
            a.password = c.secret;
        }
        Ok(Some(a))
    }

    fn run_helper(&self, helper: &str, action: &'static str, input: &str) -> Result<Vec<u8>, CredentialsError> {
        let herr = |reason: String| CredentialsError::Helper {
            helper: helper.into(),
            action,
            reason,
        };
        if !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(herr("invalid helper name".into()));
        }
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| herr(format!("running {}: {e}", program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| herr(format!("writing to it: {e}")))?;
        }
        let out = child.wait_with_output().map_err(|e| herr(e.to_string()))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(if out.stdout.is_empty() {
                &out.stderr
            } else {
                &out.stdout
            })
            .trim()
            .to_string();
            return Err(herr(msg));
        }
        Ok(out.stdout)
    }
}

fn is_not_found(msg: &str) -> bool {
    msg.contains("credentials not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("https://index.docker.io/v1/"), DOCKER_HUB_KEY);
        assert_eq!(config_key("localhost:5000"), "localhost:5000");
        assert_eq!(config_key("https://reg.example:443/v2/"), "reg.example:443");
    }

    #[test]
    fn round_trip_keeps_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let original = r#"{
  "auths": {
    "https://index.docker.io/v1/": {"auth": "dTpw"},
    "other:1": {"auth": "YTpi", "x-extra": [1, 2]}
  },
  "psFormat": "table {{.ID}}",
  "currentContext": "remote",
  "proxies": {"default": {"httpProxy": "http://p:3128"}},
  "plugins": {"x": {"y": true}}
}"#;
        std::fs::write(&path, original).unwrap();
        let mut c = load(&path).unwrap();
        let hub = c.get("docker.io").unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        assert!(c.get("nowhere:1").is_none());
        c.store(
            "localhost:5000",
            &AuthConfig {
                username: "bob".into(),
                password: "s:3".into(),
                ..Default::default()
            },
        )
        .unwrap();
        c.store(
            "tok.example",
            &AuthConfig {
                username: "t".into(),
                identitytoken: "refresh".into(),
                ..Default::default()
            },
        )
        .unwrap();
        c.erase("https://index.docker.io/v1/").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let before: Value = serde_json::from_str(original).unwrap();
        let after: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for k in ["psFormat", "proxies", "plugins", "currentContext"] {
            assert_eq!(before[k], after[k], "{k}");
        }
        assert_eq!(before["auths"]["other:1"], after["auths"]["other:1"]);
        assert!(after["auths"].get(DOCKER_HUB_KEY).is_none());
        let c = load(&path).unwrap();
        let l = c.get("localhost:5000").unwrap();
        assert_eq!((l.username.as_str(), l.password.as_str()), ("bob", "s:3"));
        assert_eq!(c.get("tok.example").unwrap().identitytoken, "refresh");
        assert!(load(&dir.path().join("missing.json")).unwrap().get("x").is_none());
        std::fs::write(&path, "[").unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn current_context_set_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut c = load(&path).unwrap();
        assert_eq!(c.current_context(), None);
        // Resetting what is not set writes nothing (no file appears).
        assert!(!c.set_current_context("").unwrap());
        assert!(!path.exists());
        std::fs::write(&path, r#"{"psFormat":"x","auths":{"h:1":{"auth":"YTpi"}}}"#).unwrap();
        let mut c = load(&path).unwrap();
        assert!(c.set_current_context("remote").unwrap());
        assert!(!c.set_current_context("remote").unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["currentContext"], "remote");
        assert_eq!(v["psFormat"], "x");
        assert_eq!(load(&path).unwrap().current_context(), Some("remote"));
        assert!(c.set_current_context("").unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(v.get("currentContext").is_none());
        assert_eq!(v["auths"]["h:1"]["auth"], "YTpi");
    }

    #[test]
    fn helpers() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        // A helper that keeps one file per server, as the protocol's reference helpers do.
        let script = format!(
            r#"#!/bin/sh
set -e
d={}
case "$1" in
  get) s=$(cat); f="$d/$(echo "$s" | tr '/:' '__')"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) j=$(cat); s=$(echo "$j" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); echo "$j" > "$d/$(echo "$s" | tr '/:' '__')" ;;
  erase) s=$(cat); rm -f "$d/$(echo "$s" | tr '/:' '__')" ;;
esac
"#,
            store.display()
        );
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(&helper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credsStore":"fake","credHelpers":{"h:1":"missing"}}"#).unwrap();
        let mut c = load(&path).unwrap().with_helper_dir(dir.path());
        assert!(c.try_get("docker.io").unwrap().is_none());
        c.store(
            "docker.io",
            &AuthConfig {
                username: "u".into(),
                password: "p".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let a = c.try_get("docker.io").unwrap().unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
        c.store(
            "r:2",
            &AuthConfig {
                identitytoken: "tok".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.try_get("r:2").unwrap().unwrap().identitytoken, "tok");
        c.erase("docker.io").unwrap();
        assert!(c.try_get("docker.io").unwrap().is_none());
        // A registry with its own (absent) helper fails loudly in try_get, quietly in get.
        assert!(c.try_get("h:1").is_err());
        assert!(c.get("h:1").is_none());
        // The file itself is untouched by helper stores.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"credsStore":"fake","credHelpers":{"h:1":"missing"}}"#
        );
    }
}
