//! Connecting to the daemon: which endpoint (the `-H`/`--context` flags, `BERTH_HOST`/`DOCKER_HOST`,
//! `DOCKER_CONTEXT`, config.json's `currentContext`, as the docker CLI resolves them), API version
//! negotiation, and starting `berthd` when the default socket does not answer (the implicit-default
//! case only, as a convenience).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use berth_client::{select_host, Client, Error, Host, HostSource, InvalidHost, TlsOptions, DEFAULT_HOST};

use crate::context::store::{ContextError, ContextStore, DEFAULT_CONTEXT, DOCKER_ENDPOINT};
use crate::StatusError;

/// Global connection options: the flags, and config.json's `currentContext`.
#[derive(Debug, Clone, Default)]
pub struct ConnectOpts {
    pub host: Option<String>,
    /// `--context`.
    pub context: Option<String>,
    /// config.json's `currentContext` (set by `context use`).
    pub current_context: Option<String>,
    pub no_autostart: bool,
    pub tls: TlsFlags,
}

/// The variables that name a daemon and so override a context chosen in config.json or with
/// `DOCKER_CONTEXT` (docker's `DOCKER_HOST`, and berth's own).
pub const HOST_ENV: [&str; 2] = ["BERTH_HOST", "DOCKER_HOST"];

/// Why no endpoint could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// `-H` and `--context` together.
    #[error("conflicting options: cannot specify both --host and --context")]
    Conflict,
    /// The context does not exist or is unusable (docker fails its initialization so).
    #[error("Failed to initialize: unable to resolve docker endpoint: {0}")]
    Context(#[from] ContextError),
    /// A host that is not a daemon address berth can reach.
    #[error(transparent)]
    Host(#[from] InvalidHost),
}

/// The daemon a command talks to.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The context it comes from (`default` for the flags and environment).
    pub context: String,
    /// The daemon address.
    pub host: Host,
    /// TLS to use on TCP, if any.
    pub tls: Option<TlsOptions>,
    /// The implicit default socket (no flag, variable or context): the only case that autostarts.
    pub implicit_default: bool,
}

impl ConnectOpts {
    /// `-H` with `--context` is an error, as in the docker CLI (for every command).
    pub fn check_conflict(&self) -> Result<(), EndpointError> {
        let set = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
        if set(&self.host) && set(&self.context) {
            return Err(EndpointError::Conflict);
        }
        Ok(())
    }

    /// The name of the context in use (docker's `resolveContextName`): `--context`; `default`
    /// with `-H` or a host variable; then `DOCKER_CONTEXT`; then config.json's `currentContext`.
    pub fn context_name(&self, env: impl Fn(&str) -> Option<String>) -> String {
        let given = |o: Option<String>| o.filter(|s| !s.is_empty());
        if let Some(c) = given(self.context.clone()) {
            return c;
        }
        if given(self.host.clone()).is_some() || HOST_ENV.iter().any(|v| given(env(v)).is_some()) {
            return DEFAULT_CONTEXT.into();
        }
        given(env("DOCKER_CONTEXT"))
            .or_else(|| given(self.current_context.clone()))
            .unwrap_or_else(|| DEFAULT_CONTEXT.into())
    }

    /// The default context's endpoint: `-H`, the host variables or the default socket, with the
    /// TLS flags.
    pub fn default_endpoint(&self, env: impl Fn(&str) -> Option<String>) -> Result<Endpoint, EndpointError> {
        let (host, source) = select_host(self.host.as_deref(), &env)?;
        Ok(Endpoint {
            context: DEFAULT_CONTEXT.into(),
            tls: self.tls.resolve(&env),
            implicit_default: source == HostSource::Default,
            host,
        })
    }

