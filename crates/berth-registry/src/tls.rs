//! Loading the certificate and key for HTTPS (rustls with the ring provider).

use crate::{RegistryError, TlsConfig};
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

fn tls_err(path: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Tls {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Builds a rustls server config from PEM files; offers HTTP/1.1 only over ALPN.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, RegistryError> {
    let cert_pem = std::fs::read(&cfg.cert).map_err(RegistryError::io("read", &cfg.cert))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(cert_pem.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(&cfg.cert, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(&cfg.cert, "no certificate found"));
    }
    let key_pem = std::fs::read(&cfg.key).map_err(RegistryError::io("read", &cfg.key))?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(key_pem.as_slice()))
        .map_err(|e| tls_err(&cfg.key, format!("bad PEM: {e}")))?
        .ok_or_else(|| tls_err(&cfg.key, "no private key found"))?;
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
