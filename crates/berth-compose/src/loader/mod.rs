//! Loading compose files the way Docker Compose v2 does, into the model `docker compose config
//! --format json` prints.
//!
//! The steps, in Compose's order: find the files (`-f`, `COMPOSE_FILE`, or `compose.yaml` and its
//! override found from the working directory up); read the `.env`; for each file, parse the YAML
//! (`yaml.rs`: anchors, merge keys, line numbers, `!reset`/`!override`), interpolate variables
//! (`interpolate.rs`), validate against the specification's schema (`schema.rs`), expand short
//! syntaxes (`canonical.rs`), apply same-file and cross-file `extends`, and merge it over the files
//! before it (`merge.rs`); then `include`s, the project name, profiles and the services named on the
//! command line, normalisation (`normalize.rs`), the consistency checks Compose makes, and the
//! removal of unused networks/volumes/secrets/configs. `output.rs` prints the result as Compose does.
//!
//! `Project::model` is Compose's model as JSON, with two differences from `config --format json`'s
//! text, both undone by [`to_json`]: strings hold their real values (Compose's output escapes `$` as
//! `$$`), and a service's `x-` keys are kept (Compose's JSON drops them, its YAML keeps them).

mod canonical;
mod dotenv;
mod error;
mod interpolate;
mod merge;
mod normalize;
mod output;
mod schema;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

pub use error::{LoadError, Location};
pub use output::{service_hash_input, to_json, to_yaml};

/// The file names Compose looks for, in its order of preference, with their override files.
const DEFAULT_FILES: &[(&str, &str)] = &[
    ("compose.yaml", "compose.override.yaml"),
    ("compose.yml", "compose.override.yml"),
    ("docker-compose.yaml", "docker-compose.override.yaml"),
    ("docker-compose.yml", "docker-compose.override.yml"),
];

