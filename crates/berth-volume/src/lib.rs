//! Docker's `local` volume driver, as a library the engine calls on blocking threads.
//!
//! The layout on disk is dockerd's, so a volumes directory reads the same to both:
//!
//! ```text
//! <root>/<name>/_data         the volume's data (0755, owned by the --userns-remap root if any)
//! <root>/<name>/opts.json     dockerd's driver options record (only when there are options)
//! <root>/<name>/volume.json   berth's record: name, driver, created time, labels, options
//! ```
//!
//! - [`VolumeStore::create`] builds the whole `<name>` directory under a temporary name and renames
//!   it into place, so a crash leaves either a complete volume or a temporary directory that
//!   [`VolumeStore::open`] removes.
//! - Volumes with `type`/`device`/`o` options are mounted on `_data` at their first user and
//!   unmounted at the last ([`VolumeStore::mount`], [`VolumeStore::unmount`]); the users are counted
//!   in memory, and [`VolumeStore::restore_users`] rebuilds them after a restart without mounting
//!   twice (a mount already listed in `/proc/self/mountinfo` is adopted).
//! - [`VolumeStore::fill_from`] is Docker's copy-up of an image directory into an empty volume;
//!   [`VolumeStore::usage`] is the size `system df` shows. Both walk by file descriptor and never
//!   follow a symlink.
//! - Whether a volume is in use by containers is the engine's to decide (it answers 409 itself);
//!   this crate refuses to remove a volume only while it still counts users or mounts under it.

mod copy;
mod error;
mod mountinfo;
mod options;
mod store;

pub use error::VolumeError;
pub use options::{needs_mount, parse_ram_size, validate_name, validate_options, MountOptions, RESTRICTED_NAME_CHARS};
pub use store::VolumeStore;

use berth_api::models;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The name of the only driver built in, and the default (`docker volume create` without `-d`).
pub const LOCAL_DRIVER: &str = "local";

/// A volume, as `docker volume inspect` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's name (64 hex characters for an anonymous volume).
    pub name: String,
    /// The driver that made it (`local`).
    pub driver: String,
    /// The host directory bound into containers: `<root>/<name>/_data`.
    pub mountpoint: PathBuf,
    /// When it was created, RFC 3339 to the second as Docker prints it.
    pub created_at: String,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o`).
    pub options: BTreeMap<String, String>,
    /// `local` (machine-level), as for every volume of the local driver.
    pub scope: String,
}

impl Volume {
    /// The Engine API model (`GET /volumes/{name}`); the engine fills `UsageData` for `system df`.
    pub fn to_api(&self) -> models::Volume {
        models::Volume {
            name: self.name.clone(),
            driver: self.driver.clone(),
            mountpoint: self.mountpoint.to_string_lossy().into_owned(),
            created_at: Some(self.created_at.clone()),
            status: None,
            labels: self.labels.clone().into_iter().collect(),
            scope: Some(match self.scope.as_str() {
                "global" => models::VolumeScopeEnum::GLOBAL,
                _ => models::VolumeScopeEnum::LOCAL,
            }),
            cluster_volume: None,
            options: self.options.clone().into_iter().collect(),
            usage_data: None,
        }
    }

    /// Whether the volume is mounted on `_data` at its first user (it has `type` or `device`).
    pub fn needs_mount(&self) -> bool {
        needs_mount(&self.options)
    }
}
