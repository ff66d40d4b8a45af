//! `docker load` and `docker save`.
//!
//! Load reads three layouts: `docker save` before 25 (`manifest.json` + `<id>/layer.tar` + `<id>.json`),
//! Docker 25+ (`manifest.json` pointing into `blobs/sha256/`, plus an OCI `index.json`), and a pure OCI
//! image layout (`oci-layout` + `index.json`). The archive is first unpacked (safely, without whiteout
//! conversion) into a private temp dir; every path named by the metadata is then resolved inside that
//! dir only, and every blob is digest-verified on its way into the content store.
//!
//! Save writes what Docker 25+ writes: an OCI layout whose blobs are also listed by a Docker
//! `manifest.json` and a `repositories` file, layers as uncompressed tars.

mod load;
mod save;

use crate::content::tmp_name;
use crate::{
    host_architecture, io_err, ImageRecord, ImageStore, LayerBlob, LoadedImage, Result, StoreError, MEDIA_DOCKER_LAYER,
    MEDIA_OCI_LAYER,
};
use berth_types::{Digest, Reference};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Metadata files (manifest.json, index.json, manifests, configs) larger than this are refused.
const MAX_JSON: u64 = 32 << 20;

const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One entry of Docker's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// An OCI content descriptor (the fields we use).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: Digest,
    size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// An OCI image manifest or Docker schema 2 manifest (same shape).
#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// What the archive says one image consists of.
struct Candidate {
    config: PathBuf,
    config_digest: Option<Digest>,
    layers: Vec<(PathBuf, Option<Digest>, Option<String>)>,
    tags: Vec<Reference>,
}

/// Removes a temp dir on drop.
struct TempGuard(PathBuf);

impl Drop for TempGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidArchive(msg.into())
}
