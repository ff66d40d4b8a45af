//! `berthd`: the berth daemon. Serves the Docker Engine API on a UNIX socket (or loopback TCP).
//!
//! This is the composition root: it takes the roots' locks, opens the snapshotter and the image
//! store, and builds and wires the services explicitly (see `berth_engine`'s crate docs).

mod config;
mod lock;
mod tls;

use anyhow::{bail, Context, Result};
use berth_engine::{
    ContainerDeps, ContainerService, ContainerServiceConfig, DaemonSettings, EventBus, ImageService, Networks,
    NetworksConfig, Registry, Runtimes, Services, SystemService, Volumes,
};
use berth_snapshot::Snapshotter;
use berth_store::ImageStore;
use clap::Parser;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The berth daemon: a container engine that speaks the Docker Engine API.
#[derive(Parser, Debug, Clone)]
#[command(name = "berthd", version, about)]
struct Args {
    /// The daemon's configuration file, with dockerd's keys (default /etc/berth/daemon.json,
    /// used when it exists); flags win over it; SIGHUP reloads it.
    #[arg(long = "config-file")]
    config_file: Option<PathBuf>,
    /// Check the configuration (flags and file) and exit.
    #[arg(long)]
    validate: bool,
    /// Debug mode: log level debug, and `Debug: true` in /info.
    #[arg(short = 'D', long)]
    debug: bool,
    /// A label of this daemon, key=value (repeatable), shown by `docker info`.
    #[arg(long)]
    label: Vec<String>,
    /// Keep containers running when berthd stops (they run under their shims); with false,
    /// berthd stops them on shutdown, as dockerd does without live restore.
    #[arg(long = "live-restore", default_value_t = true, action = clap::ArgAction::Set)]
    live_restore: bool,
    /// A default ulimit of containers, NAME=SOFT[:HARD] (repeatable).
    #[arg(long = "default-ulimit")]
    default_ulimit: Vec<String>,
    /// A feature switch, NAME=true|false (repeatable), taken from dockerd's daemon.json: berthd has
    /// none of dockerd's, so each is ignored with a warning (log and /info).
    #[arg(long = "feature")]
    feature: Vec<String>,
    /// Serve TLS on TCP hosts (with --tlscert and --tlskey); implied by --tlsverify.
    #[arg(long)]
    tls: bool,
    /// Serve TLS on TCP hosts and require client certificates signed by --tlscacert.
    #[arg(long)]
    tlsverify: bool,
    /// The CA that signs client certificates (default $DOCKER_CERT_PATH/ca.pem, else ~/.docker/ca.pem).
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// The daemon's certificate (default $DOCKER_CERT_PATH/cert.pem, else ~/.docker/cert.pem).
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// The daemon's key (default $DOCKER_CERT_PATH/key.pem, else ~/.docker/key.pem).
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Listen on a non-loopback TCP address without --tlsverify. Anyone who reaches the port
    /// controls this machine as root.
    #[arg(long = "insecure-tcp")]
    insecure_tcp: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9323) at /metrics.
    #[arg(long = "metrics-addr")]
    metrics_addr: Option<String>,
    /// Where to listen: unix:///path/to.sock or tcp://127.0.0.1:PORT (repeatable).
    #[arg(short = 'H', long = "host", default_value = "unix:///run/berth/berth.sock")]
    hosts: Vec<String>,
    /// Persistent state directory.
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Runtime state directory (shim sockets).
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// Set the logging format ("text"|"json"): json writes one object per line (time, level,
    /// target, message and fields) for log collectors.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    /// Write the daemon's PID here (default <exec-root>/berthd.pid).
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Group that owns the UNIX socket (mode 0660).
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// An extra OCI runtime, NAME=PATH (runc, crun and youki on PATH are found by themselves).
    #[arg(long = "add-runtime")]
    add_runtime: Vec<String>,
    /// The init binary for `--init`, bind-mounted as /sbin/docker-init (default: tini-static, as
    /// Docker's docker-init is tini; it must be statically linked to run in any image).
    #[arg(long)]
    init_path: Option<PathBuf>,
    /// Run containers in a user namespace: `default` (the dockremap user, created if missing), a user
    /// name, `user:group`, or `uid:gid`, with ranges from /etc/subuid and /etc/subgid, as dockerd.
    #[arg(long)]
    userns_remap: Option<String>,
    /// The default log driver of containers (json-file, local, none).
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Default log driver options, KEY=VALUE (repeatable), e.g. max-size=10m.
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// The default bridge's interface, or `none` for no default bridge network.
    #[arg(short = 'b', long = "bridge", default_value = "berth0")]
    bridge: String,
    /// The default bridge's address and subnet, e.g. 172.17.0.1/16 (default: a free pool).
    #[arg(long)]
    bip: Option<String>,
    /// Restricts the default bridge's container addresses to this subnet of it.
    #[arg(long = "fixed-cidr")]
    fixed_cidr: Option<String>,
    /// Pools new networks take their subnets from: base=CIDR,size=PREFIX (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// Program NAT and filter rules (published ports, masquerade, isolation).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    iptables: bool,
    /// DNS servers for containers (repeatable).
    #[arg(long)]
    dns: Vec<String>,
    /// DNS search domains for containers (repeatable).
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// DNS options for containers (repeatable).
    #[arg(long = "dns-opt")]
    dns_opt: Vec<String>,
    /// MTU of the bridges' container interfaces.
    #[arg(long)]
    mtu: Option<u32>,
    /// The resolver configuration containers' DNS is derived from.
    #[arg(long, hide = true, default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// The berth-shim binary (default: next to berthd).
    #[arg(long, hide = true)]
    shim: Option<PathBuf>,
    /// A registry reached without verified TLS (and over plain HTTP when it has no TLS): host:port,
    /// host, or a CIDR (repeatable), as dockerd's --insecure-registry.
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// A Docker Hub mirror URL tried before Docker Hub for pulls (repeatable).
    #[arg(long = "registry-mirror")]
    registry_mirror: Vec<String>,
    /// Per-registry TLS material: DIR/HOST:PORT/{ca.crt, client.cert, client.key}.
    #[arg(long = "registry-certs-dir", hide = true, default_value = berth_distribution::transport::DEFAULT_CERTS_DIR)]
    registry_certs_dir: PathBuf,
}

