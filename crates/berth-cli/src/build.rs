//! `berth build`: packs the context (what `.dockerignore` leaves, plus the Dockerfile and
//! `.dockerignore` themselves, as docker's CLI sends them), sends it to `POST /build` and shows the
//! builder's stream (`--progress`: as docker prints it, or as a live view of the steps, see
//! `build_view`); `--print-ast` prints the parser's view of a Dockerfile instead.

use anyhow::Result;
use berth_client::{body, Client};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::args::{BuildArgs, BuildCmd, BuilderPruneArgs, ProgressMode};
use crate::progress::Target;
use crate::StatusError;

fn fail(msg: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, msg.to_string())
}

/// `berth build --print-ast FILE`: prints the parse as a JSON array, one instruction per line.
pub fn print_ast(a: BuildArgs) -> Result<i32> {
    let file = a.print_ast.as_deref().unwrap_or("-");
    let src = read_source(file)?;
    let df = berth_dockerfile::parse(&src).map_err(|e| fail(format!("{file}: {e}")))?;
    for w in &df.warnings {
        eprintln!("warning: {file}:{}: {}", w.line, w.message);
    }
    outln!("{}", render(&berth_dockerfile::ast_json(&df)));
    Ok(0)
}

/// `berth build [OPTIONS] PATH`.
pub async fn build(client: &Client, a: BuildCmd) -> Result<i32> {
    let progress = match a.progress {
        Some(p) => p,
        None => progress_from_env()?.unwrap_or_default(),
    };
    build_with(client, a.build, Target::Stdout, progress).await
}

/// A build whose output goes to `target` (compose draws builds on stderr, keeping stdout for the
/// containers), shown as `BUILDKIT_PROGRESS` says (`auto` when unset or not a mode).
pub async fn build_to(client: &Client, a: BuildArgs, target: Target) -> Result<i32> {
    let progress = progress_from_env().ok().flatten().unwrap_or_default();
    build_with(client, a, target, progress).await
}

/// `BUILDKIT_PROGRESS`, the default of `--progress` (docker's); empty is unset.
fn progress_from_env() -> Result<Option<ProgressMode>, StatusError> {
    match std::env::var("BUILDKIT_PROGRESS") {
        Ok(v) if !v.is_empty() => clap::ValueEnum::from_str(&v, false).map(Some).map_err(|_| {
            StatusError::new(
                125,
                format!("invalid value {v:?} of BUILDKIT_PROGRESS: it is one of auto, plain, tty, quiet"),
            )
        }),
        _ => Ok(None),
    }
}

