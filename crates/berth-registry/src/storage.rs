//! The registry's filesystem store. Every method is synchronous: the HTTP layer calls them on
//! blocking threads, `gc` calls them directly.
//!
//! Layout under the root (names are validated before they are joined to a path):
//! ```text
//! blobs/<alg>/<hex[0..2]>/<hex>                  content, shared by every repository
//! uploads/<id>/data                              an upload session's bytes so far
//! uploads/<id>/repo                              the repository the session belongs to
//! repositories/<name>/_layers/<alg>/<hex>        link: the repo was given (or mounted) this blob
//! repositories/<name>/_manifests/revisions/<alg>/<hex>   link: a manifest of the repo; holds its media type
//! repositories/<name>/_manifests/tags/<tag>      the digest the tag points at
//! repositories/<name>/_manifests/referrers/<alg>/<subject-hex>/<alg>-<hex>   referrer descriptor (JSON)
//! ```
//! A repository can only read blobs it has a link for, so knowing a digest is not enough to pull
//! another repository's content. Every file is written through a temp file + fsync + rename
//! ([`berth_types::write_atomic`]); blobs are renamed into place from their upload session's file,
//! which lives on the same filesystem.

use crate::error::RegistryError;
use crate::names::{is_valid_name, is_valid_tag, is_valid_upload_id};
use berth_types::{fs::is_temp_name, write_atomic, Digest};
use sha2::{Digest as _, Sha256, Sha512};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Upload sessions untouched for longer than this are removed at open and by gc (Docker's
/// registry uses one week; a day is plenty for a local registry).
pub const UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// The store rooted at one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Reads a small file; `Ok(None)` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, RegistryError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(RegistryError::io("read", path)(e)),
    }
}

/// Removes a file; a missing one is fine. Returns whether it existed.
fn remove_opt(path: &Path) -> Result<bool, RegistryError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if not_found(&e) => Ok(false),
        Err(e) => Err(RegistryError::io("remove", path)(e)),
    }
}

fn mkdirs(path: &Path) -> Result<(), RegistryError> {
    fs::create_dir_all(path).map_err(RegistryError::io("create", path))
}

fn write(path: &Path, data: &[u8]) -> Result<(), RegistryError> {
    if let Some(dir) = path.parent() {
        mkdirs(dir)?;
    }
    write_atomic(path, data).map_err(|e| RegistryError::Io {
        op: "write",
        path: e.path,
        source: e.source,
    })
}

/// Names of the entries of a directory, skipping temp files; empty when it does not exist.
fn list_dir(path: &Path) -> Result<Vec<String>, RegistryError> {
    let rd = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(RegistryError::io("list", path)(e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(RegistryError::io("list", path))?;
        if let Some(n) = ent.file_name().to_str() {
            if !is_temp_name(n) {
                out.push(n.to_string());
            }
        }
    }
    Ok(out)
}

/// A streaming hasher for the algorithms the store accepts.
#[derive(Clone)]
pub enum Hasher {
    /// sha256
    Sha256(Sha256),
    /// sha512
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher for `algorithm` (`sha256` or `sha512`).
    pub fn new(algorithm: &str) -> Option<Hasher> {
        match algorithm {
            "sha256" => Some(Hasher::Sha256(Sha256::new())),
            "sha512" => Some(Hasher::Sha512(Sha512::new())),
            _ => None,
        }
    }

    /// The algorithm name.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Hasher::Sha256(_) => "sha256",
            Hasher::Sha512(_) => "sha512",
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Hasher::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Hasher::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        // The hex comes from the hash itself, so it always parses; fall back to sha256 of nothing
        // rather than panic.
        format!("{alg}:{hex}").parse().unwrap_or_else(|_| Digest::sha256(b""))
    }
}

