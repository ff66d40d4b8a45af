//! Authentication and authorization: htpasswd (bcrypt) basic auth, and bearer tokens this server
//! issues itself at `/token` (Docker's token protocol, with an HMAC-signed token instead of a JWT).
//!
//! Token format: `base64url(claims JSON) "." base64url(HMAC-SHA256(key, base64url(claims JSON)))`,
//! claims `{"sub","aud","iat","exp","access":[{"type","name","actions"}]}`. Only this server reads
//! its tokens, so they need not be JWTs.
//!
//! Policy: with an htpasswd file, every token request must carry valid credentials (an
//! authenticated user may pull, push and delete any repository, and list the catalog); without
//! one, tokens are issued anonymously and grant pull (and catalog) only.

use crate::error::RegistryError;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

/// Users and their bcrypt hashes from an Apache htpasswd file.
#[derive(Debug, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// `sha256(user \0 password)` of credentials that verified, so bcrypt (deliberately slow) runs
    /// once per user and password, not once per request.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    /// Parses htpasswd text: `user:hash` lines, `#` comments and blank lines ignored. Only bcrypt
    /// hashes (`$2y$`, `$2b$`, `$2a$`) are accepted, as in Docker's registry.
    pub fn parse(text: &str, path: &Path) -> Result<Htpasswd, RegistryError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| RegistryError::Htpasswd {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.into(),
            };
            let (user, hash) = line.split_once(':').ok_or_else(|| err("expected user:hash"))?;
            if user.is_empty() {
                return Err(err("empty user name"));
            }
            if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
                return Err(err("only bcrypt hashes are supported (htpasswd -B)"));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Reads and parses an htpasswd file.
    pub fn load(path: &Path) -> Result<Htpasswd, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(RegistryError::io("read", path))?;
        Htpasswd::parse(&text, path)
    }

    /// Whether `user`/`password` are valid. Blocking (bcrypt): call off the executor.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let mut h = Sha256::new();
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        if let Ok(v) = self.verified.lock() {
            if v.contains(&key) {
                return true;
            }
        }
        let ok = match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                // Check against some user's hash anyway, so an unknown user costs as much as a
                // wrong password.
                if let Some(any) = self.users.values().next() {
                    let _ = bcrypt::verify(password, any);
                }
                false
            }
        };
        if ok {
            if let Ok(mut v) = self.verified.lock() {
                v.insert(key);
            }
        }
        ok
    }
}

/// Decodes an `Authorization: Basic ...` value into user and password.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let b64 = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// One grant in a token: a resource and the actions allowed on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Repository name, or `catalog`.
    pub name: String,
    /// `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

impl Access {
    /// Parses a scope `type:name:action[,action]`. The name may contain `:` (a host with port).
    pub fn parse_scope(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Access {
            kind: kind.into(),
            name: name.into(),
            actions: actions.split(',').filter(|a| !a.is_empty()).map(String::from).collect(),
        })
    }
}

/// The claims a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user (empty for anonymous).
    pub sub: String,
    /// The service the token is for.
    pub aud: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
    /// What the bearer may do.
    pub access: Vec<Access>,
}

impl Claims {
    /// Whether the token allows `action` on resource `kind`/`name` (`*` allows everything).
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access
            .iter()
            .any(|a| a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*"))
    }
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let ih = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(ih);
    outer.finalize().into()
}

/// Signs claims into a token.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    // Serializing plain strings and integers cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mac = URL_SAFE_NO_PAD.encode(hmac_sha256(key, payload.as_bytes()));
    format!("{payload}.{mac}")
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `payload.mac`, or not decodable.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match.
    #[error("invalid token signature")]
    BadSignature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Issued for another service.
    #[error("token issued for another service")]
    WrongAudience,
}

