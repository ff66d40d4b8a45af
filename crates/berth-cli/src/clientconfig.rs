//! The docker CLI's settings in config.json that change what commands do (besides credentials):
//! `currentContext`, `detachKeys`, the default `--format` of the listing commands (`psFormat`,
//! `imagesFormat`, `networksFormat`, `volumesFormat`, `statsFormat`) and `proxies`, whose values
//! become environment variables of new containers and build args of builds.
//!
//! The file is read once per command; [`ClientConfig::apply`] fills a parsed command line in as the
//! docker CLI would have, so the commands themselves never look at the file.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Cmd, ContainerCmd, ImageCmd, NetworkCmd, VolumeCmd};

/// One entry of `proxies` (docker's `ProxyConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProxyConfig {
    /// `HTTP_PROXY`.
    #[serde(rename = "httpProxy", default)]
    pub http_proxy: String,
    /// `HTTPS_PROXY`.
    #[serde(rename = "httpsProxy", default)]
    pub https_proxy: String,
    /// `NO_PROXY`.
    #[serde(rename = "noProxy", default)]
    pub no_proxy: String,
    /// `FTP_PROXY`.
    #[serde(rename = "ftpProxy", default)]
    pub ftp_proxy: String,
    /// `ALL_PROXY`.
    #[serde(rename = "allProxy", default)]
    pub all_proxy: String,
}

/// The client settings of config.json this CLI acts on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientConfig {
    /// `currentContext`.
    pub current_context: Option<String>,
    /// `psFormat`: `ps`'s format when `--format` is not given.
    pub ps_format: Option<String>,
    /// `imagesFormat`: `images`'s.
    pub images_format: Option<String>,
    /// `networksFormat`: `network ls`'s.
    pub networks_format: Option<String>,
    /// `volumesFormat`: `volume ls`'s.
    pub volumes_format: Option<String>,
    /// `statsFormat`: `stats`'s.
    pub stats_format: Option<String>,
    /// `detachKeys`: the detach keys of `run`, `start`, `attach` and `exec` without `--detach-keys`.
    pub detach_keys: Option<String>,
    /// `proxies`: by daemon host (`tcp://host:port`), or `default`.
    pub proxies: BTreeMap<String, ProxyConfig>,
}

