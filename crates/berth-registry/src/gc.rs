//! Garbage collection (`berth registry gc`): mark and sweep over the store.
//!
//! Roots, as in Docker's registry: every manifest still stored as a revision of some repository,
//! tagged or not. A manifest deleted through the API (`DELETE /v2/<name>/manifests/<digest>`) loses
//! its revision link and so stops being a root. With [`GcOptions::delete_untagged`], only tagged
//! manifests are roots, together with what they reference (an index's children) and the manifests
//! whose `subject` is a kept manifest (signatures, SBOMs); the other revisions are deleted first.
//!
//! Marked: each root manifest and every digest its JSON references through a `digest` field (config,
//! layers, child manifests), except `subject`. Swept: every other blob, the repository
//! links to swept blobs, and upload sessions older than the expiry.
//!
//! Run it while the registry is stopped (or read-only): blobs of a push in flight have no manifest
//! yet and would be swept.

use crate::error::RegistryError;
use crate::storage::{Store, UPLOAD_EXPIRY};
use berth_types::Digest;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// How [`gc_with`] runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Only report what would be removed.
    pub dry_run: bool,
    /// Also delete manifests no tag reaches (see the module docs).
    pub delete_untagged: bool,
    /// Upload sessions untouched this long are removed.
    pub upload_expiry: Duration,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions {
            dry_run: false,
            delete_untagged: false,
            upload_expiry: UPLOAD_EXPIRY,
        }
    }
}

/// What a gc run removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs swept, sorted.
    pub blobs_removed: Vec<Digest>,
    /// Their total size.
    pub bytes_freed: u64,
    /// Untagged manifests deleted (`delete_untagged`), as `(repository, digest)`.
    pub manifests_removed: Vec<(String, Digest)>,
    /// Expired upload sessions removed.
    pub uploads_removed: usize,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would remove" } else { "removed" };
        for (repo, d) in &self.manifests_removed {
            writeln!(f, "{verb} manifest {repo}@{d}")?;
        }
        for d in &self.blobs_removed {
            writeln!(f, "{verb} blob {d}")?;
        }
        write!(
            f,
            "gc {verb} {} ({} bytes), {}, {}",
            plural(self.blobs_removed.len(), "blob"),
            self.bytes_freed,
            plural(self.manifests_removed.len(), "untagged manifest"),
            plural(self.uploads_removed, "expired upload")
        )
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Runs gc on the store at `root` with the default options (untagged manifests are kept).
pub fn gc(root: &Path, dry_run: bool) -> Result<GcReport, RegistryError> {
    gc_with(
        root,
        &GcOptions {
            dry_run,
            ..GcOptions::default()
        },
    )
}

/// Every digest a manifest's JSON references through a `digest` field, except under `subject`.
fn references(data: &[u8]) -> Vec<Digest> {
    fn walk(v: &Value, out: &mut Vec<Digest>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match (k.as_str(), v) {
                        ("subject", _) => {}
                        ("digest", Value::String(s)) => out.extend(s.parse().ok()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        walk(&v, &mut out);
    }
    out
}

fn subject(data: &[u8]) -> Option<Digest> {
    let v: Value = serde_json::from_slice(data).ok()?;
    v.get("subject")?.get("digest")?.as_str()?.parse().ok()
}

/// Runs gc on the store at `root`.
pub fn gc_with(root: &Path, opts: &GcOptions) -> Result<GcReport, RegistryError> {
    let store = Store::existing(root)?;
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..GcReport::default()
    };
    let repos = store.catalog()?;
    let mut marked: HashSet<Digest> = HashSet::new();
    for repo in &repos {
        let revisions: BTreeSet<Digest> = store.revisions(repo)?.into_iter().collect();
        let roots: BTreeSet<Digest> = if opts.delete_untagged {
            let kept = kept_revisions(&store, repo, &revisions)?;
            for d in revisions.difference(&kept) {
                report.manifests_removed.push((repo.clone(), d.clone()));
                if !opts.dry_run {
                    if let Some(s) = store.read_blob(d)?.as_deref().and_then(subject) {
                        store.remove_referrer(repo, &s, d)?;
                    }
                    store.delete_manifest(repo, d)?;
                }
            }
            kept
        } else {
            revisions
        };
        // Every kept manifest is a root of its own (an index's children are revisions of the
        // same repository, checked at push), so one level suffices: the manifest and what it
        // references. Only manifests are read; never a layer.
        for d in roots {
            if let Some(data) = store.read_blob(&d)? {
                marked.extend(references(&data));
            }
            marked.insert(d);
        }
    }
    for (d, size) in store.all_blobs()? {
        if marked.contains(&d) {
            continue;
        }
        if !opts.dry_run {
            store.remove_blob(&d)?;
        }
        report.bytes_freed += size;
        report.blobs_removed.push(d);
    }
    report.blobs_removed.sort();
    if !opts.dry_run {
        let removed: HashSet<&Digest> = report.blobs_removed.iter().collect();
        for repo in &repos {
            for d in store.blob_links(repo)? {
                if removed.contains(&d) {
                    store.unlink_blob(repo, &d)?;
                }
            }
        }
    }
    report.uploads_removed = store.remove_expired_uploads(opts.upload_expiry, opts.dry_run)?;
    Ok(report)
}

/// The revisions of `repo` that tags keep alive: tagged manifests, their children, and referrers
/// of kept manifests, to a fixed point.
fn kept_revisions(store: &Store, repo: &str, revisions: &BTreeSet<Digest>) -> Result<BTreeSet<Digest>, RegistryError> {
    let mut kept = BTreeSet::new();
    let mut stack = Vec::new();
    for t in store.tags(repo)? {
        stack.extend(store.tag(repo, &t)?);
    }
    let mut subjects: Vec<(Digest, Digest)> = Vec::new();
    for d in revisions {
        if let Some(s) = store.read_blob(d)?.as_deref().and_then(subject) {
            subjects.push((d.clone(), s));
        }
    }
    loop {
        while let Some(d) = stack.pop() {
            if !revisions.contains(&d) || !kept.insert(d.clone()) {
                continue;
            }
            if let Some(data) = store.read_blob(&d)? {
                stack.extend(references(&data).into_iter().filter(|r| revisions.contains(r)));
            }
        }
        stack.extend(
            subjects
                .iter()
                .filter(|(d, s)| kept.contains(s) && !kept.contains(d))
                .map(|(d, _)| d.clone()),
        );
        if stack.is_empty() {
            return Ok(kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_skip_the_subject() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let s = Digest::sha256(b"s");
        let m = serde_json::json!({
            "config": {"digest": a.to_string()},
            "layers": [{"digest": b.to_string()}, {"digest": "junk"}],
            "subject": {"digest": s.to_string()},
        });
        let data = m.to_string();
        assert_eq!(references(data.as_bytes()), vec![a, b]);
        assert_eq!(subject(data.as_bytes()), Some(s));
    }

    #[test]
    fn report_summary() {
        let r = GcReport {
            blobs_removed: vec![Digest::sha256(b"x")],
            bytes_freed: 10,
            dry_run: true,
            ..GcReport::default()
        };
        let s = r.to_string();
        assert!(s.contains("would remove blob sha256:"), "{s}");
        assert!(
            s.ends_with("gc would remove 1 blob (10 bytes), 0 untagged manifests, 0 expired uploads"),
            "{s}"
        );
    }
}
