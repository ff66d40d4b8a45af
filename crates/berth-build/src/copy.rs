//! Which context entries a `COPY`/`ADD` takes, and where each lands in the image.
//!
//! Docker's rules (the Dockerfile reference, "COPY: Source" and "Destination"; the classic builder's
//! errors):
//! - sources are relative to the context root; a leading `/` is dropped and a trailing `/` ignored;
//!   a source that climbs out of the context (`../x`) is refused ("forbidden path outside the build
//!   context");
//! - sources may hold Go `filepath.Match` wildcards, matched one path component at a time against
//!   the context, in name order; a wildcard that matches nothing is "no source files were
//!   specified", a plain source that is missing (or left out by `.dockerignore`) "file not found in
//!   build context";
//! - more than one source (after wildcards) needs a destination ending in `/`;
//! - a relative destination is under the WORKDIR; a destination ending in `/` (or `.`) is a
//!   directory, as is one that already exists as a directory in the image; a file source goes to
//!   `dest/<name>` then, else to `dest` itself;
//! - a directory source gives its contents (the directory itself only lends its metadata to the
//!   destination), recursively, with entries `.dockerignore` excludes left out;
//! - symlinks inside a copied directory stay symlinks; a source that is itself a symlink is
//!   followed, resolved inside the context (as the classic builder's `FollowSymlinkInScope`: `..`
//!   and absolute targets never leave the context root).

use berth_dockerfile::{clean_path, has_wildcards, match_pattern, DockerIgnore};
use std::path::{Path, PathBuf};

/// Why a COPY or ADD cannot be planned. The messages are the classic builder's.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source climbs out of the context.
    #[error("forbidden path outside the build context: {0}")]
    OutsideContext(String),
    /// A plain source is missing or excluded by `.dockerignore`.
    #[error("file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
    /// Wildcards matched nothing.
    #[error("no source files were specified")]
    NoSources,
    /// Several sources to a destination that does not end in `/`.
    #[error("When using COPY with more than one source file, the destination must be a directory and end with a /")]
    DestinationNotDirectory,
    /// A malformed wildcard.
    #[error("syntax error in pattern {0:?}")]
    BadPattern(String),
    /// A symlink chain too long to follow.
    #[error("too many levels of symbolic links resolving {0} in the build context")]
    SymlinkLoop(String),
    /// The context could not be read.
    #[error("reading the build context at {path}: {source}")]
    Io {
        /// The entry.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What a context entry is (not following symlinks, except a top-level source's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink, copied as a symlink.
    Symlink,
    /// A fifo, socket or device node.
    Other,
}

/// One context entry and where it lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyItem {
    /// The entry, relative to the context root (`dir/file`; `.` for the root itself).
    pub src: String,
    /// Its absolute path in the image (`/app/file`).
    pub dest: String,
    /// What it is.
    pub kind: EntryKind,
}

/// A build context on disk and its `.dockerignore`.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The directory the context was unpacked into.
    pub root: &'a Path,
    /// Its `.dockerignore`, if it has one.
    pub ignore: Option<&'a DockerIgnore>,
}

