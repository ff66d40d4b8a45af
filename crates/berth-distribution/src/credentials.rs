//! Docker's client credentials file, `~/.docker/config.json`, and credential helpers: moved to
//! the `berth-credentials` crate (shared with the CLI, which must not link TLS); re-exported here.

pub use berth_credentials::config::*;
