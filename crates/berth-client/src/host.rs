//! Daemon address selection, as Docker does it: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then
//! the default socket.

use std::fmt;
use std::path::PathBuf;

/// The socket `berthd` listens on when started without `--host`.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `unix:///path/to.sock`
    Unix(PathBuf),
    /// `tcp://host:port` (also `http://`), kept as `host:port`.
    Tcp(String),
}

/// How the host was chosen; autostart only applies to the implicit default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostSource {
    /// `-H/--host` on the command line.
    Flag,
    /// `BERTH_HOST` or `DOCKER_HOST`.
    Env,
    /// Nothing given: [`DEFAULT_HOST`].
    Default,
}

/// A malformed `-H`/`DOCKER_HOST` value.
#[derive(Debug, thiserror::Error)]
#[error("unable to parse docker host `{0}`")]
pub struct InvalidHost(pub String);

impl Host {
    /// Parses `unix:///p`, `/p` (a bare socket path), `tcp://h:p`, `http://h:p` or `h:p`.
    pub fn parse(s: &str) -> Result<Host, InvalidHost> {
        let s = s.trim();
        let bad = || InvalidHost(s.to_string());
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(bad());
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains("://") {
            return Err(bad());
        }
        // Docker's default TCP port when none is given.
        let addr = if has_port(rest) {
            rest.to_string()
        } else {
            format!("{rest}:2375")
        };
        Ok(Host::Tcp(addr))
    }
}

fn has_port(s: &str) -> bool {
    if let Some(end) = s.rfind(']') {
        return s[end..].contains(':');
    }
    s.contains(':')
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Picks the daemon address: the flag, then `BERTH_HOST`, then `DOCKER_HOST`, else the default.
/// `env` looks up a variable (injected so tests need not touch the process environment).
pub fn select_host(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Host, HostSource), InvalidHost> {
    if let Some(h) = flag.filter(|h| !h.is_empty()) {
        return Ok((Host::parse(h)?, HostSource::Flag));
    }
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        if let Some(h) = env(var).filter(|h| !h.is_empty()) {
            return Ok((Host::parse(&h)?, HostSource::Env));
        }
    }
    Ok((Host::parse(DEFAULT_HOST)?, HostSource::Default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hosts() {
        let cases: &[(&str, Option<Host>)] = &[
            (
                "unix:///run/berth/berth.sock",
                Some(Host::Unix("/run/berth/berth.sock".into())),
            ),
            ("/tmp/x.sock", Some(Host::Unix("/tmp/x.sock".into()))),
            ("tcp://127.0.0.1:2375", Some(Host::Tcp("127.0.0.1:2375".into()))),
            ("tcp://localhost", Some(Host::Tcp("localhost:2375".into()))),
            ("http://h:1/", Some(Host::Tcp("h:1".into()))),
            ("tcp://[::1]:99", Some(Host::Tcp("[::1]:99".into()))),
            ("unix://", None),
            ("ssh://x", None),
        ];
        for (input, want) in cases {
            assert_eq!(Host::parse(input).ok(), *want, "{input}");
        }
        assert_eq!(Host::Tcp("h:1".into()).to_string(), "tcp://h:1");
        assert_eq!(Host::Unix("/a".into()).to_string(), "unix:///a");
    }

    #[test]
    fn selection_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let both = env(&[("BERTH_HOST", "unix:///b"), ("DOCKER_HOST", "unix:///d")]);
        let docker = env(&[("DOCKER_HOST", "tcp://d:1")]);
        let none = env(&[]);
        assert_eq!(
            select_host(Some("unix:///f"), both).unwrap(),
            (Host::Unix("/f".into()), HostSource::Flag)
        );
        assert_eq!(
            select_host(None, both).unwrap(),
            (Host::Unix("/b".into()), HostSource::Env)
        );
        assert_eq!(
            select_host(None, docker).unwrap(),
            (Host::Tcp("d:1".into()), HostSource::Env)
        );
        assert_eq!(
            select_host(None, none).unwrap(),
            (Host::Unix("/run/berth/berth.sock".into()), HostSource::Default)
        );
        assert!(select_host(Some("ssh://x"), none).is_err());
    }
}
