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
//!   and absolute targets never leave the context root); so are symlinks on the way to a source
//!   (`link-dir/file`).
//!
//! The flags BuildKit added ([`CopyFlags`]), as the Dockerfile reference describes them:
//! - `--exclude=PATTERN` (COPY and ADD, repeatable): `.dockerignore` patterns matched against each
//!   entry's path relative to the source it came with (a directory source's contents relative to
//!   it, a wildcard's matches relative to the directory the wildcard is in), so `*.txt` leaves out
//!   a directory source's top-level `.txt` files and `**/*.txt` all of them; an excluded directory
//!   takes its contents with it. A source named without a wildcard is never excluded itself.
//! - `--parents` (COPY): each source keeps its path relative to the context under the destination
//!   (which is then always a directory); a `/./` in a source is the pivot: only the part after it
//!   is kept (`./a/./b/f` to `dest/b/f`), and `--exclude` patterns are relative to the pivot. The
//!   part after the pivot is matched as BuildKit's include patterns are: `*`, `?`, `[...]` within a
//!   component, `**` for any number of components; a matching directory comes whole. The parent
//!   directories on the way are copied with their own metadata; symlinks are not followed below the
//!   pivot.
use berth_dockerfile::{clean_path, has_wildcards, match_pattern, DockerIgnore};
use std::collections::HashSet;
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
    /// An `--exclude` pattern that is not a valid pattern.
    #[error("invalid --exclude pattern {pattern:?}: {reason}")]
    BadExclude {
        /// The pattern as given.
        pattern: String,
        /// Why it is refused.
        reason: String,
    },
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
        self.resolve(rel, true)
    }

    /// `rel` with every symlink on the way resolved inside the context, one component at a time
    /// (the classic builder's `FollowSymlinkInScope`): `..` and absolute targets stop at the
    /// context root, and the host's own symlinks are never used, as each resolved prefix is a
    /// real directory of the context. The last component is followed only with `follow_last`.
    fn resolve(&self, rel: &str, follow_last: bool) -> Result<String, CopyError> {
        let mut todo: Vec<String> = rel
            .split('/')
            .rev()
            .filter(|c| !c.is_empty() && *c != ".")
            .map(String::from)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            if comp == ".." {
                done.pop();
                continue;
            }
            let cur = join(&done.join("/"), &comp);
            let last = todo.is_empty();
            if last && !follow_last {
                done.push(comp);
                break;
            }
            let target = match std::fs::read_link(self.host(&cur)) {
                Ok(t) => t,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotFound
                    ) || e.raw_os_error() == Some(20) =>
                {
                    // Not a symlink, missing, or below a file (ENOTDIR): taken as it is.
                    done.push(comp);
                    continue;
                }
                Err(source) => return Err(CopyError::Io { path: cur, source }),
            };
            links += 1;
            if links > 40 {
                return Err(CopyError::SymlinkLoop(rel.to_string()));
            }
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(
                target
                    .split('/')
                    .rev()
                    .filter(|c| !c.is_empty() && *c != ".")
                    .map(String::from),
            );
        }
        Ok(if done.is_empty() { ".".into() } else { done.join("/") })
    }
}

/// `--exclude` patterns as one `.dockerignore` (exceptions with `!` included); `None` when there
/// are none.
pub fn exclude_patterns(patterns: &[String]) -> Result<Option<DockerIgnore>, CopyError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    for p in patterns {
        let bad = |reason: &str| CopyError::BadExclude {
            pattern: p.clone(),
            reason: reason.to_string(),
        };
        if p.contains('\n') {
            return Err(bad("a pattern is one line"));
        }
        // A `.dockerignore` would read these as a comment or nothing at all.
        if p.trim().is_empty() || p.starts_with('#') {
            return Err(bad("an empty pattern or one starting with # matches nothing"));
        }
        DockerIgnore::parse(p).map_err(|e| bad(&e.to_string()))?;
    }
    DockerIgnore::parse(&patterns.join("\n"))
        .map(Some)
        .map_err(|e| CopyError::BadExclude {
            pattern: patterns.join(" "),
            reason: e.to_string(),
        })
}

