//! Changing references and removing images: `tag`, `rmi` with Docker's conflict rules and messages,
//! and `image prune`.

use crate::record::diff_ids_of;
use crate::refs::Refs;
use crate::{io_err, ImageStore, Result, StoreError};
use berth_types::{chain_ids, short_id, ChainId, Digest, Reference};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteItem {
    /// A reference removed.
    Untagged(String),
    /// An image or layer (chain ID) deleted.
    Deleted(String),
}

/// `docker image prune` result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// What was untagged and deleted.
    pub deleted: Vec<DeleteItem>,
    /// Bytes of snapshots removed.
    pub space_reclaimed: u64,
}

/// Docker's `isSingleReference`: at most one tag, and any digest references in that tag's repository.
pub(crate) fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical_repos = HashSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical_repos.insert(r.repository());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical_repos.len() == 1 && canonical_repos.contains(&single.repository())
}

impl ImageStore {
    /// Points `target` at the image `source` names.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest().is_some() {
            return Err(StoreError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let id = self.resolve_id(source)?;
        let _l = self.meta_lock()?;
        let mut refs = Refs::load(&self.refs_path())?;
        refs.set(target, &id);
        refs.save()
    }

    /// Adds a reference (tag, or `repo@digest` as a pull records) to an image; returns the image the
    /// reference was taken from, if another.
    pub fn set_reference(&self, r: &Reference, id: &Digest) -> Result<Option<Digest>> {
        if !self.record_path(id).is_file() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let _l = self.meta_lock()?;
        let mut refs = Refs::load(&self.refs_path())?;
        let old = refs.set(r, id);
        refs.save()?;
        Ok(old)
    }

    /// `docker rmi`: untags by reference, deletes by ID, with Docker's conflict rules and messages.
    /// `prune_children` has no effect: berth records no parent links between images.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        _prune_children: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<DeleteItem>> {
        let id = self.resolve_id(name)?;
        let id_s = id.to_string();
        let short = short_id(id.hex()).to_string();
        let mut items = Vec::new();
        let refs_now = Refs::load(&self.refs_path())?.for_image(&id);
        let by_id = id_s.starts_with(name) || id.hex().starts_with(name);
        if !by_id {
            let r = Reference::parse(name)?;
            if !force && is_single_reference(&refs_now) {
                if let Some(c) = in_use(&id_s) {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {short}",
                        short_id(&c)
                    )));
                }
            }
            let remaining = {
                let _l = self.meta_lock()?;
                let mut refs = Refs::load(&self.refs_path())?;
                if refs.remove(&r).is_some() {
                    items.push(DeleteItem::Untagged(r.familiar()));
                }
                // Removing the last tag of a repository also drops its digest references (Docker does).
                if r.tag().is_some() {
                    let rest = refs.for_image(&id);
                    let same_repo = |x: &Reference| x.repository() == r.repository();
                    if !rest.iter().any(|x| same_repo(x) && x.tag().is_some()) {
                        for d in rest.iter().filter(|x| same_repo(x) && x.digest().is_some()) {
                            refs.remove(d);
                            items.push(DeleteItem::Untagged(d.familiar()));
                        }
                    }
                }
                refs.save()?;
                refs.for_image(&id)
            };
            if !remaining.is_empty() {
                return Ok(items);
            }
            // The last reference is gone: the image goes too unless a container uses it (which, without
            // force, was refused above).
        } else if is_single_reference(&refs_now) {
            if !force {
                if let Some(c) = in_use(&id_s) {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                        short_id(&c)
                    )));
                }
            }
        } else if !force {
            if !refs_now.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if let Some(c) = in_use(&id_s) {
                return Err(StoreError::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                    short_id(&c)
                )));
            }
        }
        items.extend(self.delete_image(&id, in_use(&id_s).is_some())?.0);
        Ok(items)
    }

    /// Drops all references and the record of `id`, then the snapshots and blobs nothing else uses
    /// (snapshots are kept when a container still runs on them).
    fn delete_image(&self, id: &Digest, keep_snapshots: bool) -> Result<(Vec<DeleteItem>, u64)> {
        let mut items = Vec::new();
        let stored = self.stored(id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let chains = match self
            .blobs
            .read(id)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            Some(cfg) => diff_ids_of(&cfg).map(|d| chain_ids(&d)).unwrap_or_default(),
            None => Vec::new(),
        };
        {
            let _l = self.meta_lock()?;
            let mut refs = Refs::load(&self.refs_path())?;
            for r in refs.for_image(id) {
                refs.remove(&r);
                items.push(DeleteItem::Untagged(r.familiar()));
            }
            refs.save()?;
            let p = self.record_path(id);
            std::fs::remove_file(&p).map_err(io_err("remove", &p))?;
            self.unmark_intermediate(id);
        }
        items.push(DeleteItem::Deleted(id.to_string()));
        let mut blobs: Vec<Digest> = stored.layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(id.clone());
        let keep: Vec<ChainId> = if keep_snapshots { chains.clone() } else { Vec::new() };
        let (removed, space) = self.collect_garbage(&chains, &blobs, &keep)?;
        items.extend(removed.iter().map(|c| DeleteItem::Deleted(c.to_string())));
        Ok((items, space))
    }

    /// `docker image prune`: images no container uses that are dangling (no references), or all of them
    /// when `dangling_only` is false.
    pub fn prune(&self, dangling_only: bool, in_use: &dyn Fn(&str) -> Option<String>) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let refs = Refs::load(&self.refs_path())?;
        for s in self.all_stored()? {
            if in_use(&s.id.to_string()).is_some() {
                continue;
            }
            if dangling_only && (!refs.for_image(&s.id).is_empty() || self.is_intermediate(&s.id)) {
                continue;
            }
            let (items, space) = self.delete_image(&s.id, false)?;
            report.deleted.extend(items);
            report.space_reclaimed += space;
        }
        Ok(report)
    }
}