impl ClientConfig {
    /// The settings in config.json's top-level object; a key of the wrong type is ignored.
    pub fn from_raw(raw: &Map<String, Value>) -> ClientConfig {
        let s = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let proxies = match raw.get("proxies") {
            Some(Value::Object(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), ProxyConfig::deserialize(v).ok()?)))
                .collect(),
            _ => BTreeMap::new(),
        };
        ClientConfig {
            current_context: s("currentContext"),
            ps_format: s("psFormat"),
            images_format: s("imagesFormat"),
            networks_format: s("networksFormat"),
            volumes_format: s("volumesFormat"),
            stats_format: s("statsFormat"),
            detach_keys: s("detachKeys"),
            proxies,
        }
    }

    /// Reads the CLI's config.json; a file that cannot be read is reported (as docker does) and
    /// counts as empty.
    pub fn load() -> ClientConfig {
        match crate::credentials::load_config() {
            Ok(c) => ClientConfig::from_raw(c.raw()),
            Err(e) => {
                eprintln!("WARNING: Error loading config file: {e:#}");
                ClientConfig::default()
            }
        }
    }

    /// The proxy variables for a daemon at `host` (docker's `ParseProxyConfig`): the entry of that
    /// host, else `default`; each set value under its upper- and lower-case name.
    pub fn proxy_vars(&self, host: &str) -> Vec<(String, String)> {
        let Some(p) = self.proxies.get(host).or_else(|| self.proxies.get("default")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in [
            ("HTTP_PROXY", &p.http_proxy),
            ("HTTPS_PROXY", &p.https_proxy),
            ("NO_PROXY", &p.no_proxy),
            ("FTP_PROXY", &p.ftp_proxy),
            ("ALL_PROXY", &p.all_proxy),
        ] {
            if value.is_empty() {
                continue;
            }
            out.push((name.to_string(), value.clone()));
            out.push((name.to_lowercase(), value.clone()));
        }
        out
    }

    /// Fills `cmd` in from these settings, for a daemon at `host`: the default formats of the
    /// listing commands, the detach keys, and the proxies as `-e` of `run`/`create` and `--build-arg` of `build`,
    /// each only where the user gave nothing for it.
    pub fn apply(&self, cmd: &mut Cmd, host: &str) {
        let fill = |format: &mut Option<String>, configured: &Option<String>, quiet: bool| {
            // As docker: an empty `--format` is none, and `-q` wins over the configured format.
            if format.as_deref().is_none_or(str::is_empty) && !quiet {
                if let Some(f) = configured {
                    *format = Some(f.clone());
                }
            }
        };
        match cmd {
            Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => fill(&mut a.format, &self.ps_format, a.quiet),
            Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => fill(&mut a.format, &self.images_format, a.quiet),
            Cmd::Network(NetworkCmd::Ls(a)) => fill(&mut a.format, &self.networks_format, a.quiet),
            Cmd::Volume(VolumeCmd::Ls(a)) => fill(&mut a.format, &self.volumes_format, a.quiet),
            Cmd::Stats(a) | Cmd::Container(ContainerCmd::Stats(a)) => fill(&mut a.format, &self.stats_format, false),
            Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => add_unset(&mut a.opts.env, &self.proxy_vars(host)),
            Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => {
                add_unset(&mut a.opts.env, &self.proxy_vars(host))
            }
            Cmd::Build(a) => add_unset(&mut a.build.build_args, &self.proxy_vars(host)),
            _ => {}
        }
        let keys = match cmd {
            Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => &mut a.detach_keys,
            Cmd::Exec(a) | Cmd::Container(ContainerCmd::Exec(a)) => &mut a.detach_keys,
            Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => &mut a.detach_keys,
            Cmd::Attach(a) | Cmd::Container(ContainerCmd::Attach(a)) => &mut a.detach_keys,
            _ => return,
        };
        if keys.as_deref().is_none_or(str::is_empty) {
            keys.clone_from(&self.detach_keys);
        }
    }
}

