//! Validators for repository names, tags and upload ids, and the parser that turns a `/v2/...` path
//! into a [`Route`]. Names are checked against the distribution spec grammar before they ever touch
//! the filesystem, so `..`, `%2e`, empty components and absolute paths cannot escape the storage root.

use berth_types::Digest;

/// Longest repository name accepted (the spec's "implementers note": clients cap host + name at 255).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag accepted (spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const MAX_TAG_LEN: usize = 128;

/// Whether `name` matches the distribution spec grammar
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(is_valid_component)
}

/// One path component: alphanumerics joined by `.`, `_`, `__` or any run of `-`.
fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or `-+`, and it must be followed by an alphanumeric
        // (guaranteed for the last run because the component ends with one).
        let start = i;
        let sep = b[i];
        while i < b.len() && b[i] == sep {
            i += 1;
        }
        let run = i - start;
        let ok = match sep {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let first = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty() && b.len() <= MAX_TAG_LEN && first(b[0]) && b[1..].iter().all(|&x| first(x) || x == b'.' || x == b'-')
}

/// Whether `id` looks like an upload session id this server issued (a lower-case hyphenated UUID).
pub fn is_valid_upload_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// A new random upload session id (UUID version 4 layout).
pub fn new_upload_id() -> Result<String, getrandom::Error> {
    let mut r = [0u8; 16];
    getrandom::getrandom(&mut r)?;
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;
    let h = hex::encode(r);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// What a manifest request names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag such as `latest`.
    Tag(String),
    /// A content digest such as `sha256:...`.
    Digest(Digest),
}

/// Why a path segment is not a valid reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// Contains `:` but does not parse as a digest.
    Digest(String),
    /// Not a valid tag.
    Tag(String),
}

impl Reference {
    /// Parses a `<tag-or-digest>` path segment: anything with a `:` must be a digest.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.contains(':') {
            s.parse()
                .map(Reference::Digest)
                .map_err(|_| ReferenceError::Digest(s.into()))
        } else if is_valid_tag(s) {
            Ok(Reference::Tag(s.into()))
        } else {
            Err(ReferenceError::Tag(s.into()))
        }
    }
}

/// A registry endpoint, as named by the request path (the spec's end-1 .. end-14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        /// Repository name (unvalidated).
        name: String,
        /// The digest segment, percent-decoded (unvalidated).
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart {
        /// Repository name (unvalidated).
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload {
        /// Repository name (unvalidated).
        name: String,
        /// Upload session id (unvalidated).
        id: String,
    },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        /// Repository name (unvalidated).
        name: String,
        /// The tag-or-digest segment, percent-decoded (unvalidated).
        reference: String,
    },
    /// `/v2/<name>/tags/list`
    Tags {
        /// Repository name (unvalidated).
        name: String,
    },
    /// `/v2/<name>/referrers/<digest>`
    Referrers {
        /// Repository name (unvalidated).
        name: String,
        /// The subject digest segment (unvalidated).
        digest: String,
    },
}

impl Route {
    /// The repository the route addresses, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Manifest { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Splits a request path into a route. The repository name is matched from the right, because a
/// name may itself contain components such as `blobs` or `manifests`. `None` means "no such
/// endpoint" (404). The name is returned raw; callers validate it (so `%2e%2e` is NAME_INVALID).
pub fn parse_route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name_before = |k: usize| -> Option<String> { (n > k).then(|| segs[..n - k].join("/")) };
    let last = segs[n - 1];
    // `/v2/<name>/blobs/uploads/` (and without the trailing slash).
    if n >= 3 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" && last.is_empty() {
        return Some(Route::UploadStart { name: name_before(3)? });
    }
    if n >= 2 && segs[n - 2] == "tags" && last == "list" {
        return Some(Route::Tags { name: name_before(2)? });
    }
    if n >= 3 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        return Some(Route::Upload {
            name: name_before(3)?,
            id: last.to_string(),
        });
    }
    if n >= 2 && segs[n - 2] == "blobs" {
        if last == "uploads" {
            return Some(Route::UploadStart { name: name_before(2)? });
        }
        return Some(Route::Blob {
            name: name_before(2)?,
            digest: percent_decode(last)?,
        });
    }
    if n >= 2 && segs[n - 2] == "manifests" {
        return Some(Route::Manifest {
            name: name_before(2)?,
            reference: percent_decode(last)?,
        });
    }
    if n >= 2 && segs[n - 2] == "referrers" {
        return Some(Route::Referrers {
            name: name_before(2)?,
            digest: percent_decode(last)?,
        });
    }
    None
}

