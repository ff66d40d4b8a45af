//! Docker's `AuthConfig`: the credentials JSON sent base64url-encoded in `X-Registry-Auth`, and
//! config.json's `auth` (base64 of `user:password`).

use crate::config::CredentialsError;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Docker's `AuthConfig` JSON, as sent base64url-encoded in `X-Registry-Auth`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password or personal access token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 of `username:password` (config.json's form).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Deprecated, kept for round trips.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// The registry the credentials are for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// A refresh token from a previous login, used instead of the password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// A bearer token sent as is to the registry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl std::fmt::Debug for AuthConfig {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .field("password", &(!self.password.is_empty()).then_some("<redacted>"))
            .field(
                "identitytoken",
                &(!self.identitytoken.is_empty()).then_some("<redacted>"),
            )
            .finish()
    }
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not) or standard base64 of the
    /// JSON. Docker's CLI sends `{}`-like values for anonymous pulls; those decode to an empty config.
    pub fn from_header(x_registry_auth: &str) -> Result<AuthConfig, CredentialsError> {
        let s = x_registry_auth.trim();
        if s.is_empty() {
            return Ok(AuthConfig::default());
        }
        let trimmed = s.trim_end_matches('=');
        let engines = [
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let bytes = engines
            .iter()
            .find_map(|e| e.decode(trimmed).ok())
            .ok_or_else(|| CredentialsError::InvalidAuth("invalid X-Registry-Auth header: not base64".into()))?;
        if bytes.trim_ascii() == b"null" {
            return Ok(AuthConfig::default());
        }
        let mut a: AuthConfig = serde_json::from_slice(&bytes)
            .map_err(|e| CredentialsError::InvalidAuth(format!("invalid X-Registry-Auth header: {e}")))?;
        a.fill_from_auth()?;
        Ok(a)
    }

    /// Encodes as the `X-Registry-Auth` header (base64url of the JSON, padded as Docker's CLI does).
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// When only `auth` (base64 `user:pass`) is set, fills `username` and `password` from it.
    pub fn fill_from_auth(&mut self) -> Result<(), CredentialsError> {
        if self.auth.is_empty() || !self.username.is_empty() {
            return Ok(());
        }
        let (u, p) = decode_basic(&self.auth)
            .ok_or_else(|| CredentialsError::InvalidAuth("invalid auth: expected base64 of user:password".into()))?;
        self.username = u;
        self.password = p;
        Ok(())
    }

    /// Whether the config carries nothing usable (anonymous access).
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.identitytoken.is_empty() && self.registrytoken.is_empty()
    }

    /// The `Authorization: Basic` value, when a user name is set.
    pub fn basic(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

/// Encodes credentials per registry as the `X-Registry-Config` header of `POST /build`
/// (base64url of a JSON object keyed by config.json's registry keys).
pub fn registry_config_header(auths: &std::collections::BTreeMap<String, AuthConfig>) -> String {
    let json = serde_json::to_vec(auths).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// Decodes an `X-Registry-Config` header (base64url or standard base64 of the JSON object); each
/// entry's `auth` is split into user name and password.
pub fn from_registry_config_header(
    header: &str,
) -> Result<std::collections::BTreeMap<String, AuthConfig>, CredentialsError> {
    let s = header.trim().trim_end_matches('=');
    if s.is_empty() {
        return Ok(Default::default());
    }
    let bytes = [
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ]
    .iter()
    .find_map(|e| e.decode(s).ok())
    .ok_or_else(|| CredentialsError::InvalidAuth("invalid X-Registry-Config header: not base64".into()))?;
    if bytes.trim_ascii() == b"null" {
        return Ok(Default::default());
    }
    let mut map: std::collections::BTreeMap<String, AuthConfig> = serde_json::from_slice(&bytes)
        .map_err(|e| CredentialsError::InvalidAuth(format!("invalid X-Registry-Config header: {e}")))?;
    for a in map.values_mut() {
        a.fill_from_auth()?;
    }
    Ok(map)
}

/// The credentials among `auths` (keyed as config.json keys registries) for `registry` (a
/// domain such as `docker.io` or `127.0.0.1:5000`); anonymous when none.
pub fn auth_among(auths: &std::collections::BTreeMap<String, AuthConfig>, registry: &str) -> AuthConfig {
    let key = crate::config_key(registry);
    auths
        .get(&key)
        .or_else(|| auths.iter().find(|(k, _)| crate::config_key(k) == key).map(|(_, v)| v))
        .cloned()
        .unwrap_or_default()
}

/// Decodes base64 `user:password`.
pub fn decode_basic(auth: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim().trim_end_matches('=')))
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Encodes `user:password` as config.json's `auth`.
pub fn encode_basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_config_round_trips_and_finds_a_registry() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "127.0.0.1:5000".to_string(),
            AuthConfig {
                auth: encode_basic("u", "p"),
                ..Default::default()
            },
        );
        m.insert(
            "https://index.docker.io/v1/".to_string(),
            AuthConfig {
                username: "hub".into(),
                password: "pw".into(),
                ..Default::default()
            },
        );
        let back = from_registry_config_header(&registry_config_header(&m)).unwrap();
        let local = auth_among(&back, "127.0.0.1:5000");
        assert_eq!((local.username.as_str(), local.password.as_str()), ("u", "p"));
        assert_eq!(auth_among(&back, "docker.io").username, "hub");
        assert!(auth_among(&back, "other:1").is_anonymous());
        assert!(from_registry_config_header("").unwrap().is_empty());
        assert!(from_registry_config_header("!!").is_err());
    }

    #[test]
    fn header_round_trip_and_encodings() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        };
        let h = a.to_header();
        assert_eq!(AuthConfig::from_header(&h).unwrap(), a);
        assert_eq!(AuthConfig::from_header(h.trim_end_matches('=')).unwrap(), a);
        let std = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&a).unwrap());
        assert_eq!(AuthConfig::from_header(&std).unwrap(), a);
        // `auth` alone fills user and password.
        let j = format!(r#"{{"auth":"{}"}}"#, encode_basic("bob", "pw:x"));
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
        let d = AuthConfig::from_header(&h).unwrap();
        assert_eq!((d.username.as_str(), d.password.as_str()), ("bob", "pw:x"));
        assert!(AuthConfig::from_header("").unwrap().is_anonymous());
        assert!(AuthConfig::from_header("!!!").is_err());
        assert!(!format!("{a:?}").contains("p?>"));
    }
}