async fn build_with(client: &Client, mut a: BuildArgs, target: Target, progress: ProgressMode) -> Result<i32> {
    if progress == ProgressMode::Quiet {
        a.quiet = true;
    }
    let Some(context) = a.context.clone() else {
        return Err(fail(
            "\"berth build\" requires exactly 1 argument: the build context (a directory, or - for a tar on stdin)",
        )
        .into());
    };
    let mut query: Vec<(&str, String)> = Vec::new();
    for t in &a.tags {
        berth_types::Reference::parse(t).map_err(|e| fail(format!("invalid tag {t:?}: {e}")))?;
        query.push(("t", t.clone()));
    }
    let mut build_args = serde_json::Map::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.into()),
            // `--build-arg NAME` takes the value from the environment, or leaves it unset.
            None => build_args.insert(
                b.clone(),
                std::env::var(b).ok().map_or(serde_json::Value::Null, Into::into),
            ),
        };
    }
    if !build_args.is_empty() {
        query.push(("buildargs", serde_json::Value::Object(build_args).to_string()));
    }
    let mut labels = serde_json::Map::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.into());
    }
    if !labels.is_empty() {
        query.push(("labels", serde_json::Value::Object(labels).to_string()));
    }
    if let Some(t) = &a.target {
        query.push(("target", t.clone()));
    }
    if let Some(p) = &a.platform {
        query.push(("platform", p.clone()));
    }
    if a.network != "default" {
        query.push(("networkmode", a.network.clone()));
    }
    if a.no_cache {
        query.push(("nocache", "1".into()));
    }
    if a.pull {
        query.push(("pull", "1".into()));
    }
    let ssh = crate::build_session::ssh_sockets(&a.ssh, &|k: &str| std::env::var(k).ok())?;
    if !ssh.is_empty() {
        query.push(("ssh", serde_json::json!(ssh).to_string()));
    }
    if !a.cache_from.is_empty() {
        query.push(("cachefrom", serde_json::json!(a.cache_from).to_string()));
    }
    if a.quiet {
        query.push(("q", "1".into()));
    }
    query.push(("rm", "1".into()));
    let body = if context == "-" {
        // A tar (plain or compressed) is the context; anything else is a Dockerfile without one,
        // as docker's CLI tells them apart.
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| fail(format!("reading the build context from stdin: {e}")))?;
        if looks_like_archive(&input) {
            if let Some(f) = &a.file {
                query.push(("dockerfile", f.clone()));
            }
            body::full(input)
        } else {
            query.push(("dockerfile", "Dockerfile".into()));
            body::full(single_file_tar("Dockerfile", &input)?)
        }
    } else {
        let dir = PathBuf::from(&context);
        let (spool, dockerfile) = tokio::task::spawn_blocking({
            let file = a.file.clone();
            move || pack_context(&dir, file.as_deref())
        })
        .await
        .map_err(fail)??;
        query.push(("dockerfile", dockerfile));
        body::from_reader(tokio::fs::File::from_std(spool))
    };
    // Every registry's credentials, as docker's CLI sends them: FROM may pull from any.
    let auths: std::collections::BTreeMap<_, _> = match crate::credentials::load_config() {
        Ok(c) => c
            .all()
            .into_iter()
            .map(|(k, a)| (k, crate::credentials::for_header(a)))
            .collect(),
        Err(e) => {
            eprintln!("WARNING! Error loading credentials: {e:#}");
            Default::default()
        }
    };
    let mut headers = vec![("X-Registry-Config", berth_credentials::registry_config_header(&auths))];
    let env = |k: &str| std::env::var(k).ok();
    let mut secrets = crate::build_session::read_secrets(&a.secrets, &env)?;
    secrets.extend(a.secret_values.clone());
    if !secrets.is_empty() {
        headers.push(("X-Berth-Build-Secrets", crate::build_session::secrets_header(&secrets)));
    }
    let resp = client.image_build(body, &query, &headers).await.map_err(fail)?;
    let mut id = String::new();
    let on_message = |m: &berth_client::stream::ProgressMessage| {
        if let Some(i) = m.aux.as_ref().and_then(|v| v.get("ID")).and_then(|v| v.as_str()) {
            id = i.to_string();
        }
    };
    let live = match progress {
        _ if a.quiet => false,
        ProgressMode::Tty => true,
        ProgressMode::Auto => target_is_terminal(target),
        ProgressMode::Plain | ProgressMode::Quiet => false,
    };
    if a.quiet {
        crate::progress::display_stream(resp, Target::Discard, on_message).await?;
    } else if live {
        crate::build_view::display(resp, target, on_message).await?;
    } else {
        crate::progress::display_stream(resp, target, on_message).await?;
    }
    if a.quiet {
        outln!("{id}");
    }
    if let Some(path) = &a.iidfile {
        std::fs::write(path, &id).map_err(|e| fail(format!("writing image ID file {path}: {e}")))?;
    }
    Ok(0)
}

/// Whether `target` is a terminal (`--progress=auto` draws the live view there).
fn target_is_terminal(target: Target) -> bool {
    use std::io::IsTerminal;
    match target {
        Target::Stdout => std::io::stdout().is_terminal(),
        Target::Stderr => std::io::stderr().is_terminal(),
        Target::Discard => false,
    }
}

/// `berth builder prune`: docker's prompt and report.
pub async fn prune(client: &Client, a: BuilderPruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !a.force && !crate::term::confirm(warning) {
        return Ok(0);
    }
    let report = client.build_prune().await.map_err(fail)?;
    let ids: Vec<String> = report["CachesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if !ids.is_empty() {
        let mut text = String::from("Deleted build cache objects:\n");
        for id in &ids {
            text.push_str(id.trim_start_matches("sha256:"));
            text.push('\n');
        }
        text.push('\n');
        crate::write_out(&text);
    }
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    crate::write_out(&crate::objects::reclaimed_line(space));
    Ok(0)
}

/// Whether `data` starts as a tar or a compressed stream (gzip, bzip2, xz, zstd).
fn looks_like_archive(data: &[u8]) -> bool {
    const MAGICS: [&[u8]; 4] = [
        &[0x1f, 0x8b],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    MAGICS.iter().any(|m| data.starts_with(m)) || data.get(257..262) == Some(b"ustar".as_slice())
}

/// A tar holding one file.
fn single_file_tar(name: &str, content: &[u8]) -> Result<Vec<u8>, StatusError> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    b.append_data(&mut h, name, content).map_err(fail)?;
    b.into_inner().map_err(fail)
}

