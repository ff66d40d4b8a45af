//! Finding an image by reference, full or `sha256:` ID, unique ID prefix or repo digest.

use crate::refs::Refs;
use crate::{ImageRecord, ImageStore, Result, StoreError};
use berth_types::{Digest, Reference};

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ImageStore {
    pub(crate) fn resolve_id(&self, name: &str) -> Result<Digest> {
        let not_found = || StoreError::NotFound(name.to_string());
        if name.is_empty() {
            return Err(not_found());
        }
        let full = name.strip_prefix("sha256:").unwrap_or(name);
        if full.len() == 64 && is_hex(full) {
            let id = Digest::from_sha256_hex(full).map_err(|_| not_found())?;
            return if self.record_path(&id).is_file() {
                Ok(id)
            } else {
                Err(not_found())
            };
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(id) = Refs::load(&self.refs_path())?.get(&r) {
                if self.record_path(id).is_file() {
                    return Ok(id.clone());
                }
            }
        }
        if is_hex(full) {
            let matches: Vec<Digest> = self
                .all_stored()?
                .into_iter()
                .map(|s| s.id)
                .filter(|id| id.hex().starts_with(full))
                .collect();
            if matches.len() == 1 {
                return Ok(matches[0].clone());
            }
        }
        Err(not_found())
    }

    /// Finds an image by reference (`bb`, `bb:latest`, `docker.io/library/bb`, `bb@sha256:..`), full ID,
    /// `sha256:` ID or unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord> {
        let id = self.resolve_id(name_or_id)?;
        let s = self
            .stored(&id)?
            .ok_or_else(|| StoreError::NotFound(name_or_id.to_string()))?;
        let refs = Refs::load(&self.refs_path())?;
        self.build_record(&s, &refs)
    }
}
