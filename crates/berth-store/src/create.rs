//! Registering an image from its config and layer blobs (unpacking each layer into its snapshot), and
//! the garbage collection that removes blobs and snapshots no record references, under leases held by
//! in-flight registrations.

use crate::content::write_atomic;
use crate::record::{diff_ids_of, StoredImage};
use crate::{ImageRecord, ImageStore, LayerBlob, Result, StoreError};
use berth_snapshot::SnapshotError;
use berth_types::{chain_ids, ChainId, Digest};
use serde_json::Value;
use std::collections::HashSet;

impl ImageStore {
    pub(crate) fn lease(&self, keys: &[String]) {
        let mut l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            *l.entry(k.clone()).or_default() += 1;
        }
    }

    pub(crate) fn unlease(&self, keys: &[String]) {
        let mut l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if let Some(n) = l.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    l.remove(k);
                }
            }
        }
    }

    fn leased(&self, key: &str) -> bool {
        self.leases.lock().unwrap_or_else(|e| e.into_inner()).contains_key(key)
    }

    /// Protects the blobs `blobs` and snapshots `chains` an operation (a pull) is creating from garbage
    /// collection until the returned guard is dropped.
    pub fn lease_for(self: &std::sync::Arc<Self>, blobs: &[Digest], chains: &[ChainId]) -> Lease {
        let mut keys: Vec<String> = chains.iter().map(|c| format!("snap:{c}")).collect();
        keys.extend(blobs.iter().map(|b| format!("blob:{b}")));
        self.lease(&keys);
        Lease {
            store: self.clone(),
            keys,
        }
    }

    /// Removes the snapshots `chains` and blobs `blobs` that no image references and no lease holds
    /// (what a failed pull created). Drop the operation's own [`Lease`] first.
    pub fn discard(&self, chains: &[ChainId], blobs: &[Digest]) -> Result<()> {
        self.collect_garbage(chains, blobs, &[]).map(|_| ())
    }

    /// A new image on `parent`'s layers with `config` (the whole image config; its `rootfs` must
    /// list the parent's layers): what a build step that changes only metadata makes.
    pub fn derive(&self, parent: &Digest, config: &[u8]) -> Result<ImageRecord> {
        self.derive_prefix(parent, None, config)
    }

    /// A new image on the first `layers` layers of `source` (all of them when `None`) with `config`
    /// (its `rootfs` must list those layers): what a build makes when it takes a step from a
    /// `--cache-from` image that goes on beyond it.
    pub fn derive_prefix(&self, source: &Digest, layers: Option<usize>, config: &[u8]) -> Result<ImageRecord> {
        let stored = self
            .stored(source)?
            .ok_or_else(|| StoreError::NotFound(source.to_string()))?;
        let n = layers.unwrap_or(stored.layers.len());
        let Some(prefix) = stored.layers.get(..n) else {
            return Err(StoreError::InvalidArchive(format!(
                "image {source} has {} layers, not the {n} asked for",
                stored.layers.len()
            )));
        };
        let verified: HashSet<Digest> = prefix.iter().map(|l| l.digest.clone()).collect();
        self.create_image_trusting(config, prefix, &verified)
    }

    /// Registers an image from its config bytes (stored verbatim) and layer blobs already in the content
    /// store, unpacking each missing layer into its snapshot (verifying each diff ID). On failure the
    /// blobs and snapshots this call created are removed again unless another image uses them.
    pub fn create_image(&self, config: &[u8], layers: &[LayerBlob]) -> Result<ImageRecord> {
        self.create_image_trusting(config, layers, &HashSet::new())
    }

    /// [`ImageStore::create_image`], trusting that the blobs in `verified` (whose snapshots the caller
    /// unpacked and checked against the config's diff IDs, as a pull does) are those layers, so they
    /// are not decompressed again.
    pub fn create_image_trusting(
        &self,
        config: &[u8],
        layers: &[LayerBlob],
        verified: &HashSet<Digest>,
    ) -> Result<ImageRecord> {
        let id = Digest::sha256(config);
        let cfg: Value = serde_json::from_slice(config)
            .map_err(|e| StoreError::InvalidArchive(format!("image config {id} is not valid JSON: {e}")))?;
        let diff_ids = diff_ids_of(&cfg).map_err(|m| StoreError::InvalidArchive(format!("image config {id}: {m}")))?;
        if diff_ids.len() != layers.len() {
            return Err(StoreError::InvalidArchive(format!(
                "image {id}: config lists {} layers but the manifest has {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        let mut keys: Vec<String> = chains.iter().map(|c| format!("snap:{c}")).collect();
        keys.extend(layers.iter().map(|l| format!("blob:{}", l.digest)));
        keys.push(format!("blob:{id}"));
        self.lease(&keys);
        let mut created_snaps = Vec::new();
        let res = self.create_image_leased(config, &id, layers, &diff_ids, &chains, verified, &mut created_snaps);
        self.unlease(&keys);
        if res.is_err() {
            // Leave no trace of a failed image: remove what we created that nothing else references.
            let _ = self.collect_garbage(&created_snaps, &[], &[]);
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn create_image_leased(
        &self,
        config: &[u8],
        id: &Digest,
        layers: &[LayerBlob],
        diff_ids: &[Digest],
        chains: &[ChainId],
        verified: &HashSet<Digest>,
        created_snaps: &mut Vec<ChainId>,
    ) -> Result<ImageRecord> {
        let mut size = 0u64;
        for (i, layer) in layers.iter().enumerate() {
            let chain = &chains[i];
            let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
            if self.snapshots.has(chain) {
                if layer.digest != diff_ids[i] && !verified.contains(&layer.digest) {
                    // Known snapshot, compressed blob: still check the blob really is that layer.
                    let f = self.blobs.open_blob(&layer.digest)?;
                    let what = format!("layer {}", layer.digest);
                    let r = berth_archive::decompress(f).map_err(|source| StoreError::Archive {
                        what: what.clone(),
                        source,
                    })?;
                    let (d, _) = berth_archive::DigestReader::new(r)
                        .finish()
                        .map_err(|source| StoreError::Read {
                            what: what.clone(),
                            source,
                        })?;
                    if d != diff_ids[i] {
                        return Err(StoreError::DigestMismatch {
                            what,
                            expected: diff_ids[i].clone(),
                            actual: d,
                        });
                    }
                }
                size += self.snapshots.usage(chain)?;
            } else {
                let f = self.blobs.open_blob(&layer.digest)?;
                created_snaps.push(chain.clone());
                size += self.snapshots.apply_layer(chain, parent, f).map_err(|e| match e {
                    SnapshotError::LayerMismatch { diff_id, .. } => StoreError::DigestMismatch {
                        what: format!("layer {} (uncompressed)", layer.digest),
                        expected: diff_ids[i].clone(),
                        actual: diff_id,
                    },
                    e => StoreError::Snapshot(e),
                })?;
            }
        }
        self.blobs.put(config, Some(id), "image config")?;
        let stored = StoredImage {
            id: id.clone(),
            layers: layers.to_vec(),
            size,
        };
        let data = serde_json::to_vec(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let previous = {
            let _l = self.meta_lock()?;
            let previous = self.stored(id)?;
            write_atomic(&self.record_path(id), &data)?;
            previous
        };
        // The same image loaded again from other blobs (say gzip before, plain tar now): the old blobs
        // are no longer referenced.
        if let Some(prev) = previous {
            let stale: Vec<Digest> = prev
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .filter(|d| !layers.iter().any(|l| &l.digest == d))
                .collect();
            if !stale.is_empty() {
                self.collect_garbage(&[], &stale, &[])?;
            }
        }
        self.get(id)
    }

    /// Removes snapshots `chains` and blobs `blobs` that no image record references and no in-flight
    /// operation holds. Returns the chains removed and the bytes they used.
    pub(crate) fn collect_garbage(
        &self,
        chains: &[ChainId],
        blobs: &[Digest],
        keep: &[ChainId],
    ) -> Result<(Vec<ChainId>, u64)> {
        let _l = self.meta_lock()?;
        let (used_chains, used_blobs) = self.used()?;
        let mut removed = Vec::new();
        let mut space = 0;
        // Top first, as Docker lists released layers.
        for c in chains.iter().rev() {
            if used_chains.contains(c)
                || keep.contains(c)
                || self.leased(&format!("snap:{c}"))
                || !self.snapshots.has(c)
            {
                continue;
            }
            space += self.snapshots.usage(c).unwrap_or(0);
            self.snapshots.remove(c)?;
            removed.push(c.clone());
        }
        for b in blobs {
            if !used_blobs.contains(b) && !self.leased(&format!("blob:{b}")) {
                self.blobs.delete(b)?;
            }
        }
        Ok((removed, space))
    }
}

impl ImageStore {
    /// The snapshots and blobs some image record uses (call under the meta lock).
    fn used(&self) -> Result<(HashSet<ChainId>, HashSet<Digest>)> {
        let mut used_chains = HashSet::new();
        let mut used_blobs = HashSet::new();
        for s in self.all_stored()? {
            used_blobs.insert(s.id.clone());
            for l in &s.layers {
                used_blobs.insert(l.digest.clone());
            }
            if let Ok(cfg) = self.blobs.read(&s.id) {
                if let Ok(cfg) = serde_json::from_slice::<Value>(&cfg) {
                    if let Ok(d) = diff_ids_of(&cfg) {
                        used_chains.extend(chain_ids(&d));
                    }
                }
            }
        }
        Ok((used_chains, used_blobs))
    }

    /// Removes the blobs and snapshots that no image uses, no lease holds and `keep` (the
    /// snapshots containers stand on) does not name, and that were last written more than `grace`
    /// ago: what an interrupted pull, a failed load or a crash left behind. The grace spares what
    /// a load, import or commit in progress has written before its image exists. Answers the
    /// bytes freed.
    pub fn sweep(&self, keep: &[ChainId], grace: std::time::Duration) -> Result<u64> {
        let old = |p: &std::path::Path| {
            std::fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= grace)
        };
        let _l = self.meta_lock()?;
        let (used_chains, used_blobs) = self.used()?;
        let mut freed = 0;
        for c in self.snapshots.list()? {
            if used_chains.contains(&c)
                || keep.contains(&c)
                || self.leased(&format!("snap:{c}"))
                || !old(&self.snapshots.fs_dir(&c))
            {
                continue;
            }
            freed += self.snapshots.usage(&c).unwrap_or(0);
            self.snapshots.remove(&c)?;
        }
        for b in self.blobs.list()? {
            let path = self.blobs.path(&b);
            if used_blobs.contains(&b) || self.leased(&format!("blob:{b}")) || !old(&path) {
                continue;
            }
            freed += self.blobs.size(&b).unwrap_or(0);
            self.blobs.delete(&b)?;
        }
        Ok(freed)
    }
}

/// Blobs and snapshots protected from garbage collection (see [`ImageStore::lease_for`]).
pub struct Lease {
    store: std::sync::Arc<ImageStore>,
    keys: Vec<String>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("keys", &self.keys).finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.store.unlease(&self.keys);
    }
}