fn sibling(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join(name);
    p.exists().then_some(p)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn runtimes(extra: &[String]) -> Result<HashMap<String, PathBuf>> {
    let mut out = HashMap::new();
    for name in ["runc", "crun", "youki"] {
        if let Some(p) = on_path(name) {
            out.insert(name.to_string(), p);
        }
    }
    for r in extra {
        let (name, path) = r
            .split_once('=')
            .with_context(|| format!("--add-runtime {r:?}: expected NAME=PATH"))?;
        out.insert(name.to_string(), PathBuf::from(path));
    }
    Ok(out)
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
    Tls(tokio::net::TcpListener, tokio_rustls::TlsAcceptor),
}

/// Binds one `--host`; a TCP host is served with TLS when `tls` is set. Returns the listener and,
/// for a TCP host open to the network, the warning to show.
async fn bind(host: &str, args: &Args, tls: Option<&tokio_rustls::TlsAcceptor>) -> Result<(Listener, Option<String>)> {
    if let Some(path) = host.strip_prefix("unix://") {
        Ok((
            Listener::Unix(listen_unix(Path::new(path), args.group.as_deref()).await?),
            None,
        ))
    } else if let Some(addr) = host.strip_prefix("tcp://") {
        let addr = tls::with_default_port(addr.trim_end_matches('/'), tls.is_some());
        let l = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {host}"))?;
        let local = l.local_addr().with_context(|| format!("listening on {host}"))?;
        let warning = tls::check_exposure(host, local, args)?;
        if let Some(w) = &warning {
            tracing::warn!("{w}");
        }
        let listener = match tls {
            Some(acceptor) => Listener::Tls(l, acceptor.clone()),
            None => Listener::Tcp(l),
        };
        Ok((listener, warning))
    } else {
        bail!("invalid --host {host:?}: expected unix:///path or tcp://host:port")
    }
}

async fn listen_unix(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "another daemon is already listening on {}; stop it or pass --host",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some(g) = group {
        match nix::unistd::Group::from_name(g) {
            Ok(Some(grp)) => nix::unistd::chown(path, None, Some(grp.gid))
                .with_context(|| format!("giving {} to group {g}", path.display()))?,
            _ => tracing::warn!("group {g} not found; the socket stays root-only"),
        }
    }
    Ok(l)
}

/// Keeps the exec root (bundles, shim sockets, exit files) on tmpfs, as `/run` is on most hosts:
/// these files are rewritten at every container start, and on a disk with online discard each
/// replaced file costs milliseconds. A tmpfs already there (ours from before a restart, or `/run`)
/// is kept as it is.
/// Returns whether it mounted one.
fn ensure_tmpfs(dir: &Path) -> Result<bool> {
    let mounted = mount_tmpfs(dir, "mode=0711,size=256m")
        .with_context(|| format!("mounting a tmpfs on the exec root {}", dir.display()))?;
    if mounted {
        tracing::info!("mounted a tmpfs on the exec root {}", dir.display());
    }
    Ok(mounted)
}

/// Mounts a tmpfs with `options` on `dir` unless `dir` is on a tmpfs already (ours from before a
/// restart, or the host's `/run`). Returns whether it mounted one.
fn mount_tmpfs(dir: &Path, options: &str) -> nix::Result<bool> {
    if nix::sys::statfs::statfs(dir)?.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC {
        return Ok(false);
    }
    let flags = nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
    nix::mount::mount(Some("tmpfs"), dir, Some("tmpfs"), flags, Some(options))?;
    Ok(true)
}

/// A tmpfs for small build contexts (512 MiB at most, using memory only for what it holds): a
/// context of 200 files unpacks there in a fraction of the time a disk file system that has just
/// deleted the previous build's files takes. `None` (contexts on disk) when it cannot be mounted.
fn fast_scratch(dir: &Path) -> Option<PathBuf> {
    let ready = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| mount_tmpfs(dir, "mode=0700,size=512m").map_err(|e| e.to_string()));
    match ready {
        Ok(_) => Some(dir.to_path_buf()),
        Err(e) => {
            tracing::warn!("build contexts stay on disk: a tmpfs on {}: {e}", dir.display());
            None
        }
    }
}

