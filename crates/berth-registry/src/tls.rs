//! Loading the certificate and key for HTTPS (rustls with the ring provider).

use crate::{RegistryError, TlsConfig};
use std::path::Path;
use std::sync::Arc;

fn tls_err(path: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Tls {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn pem_err(path: &Path, e: berth_tls::PemError) -> RegistryError {
    match e {
        berth_tls::PemError::Read(source) => RegistryError::io("read", path)(source),
        e => tls_err(path, e.to_string()),
    }
}

/// Builds a rustls server config from PEM files; offers HTTP/1.1 only over ALPN.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, RegistryError> {
    let certs = berth_tls::read_certs(&cfg.cert).map_err(|e| pem_err(&cfg.cert, e))?;
    let key = berth_tls::read_key(&cfg.key).map_err(|e| pem_err(&cfg.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&cfg.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err(&cfg.key, e.to_string()))?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}
