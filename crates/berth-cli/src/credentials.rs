//! The credentials the CLI sends to the daemon: `~/.docker/config.json` (or `$DOCKER_CONFIG`) and
//! its credential helpers, read and written through `berth-credentials` (shared with the registry
//! client, without its TLS stack).

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use berth_credentials::{AuthConfig, DockerConfig};

/// The directory given with the global `--config` flag, if any.
static CONFIG_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Uses `dir` (the global `--config` flag) instead of `$DOCKER_CONFIG` or `~/.docker`.
pub fn set_config_dir(dir: impl Into<PathBuf>) {
    let _ = CONFIG_DIR.set(dir.into());
}

/// The CLI's config.json path: `--config DIR/config.json`, else `$DOCKER_CONFIG/config.json`,
/// else `~/.docker/config.json`, as the docker CLI looks it up.
pub fn config_path() -> Result<PathBuf> {
    if let Some(d) = CONFIG_DIR.get() {
        return Ok(d.join("config.json"));
    }
    berth_credentials::default_config_path()
        .context("cannot find the client config: neither DOCKER_CONFIG nor HOME is set")
}

/// The client config directory (`--config`, `$DOCKER_CONFIG`, `~/.docker`): contexts and TLS
/// material live there too.
pub fn config_dir() -> Result<PathBuf> {
    let path = config_path()?;
    Ok(path.parent().map(PathBuf::from).unwrap_or_default())
}

/// Loads config.json (a missing file is an empty config).
pub fn load_config() -> Result<DockerConfig> {
    let path = config_path()?;
    Ok(berth_credentials::load(&path)?)
}

/// The credentials to send for `registry` (a domain or server address), as the docker CLI's
/// `ResolveAuthConfig` does: empty (`{}` on the wire) when none are stored. A broken config or
/// helper is reported on stderr and the request goes out anonymously.
pub fn auth_for(registry: &str) -> AuthConfig {
    let found = load_config().and_then(|c| Ok(c.try_get(registry)?));
    match found {
        Ok(Some(a)) => for_header(a),
        Ok(None) => AuthConfig::default(),
        Err(e) => {
            eprintln!("WARNING! Error loading credentials for {registry}: {e:#}");
            AuthConfig::default()
        }
    }
}

/// What goes in `X-Registry-Auth`: the user name and secret, not config.json's encoded `auth`.
pub fn for_header(mut a: AuthConfig) -> AuthConfig {
    a.auth.clear();
    a.email.clear();
    a
}

/// The registry of an image reference or search term: `localhost:5000/app` → `localhost:5000`,
/// `busybox` → `docker.io` (a first component with a `.` or `:`, or `localhost`, names a registry).
pub fn registry_of(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_string(),
        _ => berth_credentials::DOCKER_HUB_DOMAIN.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("quay.io/a/b"), "quay.io");
    }

    #[test]
    fn header_carries_user_and_secret_only() {
        let a = for_header(AuthConfig {
            username: "u".into(),
            password: "p".into(),
            auth: "dTpw".into(),
            email: "e@x".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        });
        assert_eq!((a.auth.as_str(), a.email.as_str()), ("", ""));
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
    }
}