/// Appends `KEY=value` to a `-e`/`--build-arg` list for each variable whose key the list does not
/// name (`KEY=...` or a bare `KEY`, taken from the environment).
pub fn add_unset(list: &mut Vec<String>, vars: &[(String, String)]) {
    let given: Vec<String> = list
        .iter()
        .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string())
        .collect();
    for (k, v) in vars {
        if !given.contains(k) {
            list.push(format!("{k}={v}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Cli;
    use clap::Parser;
    use serde_json::json;

    fn config(v: Value) -> ClientConfig {
        match v {
            Value::Object(m) => ClientConfig::from_raw(&m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn reads_docker_keys() {
        let c = config(json!({
            "currentContext": "remote",
            "psFormat": "table {{.Names}}",
            "imagesFormat": "{{.ID}}",
            "statsFormat": "",
            "networksFormat": 3,
            "proxies": {
                "default": {"httpProxy": "http://p:3128", "noProxy": "*.local"},
                "tcp://docker:2376": {"httpsProxy": "https://q"},
                "broken": "x"
            },
            "auths": {}
        }));
        assert_eq!(c.current_context.as_deref(), Some("remote"));
        assert_eq!(c.ps_format.as_deref(), Some("table {{.Names}}"));
        assert_eq!(c.images_format.as_deref(), Some("{{.ID}}"));
        assert_eq!(c.stats_format, None);
        assert_eq!(c.networks_format, None);
        assert_eq!(c.proxies.len(), 2);
        assert_eq!(config(json!({})), ClientConfig::default());
    }

    #[test]
    fn proxies_for_the_daemon_host() {
        let c = config(json!({"proxies": {
            "default": {"httpProxy": "http://p:3128", "noProxy": "*.local"},
            "tcp://docker:2376": {"httpsProxy": "https://q"}
        }}));
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        assert_eq!(
            c.proxy_vars("unix:///run/berth/berth.sock"),
            pairs(&[
                ("HTTP_PROXY", "http://p:3128"),
                ("http_proxy", "http://p:3128"),
                ("NO_PROXY", "*.local"),
                ("no_proxy", "*.local"),
            ])
        );
        // The host's own entry replaces `default` as a whole (docker does not merge them).
        assert_eq!(
            c.proxy_vars("tcp://docker:2376"),
            pairs(&[("HTTPS_PROXY", "https://q"), ("https_proxy", "https://q")])
        );
        assert!(ClientConfig::default().proxy_vars("x").is_empty());
    }

    #[test]
    fn user_values_win() {
        let mut env = vec!["HTTP_PROXY=mine".to_string(), "no_proxy".to_string(), "A=1".to_string()];
        let vars: Vec<(String, String)> = [
            ("HTTP_PROXY", "p"),
            ("http_proxy", "p"),
            ("NO_PROXY", "n"),
            ("no_proxy", "n"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        add_unset(&mut env, &vars);
        assert_eq!(
            env,
            ["HTTP_PROXY=mine", "no_proxy", "A=1", "http_proxy=p", "NO_PROXY=n"]
        );
    }

    #[test]
    fn fills_command_lines() {
        let c = config(json!({
            "psFormat": "{{.Names}}", "imagesFormat": "{{.ID}}", "volumesFormat": "{{.Name}}",
            "networksFormat": "{{.Name}}", "statsFormat": "{{.Name}}", "detachKeys": "ctrl-x",
            "proxies": {"default": {"httpProxy": "http://p"}}
        }));
        let apply = |args: &[&str]| {
            let mut cli = Cli::try_parse_from(args).unwrap();
            let cmd = cli.cmd.as_mut().unwrap();
            c.apply(cmd, "unix:///s");
            cli.cmd.unwrap()
        };
        let ps_format = |cmd: Cmd| match cmd {
            Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => a.format,
            other => panic!("{other:?}"),
        };
        assert_eq!(ps_format(apply(&["berth", "ps"])).as_deref(), Some("{{.Names}}"));
        assert_eq!(
            ps_format(apply(&["berth", "container", "ls"])).as_deref(),
            Some("{{.Names}}")
        );
        assert_eq!(
            ps_format(apply(&["berth", "ps", "--format", ""])).as_deref(),
            Some("{{.Names}}")
        );
        assert_eq!(
            ps_format(apply(&["berth", "ps", "--format", "{{.ID}}"])).as_deref(),
            Some("{{.ID}}")
        );
        assert_eq!(ps_format(apply(&["berth", "ps", "-q"])), None);
        match apply(&["berth", "images"]) {
            Cmd::Images(a) => assert_eq!(a.format.as_deref(), Some("{{.ID}}")),
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "volume", "ls"]) {
            Cmd::Volume(VolumeCmd::Ls(a)) => assert_eq!(a.format.as_deref(), Some("{{.Name}}")),
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "network", "ls", "-q"]) {
            Cmd::Network(NetworkCmd::Ls(a)) => assert_eq!(a.format, None),
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "stats", "--no-stream"]) {
            Cmd::Stats(a) => assert_eq!(a.format.as_deref(), Some("{{.Name}}")),
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "run", "-e", "http_proxy=mine", "bb", "env"]) {
            Cmd::Run(a) => assert_eq!(a.opts.env, ["http_proxy=mine", "HTTP_PROXY=http://p"]),
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "container", "create", "bb"]) {
            Cmd::Container(ContainerCmd::Create(a)) => {
                assert_eq!(a.opts.env, ["HTTP_PROXY=http://p", "http_proxy=http://p"])
            }
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "exec", "c", "sh"]) {
            Cmd::Exec(a) => assert_eq!(a.detach_keys.as_deref(), Some("ctrl-x")),
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "attach", "--detach-keys", "ctrl-a", "c"]) {
            Cmd::Attach(a) => assert_eq!(a.detach_keys.as_deref(), Some("ctrl-a")),
            other => panic!("{other:?}"),
        }
        match apply(&["berth", "build", "--build-arg", "HTTP_PROXY", "."]) {
            Cmd::Build(a) => assert_eq!(a.build.build_args, ["HTTP_PROXY", "http_proxy=http://p"]),
            other => panic!("{other:?}"),
        }
    }
}
