//! Connecting to the daemon: host selection, API version negotiation, and starting `berthd` when
//! the default socket does not answer (the implicit-default case only, as a convenience).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use berth_client::{select_host, Client, Error, Host, HostSource, TlsOptions};

use crate::StatusError;

/// Global connection options.
#[derive(Debug, Clone, Default)]
pub struct ConnectOpts {
    pub host: Option<String>,
    pub no_autostart: bool,
    pub tls: TlsFlags,
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
    let (host, source) = select_host(o.host.as_deref(), env).map_err(|e| StatusError::new(1, e.to_string()))?;
    let mut client = match (o.tls.resolve(env), &host) {
        (Some(tls), Host::Tcp(_)) => Client::with_tls(host, &tls).map_err(|e| StatusError::new(1, e.to_string()))?,
        _ => Client::new(host),
    };
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
        Err(Error::Connect { .. }) if source == HostSource::Default && !o.no_autostart && !autostart_disabled() => {
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