/// Hashes a file with `algorithm`, streaming it.
pub fn hash_file(path: &Path, algorithm: &str) -> Result<Digest, RegistryError> {
    let mut h =
        Hasher::new(algorithm).ok_or_else(|| RegistryError::Config(format!("unsupported algorithm {algorithm}")))?;
    let mut f = fs::File::open(path).map_err(RegistryError::io("open", path))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(RegistryError::io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// Digest of bytes with the given digest's algorithm (manifests addressed by sha512).
pub fn digest_like(like: &Digest, data: &[u8]) -> Digest {
    let mut h = Hasher::new(like.algorithm()).unwrap_or(Hasher::Sha256(Sha256::new()));
    h.update(data);
    h.finish()
}

impl Store {
    /// Opens (creating) the store at `root` and removes expired upload sessions.
    pub fn open(root: &Path) -> Result<Store, RegistryError> {
        let s = Store {
            root: root.to_path_buf(),
        };
        for d in ["blobs", "uploads", "repositories"] {
            mkdirs(&root.join(d))?;
        }
        s.remove_expired_uploads(UPLOAD_EXPIRY, false)?;
        Ok(s)
    }

    /// Opens an existing store without creating anything (gc).
    pub fn existing(root: &Path) -> Result<Store, RegistryError> {
        let meta = fs::metadata(root).map_err(RegistryError::io("open", root))?;
        if !meta.is_dir() {
            return Err(RegistryError::Config(format!("{} is not a directory", root.display())));
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // ---- blobs ----

    /// Where a blob's content lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root.join("blobs").join(d.algorithm()).join(&hex[..2]).join(hex)
    }

    /// The size of a stored blob, `None` when absent.
    pub fn blob_size(&self, d: &Digest) -> Result<Option<u64>, RegistryError> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(RegistryError::io("stat", p)(e)),
        }
    }

    /// Stores small content (a manifest) under its digest.
    pub fn put_blob_bytes(&self, d: &Digest, data: &[u8]) -> Result<(), RegistryError> {
        let p = self.blob_path(d);
        if p.exists() {
            return Ok(());
        }
        write(&p, data)
    }

    /// Reads a whole blob (manifests only: they are size-capped).
    pub fn read_blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, RegistryError> {
        read_opt(&self.blob_path(d))
    }

    /// Every stored blob digest with its size (gc).
    pub fn all_blobs(&self) -> Result<Vec<(Digest, u64)>, RegistryError> {
        let mut out = Vec::new();
        let blobs = self.root.join("blobs");
        for alg in list_dir(&blobs)? {
            for prefix in list_dir(&blobs.join(&alg))? {
                let dir = blobs.join(&alg).join(&prefix);
                for hex in list_dir(&dir)? {
                    let Ok(d) = format!("{alg}:{hex}").parse::<Digest>() else {
                        continue;
                    };
                    let p = dir.join(&hex);
                    let len = fs::metadata(&p).map_err(RegistryError::io("stat", &p))?.len();
                    out.push((d, len));
                }
            }
        }
        Ok(out)
    }

    /// Removes a blob's content (gc).
    pub fn remove_blob(&self, d: &Digest) -> Result<bool, RegistryError> {
        remove_opt(&self.blob_path(d))
    }

    // ---- repositories ----

    fn repo_dir(&self, name: &str) -> PathBuf {
        debug_assert!(is_valid_name(name));
        self.root.join("repositories").join(name)
    }

    /// Whether the repository has ever received a blob or manifest.
    pub fn repo_exists(&self, name: &str) -> bool {
        let d = self.repo_dir(name);
        d.join("_layers").is_dir() || d.join("_manifests").is_dir()
    }

    /// All repository names, sorted.
    pub fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        let base = self.root.join("repositories");
        let mut stack = vec![String::new()];
        while let Some(prefix) = stack.pop() {
            let dir = if prefix.is_empty() {
                base.clone()
            } else {
                base.join(&prefix)
            };
            for n in list_dir(&dir)? {
                if n.starts_with('_') {
                    continue;
                }
                let full = if prefix.is_empty() { n } else { format!("{prefix}/{n}") };
                if !is_valid_name(&full) || !base.join(&full).is_dir() {
                    continue;
                }
                if self.repo_exists(&full) {
                    out.push(full.clone());
                }
                stack.push(full);
            }
        }
        out.sort();
        Ok(out)
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name).join("_layers").join(d.algorithm()).join(d.hex())
    }

    /// The size of blob `d` if `name` may read it: it has a link to it (pushed or mounted, or it is
    /// one of the repository's manifests, which Docker's registry also serves as blobs) and the
    /// content exists.
    pub fn has_blob(&self, name: &str, d: &Digest) -> Result<Option<u64>, RegistryError> {
        if !self.layer_link(name, d).exists() && !self.revision_link(name, d).exists() {
            return Ok(None);
        }
        self.blob_size(d)
    }

    /// Gives `name` access to blob `d`.
    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<(), RegistryError> {
        let p = self.layer_link(name, d);
        if p.exists() {
            return Ok(());
        }
        write(&p, d.to_string().as_bytes())
    }

    /// Takes blob `d` away from `name`; whether it had it.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<bool, RegistryError> {
        remove_opt(&self.layer_link(name, d))
    }

    /// The blob links of a repository (gc).
    pub fn blob_links(&self, name: &str) -> Result<Vec<Digest>, RegistryError> {
        self.digest_dir(&self.repo_dir(name).join("_layers"))
    }

    fn digest_dir(&self, dir: &Path) -> Result<Vec<Digest>, RegistryError> {
        let mut out = Vec::new();
        for alg in list_dir(dir)? {
            for hex in list_dir(&dir.join(&alg))? {
                if let Ok(d) = format!("{alg}:{hex}").parse() {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    // ---- manifests ----

    fn revision_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions")
            .join(d.algorithm())
            .join(d.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        debug_assert!(is_valid_tag(tag));
        self.repo_dir(name).join("_manifests/tags").join(tag)
    }

    /// The media type of manifest `d` in `name`, `None` when the repo has no such manifest.
    pub fn revision(&self, name: &str, d: &Digest) -> Result<Option<String>, RegistryError> {
        Ok(read_opt(&self.revision_link(name, d))?.map(|b| String::from_utf8_lossy(&b).trim().to_string()))
    }

    /// All manifest digests of a repository (gc, referrers fallback).
    pub fn revisions(&self, name: &str) -> Result<Vec<Digest>, RegistryError> {
        self.digest_dir(&self.repo_dir(name).join("_manifests/revisions"))
    }

    /// Stores manifest bytes and records them as a revision of `name`.
    pub fn put_manifest(&self, name: &str, d: &Digest, media_type: &str, data: &[u8]) -> Result<(), RegistryError> {
        self.put_blob_bytes(d, data)?;
        write(&self.revision_link(name, d), media_type.as_bytes())
    }

    /// Removes manifest `d` from `name`, with every tag pointing at it; whether it existed.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> Result<bool, RegistryError> {
        let existed = remove_opt(&self.revision_link(name, d))?;
        if existed {
            for tag in self.tags(name)? {
                if self.tag(name, &tag)?.as_ref() == Some(d) {
                    remove_opt(&self.tag_path(name, &tag))?;
                }
            }
        }
        Ok(existed)
    }

    /// The digest a tag points at.
    pub fn tag(&self, name: &str, tag: &str) -> Result<Option<Digest>, RegistryError> {
        let p = self.tag_path(name, tag);
        match read_opt(&p)? {
            None => Ok(None),
            Some(b) => String::from_utf8_lossy(&b)
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| RegistryError::Corrupt {
                    path: p,
                    reason: format!("{e}"),
                }),
        }
    }

    /// Points a tag at a digest.
    pub fn set_tag(&self, name: &str, tag: &str, d: &Digest) -> Result<(), RegistryError> {
        write(&self.tag_path(name, tag), d.to_string().as_bytes())
    }

    /// Removes a tag; whether it existed.
    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool, RegistryError> {
        remove_opt(&self.tag_path(name, tag))
    }

    /// The tags of a repository, sorted ASCIIbetically.
    pub fn tags(&self, name: &str) -> Result<Vec<String>, RegistryError> {
        let mut t: Vec<String> = list_dir(&self.repo_dir(name).join("_manifests/tags"))?
            .into_iter()
            .filter(|t| is_valid_tag(t))
            .collect();
        t.sort();
        Ok(t)
    }

    // ---- referrers ----

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/referrers")
            .join(subject.algorithm())
            .join(subject.hex())
    }

    /// Records that manifest `d` refers to `subject`, with the descriptor the referrers API returns.
    pub fn add_referrer(
        &self,
        name: &str,
        subject: &Digest,
        d: &Digest,
        descriptor: &[u8],
    ) -> Result<(), RegistryError> {
        let p = self
            .referrers_dir(name, subject)
            .join(format!("{}-{}", d.algorithm(), d.hex()));
        write(&p, descriptor)
    }

    /// Forgets a referrer.
    pub fn remove_referrer(&self, name: &str, subject: &Digest, d: &Digest) -> Result<(), RegistryError> {
        let p = self
            .referrers_dir(name, subject)
            .join(format!("{}-{}", d.algorithm(), d.hex()));
        remove_opt(&p).map(|_| ())
    }

    /// The stored descriptors of manifests referring to `subject`, sorted by digest.
    pub fn referrers(&self, name: &str, subject: &Digest) -> Result<Vec<serde_json::Value>, RegistryError> {
        let dir = self.referrers_dir(name, subject);
        let mut names = list_dir(&dir)?;
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let p = dir.join(&n);
            if let Some(b) = read_opt(&p)? {
                match serde_json::from_slice(&b) {
                    Ok(v) => out.push(v),
                    Err(e) => tracing::warn!("registry: skipping corrupt referrer {}: {e}", p.display()),
                }
            }
        }
        Ok(out)
    }

    // ---- upload sessions ----

    /// The directory of an upload session.
    pub fn upload_dir(&self, id: &str) -> PathBuf {
        debug_assert!(is_valid_upload_id(id));
        self.root.join("uploads").join(id)
    }

    /// The data file of an upload session.
    pub fn upload_data(&self, id: &str) -> PathBuf {
        self.upload_dir(id).join("data")
    }

    /// Starts a session for `name`: an empty data file and the owner record.
    pub fn create_upload(&self, id: &str, name: &str) -> Result<(), RegistryError> {
        let dir = self.upload_dir(id);
        mkdirs(&dir)?;
        write(&dir.join("repo"), name.as_bytes())?;
        let data = dir.join("data");
        fs::File::create(&data).map_err(RegistryError::io("create", &data))?;
        Ok(())
    }

    /// The current size of a session's data if it exists and belongs to `name`.
    pub fn upload_size(&self, id: &str, name: &str) -> Result<Option<u64>, RegistryError> {
        let dir = self.upload_dir(id);
        match read_opt(&dir.join("repo"))? {
            Some(owner) if owner == name.as_bytes() => {}
            _ => return Ok(None),
        }
        let data = dir.join("data");
        match fs::metadata(&data) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(RegistryError::io("stat", data)(e)),
        }
    }

    /// Drops a session and its data.
    pub fn remove_upload(&self, id: &str) -> Result<(), RegistryError> {
        let dir = self.upload_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(RegistryError::io("remove", dir)(e)),
        }
    }

    /// Moves a finished session's data into the blob store as `d` and links it into `name`. The
    /// caller has verified the digest. The data file is fsynced before the rename.
    pub fn commit_upload(&self, id: &str, name: &str, d: &Digest) -> Result<u64, RegistryError> {
        let data = self.upload_data(id);
        let f = fs::File::open(&data).map_err(RegistryError::io("open", &data))?;
        f.sync_all().map_err(RegistryError::io("fsync", &data))?;
        let size = f.metadata().map_err(RegistryError::io("stat", &data))?.len();
        drop(f);
        let dest = self.blob_path(d);
        if !dest.exists() {
            if let Some(dir) = dest.parent() {
                mkdirs(dir)?;
            }
            fs::rename(&data, &dest).map_err(RegistryError::io("rename", &data))?;
            if let Some(dir) = dest.parent() {
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(RegistryError::io("fsync", dir))?;
            }
        }
        self.remove_upload(id)?;
        self.link_blob(name, d)?;
        Ok(size)
    }

    /// Removes sessions not modified for `expiry` (all of them when `expiry` is zero); returns how
    /// many were (or, with `dry_run`, would be) removed.
    pub fn remove_expired_uploads(&self, expiry: Duration, dry_run: bool) -> Result<usize, RegistryError> {
        let base = self.root.join("uploads");
        let now = SystemTime::now();
        let mut n = 0;
        for id in list_dir(&base)? {
            let dir = base.join(&id);
            // The data file's mtime moves with every chunk; fall back to the directory's.
            let mtime = fs::metadata(dir.join("data"))
                .or_else(|_| fs::metadata(&dir))
                .and_then(|m| m.modified());
            let expired = match mtime {
                Ok(t) => now.duration_since(t).map(|age| age >= expiry).unwrap_or(false),
                Err(_) => true,
            };
            if expired || !is_valid_upload_id(&id) {
                n += 1;
                if !dry_run {
                    let res = if dir.is_dir() {
                        fs::remove_dir_all(&dir)
                    } else {
                        fs::remove_file(&dir)
                    };
                    res.map_err(RegistryError::io("remove", &dir))?;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_links_tags_and_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = Digest::sha256(b"hello");
        s.put_blob_bytes(&d, b"hello").unwrap();
        assert_eq!(s.blob_size(&d).unwrap(), Some(5));
        assert_eq!(s.has_blob("a/b", &d).unwrap(), None, "no link, no access");
        s.link_blob("a/b", &d).unwrap();
        assert_eq!(s.has_blob("a/b", &d).unwrap(), Some(5));
        s.put_manifest("a", &d, "application/x", b"hello").unwrap();
        s.set_tag("a", "v1", &d).unwrap();
        s.set_tag("a", "V0", &d).unwrap();
        assert_eq!(s.tags("a").unwrap(), vec!["V0", "v1"]);
        assert_eq!(s.catalog().unwrap(), vec!["a", "a/b"]);
        assert!(s.delete_manifest("a", &d).unwrap());
        assert!(s.tags("a").unwrap().is_empty());
        assert_eq!(s.revision("a", &d).unwrap(), None);
    }

    #[test]
    fn upload_sessions_commit_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let id = crate::names::new_upload_id().unwrap();
        s.create_upload(&id, "r").unwrap();
        assert_eq!(s.upload_size(&id, "r").unwrap(), Some(0));
        assert_eq!(
            s.upload_size(&id, "other").unwrap(),
            None,
            "sessions are per repository"
        );
        fs::write(s.upload_data(&id), b"data").unwrap();
        let d = hash_file(&s.upload_data(&id), "sha256").unwrap();
        assert_eq!(d, Digest::sha256(b"data"));
        assert_eq!(s.commit_upload(&id, "r", &d).unwrap(), 4);
        assert!(!s.upload_dir(&id).exists());
        assert_eq!(s.has_blob("r", &d).unwrap(), Some(4));

        let id2 = crate::names::new_upload_id().unwrap();
        s.create_upload(&id2, "r").unwrap();
        assert_eq!(s.remove_expired_uploads(UPLOAD_EXPIRY, false).unwrap(), 0);
        assert_eq!(s.remove_expired_uploads(Duration::ZERO, true).unwrap(), 1);
        assert!(s.upload_dir(&id2).exists(), "dry run keeps it");
        assert_eq!(s.remove_expired_uploads(Duration::ZERO, false).unwrap(), 1);
        assert!(!s.upload_dir(&id2).exists());

        // Opening the store removes sessions older than the expiry, and only those.
        let (old, fresh) = (
            crate::names::new_upload_id().unwrap(),
            crate::names::new_upload_id().unwrap(),
        );
        s.create_upload(&old, "r").unwrap();
        s.create_upload(&fresh, "r").unwrap();
        let two_days_ago = SystemTime::now() - 2 * UPLOAD_EXPIRY;
        fs::File::options()
            .write(true)
            .open(s.upload_data(&old))
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(!s.upload_dir(&old).exists());
        assert!(s.upload_dir(&fresh).exists());
    }
}
