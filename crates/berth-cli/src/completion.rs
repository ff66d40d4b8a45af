//! Shell completion: the scripts `berth completion SHELL` prints, the `COMPLETE=SHELL berth -- …`
//! entry those scripts call back into (clap_complete's dynamic completion), and the completers that
//! ask the daemon for container, image, network and volume names.
//!
//! A completer runs while the user presses TAB: it never starts `berthd`, gives up after a short
//! timeout, and prints nothing but candidates (any failure is just "no candidates").

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use berth_client::{Client, Filters, Host};
use clap::CommandFactory;
use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};
use clap_complete::env::{Bash, CompleteEnv, EnvCompleter, Fish, Shells, Zsh};
use serde_json::Value;

use crate::args::{Cli, CompletionArgs, CompletionShell};
use crate::connect::ConnectOpts;

/// The environment variable that turns a `berth` run into a completion request.
const COMPLETE_VAR: &str = "COMPLETE";

/// How long a completer waits for the daemon before offering nothing.
const DAEMON_TIMEOUT: Duration = Duration::from_millis(1500);

/// The shells whose scripts call back into `berth` for candidates.
const SHELLS: Shells<'static> = Shells(&[&Bash, &Zsh, &Fish]);

/// Answers a completion request (`COMPLETE=bash berth -- berth start w`, or the registration script
/// for `COMPLETE=bash berth`) and exits; returns when `COMPLETE` is unset, for a normal run.
pub fn complete_from_env(args: &[OsString]) {
    let cwd = std::env::current_dir().ok();
    match CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .shells(SHELLS)
        .try_complete(args.iter().cloned(), cwd.as_deref())
    {
        Ok(false) => {}
        Ok(true) => std::process::exit(0),
        // Only registration can fail visibly (an unknown shell); a failed candidate list is
        // an empty one to the shell, so this message never lands in the middle of a command line.
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

/// `berth completion SHELL`: the script that registers dynamic completion for `prog` (`berth`, or
/// the name it was invoked as).
pub fn completion(a: CompletionArgs) -> anyhow::Result<i32> {
    let prog = crate::prog();
    let script = registration(a.shell, &prog)?;
    crate::write_out(&script);
    Ok(0)
}

/// The registration script for `shell`: completions for `prog`, computed by running `prog` (found
/// on PATH when completing, so the script stays valid wherever berth is installed).
fn registration(shell: CompletionShell, prog: &str) -> std::io::Result<String> {
    let name = Cli::command().get_name().to_string();
    let mut buf = Vec::new();
    let completer: &dyn EnvCompleter = match shell {
        CompletionShell::Bash => &Bash,
        CompletionShell::Zsh => &Zsh,
        CompletionShell::Fish => &Fish,
    };
    completer.write_registration(COMPLETE_VAR, &name, prog, prog, &mut buf)?;
    let mut script = String::from_utf8_lossy(&buf).into_owned();
    if shell == CompletionShell::Zsh {
        // Installed as `_berth` in $fpath, zsh autoloads the file as the function `_berth` on the
        // first TAB: complete then too, not only from the second TAB on.
        let function = format!("_clap_dynamic_completer_{}", name.replace('-', "_"));
        script.push_str(&format!(
            "\nif [[ ${{funcstack[1]-}} == _{prog} ]]; then\n    {function} \"$@\"\nfi\n"
        ));
    }
    Ok(script)
}

/// Which daemon objects a completer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

/// Completes container names (`start`, `stop`, `logs`, `exec`, ...).
pub fn containers(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(&[Kind::Container], current)
}

/// Completes `inspect`'s NAME|ID: containers and images, as docker's completion does by default.
pub fn containers_and_images(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(&[Kind::Container, Kind::Image], current)
}

/// Completes image references (`rmi`, `tag`, `push`, `history`, `save`, ...).
pub fn images(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(&[Kind::Image], current)
}

/// Completes network names (`network rm|inspect|connect|disconnect`).
pub fn networks(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(&[Kind::Network], current)
}

/// Completes context names (`--context`, `context use|rm|inspect|update`) from the client config
/// directory; no daemon is asked.
pub fn contexts(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut names = vec![crate::context::store::DEFAULT_CONTEXT.to_string()];
    if let Ok(s) = crate::context::store() {
        names.extend(s.list().unwrap_or_default().into_iter().map(|m| m.name));
    }
    names.sort();
    names
        .into_iter()
        .filter(|n| n.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// Completes volume names (`volume rm|inspect`).
pub fn volumes(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(&[Kind::Volume], current)
}

/// Completes `run`/`create`'s `IMAGE [COMMAND] [ARG...]`: image references for the first word
/// only (the command runs inside the container, so this host's files mean nothing there).
#[derive(Debug, Clone, Copy)]
pub struct ImageThenCommand;

impl ValueCompleter for ImageThenCommand {
    fn complete(&self, current: &OsStr) -> Vec<CompletionCandidate> {
        images(current)
    }

    fn complete_at(&self, arg_index: usize, current: &OsStr) -> Vec<CompletionCandidate> {
        // clap_complete 4.6 passes 0 for both the first and the second value of a positional that
        // takes many, so look at the line itself: the image is the first word after the flags.
        let process_args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
        let first = match line_before_cursor(&process_args) {
            Some(words) => positionals_after_run(&words).map_or(arg_index == 0, |n| n == 0),
            None => arg_index == 0,
        };
        if first {
            images(current)
        } else {
            Vec::new()
        }
    }
}

/// The words of the line being completed before the one under the cursor: those after the first
/// `--` of `berth -- berth run -d b`, up to `_CLAP_COMPLETE_INDEX` (bash, zsh) or the last (fish).
fn line_before_cursor(process_args: &[String]) -> Option<Vec<String>> {
    let start = process_args.iter().position(|a| a == "--")? + 1;
    let words = process_args.get(start..)?;
    let index = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse::<usize>().ok())
        .unwrap_or(words.len().saturating_sub(1));
    Some(words.get(..index.min(words.len()))?.to_vec())
}

/// How many positional words follow `run`/`create` in `words` (flags and their values skipped),
/// or `None` when the line has no such command.
fn positionals_after_run(words: &[String]) -> Option<usize> {
    let at = words.iter().position(|w| w == "run" || w == "create")?;
    let mut cmd = Cli::command();
    cmd.build();
    let sub = cmd.find_subcommand(&words[at])?;
    let takes_value = |a: &clap::Arg| a.get_num_args().is_some_and(|n| n.takes_values()) && !a.is_require_equals_set();
    // Whether the flag word `w` leaves its value to the next word.
    let value_follows = |w: &str| match w.strip_prefix("--") {
        Some(long) => {
            !long.contains('=')
                && sub.get_arguments().any(|a| {
                    (a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long)))
                        && takes_value(a)
                })
        }
        // A short cluster (`-it`, `-de`, `-eFOO`): the first letter that takes a value takes the
        // rest of the word, or the next word when it is the last letter.
        None => {
            let letters: Vec<char> = w.chars().skip(1).collect();
            letters
                .iter()
                .position(|c| sub.get_arguments().any(|a| a.get_short() == Some(*c) && takes_value(a)))
                .is_some_and(|i| i + 1 == letters.len())
        }
    };
    let mut rest = words[at + 1..].iter();
    while let Some(w) = rest.next() {
        if w == "--" {
            return Some(rest.len());
        }
        if w.starts_with('-') && w.len() > 1 {
            if value_follows(w) {
                rest.next();
            }
            continue;
        }
        // The image, and after it the container's command.
        return Some(1 + rest.len());
    }
    Some(0)
}

/// Completes `cp`'s SRC and DEST: `CONTAINER:` for the container names, and local paths.
pub fn container_or_path(current: &OsStr) -> Vec<CompletionCandidate> {
    let text = current.to_string_lossy();
    if text.contains(':') {
        // A path inside the container: the daemon has no cheap way to list it.
        return Vec::new();
    }
    let mut out: Vec<CompletionCandidate> = containers(current)
        .into_iter()
        .map(|c| CompletionCandidate::new(format!("{}:", c.get_value().to_string_lossy())).help(c.get_help().cloned()))
        .collect();
    out.extend(PathCompleter::any().complete(current));
    out
}

/// The daemon's names of `kinds` that start with `current`, sorted; nothing on any failure.
fn candidates(kinds: &[Kind], current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut names: Vec<(String, Option<String>)> = fetch(kinds)
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix.as_ref()))
        .collect();
    names.sort();
    names.dedup_by(|a, b| a.0 == b.0);
    names
        .into_iter()
        .map(|(n, help)| CompletionCandidate::new(n).help(help.map(Into::into)))
        .collect()
}

