//! `context create|ls|use|rm|inspect|show|update`: Docker contexts, kept in the docker CLI's own
//! store (see [`store`]) so `docker context` and `berth context` share them, with Docker's flags,
//! output and messages. Which context a command uses is decided in `connect` (`ConnectOpts`).
//!
//! The built-in `default` context is not on disk: it is whatever `-H`, `BERTH_HOST`/`DOCKER_HOST`
//! or the default socket name, with the TLS flags; it cannot be created, updated or removed.

mod archive;
pub mod store;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::args::{ContextCmd, ContextCreateArgs, ContextInspectArgs, ContextLsArgs, ContextRmArgs, ContextUpdateArgs};
use crate::connect::{ConnectOpts, HOST_ENV};
use crate::format::{ellipsis, go_json_escape, Format};
use crate::sortorder::natural_cmp;
use crate::StatusError;
use store::{
    validate_name, ContextError, ContextMeta, ContextStore, DockerEndpoint, TlsData, DEFAULT_CONTEXT, DOCKER_ENDPOINT,
};

/// The default context's description in `context ls` (docker's wording).
const DEFAULT_DESCRIPTION: &str = "Current DOCKER_HOST based configuration";
/// `context ls`'s default table.
const LS_TABLE: &str = "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}";
/// Column titles of `context ls`.
const LS_HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("DockerEndpoint", "DOCKER ENDPOINT"),
    ("Error", "ERROR"),
];
/// `context ls` cuts errors to this many characters.
const MAX_ERROR_LEN: usize = 45;
/// What `context inspect` shows as the storage of the default context.
const IN_MEMORY: &str = "<IN MEMORY>";

/// The keys `--docker` accepts (docker's `allowedDockerConfigKeys`).
const DOCKER_KEYS: [&str; 7] = ["from", "host", "description", "ca", "cert", "key", "skip-tls-verify"];

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The contexts of the client config directory (`--config`, `$DOCKER_CONFIG`, `~/.docker`).
pub fn store() -> Result<ContextStore> {
    Ok(ContextStore::new(&crate::credentials::config_dir()?))
}

/// Runs a `context` subcommand; none of them needs the daemon.
pub fn context(copts: &ConnectOpts, cmd: ContextCmd) -> Result<i32> {
    let s = store()?;
    match cmd {
        ContextCmd::Create(a) => create(copts, &s, a),
        ContextCmd::Ls(a) => ls(copts, &s, a),
        ContextCmd::Use(a) => use_context(&s, &a.name),
        ContextCmd::Rm(a) => rm(copts, &s, a),
        ContextCmd::Inspect(a) => inspect(copts, &s, a),
        ContextCmd::Show => {
            outln!("{}", copts.context_name(env));
            Ok(0)
        }
        ContextCmd::Update(a) => update(copts, &s, a),
        ContextCmd::Export(a) => archive::export(copts, &s, a),
        ContextCmd::Import(a) => archive::import(&s, a),
    }
}

/// The host variable that overrides contexts, if one is set (for docker's warnings).
fn host_override() -> Option<&'static str> {
    HOST_ENV.into_iter().find(|v| env(v).is_some_and(|h| !h.is_empty()))
}

