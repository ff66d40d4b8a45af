//! Credentials as Docker passes them (`X-Registry-Auth`, config.json) and the registry's
//! `WWW-Authenticate` challenges (RFC 7235; distribution's token authentication spec).

use crate::error::{DistributionError, Result};
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
    pub fn from_header(x_registry_auth: &str) -> Result<AuthConfig> {
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
            .ok_or_else(|| DistributionError::InvalidArgument("invalid X-Registry-Auth header: not base64".into()))?;
        if bytes.trim_ascii() == b"null" {
            return Ok(AuthConfig::default());
        }
        let mut a: AuthConfig = serde_json::from_slice(&bytes)
            .map_err(|e| DistributionError::InvalidArgument(format!("invalid X-Registry-Auth header: {e}")))?;
        a.fill_from_auth()?;
        Ok(a)
    }

    /// Encodes as the `X-Registry-Auth` header (base64url of the JSON, padded as Docker's CLI does).
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// When only `auth` (base64 `user:pass`) is set, fills `username` and `password` from it.
    pub fn fill_from_auth(&mut self) -> Result<()> {
        if self.auth.is_empty() || !self.username.is_empty() {
            return Ok(());
        }
        let (u, p) = decode_basic(&self.auth).ok_or_else(|| {
            DistributionError::InvalidArgument("invalid auth: expected base64 of user:password".into())
        })?;
        self.username = u;
        self.password = p;
        Ok(())
    }

    /// Whether the config carries nothing usable (anonymous access).
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.identitytoken.is_empty() && self.registrytoken.is_empty()
    }

    /// The `Authorization: Basic` value, when a user name is set.
    pub(crate) fn basic(&self) -> Option<String> {
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

/// Decodes base64 `user:password`.
pub(crate) fn decode_basic(auth: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim().trim_end_matches('=')))
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Encodes `user:password` as config.json's `auth`.
pub(crate) fn encode_basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`: send the user name and password with every request.
    Basic,
    /// `Bearer realm=..,service=..,scope=..`: get a token from `realm`.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The service name to ask the token for.
        service: Option<String>,
        /// The scope the registry asked for (on a 401 of a resource).
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value; returns the first Basic or Bearer challenge.
/// Parameter values may be quoted strings with commas and `\"` escapes.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let s = header.trim();
    let (scheme, rest) = match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    };
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let name = s[start..i].trim().to_string();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut chars = s[i..].char_indices();
            let mut end = s.len() - i;
            while let Some((j, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = j + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            i += end;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value = s[vs..i].trim().to_string();
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

/// Percent-encodes a query or form value (RFC 3986 unreserved characters kept).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A token server's answer (distribution token spec: `token` or OAuth2's `access_token`).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    pub(crate) fn bearer(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
            .map(|s| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let cases: &[(&str, Option<Challenge>)] = &[
            (r#"Basic realm="Registry Realm""#, Some(Challenge::Basic)),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
                Some(Challenge::Bearer {
                    realm: "https://auth.docker.io/token".into(),
                    service: Some("registry.docker.io".into()),
                    scope: Some("repository:library/busybox:pull,push".into()),
                }),
            ),
            (
                r#"bearer  realm=http://127.0.0.1:1/t , service="a \"q\" b", error="insufficient_scope""#,
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: Some(r#"a "q" b"#.into()),
                    scope: None,
                }),
            ),
            (r#"Bearer service="x""#, None),
            ("Negotiate", None),
            ("", None),
        ];
        for (h, want) in cases {
            assert_eq!(&parse_challenge(h), want, "{h}");
        }
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

    #[test]
    fn encodes_queries() {
        assert_eq!(
            url_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
