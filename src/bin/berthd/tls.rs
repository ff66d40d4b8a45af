//! TLS on the daemon's TCP hosts, as dockerd: `--tls` serves TLS with `--tlscert`/`--tlskey`;
//! `--tlsverify` also requires every client to present a certificate signed by `--tlscacert`.
//! A non-loopback TCP host without `--tlsverify` is refused unless `--insecure-tcp`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::Args;

/// The directory dockerd takes its TLS files from by default: `$DOCKER_CERT_PATH`, else `~/.docker`.
fn default_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".docker"),
    }
}

/// The acceptor for TCP hosts, or `None` without `--tls`/`--tlsverify`.
pub fn acceptor(args: &Args) -> Result<Option<tokio_rustls::TlsAcceptor>> {
    if !(args.tls || args.tlsverify) {
        return Ok(None);
    }
    let file = |given: &Option<PathBuf>, name: &str| given.clone().unwrap_or_else(|| default_dir().join(name));
    let (cert, key) = (file(&args.tlscert, "cert.pem"), file(&args.tlskey, "key.pem"));
    let certs = berth_tls::read_certs(&cert).with_context(|| format!("--tlscert {}", cert.display()))?;
    let key = berth_tls::read_key(&key).with_context(|| format!("--tlskey {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let builder = if args.tlsverify {
        let ca = file(&args.tlscacert, "ca.pem");
        let mut roots = rustls::RootCertStore::empty();
        for c in berth_tls::read_certs(&ca).with_context(|| format!("--tlscacert {}", ca.display()))? {
            roots
                .add(c)
                .with_context(|| format!("--tlscacert {}: not a usable CA certificate", ca.display()))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .with_context(|| format!("client certificate checks with the CA {}", ca.display()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the daemon's certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Adds dockerd's default port to a `tcp://` address without one: 2376 with TLS, 2375 without.
pub fn with_default_port(addr: &str, tls: bool) -> String {
    let has_port = match addr.rsplit_once(':') {
        Some((host, port)) => !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && !host.is_empty(),
        None => false,
    } && !(addr.starts_with('[') && addr.ends_with(']'));
    if has_port {
        addr.to_string()
    } else {
        format!("{addr}:{}", if tls { 2376 } else { 2375 })
    }
}

/// Whether a TCP host may be served as asked: a loopback address always; any other only with
/// client certificates (`--tlsverify`) or `--insecure-tcp`. Returns the warning to log and to show in
/// `/info` when the API is open to the network.
pub fn check_exposure(host: &str, local: SocketAddr, args: &Args) -> Result<Option<String>> {
    if local.ip().is_loopback() || args.tlsverify {
        return Ok(None);
    }
    let scheme = if args.tls { "https" } else { "http" };
    if !args.insecure_tcp {
        bail!(
            "refusing to listen on {host} without --tlsverify: anyone who reaches {local} would control this \
             machine as root. Use --tlsverify with --tlscacert, --tlscert and --tlskey (client certificates), \
             listen on a loopback or unix address, or pass --insecure-tcp to do it anyway"
        );
    }
    Ok(Some(format!(
        "WARNING: API is accessible on {scheme}://{local} without client certificates: anyone who reaches \
         it controls this machine as root (--insecure-tcp)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports() {
        assert_eq!(with_default_port("0.0.0.0", false), "0.0.0.0:2375");
        assert_eq!(with_default_port("0.0.0.0", true), "0.0.0.0:2376");
        assert_eq!(with_default_port("127.0.0.1:99", true), "127.0.0.1:99");
        assert_eq!(with_default_port("[::1]", true), "[::1]:2376");
        assert_eq!(with_default_port("[::1]:5", true), "[::1]:5");
    }

    #[test]
    fn exposure_rules() {
        use clap::Parser;
        let args = |extra: &[&str]| Args::parse_from(["berthd"].iter().chain(extra));
        let lo: SocketAddr = "127.0.0.1:2375".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:2375".parse().unwrap();
        assert!(check_exposure("tcp://127.0.0.1:2375", lo, &args(&[]))
            .unwrap()
            .is_none());
        let e = check_exposure("tcp://0.0.0.0:2375", any, &args(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--insecure-tcp") && e.contains("--tlsverify"), "{e}");
        assert!(check_exposure("tcp://0.0.0.0:2375", any, &args(&["--tls"])).is_err());
        assert!(check_exposure("tcp://0.0.0.0:2376", any, &args(&["--tlsverify"]))
            .unwrap()
            .is_none());
        let w = check_exposure("tcp://0.0.0.0:2375", any, &args(&["--insecure-tcp"]))
            .unwrap()
            .unwrap();
        assert!(w.contains("http://0.0.0.0:2375"), "{w}");
    }
}