/// What `docker compose` was told: files, directories, name, env files, profiles, environment.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `-f`, in order (`-` reads standard input); empty: `COMPOSE_FILE`, else discovery.
    pub config_files: Vec<PathBuf>,
    /// `--project-directory`; by default the directory of the first file.
    pub project_directory: Option<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file` (relative to `working_dir`); by default `<project dir>/.env` when present.
    pub env_files: Vec<PathBuf>,
    /// `--profile`; when empty, `COMPOSE_PROFILES` from the environment (a comma list). `*` is all.
    pub profiles: Vec<String>,
    /// The process environment.
    pub environment: BTreeMap<String, String>,
    /// The caller's current directory: relative `-f`/`--env-file` and discovery start here.
    pub working_dir: PathBuf,
    /// Interpolate variables (false for `config --no-interpolate`). Without interpolation the
    /// model is still expanded and normalised; Compose's `--no-interpolate` output also skips most
    /// of that (commands stay strings, lists stay lists): a known difference.
    pub interpolate: bool,
    /// Make relative paths absolute against the project directory.
    pub resolve_paths: bool,
    /// Services named on the command line: enabled whatever their profiles, with their
    /// dependencies; when not empty, the model holds only these and their dependencies.
    pub services: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            config_files: Vec::new(),
            project_directory: None,
            project_name: None,
            env_files: Vec::new(),
            profiles: Vec::new(),
            environment: BTreeMap::new(),
            working_dir: PathBuf::from("."),
            interpolate: true,
            resolve_paths: true,
            services: Vec::new(),
        }
    }
}

/// A loaded compose project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project name.
    pub name: String,
    /// The absolute project directory.
    pub working_dir: PathBuf,
    /// The absolute paths of the compose files loaded (the top-level ones, not includes).
    pub config_files: Vec<PathBuf>,
    /// The interpolation environment: the env files' variables under the process environment.
    pub environment: BTreeMap<String, String>,
    /// The normalised model (see the module docs for how it relates to Compose's JSON).
    pub model: Value,
    /// Services left out: by profiles, or because other services were named on the command line.
    pub disabled_services: Vec<String>,
    /// Warnings Compose prints on stderr (obsolete `version`, unset variables...).
    pub warnings: Vec<String>,
}

/// Where each key path was declared: file and line.
type Lines = BTreeMap<String, (PathBuf, usize)>;

fn locate_in(lines: &Lines, path: &str) -> Location {
    let mut p = path;
    loop {
        if let Some((file, line)) = lines.get(p) {
            return Location {
                file: Some(file.clone()),
                line: Some(*line),
                path: path.to_string(),
            };
        }
        match p.rfind('.') {
            Some(i) => p = &p[..i],
            None => {
                let file = lines.values().next().map(|(f, _)| f.clone());
                return Location {
                    file,
                    line: None,
                    path: path.to_string(),
                };
            }
        }
    }
}

/// The merged files before project-wide processing.
struct Raw {
    value: Value,
    lines: Lines,
    warnings: Vec<String>,
}

struct Loader<'o> {
    opts: &'o LoadOptions,
    /// Files being included, outermost first (include cycles).
    include_chain: Vec<PathBuf>,
}

fn absolute(p: &Path, base: &Path) -> PathBuf {
    if p.is_absolute() {
        normalize::clean(p)
    } else {
        normalize::clean(&base.join(p))
    }
}

fn read_file(path: &Path) -> Result<String, LoadError> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .take(yaml::MAX_FILE_SIZE as u64 + 1)
            .read_to_string(&mut s)
            .map_err(|source| LoadError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        return Ok(s);
    }
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > yaml::MAX_FILE_SIZE as u64 {
        return Err(LoadError::Yaml {
            at: Location {
                file: Some(path.to_path_buf()),
                line: None,
                path: String::new(),
            },
            message: format!("file is larger than {} MiB", yaml::MAX_FILE_SIZE / 1024 / 1024),
        });
    }
    std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads env files in order; later files win, and `lookup` (the process environment) resolves
/// variables they reference.
fn read_env_files(files: &[PathBuf], lookup: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, LoadError> {
    let mut out = BTreeMap::new();
    for f in files {
        let text = read_file(f)?;
        let mut scope = lookup.clone();
        scope.extend(out.clone());
        let vars = dotenv::parse(&text, &scope).map_err(|e| LoadError::Invalid {
            at: Location {
                file: Some(f.clone()),
                line: Some(e.line),
                path: String::new(),
            },
            message: e.message,
        })?;
        out.extend(vars);
    }
    Ok(out)
}

/// Finds `compose.yaml` (or its alternatives) in `dir` or the nearest parent, with its override.
fn discover(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        for (main, over) in DEFAULT_FILES {
            let f = d.join(main);
            if f.is_file() {
                let mut files = vec![f];
                let o = d.join(over);
                if o.is_file() {
                    files.push(o);
                }
                return Ok(files);
            }
        }
        cur = d.parent();
    }
    Err(LoadError::NotFound)
}

fn valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Compose's `NormalizeProjectName`: lowercase, only `[a-z0-9_-]`, no leading `_` or `-`.
pub fn normalize_project_name(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    s.trim_start_matches(['_', '-']).to_string()
}

impl<'o> Loader<'o> {
    /// Loads and merges `files` as one model, relative paths against `dir`.
    fn load_files(&mut self, files: &[PathBuf], dir: &Path, env: &BTreeMap<String, String>) -> Result<Raw, LoadError> {
        let mut raw = Raw {
            value: Value::Object(Map::new()),
            lines: Lines::new(),
            warnings: Vec::new(),
        };
        let mut any_doc = false;
        for file in files {
            let text = read_file(file)?;
            let docs = yaml::parse(&text, file)?;
            for doc in docs {
                if doc.value.is_null() {
                    continue;
                }
                any_doc = true;
                let (mut value, lines) = self.prepare(doc.value, &doc.lines, file, env, &mut raw.warnings)?;
                let mut doc_tags = doc.tags;
                // extends are resolved per file, before merging (as Compose does)
                self.apply_extends(&mut value, file, env, &lines, &mut raw.warnings)?;
                merge::apply_tags(&mut raw.value, &mut value, &doc_tags);
                doc_tags.clear();
                merge::merge(&mut raw.value, value, &mut Vec::new());
                merge::enforce_unicity(&mut raw.value, &mut Vec::new());
                raw.lines.extend(lines);
            }
        }
        if !any_doc {
            let at = Location {
                file: files.first().cloned(),
                line: None,
                path: String::new(),
            };
            return Err(LoadError::Invalid {
                at,
                message: "empty compose file".into(),
            });
        }
        self.apply_includes(&mut raw, dir, env)?;
        if self.opts.resolve_paths {
            if let Some(Value::Object(services)) = raw.value.get_mut("services") {
                for svc in services.values_mut() {
                    if let Value::Object(s) = svc {
                        normalize::resolve_service_paths(s, dir, env);
                    }
                }
            }
            normalize::resolve_resource_paths(&mut raw.value, dir, env);
        }
        Ok(raw)
    }

    /// One document: interpolated, validated and canonical, with its lines keyed to `file`.
    fn prepare(
        &self,
        mut value: Value,
        doc_lines: &BTreeMap<String, usize>,
        file: &Path,
        env: &BTreeMap<String, String>,
        warnings: &mut Vec<String>,
    ) -> Result<(Value, Lines), LoadError> {
        let lines: Lines = doc_lines
            .iter()
            .map(|(k, l)| (k.clone(), (file.to_path_buf(), *l)))
            .collect();
        if !value.is_object() {
            return Err(LoadError::Schema {
                at: Location {
                    file: Some(file.to_path_buf()),
                    line: Some(1),
                    path: String::new(),
                },
                message: "top-level object must be a mapping".into(),
            });
        }
        if let Some(Value::Object(top)) = Some(&mut value) {
            if top.remove("version").is_some() {
                warnings.push(format!(
                    "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
                    file.display()
                ));
            }
            if let Some(s) = top.get("services") {
                if !s.is_object() && !s.is_null() {
                    return Err(LoadError::Schema {
                        at: locate_in(&lines, "services"),
                        message: "services must be a mapping".into(),
                    });
                }
            }
        }
        if self.opts.interpolate {
            let mut interp = interpolate::Interpolator::new(env);
            interp
                .interpolate_value(&mut value, &mut Vec::new())
                .map_err(|(path, e)| LoadError::Interpolation {
                    at: locate_in(&lines, &path),
                    message: e.0,
                })?;
            for w in interp.warnings {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
        }
        schema::validate(&value).map_err(|v| {
            let mut at = match &v.key {
                Some(k) if v.path.is_empty() => locate_in(&lines, k),
                Some(k) => locate_in(&lines, &format!("{}.{k}", v.path)),
                None => locate_in(&lines, &v.path),
            };
            at.path = v.path.clone();
            LoadError::Schema { at, message: v.message }
        })?;
        canonical::canonicalize(&mut value).map_err(|(path, message)| LoadError::Invalid {
            at: locate_in(&lines, &path),
            message,
        })?;
        Ok((value, lines))
    }

    /// Resolves every service's `extends` in one file's document.
    fn apply_extends(
        &mut self,
        doc: &mut Value,
        file: &Path,
        env: &BTreeMap<String, String>,
        lines: &Lines,
        warnings: &mut Vec<String>,
    ) -> Result<(), LoadError> {
        let Some(Value::Object(services)) = doc.get("services") else {
            return Ok(());
        };
        let services = services.clone();
        let names: Vec<String> = services
            .iter()
            .filter(|(_, s)| s.get("extends").is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let mut stack = Vec::new();
            let resolved = self.extend_service(&services, &name, file, env, lines, &mut stack, warnings)?;
            doc["services"][name.as_str()] = Value::Object(resolved);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn extend_service(
        &mut self,
        services: &Map<String, Value>,
        name: &str,
        file: &Path,
        env: &BTreeMap<String, String>,
        lines: &Lines,
        stack: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Map<String, Value>, LoadError> {
        let at = || locate_in(lines, &format!("services.{name}.extends"));
        let key = format!("{}:{name}", file.display());
        if stack.contains(&key) {
            stack.push(key);
            let chain: Vec<String> = stack
                .iter()
                .map(|k| k.rsplit(':').next().unwrap_or(k).to_string())
                .collect();
            return Err(LoadError::Invalid {
                at: at(),
                message: format!("circular reference with extends: {}", chain.join(" -> ")),
            });
        }
        let Some(Value::Object(svc)) = services.get(name) else {
            return Err(LoadError::Invalid {
                at: at(),
                message: format!(
                    "cannot extend service {name:?} in {}: service not found",
                    file.display()
                ),
            });
        };
        let mut svc = svc.clone();
        let Some(ext) = svc.remove("extends") else {
            return Ok(svc);
        };
        stack.push(key);
        let target = ext
            .get("service")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut base = match ext.get("file").and_then(Value::as_str) {
            Some(f) => {
                let dir = file.parent().unwrap_or(Path::new("/"));
                let other = absolute(Path::new(f), dir);
                let text = read_file(&other)?;
                let mut docs = yaml::parse(&text, &other)?;
                if docs.is_empty() {
                    return Err(LoadError::Invalid {
                        at: at(),
                        message: format!("empty compose file {}", other.display()),
                    });
                }
                let doc = docs.remove(0);
                let (value, other_lines) = self.prepare(doc.value, &doc.lines, &other, env, warnings)?;
                let other_services = value
                    .get("services")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if !other_services.contains_key(&target) {
                    return Err(LoadError::Invalid {
                        at: at(),
                        message: format!(
                            "cannot extend service {name:?} in {}: service {target:?} not found",
                            other.display()
                        ),
                    });
                }
                let mut base =
                    self.extend_service(&other_services, &target, &other, env, &other_lines, stack, warnings)?;
                if self.opts.resolve_paths {
                    normalize::resolve_service_paths(&mut base, other.parent().unwrap_or(Path::new("/")), env);
                }
                base
            }
            None => {
                if !services.contains_key(&target) {
                    return Err(LoadError::Invalid {
                        at: at(),
                        message: format!(
                            "cannot extend service {name:?} in {}: service {target:?} not found",
                            file.display()
                        ),
                    });
                }
                self.extend_service(services, &target, file, env, lines, stack, warnings)?
            }
        };
        stack.pop();
        let mut merged = json!({"services": {name: Value::Object(std::mem::take(&mut base))}});
        merge::merge(
            &mut merged,
            json!({"services": {name: Value::Object(svc)}}),
            &mut Vec::new(),
        );
        merge::enforce_unicity(&mut merged, &mut Vec::new());
        match merged["services"].get_mut(name).map(Value::take) {
            Some(Value::Object(m)) => Ok(m),
            _ => Ok(Map::new()),
        }
    }

    /// Loads each `include` as its own project and copies its resources in.
    fn apply_includes(&mut self, raw: &mut Raw, dir: &Path, env: &BTreeMap<String, String>) -> Result<(), LoadError> {
        let Some(Value::Array(includes)) = raw.value.as_object_mut().and_then(|m| m.remove("include")) else {
            return Ok(());
        };
        for (i, inc) in includes.iter().enumerate() {
            let at = || locate_in(&raw.lines, &format!("include.{i}"));
            let paths: Vec<PathBuf> = inc
                .get("path")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|p| absolute(Path::new(p), dir))
                        .collect()
                })
                .unwrap_or_default();
            let Some(first) = paths.first() else { continue };
            for p in &paths {
                if self.include_chain.contains(p) {
                    return Err(LoadError::Invalid {
                        at: at(),
                        message: format!("include cycle detected: {} is included again", p.display()),
                    });
                }
            }
            let sub_dir = match inc.get("project_directory").and_then(Value::as_str) {
                Some(d) => absolute(Path::new(d), dir),
                None => first
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.to_path_buf()),
            };
            let env_files: Vec<PathBuf> = match inc.get("env_file").and_then(Value::as_array) {
                Some(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|p| absolute(Path::new(p), dir))
                    .collect(),
                None => {
                    let d = sub_dir.join(".env");
                    if d.is_file() {
                        vec![d]
                    } else {
                        Vec::new()
                    }
                }
            };
            // the including project's environment wins over the included one's env files
            let mut sub_env = read_env_files(&env_files, env)?;
            sub_env.extend(env.clone());
            self.include_chain.extend(paths.iter().cloned());
            let sub = self.load_files(&paths, &sub_dir, &sub_env);
            self.include_chain.truncate(self.include_chain.len() - paths.len());
            let sub = sub?;
            for w in sub.warnings {
                if !raw.warnings.contains(&w) {
                    raw.warnings.push(w);
                }
            }
            for kind in ["services", "networks", "volumes", "secrets", "configs"] {
                let Some(Value::Object(items)) = sub.value.get(kind) else {
                    continue;
                };
                let target = raw
                    .value
                    .as_object_mut()
                    .map(|m| m.entry(kind).or_insert_with(|| json!({})));
                let Some(Value::Object(target)) = target else { continue };
                for (k, v) in items {
                    match target.get(k) {
                        Some(existing) if existing != v => {
                            return Err(LoadError::Invalid {
                                at: at(),
                                message: format!("{kind}.{k} conflicts with imported resource"),
                            })
                        }
                        _ => {
                            target.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            for (k, v) in sub.lines {
                raw.lines.entry(k).or_insert(v);
            }
        }
        Ok(())
    }
}

/// Loads a compose project as `docker compose` would with the same options.
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    let cwd = if opts.working_dir.is_absolute() {
        normalize::clean(&opts.working_dir)
    } else {
        let here = std::env::current_dir().map_err(|source| LoadError::Io {
            path: opts.working_dir.clone(),
            source,
        })?;
        absolute(&opts.working_dir, &here)
    };
    let proc_env = &opts.environment;

    // COMPOSE_* variables may also come from the working directory's .env, as Compose reads them
    let early_dir = opts
        .project_directory
        .as_ref()
        .map(|d| absolute(d, &cwd))
        .unwrap_or_else(|| cwd.clone());
    let early_env = {
        let dot = early_dir.join(".env");
        let files = if !opts.env_files.is_empty() {
            opts.env_files.iter().map(|f| absolute(f, &cwd)).collect()
        } else if dot.is_file() {
            vec![dot]
        } else {
            Vec::new()
        };
        let mut e = read_env_files(&files, proc_env)?;
        e.extend(proc_env.clone());
        e
    };

    let config_files: Vec<PathBuf> = if !opts.config_files.is_empty() {
        opts.config_files
            .iter()
            .map(|f| {
                if f == Path::new("-") {
                    f.clone()
                } else {
                    absolute(f, &cwd)
                }
            })
            .collect()
    } else if let Some(list) = early_env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = early_env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .map_or(":", String::as_str);
        list.split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| absolute(Path::new(f), &early_dir))
            .collect()
    } else {
        discover(&early_dir)?
    };
    let project_dir = match &opts.project_directory {
        Some(d) => absolute(d, &cwd),
        None => match config_files.first() {
            Some(f) if f != Path::new("-") => f.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.clone()),
            _ => cwd.clone(),
        },
    };

    let env_files: Vec<PathBuf> = if !opts.env_files.is_empty() {
        opts.env_files.iter().map(|f| absolute(f, &cwd)).collect()
    } else {
        let dot = project_dir.join(".env");
        if dot.is_file() {
            vec![dot]
        } else {
            Vec::new()
        }
    };
    let mut environment = read_env_files(&env_files, proc_env)?;
    environment.extend(proc_env.clone());

    let explicit_name = match &opts.project_name {
        Some(p) => Some(p.clone()),
        None => environment
            .get("COMPOSE_PROJECT_NAME")
            .filter(|s| !s.is_empty())
            .cloned(),
    };
    if let Some(n) = &explicit_name {
        if !valid_project_name(n) {
            return Err(LoadError::ProjectName { name: n.clone() });
        }
        environment.insert("COMPOSE_PROJECT_NAME".into(), n.clone());
    }

    let mut loader = Loader {
        opts,
        include_chain: config_files.clone(),
    };
    let raw = loader.load_files(&config_files, &project_dir, &environment)?;
    let Raw {
        value,
        lines,
        mut warnings,
    } = raw;
    let Value::Object(mut model) = value else {
        return Err(LoadError::invalid("top-level object must be a mapping"));
    };
    let locate = |p: &str| locate_in(&lines, p);

    let name = match explicit_name {
        Some(n) => n,
        None => {
            let from_file = model
                .get("name")
                .and_then(Value::as_str)
                .map(normalize_project_name)
                .unwrap_or_default();
            if from_file.is_empty() {
                let base = project_dir
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                normalize_project_name(&base)
            } else {
                from_file
            }
        }
    };
    if name.is_empty() {
        return Err(LoadError::ProjectName { name });
    }

    // implicit dependencies first: they count for the services named on the command line
    let mut services = match model.remove("services") {
        Some(Value::Object(s)) => s,
        _ => Map::new(),
    };
    for svc in services.values_mut() {
        if let Value::Object(s) = svc {
            add_implicit_dependencies(s);
        }
    }

    let (enabled, disabled) = select_services(&services, opts, &environment)?;
    let mut kept = Map::new();
    for (n, s) in services {
        if enabled.contains(&n) {
            kept.insert(n, s);
        }
    }
    let cx = normalize::Context {
        dir: &project_dir,
        env: &environment,
        resolve_paths: opts.resolve_paths,
        locate: &locate,
    };
    for (n, svc) in kept.iter_mut() {
        if let Value::Object(s) = svc {
            normalize::normalize_service(n, s, &cx)?;
        }
    }
    check_consistency(&mut kept, &model, &locate, &mut warnings)?;
    model.insert("services".into(), Value::Object(kept));
    prune_unused(&mut model);
    normalize::normalize_resources(&mut model, &name);
    model.insert("name".into(), json!(name));

    Ok(Project {
        name,
        working_dir: project_dir,
        config_files,
        environment,
        model: Value::Object(model),
        disabled_services: disabled,
        warnings,
    })
}

/// Dependencies Compose adds: `network_mode: service:x` and `links` (restarting with their target),
/// `volumes_from`.
fn add_implicit_dependencies(svc: &mut Map<String, Value>) {
    let mut implicit: Vec<(String, bool)> = Vec::new();
    if let Some(target) = svc
        .get("network_mode")
        .and_then(Value::as_str)
        .and_then(|m| m.strip_prefix("service:"))
    {
        implicit.push((target.to_string(), true));
    }
    if let Some(Value::Array(from)) = svc.get("volumes_from") {
        for f in from.iter().filter_map(Value::as_str) {
            if !f.starts_with("container:") {
                implicit.push((f.split(':').next().unwrap_or(f).to_string(), false));
            }
        }
    }
    if let Some(Value::Array(links)) = svc.get("links") {
        for l in links.iter().filter_map(Value::as_str) {
            implicit.push((l.split(':').next().unwrap_or(l).to_string(), true));
        }
    }
    if implicit.is_empty() {
        return;
    }
    if let Value::Object(deps) = svc.entry("depends_on").or_insert_with(|| json!({})) {
        for (dep, restart) in implicit {
            deps.entry(dep).or_insert_with(|| {
                if restart {
                    json!({"condition": "service_started", "restart": true, "required": true})
                } else {
                    json!({"condition": "service_started", "required": true})
                }
            });
        }
    }
}

fn dependencies(svc: &Value) -> Vec<(String, bool)> {
    svc.get("depends_on")
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v.get("required").and_then(Value::as_bool).unwrap_or(true)))
                .collect()
        })
        .unwrap_or_default()
}

/// Profiles and the services named on the command line: the enabled services, and the others.
fn select_services(
    services: &Map<String, Value>,
    opts: &LoadOptions,
    env: &BTreeMap<String, String>,
) -> Result<(BTreeSet<String>, Vec<String>), LoadError> {
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if active.is_empty() {
        if let Some(list) = env.get("COMPOSE_PROFILES") {
            active.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
    }
    let profiles_of = |svc: &Value| -> Vec<String> {
        svc.get("profiles")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default()
    };
    for s in &opts.services {
        match services.get(s) {
            Some(svc) => active.extend(profiles_of(svc)),
            None => return Err(LoadError::invalid(format!("no such service: {s}"))),
        }
    }
    let by_profile: BTreeSet<String> = services
        .iter()
        .filter(|(_, svc)| {
            let p = profiles_of(svc);
            p.is_empty() || active.contains("*") || p.iter().any(|x| active.contains(x))
        })
        .map(|(n, _)| n.clone())
        .collect();
    let enabled = if opts.services.is_empty() {
        by_profile
    } else {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = opts.services.clone();
        while let Some(s) = todo.pop() {
            if !out.insert(s.clone()) {
                continue;
            }
            if let Some(svc) = services.get(&s) {
                for (dep, required) in dependencies(svc) {
                    if by_profile.contains(&dep) {
                        todo.push(dep);
                    } else if required {
                        return Err(LoadError::invalid(format!("no such service: {dep}")));
                    }
                }
            }
        }
        out
    };
    let disabled = services.keys().filter(|n| !enabled.contains(*n)).cloned().collect();
    Ok((enabled, disabled))
}

/// The checks Compose makes once the model is complete.
fn check_consistency(
    services: &mut Map<String, Value>,
    model: &Map<String, Value>,
    locate: &dyn Fn(&str) -> Location,
    warnings: &mut Vec<String>,
) -> Result<(), LoadError> {
    let names: BTreeSet<String> = services.keys().cloned().collect();
    let defined = |kind: &str, key: &str| {
        model
            .get(kind)
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(key))
    };
    for (name, svc) in services.iter_mut() {
        let invalid = |path: &str, message: String| LoadError::Invalid {
            at: locate(&format!("services.{name}{path}")),
            message,
        };
        if svc.get("image").is_none() && svc.get("build").is_none() {
            return Err(invalid(
                "",
                format!("service {name:?} has neither an image nor a build context specified"),
            ));
        }
        if let Some(Value::Object(deps)) = svc.get_mut("depends_on") {
            let mut drop = Vec::new();
            for (dep, v) in deps.iter() {
                if names.contains(dep) {
                    continue;
                }
                if v.get("required").and_then(Value::as_bool) == Some(false) {
                    warnings.push(format!(
                        "service {name:?} depends on undefined service {dep:?}: ignored"
                    ));
                    drop.push(dep.clone());
                } else {
                    return Err(invalid(
                        ".depends_on",
                        format!("service {name:?} depends on undefined service {dep:?}"),
                    ));
                }
            }
            for d in drop {
                deps.remove(&d);
            }
        }
        if let Some(Value::Object(nets)) = svc.get("networks") {
            for n in nets.keys() {
                if n != "default" && !defined("networks", n) {
                    return Err(invalid(
                        ".networks",
                        format!("service {name:?} refers to undefined network {n}"),
                    ));
                }
            }
        }
        if let Some(Value::Array(vols)) = svc.get("volumes") {
            for (i, v) in vols.iter().enumerate() {
                if v.get("type").and_then(Value::as_str) != Some("volume") {
                    continue;
                }
                if let Some(src) = v.get("source").and_then(Value::as_str) {
                    if !defined("volumes", src) {
                        return Err(invalid(
                            &format!(".volumes.{i}"),
                            format!("service {name:?} refers to undefined volume {src}"),
                        ));
                    }
                }
            }
        }
        for (kind, one) in [("secrets", "secret"), ("configs", "config")] {
            if let Some(Value::Array(refs)) = svc.get(kind) {
                for (i, r) in refs.iter().enumerate() {
                    let src = r.get("source").and_then(Value::as_str).unwrap_or_default();
                    if !defined(kind, src) {
                        return Err(invalid(
                            &format!(".{kind}.{i}"),
                            format!("service {name:?} refers to undefined {one} {src}"),
                        ));
                    }
                }
            }
        }
    }
    // dependency cycles
    fn visit(
        n: &str,
        services: &Map<String, Value>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Result<(), LoadError> {
        if done.contains(n) {
            return Ok(());
        }
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle: Vec<String> = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Err(LoadError::invalid(format!(
                "dependency cycle detected: {}",
                cycle.join(" -> ")
            )));
        }
        stack.push(n.to_string());
        if let Some(svc) = services.get(n) {
            for (dep, _) in dependencies(svc) {
                visit(&dep, services, stack, done)?;
            }
        }
        stack.pop();
        done.insert(n.to_string());
        Ok(())
    }
    let mut done = BTreeSet::new();
    for n in services.keys() {
        visit(n, services, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

/// Drops the networks, volumes, secrets and configs no enabled service uses (Compose's
/// `WithoutUnnecessaryResources`).
fn prune_unused(model: &mut Map<String, Value>) {
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    if let Some(Value::Object(services)) = model.get("services") {
        for svc in services.values() {
            if let Some(Value::Object(n)) = svc.get("networks") {
                used.entry("networks").or_default().extend(n.keys().cloned());
            }
            if let Some(Value::Array(vols)) = svc.get("volumes") {
                for v in vols {
                    if v.get("type").and_then(Value::as_str) == Some("volume") {
                        if let Some(s) = v.get("source").and_then(Value::as_str) {
                            used.entry("volumes").or_default().insert(s.to_string());
                        }
                    }
                }
            }
            for kind in ["secrets", "configs"] {
                if let Some(Value::Array(refs)) = svc.get(kind) {
                    for r in refs {
                        if let Some(s) = r.get("source").and_then(Value::as_str) {
                            used.entry(kind).or_default().insert(s.to_string());
                        }
                    }
                }
            }
            if let Some(Value::Object(b)) = svc.get("build") {
                for kind in ["secrets"] {
                    if let Some(Value::Array(refs)) = b.get(kind) {
                        for r in refs {
                            let s = r.get("source").and_then(Value::as_str).or_else(|| r.as_str());
                            if let Some(s) = s {
                                used.entry(kind).or_default().insert(s.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        let keep = used.remove(kind).unwrap_or_default();
        let now_empty = match model.get_mut(kind) {
            Some(Value::Object(m)) => {
                m.retain(|k, _| keep.contains(k));
                m.is_empty()
            }
            _ => false,
        };
        if now_empty {
            model.remove(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        let cases: &[(&str, &str)] = &[
            ("My Proj.X", "myprojx"),
            ("Bad.Name", "badname"),
            ("_x-y", "x-y"),
            ("web_1", "web_1"),
            ("ÄÖ", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_project_name(input), *want, "{input}");
        }
        assert!(valid_project_name("web-1_a"));
        assert!(!valid_project_name("Bad"));
        assert!(!valid_project_name("-x"));
        assert!(!valid_project_name(""));
    }
}