/// Lists `kinds` from the daemon the command line being completed would use (its `-H` or
/// `--context`, `BERTH_HOST`/`DOCKER_HOST`, `DOCKER_CONTEXT`, the current context); never starts
/// one, and waits at most [`DAEMON_TIMEOUT`] in all.
fn fetch(kinds: &[Kind]) -> Vec<(String, Option<String>)> {
    let words: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let opts = ConnectOpts {
        host: global_flag(&words, "-H", "--host"),
        context: global_flag(&words, "-c", "--context"),
        // Quietly: a completer prints nothing but candidates.
        current_context: crate::credentials::load_config()
            .ok()
            .and_then(|c| c.current_context().map(String::from)),
        ..ConnectOpts::default()
    };
    let Ok(ep) = opts.endpoint() else {
        return Vec::new();
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Vec::new();
    };
    let listed = rt.block_on(async {
        tokio::time::timeout(DAEMON_TIMEOUT, async {
            let mut client = match (&ep.tls, &ep.host) {
                (Some(tls), Host::Tcp(_)) => Client::with_tls(ep.host.clone(), tls).ok()?,
                _ => Client::new(ep.host.clone()),
            };
            match std::env::var("DOCKER_API_VERSION").ok().filter(|v| !v.is_empty()) {
                Some(v) => client.set_api_version(&v),
                None => {
                    client.negotiate().await.ok()?;
                }
            }
            let mut all = Vec::new();
            for kind in kinds {
                all.extend(list(&client, *kind).await?);
            }
            Some(all)
        })
        .await
        .ok()
        .flatten()
    });
    rt.shutdown_background();
    listed.unwrap_or_default()
}

