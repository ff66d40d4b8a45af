//! COPY planning against a context on disk, from the Dockerfile reference's rules.

use super::*;
use std::os::unix::fs::symlink;

/// A context with: a.txt, b.txt, index.js, index.ts, arr[0].txt, dir/{x, sub/y, .hidden},
/// skip/{s}, link-to-a -> a.txt, link-out -> ../../etc/passwd, dirlink -> dir.
fn context() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for f in [
        "a.txt",
        "b.txt",
        "index.js",
        "index.ts",
        "arr[0].txt",
        "dir/x",
        "dir/sub/y",
        "dir/.hidden",
        "skip/s",
    ] {
        let p = r.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f).unwrap();
    }
    symlink("a.txt", r.join("link-to-a")).unwrap();
    symlink("../../etc/passwd", r.join("link-out")).unwrap();
    symlink("dir", r.join("dirlink")).unwrap();
    std::fs::write(r.join("etc-passwd-in-context"), "inside").unwrap();
    t
}

fn run(
    root: &Path,
    ignore: Option<&DockerIgnore>,
    srcs: &[&str],
    dest: &str,
) -> Result<Vec<(String, String)>, CopyError> {
    let ctx = Context { root, ignore };
    let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
    let existing_dirs = |p: &str| p == "/existing";
    plan(&ctx, &srcs, dest, "/work", &existing_dirs).map(|items| items.into_iter().map(|i| (i.src, i.dest)).collect())
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn files_and_trailing_slashes() {
    let t = context();
    let r = t.path();
    assert_eq!(run(r, None, &["a.txt"], "/abs").unwrap(), pairs(&[("a.txt", "/abs")]));
    assert_eq!(
        run(r, None, &["a.txt"], "/abs/").unwrap(),
        pairs(&[("a.txt", "/abs/a.txt")])
    );
    // relative to WORKDIR; "." is a directory
    assert_eq!(
        run(r, None, &["a.txt"], "rel/").unwrap(),
        pairs(&[("a.txt", "/work/rel/a.txt")])
    );
    assert_eq!(
        run(r, None, &["a.txt"], ".").unwrap(),
        pairs(&[("a.txt", "/work/a.txt")])
    );
    // an existing directory in the image takes the file in
    assert_eq!(
        run(r, None, &["a.txt"], "/existing").unwrap(),
        pairs(&[("a.txt", "/existing/a.txt")])
    );
    // leading and trailing slashes of a source do not matter
    assert_eq!(
        run(r, None, &["/a.txt"], "/d/").unwrap(),
        pairs(&[("a.txt", "/d/a.txt")])
    );
    assert_eq!(
        run(r, None, &["a.txt", "b.txt"], "/d/").unwrap(),
        pairs(&[("a.txt", "/d/a.txt"), ("b.txt", "/d/b.txt")])
    );
    let e = run(r, None, &["a.txt", "b.txt"], "/d").unwrap_err();
    assert!(matches!(e, CopyError::DestinationNotDirectory), "{e}");
    assert!(e.to_string().contains("must be a directory and end with a /"));
}

#[test]
fn directories_give_their_contents() {
    let t = context();
    let r = t.path();
    assert_eq!(
        run(r, None, &["dir/"], "/app").unwrap(),
        pairs(&[
            ("dir", "/app"),
            ("dir/.hidden", "/app/.hidden"),
            ("dir/sub", "/app/sub"),
            ("dir/sub/y", "/app/sub/y"),
            ("dir/x", "/app/x"),
        ])
    );
    // the whole context
    let all = run(r, None, &["."], "/c/").unwrap();
    assert_eq!(all[0], (".".to_string(), "/c".to_string()));
    assert!(all.contains(&("dir/sub/y".into(), "/c/dir/sub/y".into())));
    assert!(
        all.contains(&("link-out".into(), "/c/link-out".into())),
        "symlinks inside stay symlinks"
    );
}

#[test]
fn wildcards_match_per_component_in_name_order() {
    let t = context();
    let r = t.path();
    assert_eq!(
        run(r, None, &["*.txt"], "/d/").unwrap(),
        pairs(&[
            ("a.txt", "/d/a.txt"),
            ("arr[0].txt", "/d/arr[0].txt"),
            ("b.txt", "/d/b.txt")
        ])
    );
    assert_eq!(
        run(r, None, &["index.?s"], "/d/").unwrap(),
        pairs(&[("index.js", "/d/index.js"), ("index.ts", "/d/index.ts")])
    );
    assert_eq!(
        run(r, None, &["arr[[]0].txt"], "/d/").unwrap(),
        pairs(&[("arr[0].txt", "/d/arr[0].txt")])
    );
    assert_eq!(
        run(r, None, &["d*/s*/y"], "/d/").unwrap(),
        pairs(&[("dir/sub/y", "/d/y")])
    );
    // one match may go to a file name
    assert_eq!(run(r, None, &["b.t?t"], "/f").unwrap(), pairs(&[("b.txt", "/f")]));
    assert!(matches!(
        run(r, None, &["*.none"], "/d/").unwrap_err(),
        CopyError::NoSources
    ));
    assert!(matches!(
        run(r, None, &["*.txt"], "/d").unwrap_err(),
        CopyError::DestinationNotDirectory
    ));
    assert!(matches!(
        run(r, None, &["[.txt"], "/d/").unwrap_err(),
        CopyError::BadPattern(_)
    ));
}

#[test]
fn dockerignore_leaves_entries_out() {
    let t = context();
    let r = t.path();
    let ig = DockerIgnore::parse("skip\ndir/sub\n*.ts\n").unwrap();
    let e = run(r, Some(&ig), &["skip/s"], "/d/").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("file not found in build context or excluded by .dockerignore"),
        "{e}"
    );
    assert_eq!(
        run(r, Some(&ig), &["index.*"], "/d/").unwrap(),
        pairs(&[("index.js", "/d/index.js")])
    );
    let all = run(r, Some(&ig), &["."], "/c/").unwrap();
    assert!(
        !all.iter()
            .any(|(s, _)| s.starts_with("skip") || s.starts_with("dir/sub")),
        "{all:?}"
    );
    assert!(all.contains(&("dir/x".into(), "/c/dir/x".into())));
    // an exception inside an excluded directory still comes
    let ig = DockerIgnore::parse("dir\n!dir/sub/y\n").unwrap();
    let all = run(r, Some(&ig), &["."], "/c/").unwrap();
    assert!(all.contains(&("dir/sub/y".into(), "/c/dir/sub/y".into())), "{all:?}");
    assert!(!all.iter().any(|(s, _)| s == "dir/x"), "{all:?}");
}