/// The network service's settings from the daemon's flags.
fn network_config(args: &Args) -> Result<NetworksConfig> {
    let mut cfg = NetworksConfig::new(args.data_root.join("network"));
    let cidr = |flag: &str, v: &str| -> Result<ipnet::IpNet> {
        v.parse()
            .with_context(|| format!("--{flag}: invalid CIDR address: {v}"))
    };
    cfg.default_bridge = if args.bridge == "none" {
        None
    } else {
        Some(berth_engine::DefaultBridge {
            name: args.bridge.clone(),
            bip: args.bip.as_deref().map(|b| cidr("bip", b)).transpose()?,
            fixed_cidr: args.fixed_cidr.as_deref().map(|b| cidr("fixed-cidr", b)).transpose()?,
        })
    };
    for p in &args.default_address_pool {
        let (mut base, mut size) = (None, None);
        for kv in p.split(',') {
            match kv.split_once('=') {
                Some(("base", v)) => base = Some(cidr("default-address-pool", v)?),
                Some(("size", v)) => {
                    size = Some(
                        v.parse::<u8>()
                            .with_context(|| format!("--default-address-pool: invalid size {v}"))?,
                    )
                }
                _ => bail!("--default-address-pool: expected base=CIDR,size=N, got {p}"),
            }
        }
        match (base, size) {
            (Some(b), Some(s)) if s >= b.prefix_len() && s <= b.max_prefix_len() => cfg.default_pools.push((b, s)),
            _ => bail!(
                "--default-address-pool: expected base=CIDR,size=N with N not shorter than the base's prefix, got {p}"
            ),
        }
    }
    cfg.firewall = args.iptables;
    cfg.dns = berth_engine::network::etc::DnsSettings {
        servers: args.dns.clone(),
        search: args.dns_search.clone(),
        options: args.dns_opt.clone(),
    };
    cfg.mtu = args.mtu;
    cfg.resolv_conf = args.resolv_conf.clone();
    Ok(cfg)
}

