//! A minimal `registry serve` for manual interop checks (the real CLI is `berth registry serve`):
//!
//! ```text
//! cargo run -p berth-registry --example serve -- ROOT 127.0.0.1:5000 \
//!     [--htpasswd FILE] [--token-realm URL] [--tls-cert PEM --tls-key PEM] [--no-delete]
//! cargo run -p berth-registry --example serve -- --gc ROOT [--dry-run]
//! cargo run -p berth-registry --example serve -- --bcrypt PASSWORD   # an htpasswd hash
//! ```
//! Stops on Ctrl-C.

use berth_registry::{gc, serve, Registry, ServerConfig, TlsConfig, TokenConfig};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--bcrypt") {
        let pass = args.get(1).ok_or("usage: --bcrypt PASSWORD")?;
        println!("{}", bcrypt::hash(pass, bcrypt::DEFAULT_COST)?);
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("--gc") {
        let root = args.get(1).ok_or("usage: --gc ROOT [--dry-run]")?;
        let report = gc(root.as_ref(), args.iter().any(|a| a == "--dry-run"))?;
        println!("{report}");
        return Ok(());
    }
    let (root, addr) = match (args.first(), args.get(1)) {
        (Some(r), Some(a)) => (r.clone(), a.clone()),
        _ => return Err("usage: ROOT ADDR [options]".into()),
    };
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mut cfg = ServerConfig::new(root);
    cfg.htpasswd = opt("--htpasswd").map(Into::into);
    cfg.delete_enabled = !args.iter().any(|a| a == "--no-delete");
    if let Some(realm) = opt("--token-realm") {
        cfg.token = Some(TokenConfig::with_random_key(
            realm,
            addr.clone(),
            Duration::from_secs(300),
        )?);
    }
    if let (Some(cert), Some(key)) = (opt("--tls-cert"), opt("--tls-key")) {
        cfg.tls = Some(TlsConfig {
            cert: cert.into(),
            key: key.into(),
        });
    }
    let reg = Registry::open(cfg)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("serving on {}", listener.local_addr()?);
    serve(reg, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
