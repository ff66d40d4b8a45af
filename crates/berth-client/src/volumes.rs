//! Volume endpoints (`/volumes`): list, inspect, create, remove, prune. Requests use the Engine
//! API models; answers are read leniently as JSON (inspect also as the daemon's bytes, so
//! `volume inspect` prints the fields in the daemon's order).

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::body;
use crate::{encode_component, flag, models, push_filters};
use crate::{Client, Filters, Query, Result};

/// What `GET /volumes` answers: the volumes and the daemon's warnings.
#[derive(Debug, Clone, Default)]
pub struct VolumeList {
    /// The volumes, as the daemon sent them.
    pub volumes: Vec<Value>,
    /// Warnings (drivers that could not be listed, ...).
    pub warnings: Vec<String>,
}

/// What `POST /volumes/prune` answers.
#[derive(Debug, Clone, Default)]
pub struct VolumePruneReport {
    /// Names of the volumes removed.
    pub volumes_deleted: Vec<String>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

fn volume_path(name: &str) -> String {
    format!("/volumes/{}", encode_component(name))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

impl Client {
    /// `GET /volumes`: the volumes matching `filters` (`dangling`, `driver`, `label`, `name`).
    pub async fn volume_list(&self, filters: &Filters) -> Result<VolumeList> {
        let mut q = Query::new();
        push_filters(&mut q, filters);
        let v: Value = self.json(Method::GET, "/volumes", &q, None).await?;
        Ok(VolumeList {
            volumes: v["Volumes"].as_array().cloned().unwrap_or_default(),
            warnings: strings(&v["Warnings"]),
        })
    }

    /// `GET /volumes/{name}`, as the daemon's bytes (field order preserved for printing).
    pub async fn volume_inspect_raw(&self, name: &str) -> Result<Bytes> {
        self.request_bytes(Method::GET, &volume_path(name), &vec![], body::empty(), None)
            .await
    }

    /// `GET /volumes/{name}`.
    pub async fn volume_inspect(&self, name: &str) -> Result<Value> {
        let raw = self.volume_inspect_raw(name).await?;
        Ok(serde_json::from_slice(&raw)?)
    }

    /// `POST /volumes/create`: the new (or existing, same name) volume.
    pub async fn volume_create(&self, req: &models::VolumeCreateOptions) -> Result<Value> {
        let body = serde_json::to_vec(req)?;
        self.json(Method::POST, "/volumes/create", &vec![], Some(body)).await
    }

    /// `DELETE /volumes/{name}?force=`: `force` also forgives a volume that does not exist.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        // Docker's client sends `force=1` only when forcing.
        let q = if force { vec![("force", flag(true))] } else { vec![] };
        self.call(Method::DELETE, &volume_path(name), &q).await
    }

    /// `POST /volumes/prune`: unused volumes (anonymous ones only unless `all=true` is a filter).
    pub async fn volumes_prune(&self, filters: &Filters) -> Result<VolumePruneReport> {
        let mut q = Query::new();
        push_filters(&mut q, filters);
        let v: Value = self.json(Method::POST, "/volumes/prune", &q, None).await?;
        Ok(VolumePruneReport {
            volumes_deleted: strings(&v["VolumesDeleted"]),
            space_reclaimed: v["SpaceReclaimed"].as_u64().unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_names() {
        assert_eq!(volume_path("my vol"), "/volumes/my%20vol");
        assert_eq!(volume_path("data"), "/volumes/data");
    }
}
