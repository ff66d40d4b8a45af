//! A running container's resources: pause, unpause, stats, top, update.

use hyper::Method;
use serde_json::Value;

use crate::body::{self, BodyReader};
use crate::{encode_component, flag, Client, Query, Result};

impl Client {
    /// `POST /containers/{id}/pause`.
    pub async fn container_pause(&self, id: &str) -> Result<()> {
        self.call(
            Method::POST,
            &format!("/containers/{}/pause", encode_component(id)),
            &vec![],
        )
        .await
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn container_unpause(&self, id: &str) -> Result<()> {
        self.call(
            Method::POST,
            &format!("/containers/{}/unpause", encode_component(id)),
            &vec![],
        )
        .await
    }

    /// `GET /containers/{id}/stats`: one JSON object per line (one line unless `stream`).
    pub async fn container_stats(&self, id: &str, stream: bool) -> Result<BodyReader> {
        let q: Query = vec![("stream", flag(stream))];
        let resp = self
            .request(
                Method::GET,
                &format!("/containers/{}/stats", encode_component(id)),
                &q,
                body::empty(),
                None,
            )
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `GET /containers/{id}/top`.
    pub async fn container_top(&self, id: &str, ps_args: Option<&str>) -> Result<Value> {
        let mut q = Query::new();
        if let Some(a) = ps_args {
            q.push(("ps_args", a.to_string()));
        }
        self.json(
            Method::GET,
            &format!("/containers/{}/top", encode_component(id)),
            &q,
            None,
        )
        .await
    }

    /// `POST /containers/{id}/update` with a body of `Resources` fields and `RestartPolicy`.
    pub async fn container_update(&self, id: &str, body: &Value) -> Result<Value> {
        let body = serde_json::to_vec(body)?;
        self.json(
            Method::POST,
            &format!("/containers/{}/update", encode_component(id)),
            &vec![],
            Some(body),
        )
        .await
    }
}
