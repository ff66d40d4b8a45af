//! Image tarballs for the fixture: a rootfs tar (`docker import`) and a `docker save` style archive
//! (`docker load`), both built in memory from busybox.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A tar of a busybox root filesystem, as `docker export` would produce.
pub fn busybox_rootfs_tar() -> Result<Vec<u8>> {
    // A directory of its own (made with O_EXCL semantics): tests build fixtures on many threads at once,
    // and a clock-derived name collided when two asked in the same tick.
    let dir = tempfile::Builder::new()
        .prefix("berth-testkit-rootfs-")
        .tempdir()
        .context("making a directory for the busybox rootfs")?;
    crate::busybox_rootfs(dir.path())?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir.path()).context("archiving busybox rootfs")?;
    b.into_inner().context("finishing rootfs tar")
}

/// A `docker save` (legacy layout) archive holding one image `tag` (e.g. `bb:latest`) with the busybox
/// rootfs as its only layer and `Cmd ["sh"]`.
pub fn busybox_image_tar(tag: &str) -> Result<Vec<u8>> {
    busybox_image_tar_with(tag, serde_json::json!({}))
}

/// [`busybox_image_tar`] with more settings in the image's `config` (`{"Healthcheck": {...}}`).
pub fn busybox_image_tar_with(tag: &str, extra_config: serde_json::Value) -> Result<Vec<u8>> {
    let layer = busybox_rootfs_tar()?;
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let mut config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "berth-testkit busybox"}],
    });
    if let (Some(c), Some(extra)) = (config["config"].as_object_mut(), extra_config.as_object()) {
        c.extend(extra.clone());
    }
    let config_bytes = serde_json::to_vec(&config)?;
    let config_hex = sha256_hex(&config_bytes);
    let layer_hex = sha256_hex(&layer);
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": [tag],
        "Layers": [format!("blobs/sha256/{layer_hex}")],
    }]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, Path::new(name), data)
            .with_context(|| format!("adding {name}"))
    };
    add(&format!("blobs/sha256/{config_hex}"), &config_bytes)?;
    add(&format!("blobs/sha256/{layer_hex}"), &layer)?;
    add("manifest.json", &serde_json::to_vec(&manifest)?)?;
    b.into_inner().context("finishing image tar")
}
