//! Image records: what `images/<hex>.json` holds, and the [`ImageRecord`] built from it, the config
//! blob and the references; `get`, `list`, `size` and `history` read them.

use crate::refs::Refs;
use crate::{io_err, ImageStore, Result, StoreError};
use berth_types::{chain_ids, ChainId, Digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io;
use std::path::PathBuf;

/// One layer blob of an image, as stored in the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// Digest of the blob as stored (compressed or not).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An image as the engine sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRecord {
    /// Image ID: digest of the config.
    pub id: Digest,
    /// The image config (parsed from the stored, verbatim bytes).
    pub config: Value,
    /// `repo:tag` references, familiar form (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `repo@sha256:...` references.
    pub repo_digests: Vec<String>,
    /// `created` from the config (RFC 3339), empty when absent.
    pub created: String,
    /// Sum of the unpacked layer sizes.
    pub size: u64,
    /// Layer diff IDs, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Layer chain IDs, bottom first (snapshot keys).
    pub chain_ids: Vec<ChainId>,
    /// Layer blobs in the content store, bottom first.
    pub layers: Vec<LayerBlob>,
}

/// What `images/<hex>.json` holds; everything else comes from the config blob and the references.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredImage {
    pub(crate) id: Digest,
    pub(crate) layers: Vec<LayerBlob>,
    pub(crate) size: u64,
}

/// One image a `load` brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Its ID.
    pub id: Digest,
    /// Tags it got (familiar form).
    pub tags: Vec<String>,
}

impl LoadedImage {
    /// Docker's result lines: `Loaded image: bb:latest` per tag, or `Loaded image ID: sha256:...`.
    pub fn messages(&self) -> Vec<String> {
        if self.tags.is_empty() {
            vec![format!("Loaded image ID: {}", self.id)]
        } else {
            self.tags.iter().map(|t| format!("Loaded image: {t}")).collect()
        }
    }
}

/// One `docker history` row, with the Engine API's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID for the top row, `<missing>` below it (Docker keeps no IDs for parent layers).
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The instruction that made the row.
    pub created_by: String,
    /// Tags of the image, on the top row only.
    pub tags: Vec<String>,
    /// Unpacked size of the layer this row made (0 for `empty_layer` rows).
    pub size: u64,
    /// Comment.
    pub comment: String,
}

impl ImageStore {
    fn intermediate_path(&self, id: &Digest) -> PathBuf {
        self.root.join("intermediate").join(id.hex())
    }

    /// Marks `id` as a build step's image (kept for the build cache): `docker images` leaves such
    /// images out unless tagged or asked for with `-a`, and a dangling-only prune spares them.
    pub fn mark_intermediate(&self, id: &Digest) -> Result<()> {
        let p = self.intermediate_path(id);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        std::fs::write(&p, b"").map_err(io_err("write", &p))
    }

    /// Whether `id` is a build step's image (see [`ImageStore::mark_intermediate`]).
    pub fn is_intermediate(&self, id: &Digest) -> bool {
        self.intermediate_path(id).exists()
    }

    /// Clears the mark of [`ImageStore::mark_intermediate`] (a build's result is an image of its own).
    pub fn unmark_intermediate(&self, id: &Digest) {
        let _ = std::fs::remove_file(self.intermediate_path(id));
    }

    pub(crate) fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    pub(crate) fn stored(&self, id: &Digest) -> Result<Option<StoredImage>> {
        let p = self.record_path(id);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    pub(crate) fn all_stored(&self) -> Result<Vec<StoredImage>> {
        let dir = self.root.join("images");
        let rd = std::fs::read_dir(&dir).map_err(io_err("read", &dir))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(io_err("read", &dir))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            let Ok(id) = Digest::from_sha256_hex(hex) else { continue };
            if let Some(s) = self.stored(&id)? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(crate) fn build_record(&self, s: &StoredImage, refs: &Refs) -> Result<ImageRecord> {
        let bytes = self.blobs.read(&s.id)?;
        let config: Value =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("config {}: {e}", s.id)))?;
        let diff_ids = diff_ids_of(&config).map_err(StoreError::Corrupt)?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for r in refs.for_image(&s.id) {
            if r.digest().is_some() {
                repo_digests.push(r.familiar());
            } else {
                repo_tags.push(r.familiar());
            }
        }
        Ok(ImageRecord {
            id: s.id.clone(),
            created: config
                .get("created")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            chain_ids: chain_ids(&diff_ids),
            diff_ids,
            config,
            repo_tags,
            repo_digests,
            size: s.size,
            layers: s.layers.clone(),
        })
    }

    /// The image with this ID.
    pub fn get(&self, id: &Digest) -> Result<ImageRecord> {
        let s = self.stored(id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let refs = Refs::load(&self.refs_path())?;
        self.build_record(&s, &refs)
    }

    /// All images.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let refs = Refs::load(&self.refs_path())?;
        self.all_stored()?.iter().map(|s| self.build_record(s, &refs)).collect()
    }

    /// Sum of the unpacked layer sizes of an image.
    pub fn size(&self, id: &Digest) -> Result<u64> {
        Ok(self.get(id)?.size)
    }

    /// `docker history`: newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let img = self.resolve(name)?;
        let mut rows = Vec::new();
        let mut layer = 0usize;
        let hist = img
            .config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let layer_size = |i: usize| {
            img.chain_ids
                .get(i)
                .and_then(|c| self.snapshots.usage(c).ok())
                .unwrap_or(0)
        };
        for h in &hist {
            let empty = h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false);
            let size = if empty {
                0
            } else {
                layer += 1;
                layer_size(layer - 1)
            };
            let s = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            rows.push(HistoryItem {
                id: "<missing>".into(),
                created: berth_types::time::unix_seconds(&s("created")),
                created_by: s("created_by"),
                tags: Vec::new(),
                size,
                comment: s("comment"),
            });
        }
        // Layers without history entries (some OCI images have none) still get a row each.
        while layer < img.chain_ids.len() {
            rows.push(HistoryItem {
                id: "<missing>".into(),
                created: berth_types::time::unix_seconds(&img.created),
                created_by: String::new(),
                tags: Vec::new(),
                size: layer_size(layer),
                comment: String::new(),
            });
            layer += 1;
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = img.id.to_string();
            top.tags = img.repo_tags.clone();
        }
        Ok(rows)
    }
}

/// `rootfs.diff_ids` of a config.
pub(crate) fn diff_ids_of(cfg: &Value) -> std::result::Result<Vec<Digest>, String> {
    let Some(obj) = cfg.as_object() else {
        return Err("config is not a JSON object".into());
    };
    let rootfs = obj.get("rootfs").ok_or("config has no rootfs")?;
    let ids = rootfs.get("diff_ids").and_then(Value::as_array);
    let Some(ids) = ids else {
        return match rootfs.get("diff_ids") {
            None | Some(Value::Null) => Ok(Vec::new()),
            _ => Err("rootfs.diff_ids is not an array".into()),
        };
    };
    ids.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| "rootfs.diff_ids holds a non-string".to_string())?
                .parse::<Digest>()
                .map_err(|e| format!("rootfs.diff_ids: {e}"))
        })
        .collect()
}