impl Context<'_> {
    fn host(&self, rel: &str) -> PathBuf {
        if rel == "." || rel.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(rel)
        }
    }

    fn excluded(&self, rel: &str) -> bool {
        rel != "." && self.ignore.is_some_and(|i| i.excluded(rel))
    }

    fn kind(&self, rel: &str) -> Result<Option<EntryKind>, CopyError> {
        match std::fs::symlink_metadata(self.host(rel)) {
            Ok(m) => Ok(Some(kind_of(&m.file_type()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CopyError::Io {
                path: rel.to_string(),
                source,
            }),
        }
    }

    /// The names in directory `rel`, sorted.
    fn names(&self, rel: &str) -> Result<Vec<String>, CopyError> {
        let io = |source| CopyError::Io {
            path: rel.to_string(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(self.host(rel))
            .map_err(io)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        names.sort();
        Ok(names)
    }

    /// Follows `rel` while it is a symlink, resolving each target inside the context.
    fn follow(&self, rel: &str) -> Result<String, CopyError> {
        let mut cur = rel.to_string();
        for _ in 0..40 {
            let host = self.host(&cur);
            let target = match std::fs::read_link(&host) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => return Ok(cur),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cur),
                Err(source) => return Err(CopyError::Io { path: cur, source }),
            };
            let target = target.to_string_lossy();
            let base = if target.starts_with('/') {
                String::new()
            } else {
                parent(&cur).to_string()
            };
            cur = in_context(&format!("/{base}/{target}"));
        }
        Err(CopyError::SymlinkLoop(rel.to_string()))
    }
}

fn kind_of(t: &std::fs::FileType) -> EntryKind {
    if t.is_symlink() {
        EntryKind::Symlink
    } else if t.is_dir() {
        EntryKind::Dir
    } else if t.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

/// `path` cleaned as if the context root were `/` (so `..` stops there), relative (`.` for the
/// root).
fn in_context(path: &str) -> String {
    let c = clean_path(&format!("/{path}"));
    match c.trim_start_matches('/') {
        "" => ".".into(),
        rest => rest.to_string(),
    }
}

fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn base_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn join(dir: &str, name: &str) -> String {
    match dir {
        "." | "" => name.to_string(),
        _ => format!("{dir}/{name}"),
    }
}

fn image_join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The sources of a COPY/ADD expanded against the context: (relative path, kind), in order.
fn expand_sources(ctx: &Context, sources: &[String]) -> Result<Vec<(String, EntryKind)>, CopyError> {
    let mut out = Vec::new();
    let mut any_wildcard = false;
    for src in sources {
        let cleaned = clean_path(src.trim_end_matches('/'));
        let relative = cleaned.trim_start_matches('/');
        if relative == ".." || relative.starts_with("../") {
            return Err(CopyError::OutsideContext(src.clone()));
        }
        let rel = if relative.is_empty() { "." } else { relative };
        if has_wildcards(rel) {
            any_wildcard = true;
            for m in glob(ctx, rel)? {
                let kind = ctx.kind(&m)?.ok_or_else(|| CopyError::NotFound(m.clone()))?;
                out.push((m, kind));
            }
            continue;
        }
        match ctx.kind(rel)? {
            Some(kind) if !ctx.excluded(rel) => out.push((rel.to_string(), kind)),
            _ => return Err(CopyError::NotFound(rel.to_string())),
        }
    }
    if out.is_empty() && any_wildcard {
        return Err(CopyError::NoSources);
    }
    Ok(out)
}

/// The context entries matching `pattern`, one component at a time, in name order.
fn glob(ctx: &Context, pattern: &str) -> Result<Vec<String>, CopyError> {
    let parts: Vec<&str> = pattern.split('/').collect();
    let mut found = vec![".".to_string()];
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &found {
            if ctx.kind(dir)? != Some(EntryKind::Dir) {
                continue;
            }
            if !has_wildcards(part) {
                let cand = join(dir, part);
                if ctx.kind(&cand)?.is_some() {
                    next.push(cand);
                }
                continue;
            }
            for name in ctx.names(dir)? {
                match match_pattern(part, &name) {
                    None => return Err(CopyError::BadPattern(pattern.to_string())),
                    Some(true) => next.push(join(dir, &name)),
                    Some(false) => {}
                }
            }
        }
        found = next;
        if last {
            found.retain(|m| !ctx.excluded(m));
        }
    }
    Ok(found)
}

/// Adds the contents of directory `dir` (relative) under `dest`, depth first in name order.
fn walk(ctx: &Context, dir: &str, dest: &str, out: &mut Vec<CopyItem>) -> Result<(), CopyError> {
    let keep_looking = ctx.ignore.is_some_and(DockerIgnore::has_exceptions);
    for name in ctx.names(dir)? {
        let rel = join(dir, &name);
        let target = image_join(dest, &name);
        let kind = ctx.kind(&rel)?.ok_or_else(|| CopyError::NotFound(rel.clone()))?;
        let excluded = ctx.excluded(&rel);
        if excluded && !(kind == EntryKind::Dir && keep_looking) {
            continue;
        }
        if !excluded {
            out.push(CopyItem {
                src: rel.clone(),
                dest: target.clone(),
                kind,
            });
        }
        if kind == EntryKind::Dir {
            walk(ctx, &rel, &target, out)?;
        }
    }
    Ok(())
}

/// Plans `COPY sources... dest` (or ADD of local sources) from the context: every entry taken and
/// its absolute path in the image. `workdir` is the image's WORKDIR (`/` when unset);
/// `dest_is_dir` tells whether a path already is a directory in the image.
pub fn plan(
    ctx: &Context,
    sources: &[String],
    dest: &str,
    workdir: &str,
    dest_is_dir: &dyn Fn(&str) -> bool,
) -> Result<Vec<CopyItem>, CopyError> {
    let dir_syntax = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let absolute = if dest.starts_with('/') {
        dest.to_string()
    } else {
        image_join(if workdir.is_empty() { "/" } else { workdir }, dest)
    };
    let dest_abs = clean_path(&absolute);
    let matched = expand_sources(ctx, sources)?;
    if matched.len() > 1 && !dir_syntax {
        return Err(CopyError::DestinationNotDirectory);
    }
    let into_dir = dir_syntax || dest_is_dir(&dest_abs);
    let mut out = Vec::new();
    for (rel, kind) in matched {
        // A followed symlink keeps its own name at the destination.
        let name = base_name(&rel).to_string();
        let (rel, kind) = if kind == EntryKind::Symlink {
            let resolved = ctx.follow(&rel)?;
            let kind = ctx.kind(&resolved)?.ok_or_else(|| CopyError::NotFound(rel.clone()))?;
            (resolved, kind)
        } else {
            (rel, kind)
        };
        match kind {
            EntryKind::Dir => {
                out.push(CopyItem {
                    src: rel.clone(),
                    dest: dest_abs.clone(),
                    kind,
                });
                walk(ctx, &rel, &dest_abs, &mut out)?;
            }
            _ => {
                let target = if into_dir {
                    image_join(&dest_abs, &name)
                } else {
                    dest_abs.clone()
                };
                out.push(CopyItem {
                    src: rel,
                    dest: target,
                    kind,
                });
            }
        }
    }
    Ok(out)
}

/// A checksum of what a COPY takes: each entry's destination, kind, permission bits and content
/// (a file's bytes, a symlink's target), not its times, so the build cache sees a change of
/// content and nothing else.
pub fn content_digest(root: &Path, items: &[CopyItem]) -> Result<String, CopyError> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    let io = |path: &str, source| CopyError::Io {
        path: path.to_string(),
        source,
    };
    let mut h = Sha256::new();
    for item in items {
        let host = if item.src == "." {
            root.to_path_buf()
        } else {
            root.join(&item.src)
        };
        let meta = std::fs::symlink_metadata(&host).map_err(|e| io(&item.src, e))?;
        h.update(item.dest.as_bytes());
        h.update([0, item.kind as u8]);
        h.update((meta.permissions().mode() & 0o7777).to_le_bytes());
        match item.kind {
            EntryKind::File => {
                let mut f = std::fs::File::open(&host).map_err(|e| io(&item.src, e))?;
                let mut fh = Sha256::new();
                std::io::copy(&mut f, &mut fh).map_err(|e| io(&item.src, e))?;
                h.update(fh.finalize());
            }
            EntryKind::Symlink => {
                let t = std::fs::read_link(&host).map_err(|e| io(&item.src, e))?;
                h.update(t.to_string_lossy().as_bytes());
            }
            EntryKind::Dir | EntryKind::Other => {}
        }
        h.update([0xff]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