/// How a COPY or ADD's flags change what it takes and where each entry lands.
#[derive(Debug, Clone, Default)]
pub struct CopyFlags {
    /// `--exclude`: patterns (see [`exclude_patterns`]) matched relative to each source.
    pub exclude: Option<DockerIgnore>,
    /// `--parents`: sources keep their path relative to the context (or to a `/./` pivot).
    pub parents: bool,
}

/// `--exclude` patterns and the directory (relative to the context) their paths are relative to.
#[derive(Clone, Copy)]
struct Exclude<'a> {
    patterns: Option<&'a DockerIgnore>,
    base: &'a str,
}

impl Exclude<'_> {
    fn excluded(&self, rel: &str) -> bool {
        let Some(p) = self.patterns else {
            return false;
        };
        let inner = match self.base {
            "." | "" => Some(rel),
            base => rel.strip_prefix(base).and_then(|r| r.strip_prefix('/')),
        };
        inner.is_some_and(|r| !r.is_empty() && p.excluded(r))
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.is_some_and(DockerIgnore::has_exceptions)
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

/// One source of a COPY/ADD after wildcards: its path (relative to the context) and its kind.
struct Source {
    rel: String,
    kind: EntryKind,
}

/// A source as given, cleaned: relative to the context (`.` for the root), or an error when it
/// climbs out.
fn clean_source(src: &str) -> Result<String, CopyError> {
    let cleaned = clean_path(src.trim_end_matches('/'));
    let relative = cleaned.trim_start_matches('/');
    if relative == ".." || relative.starts_with("../") {
        return Err(CopyError::OutsideContext(src.to_string()));
    }
    Ok(if relative.is_empty() {
        ".".into()
    } else {
        relative.to_string()
    })
}

/// The directory part of `pattern` before its first wildcard (`.` when it starts with one).
fn fixed_prefix(pattern: &str) -> String {
    let fixed: Vec<&str> = pattern.split('/').take_while(|c| !has_wildcards(c)).collect();
    let n = fixed.len().min(pattern.split('/').count().saturating_sub(1));
    match fixed[..n].join("/") {
        s if s.is_empty() => ".".into(),
        s => s,
    }
}

/// The sources of a COPY/ADD expanded against the context, in order; wildcard matches that an
/// `--exclude` pattern names are left out.
fn expand_sources(ctx: &Context, sources: &[String], exclude: Option<&DockerIgnore>) -> Result<Vec<Source>, CopyError> {
    let mut out = Vec::new();
    let mut any_wildcard = false;
    let mut matched_any = false;
    for src in sources {
        let rel = clean_source(src)?;
        if has_wildcards(&rel) {
            any_wildcard = true;
            let base = fixed_prefix(&rel);
            let scope = Exclude {
                patterns: exclude,
                base: &base,
            };
            for m in glob(ctx, &rel)? {
                matched_any = true;
                let kind = ctx.kind(&m)?.ok_or_else(|| CopyError::NotFound(m.clone()))?;
                if scope.excluded(&m) {
                    continue;
                }
                out.push(Source { rel: m, kind });
            }
            continue;
        }
        // Symlinks on the way are resolved inside the context; the last one is the caller's.
        let resolved = ctx.resolve(&rel, false)?;
        match ctx.kind(&resolved)? {
            Some(kind) if !ctx.excluded(&rel) && !ctx.excluded(&resolved) => {
                matched_any = true;
                out.push(Source { rel: resolved, kind })
            }
            _ => return Err(CopyError::NotFound(rel)),
        }
    }
    if !matched_any && any_wildcard {
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

/// Adds the contents of directory `dir` (relative) under `dest`, depth first in name order,
/// leaving out what `.dockerignore` or the `--exclude` patterns name.
fn walk(ctx: &Context, dir: &str, dest: &str, exclude: Exclude, out: &mut Vec<CopyItem>) -> Result<(), CopyError> {
    let keep_looking = ctx.ignore.is_some_and(DockerIgnore::has_exceptions) || exclude.has_exceptions();
    for name in ctx.names(dir)? {
        let rel = join(dir, &name);
        let target = image_join(dest, &name);
        let kind = ctx.kind(&rel)?.ok_or_else(|| CopyError::NotFound(rel.clone()))?;
        let excluded = ctx.excluded(&rel) || exclude.excluded(&rel);
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
            walk(ctx, &rel, &target, exclude, out)?;
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
    plan_with(ctx, sources, dest, workdir, dest_is_dir, &CopyFlags::default())
}

/// [`plan`] with the instruction's `--exclude` and `--parents` flags.
pub fn plan_with(
    ctx: &Context,
    sources: &[String],
    dest: &str,
    workdir: &str,
    dest_is_dir: &dyn Fn(&str) -> bool,
    flags: &CopyFlags,
) -> Result<Vec<CopyItem>, CopyError> {
    let dir_syntax = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let absolute = if dest.starts_with('/') {
        dest.to_string()
    } else {
        image_join(if workdir.is_empty() { "/" } else { workdir }, dest)
    };
    let dest_abs = clean_path(&absolute);
    if flags.parents {
        if sources.len() > 1 && !dir_syntax {
            return Err(CopyError::DestinationNotDirectory);
        }
        return plan_parents(ctx, sources, &dest_abs, flags.exclude.as_ref());
    }
    let matched = expand_sources(ctx, sources, flags.exclude.as_ref())?;
    if matched.len() > 1 && !dir_syntax {
        return Err(CopyError::DestinationNotDirectory);
    }
    let into_dir = dir_syntax || dest_is_dir(&dest_abs);
    let mut out = Vec::new();
    for Source { rel, kind } in matched {
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
                // A directory's contents are excluded by their path relative to it.
                let scope = Exclude {
                    patterns: flags.exclude.as_ref(),
                    base: &rel,
                };
                walk(ctx, &rel, &dest_abs, scope, &mut out)?;
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

/// Splits a `--parents` source at its first `/./`: the pivot (relative to the context) and the
/// pattern below it; without one the pivot is the context root.
fn split_pivot(src: &str) -> Result<(String, String), CopyError> {
    let (pivot, pattern) = match src.split_once("/./") {
        Some((pivot, pattern)) => (clean_source(pivot)?, pattern),
        None => (".".to_string(), src),
    };
    let pattern = clean_path(pattern.trim_start_matches('/').trim_end_matches('/'));
    if pattern == ".." || pattern.starts_with("../") {
        return Err(CopyError::OutsideContext(src.to_string()));
    }
    Ok((pivot, pattern))
}

/// Whether the path components `path` match the pattern components `pat` (`**`: any number of
/// components); `None` for a malformed pattern.
fn match_components(pat: &[&str], path: &[&str]) -> Option<bool> {
    match pat.split_first() {
        None => Some(path.is_empty()),
        Some((&"**", rest)) => {
            if match_components(rest, path)? {
                return Some(true);
            }
            match path.split_first() {
                Some((_, tail)) => match_components(pat, tail),
                None => Some(false),
            }
        }
        Some((first, rest)) => match path.split_first() {
            None => Some(false),
            Some((name, tail)) => {
                if match_pattern(first, name)? {
                    match_components(rest, tail)
                } else {
                    Some(false)
                }
            }
        },
    }
}

/// Whether something below the directory `path` could still match `pat`.
fn could_match_below(pat: &[&str], path: &[&str]) -> Option<bool> {
    match (pat.split_first(), path.split_first()) {
        (_, None) => Some(true),
        (None, Some(_)) => Some(false),
        (Some((&"**", _)), _) => Some(true),
        (Some((first, rest)), Some((name, tail))) => {
            if match_pattern(first, name)? {
                could_match_below(rest, tail)
            } else {
                Some(false)
            }
        }
    }
}

/// `COPY --parents`: each source's entries under `dest` at their path relative to the pivot.
fn plan_parents(
    ctx: &Context,
    sources: &[String],
    dest: &str,
    exclude: Option<&DockerIgnore>,
) -> Result<Vec<CopyItem>, CopyError> {
    let mut out: Vec<CopyItem> = Vec::new();
    let mut dirs: HashSet<String> = HashSet::new();
    let mut any_wildcard = false;
    let mut matched_any = false;
    for src in sources {
        let (pivot, pattern) = split_pivot(src)?;
        let wildcard = has_wildcards(&pattern) || has_wildcards(&pivot);
        any_wildcard |= wildcard;
        let pivots = if has_wildcards(&pivot) {
            glob(ctx, &pivot)?
        } else {
            vec![pivot.clone()]
        };
        let mut found = 0;
        for pivot in pivots {
            let pivot = ctx.follow(&pivot)?;
            if ctx.kind(&pivot)? != Some(EntryKind::Dir) || ctx.excluded(&pivot) {
                continue;
            }
            let scope = Exclude {
                patterns: exclude,
                base: &pivot,
            };
            let pat: Vec<&str> = if pattern == "." {
                Vec::new()
            } else {
                pattern.split('/').collect()
            };
            if pat.is_empty() {
                // The pivot itself: all of it.
                found += 1;
                walk(ctx, &pivot, dest, scope, &mut out)?;
                continue;
            }
            let w = ParentsWalk {
                ctx,
                pivot: &pivot,
                pat: &pat,
                dest,
                exclude: scope,
                src,
            };
            found += w.take(&pivot, &mut dirs, &mut out)?;
        }
        if found == 0 && !wildcard {
            return Err(CopyError::NotFound(clean_source(&src.replace("/./", "/"))?));
        }
        matched_any |= found > 0;
    }
    if !matched_any && any_wildcard {
        return Err(CopyError::NoSources);
    }
    Ok(out)
}

/// One `--parents` source being taken: entries below `pivot` matching `pat` go to `dest` at
/// their path relative to the pivot.
struct ParentsWalk<'a> {
    ctx: &'a Context<'a>,
    pivot: &'a str,
    pat: &'a [&'a str],
    dest: &'a str,
    exclude: Exclude<'a>,
    src: &'a str,
}

impl ParentsWalk<'_> {
    /// Walks directory `dir` for matching entries; each is added with its parent directories
    /// (once: `dirs` holds the destinations added) and, a directory, its contents. Answers how
    /// many matched.
    fn take(&self, dir: &str, dirs: &mut HashSet<String>, out: &mut Vec<CopyItem>) -> Result<usize, CopyError> {
        let ctx = self.ctx;
        let keep_looking = ctx.ignore.is_some_and(DockerIgnore::has_exceptions) || self.exclude.has_exceptions();
        let bad = || CopyError::BadPattern(self.src.to_string());
        let mut found = 0;
        for name in ctx.names(dir)? {
            let rel = join(dir, &name);
            let inner = match self.pivot {
                "." | "" => rel.clone(),
                p => rel[p.len() + 1..].to_string(),
            };
            let comps: Vec<&str> = inner.split('/').collect();
            let kind = ctx.kind(&rel)?.ok_or_else(|| CopyError::NotFound(rel.clone()))?;
            let excluded = ctx.excluded(&rel) || self.exclude.excluded(&rel);
            if excluded && !(kind == EntryKind::Dir && keep_looking) {
                continue;
            }
            if !excluded && match_components(self.pat, &comps).ok_or_else(bad)? {
                found += 1;
                // The directories on the way, with their own metadata.
                for i in 1..comps.len() {
                    let up = comps[..i].join("/");
                    let target = image_join(self.dest, &up);
                    if dirs.insert(target.clone()) {
                        out.push(CopyItem {
                            src: join(self.pivot, &up),
                            dest: target,
                            kind: EntryKind::Dir,
                        });
                    }
                }
                let target = image_join(self.dest, &inner);
                out.push(CopyItem {
                    src: rel.clone(),
                    dest: target.clone(),
                    kind,
                });
                if kind == EntryKind::Dir {
                    dirs.insert(target.clone());
                    walk(ctx, &rel, &target, self.exclude, out)?;
                }
                continue;
            }
            if kind == EntryKind::Dir && could_match_below(self.pat, &comps).ok_or_else(bad)? {
                found += self.take(&rel, dirs, out)?;
            }
        }
        Ok(found)
    }
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