#[test]
fn sources_stay_inside_the_context() {
    let t = context();
    let r = t.path();
    for bad in ["../x", "a/../../x", "..", "./../etc"] {
        let e = run(r, None, &[bad], "/d/").unwrap_err();
        assert!(matches!(e, CopyError::OutsideContext(_)), "{bad}: {e}");
        assert!(e.to_string().contains("outside the build context"), "{e}");
    }
    assert!(matches!(
        run(r, None, &["missing"], "/d/").unwrap_err(),
        CopyError::NotFound(_)
    ));
}

#[test]
fn a_symlink_source_is_followed_inside_the_context() {
    let t = context();
    let r = t.path();
    // to a file: the file's content under the link's name
    assert_eq!(
        run(r, None, &["link-to-a"], "/d/").unwrap(),
        pairs(&[("a.txt", "/d/link-to-a")])
    );
    // to a directory: its contents
    let d = run(r, None, &["dirlink"], "/app").unwrap();
    assert_eq!(d[0], ("dir".to_string(), "/app".to_string()));
    assert!(d.contains(&("dir/x".into(), "/app/x".into())));
    // climbing out resolves at the context root, never to the host's /etc/passwd
    let e = run(r, None, &["link-out"], "/d/").unwrap_err();
    assert!(matches!(e, CopyError::NotFound(_)), "{e}");
    std::fs::create_dir(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/passwd"), "context's").unwrap();
    assert_eq!(
        run(r, None, &["link-out"], "/d/").unwrap(),
        pairs(&[("etc/passwd", "/d/link-out")])
    );
    // a loop is an error, not a hang
    symlink("loop-b", r.join("loop-a")).unwrap();
    symlink("loop-a", r.join("loop-b")).unwrap();
    assert!(matches!(
        run(r, None, &["loop-a"], "/d/").unwrap_err(),
        CopyError::SymlinkLoop(_)
    ));
}

#[test]
fn the_content_digest_follows_content_not_times() {
    let t = context();
    let r = t.path();
    let ctx = Context { root: r, ignore: None };
    let items = plan(&ctx, &["dir".to_string()], "/app", "/", &|_| false).unwrap();
    let a = content_digest(r, &items).unwrap();
    // a new mtime alone changes nothing
    let f = std::fs::File::options().write(true).open(r.join("dir/x")).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(content_digest(r, &items).unwrap(), a);
    std::fs::write(r.join("dir/x"), "changed").unwrap();
    assert_ne!(content_digest(r, &items).unwrap(), a);
}

fn run_flags(
    root: &Path,
    ignore: Option<&DockerIgnore>,
    srcs: &[&str],
    dest: &str,
    flags: &CopyFlags,
) -> Result<Vec<(String, String)>, CopyError> {
    let ctx = Context { root, ignore };
    let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
    plan_with(&ctx, &srcs, dest, "/work", &|_| false, flags)
        .map(|items| items.into_iter().map(|i| (i.src, i.dest)).collect())
}

fn excluding(patterns: &[&str]) -> CopyFlags {
    let p: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
    CopyFlags {
        exclude: exclude_patterns(&p).unwrap(),
        parents: false,
    }
}

fn dests(v: &[(String, String)]) -> Vec<&str> {
    v.iter().map(|(_, d)| d.as_str()).collect()
}

#[test]
fn exclude_leaves_out_matches_relative_to_each_source() {
    let t = context();
    let r = t.path();
    // wildcard matches are excluded by their path relative to the wildcard's directory
    let got = run_flags(r, None, &["*.txt", "index.*"], "/d/", &excluding(&["a*", "*.ts"])).unwrap();
    assert_eq!(dests(&got), ["/d/b.txt", "/d/index.js"]);
    // a directory's contents are matched relative to it; `*` is one level, `**` any
    let got = run_flags(r, None, &["dir"], "/app/", &excluding(&["x"])).unwrap();
    assert_eq!(dests(&got), ["/app", "/app/.hidden", "/app/sub", "/app/sub/y"]);
    let got = run_flags(r, None, &["dir"], "/app/", &excluding(&["y"])).unwrap();
    assert!(dests(&got).contains(&"/app/sub/y"), "{got:?}");
    let got = run_flags(r, None, &["dir"], "/app/", &excluding(&["**/y"])).unwrap();
    assert!(!dests(&got).contains(&"/app/sub/y"), "{got:?}");
    // an excluded directory takes its contents with it, unless an exception brings some back
    let got = run_flags(r, None, &["."], "/c/", &excluding(&["dir", "skip/*"])).unwrap();
    assert!(!got.iter().any(|(s, _)| s == "dir" || s.starts_with("dir/")), "{got:?}");
    assert!(
        dests(&got).contains(&"/c/skip") && !dests(&got).contains(&"/c/skip/s"),
        "{got:?}"
    );
    let got = run_flags(r, None, &["."], "/c/", &excluding(&["dir", "!dir/sub/y"])).unwrap();
    assert!(dests(&got).contains(&"/c/dir/sub/y"), "{got:?}");
    assert!(!dests(&got).contains(&"/c/dir/x"), "{got:?}");
    // a source named plainly is taken; one whose every match is excluded gives nothing
    let got = run_flags(r, None, &["a.txt"], "/d/", &excluding(&["*"])).unwrap();
    assert_eq!(dests(&got), ["/d/a.txt"]);
    assert_eq!(
        run_flags(r, None, &["*.txt"], "/d/", &excluding(&["*"])).unwrap(),
        vec![]
    );
    // with .dockerignore too
    let ig = DockerIgnore::parse("dir/x\n").unwrap();
    let got = run_flags(r, Some(&ig), &["dir"], "/app/", &excluding(&["sub"])).unwrap();
    assert_eq!(dests(&got), ["/app", "/app/.hidden"]);
    // malformed patterns are refused, naming the pattern
    for bad in ["[", "", "#x"] {
        let e = exclude_patterns(&[bad.to_string()]).unwrap_err();
        assert!(matches!(e, CopyError::BadExclude { .. }), "{bad}: {e}");
        assert!(e.to_string().contains("--exclude"), "{e}");
    }
    assert!(exclude_patterns(&[]).unwrap().is_none());
}

/// A context for --parents: x/a.txt, x/b.md, y/a.txt, a/b/f.txt, a/b/g.md, src/a.txt, src/x/b.txt,
/// src/x/y/c.txt, src/x/y/d.md.
fn parents_context() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for f in [
        "x/a.txt",
        "x/b.md",
        "y/a.txt",
        "a/b/f.txt",
        "a/b/g.md",
        "src/a.txt",
        "src/x/b.txt",
        "src/x/y/c.txt",
        "src/x/y/d.md",
    ] {
        let p = t.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f).unwrap();
    }
    t
}

