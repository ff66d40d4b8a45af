//! TLS to a daemon on TCP, as Docker's client does it: `--tlsverify` (or `DOCKER_TLS_VERIFY`) checks
//! the daemon's certificate against the CA in `ca.pem` and presents `cert.pem`/`key.pem`; `--tls`
//! alone encrypts without checking who answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// Where the client's TLS material is and whether the daemon's certificate is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// The CA that signed the daemon's certificate (`ca.pem`); without it, the system's roots.
    pub ca: Option<PathBuf>,
    /// The client certificate (`cert.pem`), presented when the daemon asks.
    pub cert: Option<PathBuf>,
    /// The client certificate's key (`key.pem`).
    pub key: Option<PathBuf>,
    /// Check the daemon's certificate and name (`--tlsverify`); `false` is `--tls` alone.
    pub verify: bool,
}

impl TlsOptions {
    /// The files Docker's client takes from a certificate directory (`DOCKER_CERT_PATH`), each only
    /// if it exists.
    pub fn from_dir(dir: &Path, verify: bool) -> TlsOptions {
        let file = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        TlsOptions {
            ca: file("ca.pem"),
            cert: file("cert.pem"),
            key: file("key.pem"),
            verify,
        }
    }
}

/// The client's TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("could not read TLS file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A certificate without its key, or the other way round.
    #[error("TLS: a client certificate needs its key and a key its certificate (--tlscert and --tlskey)")]
    Incomplete,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The daemon's address has no name a certificate can be checked against.
    #[error("TLS: {0:?} is not a host name or IP address a certificate can be checked against")]
    ServerName(String),
}

/// The PEM certificates in `path` (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    berth_tls::read_certs(path).map_err(|e| pem_error(path, e))
}

/// The PEM private key in `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    berth_tls::read_key(path).map_err(|e| pem_error(path, e))
}

fn pem_error(path: &Path, e: berth_tls::PemError) -> TlsError {
    match e {
        berth_tls::PemError::Read(source) => TlsError::Read {
            path: path.to_path_buf(),
            source,
        },
        e => TlsError::Pem {
            path: path.to_path_buf(),
            what: e.to_string(),
        },
    }
}

/// The rustls configuration for `opts`.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if opts.verify {
        let mut roots = RootCertStore::empty();
        match &opts.ca {
            Some(ca) => {
                for cert in load_certs(ca)? {
                    roots.add(cert).map_err(|e| TlsError::Pem {
                        path: ca.clone(),
                        what: format!("not a usable CA certificate: {e}"),
                    })?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for cert in native.certs {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(berth_tls::accept_any_server(provider))
    };
    let config = match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::Incomplete),
    };
    Ok(Arc::new(config))
}

/// The name the daemon's certificate is checked against: the host part of `host:port`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match addr.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::ServerName(addr.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(server_name("127.0.0.1:2376").is_ok());
        assert!(server_name("[::1]:2376").is_ok());
        assert!(server_name("daemon.example:2376").is_ok());
        assert!(server_name("bad name:1").is_err());
    }

    #[test]
    fn incomplete_pairs_are_refused() {
        let o = TlsOptions {
            cert: Some("/nonexistent/cert.pem".into()),
            verify: false,
            ..Default::default()
        };
        assert!(matches!(client_config(&o), Err(TlsError::Incomplete)));
        let o = TlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            verify: true,
            ..Default::default()
        };
        let e = client_config(&o).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn from_dir_takes_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let o = TlsOptions::from_dir(dir.path(), true);
        assert_eq!(o.ca, Some(dir.path().join("ca.pem")));
        assert_eq!(o.cert, None);
        assert!(o.verify);
    }
}
