//! Network endpoints (`/networks`): list, inspect, create, remove, connect, disconnect, prune.
//! Requests use the Engine API models; lists and inspect come back as JSON (inspect also as the
//! daemon's bytes, so `network inspect` prints the fields in the daemon's order).

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::body;
use crate::{encode_component, models, push_filters};
use crate::{Client, Filters, Query, Result};

/// Options of `GET /networks/{id}`.
#[derive(Debug, Clone, Default)]
pub struct NetworkInspectOptions {
    /// `verbose=1`: detailed output for troubleshooting (services, tasks on swarm networks).
    pub verbose: bool,
    /// `scope=`: only a network of this scope (`swarm`, `global` or `local`).
    pub scope: Option<String>,
}

fn network_path(id: &str, action: &str) -> String {
    format!("/networks/{}{action}", encode_component(id))
}

impl Client {
    /// `GET /networks`: the networks (the daemon's smaller list representation).
    pub async fn network_list(&self, filters: &Filters) -> Result<Vec<Value>> {
        let mut q = Query::new();
        push_filters(&mut q, filters);
        self.json(Method::GET, "/networks", &q, None).await
    }

    /// `GET /networks/{id}`, as the daemon's bytes (field order preserved for printing).
    pub async fn network_inspect_raw(&self, id: &str, o: &NetworkInspectOptions) -> Result<Bytes> {
        let mut q = Query::new();
        if o.verbose {
            q.push(("verbose", "true".to_string()));
        }
        if let Some(s) = &o.scope {
            q.push(("scope", s.clone()));
        }
        self.request_bytes(Method::GET, &network_path(id, ""), &q, body::empty(), None)
            .await
    }

    /// `GET /networks/{id}`.
    pub async fn network_inspect(&self, id: &str) -> Result<Value> {
        let raw = self.network_inspect_raw(id, &NetworkInspectOptions::default()).await?;
        Ok(serde_json::from_slice(&raw)?)
    }

    /// `POST /networks/create`: the new network's ID and the daemon's warning (empty if none).
    /// Below API 1.44 the body also carries `CheckDuplicate: true`, as Docker's client sends it.
    pub async fn network_create(&self, req: &models::NetworkCreateRequest) -> Result<models::NetworkCreateResponse> {
        let mut body = serde_json::to_value(req)?;
        // Daemons before API 1.44 allow duplicate names unless asked not to (Docker's client asks).
        if crate::version_less(self.api_version(), "1.44") {
            if let Value::Object(m) = &mut body {
                m.insert("CheckDuplicate".into(), Value::Bool(true));
            }
        }
        let body = serde_json::to_vec(&body)?;
        // Read leniently: a daemon may leave `Warning` out (Docker's own answers always carry it).
        let v: Value = self.json(Method::POST, "/networks/create", &vec![], Some(body)).await?;
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Ok(models::NetworkCreateResponse {
            id: text("Id"),
            warning: text("Warning"),
        })
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, id: &str) -> Result<()> {
        self.call(Method::DELETE, &network_path(id, ""), &vec![]).await
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(&self, id: &str, req: &models::NetworkConnectRequest) -> Result<()> {
        let body = serde_json::to_vec(req)?;
        self.request_bytes(
            Method::POST,
            &network_path(id, "/connect"),
            &vec![],
            body::full(body),
            Some("application/json"),
        )
        .await?;
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(&self, id: &str, container: &str, force: bool) -> Result<()> {
        let req = models::NetworkDisconnectRequest {
            container: Some(container.to_string()),
            force: Some(force),
        };
        let body = serde_json::to_vec(&req)?;
        self.request_bytes(
            Method::POST,
            &network_path(id, "/disconnect"),
            &vec![],
            body::full(body),
            Some("application/json"),
        )
        .await?;
        Ok(())
    }

    /// `POST /networks/prune`: the names of the networks removed.
    pub async fn networks_prune(&self, filters: &Filters) -> Result<models::NetworkPruneResponse> {
        let mut q = Query::new();
        push_filters(&mut q, filters);
        self.json(Method::POST, "/networks/prune", &q, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_names() {
        assert_eq!(network_path("my net", "/connect"), "/networks/my%20net/connect");
        assert_eq!(network_path("abc", ""), "/networks/abc");
    }
}