/// The services' settings that come from the daemon's configuration.
struct Setup {
    log_defaults: berth_engine::LogDefaults,
    net_cfg: NetworksConfig,
    registry_cfg: berth_distribution::ClientConfig,
    settings: DaemonSettings,
    default_ulimits: Vec<berth_runtime::Ulimit>,
}

/// Builds the services over the data root and wires them.
async fn open_services(
    data_root: &Path,
    exec_root: &Path,
    runtimes: Runtimes,
    id_map: Option<berth_types::IdentityMapping>,
    setup: Setup,
) -> Result<Arc<Services>> {
    let Setup {
        log_defaults,
        mut net_cfg,
        registry_cfg,
        settings,
        default_ulimits,
    } = setup;
    let events = EventBus::new();
    net_cfg.root = data_root.join("network");
    let net_events = events.clone();
    let log_driver = log_defaults.driver.clone();
    let snapshots = Arc::new(
        Snapshotter::open_with_idmap(&data_root.join("snapshots"), id_map.clone())
            .context("opening the layer snapshots")?,
    );
    let store =
        Arc::new(ImageStore::open(&data_root.join("image"), (*snapshots).clone()).context("opening the image store")?);
    let registry = Arc::new(Registry::default());
    let networks_root = net_cfg.root.clone();
    let networks = tokio::task::spawn_blocking(move || Networks::open(net_cfg, net_events))
        .await
        .context("opening the networks")?
        .with_context(|| format!("opening the networks in {}", networks_root.display()))?;
    let owner = match &id_map {
        Some(m) => Some(m.root_pair().context("the remapped root of --userns-remap")?),
        None => None,
    };
    let (vol_root, vol_events) = (data_root.join("volumes"), events.clone());
    let volumes = tokio::task::spawn_blocking(move || Volumes::open(&vol_root, owner, vol_events))
        .await
        .context("opening the volumes")?
        .context("opening the volumes")?;
    let distribution = berth_engine::DistributionService::new(
        berth_distribution::RegistryClient::new(registry_cfg),
        store.clone(),
        events.clone(),
        data_root.join("image").join("distribution"),
    )
    .context("opening the distribution metadata")?;
    let images = ImageService::new(store, snapshots.clone(), registry.clone(), events.clone());
    let containers = ContainerService::open(
        ContainerServiceConfig {
            data_root: data_root.to_path_buf(),
            exec_root: exec_root.to_path_buf(),
            runtimes: runtimes.clone(),
            id_map,
            log_defaults,
            default_ulimits,
        },
        ContainerDeps {
            registry: registry.clone(),
            images: images.clone(),
            snapshots,
            networks: networks.clone(),
            volumes: volumes.clone(),
            events: events.clone(),
        },
    )
    .await
    .context("opening the containers' state")?;
    let system = SystemService::new(
        data_root.to_path_buf(),
        runtimes,
        registry,
        images.clone(),
        events.clone(),
        log_driver,
        settings,
    );
    let build = Arc::new(berth_engine::BuildService::with_fast_scratch(
        containers.clone(),
        images.clone(),
        distribution.clone(),
        data_root.join("builder").join("tmp"),
        fast_scratch(&data_root.join("builder").join("contexts")),
    ));
    {
        let build = build.clone();
        tokio::spawn(async move { build.remove_orphans().await });
    }
    Ok(Arc::new(Services {
        containers,
        images,
        distribution,
        build,
        system,
        networks,
        volumes,
        events,
    }))
}

/// The filter's reload handle: `SIGHUP` changes the log level.
type LogReload = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

fn log_level(args: &Args) -> &str {
    if args.debug {
        "debug"
    } else {
        &args.log_level
    }
}

/// Logs to stderr in text or JSON, with a filter that a reload can change.
fn init_logging(args: &Args) -> LogReload {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new(log_level(args)));
    let json = args.log_format == "json";
    let text = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let js = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_ansi(false)
    });
    tracing_subscriber::registry().with(filter).with(text).with(js).init();
    handle
}