/// One list request: the names (and a short description) of every object of `kind`.
async fn list(client: &Client, kind: Kind) -> Option<Vec<(String, Option<String>)>> {
    let none = Filters::new();
    Some(match kind {
        Kind::Container => container_names(&client.container_list(true, None, false, &none).await.ok()?),
        Kind::Image => image_names(&client.image_list(false, false, &none).await.ok()?),
        Kind::Network => object_names(&client.network_list(&none).await.ok()?, "Driver"),
        Kind::Volume => object_names(&client.volume_list(&none).await.ok()?.volumes, "Driver"),
    })
}

/// Container names from `GET /containers/json` (without the leading `/`; legacy link names such
/// as `/web/db` are left out, as docker's completion does), described by their image.
fn container_names(list: &[Value]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for c in list {
        let image = c["Image"].as_str().map(str::to_string);
        for n in c["Names"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let n = n.strip_prefix('/').unwrap_or(n);
            if !n.is_empty() && !n.contains('/') {
                out.push((n.to_string(), image.clone()));
            }
        }
    }
    out
}

/// Image references from `GET /images/json`: every `repo:tag` (untagged images have none).
fn image_names(list: &[Value]) -> Vec<(String, Option<String>)> {
    list.iter()
        .flat_map(|i| i["RepoTags"].as_array().into_iter().flatten().filter_map(Value::as_str))
        .filter(|t| *t != "<none>:<none>")
        .map(|t| (t.to_string(), None))
        .collect()
}

/// `Name` of each network or volume, described by `help_field` (their driver).
fn object_names(list: &[Value], help_field: &str) -> Vec<(String, Option<String>)> {
    list.iter()
        .filter_map(|o| {
            let name = o["Name"].as_str().filter(|n| !n.is_empty())?;
            Some((name.to_string(), o[help_field].as_str().map(str::to_string)))
        })
        .collect()
}

