//! `.dockerignore` tests, from Docker's documented rules.

use super::*;

fn di(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text).unwrap()
}

#[test]
fn cleaning() {
    let cases = [
        ("", "."),
        ("a//b/./c/", "a/b/c"),
        ("/a/../b", "/b"),
        ("../a", "../a"),
        ("a/../..", ".."),
        ("/..", "/"),
        ("./x", "x"),
    ];
    for (p, want) in cases {
        assert_eq!(clean_path(p), want, "{p}");
    }
    let d = di("# comment\n\n  /foo/bar/  \n./baz\n!/keep/../kept\n  #notcomment\n/\n");
    assert_eq!(d.patterns(), ["foo/bar", "baz", "!kept", "#notcomment", "/"]);
    assert!(d.has_exceptions());
}

#[test]
fn matching_table() {
    // (patterns, path, excluded)
    let cases: &[(&str, &str, bool)] = &[
        ("*/temp*", "somedir/temporary.txt", true),
        ("*/temp*", "somedir/temp", true),
        ("*/temp*", "temp", false),
        ("*/*/temp*", "somedir/subdir/temporary.txt", true),
        ("*/*/temp*", "somedir/temporary.txt", false),
        ("temp?", "tempa", true),
        ("temp?", "temp", false),
        ("temp?", "temp/a", false),
        ("*.md", "README.md", true),
        ("*.md", "docs/README.md", false),
        ("**/*.go", "a.go", true),
        ("**/*.go", "x/y/z.go", true),
        ("**/*.go", "x/y/z.rs", false),
        ("**/node_modules", "node_modules", true),
        ("**/node_modules", "a/b/node_modules", true),
        ("**/node_modules", "a/b/node_modules/x/y", true),
        ("**/node_modules", "a/xnode_modules", false),
        ("**", "anything/at/all", true),
        ("build/**", "build/x", true),
        ("build/**", "build/x/y", true),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**/b", "a/x/c", false),
        ("a**b", "ab", true),
        // `**` not followed by `/` still becomes `(.*/)?` in Docker, so the rest must follow a `/`.
        ("a**b", "ax/b", true),
        ("a**b", "ax/yb", false),
        ("foo", "foo", true),
        ("foo", "foo/bar/baz", true),
        ("foo", "foobar", false),
        ("foo", "x/foo", false),
        ("/foo", "foo/bar", true),
        ("foo/", "foo/bar", true),
        ("[a-c]x", "bx", true),
        ("[a-c]x", "dx", false),
        ("[^a-c]x", "dx", true),
        ("[^a-c]x", "ax", false),
        ("[\\]]", "]", true),
        ("\\*", "*", true),
        ("\\*", "a", false),
        ("a\\?", "a?", true),
        ("a\\?", "ab", false),
        ("*", ".dockerignore", true),
        ("", "x", false),
    ];
    for (pats, path, want) in cases {
        assert_eq!(di(pats).excluded(path), *want, "pattern {pats:?} path {path:?}");
    }
}

#[test]
fn exceptions_and_order() {
    let d = di("*.md\n!README*.md\nREADME-secret.md\n");
    assert!(d.excluded("CHANGES.md"));
    assert!(!d.excluded("README.md"));
    assert!(d.excluded("README-secret.md"));

    // A later line overrides an earlier one.
    let d = di("!README*.md\n*.md\n");
    assert!(d.excluded("README.md"));

    // Exception below an excluded directory.
    let d = di("docs\n!docs/keep.txt\n");
    assert!(d.excluded("docs"));
    assert!(d.excluded("docs/other.txt"));
    assert!(!d.excluded("docs/keep.txt"));

    // An exception for a parent directory re-includes its contents.
    let d = di("*\n!src\n");
    assert!(d.excluded("Cargo.toml"));
    assert!(!d.excluded("src"));
    assert!(!d.excluded("src/main.rs"));
}

#[test]
fn paths_are_cleaned() {
    let d = di("foo/bar\n");
    assert!(d.excluded("./foo/bar"));
    assert!(d.excluded("/foo/bar/x"));
    assert!(d.excluded("foo//bar"));
}

#[test]
fn bad_patterns() {
    assert_eq!(DockerIgnore::parse("ok\n!\n"), Err(IgnoreError::IllegalExclusion(2)));
    assert_eq!(DockerIgnore::parse("!  \n"), Err(IgnoreError::IllegalExclusion(1)));
    assert!(matches!(
        DockerIgnore::parse("a[b\n"),
        Err(IgnoreError::BadPattern { line: 1, .. })
    ));
    assert!(matches!(
        DockerIgnore::parse("x\nab\\\n"),
        Err(IgnoreError::BadPattern { line: 2, .. })
    ));
    assert!("*.tmp".parse::<DockerIgnore>().is_ok());
}

#[test]
fn go_match_of_copy_sources() {
    assert_eq!(match_pattern("*.png", "a.png"), Some(true));
    assert_eq!(match_pattern("*.png", "dir/a.png"), Some(false));
    assert_eq!(match_pattern("index.?s", "index.js"), Some(true));
    assert_eq!(match_pattern("arr[[]0].txt", "arr[0].txt"), Some(true));
    assert_eq!(match_pattern("[^a]x", "bx"), Some(true));
    assert_eq!(match_pattern("[^a]x", "ax"), Some(false));
    assert_eq!(match_pattern("a\\*", "a*"), Some(true));
    assert_eq!(match_pattern("a\\*", "ab"), Some(false));
    assert_eq!(match_pattern("[", "["), None);
    assert!(has_wildcards("a*") && !has_wildcards("plain.txt"));
}

/// Many stars against a long name that does not match: answered at once, not by exponential
/// backtracking.
#[test]
fn many_stars_stay_fast() {
    let name = "a".repeat(4000);
    let pattern = format!("{}b", "*a".repeat(40));
    let start = std::time::Instant::now();
    assert_eq!(match_pattern(&pattern, &name), Some(false));
    let d = DockerIgnore::parse(&format!("{pattern}\n")).unwrap();
    assert!(!d.excluded(&name));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