/// `--default-ulimit NAME=SOFT[:HARD]` (-1 is unlimited).
fn default_ulimits(args: &Args) -> Result<Vec<berth_runtime::Ulimit>> {
    let num = |v: &str, u: &str| -> Result<u64> {
        match v.trim().parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => bail!("invalid default ulimit {u:?}: {v:?} is not a number"),
        }
    };
    let mut out: Vec<berth_runtime::Ulimit> = Vec::new();
    for u in &args.default_ulimit {
        let (name, limits) = u
            .split_once('=')
            .with_context(|| format!("invalid default ulimit {u:?}: expected NAME=SOFT[:HARD]"))?;
        let (soft, hard) = match limits.split_once(':') {
            Some((s, h)) => (num(s, u)?, num(h, u)?),
            None => (num(limits, u)?, num(limits, u)?),
        };
        if soft > hard {
            bail!("invalid default ulimit {u:?}: the soft limit is above the hard limit");
        }
        out.retain(|x| x.name != name);
        out.push(berth_runtime::Ulimit {
            name: name.to_string(),
            soft,
            hard,
        });
    }
    Ok(out)
}

/// A proxy URL with its password hidden, as dockerd shows it in `/info`.
fn mask_proxy(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:xxxxx{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// What `/info` reports of the configuration, with the pools of its network settings;
/// `fixed_warnings` are the listeners' (they do not change on reload).
fn daemon_settings(args: &Args, pools: &[(ipnet::IpNet, u8)], fixed_warnings: &[String]) -> Result<DaemonSettings> {
    for l in &args.label {
        if !l.contains('=') || l.starts_with('=') {
            bail!("invalid label {l:?}: a daemon label is key=value");
        }
    }
    let mut warnings = fixed_warnings.to_vec();
    for f in &args.feature {
        let valid = f.split_once('=').is_some_and(|(_, on)| on.parse::<bool>().is_ok());
        if !valid {
            bail!("invalid feature {f:?}: expected NAME=true|false");
        }
        // dockerd's switches (buildkit, containerd-snapshotter, …) are not berthd's.
        let name = f.split('=').next().unwrap_or_default();
        warnings.push(format!(
            "WARNING: feature {name:?} is not one berthd has: it is ignored"
        ));
    }
    let env = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
            .map(|v| mask_proxy(&v))
            .unwrap_or_default()
    };
    Ok(DaemonSettings {
        labels: args.label.clone(),
        debug: args.debug,
        live_restore: args.live_restore,
        warnings,
        userns: args.userns_remap.as_deref().is_some_and(|u| !u.is_empty()),
        address_pools: pools.iter().map(|(b, s)| (b.to_string(), *s)).collect(),
        proxies: [
            env(["HTTP_PROXY", "http_proxy"]),
            env(["HTTPS_PROXY", "https_proxy"]),
            env(["NO_PROXY", "no_proxy"]),
        ],
    })
}

fn registry_config(args: &Args) -> berth_distribution::ClientConfig {
    berth_distribution::ClientConfig {
        insecure_registries: args.insecure_registry.clone(),
        mirrors: args.registry_mirror.clone(),
        certs_dir: args.registry_certs_dir.clone(),
        user_agent: format!("berthd/{}", berth_engine::VERSION),
        ..Default::default()
    }
}

/// What `SIGHUP` does: reads the configuration again and applies what can change while running
/// (log level, debug, labels, registries, live restore, default ulimits, features); a change to
/// anything else is logged as needing a restart. A configuration with errors is refused whole.
struct Reloader {
    argv: Vec<std::ffi::OsString>,
    services: Arc<Services>,
    current: std::sync::Mutex<config::Merged>,
    log: LogReload,
    fixed_warnings: Vec<String>,
}

impl Reloader {
    fn reload(&self) {
        let applied = config::merge(&self.argv).and_then(|merged| {
            let ulimits = default_ulimits(&merged.args)?;
            let net = network_config(&merged.args)?;
            let settings = daemon_settings(&merged.args, &net.default_pools, &self.fixed_warnings)?;
            Ok((merged, ulimits, settings))
        });
        let (merged, ulimits, settings) = match applied {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("reloading the configuration failed, the running one stays: {e:#}");
                return;
            }
        };
        let mut current = match self.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        for key in config::changed_needing_restart(&current, &merged) {
            tracing::warn!("{key} changed in the configuration: restart berthd to apply it");
        }
        let new = &merged.args;
        if let Err(e) = self
            .log
            .modify(|f| *f = tracing_subscriber::EnvFilter::new(log_level(new)))
        {
            tracing::warn!("changing the log level: {e}");
        }
        let system = &self.services.system;
        let event = berth_engine::Event::new(berth_engine::EventType::Daemon, "reload", system.daemon_id())
            .attr("debug", settings.debug.to_string())
            .attr("labels", format!("{:?}", settings.labels))
            .attr("live-restore", settings.live_restore.to_string())
            .attr("insecure-registries", format!("{:?}", new.insecure_registry))
            .attr("registry-mirrors", format!("{:?}", new.registry_mirror));
        system.set_settings(settings);
        self.services.distribution.reconfigure(registry_config(new));
        self.services.containers.set_default_ulimits(ulimits);
        *current = merged;
        self.services.events.publish(event);
        tracing::info!("configuration reloaded");
    }

    fn live_restore(&self) -> bool {
        match self.current.lock() {
            Ok(c) => c.args.live_restore,
            Err(poisoned) => poisoned.into_inner().args.live_restore,
        }
    }
}

