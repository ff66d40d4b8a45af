//! Image endpoints: list, inspect, history, tag, remove, import, pull, load, save, prune.

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::body::{self, BodyReader, ReqBody};
use crate::{encode_component, flag, push_filters};
use crate::{AuthConfig, Client, Filters, ImportOptions, Query, Result};

impl Client {
    /// `GET /images/json`.
    pub async fn image_list(&self, all: bool, digests: bool, filters: &Filters) -> Result<Vec<Value>> {
        let mut q = Query::new();
        if all {
            q.push(("all", flag(true)));
        }
        if digests {
            q.push(("digests", flag(true)));
        }
        push_filters(&mut q, filters);
        self.json(Method::GET, "/images/json", &q, None).await
    }

    /// `GET /images/{name}/json`, as the daemon's bytes.
    pub async fn image_inspect_raw(&self, name: &str) -> Result<Bytes> {
        let path = format!("/images/{}/json", encode_component(name));
        self.request_bytes(Method::GET, &path, &vec![], body::empty(), None)
            .await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<Value>> {
        let path = format!("/images/{}/history", encode_component(name));
        self.json(Method::GET, &path, &vec![], None).await
    }

    /// `POST /images/{name}/tag`.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let mut q = vec![("repo", repo.to_string())];
        if let Some(t) = tag {
            q.push(("tag", t.to_string()));
        }
        self.call(Method::POST, &format!("/images/{}/tag", encode_component(name)), &q)
            .await
    }

    /// `DELETE /images/{name}`: the untagged/deleted items.
    pub async fn image_remove(&self, name: &str, force: bool, noprune: bool) -> Result<Vec<Value>> {
        let q = vec![("force", flag(force)), ("noprune", flag(noprune))];
        self.json(Method::DELETE, &format!("/images/{}", encode_component(name)), &q, None)
            .await
    }

    /// `POST /images/create?fromSrc=` (import): the JSON progress stream.
    pub async fn image_import(&self, body: ReqBody, o: &ImportOptions) -> Result<BodyReader> {
        let mut q = vec![("fromSrc", o.source.clone())];
        if let Some(r) = &o.repo {
            q.push(("repo", r.clone()));
        }
        if let Some(t) = &o.tag {
            q.push(("tag", t.clone()));
        }
        if let Some(m) = &o.message {
            q.push(("message", m.clone()));
        }
        for c in &o.changes {
            q.push(("changes", c.clone()));
        }
        if let Some(p) = &o.platform {
            q.push(("platform", p.clone()));
        }
        let resp = self
            .request(Method::POST, "/images/create", &q, body, Some("application/x-tar"))
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `POST /build`: the context tar in, the builder's JSON stream out. `query` holds the
    /// options as the API names them (`t`, `dockerfile`, `buildargs`, `labels`, `target`, `q`, ...).
    /// `headers` go along: `X-Registry-Config` (see [`berth_credentials::registry_config_header`],
    /// the credentials for FROM's pulls) and berth's secrets header.
    pub async fn image_build(
        &self,
        body: ReqBody,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
    ) -> Result<BodyReader> {
        let o = crate::SendOpts {
            content_type: Some("application/x-tar"),
            headers,
            ..Default::default()
        };
        let resp = self
            .send(
                Method::POST,
                format!("/build{}", crate::build_query(&query.to_vec())),
                body,
                &o,
            )
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `POST /build/prune`: `{"CachesDeleted": [...], "SpaceReclaimed": n}`.
    pub async fn build_prune(&self) -> Result<Value> {
        let bytes = self
            .request_bytes(Method::POST, "/build/prune", &Vec::new(), body::empty(), None)
            .await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// `POST /images/create?fromImage=` (pull): the JSON progress stream. `X-Registry-Auth` is
    /// always sent (`{}` without credentials), as Docker's CLI does.
    pub async fn image_pull(
        &self,
        image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: &AuthConfig,
    ) -> Result<BodyReader> {
        let mut q = vec![("fromImage", image.to_string())];
        if let Some(t) = tag {
            q.push(("tag", t.to_string()));
        }
        if let Some(p) = platform {
            q.push(("platform", p.to_string()));
        }
        let resp = self
            .request_with_auth(Method::POST, "/images/create", &q, body::empty(), None, auth)
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `POST /images/load`: the JSON progress stream.
    pub async fn image_load(&self, body: ReqBody, quiet: bool) -> Result<BodyReader> {
        let q = vec![("quiet", flag(quiet))];
        let resp = self
            .request(Method::POST, "/images/load", &q, body, Some("application/x-tar"))
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `GET /images/get?names=..`: a tar stream.
    pub async fn image_save(&self, names: &[String]) -> Result<BodyReader> {
        let q: Query<'_> = names.iter().map(|n| ("names", n.clone())).collect();
        let resp = self
            .request(Method::GET, "/images/get", &q, body::empty(), None)
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `POST /images/prune`.
    pub async fn images_prune(&self, filters: &Filters) -> Result<Value> {
        let mut q = Query::new();
        push_filters(&mut q, filters);
        self.json(Method::POST, "/images/prune", &q, None).await
    }
}
