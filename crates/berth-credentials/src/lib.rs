//! Docker's client-side credentials, shared by the CLI (`berth login`, `pull`, `push`) and the
//! registry client (berth-distribution): [`AuthConfig`] as sent in `X-Registry-Auth`, and
//! `~/.docker/config.json` with its credential helpers ([`DockerConfig`]).
//!
//! A crate of its own, without HTTP or TLS, so that the CLI can use it and stay lean.

pub mod auth;
pub mod config;

pub use auth::{
    auth_among, decode_basic, encode_basic, from_registry_config_header, registry_config_header, AuthConfig,
};
pub use config::{config_key, default_config_path, load, CredentialsError, DockerConfig, DOCKER_HUB_KEY};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";

/// `server` as a registry domain: strips a scheme and path; Docker Hub's names become `docker.io`.
pub fn registry_domain(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_lowercase();
    match host.as_str() {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "docker.io" => {
            DOCKER_HUB_DOMAIN.into()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        for (s, want) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("docker.io", "docker.io"),
            ("localhost:5000", "localhost:5000"),
            ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
            ("Quay.IO", "quay.io"),
        ] {
            assert_eq!(registry_domain(s), want);
        }
    }
}
