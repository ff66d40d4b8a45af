//! Daemon address selection, as Docker does it: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then
//! the default socket; and the `ssh://` form, reached through `ssh` running `docker system
//! dial-stdio` on the remote host, as the docker CLI does.

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
    /// `ssh://[user@]host[:port][/socket/path]`.
    Ssh(SshHost),
}

/// A daemon reached over SSH: `ssh` logs in to `host` and runs `docker system dial-stdio` there,
/// whose standard input and output are the connection (docker's connection helper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    /// The login name (`-l`), else ssh's own choice.
    pub user: Option<String>,
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The port (`-p`), else ssh's own choice.
    pub port: Option<u16>,
    /// The daemon socket on the remote host (`--host unix://PATH` for dial-stdio), else its default.
    pub socket: Option<String>,
}

impl SshHost {
    /// The arguments of `ssh`, as the docker CLI gives them: a connect timeout, no terminal, the
    /// login and port when given, then the remote command.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut a: Vec<String> = ["-o", "ConnectTimeout=30", "-T"].map(String::from).to_vec();
        if let Some(u) = &self.user {
            a.extend(["-l".to_string(), u.clone()]);
        }
        if let Some(p) = self.port {
            a.extend(["-p".to_string(), p.to_string()]);
        }
        a.extend(["--".to_string(), self.host.clone(), "docker".to_string()]);
        if let Some(s) = &self.socket {
            a.extend(["--host".to_string(), format!("unix://{s}")]);
        }
        a.extend(["system".to_string(), "dial-stdio".to_string()]);
        a
    }

    fn parse(s: &str, rest: &str) -> Result<SshHost, InvalidHost> {
        let bad = |why: &str| InvalidHost::because(s, why);
        if let Some((_, q)) = rest.split_once('?') {
            return Err(bad(&format!("extra query after the host: {q:?}")));
        }
        if let Some((_, f)) = rest.split_once('#') {
            return Err(bad(&format!("extra fragment after the host: {f:?}")));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if user.is_some_and(|u| u.contains(':')) {
            return Err(bad("plain-text password is not supported"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unterminated IPv6 address"))?;
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or_else(|| bad("bad port"))?)),
            }
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host specified"));
        }
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad(&format!("invalid port {p:?}")))?),
        };
        let socket = path.trim_end_matches('/');
        Ok(SshHost {
            user: user.filter(|u| !u.is_empty()).map(str::to_string),
            host: host.to_string(),
            port,
            socket: (!socket.is_empty()).then(|| socket.to_string()),
        })
    }
}

impl fmt::Display for SshHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ssh://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(s) = &self.socket {
            f.write_str(s)?;
        }
        Ok(())
    }
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
#[error("unable to parse docker host `{host}`{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
pub struct InvalidHost {
    /// The value given.
    pub host: String,
    /// What is wrong with it, when more can be said.
    pub reason: Option<String>,
}

impl InvalidHost {
    fn new(host: &str) -> InvalidHost {
        InvalidHost {
            host: host.to_string(),
            reason: None,
        }
    }

    fn because(host: &str, why: &str) -> InvalidHost {
        InvalidHost {
            host: host.to_string(),
            reason: Some(why.to_string()),
        }
    }
}

impl Host {
    /// Parses `unix:///p`, `/p` (a bare socket path), `tcp://h:p`, `http://h:p`, `h:p` or
    /// `ssh://[user@]h[:p][/path]`.
    pub fn parse(s: &str) -> Result<Host, InvalidHost> {
        let s = s.trim();
        let bad = || InvalidHost::new(s);
        if let Some(rest) = s.strip_prefix("ssh://") {
            return SshHost::parse(s, rest).map(Host::Ssh);
        }
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
            Host::Ssh(h) => h.fmt(f),
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
            (
                "ssh://x",
                Some(Host::Ssh(SshHost {
                    user: None,
                    host: "x".into(),
                    port: None,
                    socket: None,
                })),
            ),
            (
                "ssh://me@[::1]:2222/run/berth/berth.sock",
                Some(Host::Ssh(SshHost {
                    user: Some("me".into()),
                    host: "::1".into(),
                    port: Some(2222),
                    socket: Some("/run/berth/berth.sock".into()),
                })),
            ),
            ("ssh://", None),
            ("ssh://me:secret@h", None),
            ("ssh://h:port", None),
            ("ssh://h?x=1", None),
            ("ssh://h#f", None),
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
        assert!(select_host(Some("ssh://me:pw@x"), none).is_err());
    }

    #[test]
    fn ssh_hosts_print_back_and_give_dockers_ssh_arguments() {
        for s in ["ssh://h", "ssh://me@h:22", "ssh://[::1]:2222/var/run/docker.sock"] {
            assert_eq!(Host::parse(s).unwrap().to_string(), s);
        }
        let Host::Ssh(h) = Host::parse("ssh://me@h:2222/run/b.sock").unwrap() else {
            panic!("not ssh")
        };
        assert_eq!(
            h.ssh_args().join(" "),
            "-o ConnectTimeout=30 -T -l me -p 2222 -- h docker --host unix:///run/b.sock system dial-stdio"
        );
        let Host::Ssh(h) = Host::parse("ssh://h").unwrap() else {
            panic!("not ssh")
        };
        assert_eq!(
            h.ssh_args().join(" "),
            "-o ConnectTimeout=30 -T -- h docker system dial-stdio"
        );
        let e = Host::parse("ssh://me:pw@h").unwrap_err().to_string();
        assert_eq!(
            e,
            "unable to parse docker host `ssh://me:pw@h`: plain-text password is not supported"
        );
    }
}
