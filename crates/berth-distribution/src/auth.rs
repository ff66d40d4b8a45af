//! Credentials as Docker passes them (`X-Registry-Auth`, config.json) and the registry's
//! `WWW-Authenticate` challenges (RFC 7235; distribution's token authentication spec).

pub use berth_credentials::auth::{decode_basic, encode_basic, AuthConfig};
use serde::Deserialize;

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

/// Percent-encodes a URL component (see [`berth_types::percent_encode`]).
pub(crate) fn url_encode(s: &str) -> String {
    berth_types::percent_encode(s)
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
    fn encodes_queries() {
        assert_eq!(
            url_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