    /// The endpoint of the context in use, reading contexts from `store`.
    pub fn endpoint_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
        store: &ContextStore,
    ) -> Result<Endpoint, EndpointError> {
        self.check_conflict()?;
        let name = self.context_name(&env);
        if name == DEFAULT_CONTEXT {
            return self.default_endpoint(env);
        }
        let meta = store.get(&name)?;
        let ep = meta.docker_endpoint()?;
        let host = Host::parse(if ep.host.is_empty() { DEFAULT_HOST } else { &ep.host })?;
        // Docker uses TLS when the context has TLS material or skips verification.
        let files = TlsOptions::from_dir(&store.endpoint_tls_dir(&name, DOCKER_ENDPOINT), !ep.skip_tls_verify);
        let has_files = files.ca.is_some() || files.cert.is_some() || files.key.is_some();
        Ok(Endpoint {
            context: name,
            host,
            tls: (has_files || ep.skip_tls_verify).then_some(files),
            implicit_default: false,
        })
    }

    /// The endpoint of the context in use, from the client config directory's contexts.
    pub fn endpoint(&self) -> Result<Endpoint> {
        self.check_conflict().map_err(|e| StatusError::new(1, e.to_string()))?;
        let store = crate::context::store()?;
        self.endpoint_with(env, &store)
            .map_err(|e| StatusError::new(1, e.to_string()).into())
    }
}

/// The global TLS flags (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`).
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    pub tls: bool,
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsFlags {
    /// TLS as Docker's client decides it: `--tlsverify` or `DOCKER_TLS_VERIFY` (non-empty) verify,
    /// `--tls` or `DOCKER_TLS` encrypt only; files from the flags, else `DOCKER_CERT_PATH` (else the
    /// client config directory). `None`: plain TCP.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Option<TlsOptions> {
        let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
        let verify = self.verify || set("DOCKER_TLS_VERIFY");
        if !(verify || self.tls || set("DOCKER_TLS")) {
            return None;
        }
        let dir = env("DOCKER_CERT_PATH")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| crate::credentials::config_dir().ok());
        let mut o = dir.map(|d| TlsOptions::from_dir(&d, verify)).unwrap_or(TlsOptions {
            verify,
            ..TlsOptions::default()
        });
        // A file named by a flag is used even if missing, so the error names it.
        for (flag, slot) in [
            (&self.ca, &mut o.ca),
            (&self.cert, &mut o.cert),
            (&self.key, &mut o.key),
        ] {
            if let Some(p) = flag {
                *slot = Some(p.clone());
            }
        }
        Some(o)
    }
}

/// Environment switch that disables autostart, as `--no-autostart` does.
const NO_AUTOSTART_ENV: &str = "BERTH_NO_AUTOSTART";

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// A negotiated client, starting the daemon if allowed and needed.
pub async fn connect(o: &ConnectOpts) -> Result<Client> {
    connect_to(&o.endpoint()?, o.no_autostart).await
}

/// A client for `ep` (TLS for a TCP daemon when the endpoint has it), not yet negotiated.
pub fn client_for(ep: &Endpoint) -> Result<Client> {
    let host = ep.host.clone();
    Ok(match (&ep.tls, &host) {
        (Some(tls), Host::Tcp(_)) => Client::with_tls(host, tls).map_err(|e| StatusError::new(1, e.to_string()))?,
        _ => Client::new(host),
    })
}