fn parents(exclude: &[&str]) -> CopyFlags {
    CopyFlags {
        parents: true,
        ..excluding(exclude)
    }
}

#[test]
fn parents_keep_the_path_relative_to_the_context() {
    let t = parents_context();
    let r = t.path();
    // the reference's example, and its plain-COPY counterpart
    let got = run_flags(r, None, &["./x/a.txt", "./y/a.txt"], "/parents/", &parents(&[])).unwrap();
    assert_eq!(
        got,
        pairs(&[
            ("x", "/parents/x"),
            ("x/a.txt", "/parents/x/a.txt"),
            ("y", "/parents/y"),
            ("y/a.txt", "/parents/y/a.txt"),
        ])
    );
    let got = run_flags(
        r,
        None,
        &["./x/a.txt", "./y/a.txt"],
        "/no_parents/",
        &CopyFlags::default(),
    )
    .unwrap();
    assert_eq!(dests(&got), ["/no_parents/a.txt", "/no_parents/a.txt"]);
    // wildcards, each parent directory once; the destination is a directory even without a slash
    let got = run_flags(r, None, &["a/b/f.txt", "x/*.txt"], "/dst/", &parents(&[])).unwrap();
    assert_eq!(
        dests(&got),
        ["/dst/a", "/dst/a/b", "/dst/a/b/f.txt", "/dst/x", "/dst/x/a.txt"]
    );
    let got = run_flags(r, None, &["a/b/f.txt"], "/dst", &parents(&[])).unwrap();
    assert_eq!(dests(&got), ["/dst/a", "/dst/a/b", "/dst/a/b/f.txt"]);
    assert!(matches!(
        run_flags(r, None, &["a/b/f.txt", "x/a.txt"], "/dst", &parents(&[])).unwrap_err(),
        CopyError::DestinationNotDirectory
    ));
    // a directory comes whole, under its own path
    let got = run_flags(r, None, &["a/b"], "/d/", &parents(&[])).unwrap();
    assert_eq!(dests(&got), ["/d/a", "/d/a/b", "/d/a/b/f.txt", "/d/a/b/g.md"]);
    // `**` is any number of directories, none included
    let got = run_flags(r, None, &["./src/**/*.txt"], "/p/", &parents(&[])).unwrap();
    let files: Vec<&str> = dests(&got).into_iter().filter(|d| d.ends_with(".txt")).collect();
    assert_eq!(files, ["/p/src/a.txt", "/p/src/x/b.txt", "/p/src/x/y/c.txt"]);
    assert!(!dests(&got).contains(&"/p/src/x/y/d.md"), "{got:?}");
    // relative to WORKDIR
    let got = run_flags(r, None, &["x/a.txt"], "rel/", &parents(&[])).unwrap();
    assert_eq!(dests(&got), ["/work/rel/x", "/work/rel/x/a.txt"]);
    // misses: a plain path, a wildcard, and out of the context
    assert!(matches!(
        run_flags(r, None, &["x/none"], "/d/", &parents(&[])).unwrap_err(),
        CopyError::NotFound(_)
    ));
    assert!(matches!(
        run_flags(r, None, &["x/*.none"], "/d/", &parents(&[])).unwrap_err(),
        CopyError::NoSources
    ));
    for bad in ["../x", "./a/./../../x", "../../a/./b"] {
        let e = run_flags(r, None, &[bad], "/d/", &parents(&[])).unwrap_err();
        assert!(matches!(e, CopyError::OutsideContext(_)), "{bad}: {e}");
    }
}