/// Without live restore, stops the running containers at shutdown (each with its stop signal and
/// timeout), as dockerd does.
async fn stop_containers(services: &Services) {
    let running = match services.containers.list(&Default::default()) {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!("listing containers to stop: {e}");
            return;
        }
    };
    let mut stops = tokio::task::JoinSet::new();
    for c in running {
        let Some(id) = c.id else { continue };
        let containers = services.containers.clone();
        stops.spawn(async move {
            if let Err(e) = containers.stop(&id, None, None).await {
                tracing::warn!("stopping container {id} at shutdown: {e}");
            }
        });
    }
    while stops.join_next().await.is_some() {}
}

#[tokio::main]
async fn main() -> Result<()> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let merged = config::merge(&argv)?;
    let args = merged.args.clone();
    let log_reload = init_logging(&args);
    if let Some(file) = &merged.file {
        tracing::info!("configuration file {}", file.display());
    }
    for key in &merged.overridden {
        tracing::info!("{key}: the command line's value is used, not the configuration file's");
    }
    // Everything that can be checked without touching the system.
    let ulimits = default_ulimits(&args)?;
    let net_cfg = network_config(&args)?;
    let mut settings = daemon_settings(&args, &net_cfg.default_pools, &[])?;
    for w in &settings.warnings {
        tracing::warn!("{}", w.trim_start_matches("WARNING: "));
    }
    let log_defaults = berth_engine::LogDefaults::parse(args.log_driver.as_deref(), &args.log_opt)
        .map_err(|e| anyhow::anyhow!("invalid log configuration: {e}"))?;
    let external_runtimes = runtimes(&args.add_runtime)?;
    let tls_acceptor = tls::acceptor(&args)?;
    if args.validate {
        println!("configuration OK");
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("berthd needs root (namespaces, mounts and cgroups); run it with sudo");
    }
    let shim_path = match args
        .shim
        .clone()
        .or_else(|| sibling("berth-shim"))
        .or_else(|| on_path("berth-shim"))
    {
        Some(p) => p,
        None => bail!("berth-shim not found next to berthd or on PATH; build it with `cargo build --release`"),
    };
    for d in [&args.data_root, &args.exec_root] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut locks = lock::RootLocks::acquire(&args.data_root, &args.exec_root)?;
    let (data_root, id_map) = match args.userns_remap.as_deref().filter(|s| !s.is_empty()) {
        None => (args.data_root.clone(), None),
        Some(spec) => {
            match berth_store::userns::load_userns_remap(spec).with_context(|| format!("--userns-remap {spec}"))? {
                None => (args.data_root.clone(), None),
                Some((user, map)) => {
                    let root = berth_store::userns::prepare_remapped_root(&args.data_root, &map)
                        .with_context(|| format!("preparing the remapped data root for {user:?}"))?;
                    tracing::info!("user namespaces remapped for {user:?}; state under {}", root.display());
                    (root, Some(map))
                }
            }
        }
    };
    let runtimes = Runtimes {
        shim: shim_path,
        init: args
            .init_path
            .clone()
            .or_else(|| on_path("docker-init"))
            .or_else(|| on_path("tini-static")),
        external: external_runtimes,
    };
    let mounted = ensure_tmpfs(&args.exec_root)?;
    // Whatever fails from here on leaves the exec root as it was found.
    let unmount = |e: anyhow::Error| {
        if mounted {
            let _ = nix::mount::umount2(&args.exec_root, nix::mount::MntFlags::MNT_DETACH);
        }
        e
    };
    if mounted {
        locks.relock_exec_root(&args.exec_root).map_err(unmount)?;
    }
    let pidfile = args
        .pidfile
        .clone()
        .unwrap_or_else(|| args.exec_root.join("berthd.pid"));
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pidfile.display()))
        .map_err(unmount)?;
    // Bind every socket before touching any state: a socket in use is refused with nothing changed.
    let mut listeners = Vec::new();
    let mut fixed_warnings = Vec::new();
    for host in &args.hosts {
        let (l, warning) = bind(host, &args, tls_acceptor.as_ref()).await.map_err(unmount)?;
        listeners.push(l);
        fixed_warnings.extend(warning);
    }
    settings.warnings.splice(0..0, fixed_warnings.iter().cloned());
    let metrics = match &args.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening for metrics on {addr}"))
                .map_err(unmount)?,
        ),
        None => None,
    };
    let services = open_services(
        &data_root,
        &args.exec_root,
        runtimes,
        id_map,
        Setup {
            log_defaults,
            net_cfg,
            registry_cfg: registry_config(&args),
            settings,
            default_ulimits: ulimits,
        },
    )
    .await
    .map_err(unmount)?;

    // SIGHUP's default would end the daemon: take it over before anyone can see the API.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut servers = tokio::task::JoinSet::new();
    for (host, l) in args.hosts.iter().zip(listeners) {
        match l {
            Listener::Unix(l) => servers.spawn(berth_api_server::serve_unix(l, services.clone())),
            Listener::Tcp(l) => servers.spawn(berth_api_server::serve_tcp(l, services.clone())),
            Listener::Tls(l, a) => servers.spawn(berth_api_server::serve_tls(l, a, services.clone())),
        };
        tracing::info!("API listening on {host}");
    }
    if let Some(l) = metrics {
        tracing::info!(
            "metrics on http://{}/metrics",
            args.metrics_addr.as_deref().unwrap_or_default()
        );
        servers.spawn(berth_api_server::serve_metrics(l, services.clone()));
    }
    let reloader = Arc::new(Reloader {
        argv,
        services: services.clone(),
        current: std::sync::Mutex::new(merged),
        log: log_reload,
        fixed_warnings,
    });
    {
        let reloader = reloader.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                reloader.reload();
            }
        });
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stopping = tokio::select! {
        r = servers.join_next() => {
            if let Some(Ok(Err(e))) = r {
                return Err(e).context("serving the API");
            }
            false
        }
        _ = tokio::signal::ctrl_c() => true,
        _ = term.recv() => true,
    };
    if stopping {
        if reloader.live_restore() {
            tracing::info!("stopping; containers keep running under their shims");
        } else {
            tracing::info!("stopping; stopping the running containers (live-restore is off)");
            stop_containers(&services).await;
        }
    }
    for host in &args.hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
    }
    // The build contexts' tmpfs holds nothing a next daemon needs.
    let _ = nix::mount::umount2(
        &data_root.join("builder").join("contexts"),
        nix::mount::MntFlags::MNT_DETACH,
    );
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}
