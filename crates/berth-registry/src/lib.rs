//! berth-registry: an OCI distribution-spec (v1.1) registry server, the server side of
//! `berth registry serve`, and its garbage collector (`berth registry gc`).
//!
//! - [`Registry::open`] opens (creating) a filesystem store and loads the auth and TLS material;
//! - [`Registry::router`] is the axum router of the `/v2/` API (plus `/token` when token auth is on);
//! - [`serve`] runs it on a listener (TLS when configured) until `shutdown` resolves;
//! - [`gc()`] removes blobs no manifest references (run it while the server is stopped, as with
//!   Docker's registry: a push in flight has blobs no manifest references yet).
//!
//! Storage layout and atomicity rules are described in [`storage`]; auth policy in [`auth`].

pub mod auth;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod names;
pub mod range;
mod server;
pub mod storage;
mod tls;

pub use error::{ApiError, Code, RegistryError};
pub use gc::{gc, gc_with, GcOptions, GcReport};

use auth::Htpasswd;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage::Store;

/// Default cap on a pushed manifest's size (the spec asks registries to accept at least 4 MB).
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// How `berth registry serve` is configured.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Storage root.
    pub root: PathBuf,
    /// A bcrypt htpasswd file (Apache format, `$2y$`/`$2b$`/`$2a$`); when set, clients must
    /// authenticate (basic auth, or at `/token` when `token` is set).
    pub htpasswd: Option<PathBuf>,
    /// Bearer token auth: the server issues its own tokens at `/token`.
    pub token: Option<TokenConfig>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
    /// Largest manifest accepted (413 beyond it).
    pub max_manifest_bytes: u64,
    /// Whether DELETE of manifests, tags and blobs is allowed (405 UNSUPPORTED otherwise).
    pub delete_enabled: bool,
}

impl ServerConfig {
    /// A configuration with the defaults: no auth, no TLS, 4 MiB manifests, deletes enabled.
    pub fn new(root: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            root: root.into(),
            htpasswd: None,
            token: None,
            tls: None,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            delete_enabled: true,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig::new(PathBuf::new())
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Bearer token auth (Docker's token protocol) with tokens issued by this server.
#[derive(Clone)]
pub struct TokenConfig {
    /// URL of the `/token` endpoint as clients see it, e.g. `https://host:5000/token`.
    pub realm: String,
    /// The service name clients pass back (`service=`), e.g. `host:5000`.
    pub service: String,
    /// HMAC-SHA256 secret that signs tokens.
    pub key: Vec<u8>,
    /// Token lifetime.
    pub ttl: Duration,
}

impl TokenConfig {
    /// A token config with a fresh random 32-byte signing key (tokens then die with the process,
    /// which is fine: clients fetch a new one on the next 401).
    pub fn with_random_key(
        realm: impl Into<String>,
        service: impl Into<String>,
        ttl: Duration,
    ) -> Result<TokenConfig, RegistryError> {
        let mut key = vec![0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| RegistryError::Random(e.to_string()))?;
        Ok(TokenConfig {
            realm: realm.into(),
            service: service.into(),
            key,
            ttl,
        })
    }
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("realm", &self.realm)
            .field("service", &self.service)
            .field("key", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The registry: configuration, store and auth material. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ServerConfig,
    store: Store,
    htpasswd: Option<Htpasswd>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// In-progress uploads' running hash state, so a finished upload need not be read back.
    uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<server::UploadState>>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("cfg", &self.inner.cfg).finish()
    }
}

impl Registry {
    /// Opens the store at `cfg.root` (creating it), removes expired upload sessions, and loads the
    /// htpasswd file and TLS certificate so configuration errors surface before serving.
    pub fn open(cfg: ServerConfig) -> Result<Registry, RegistryError> {
        if cfg.max_manifest_bytes == 0 {
            return Err(RegistryError::Config("max_manifest_bytes must be positive".into()));
        }
        if let Some(t) = &cfg.token {
            if t.realm.is_empty() || t.service.is_empty() {
                return Err(RegistryError::Config("token auth needs a realm and a service".into()));
            }
            if t.key.len() < 16 {
                return Err(RegistryError::Config(
                    "token signing key must be at least 16 bytes".into(),
                ));
            }
        }
        let store = Store::open(&cfg.root)?;
        let htpasswd = cfg.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
        let tls = cfg.tls.as_ref().map(tls::server_config).transpose()?;
        Ok(Registry {
            inner: Arc::new(Inner {
                cfg,
                store,
                htpasswd,
                tls,
                uploads: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration the registry was opened with.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.cfg
    }

    /// The HTTP routes: `/v2/...` and, with token auth, `/token`.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }
}

/// Serves `reg` on `listener` (HTTPS when the config has TLS) until `shutdown` resolves, then stops
/// accepting and lets open connections finish their current request (at most 10 s).
pub async fn serve(
    reg: Registry,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryError> {
    server::serve(reg, listener, shutdown).await
}