/// The value of the global flag `short`/`long` (`-H`/`--host`, `-c`/`--context`) given before the
/// subcommand on the command line being completed: the words after the first `--` of
/// `berth -- berth -H unix:///x start w` (clap_complete's protocol).
fn global_flag(process_args: &[String], short: &str, long: &str) -> Option<String> {
    let start = process_args.iter().position(|a| a == "--")? + 2;
    let mut words = process_args.get(start..)?.iter();
    let long_eq = format!("{long}=");
    let mut value = None;
    while let Some(w) = words.next() {
        if w == short || w == long {
            value = words.next().cloned();
        } else if let Some(v) = w.strip_prefix(&long_eq) {
            value = Some(v.to_string());
        } else if let Some(v) = w.strip_prefix(short).filter(|v| !v.is_empty() && !w.starts_with("--")) {
            value = Some(v.trim_start_matches('=').to_string());
        } else if matches!(
            w.as_str(),
            "-H" | "--host" | "-l" | "--log-level" | "--config" | "-c" | "--context"
        ) {
            words.next();
        } else if !w.starts_with('-') {
            // The subcommand: flags after it are its own.
            break;
        }
    }
    value.filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn host_from_the_completed_line() {
        let cases: &[(&str, Option<&str>)] = &[
            ("berth -- berth start w", None),
            ("berth -- berth -H unix:///x start w", Some("unix:///x")),
            ("berth -- berth --host=tcp://h:1 start", Some("tcp://h:1")),
            ("berth -- berth -Hunix:///y ps", Some("unix:///y")),
            ("berth -- berth -l debug --host unix:///z rm", Some("unix:///z")),
            // A flag of the subcommand is not the global one.
            ("berth -- berth start -H unix:///x w", None),
            ("berth start w", None),
        ];
        for (line, want) in cases {
            assert_eq!(global_flag(&words(line), "-H", "--host").as_deref(), *want, "{line}");
        }
        let cases: &[(&str, Option<&str>)] = &[
            ("berth -- berth --context lab ps", Some("lab")),
            ("berth -- berth -c lab start w", Some("lab")),
            ("berth -- berth --context=lab start w", Some("lab")),
            ("berth -- berth -H unix:///x -clab rm", Some("lab")),
            ("berth -- berth --config /d ps", None),
            ("berth -- berth ps --context lab", None),
        ];
        for (line, want) in cases {
            assert_eq!(global_flag(&words(line), "-c", "--context").as_deref(), *want, "{line}");
        }
    }

    #[test]
    fn image_position_of_run() {
        let cases: &[(&str, Option<usize>)] = &[
            ("berth run", Some(0)),
            ("berth run -d --rm", Some(0)),
            ("berth run --name web -e A=1 -v /x:/y", Some(0)),
            ("berth -H unix:///x container create -it --network=app", Some(0)),
            ("berth run -de X", Some(0)),
            ("berth run -eX", Some(0)),
            ("berth run --sig-proxy=false", Some(0)),
            ("berth run bb", Some(1)),
            ("berth run --name web bb sh", Some(2)),
            ("berth run -d bb", Some(1)),
            ("berth start", None),
        ];
        for (line, want) in cases {
            assert_eq!(positionals_after_run(&words(line)), *want, "{line}");
        }
        let args = words("berth -- berth run bb x");
        assert_eq!(line_before_cursor(&args), Some(words("berth run bb")));
    }

    #[test]
    fn names_from_list_answers() {
        let containers = json!([
            {"Names": ["/web1"], "Image": "bb"},
            {"Names": ["/db", "/web1/db"], "Image": "postgres"},
            {"Names": [], "Image": "x"}
        ]);
        let got = container_names(containers.as_array().map(Vec::as_slice).unwrap_or_default());
        assert_eq!(
            got,
            vec![
                ("web1".to_string(), Some("bb".to_string())),
                ("db".to_string(), Some("postgres".to_string()))
            ]
        );
        let images = json!([
            {"RepoTags": ["bb:latest", "bb:1"]},
            {"RepoTags": ["<none>:<none>"]},
            {"RepoTags": null}
        ]);
        let got: Vec<String> = image_names(images.as_array().map(Vec::as_slice).unwrap_or_default())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(got, vec!["bb:latest", "bb:1"]);
        let nets = json!([{"Name": "bridge", "Driver": "bridge"}, {"Name": ""}]);
        let got = object_names(nets.as_array().map(Vec::as_slice).unwrap_or_default(), "Driver");
        assert_eq!(got, vec![("bridge".to_string(), Some("bridge".to_string()))]);
    }

    #[test]
    fn no_daemon_means_no_candidates() {
        // A socket nobody listens on: completion offers nothing (and starts nothing).
        let dir = tempfile::tempdir().unwrap();
        let sock = format!("unix://{}/none.sock", dir.path().display());
        let host = Host::parse(&sock).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let mut c = Client::new(host);
            if c.negotiate().await.is_err() {
                return None;
            }
            list(&c, Kind::Container).await
        });
        assert!(got.is_none());
    }

    #[test]
    fn scripts_register_berth() {
        let bash = registration(CompletionShell::Bash, "berth").unwrap();
        assert!(bash.contains("complete -o nospace -o bashdefault -o nosort -F _clap_complete_berth berth"));
        assert!(bash.contains("COMPLETE=\"bash\""), "{bash}");
        let zsh = registration(CompletionShell::Zsh, "berth").unwrap();
        assert!(zsh.starts_with("#compdef berth"), "{zsh}");
        assert!(zsh.contains("== _berth ]]"));
        let fish = registration(CompletionShell::Fish, "berth").unwrap();
        assert!(fish.contains("--command berth"), "{fish}");
    }
}
