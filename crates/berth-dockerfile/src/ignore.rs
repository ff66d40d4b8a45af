//! `.dockerignore` matching, as Docker does it (`moby/patternmatcher` and its `dockerignore.ReadAll`):
//! each line is a pattern cleaned like Go's `filepath.Clean` with a leading `/` stripped; `#` lines
//! and blank lines are skipped; `!` makes an exception; `**` matches any number of directories;
//! `*`, `?`, `[...]` and `\` follow `filepath.Match`; the last matching line wins; a pattern that
//! matches a directory excludes everything below it.

use crate::error::IgnoreError;

/// The patterns of a `.dockerignore` file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// The cleaned pattern, without `!`.
    cleaned: String,
    exclusion: bool,
    kind: MatchKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MatchKind {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// `dir/**`: the path starts with `dir/`.
    Prefix,
    /// `**/name`: the path ends with `/name` or is `name`.
    Suffix,
    /// Anything else, matched token by token.
    Glob(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    Quest,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: nothing, or anything ending with `/`.
    AnyDirs,
    /// `**` at the end: anything.
    AnyAll,
}

impl DockerIgnore {
    /// Reads a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = if n == 0 {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(IgnoreError::IllegalExclusion(n + 1));
                }
            }
            let mut cleaned = clean_path(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let kind = compile(&cleaned).ok_or_else(|| IgnoreError::BadPattern {
                line: n + 1,
                pattern: cleaned.clone(),
            })?;
            patterns.push(Pattern {
                cleaned,
                exclusion,
                kind,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Same as [`DockerIgnore::parse`].
    pub fn new(text: &str) -> Result<Self, IgnoreError> {
        DockerIgnore::parse(text)
    }

    /// The cleaned patterns in file order, `!` kept on exceptions.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.cleaned)
                } else {
                    p.cleaned.clone()
                }
            })
            .collect()
    }

    /// Whether there is any `!` exception (then excluded directories must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (slash-separated, relative to the context root) is left out of the build
    /// context: the last pattern matching it or one of its parent directories decides.
    pub fn excluded(&self, path: &str) -> bool {
        let mut file = clean_path(path);
        while let Some(rest) = file.strip_prefix('/') {
            file = rest.to_string();
        }
        let parent_dirs: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            // An inclusion cannot change a match, an exception cannot change a non-match.
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&file);
            if !m {
                m = (1..=parent_dirs.len()).any(|i| p.matches(&parent_dirs[..i].join("/")));
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

impl std::str::FromStr for DockerIgnore {
    type Err = IgnoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DockerIgnore::parse(s)
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.cleaned,
            MatchKind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchKind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            MatchKind::Glob(toks) => {
                let chars: Vec<char> = path.chars().collect();
                glob(toks, &chars)
            }
        }
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Compiles a cleaned pattern the way patternmatcher does; `None` for a malformed pattern.
fn compile(p: &str) -> Option<MatchKind> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut kind = MatchKind::Exact;
    let mut glob_kind = false; // whether the matcher must use the tokens
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if !glob_kind && kind == MatchKind::Exact {
                        kind = MatchKind::Prefix;
                    } else {
                        toks.push(Tok::AnyAll);
                        glob_kind = true;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    glob_kind = true;
                }
                if first {
                    kind = MatchKind::Suffix;
                    glob_kind = false;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                glob_kind = true;
            }
            '?' => {
                toks.push(Tok::Quest);
                glob_kind = true;
            }
            '\\' => {
                // filepath.Match rejects a trailing backslash.
                let next = *chars.get(i)?;
                i += 1;
                toks.push(Tok::Lit(next));
                glob_kind = true;
            }
            '[' => {
                let (tok, used) = parse_class(&chars[i..])?;
                i += used;
                toks.push(tok);
                glob_kind = true;
            }
            ']' => {
                toks.push(Tok::Lit(']'));
                glob_kind = true;
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    Some(if glob_kind { MatchKind::Glob(toks) } else { kind })
}

/// Parses the inside of `[...]` (after `[`); returns the token and how many characters it used.
fn parse_class(chars: &[char]) -> Option<(Tok, usize)> {
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let c = *chars.get(i)?;
        i += 1;
        if c == ']' && !ranges.is_empty() {
            return Some((Tok::Class { negated, ranges }, i));
        }
        let lo = if c == '\\' {
            let e = *chars.get(i)?;
            i += 1;
            e
        } else {
            c
        };
        let mut hi = lo;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            let h = *chars.get(i)?;
            i += 1;
            hi = if h == '\\' {
                let e = *chars.get(i)?;
                i += 1;
                e
            } else {
                h
            };
            if hi < lo {
                return None;
            }
        }
        ranges.push((lo, hi));
    }
}

/// Go's `filepath.Match` of `name` against `pattern` (`*`, `?`, `[...]` with `^` negation, `\`
/// escapes; `*` and `?` never match `/`), as COPY and ADD match their sources: `None` for a
/// malformed pattern.
pub fn match_pattern(pattern: &str, name: &str) -> Option<bool> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' => {
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::Quest),
            '\\' => {
                toks.push(Tok::Lit(*chars.get(i)?));
                i += 1;
            }
            '[' => {
                let (tok, used) = parse_class(&chars[i..])?;
                i += used;
                toks.push(tok);
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    let name: Vec<char> = name.chars().collect();
    Some(glob(&toks, &name))
}

/// Whether `s` holds a character `match_pattern` treats specially.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Whether `s` matches `toks`: dynamic programming from the end of the pattern, one row per token,
/// O(tokens × length) time and O(length) memory whatever the stars (no backtracking, no recursion).
fn glob(toks: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    // next[i]: whether s[i..] matches the tokens after the current one.
    let mut next: Vec<bool> = (0..=n).map(|i| i == n).collect();
    let mut cur = vec![false; n + 1];
    for tok in toks.iter().rev() {
        let mut dirs_tail = false; // some '/' at j >= i with next[j + 1]
        for i in (0..=n).rev() {
            let c = s.get(i);
            cur[i] = match tok {
                Tok::Lit(l) => c == Some(l) && next[i + 1],
                Tok::Quest => c.is_some_and(|c| *c != '/') && next[i + 1],
                Tok::Class { negated, ranges } => {
                    c.is_some_and(|c| ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated) && next[i + 1]
                }
                Tok::Star => next[i] || (c.is_some_and(|c| *c != '/') && cur[i + 1]),
                Tok::AnyAll => next[i] || (i < n && cur[i + 1]),
                Tok::AnyDirs => {
                    if c == Some(&'/') && next[i + 1] {
                        dirs_tail = true;
                    }
                    next[i] || dirs_tail
                }
            };
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next[0]
}

#[cfg(test)]
#[path = "ignore_tests.rs"]
mod tests;
