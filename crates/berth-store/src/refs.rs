//! `repositories.json`: tag and digest references to image IDs, in Docker's own file format
//! (`{"Repositories": {"busybox": {"busybox:latest": "sha256:..."}}}`).

use crate::content::write_atomic;
use crate::{io_err, Result, StoreError};
use berth_types::{Digest, Reference};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct RefFile {
    #[serde(rename = "Repositories", default)]
    pub repositories: BTreeMap<String, BTreeMap<String, Digest>>,
}

/// A loaded copy of `repositories.json`; changes are written back with [`Refs::save`].
pub(crate) struct Refs {
    path: PathBuf,
    pub file: RefFile,
}

impl Refs {
    pub fn load(path: &Path) -> Result<Refs> {
        let file = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RefFile::default(),
            Err(e) => return Err(io_err("read", path)(e)),
        };
        Ok(Refs {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn save(&self) -> Result<()> {
        let data = serde_json::to_vec(&self.file).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        write_atomic(&self.path, &data)
    }

    pub fn get(&self, r: &Reference) -> Option<&Digest> {
        self.file.repositories.get(&r.familiar_repository())?.get(&r.familiar())
    }

    /// Points `r` at `id`; returns the image it pointed at before, if another.
    pub fn set(&mut self, r: &Reference, id: &Digest) -> Option<Digest> {
        let old = self
            .file
            .repositories
            .entry(r.familiar_repository())
            .or_default()
            .insert(r.familiar(), id.clone());
        old.filter(|o| o != id)
    }

    pub fn remove(&mut self, r: &Reference) -> Option<Digest> {
        let repo = r.familiar_repository();
        let m = self.file.repositories.get_mut(&repo)?;
        let old = m.remove(&r.familiar());
        if m.is_empty() {
            self.file.repositories.remove(&repo);
        }
        old
    }

    /// All references to `id`, sorted.
    pub fn for_image(&self, id: &Digest) -> Vec<Reference> {
        let mut out = Vec::new();
        for m in self.file.repositories.values() {
            for (k, v) in m {
                if v == id {
                    if let Ok(r) = Reference::parse(k) {
                        out.push(r);
                    }
                }
            }
        }
        out
    }
}