/// Parses the values of `--docker` (pflag's `stringToString`): one `key=value`, or a CSV line of
/// them; later flags add to and override earlier ones. `None` when the flag is not given.
pub fn parse_docker_flag(values: &[String]) -> Result<Option<BTreeMap<String, String>>, String> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for val in values {
        let pairs = match val.matches('=').count() {
            0 => {
                return Err(format!(
                    "invalid argument {val:?} for \"--docker\" flag: {val} must be formatted as key=value"
                ))
            }
            1 => vec![val.trim_matches('"').to_string()],
            _ => crate::opts::split_csv(val)
                .map_err(|e| format!("invalid argument {val:?} for \"--docker\" flag: {e}"))?,
        };
        for pair in pairs {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!(
                    "invalid argument {val:?} for \"--docker\" flag: {pair} must be formatted as key=value"
                ));
            };
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(Some(out))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The endpoint and TLS material `--docker` describes (docker's `getDockerEndpoint`); errors are
/// worded as docker's, without the caller's "unable to create docker endpoint config" prefix.
fn docker_endpoint_from_flag(
    copts: &ConnectOpts,
    s: &ContextStore,
    config: &BTreeMap<String, String>,
) -> Result<(DockerEndpoint, Option<TlsData>), String> {
    let unknown: Vec<String> = config
        .keys()
        .filter(|k| !DOCKER_KEYS.contains(&k.as_str()))
        .map(|k| format!("unrecognized config key: {k}"))
        .collect();
    if !unknown.is_empty() {
        return Err(unknown.join("\n"));
    }
    if let Some(from) = config.get("from") {
        // Only the endpoint is taken, not its TLS material (as docker does).
        let meta = source_meta(copts, s, from).map_err(|e| e.to_string())?;
        return meta
            .docker_endpoint()
            .map(|ep| (ep, None))
            .map_err(|_| format!("unable to get endpoint from context {from:?}"));
    }
    let get = |k: &str| config.get(k).map(String::as_str);
    let tls = TlsData::from_files(get("ca"), get("cert"), get("key")).map_err(|e| e.to_string())?;
    let skip_tls_verify = match get("skip-tls-verify") {
        None => false,
        Some(v) => parse_bool(v).ok_or_else(|| format!("skip-tls-verify: parsing {v:?}: invalid syntax"))?,
    };
    let host = get("host").unwrap_or("").to_string();
    // The docker CLI validates by building a client: `proto://address`, and a CA that is PEM.
    if !host.is_empty() && host.split_once("://").is_none_or(|(_, addr)| addr.is_empty()) {
        return Err(format!(
            "unable to apply docker endpoint options: unable to parse docker host `{host}`"
        ));
    }
    if let Some(ca) = tls.as_ref().and_then(|t| t.ca.as_ref()) {
        if !String::from_utf8_lossy(ca).contains("-----BEGIN CERTIFICATE-----") {
            return Err(
                "invalid docker endpoint options: failed to retrieve context tls info: ca.pem seems invalid".into(),
            );
        }
    }
    Ok((DockerEndpoint { host, skip_tls_verify }, tls))
}

/// A context's metadata as a source to copy from, the built-in `default` included.
fn source_meta(copts: &ConnectOpts, s: &ContextStore, name: &str) -> Result<ContextMeta> {
    if name != DEFAULT_CONTEXT {
        return Ok(s.get(name)?);
    }
    let ep = copts.default_endpoint(env).map_err(fail)?;
    let skip = ep.tls.as_ref().is_some_and(|t| !t.verify);
    Ok(ContextMeta::new(
        DEFAULT_CONTEXT,
        DEFAULT_DESCRIPTION,
        &DockerEndpoint {
            host: ep.host.to_string(),
            skip_tls_verify: skip,
        },
    ))
}

/// A context's TLS material as a source to copy from (the default context's: the TLS flags' files).
fn source_tls(copts: &ConnectOpts, s: &ContextStore, name: &str) -> Result<Option<TlsData>> {
    if name != DEFAULT_CONTEXT {
        return Ok(s.tls_data(name, DOCKER_ENDPOINT)?);
    }
    let Some(t) = copts.tls.resolve(env) else {
        return Ok(None);
    };
    let p = |o: &Option<std::path::PathBuf>| o.as_ref().map(|p| p.display().to_string());
    let (ca, cert, key) = (p(&t.ca), p(&t.cert), p(&t.key));
    Ok(TlsData::from_files(ca.as_deref(), cert.as_deref(), key.as_deref())?)
}

fn usage_error(cmd: &str, msg: String) -> StatusError {
    let p = crate::prog();
    StatusError::new(
        125,
        format!("{msg}\n\nUsage:  {p} context {cmd} [OPTIONS] CONTEXT\n\nRun '{p} context {cmd} --help' for more information"),
    )
}

/// `context create NAME`: from `--docker`, from `--from CONTEXT`, or (neither) a copy of the
/// context in use.
fn create(copts: &ConnectOpts, s: &ContextStore, a: ContextCreateArgs) -> Result<i32> {
    let docker = parse_docker_flag(&a.docker).map_err(|e| usage_error("create", e))?;
    validate_name(&a.name).map_err(fail)?;
    match s.get(&a.name) {
        Ok(_) => return Err(fail(ContextError::Exists(a.name)).into()),
        Err(ContextError::NotFound { .. }) => {}
        Err(e) => return Err(fail(format!("error while getting existing contexts: {e}")).into()),
    }
    let from = match (&a.from, &docker) {
        (Some(f), _) if !f.is_empty() => Some(f.clone()),
        (_, None) => Some(copts.context_name(env)),
        _ => None,
    };
    let (meta, tls) = match from {
        Some(from) => {
            if docker.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(fail("cannot use --docker flag when --from is set").into());
            }
            let mut meta = source_meta(copts, s, &from)?;
            meta.name = a.name.clone();
            // The description given replaces the source's; none keeps it (docker's decorator).
            if !a.description.is_empty() {
                meta.set_description(&a.description);
            }
            (meta, source_tls(copts, s, &from)?)
        }
        None => {
            let config = docker.unwrap_or_default();
            let (ep, tls) = docker_endpoint_from_flag(copts, s, &config)
                .map_err(|e| fail(format!("unable to create docker endpoint config: {e}")))?;
            (ContextMeta::new(&a.name, &a.description, &ep), tls)
        }
    };
    s.save(&meta).map_err(fail)?;
    // A stale TLS directory of an earlier context of that name must not leak into this one.
    s.remove_tls(&a.name).map_err(fail)?;
    s.reset_endpoint_tls(&a.name, DOCKER_ENDPOINT, tls.as_ref())
        .map_err(fail)?;
    outln!("{}", a.name);
    eprintln!("Successfully created context {:?}", a.name);
    Ok(0)
}