/// Decodes `%XX` escapes (clients may escape the `:` of a digest). `None` on a bad escape or
/// invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = (*b.get(i + 1)? as char).to_digit(16)?;
                let lo = (*b.get(i + 2)? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Parses an `application/x-www-form-urlencoded` string (a query or a form body) into its pairs,
/// keeping repeated keys (`scope`, `tag`). Undecodable pairs are dropped.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k, true)?, decode(v, true)?))
        })
        .collect()
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "a",
            "library/ubuntu",
            "a/b/c",
            "foo.bar",
            "foo_bar",
            "foo__bar",
            "foo---bar",
            "x1/y-2.z_3",
            "blobs/manifests",
            &"a".repeat(255),
        ] {
            assert!(is_valid_name(good), "{good} should be valid");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "a/./b",
            "%2e%2e",
            "a/%2e%2e/b",
            "A",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a.",
            "_a",
            "a b",
            "a:b",
            "a\\b",
            "a/.hidden",
            &"a".repeat(256),
        ] {
            assert!(!is_valid_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn tags() {
        for good in ["latest", "v1.0", "_x", "A-b_c.d", "sha256-abc", &"t".repeat(128)] {
            assert!(is_valid_tag(good), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "..", &"t".repeat(129), "a b"] {
            assert!(!is_valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn upload_ids() {
        let id = new_upload_id().unwrap();
        assert!(is_valid_upload_id(&id), "{id}");
        assert!(!is_valid_upload_id("../../etc/passwd"));
        assert!(!is_valid_upload_id(&id.to_uppercase()));
    }

    #[test]
    fn references() {
        let d = Digest::sha256(b"x");
        assert_eq!(Reference::parse(&d.to_string()), Ok(Reference::Digest(d)));
        assert_eq!(Reference::parse("latest"), Ok(Reference::Tag("latest".into())));
        assert!(Reference::parse("sha256:zz").is_err());
        assert!(Reference::parse(".bad").is_err());
    }

    #[test]
    fn routes() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let cases: Vec<(String, Option<Route>)> = vec![
            ("/v2/".into(), Some(Route::Base)),
            ("/v2".into(), Some(Route::Base)),
            ("/v2/_catalog".into(), Some(Route::Catalog)),
            (
                format!("/v2/a/b/blobs/{d}"),
                Some(Route::Blob {
                    name: "a/b".into(),
                    digest: d.into(),
                }),
            ),
            (
                format!("/v2/a/blobs/{}", d.replace(':', "%3A")),
                Some(Route::Blob {
                    name: "a".into(),
                    digest: d.into(),
                }),
            ),
            (
                "/v2/a/b/blobs/uploads/".into(),
                Some(Route::UploadStart { name: "a/b".into() }),
            ),
            (
                "/v2/a/blobs/uploads".into(),
                Some(Route::UploadStart { name: "a".into() }),
            ),
            (
                "/v2/a/blobs/uploads/1234".into(),
                Some(Route::Upload {
                    name: "a".into(),
                    id: "1234".into(),
                }),
            ),
            (
                "/v2/x/manifests/blobs/manifests/latest".into(),
                Some(Route::Manifest {
                    name: "x/manifests/blobs".into(),
                    reference: "latest".into(),
                }),
            ),
            ("/v2/a/tags/list".into(), Some(Route::Tags { name: "a".into() })),
            (
                format!("/v2/a/referrers/{d}"),
                Some(Route::Referrers {
                    name: "a".into(),
                    digest: d.into(),
                }),
            ),
            ("/v2/blobs/uploads/".into(), None),
            ("/v2/tags/list".into(), None),
            ("/v3/a/tags/list".into(), None),
            ("/v2/a/other/x".into(), None),
        ];
        for (path, want) in cases {
            assert_eq!(parse_route(&path), want, "{path}");
        }
    }

    #[test]
    fn forms() {
        let f = parse_form("scope=repository%3Aa%2Fb%3Apull&scope=registry:catalog:*&service=x+y&empty");
        assert_eq!(
            f,
            vec![
                ("scope".into(), "repository:a/b:pull".into()),
                ("scope".into(), "registry:catalog:*".into()),
                ("service".into(), "x y".into()),
                ("empty".into(), "".into()),
            ]
        );
        assert_eq!(query_escape("a/b:c d"), "a%2Fb%3Ac%20d");
        assert_eq!(percent_decode("%zz"), None);
    }
}
