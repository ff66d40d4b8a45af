//! Registry operations, run by the daemon with the credentials the client sends in
//! `X-Registry-Auth`: push, `/auth` (login), distribution inspect and search.

use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::body::{self, BodyReader};
use crate::{encode_component, push_filters};
use crate::{AuthConfig, Client, Filters, Result};

/// The answer of `POST /auth` (`SystemAuthResponse` in the Engine API).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthResponse {
    /// `Login Succeeded`.
    #[serde(rename = "Status", default)]
    pub status: String,
    /// A refresh token to store instead of the password, when the registry issued one.
    #[serde(rename = "IdentityToken", default, skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}

/// One entry of `GET /images/search` (`ImageSearchResponseItem`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchItem {
    /// The repository name.
    #[serde(default)]
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// Number of stars.
    #[serde(default)]
    pub star_count: i64,
    /// A Docker Official Image.
    #[serde(default)]
    pub is_official: bool,
    /// Built automatically (deprecated by Docker Hub, always false there now).
    #[serde(default)]
    pub is_automated: bool,
}

impl Client {
    /// `POST /images/{name}/push?tag=`: the JSON progress stream. `X-Registry-Auth` is always
    /// sent, `{}` when `auth` is empty, as Docker's CLI does (dockerd rejects a push without it).
    pub async fn image_push(&self, name: &str, tag: Option<&str>, auth: &AuthConfig) -> Result<BodyReader> {
        let mut q = Vec::new();
        if let Some(t) = tag {
            q.push(("tag", t.to_string()));
        }
        let path = format!("/images/{}/push", encode_component(name));
        let resp = self
            .request_with_auth(Method::POST, &path, &q, body::empty(), None, auth)
            .await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `POST /auth`: checks credentials against a registry (`docker login`).
    pub async fn auth(&self, auth: &AuthConfig) -> Result<AuthResponse> {
        let bytes = serde_json::to_vec(auth)?;
        self.json(Method::POST, "/auth", &vec![], Some(bytes)).await
    }

    /// `GET /distribution/{name}/json`: the manifest descriptor and platforms of an image in
    /// its registry, as the daemon resolves it.
    pub async fn distribution_inspect(&self, name: &str, auth: &AuthConfig) -> Result<Value> {
        let path = format!("/distribution/{}/json", encode_component(name));
        self.json_with_auth(Method::GET, &path, &vec![], auth).await
    }

    /// `GET /images/search?term=&limit=&filters=`.
    pub async fn image_search(
        &self,
        term: &str,
        limit: Option<u32>,
        filters: &Filters,
        auth: &AuthConfig,
    ) -> Result<Vec<SearchItem>> {
        let mut q = vec![("term", term.to_string())];
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        push_filters(&mut q, filters);
        self.json_with_auth(Method::GET, "/images/search", &q, auth).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_encoding() {
        // Docker's CLI sends `{}` (base64url `e30=`) without credentials.
        assert_eq!(AuthConfig::default().to_header(), "e30=");
        let a = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        };
        let h = a.to_header();
        // base64url: no `+` or `/`, so the header survives proxies as Docker's does.
        assert!(!h.contains('+') && !h.contains('/'));
        assert_eq!(AuthConfig::from_header(&h).ok(), Some(a));
    }

    #[test]
    fn answers_decode() {
        let r: AuthResponse = serde_json::from_str(r#"{"Status":"Login Succeeded","IdentityToken":""}"#).unwrap();
        assert_eq!(r.status, "Login Succeeded");
        let items: Vec<SearchItem> = serde_json::from_str(
            r#"[{"name":"busybox","description":"d","star_count":3,"is_official":true,"is_automated":false}]"#,
        )
        .unwrap();
        assert_eq!(
            (items[0].name.as_str(), items[0].star_count, items[0].is_official),
            ("busybox", 3, true)
        );
    }
}