/// `context update NAME`: a new description and/or endpoint.
fn update(copts: &ConnectOpts, s: &ContextStore, a: ContextUpdateArgs) -> Result<i32> {
    let docker = parse_docker_flag(&a.docker).map_err(|e| usage_error("update", e))?;
    validate_name(&a.name).map_err(fail)?;
    let mut meta = s.get(&a.name).map_err(fail)?;
    if !a.description.is_empty() {
        meta.set_description(&a.description);
    }
    let mut tls_reset = None;
    if let Some(config) = docker {
        let (ep, tls) = docker_endpoint_from_flag(copts, s, &config)
            .map_err(|e| fail(format!("unable to create docker endpoint config: {e}")))?;
        meta.set_docker_endpoint(&ep);
        tls_reset = Some(tls);
    }
    s.save(&meta).map_err(fail)?;
    if let Some(tls) = tls_reset {
        s.reset_endpoint_tls(&a.name, DOCKER_ENDPOINT, tls.as_ref())
            .map_err(fail)?;
    }
    outln!("{}", a.name);
    eprintln!("Successfully updated context {:?}", a.name);
    Ok(0)
}

/// Sets config.json's `currentContext` (empty removes it), writing only when it changes.
fn set_current_context(name: &str) -> Result<()> {
    let mut cfg = crate::credentials::load_config()?;
    cfg.set_current_context(name)?;
    Ok(())
}

/// `context use NAME`: config.json's `currentContext` (`default` removes it).
fn use_context(s: &ContextStore, name: &str) -> Result<i32> {
    if name != DEFAULT_CONTEXT {
        validate_name(name).map_err(fail)?;
        s.get(name).map_err(fail)?;
    }
    set_current_context(if name == DEFAULT_CONTEXT { "" } else { name }).map_err(fail)?;
    outln!("{name}");
    eprintln!("Current context is now {name:?}");
    if let Some(var) = host_override().filter(|_| name != DEFAULT_CONTEXT) {
        eprintln!(
            "Warning: {var} environment variable overrides the active context. To use {name:?}, either set the global --context flag, or unset {var} environment variable."
        );
    }
    Ok(0)
}

