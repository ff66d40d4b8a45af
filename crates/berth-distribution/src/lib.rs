//! berth's registry client: the OCI distribution spec / Docker Registry HTTP API v2, used by
//! berthd for `pull`, `push`, `login`, `search` and `manifest inspect`, and Docker's client
//! credentials file.
//!
//! Written on hyper 1 and rustls (ring) rather than `oci-client`: that crate pulls reqwest (with
//! aws-lc-rs by default), takes one TLS configuration for all registries (we need certs.d roots and
//! client certificates per registry, and Docker's HTTPS-then-HTTP fallback), has no resumable,
//! verified blob stream, and has no notion of Docker Hub mirrors.
//!
//! - [`RegistryClient`]: resolve, manifests, blobs (fetch, exists, mount, push), tags, login, search.
//! - [`AuthConfig`]: Docker's credentials JSON and the `X-Registry-Auth` header.
//! - [`credentials`]: `~/.docker/config.json` and credential helpers.

pub mod auth;
pub mod blob;
pub mod client;
pub mod credentials;
pub mod error;
pub mod manifest;
pub mod transport;

pub use auth::{parse_challenge, AuthConfig, Challenge};
pub use blob::BlobStream;
pub use client::{registry_domain, LoginOutcome, RegistryClient, Resolved, SearchResult};
pub use error::{DistributionError, Result};
pub use manifest::{Descriptor, Platform};
pub use transport::ClientConfig;

/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = berth_types::reference::DEFAULT_TAG;