/// Checks a token's signature, expiry and audience and returns its claims.
pub fn verify(key: &[u8], token: &str, service: &str, now: i64) -> Result<Claims, TokenError> {
    let (payload, mac) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let got = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TokenError::Malformed)?;
    let want = hmac_sha256(key, payload.as_bytes());
    // Constant-time comparison.
    if got.len() != want.len() || got.iter().zip(want.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
        return Err(TokenError::BadSignature);
    }
    let raw = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if claims.aud != service {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

/// What the token endpoint grants for requested scopes: authenticated users get every known action
/// they ask for; anonymous callers get pull (and the catalog) only. Unknown types are dropped.
pub fn grant(requested: &[Access], authenticated: bool) -> Vec<Access> {
    requested
        .iter()
        .filter_map(|r| {
            let allowed: &[&str] = match (r.kind.as_str(), authenticated) {
                ("repository", true) => &["pull", "push", "delete", "*"],
                ("repository", false) => &["pull"],
                ("registry", _) if r.name == "catalog" => &["*"],
                _ => return None,
            };
            let actions: Vec<String> = r
                .actions
                .iter()
                .filter(|a| allowed.contains(&a.as_str()))
                .cloned()
                .collect();
            (!actions.is_empty()).then(|| Access {
                kind: r.kind.clone(),
                name: r.name.clone(),
                actions,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block size is hashed first.
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn tokens_sign_and_verify() {
        let claims = Claims {
            sub: "alice".into(),
            aud: "reg".into(),
            iat: 100,
            exp: 200,
            access: vec![Access::parse_scope("repository:a/b:pull,push").unwrap()],
        };
        let t = sign(b"k", &claims);
        assert_eq!(verify(b"k", &t, "reg", 150), Ok(claims.clone()));
        assert!(claims.allows("repository", "a/b", "push"));
        assert!(!claims.allows("repository", "a/b", "delete"));
        assert!(!claims.allows("repository", "a/c", "pull"));
        assert_eq!(verify(b"other", &t, "reg", 150), Err(TokenError::BadSignature));
        assert_eq!(verify(b"k", &t, "reg", 200), Err(TokenError::Expired));
        assert_eq!(verify(b"k", &t, "other", 150), Err(TokenError::WrongAudience));
        assert_eq!(verify(b"k", "garbage", "reg", 150), Err(TokenError::Malformed));
        // A tampered payload with the old MAC.
        let (_, mac) = t.split_once('.').unwrap();
        let mut forged = claims.clone();
        forged.access[0].actions.push("delete".into());
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            verify(b"k", &format!("{forged_payload}.{mac}"), "reg", 150),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn scopes() {
        let a = Access::parse_scope("repository:localhost:5000/x:pull").unwrap();
        assert_eq!(a.name, "localhost:5000/x");
        assert_eq!(a.actions, vec!["pull"]);
        assert!(Access::parse_scope("repository").is_none());
        let req = vec![
            Access::parse_scope("repository:a:pull,push,delete,bogus").unwrap(),
            Access::parse_scope("registry:catalog:*").unwrap(),
            Access::parse_scope("weird:x:y").unwrap(),
        ];
        let g = grant(&req, true);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].actions, vec!["pull", "push", "delete"]);
        let g = grant(&req, false);
        assert_eq!(g[0].actions, vec!["pull"]);
    }

    #[test]
    fn htpasswd_parse_and_verify() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let y = hash.replacen("$2b$", "$2y$", 1);
        let text = format!("# comment\n\nalice:{y}\nbob:{hash}\n");
        let h = Htpasswd::parse(&text, Path::new("x")).unwrap();
        assert!(h.verify("alice", "s3cret"));
        assert!(h.verify("alice", "s3cret"), "cached");
        assert!(h.verify("bob", "s3cret"));
        assert!(!h.verify("alice", "wrong"));
        assert!(!h.verify("carol", "s3cret"));
        for bad in ["nocolon", "md5:$apr1$abc", ":$2y$05$x"] {
            assert!(Htpasswd::parse(bad, Path::new("x")).is_err(), "{bad}");
        }
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("u:p:q"))),
            Some(("u".into(), "p:q".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
    }
}