#[test]
fn a_pivot_limits_the_parents_kept() {
    let t = parents_context();
    let r = t.path();
    let got = run_flags(r, None, &["./a/./b/f.txt"], "/dst/", &parents(&[])).unwrap();
    assert_eq!(got, pairs(&[("a/b", "/dst/b"), ("a/b/f.txt", "/dst/b/f.txt")]));
    let got = run_flags(r, None, &["./src/./x/y/*.txt"], "/p/", &parents(&[])).unwrap();
    assert_eq!(dests(&got), ["/p/x", "/p/x/y", "/p/x/y/c.txt"]);
    // the pivot's whole contents; exclusions relative to the pivot
    let got = run_flags(r, None, &["src/./"], "/all/", &parents(&["x/y"])).unwrap();
    assert_eq!(dests(&got), ["/all/a.txt", "/all/x", "/all/x/b.txt"]);
    let got = run_flags(r, None, &["./src/./**/*.txt"], "/p/", &parents(&["**/c.txt"])).unwrap();
    let files: Vec<&str> = dests(&got).into_iter().filter(|d| d.ends_with(".txt")).collect();
    assert_eq!(files, ["/p/a.txt", "/p/x/b.txt"]);
    // a pivot that is not a directory of the context matches nothing
    assert!(matches!(
        run_flags(r, None, &["./nope/./f"], "/d/", &parents(&[])).unwrap_err(),
        CopyError::NotFound(_)
    ));
}

#[test]
fn symlinks_on_the_way_to_a_source_stay_in_the_context() {
    let t = context();
    let r = t.path();
    // through a link to a directory of the context
    assert_eq!(
        run(r, None, &["dirlink/x"], "/d/").unwrap(),
        pairs(&[("dir/x", "/d/x")])
    );
    // an absolute link resolves at the context root, never on the host
    symlink("/etc", r.join("hostetc")).unwrap();
    assert!(matches!(
        run(r, None, &["hostetc/passwd"], "/d/").unwrap_err(),
        CopyError::NotFound(_)
    ));
    std::fs::create_dir(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/passwd"), "context's").unwrap();
    assert_eq!(
        run(r, None, &["hostetc/passwd"], "/d/").unwrap(),
        pairs(&[("etc/passwd", "/d/passwd")])
    );
}
