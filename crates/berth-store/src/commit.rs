//! `docker commit`: a new image made of a parent image and one more layer (a container's changes),
//! with the container's config and Dockerfile-style changes.

use crate::{apply_changes, ImageRecord, ImageStore, LayerBlob, Result, StoreError, MEDIA_DOCKER_LAYER};
use berth_types::{Digest, Reference};
use serde_json::{json, Map, Value};
use std::io::Read;

/// The container config keys an image config keeps (the OCI image spec's `config`).
const IMAGE_CONFIG_KEYS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
    "ArgsEscaped",
];

/// Options of [`ImageStore::commit`].
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Tag for the new image.
    pub tag: Option<Reference>,
    /// The container's config (Engine API `ContainerConfig` JSON), the base of the image's.
    pub config: Map<String, Value>,
    /// Dockerfile-style changes (`CMD ["sh"]`, `ENV A=B`, ...), applied last.
    pub changes: Vec<String>,
    /// Commit message (`-m`): the image's comment and the history entry's.
    pub comment: String,
    /// Author (`-a`).
    pub author: String,
    /// What the history entry says created the layer (the container's command).
    pub created_by: String,
    /// The image's and the history entry's creation time (RFC 3339) instead of now
    /// (`SOURCE_DATE_EPOCH`).
    pub created: Option<String>,
}

/// The image-relevant keys of a container config, nulls and empty values dropped.
fn image_config(container: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for k in IMAGE_CONFIG_KEYS {
        match container.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                out.insert((*k).to_string(), v.clone());
            }
        }
    }
    out
}

impl ImageStore {
    /// Creates an image from `parent` plus the layer `layer_tar` (uncompressed, e.g. from
    /// `Snapshotter::write_diff`).
    pub fn commit(&self, parent: &Digest, layer_tar: impl Read + Send, opts: CommitOptions) -> Result<ImageRecord> {
        if opts.tag.as_ref().is_some_and(|t| t.digest().is_some()) {
            return Err(StoreError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let base = self.get(parent)?;
        let (diff_id, size) = self.blobs.put(layer_tar, None, "container changes")?;
        let mut cfg = match base.config.clone() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut container_cfg = image_config(&opts.config);
        apply_changes(&mut container_cfg, &opts.changes)?;
        let now = opts.created.clone().unwrap_or_else(berth_types::time::now_rfc3339);
        cfg.insert("config".into(), Value::Object(container_cfg));
        cfg.insert("created".into(), json!(now));
        if opts.author.is_empty() {
            cfg.remove("author");
        } else {
            cfg.insert("author".into(), json!(opts.author));
        }
        if opts.comment.is_empty() {
            cfg.remove("comment");
        } else {
            cfg.insert("comment".into(), json!(opts.comment));
        }
        let mut entry = Map::new();
        entry.insert("created".into(), json!(now));
        if !opts.author.is_empty() {
            entry.insert("author".into(), json!(opts.author));
        }
        if !opts.created_by.is_empty() {
            entry.insert("created_by".into(), json!(opts.created_by));
        }
        if !opts.comment.is_empty() {
            entry.insert("comment".into(), json!(opts.comment));
        }
        let history = cfg.entry("history").or_insert_with(|| json!([]));
        if let Value::Array(h) = history {
            h.push(Value::Object(entry));
        }
        let diff_ids: Vec<Value> = base
            .diff_ids
            .iter()
            .map(|d| json!(d.to_string()))
            .chain(std::iter::once(json!(diff_id.to_string())))
            .collect();
        cfg.insert("rootfs".into(), json!({"type": "layers", "diff_ids": diff_ids}));
        let bytes = serde_json::to_vec(&Value::Object(cfg)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut layers = base.layers.clone();
        layers.push(LayerBlob {
            digest: diff_id.clone(),
            media_type: MEDIA_DOCKER_LAYER.into(),
            size,
        });
        let rec = match self.create_image(&bytes, &layers) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_image_keys() {
        let c = json!({"Hostname": "abc", "Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "", "User": null, "Tty": true});
        let Value::Object(m) = c else { unreachable!() };
        let out = image_config(&m);
        assert_eq!(Value::Object(out), json!({"Cmd": ["sh"], "Env": ["A=1"]}));
    }
}