/// A negotiated client for `ep`, starting the daemon if allowed and needed.
pub async fn connect_to(ep: &Endpoint, no_autostart: bool) -> Result<Client> {
    let mut client = client_for(ep)?;
    let pinned = env("DOCKER_API_VERSION").filter(|v| !v.is_empty());
    let probe = match &pinned {
        // A pinned version skips negotiation, as docker does; still ping for autostart.
        Some(v) => {
            client.set_api_version(v);
            client.ping().await.map(|_| ())
        }
        None => client.negotiate().await.map(|_| ()),
    };
    match probe {
        Ok(_) => Ok(client),
        Err(Error::Connect { .. }) if ep.implicit_default && !no_autostart && !autostart_disabled() => {
            let (mut child, log) = spawn_daemon()?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                match client.ping().await {
                    Ok(_) => break,
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        return Err(StatusError::new(1, e.to_string()).into())
                    }
                    Err(e) => {
                        // A daemon that died at once (not root, socket in use) fails fast.
                        if let Ok(Some(status)) = child.try_wait() {
                            let msg = format!("{e} (berthd exited with {status}; see {log})");
                            return Err(StatusError::new(1, msg).into());
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            client
                .negotiate()
                .await
                .map_err(|e| StatusError::new(1, e.to_string()))?;
            Ok(client)
        }
        Err(e) => Err(StatusError::new(1, e.to_string()).into()),
    }
}

fn autostart_disabled() -> bool {
    env(NO_AUTOSTART_ENV).is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The program `name` (`berthd`, `berth-registry`) next to this executable, else the one on PATH.
pub(crate) fn sibling_binary(name: &str) -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(name)
}

/// Starts `berthd` in its own process group with output to a log file, not waiting for it;
/// returns the child (to notice an early exit) and where its output goes.
fn spawn_daemon() -> Result<(std::process::Child, String)> {
    let log = ["/var/log/berth", "/run/berth"].iter().find_map(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        let path = PathBuf::from(dir).join("berthd.log");
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&path).ok()?;
        Some((f, path.display().to_string()))
    });
    let log_path = log
        .as_ref()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| "/dev/null".into());
    let log = log.map(|(f, _)| f);
    let (out, err) = match log.and_then(|f| f.try_clone().ok().map(|g| (f, g))) {
        Some((f, g)) => (Stdio::from(f), Stdio::from(g)),
        None => (Stdio::null(), Stdio::null()),
    };
    let bin = sibling_binary("berthd");
    let mut cmd = Command::new(&bin);
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    {
        use std::os::unix::process::CommandExt;
        // Own process group: the terminal's Ctrl-C and job control do not reach the daemon.
        cmd.process_group(0);
    }
    let child = cmd.spawn().map_err(|e| {
        StatusError::new(
            1,
            format!(
                "Cannot connect to the berth daemon at {}. Is the daemon running? (starting {} failed: {e})",
                berth_client::DEFAULT_HOST,
                bin.display()
            ),
        )
    })?;
    Ok((child, log_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::store::{ContextMeta, DockerEndpoint, TlsData};

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn opts(host: Option<&str>, context: Option<&str>, current: Option<&str>) -> ConnectOpts {
        ConnectOpts {
            host: host.map(String::from),
            context: context.map(String::from),
            current_context: current.map(String::from),
            ..ConnectOpts::default()
        }
    }

    #[test]
    fn context_name_as_docker_resolves_it() {
        let none = env_of(&[]);
        let dh = env_of(&[("DOCKER_HOST", "tcp://h:1"), ("DOCKER_CONTEXT", "envctx")]);
        let bh = env_of(&[("BERTH_HOST", "unix:///b"), ("DOCKER_CONTEXT", "envctx")]);
        let dc = env_of(&[("DOCKER_CONTEXT", "envctx"), ("DOCKER_HOST", "")]);
        for (o, env, want) in [
            (opts(None, None, None), &none, "default"),
            (opts(None, None, Some("cfg")), &none, "cfg"),
            (opts(None, Some("flag"), Some("cfg")), &dh, "flag"),
            (opts(Some("unix:///x"), None, Some("cfg")), &none, "default"),
            // A host variable beats DOCKER_CONTEXT and config.json.
            (opts(None, None, Some("cfg")), &dh, "default"),
            (opts(None, None, Some("cfg")), &bh, "default"),
            // An empty DOCKER_HOST is unset.
            (opts(None, None, Some("cfg")), &dc, "envctx"),
            (opts(None, Some(""), Some("")), &none, "default"),
        ] {
            assert_eq!(o.context_name(env), want, "{o:?}");
        }
    }

    #[test]
    fn host_and_context_conflict() {
        let e = opts(Some("unix:///x"), Some("c"), None).check_conflict().unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflicting options: cannot specify both --host and --context"
        );
        assert!(opts(Some("unix:///x"), Some(""), None).check_conflict().is_ok());
        let dir = tempfile::tempdir().unwrap();
        let s = ContextStore::new(dir.path());
        assert!(matches!(
            opts(Some("unix:///x"), Some("c"), None).endpoint_with(env_of(&[]), &s),
            Err(EndpointError::Conflict)
        ));
    }

    #[test]
    fn endpoints_from_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContextStore::new(dir.path());
        let none = env_of(&[]);
        let save = |name: &str, host: &str, skip: bool| {
            s.save(&ContextMeta::new(
                name,
                "",
                &DockerEndpoint {
                    host: host.into(),
                    skip_tls_verify: skip,
                },
            ))
            .unwrap()
        };
        save("plain", "unix:///p.sock", false);
        save("secure", "tcp://h:2376", false);
        save("insecure", "tcp://h:2376", true);
        save("empty", "", false);
        save("ssh", "ssh://u@h", false);
        let tls = TlsData {
            ca: Some(b"ca".to_vec()),
            cert: Some(b"cert".to_vec()),
            key: Some(b"key".to_vec()),
        };
        s.reset_endpoint_tls("secure", DOCKER_ENDPOINT, Some(&tls)).unwrap();

        // No context: the implicit default socket, the only endpoint that autostarts.
        let ep = opts(None, None, None).endpoint_with(&none, &s).unwrap();
        assert_eq!(ep.host.to_string(), DEFAULT_HOST);
        assert!(ep.implicit_default && ep.context == "default" && ep.tls.is_none());
        let ep = opts(None, None, None)
            .endpoint_with(env_of(&[("DOCKER_HOST", "tcp://e:1")]), &s)
            .unwrap();
        assert_eq!(
            (ep.host.to_string().as_str(), ep.implicit_default),
            ("tcp://e:1", false)
        );

        let ep = opts(None, Some("plain"), None).endpoint_with(&none, &s).unwrap();
        assert_eq!(ep.host, Host::Unix("/p.sock".into()));
        assert!(!ep.implicit_default && ep.tls.is_none() && ep.context == "plain");

        let ep = opts(None, None, Some("secure")).endpoint_with(&none, &s).unwrap();
        let t = ep.tls.unwrap();
        let tdir = s.endpoint_tls_dir("secure", DOCKER_ENDPOINT);
        assert_eq!(
            (t.ca, t.cert, t.key, t.verify),
            (
                Some(tdir.join("ca.pem")),
                Some(tdir.join("cert.pem")),
                Some(tdir.join("key.pem")),
                true
            )
        );
        let t = opts(None, Some("insecure"), None)
            .endpoint_with(&none, &s)
            .unwrap()
            .tls
            .unwrap();
        assert!(!t.verify && t.ca.is_none());

        // A context with no host is the default socket, without autostart.
        let ep = opts(None, Some("empty"), None).endpoint_with(&none, &s).unwrap();
        assert_eq!(
            (ep.host.to_string().as_str(), ep.implicit_default),
            (DEFAULT_HOST, false)
        );

        // DOCKER_CONTEXT, overridden by a host variable.
        let dc = env_of(&[("DOCKER_CONTEXT", "plain")]);
        assert_eq!(opts(None, None, None).endpoint_with(&dc, &s).unwrap().context, "plain");
        let both = env_of(&[("DOCKER_CONTEXT", "plain"), ("BERTH_HOST", "unix:///b")]);
        let ep = opts(None, None, Some("secure")).endpoint_with(&both, &s).unwrap();
        assert_eq!(
            (ep.context.as_str(), ep.host.to_string().as_str()),
            ("default", "unix:///b")
        );

        let e = opts(None, Some("nope"), None)
            .endpoint_with(&none, &s)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "Failed to initialize: unable to resolve docker endpoint: context \"nope\": context not found: open "
            ),
            "{e}"
        );
        // An ssh endpoint, reached through `ssh u@h docker system dial-stdio`.
        let ep = opts(None, Some("ssh"), None).endpoint_with(&none, &s).unwrap();
        assert_eq!(ep.host.to_string(), "ssh://u@h");
        assert!(matches!(ep.host, Host::Ssh(_)));
    }
}