/// `context rm NAME...`: the context in use only with `-f` (which also resets `currentContext`);
/// `-f` also forgives names that do not exist. Removed names on stdout, errors on stderr.
fn rm(copts: &ConnectOpts, s: &ContextStore, a: ContextRmArgs) -> Result<i32> {
    let current = copts.context_name(env);
    let mut errors = Vec::new();
    for name in &a.names {
        let res: Result<()> = (|| {
            if name == DEFAULT_CONTEXT {
                return Err(fail("context \"default\" cannot be removed").into());
            }
            if *name == current {
                if !a.force {
                    return Err(fail(format!("context {name:?} is in use, set -f flag to force remove")).into());
                }
                set_current_context("")?;
            }
            if !a.force && !s.exists(name) {
                return Err(fail(ContextError::DoesNotExist(name.clone())).into());
            }
            s.remove(name)?;
            Ok(())
        })();
        match res {
            Ok(()) => outln!("{name}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    Err(fail(errors.join("\n")).into())
}

/// One `context ls` row, in the shape of docker's `ClientContext` (JSON keys sorted as Go prints
/// its map).
fn ls_row(name: &str, current: bool, description: &str, endpoint: &str, error: &str) -> Value {
    json!({
        "Current": current,
        "Description": description,
        "DockerEndpoint": endpoint,
        "Error": error,
        "Name": name,
    })
}

/// `context ls`: the default context and those on disk, in natural order, `*` after the one in
/// use (a stub row with the error when that one does not exist).
fn ls(copts: &ConnectOpts, s: &ContextStore, a: ContextLsArgs) -> Result<i32> {
    let current = copts.context_name(env);
    let (endpoint, error) = match copts.default_endpoint(env) {
        Ok(ep) => (ep.host.to_string(), String::new()),
        Err(e) => (String::new(), e.to_string()),
    };
    let mut rows = vec![(
        DEFAULT_CONTEXT.to_string(),
        ls_row(
            DEFAULT_CONTEXT,
            current == DEFAULT_CONTEXT,
            DEFAULT_DESCRIPTION,
            &endpoint,
            &error,
        ),
    )];
    for m in s.list().map_err(fail)? {
        let (host, error) = match m.docker_endpoint() {
            Ok(ep) => (ep.host, String::new()),
            Err(e) => (String::new(), e.to_string()),
        };
        rows.push((
            m.name.clone(),
            ls_row(&m.name, m.name == current, m.description(), &host, &error),
        ));
    }
    if !rows.iter().any(|(n, _)| *n == current) {
        let error = s.get(&current).err().map(|e| e.to_string()).unwrap_or_default();
        rows.push((current.clone(), ls_row(&current, true, "", "", &error)));
    }
    rows.sort_by(|x, y| natural_cmp(&x.0, &y.0));
    let format = a.format.as_deref().filter(|f| !f.is_empty());
    let fmt = match format {
        _ if a.quiet => "{{.Name}}",
        None | Some("table") => LS_TABLE,
        Some(f) => f,
    };
    let mut rows: Vec<Value> = rows.into_iter().map(|(_, r)| r).collect();
    // Docker cuts the error, in every format (its JSON included).
    for r in &mut rows {
        if let Some(e) = r["Error"].as_str() {
            r["Error"] = Value::String(ellipsis(e, MAX_ERROR_LEN));
        }
    }
    let f = Format::parse(fmt).map_err(fail)?;
    let out = f
        .render_rows_with_flags(&rows, LS_HEADERS, &["Current"])
        .map_err(fail)?;
    crate::write_out(&out);
    if let Some(var) = host_override() {
        eprintln!(
            "Warning: {var} environment variable overrides the active context. To use a context, either set the global --context flag, or unset {var} environment variable."
        );
    }
    Ok(0)
}

/// What `context inspect` prints for a context (docker's `contextWithTLSListing`), in its order.
#[derive(Serialize)]
struct Inspected {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Metadata")]
    metadata: Value,
    #[serde(rename = "Endpoints")]
    endpoints: Map<String, Value>,
    #[serde(rename = "TLSMaterial")]
    tls_material: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Storage")]
    storage: Storage,
}

#[derive(Serialize)]
struct Storage {
    #[serde(rename = "MetadataPath")]
    metadata_path: String,
    #[serde(rename = "TLSPath")]
    tls_path: String,
}

fn inspected(copts: &ConnectOpts, s: &ContextStore, name: &str) -> Result<Inspected> {
    if name == DEFAULT_CONTEXT {
        let mut meta = source_meta(copts, s, name)?;
        meta.set_description("");
        return Ok(Inspected {
            name: meta.name,
            metadata: meta.metadata,
            endpoints: meta.endpoints,
            tls_material: BTreeMap::new(),
            storage: Storage {
                metadata_path: IN_MEMORY.into(),
                tls_path: IN_MEMORY.into(),
            },
        });
    }
    let meta = s.get(name)?;
    let st = s.storage(name);
    Ok(Inspected {
        tls_material: s.tls_files(name)?,
        name: meta.name,
        metadata: if meta.metadata.is_null() {
            json!({})
        } else {
            meta.metadata
        },
        endpoints: meta.endpoints,
        storage: Storage {
            metadata_path: st.metadata_path.display().to_string(),
            tls_path: st.tls_path.display().to_string(),
        },
    })
}

/// `context inspect [NAME...]`: the context in use when no name is given.
fn inspect(copts: &ConnectOpts, s: &ContextStore, a: ContextInspectArgs) -> Result<i32> {
    let names = if a.names.is_empty() {
        vec![copts.context_name(env)]
    } else {
        a.names.clone()
    };
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(Format::parse(f).map_err(fail)?),
        None => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &names {
        match inspected(copts, s, name) {
            // Go's encoder escapes `<`, `>` and `&` (docker shows "\u003cIN MEMORY\u003e").
            Ok(i) => found.push(go_json_escape(&serde_json::to_string(&i).map_err(fail)?)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    crate::objects::print_inspected(&found, &errors, tmpl, |_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn docker_flag_as_pflag_parses_it() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_docker_flag(&[]).unwrap(), None);
        for (input, want) in [
            (v(&["host=tcp://h:1"]), m(&[("host", "tcp://h:1")])),
            // One `=`: the whole value is one pair, commas and all.
            (v(&["host=tcp://a,b"]), m(&[("host", "tcp://a,b")])),
            (v(&["host="]), m(&[("host", "")])),
            (
                v(&["host=tcp://h:1,ca=/c.pem,skip-tls-verify=true"]),
                m(&[("host", "tcp://h:1"), ("ca", "/c.pem"), ("skip-tls-verify", "true")]),
            ),
            (
                v(&["host=tcp://h:1,skip-tls-verify=true", "ca=/x", "host=tcp://z:2"]),
                m(&[("host", "tcp://z:2"), ("ca", "/x"), ("skip-tls-verify", "true")]),
            ),
            (v(&[r#""ca=/a,b",host=x"#]), m(&[("ca", "/a,b"), ("host", "x")])),
        ] {
            assert_eq!(parse_docker_flag(&input).unwrap(), Some(want), "{input:?}");
        }
        assert_eq!(
            parse_docker_flag(&v(&["host"])).unwrap_err(),
            "invalid argument \"host\" for \"--docker\" flag: host must be formatted as key=value"
        );
        assert_eq!(
            parse_docker_flag(&v(&[""])).unwrap_err(),
            "invalid argument \"\" for \"--docker\" flag:  must be formatted as key=value"
        );
        assert!(parse_docker_flag(&v(&["a=1,b,c=3"])).is_err());
    }

    #[test]
    fn docker_endpoint_checks_as_docker() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContextStore::new(dir.path());
        let c = ConnectOpts::default();
        let ep = |cfg: &[(&str, &str)]| docker_endpoint_from_flag(&c, &s, &m(cfg));
        assert_eq!(
            ep(&[("host", "tcp://h:1"), ("skip-tls-verify", "1")]).unwrap(),
            (
                DockerEndpoint {
                    host: "tcp://h:1".into(),
                    skip_tls_verify: true
                },
                None
            )
        );
        assert_eq!(ep(&[("host", "")]).unwrap().0, DockerEndpoint::default());
        assert_eq!(
            ep(&[("host", "tcp://h:1"), ("bogus", "1"), ("alsobad", "")]).unwrap_err(),
            "unrecognized config key: alsobad\nunrecognized config key: bogus"
        );
        assert_eq!(
            ep(&[("skip-tls-verify", "maybe")]).unwrap_err(),
            "skip-tls-verify: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(
            ep(&[("host", "h:1")]).unwrap_err(),
            "unable to apply docker endpoint options: unable to parse docker host `h:1`"
        );
        assert_eq!(
            ep(&[("ca", "/nonexistent.pem")]).unwrap_err(),
            "open /nonexistent.pem: no such file or directory"
        );
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "junk").unwrap();
        assert!(ep(&[("ca", ca.to_str().unwrap())])
            .unwrap_err()
            .contains("ca.pem seems invalid"));
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n").unwrap();
        let (_, tls) = ep(&[("host", "tcp://h:2376"), ("ca", ca.to_str().unwrap())]).unwrap();
        assert!(tls.unwrap().ca.is_some());
        // `from=` copies another context's endpoint (not its TLS material).
        s.save(&ContextMeta::new(
            "src",
            "",
            &DockerEndpoint {
                host: "unix:///s.sock".into(),
                skip_tls_verify: false,
            },
        ))
        .unwrap();
        assert_eq!(ep(&[("from", "src")]).unwrap().0.host, "unix:///s.sock");
        assert!(ep(&[("from", "nope")]).unwrap_err().contains("context not found"));
    }

    #[test]
    fn csv_like_go() {
        let f = |s: &str| crate::opts::split_csv(s).unwrap();
        assert_eq!(f("a=1,b=2"), ["a=1", "b=2"]);
        assert_eq!(f(r#""a=1,2",b="x""#), ["a=1,2", "b=\"x\""]);
        assert_eq!(f(r#""q""uote=1",z=2"#), ["q\"uote=1", "z=2"]);
        assert!(parse_docker_flag(&[r#""host=a,b=c"#.to_string()]).is_err());
    }
}
