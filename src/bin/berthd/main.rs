//! `berthd`: the berth daemon. Serves the Docker Engine API on a UNIX socket (or loopback TCP).
//!
//! This is the composition root: it takes the roots' locks, opens the snapshotter and the image
//! store, and builds and wires the services explicitly (see `berth_engine`'s crate docs).

mod lock;

use anyhow::{bail, Context, Result};
use berth_engine::{
    ContainerDeps, ContainerService, ContainerServiceConfig, EventBus, ImageService, Networks, NetworksConfig,
    Registry, Runtimes, Services, SystemService, Volumes,
};
use berth_snapshot::Snapshotter;
use berth_store::ImageStore;
use clap::Parser;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The berth daemon: a container engine that speaks the Docker Engine API.
#[derive(Parser, Debug)]
#[command(name = "berthd", version, about)]
struct Args {
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
}

/// Binds one `--host`.
async fn bind(host: &str, group: Option<&str>) -> Result<Listener> {
    if let Some(path) = host.strip_prefix("unix://") {
        Ok(Listener::Unix(listen_unix(Path::new(path), group).await?))
    } else if let Some(addr) = host.strip_prefix("tcp://") {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {host}"))?;
        if !l.local_addr().map(|a| a.ip().is_loopback()).unwrap_or(false) {
            tracing::warn!("{host} is not a loopback address: the API has no authentication");
        }
        Ok(Listener::Tcp(l))
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
    let st = nix::sys::statfs::statfs(dir).with_context(|| format!("statfs {}", dir.display()))?;
    if st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC {
        return Ok(false);
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0711,size=256m"),
    )
    .with_context(|| format!("mounting a tmpfs on the exec root {}", dir.display()))?;
    tracing::info!("mounted a tmpfs on the exec root {}", dir.display());
    Ok(true)
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

/// Builds the services over the data root and wires them.
async fn open_services(
    data_root: &Path,
    exec_root: &Path,
    runtimes: Runtimes,
    id_map: Option<berth_types::IdentityMapping>,
    log_defaults: berth_engine::LogDefaults,
    mut net_cfg: NetworksConfig,
    registry_cfg: berth_distribution::ClientConfig,
) -> Result<Arc<Services>> {
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
    );
    let build = Arc::new(berth_engine::BuildService::new(
        containers.clone(),
        images.clone(),
        distribution.clone(),
        data_root.join("builder").join("tmp"),
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

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log_level))
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        logs.json().with_ansi(false).init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
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
    let log_defaults = berth_engine::LogDefaults::parse(args.log_driver.as_deref(), &args.log_opt)
        .map_err(|e| anyhow::anyhow!("invalid log configuration: {e}"))?;
    let runtimes = Runtimes {
        shim: shim_path,
        init: args
            .init_path
            .clone()
            .or_else(|| on_path("docker-init"))
            .or_else(|| on_path("tini-static")),
        external: runtimes(&args.add_runtime)?,
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
    for host in &args.hosts {
        listeners.push(bind(host, args.group.as_deref()).await.map_err(unmount)?);
    }
    let services = open_services(
        &data_root,
        &args.exec_root,
        runtimes,
        id_map,
        log_defaults,
        network_config(&args)?,
        berth_distribution::ClientConfig {
            insecure_registries: args.insecure_registry.clone(),
            mirrors: args.registry_mirror.clone(),
            certs_dir: args.registry_certs_dir.clone(),
            user_agent: format!("berthd/{}", berth_engine::VERSION),
            ..Default::default()
        },
    )
    .await
    .map_err(unmount)?;

    let mut servers = tokio::task::JoinSet::new();
    for (host, l) in args.hosts.iter().zip(listeners) {
        match l {
            Listener::Unix(l) => servers.spawn(berth_api_server::serve_unix(l, services.clone())),
            Listener::Tcp(l) => servers.spawn(berth_api_server::serve_tcp(l, services.clone())),
        };
        tracing::info!("API listening on {host}");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = servers.join_next() => {
            if let Some(Ok(Err(e))) = r {
                return Err(e).context("serving the API");
            }
        }
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; containers keep running under their shims"),
        _ = term.recv() => tracing::info!("terminated; containers keep running under their shims"),
    }
    for host in &args.hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}
