//! `berth-registry`: berth's registry server and its garbage collector. `berth registry ...` runs
//! this binary (kept apart so the everyday CLI does not carry a TLS server).

use anyhow::{bail, Context, Result};
use berth_registry::{gc_with, serve, GcOptions, Registry, ServerConfig, TlsConfig, TokenConfig};
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Where `serve` and `gc` keep the registry's content unless `--root` says otherwise.
const DEFAULT_ROOT: &str = "/var/lib/berth-registry";

#[derive(Parser, Debug)]
#[command(
    name = "berth registry",
    bin_name = "berth registry",
    about = "Run an OCI distribution registry, and collect its garbage",
    version
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the registry API (OCI distribution spec v1.1) until interrupted
    Serve(ServeArgs),
    /// Remove blobs no manifest references (stop the server first)
    Gc(GcArgs),
    /// Print an htpasswd line (bcrypt) for USER, the password read from stdin
    Htpasswd(HtpasswdArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: String,
    /// Storage directory
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Require these users (an htpasswd file with bcrypt hashes)
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Issue bearer tokens: the URL of this server's /token endpoint as clients reach it
    #[arg(long)]
    token_realm: Option<String>,
    /// The service name tokens are issued for (default: --addr)
    #[arg(long)]
    token_service: Option<String>,
    /// A file holding the token signing key (at least 16 bytes; default: random per start)
    #[arg(long)]
    token_key_file: Option<PathBuf>,
    /// Token lifetime in seconds
    #[arg(long, default_value_t = 300)]
    token_ttl: u64,
    /// TLS certificate chain (PEM)
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Refuse manifest and blob deletes (405)
    #[arg(long)]
    no_delete: bool,
    /// Largest manifest accepted, in bytes
    #[arg(long, default_value_t = berth_registry::DEFAULT_MAX_MANIFEST_BYTES)]
    max_manifest_size: u64,
}

#[derive(Args, Debug)]
struct GcArgs {
    /// Storage directory
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Only report what would be removed
    #[arg(long)]
    dry_run: bool,
    /// Also delete manifests no tag reaches
    #[arg(long)]
    delete_untagged: bool,
}

#[derive(Args, Debug)]
struct HtpasswdArgs {
    /// The user name
    user: String,
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth registry: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Serve(a) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(serve_cmd(a))
        }
        Cmd::Gc(a) => {
            let opts = GcOptions {
                dry_run: a.dry_run,
                delete_untagged: a.delete_untagged,
                ..GcOptions::default()
            };
            let report =
                gc_with(&a.root, &opts).with_context(|| format!("collecting garbage in {}", a.root.display()))?;
            println!("{report}");
            Ok(())
        }
        Cmd::Htpasswd(a) => {
            if a.user.is_empty() || a.user.contains(':') {
                bail!("a user name must be non-empty and without ':'");
            }
            let mut pass = String::new();
            std::io::stdin()
                .read_to_string(&mut pass)
                .context("reading the password from stdin")?;
            let pass = pass.trim_end_matches(['\n', '\r']);
            if pass.is_empty() {
                bail!("no password on stdin");
            }
            let hash = bcrypt::hash(pass, bcrypt::DEFAULT_COST).context("hashing the password")?;
            println!("{}:{hash}", a.user);
            Ok(())
        }
    }
}

async fn serve_cmd(a: ServeArgs) -> Result<()> {
    let mut cfg = ServerConfig::new(&a.root);
    cfg.htpasswd = a.htpasswd;
    cfg.delete_enabled = !a.no_delete;
    cfg.max_manifest_bytes = a.max_manifest_size;
    if let Some(realm) = a.token_realm {
        let service = a.token_service.unwrap_or_else(|| a.addr.clone());
        let ttl = Duration::from_secs(a.token_ttl);
        cfg.token = Some(match a.token_key_file {
            Some(f) => {
                let key = std::fs::read(&f).with_context(|| format!("reading the token key {}", f.display()))?;
                TokenConfig {
                    realm,
                    service,
                    key,
                    ttl,
                }
            }
            None => TokenConfig::with_random_key(realm, service, ttl).context("making a token key")?,
        });
    }
    if let (Some(cert), Some(key)) = (a.tls_cert, a.tls_key) {
        cfg.tls = Some(TlsConfig { cert, key });
    }
    let reg = Registry::open(cfg).with_context(|| format!("opening the registry in {}", a.root.display()))?;
    let listener = tokio::net::TcpListener::bind(&a.addr)
        .await
        .with_context(|| format!("listening on {} (is another registry running there?)", a.addr))?;
    let local = listener.local_addr().context("reading the listening address")?;
    eprintln!("berth registry: serving {} on {local}", a.root.display());
    serve(reg, listener, shutdown_signal()).await.context("serving")?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