/// The context directory as a tar in an unnamed temporary file, and the Dockerfile's name in it.
fn pack_context(dir: &Path, file: Option<&str>) -> Result<(std::fs::File, String), StatusError> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        fail(format!(
            "unable to prepare context: path {:?} not found: {e}",
            dir.display().to_string()
        ))
    })?;
    if !meta.is_dir() {
        return Err(fail(format!(
            "unable to prepare context: {} is not a directory",
            dir.display()
        )));
    }
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => {
            Some(berth_dockerfile::DockerIgnore::parse(&text).map_err(|e| fail(format!(".dockerignore: {e}")))?)
        }
        Err(_) => None,
    };
    // The Dockerfile: inside the context it goes by its relative name, outside it is added.
    let (dockerfile_rel, outside) = match file {
        None => ("Dockerfile".to_string(), None),
        Some(f) => {
            let p = if Path::new(f).is_absolute() {
                PathBuf::from(f)
            } else {
                std::env::current_dir().map_err(fail)?.join(f)
            };
            let root = std::fs::canonicalize(dir).map_err(fail)?;
            match std::fs::canonicalize(&p) {
                Ok(cp) => match cp.strip_prefix(&root) {
                    Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                    Err(_) => (".berth-dockerfile".to_string(), Some(cp)),
                },
                Err(e) => return Err(fail(format!("unable to prepare context: the Dockerfile {f}: {e}"))),
            }
        }
    };
    let tmp = std::env::temp_dir();
    let file = tempfile_in(&tmp)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.follow_symlinks(false);
    let keep = |rel: &str| rel == dockerfile_rel || rel == ".dockerignore";
    let mut stack = vec![String::new()];
    while let Some(rel_dir) = stack.pop() {
        let abs = if rel_dir.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(&rel_dir)
        };
        let mut names: Vec<String> = std::fs::read_dir(&abs)
            .map_err(|e| fail(format!("reading {}: {e}", abs.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        for name in names {
            let rel = if rel_dir.is_empty() {
                name.clone()
            } else {
                format!("{rel_dir}/{name}")
            };
            let path = dir.join(&rel);
            let m = std::fs::symlink_metadata(&path).map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
            let excluded = ignore.as_ref().is_some_and(|i| i.excluded(&rel)) && !keep(&rel);
            let exceptions = ignore.as_ref().is_some_and(|i| i.has_exceptions());
            if excluded && !(m.is_dir() && exceptions) {
                continue;
            }
            if !excluded {
                tar.append_path_with_name(&path, &rel)
                    .map_err(|e| fail(format!("adding {} to the context: {e}", path.display())))?;
            }
            if m.is_dir() {
                stack.push(rel);
            }
        }
    }
    if let Some(p) = outside {
        tar.append_path_with_name(&p, &dockerfile_rel)
            .map_err(|e| fail(format!("adding {} to the context: {e}", p.display())))?;
    }
    let mut file = tar
        .into_inner()
        .map_err(fail)?
        .into_inner()
        .map_err(|e| fail(e.into_error()))?;
    std::io::Seek::rewind(&mut file).map_err(fail)?;
    Ok((file, dockerfile_rel))
}

/// An unnamed temporary file (gone when closed).
fn tempfile_in(dir: &Path) -> Result<std::fs::File, StatusError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .map_err(|e| fail(format!("creating a temporary file in {}: {e}", dir.display())))
}

fn read_source(file: &str) -> Result<String> {
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|e| fail(format!("reading Dockerfile {file}: {e}")))?;
    String::from_utf8(bytes).map_err(|_| fail(format!("Dockerfile {file} is not UTF-8 text")).into())
}

/// The array with one instruction object per line.
fn render(ast: &serde_json::Value) -> String {
    match ast.as_array() {
        Some(items) if !items.is_empty() => {
            let lines: Vec<String> = items.iter().map(|i| i.to_string()).collect();
            format!("[\n{}\n]", lines.join(",\n"))
        }
        _ => ast.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instruction_per_line_and_valid_json() {
        let df = berth_dockerfile::parse("FROM bb AS base\nARG foo bar=baz\nRUN echo \\\n  hi\n").unwrap();
        let out = render(&berth_dockerfile::ast_json(&df));
        assert_eq!(out.lines().count(), 5, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["cmd"], "from");
        assert_eq!(v[1]["args"], serde_json::json!(["foo", null, "bar", "baz"]));
        assert_eq!(v[2]["line"], 3);
        assert_eq!(v[2]["json"], false);
    }

    #[test]
    fn the_context_leaves_out_what_dockerignore_says_but_keeps_the_dockerfile() {
        let t = tempfile::tempdir().unwrap();
        for (n, b) in [
            ("Dockerfile", "FROM x"),
            ("a.txt", "a"),
            ("logs/x.log", "l"),
            ("keep/y", "y"),
        ] {
            let p = t.path().join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        }
        std::fs::write(t.path().join(".dockerignore"), "logs\nDockerfile\n.dockerignore\n").unwrap();
        let (f, name) = pack_context(t.path(), None).unwrap();
        assert_eq!(name, "Dockerfile");
        let mut ar = tar::Archive::new(f);
        let mut names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "a.txt", "keep", "keep/y"]);
    }
}
