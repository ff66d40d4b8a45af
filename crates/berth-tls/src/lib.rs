//! What berth's TLS users share (the Engine API client and daemon, the registry client and
//! server): reading PEM certificates and keys, and the verifier that accepts any server
//! certificate (`--tls` without `--tlsverify`, registries listed as insecure). Errors carry no
//! path: each caller names the file in its own error.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A PEM file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file could not be read.
    #[error("{0}")]
    Read(std::io::Error),
    /// The file is not valid PEM.
    #[error("bad PEM: {0}")]
    Bad(std::io::Error),
    /// No certificate in it.
    #[error("no PEM certificate in the file")]
    NoCertificate,
    /// No private key in it.
    #[error("no PEM private key in the file")]
    NoKey,
}

/// The PEM certificates in `path` (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let data = std::fs::read(path).map_err(PemError::Read)?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::Bad)?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certs)
}

/// The PEM private key in `path`.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let data = std::fs::read(path).map_err(PemError::Read)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(PemError::Bad)?
        .ok_or(PemError::NoKey)
}

/// A verifier that accepts any server certificate (the connection is encrypted, whoever
/// answers); signatures are still checked with `provider`'s algorithms.
pub fn accept_any_server(provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(AcceptAny(provider))
}

#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_pem_are_named_for_what_they_lack() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pem");
        std::fs::write(&p, "not pem").unwrap();
        assert!(matches!(read_certs(&p), Err(PemError::NoCertificate)));
        assert!(matches!(read_key(&p), Err(PemError::NoKey)));
        assert!(matches!(read_certs(&dir.path().join("none")), Err(PemError::Read(_))));
    }
}
