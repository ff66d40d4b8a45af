//! Exec endpoints: create, start (detached, or hijacked like attach), resize and inspect.

use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::body::{self, BodyReader};
use crate::{encode_component, models, AttachConn, Client, Result};

impl Client {
    /// `POST /containers/{id}/exec`: returns the exec's ID.
    pub async fn exec_create(&self, container: &str, config: &models::ExecConfig) -> Result<String> {
        let body = serde_json::to_vec(config)?;
        let path = format!("/containers/{}/exec", encode_component(container));
        let v: Value = self.json(Method::POST, &path, &vec![], Some(body)).await?;
        Ok(v["Id"].as_str().unwrap_or_default().to_string())
    }

    /// `POST /exec/{id}/start` with `Detach`: the process runs on its own.
    pub async fn exec_start_detached(&self, id: &str) -> Result<()> {
        let body = serde_json::to_vec(&models::ExecStartConfig {
            detach: Some(true),
            ..Default::default()
        })?;
        let path = format!("/exec/{}/start", encode_component(id));
        self.request_bytes(Method::POST, &path, &vec![], body::full(body), Some("application/json"))
            .await?;
        Ok(())
    }

    /// `POST /exec/{id}/start` with `Upgrade: tcp`: after `101 Switching Protocols` the connection
    /// is a raw bidirectional stream (multiplexed unless `tty`).
    pub async fn exec_attach(&self, id: &str, tty: bool, console_size: Option<(u16, u16)>) -> Result<AttachConn> {
        let body = serde_json::to_vec(&models::ExecStartConfig {
            detach: Some(false),
            tty: Some(tty),
            console_size: console_size.map(|(h, w)| vec![h as i32, w as i32]),
        })?;
        let path = format!("/exec/{}/start", encode_component(id));
        let resp = self
            .send(
                Method::POST,
                path,
                body::full(body),
                &crate::SendOpts {
                    content_type: Some("application/json"),
                    registry_auth: None,
                    headers: &[],
                    upgrade: true,
                },
            )
            .await?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(resp).await?;
            let (r, w) = tokio::io::split(TokioIo::new(upgraded));
            Ok(AttachConn {
                reader: Box::new(r),
                writer: Some(Box::new(w)),
            })
        } else {
            Ok(AttachConn {
                reader: Box::new(BodyReader::new(resp.into_body())),
                writer: None,
            })
        }
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let q = vec![("h", height.to_string()), ("w", width.to_string())];
        self.call(Method::POST, &format!("/exec/{}/resize", encode_component(id)), &q)
            .await
    }

    /// `GET /exec/{id}/json`.
    pub async fn exec_inspect(&self, id: &str) -> Result<models::ExecInspectResponse> {
        self.json(
            Method::GET,
            &format!("/exec/{}/json", encode_component(id)),
            &vec![],
            None,
        )
        .await
    }
}
