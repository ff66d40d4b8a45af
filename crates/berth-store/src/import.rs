//! `docker import`: one layer from a root filesystem tar, config from Dockerfile-style changes.

use crate::{apply_changes, ImageRecord, ImageStore, LayerBlob, Result, StoreError, MEDIA_DOCKER_LAYER};
use berth_types::Reference;
use serde_json::{json, Value};
use std::io::Read;

/// Options for [`ImageStore::import`] (`docker import`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag for the new image.
    pub tag: Option<Reference>,
    /// Dockerfile-style changes (`CMD ["sh"]`, `ENV A=B`, ...).
    pub changes: Vec<String>,
    /// History comment; Docker's default is `Imported from -`.
    pub message: String,
    /// `os` of the config (default `linux`).
    pub os: Option<String>,
    /// `architecture` of the config (default: this machine's, in Go's names).
    pub architecture: Option<String>,
}

/// Go's name for this machine's architecture, as image configs use.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl ImageStore {
    /// `docker import`: one layer from a root filesystem tar (plain or gzip), config from `opts.changes`.
    pub fn import(&self, rootfs_tar: impl Read + Send, opts: ImportOptions) -> Result<ImageRecord> {
        if opts.tag.as_ref().is_some_and(|t| t.digest().is_some()) {
            return Err(StoreError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let reader = berth_archive::decompress(rootfs_tar).map_err(|source| StoreError::Archive {
            what: "import".into(),
            source,
        })?;
        // Docker stores an imported layer uncompressed, so its blob digest is its diff ID.
        let (diff_id, size) = self.blobs.put(reader, None, "imported root filesystem")?;
        let now = berth_types::time::now_rfc3339();
        let mut cfg = serde_json::Map::new();
        apply_changes(&mut cfg, &opts.changes)?;
        let message = if opts.message.is_empty() {
            "Imported from -".to_string()
        } else {
            opts.message.clone()
        };
        let config = json!({
            "architecture": opts.architecture.clone().unwrap_or_else(|| host_architecture().to_string()),
            "comment": message,
            "config": Value::Object(cfg),
            "created": now,
            "history": [{"created": now, "comment": message}],
            "os": opts.os.clone().unwrap_or_else(|| "linux".to_string()),
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        });
        let bytes = serde_json::to_vec(&config).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let layer = LayerBlob {
            digest: diff_id.clone(),
            media_type: MEDIA_DOCKER_LAYER.into(),
            size,
        };
        let rec = match self.create_image(&bytes, std::slice::from_ref(&layer)) {
            Ok(r) => r,
            Err(e) => {
                let _ = self.collect_garbage(&[], &[diff_id], &[]);
                return Err(e);
            }
        };
        if let Some(t) = &opts.tag {
            self.set_reference(t, &rec.id)?;
            return self.get(&rec.id);
        }
        Ok(rec)
    }
}
