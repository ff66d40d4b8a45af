//! Image references (`[domain/]path[:tag][@digest]`) normalised the way Docker does:
//! `busybox` means `docker.io/library/busybox:latest`, shown back as `busybox:latest`.

use crate::Digest;
use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not a valid image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// Docker's wording for a malformed reference.
    #[error("invalid reference format: {0:?}")]
    InvalidFormat(String),
    /// Repository names must be lower case.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// The digest part is malformed.
    #[error("invalid reference format: {0}")]
    BadDigest(#[from] crate::DigestError),
}

/// A normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises; a reference without tag or digest gets `latest`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Self::parse_name_only(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.into());
        }
        Ok(r)
    }

    /// Parses without adding the default tag (for `docker images busybox` style filters).
    pub fn parse_name_only(s: &str) -> Result<Reference, ReferenceError> {
        let bad = || ReferenceError::InvalidFormat(s.to_string());
        if s.is_empty() || s.len() > 255 + 128 + 72 {
            return Err(bad());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad());
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(bad());
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(name.to_string()));
        }
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(bad());
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry domain (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What a registry's `/manifests/<reference>` takes for this reference: the digest when there
    /// is one, else the tag (`latest` when there is none).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The repository as Docker shows it (`busybox`, `localhost:5000/app`).
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The fully qualified repository (`docker.io/library/busybox`).
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Returns a copy with the given tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidFormat(tag.to_string()));
        }
        Ok(Reference {
            tag: Some(tag.into()),
            digest: None,
            ..self.clone()
        })
    }

    /// Returns a copy with the given digest and no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `repo:tag` or `repo@digest` in the familiar form Docker prints (`busybox:latest`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

fn valid_tag(t: &str) -> bool {
    let mut c = t.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphanumeric() || f == '_')
        && t.len() <= 128
        && c.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
}

fn valid_path_component(p: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let b = p.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut sep = String::new();
    for &c in b {
        if c.is_ascii_alphanumeric() {
            if !(sep.is_empty() || sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                return false;
            }
            sep.clear();
        } else if matches!(c, b'.' | b'_' | b'-') {
            sep.push(c as char);
        } else {
            return false;
        }
    }
    true
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form, `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_reference_is_the_digest_else_the_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Reference::parse("busybox").unwrap().manifest_reference(), "latest");
        assert_eq!(Reference::parse("busybox:1.36").unwrap().manifest_reference(), "1.36");
        assert_eq!(
            Reference::parse(&format!("busybox:1.36@{d}"))
                .unwrap()
                .manifest_reference(),
            d
        );
    }

    #[test]
    fn normalisation_table() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("bb:1.36", "docker.io/library/bb:1.36", "bb:1.36"),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
            ),
            ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
            ("docker.io/library/alpine:3", "docker.io/library/alpine:3", "alpine:3"),
            (
                "reg.example.com/a/b/c",
                "reg.example.com/a/b/c:latest",
                "reg.example.com/a/b/c:latest",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
    }

    #[test]
    fn digests_and_errors() {
        let d = Digest::sha256(b"x");
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(&d));
        for bad in [
            "",
            "Busybox",
            "a:b:c",
            "a/:x",
            "bb:",
            "bb:-x",
            "a//b",
            "a b",
            "x@sha256:zz",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should fail");
        }
    }
}
