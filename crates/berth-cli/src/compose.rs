//! `berth compose`: loads the project with `berth_compose::loader`, acts through a
//! `berth_compose::stack::Stack`, and prints what Docker Compose v2 prints (its progress lines,
//! its `ps` table, its prefixed and coloured logs).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;
use berth_client::{Client, Filters, LogsOptions};
use berth_compose::loader::{self, LoadOptions, Project};
use berth_compose::model::Model;
use berth_compose::stack::{Action, Container, DownOptions, Event, Reporter, Stack, UpOptions};
use berth_compose::{convert, labels};
use serde_json::{json, Value};

use crate::args::*;
use crate::format::{ellipsis, go_quote};
use crate::{units, StatusError};

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// The project, loaded as the global flags say.
fn load(g: &ComposeArgs, services: &[String], interpolate: bool, resolve_paths: bool) -> Result<Project, StatusError> {
    try_load(g, services, interpolate, resolve_paths).map_err(fail)
}

fn try_load(
    g: &ComposeArgs,
    services: &[String],
    interpolate: bool,
    resolve_paths: bool,
) -> Result<Project, loader::LoadError> {
    let cwd = std::env::current_dir().map_err(|source| loader::LoadError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    let opts = LoadOptions {
        config_files: g.files.iter().map(PathBuf::from).collect(),
        project_directory: g.project_directory.as_ref().map(PathBuf::from),
        project_name: g.project_name.clone(),
        env_files: g.env_files.iter().map(PathBuf::from).collect(),
        profiles: g.profiles.clone(),
        environment: std::env::vars().collect(),
        working_dir: cwd,
        interpolate,
        resolve_paths,
        services: services.to_vec(),
    };
    let project = loader::load(&opts)?;
    for w in &project.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(project)
}

fn model_of(p: &Project) -> Result<Model, StatusError> {
    Model::from_json(&p.model).map_err(|e| fail(format!("reading the compose model: {e}")))
}

/// Draws a stack's steps as Compose v2 does: off a terminal every step as a plain line
/// (` Container p-web-1  Started`); on a terminal one line per object, redrawn in place under a
/// `[+] Running done/total` header, with a tick and the time taken once done; nothing with
/// `--progress quiet`.
pub struct Printer {
    tty: bool,
    quiet: bool,
    view: Mutex<View>,
}

/// The terminal view: the objects in the order they appeared, and how many lines are on screen.
#[derive(Default)]
struct View {
    lines: Vec<ViewLine>,
    drawn: usize,
}

struct ViewLine {
    kind: &'static str,
    name: String,
    status: String,
    done: bool,
    since: Instant,
    took: Option<f64>,
}

impl View {
    fn update(&mut self, e: &Event) {
        let now = Instant::now();
        match self
            .lines
            .iter_mut()
            .find(|l| l.kind == e.kind.word() && l.name == e.name)
        {
            Some(l) => {
                l.status = e.status.clone();
                l.done = e.done;
                l.took = e.done.then(|| now.duration_since(l.since).as_secs_f64());
            }
            None => self.lines.push(ViewLine {
                kind: e.kind.word(),
                name: e.name.clone(),
                status: e.status.clone(),
                done: e.done,
                since: now,
                took: e.done.then_some(0.0),
            }),
        }
    }

    /// The block, after moving up over the one drawn before.
    fn render(&mut self) -> String {
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let done = self.lines.iter().filter(|l| l.done).count();
        let colour = if done == self.lines.len() { "34" } else { "33" };
        out.push_str(&format!(
            "\x1b[2K\x1b[{colour}m[+] Running {done}/{}\x1b[0m\n",
            self.lines.len()
        ));
        let width = self
            .lines
            .iter()
            .map(|l| l.kind.len() + 1 + l.name.len())
            .max()
            .unwrap_or(0);
        for l in &self.lines {
            let what = format!("{} {}", l.kind, l.name);
            let padded = format!("{:<12}", l.status);
            let (mark, status) = if l.done {
                ("\x1b[32m✔\x1b[0m", format!("\x1b[32m{padded}\x1b[0m"))
            } else {
                ("\x1b[33m⠿\x1b[0m", padded)
            };
            let took = l.took.map(|t| format!("{t:>5.1}s")).unwrap_or_default();
            out.push_str(&format!("\x1b[2K {mark} {what:<width$}  {status} {took}\n"));
        }
        self.drawn = self.lines.len() + 1;
        out
    }
}

impl Printer {
    fn new(progress: &str) -> Self {
        let tty = match progress {
            "tty" => true,
            "plain" | "json" => false,
            _ => std::io::stderr().is_terminal(),
        };
        Printer {
            tty,
            quiet: progress == "quiet",
            view: Mutex::new(View::default()),
        }
    }
}

impl Reporter for Printer {
    fn event(&self, e: Event) {
        if self.quiet {
            return;
        }
        let Ok(mut view) = self.view.lock() else { return };
        let text = if self.tty {
            view.update(&e);
            view.render()
        } else {
            format!(" {} {}  {}\n", e.kind.word(), e.name, e.status)
        };
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    fn warn(&self, message: &str) {
        if self.quiet {
            return;
        }
        let Ok(mut view) = self.view.lock() else { return };
        // Above the view, which is drawn again below it (each of its lines is cleared as drawn).
        let mut text = String::new();
        if self.tty && view.drawn > 0 {
            text.push_str(&format!("\x1b[{}A\x1b[2K", view.drawn));
            view.drawn = 0;
        }
        text.push_str(&format!("WARN[0000] {message}\n"));
        if self.tty && !view.lines.is_empty() {
            text.push_str(&view.render());
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// The verbs that only act on the project's existing containers (no file needed with `-p`).
fn acts_on_existing(cmd: &ComposeCmd) -> bool {
    matches!(
        cmd,
        ComposeCmd::Down(_)
            | ComposeCmd::Ps(_)
            | ComposeCmd::Logs(_)
            | ComposeCmd::Stop(_)
            | ComposeCmd::Start(_)
            | ComposeCmd::Restart(_)
            | ComposeCmd::Kill(_)
            | ComposeCmd::Rm(_)
            | ComposeCmd::Pause(_)
            | ComposeCmd::Unpause(_)
            | ComposeCmd::Top(_)
            | ComposeCmd::Events(_)
    )
}

/// Whether the command needs no daemon (`config`, `version`).
pub fn is_offline(g: &ComposeArgs) -> bool {
    matches!(g.cmd, ComposeCmd::Config(_) | ComposeCmd::Version(_))
}

/// Runs `config` and `version`, which work without a daemon.
pub fn compose_offline(g: ComposeArgs) -> Result<i32> {
    match &g.cmd {
        ComposeCmd::Config(a) => config(&g, a),
        ComposeCmd::Version(a) => {
            if a.short {
                outln!("{}", labels::COMPOSE_VERSION);
            } else if a.format == "json" {
                outln!("{}", json!({"version": format!("v{}", labels::COMPOSE_VERSION)}));
            } else {
                outln!(
                    "berth compose version v{} (Docker Compose v2 compatible)",
                    labels::COMPOSE_VERSION
                );
            }
            Ok(0)
        }
        _ => Ok(0),
    }
}

/// Runs a compose command; the result is the exit code.
pub async fn compose(client: &Client, g: ComposeArgs) -> Result<i32> {
    let printer = Printer::new(&g.progress);
    match &g.cmd {
        ComposeCmd::Config(_) | ComposeCmd::Version(_) => compose_offline(g),
        ComposeCmd::Ls(a) => ls(client, a).await,
        cmd => {
            let named: Vec<String> = match cmd {
                ComposeCmd::Up(a) => a.services.clone(),
                ComposeCmd::Run(a) => vec![a.service.clone()],
                ComposeCmd::Create(a) => a.services.clone(),
                _ => Vec::new(),
            };
            let project = match try_load(&g, &named, true, true) {
                Ok(p) => p,
                // A project is its containers' labels: with -p and no file, the verbs that act on
                // what exists still work, as with Compose (`docker compose -p shop down`).
                Err(loader::LoadError::NotFound)
                    if acts_on_existing(&g.cmd) && g.project_name.as_deref().is_some_and(|n| !n.is_empty()) =>
                {
                    let name = g.project_name.clone().unwrap_or_default();
                    Project {
                        name: name.clone(),
                        working_dir: std::env::current_dir().unwrap_or_default(),
                        config_files: Vec::new(),
                        environment: BTreeMap::new(),
                        model: json!({ "name": name }),
                        disabled_services: Vec::new(),
                        warnings: Vec::new(),
                    }
                }
                Err(e) => return Err(fail(e).into()),
            };
            let model = model_of(&project)?;
            let stack = Stack {
                client,
                model: &model,
                working_dir: project.working_dir.display().to_string(),
                config_files: project
                    .config_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                environment: project.environment.clone(),
                reporter: &printer,
            };
            run_on_stack(client, &g, &stack).await
        }
    }
}

async fn run_on_stack(client: &Client, g: &ComposeArgs, stack: &Stack<'_>) -> Result<i32> {
    match &g.cmd {
        ComposeCmd::Up(a) => up(client, stack, a).await,
        ComposeCmd::Create(a) => {
            let up_args = UpArgs {
                build: a.build,
                force_recreate: a.force_recreate,
                no_recreate: a.no_recreate,
                remove_orphans: a.remove_orphans,
                scale: a.scale.clone(),
                no_start: true,
                detach: true,
                services: a.services.clone(),
                ..Default::default()
            };
            up(client, stack, &up_args).await
        }
        ComposeCmd::Down(a) => {
            let o = DownOptions {
                volumes: a.volumes,
                remove_orphans: a.remove_orphans,
                rmi: a.rmi.clone(),
                timeout: a.timeout,
            };
            stack.down(&o).await.map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Ps(a) => ps(stack, a).await,
        ComposeCmd::Logs(a) => {
            let containers = stack.select(&a.services, true).await.map_err(fail)?;
            let containers: Vec<Container> = containers
                .into_iter()
                .filter(|c| a.index.is_none_or(|i| c.number == i))
                .collect();
            let opts =
                crate::container::logs_options(a.follow, a.timestamps, &a.tail, a.since.as_deref(), a.until.as_deref());
            let style = LogStyle::new(stack.name(), &containers, a.no_color, a.no_log_prefix);
            follow_logs(client, &containers, &opts, &style).await;
            Ok(0)
        }
        ComposeCmd::Build(a) => {
            let services = if a.services.is_empty() {
                stack.model.services.keys().cloned().collect()
            } else {
                a.services.clone()
            };
            for s in services {
                if stack.model.services.get(&s).is_some_and(|svc| svc.build.is_some()) {
                    build_service(client, stack, &s, a.no_cache, a.pull, a.quiet, &a.build_args).await?;
                }
            }
            Ok(0)
        }
        ComposeCmd::Pull(a) => {
            let services = stack.services_in_order(&a.services, true).map_err(fail)?;
            let mut failed = false;
            for s in services {
                let svc = &stack.model.services[&s];
                let Some(image) = &svc.image else { continue };
                if a.ignore_buildable && svc.build.is_some() {
                    continue;
                }
                if let Err(e) = pull_image(client, image, a.quiet).await {
                    if !a.ignore_pull_failures {
                        return Err(e.into());
                    }
                    eprintln!("WARN[0000] {e}");
                    failed = true;
                }
            }
            Ok(i32::from(failed && !a.ignore_pull_failures))
        }
        ComposeCmd::Push(a) => {
            for s in stack.services_in_order(&a.services, true).map_err(fail)? {
                let svc = &stack.model.services[&s];
                if let Some(image) = &svc.image {
                    let args = PushArgs {
                        all_tags: false,
                        quiet: false,
                        disable_content_trust: true,
                        image: image.clone(),
                    };
                    crate::registry::push(client, args).await?;
                }
            }
            Ok(0)
        }
        ComposeCmd::Exec(a) => {
            let c = one_container(stack, &a.service, a.index).await?;
            let tty = !a.no_tty && (a.tty || std::io::stdin().is_terminal());
            let args = ExecArgs {
                detach: a.detach,
                detach_keys: None,
                env: a.env.clone(),
                env_file: Vec::new(),
                interactive: !a.detach,
                privileged: a.privileged,
                tty,
                user: a.user.clone(),
                workdir: a.workdir.clone(),
                container: c.id,
                command: a.command.clone(),
            };
            crate::container::exec(client, args).await
        }
        ComposeCmd::Run(a) => run(client, stack, a).await,
        ComposeCmd::Start(a) => {
            stack.start(&a.services).await.map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Stop(a) => {
            stack.stop(&a.services, a.timeout).await.map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Restart(a) => {
            stack.restart(&a.services, a.timeout).await.map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Kill(a) => {
            stack
                .each(
                    &a.services,
                    Action::Kill {
                        signal: Some(&a.signal),
                    },
                )
                .await
                .map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Pause(a) => {
            stack.each(&a.services, Action::Pause).await.map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Unpause(a) => {
            stack.each(&a.services, Action::Unpause).await.map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Rm(a) => {
            if a.stop {
                stack.stop(&a.services, None).await.map_err(fail)?;
            }
            let stopped: Vec<Container> = stack
                .select(&a.services, true)
                .await
                .map_err(fail)?
                .into_iter()
                .filter(|c| !c.is_running())
                .collect();
            if stopped.is_empty() {
                eprintln!("No stopped containers");
                return Ok(0);
            }
            if !a.force {
                let names: Vec<&str> = stopped.iter().map(|c| c.name.as_str()).collect();
                if !crate::term::confirm(&format!("Going to remove {}", names.join(", "))) {
                    return Ok(0);
                }
            }
            stack
                .each(&a.services, Action::Remove { volumes: a.volumes })
                .await
                .map_err(fail)?;
            Ok(0)
        }
        ComposeCmd::Top(a) => {
            for c in stack.select(&a.services, false).await.map_err(fail)? {
                let top = client.container_top(&c.id, None).await.map_err(fail)?;
                outln!("{}", c.name);
                let titles: Vec<String> = top["Titles"]
                    .as_array()
                    .map(|t| t.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect())
                    .unwrap_or_default();
                let mut text = titles.join("\t");
                text.push('\n');
                for p in top["Processes"].as_array().into_iter().flatten() {
                    let cells: Vec<&str> = p
                        .as_array()
                        .map(|r| r.iter().map(|v| v.as_str().unwrap_or_default()).collect())
                        .unwrap_or_default();
                    text.push_str(&cells.join("\t"));
                    text.push('\n');
                }
                crate::write_out(&crate::format::tabwrite(&text));
                outln!();
            }
            Ok(0)
        }
        ComposeCmd::Images(a) => images(client, stack, a).await,
        ComposeCmd::Port(a) => {
            let c = one_container(stack, &a.service, a.index).await?;
            let key = format!("{}/{}", a.private_port, a.protocol);
            let info = client.container_inspect(&c.id).await.map_err(fail)?;
            match info["NetworkSettings"]["Ports"][&key]
                .as_array()
                .and_then(|b| b.first())
            {
                Some(b) => {
                    outln!(
                        "{}:{}",
                        b["HostIp"].as_str().unwrap_or_default(),
                        b["HostPort"].as_str().unwrap_or_default()
                    );
                    Ok(0)
                }
                None => Err(fail(format!("no port {key} for container {}", c.name)).into()),
            }
        }
        ComposeCmd::Cp(a) => {
            let (src, dst) = (
                cp_endpoint(stack, &a.source, a.index).await?,
                cp_endpoint(stack, &a.destination, a.index).await?,
            );
            let args = CpArgs {
                archive: a.archive,
                follow_link: a.follow_link,
                quiet: true,
                src,
                dst,
            };
            crate::container::cp(client, args).await
        }
        ComposeCmd::Events(a) => events(client, stack, a).await,
        ComposeCmd::Wait(a) => {
            let containers = stack.select(&a.services, true).await.map_err(fail)?;
            let mut code = 0;
            for c in containers {
                let resp = client.container_wait(&c.id, "not-running").await.map_err(fail)?;
                let (status, _) = Client::wait_result(resp).await.map_err(fail)?;
                outln!("{status}");
                code = status as i32;
                if a.down_project {
                    stack.down(&DownOptions::default()).await.map_err(fail)?;
                    break;
                }
            }
            Ok(code)
        }
        ComposeCmd::Config(_) | ComposeCmd::Version(_) | ComposeCmd::Ls(_) => Ok(0),
    }
}

async fn cp_endpoint(stack: &Stack<'_>, arg: &str, index: Option<u32>) -> Result<String, StatusError> {
    match arg.split_once(':') {
        Some((svc, path)) if stack.model.services.contains_key(svc) => {
            let c = one_container(stack, svc, index.unwrap_or(1)).await?;
            Ok(format!("{}:{path}", c.id))
        }
        _ => Ok(arg.to_string()),
    }
}

/// The container `index` of a service (running or not).
async fn one_container(stack: &Stack<'_>, service: &str, index: u32) -> Result<Container, StatusError> {
    let containers = stack.select(&[service.to_string()], true).await.map_err(fail)?;
    containers
        .into_iter()
        .find(|c| c.number == index)
        .ok_or_else(|| fail(format!("service \"{service}\" is not running")))
}

/// `config`.
fn config(g: &ComposeArgs, a: &ConfigArgs) -> Result<i32> {
    let project = load(g, &a.service_names, !a.no_interpolate, !a.no_path_resolution)?;
    let m = &project.model;
    let keys = |section: &str| -> Vec<String> {
        m[section]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    if a.services {
        for s in keys("services") {
            outln!("{s}");
        }
        return Ok(0);
    }
    if a.volumes {
        for v in keys("volumes") {
            outln!("{v}");
        }
        return Ok(0);
    }
    if a.networks {
        for n in keys("networks") {
            outln!("{n}");
        }
        return Ok(0);
    }
    if a.profiles {
        let mut profiles = std::collections::BTreeSet::new();
        for svc in m["services"].as_object().into_iter().flat_map(|o| o.values()) {
            for p in svc["profiles"].as_array().into_iter().flatten() {
                if let Some(p) = p.as_str() {
                    profiles.insert(p.to_string());
                }
            }
        }
        for p in profiles {
            outln!("{p}");
        }
        return Ok(0);
    }
    if a.images {
        let model = model_of(&project)?;
        for (name, svc) in &model.services {
            outln!("{}", convert::image_name(&model.name, name, svc));
        }
        return Ok(0);
    }
    if a.quiet {
        return Ok(0);
    }
    let text = match a.format.as_str() {
        "json" => loader::to_json(m),
        "yaml" => loader::to_yaml(m),
        other => return Err(fail(format!("unsupported format {other:?}")).into()),
    };
    match &a.output {
        Some(path) => std::fs::write(path, text).map_err(|e| fail(format!("writing {path}: {e}")))?,
        None => crate::write_out(&text),
    }
    Ok(0)
}

/// Pulls one image, its progress on stderr as `compose pull` shows it.
async fn pull_image(client: &Client, image: &str, quiet: bool) -> Result<(), StatusError> {
    let reference = berth_types::Reference::parse(image).map_err(|e| fail(format!("image {image}: {e}")))?;
    let auth = crate::credentials::auth_for(reference.domain());
    let body = client
        .image_pull(&reference.repository(), reference.tag(), None, &auth)
        .await
        .map_err(fail)?;
    let target = if quiet {
        crate::progress::Target::Discard
    } else {
        crate::progress::Target::Stderr
    };
    crate::progress::display_stream(body, target, |_| {}).await
}

/// Builds one service's image with `berth build`'s machinery, tagged as the service's image.
async fn build_service(
    client: &Client,
    stack: &Stack<'_>,
    name: &str,
    no_cache: bool,
    pull: bool,
    quiet: bool,
    extra_args: &[String],
) -> Result<(), StatusError> {
    let svc = &stack.model.services[name];
    let Some(b) = &svc.build else { return Ok(()) };
    // What berth's builder does not do yet is said, not dropped silently.
    for key in ["cache_to", "additional_contexts", "platforms"] {
        let v = &svc.raw["build"][key];
        if !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()) && v.as_object().is_none_or(|o| !o.is_empty()) {
            eprintln!("WARN[0000] service \"{name}\": build.{key} is not supported by berth's builder yet; building without it");
        }
    }
    let context = b.context.clone().unwrap_or_else(|| ".".into());
    if !std::path::Path::new(&context).is_dir() {
        return Err(fail(format!(
            "service \"{name}\": build context {context} is not a directory (or does not exist)"
        )));
    }
    let dockerfile = b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
    // `dockerfile_inline`: the Dockerfile is the file's text, sent beside the context.
    let inline = match &b.dockerfile_inline {
        Some(text) => {
            let mut f = tempfile::Builder::new()
                .prefix("berth-compose-")
                .suffix(".Dockerfile")
                .tempfile()
                .map_err(|e| fail(format!("service \"{name}\": writing its inline Dockerfile: {e}")))?;
            f.write_all(text.as_bytes())
                .map_err(|e| fail(format!("service \"{name}\": writing its inline Dockerfile: {e}")))?;
            Some(f)
        }
        None => None,
    };
    let file = if let Some(f) = &inline {
        f.path().display().to_string()
    } else if std::path::Path::new(&dockerfile).is_absolute() {
        dockerfile
    } else {
        format!("{}/{dockerfile}", context.trim_end_matches('/'))
    };
    let mut build_args: Vec<String> = b
        .args
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    build_args.extend(extra_args.iter().cloned());
    let mut tags = vec![convert::image_name(stack.name(), name, svc)];
    tags.extend(b.tags.iter().cloned());
    let mut build_labels: Vec<String> = b.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    build_labels.push(format!("{}={}", labels::PROJECT, stack.name()));
    build_labels.push(format!("{}={name}", labels::SERVICE));
    let args = BuildArgs {
        tags,
        file: Some(file),
        build_args,
        labels: build_labels,
        target: b.target.clone(),
        network: b.network.clone().unwrap_or_else(|| "default".into()),
        no_cache: no_cache || b.no_cache,
        pull: pull || b.pull,
        cache_from: b.cache_from.clone(),
        secrets: Vec::new(),
        secret_values: build_secrets(stack, name, &svc.raw["build"]["secrets"])?,
        ssh: svc.raw["build"]["ssh"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default(),
        quiet,
        iidfile: None,
        platform: b.platform.clone().or_else(|| svc.platform.clone()),
        print_ast: None,
        context: Some(context),
    };
    crate::build::build_to(client, args, crate::progress::Target::Stderr)
        .await
        .map_err(|e| match e.downcast::<StatusError>() {
            Ok(s) => s,
            Err(e) => fail(format!("service \"{name}\" failed to build: {e}")),
        })?;
    Ok(())
}

/// A service's `build.secrets`, read: each is the project's secret `source` (a file or a variable
/// of the project's environment), sent under its `target` (else its source) as its id, as
/// Compose does.
fn build_secrets(
    stack: &Stack<'_>,
    service: &str,
    refs: &serde_json::Value,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, StatusError> {
    let mut out = std::collections::BTreeMap::new();
    for r in refs.as_array().into_iter().flatten() {
        // `- name`, or `- {source: name, target: id}`.
        let Some(source) = r.as_str().or_else(|| r["source"].as_str()) else {
            continue;
        };
        let id = r["target"].as_str().unwrap_or(source).to_string();
        let Some(obj) = stack.model.secrets.get(source) else {
            return Err(fail(format!(
                "service \"{service}\": build.secrets names {source}, which the project's secrets do not define"
            )));
        };
        let data = match (&obj.file, &obj.environment, &obj.content) {
            (Some(file), _, _) => std::fs::read(file)
                .map_err(|e| fail(format!("service \"{service}\": secret {source}: reading {file}: {e}")))?,
            (None, Some(var), _) => stack
                .environment
                .get(var)
                .cloned()
                .or_else(|| std::env::var(var).ok())
                .ok_or_else(|| {
                    fail(format!(
                        "service \"{service}\": secret {source}: the variable {var} is not set"
                    ))
                })?
                .into_bytes(),
            (None, None, Some(content)) => content.clone().into_bytes(),
            _ => {
                return Err(fail(format!(
                    "service \"{service}\": secret {source} has no file, environment or content to build with"
                )))
            }
        };
        out.insert(id, data);
    }
    Ok(out)
}

/// Builds what needs building and pulls what is missing before `up`/`run`.
async fn prepare_images(
    client: &Client,
    stack: &Stack<'_>,
    services: &[String],
    build: bool,
    no_build: bool,
    pull_policy: Option<&str>,
    quiet_pull: bool,
) -> Result<(), StatusError> {
    let missing = stack.missing_images(services).await.map_err(fail)?;
    for s in services {
        let svc = &stack.model.services[s];
        let policy = pull_policy.or(svc.pull_policy.as_deref()).unwrap_or("missing");
        let is_missing = missing.iter().any(|(m, _, _)| m == s);
        if svc.build.is_some() && !no_build && (build || policy == "build" || is_missing) {
            build_service(client, stack, s, false, false, quiet_pull, &[]).await?;
        } else if let Some(image) = &svc.image {
            if policy == "always" || (is_missing && policy != "never") {
                pull_image(client, image, quiet_pull).await?;
            } else if is_missing {
                return Err(fail(format!(
                    "service \"{s}\": image {image} is not here and pull_policy is never"
                )));
            }
        } else if is_missing {
            return Err(fail(format!(
                "service \"{s}\" has neither an image nor a build context specified"
            )));
        }
    }
    Ok(())
}

async fn up(client: &Client, stack: &Stack<'_>, a: &UpArgs) -> Result<i32> {
    let mut scale = BTreeMap::new();
    for s in &a.scale {
        let (svc, n) = s
            .split_once('=')
            .ok_or_else(|| fail(format!("invalid --scale {s:?}: want SERVICE=NUM")))?;
        let n: u32 = n
            .parse()
            .map_err(|_| fail(format!("invalid --scale {s:?}: want SERVICE=NUM")))?;
        scale.insert(svc.to_string(), n);
    }
    let order = stack.services_in_order(&a.services, a.no_deps).map_err(fail)?;
    prepare_images(
        client,
        stack,
        &order,
        a.build,
        a.no_build,
        a.pull.as_deref(),
        a.quiet_pull,
    )
    .await?;
    let o = UpOptions {
        services: a.services.clone(),
        no_deps: a.no_deps,
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        no_start: a.no_start,
        remove_orphans: a.remove_orphans,
        scale,
        wait: a.wait,
        wait_timeout: a.wait_timeout.map(std::time::Duration::from_secs),
        timeout: a.timeout,
    };
    stack.up(&o).await.map_err(fail)?;
    if a.detach || a.wait || a.no_start {
        return Ok(0);
    }
    // Attached: follow every container's output until they all stop (or one does, with
    // --abort-on-container-exit), stopping the project on Ctrl-C as Compose does.
    let containers = stack.select(&order, true).await.map_err(fail)?;
    let style = LogStyle::new(stack.name(), &containers, a.no_color, a.no_log_prefix);
    let names: Vec<&str> = containers.iter().map(|c| style.name(c)).collect();
    outln!("Attaching to {}", names.join(", "));
    let opts = crate::container::logs_options(true, false, "all", None, None);
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    let followers = containers.iter().map(|c| {
        let style = &style;
        let opts = &opts;
        async move {
            follow_one(client, c, opts, style).await;
            let code = match client.container_wait(&c.id, "not-running").await {
                Ok(resp) => Client::wait_result(resp).await.map(|r| r.0).unwrap_or(0),
                Err(_) => 0,
            };
            outln!("{} exited with code {code}", style.prefix_bare(c));
            (c.service.clone(), code)
        }
    });
    let mut pending: Vec<_> = followers.map(Box::pin).collect();
    let mut exit_code = 0;
    loop {
        if pending.is_empty() {
            break;
        }
        tokio::select! {
            (done, _, rest) = futures_util::future::select_all(pending) => {
                pending = rest;
                let (service, code) = done;
                if let Some(from) = &a.exit_code_from {
                    if &service == from {
                        exit_code = code as i32;
                    }
                }
                if abort {
                    outln!("Aborting on container exit...");
                    let _ = stack.stop(&[], a.timeout).await;
                    if a.exit_code_from.is_none() {
                        exit_code = code as i32;
                    }
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                // A second Ctrl-C kills instead of waiting for the stop timeout.
                tokio::select! {
                    r = stack.stop(&[], a.timeout) => { r.map_err(fail)?; }
                    _ = tokio::signal::ctrl_c() => {
                        stack.each(&[], Action::Kill { signal: Some("SIGKILL") }).await.map_err(fail)?;
                    }
                }
                return Ok(130);
            }
        }
    }
    Ok(exit_code)
}

/// `run`: a one-off container of a service, with its dependencies up first.
async fn run(client: &Client, stack: &Stack<'_>, a: &ComposeRunArgs) -> Result<i32> {
    let Some(svc) = stack.model.services.get(&a.service).cloned() else {
        return Err(fail(format!("no such service: {}", a.service)).into());
    };
    if !a.no_deps && !svc.depends_on.is_empty() {
        let deps: Vec<String> = svc
            .depends_on
            .keys()
            .filter(|d| stack.model.services.contains_key(*d))
            .cloned()
            .collect();
        let order = stack.services_in_order(&deps, false).map_err(fail)?;
        prepare_images(client, stack, &order, false, false, None, true).await?;
        let o = UpOptions {
            services: deps,
            ..Default::default()
        };
        stack.up(&o).await.map_err(fail)?;
    }
    prepare_images(
        client,
        stack,
        std::slice::from_ref(&a.service),
        a.build,
        false,
        None,
        a.quiet,
    )
    .await?;
    stack
        .ensure_resources(std::slice::from_ref(&a.service))
        .await
        .map_err(fail)?;
    let mut svc = svc;
    if !a.command.is_empty() {
        svc.command = Some(a.command.clone());
    }
    if let Some(e) = &a.entrypoint {
        svc.entrypoint = Some(shell_words(e));
    }
    if let Some(u) = &a.user {
        svc.user = Some(u.clone());
    }
    if let Some(w) = &a.workdir {
        svc.working_dir = Some(w.clone());
    }
    for e in &a.env {
        match e.split_once('=') {
            Some((k, v)) => svc.environment.insert(k.to_string(), Some(v.to_string())),
            None => svc.environment.insert(e.clone(), std::env::var(e).ok()),
        };
    }
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        svc.labels.insert(k.to_string(), v.to_string());
    }
    if !a.service_ports {
        svc.ports.clear();
    }
    for p in &a.publish {
        let (host, target) = p.rsplit_once(':').unwrap_or(("", p));
        let (target, proto) = target.split_once('/').unwrap_or((target, "tcp"));
        let target: u16 = target.parse().map_err(|_| fail(format!("invalid --publish {p:?}")))?;
        svc.ports.push(berth_compose::model::Port {
            target,
            published: (!host.is_empty()).then(|| berth_compose::model::StrOrNum::Str(host.to_string())),
            host_ip: None,
            protocol: Some(proto.to_string()),
            mode: None,
        });
    }
    for v in &a.volumes {
        let mut parts = v.splitn(3, ':');
        let (src, dst, mode) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
        let Some(dst) = dst else {
            return Err(fail(format!("invalid --volume {v:?}: want SRC:DST[:MODE]")).into());
        };
        svc.volumes.push(berth_compose::model::ServiceVolume {
            kind: "bind".into(),
            source: Some(src.to_string()),
            target: dst.to_string(),
            read_only: mode == Some("ro"),
            bind: Some(berth_compose::model::BindOptions {
                create_host_path: true,
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let tty = !a.no_tty && std::io::stdin().is_terminal() && !a.detach;
    svc.tty = tty;
    svc.stdin_open = a.interactive || tty || !a.detach;
    svc.restart = None;
    svc.container_name = None;
    // The normalised model no longer describes this copy: hash the copy itself.
    svc.raw = Value::Null;
    let suffix = &berth_types::new_id()[..12];
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-run-{suffix}", stack.name(), a.service));
    let hash = convert::config_hash(&svc);
    let (id, _) = stack
        .create_container(&a.service, &svc, 1, &hash, &BTreeMap::new(), true, Some(name.clone()))
        .await
        .map_err(fail)?;
    if a.detach {
        stack.start_container(&name, &id).await.map_err(fail)?;
        outln!("{name}");
        return Ok(0);
    }
    let start = StartArgs {
        attach: true,
        interactive: svc.stdin_open,
        detach_keys: None,
        containers: vec![id.clone()],
    };
    let code = crate::container::start(client, start).await;
    if a.rm {
        let _ = client.container_remove(&id, true, true).await;
    }
    code
}

/// `--entrypoint` split as a shell would (quotes kept together), as Compose does.
fn shell_words(s: &str) -> Vec<String> {
    shell_words::split(s).unwrap_or_else(|_| s.split_whitespace().map(str::to_string).collect())
}

/// `ps`: Compose v2's table (NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS) or JSON lines.
async fn ps(stack: &Stack<'_>, a: &ComposePsArgs) -> Result<i32> {
    if a.services {
        let mut names: Vec<String> = stack.model.services.keys().cloned().collect();
        if !a.service_names.is_empty() {
            names.retain(|n| a.service_names.contains(n));
        }
        for n in names {
            outln!("{n}");
        }
        return Ok(0);
    }
    let mut containers = stack.select(&a.service_names, true).await.map_err(fail)?;
    if a.all {
        containers.extend(stack.containers(true, true).await.map_err(fail)?);
    }
    let mut statuses = a.status.clone();
    if let Some(f) = &a.filter {
        if let Some(s) = f.strip_prefix("status=") {
            statuses.push(s.to_string());
        }
    }
    containers.retain(|c| {
        if !statuses.is_empty() {
            return statuses.contains(&c.state);
        }
        a.all || c.is_running()
    });
    if a.quiet {
        for c in &containers {
            outln!("{}", c.id);
        }
        return Ok(0);
    }
    let rows: Vec<Value> = containers
        .iter()
        .map(|c| {
            let s = &c.summary;
            let created = s["Created"].as_i64().unwrap_or(0);
            let cmd = s["Command"].as_str().unwrap_or_default();
            json!({
                "ID": c.id,
                "Name": c.name,
                "Image": s["Image"],
                "Command": if a.no_trunc { go_quote(cmd) } else { go_quote(&ellipsis(cmd, 20)) },
                "Project": stack.name(),
                "Service": c.service,
                "Created": created,
                "RunningFor": units::ago_unix(created),
                "State": c.state,
                "Status": s["Status"],
                "Health": s["Status"].as_str().and_then(|st| st.rsplit_once('(')).map(|(_, h)| h.trim_end_matches(')').to_string()).unwrap_or_default(),
                "ExitCode": 0,
                "Labels": s["Labels"],
                "Ports": crate::container::ps::display_ports(s["Ports"].as_array().map(Vec::as_slice).unwrap_or(&[])),
                "Publishers": s["Ports"],
            })
        })
        .collect();
    if a.format == "json" {
        for r in rows {
            outln!("{r}");
        }
        return Ok(0);
    }
    let mut text = String::from("NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS\n");
    for r in &rows {
        let cell = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            cell("Name"),
            cell("Image"),
            cell("Command"),
            cell("Service"),
            cell("RunningFor"),
            cell("Status"),
            cell("Ports")
        ));
    }
    crate::write_out(&crate::format::tabwrite(&text));
    Ok(0)
}

/// `images`: the images the project's containers use.
async fn images(client: &Client, stack: &Stack<'_>, a: &ComposeImagesArgs) -> Result<i32> {
    let containers = stack.select(&a.services, true).await.map_err(fail)?;
    let mut rows = Vec::new();
    for c in &containers {
        let image = c.summary["Image"].as_str().unwrap_or_default().to_string();
        let info: Value = match client.image_inspect_raw(&image).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let (repo, tag) = match image.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (image.clone(), "latest".to_string()),
        };
        let id = info["Id"].as_str().unwrap_or_default().to_string();
        rows.push((c.name.clone(), repo, tag, id, info["Size"].as_f64().unwrap_or(0.0)));
    }
    if a.quiet {
        let mut ids: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
        ids.dedup();
        for id in ids {
            outln!("{id}");
        }
        return Ok(0);
    }
    if a.format == "json" {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| json!({"ContainerName": r.0, "Repository": r.1, "Tag": r.2, "ID": r.3, "Size": r.4 as i64}))
            .collect();
        outln!("{}", Value::Array(v));
        return Ok(0);
    }
    let mut text = String::from("CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE\n");
    for r in rows {
        let id = r.3.trim_start_matches("sha256:");
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            r.0,
            r.1,
            r.2,
            id.get(..12).unwrap_or(id),
            units::human_size(r.4)
        ));
    }
    crate::write_out(&crate::format::tabwrite(&text));
    Ok(0)
}

/// `ls`: projects by their containers' labels.
async fn ls(client: &Client, a: &ComposeLsArgs) -> Result<i32> {
    let mut f = Filters::new();
    f.insert("label".into(), vec![labels::PROJECT.to_string()]);
    let list = client.container_list(true, None, false, &f).await.map_err(fail)?;
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for c in &list {
        let p = c["Labels"][labels::PROJECT].as_str().unwrap_or_default().to_string();
        let entry = projects.entry(p).or_default();
        *entry
            .0
            .entry(c["State"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
        if let Some(files) = c["Labels"][labels::CONFIG_FILES].as_str() {
            entry.1.insert(files.to_string());
        }
    }
    let mut rows = Vec::new();
    for (name, (states, files)) in projects {
        if !a.all && !states.contains_key("running") {
            continue;
        }
        let status: Vec<String> = states.iter().map(|(s, n)| format!("{s}({n})")).collect();
        let files: Vec<String> = files.into_iter().collect();
        rows.push((name, status.join(", "), files.join(",")));
    }
    if a.quiet {
        for r in rows {
            outln!("{}", r.0);
        }
        return Ok(0);
    }
    if a.format == "json" {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| json!({"Name": r.0, "Status": r.1, "ConfigFiles": r.2}))
            .collect();
        outln!("{}", Value::Array(v));
        return Ok(0);
    }
    let mut text = String::from("NAME\tSTATUS\tCONFIG FILES\n");
    for r in rows {
        text.push_str(&format!("{}\t{}\t{}\n", r.0, r.1, r.2));
    }
    crate::write_out(&crate::format::tabwrite(&text));
    Ok(0)
}

/// `events`: the engine's events for the project's containers, as Compose prints them.
async fn events(client: &Client, stack: &Stack<'_>, a: &ComposeEventsArgs) -> Result<i32> {
    let mut f = Filters::new();
    f.insert("label".into(), vec![format!("{}={}", labels::PROJECT, stack.name())]);
    f.insert("type".into(), vec!["container".into()]);
    let body = client.events(None, None, &f).await.map_err(fail)?;
    let mut msgs = berth_client::stream::JsonMessages::<_, Value>::of(body);
    while let Some(e) = msgs.next().await.map_err(fail)? {
        let attrs = &e["Actor"]["Attributes"];
        let service = attrs[labels::SERVICE].as_str().unwrap_or_default();
        if !a.services.is_empty() && !a.services.iter().any(|s| s == service) {
            continue;
        }
        let nanos = e["timeNano"].as_i64().unwrap_or(0);
        let time = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .unwrap_or_default();
        if a.json {
            outln!(
                "{}",
                json!({"time": time, "type": "container", "action": e["Action"], "id": e["Actor"]["ID"], "service": service, "attributes": attrs})
            );
        } else {
            outln!(
                "{time} container {} {} (image={}, name={})",
                e["Action"].as_str().unwrap_or_default(),
                e["Actor"]["ID"].as_str().unwrap_or_default(),
                attrs["image"].as_str().unwrap_or_default(),
                attrs["name"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(0)
}

/// How log lines are prefixed: `name  | ` padded to the longest name, coloured per container on a
/// terminal as Compose does.
struct LogStyle {
    width: usize,
    colour: bool,
    prefix: bool,
    colours: BTreeMap<String, &'static str>,
    names: BTreeMap<String, String>,
}

const COLOURS: [&str; 12] = [
    "36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1", "31", "31;1",
];

impl LogStyle {
    /// `project` is stripped from container names, as Compose shows them (`web-1`).
    fn new(project: &str, containers: &[Container], no_color: bool, no_prefix: bool) -> Self {
        let names: BTreeMap<String, String> = containers
            .iter()
            .map(|c| {
                let short = c.name.strip_prefix(&format!("{project}-")).unwrap_or(&c.name);
                (c.id.clone(), short.to_string())
            })
            .collect();
        let colours = containers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), COLOURS[i % COLOURS.len()]))
            .collect();
        LogStyle {
            width: names.values().map(String::len).max().unwrap_or(0),
            colour: !no_color && std::io::stdout().is_terminal(),
            prefix: !no_prefix,
            colours,
            names,
        }
    }

    fn name<'a>(&'a self, c: &'a Container) -> &'a str {
        self.names.get(&c.id).map(String::as_str).unwrap_or(&c.name)
    }

    fn paint(&self, c: &Container, text: &str) -> String {
        if self.colour {
            format!("\x1b[{}m{text}\x1b[0m", self.colours.get(&c.id).copied().unwrap_or("0"))
        } else {
            text.to_string()
        }
    }

    fn prefix_bare(&self, c: &Container) -> String {
        self.paint(c, self.name(c))
    }

    fn prefix(&self, c: &Container) -> String {
        if !self.prefix {
            return String::new();
        }
        self.paint(c, &format!("{:width$} | ", self.name(c), width = self.width))
    }
}

async fn follow_logs(client: &Client, containers: &[Container], opts: &LogsOptions, style: &LogStyle) {
    futures_util::future::join_all(containers.iter().map(|c| follow_one(client, c, opts, style))).await;
}

/// Copies one container's log stream, line by line with its prefix, to stdout.
async fn follow_one(client: &Client, c: &Container, opts: &LogsOptions, style: &LogStyle) {
    let tty = match client.container_inspect(&c.id).await {
        Ok(v) => v["Config"]["Tty"].as_bool().unwrap_or(false),
        Err(_) => return,
    };
    let Ok(mut body) = client.container_logs(&c.id, opts).await else {
        return;
    };
    let prefix = style.prefix(c);
    let mut pending = Vec::new();
    let mut buf = Vec::new();
    loop {
        let more = if tty {
            use tokio::io::AsyncReadExt;
            let mut chunk = vec![0u8; 16 * 1024];
            match body.read(&mut chunk).await {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    pending.extend_from_slice(&chunk[..n]);
                    true
                }
            }
        } else {
            match berth_client::stream::read_frame(&mut body, &mut buf).await {
                Ok(Some(_)) => {
                    pending.extend_from_slice(&buf);
                    true
                }
                _ => false,
            }
        };
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            crate::write_out(&format!("{prefix}{}\n", text.trim_end_matches(['\n', '\r'])));
        }
        if !more {
            if !pending.is_empty() {
                crate::write_out(&format!("{prefix}{}\n", String::from_utf8_lossy(&pending)));
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_compose::stack::Kind;

    fn ev(kind: Kind, name: &str, status: &str, done: bool) -> Event {
        Event {
            kind,
            name: name.into(),
            status: status.into(),
            done,
        }
    }

    #[test]
    fn the_terminal_view_redraws_one_line_per_object() {
        let mut v = View::default();
        v.update(&ev(Kind::Network, "p_default", "Creating", false));
        let first = v.render();
        assert!(!first.contains("\x1b[2A"), "{first:?}");
        assert!(first.contains("[+] Running 0/1"), "{first:?}");
        v.update(&ev(Kind::Network, "p_default", "Created", true));
        v.update(&ev(Kind::Container, "p-web-1", "Starting", false));
        let second = v.render();
        // Up over the header and the one line drawn before, then the header and two lines.
        assert!(second.starts_with("\x1b[2A"), "{second:?}");
        assert!(second.contains("[+] Running 1/2"), "{second:?}");
        assert_eq!(second.matches('\n').count(), 3, "{second:?}");
        assert!(
            second.contains("✔") && second.contains("Network p_default"),
            "{second:?}"
        );
        assert!(second.contains("Container p-web-1"), "{second:?}");
    }
}
