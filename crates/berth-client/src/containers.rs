//! Container endpoints: create, start/stop/kill, remove, list, inspect, logs, wait, resize,
//! rename, prune and the hijacked attach.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::body::{self, BodyReader};
use crate::{build_query, encode_component, flag, models, push_filters};
use crate::{AttachConn, AttachOptions, Client, Filters, LogsOptions, Query, Result};

impl Client {
    /// `POST /containers/create`.
    pub async fn container_create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        config: &berth_api::ContainerCreateBody,
    ) -> Result<models::ContainerCreateResponse> {
        let mut q = Query::new();
        if let Some(n) = name {
            q.push(("name", n.to_string()));
        }
        if let Some(p) = platform {
            q.push(("platform", p.to_string()));
        }
        let body = serde_json::to_vec(config)?;
        self.json(Method::POST, "/containers/create", &q, Some(body)).await
    }

    /// `POST /containers/{id}/start`.
    pub async fn container_start(&self, id: &str) -> Result<()> {
        self.call(
            Method::POST,
            &format!("/containers/{}/start", encode_component(id)),
            &vec![],
        )
        .await
    }

    /// `POST /containers/{id}/stop`.
    pub async fn container_stop(&self, id: &str, t: Option<i64>, signal: Option<&str>) -> Result<()> {
        self.stop_like("stop", id, t, signal).await
    }

    /// `POST /containers/{id}/restart`.
    pub async fn container_restart(&self, id: &str, t: Option<i64>, signal: Option<&str>) -> Result<()> {
        self.stop_like("restart", id, t, signal).await
    }

    /// `stop` and `restart` take the same `t` and `signal` parameters.
    async fn stop_like(&self, action: &str, id: &str, t: Option<i64>, signal: Option<&str>) -> Result<()> {
        let mut q = Query::new();
        if let Some(t) = t {
            q.push(("t", t.to_string()));
        }
        if let Some(s) = signal {
            q.push(("signal", s.to_string()));
        }
        self.call(
            Method::POST,
            &format!("/containers/{}/{action}", encode_component(id)),
            &q,
        )
        .await
    }

    /// `POST /containers/{id}/kill`.
    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let mut q = Query::new();
        if let Some(s) = signal {
            q.push(("signal", s.to_string()));
        }
        self.call(Method::POST, &format!("/containers/{}/kill", encode_component(id)), &q)
            .await
    }

    /// `DELETE /containers/{id}`.
    pub async fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let q = vec![("force", flag(force)), ("v", flag(volumes))];
        self.call(Method::DELETE, &format!("/containers/{}", encode_component(id)), &q)
            .await
    }

    /// `GET /containers/json`.
    pub async fn container_list(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: &Filters,
    ) -> Result<Vec<Value>> {
        let mut q = Query::new();
        if all {
            q.push(("all", flag(true)));
        }
        if let Some(n) = limit {
            q.push(("limit", n.to_string()));
        }
        if size {
            q.push(("size", flag(true)));
        }
        push_filters(&mut q, filters);
        self.json(Method::GET, "/containers/json", &q, None).await
    }

    /// `GET /containers/{id}/json`, as the daemon's bytes (field order preserved for printing).
    pub async fn container_inspect_raw(&self, id: &str, size: bool) -> Result<Bytes> {
        let mut q = Query::new();
        if size {
            q.push(("size", flag(true)));
        }
        self.request_bytes(
            Method::GET,
            &format!("/containers/{}/json", encode_component(id)),
            &q,
            body::empty(),
            None,
        )
        .await
    }

    /// `GET /containers/{id}/json`.
    pub async fn container_inspect(&self, id: &str) -> Result<Value> {
        Ok(serde_json::from_slice(&self.container_inspect_raw(id, false).await?)?)
    }

    /// `GET /containers/{id}/logs`: multiplexed frames unless the container has a TTY.
    pub async fn container_logs(&self, id: &str, o: &LogsOptions) -> Result<BodyReader> {
        let mut q = vec![
            ("stdout", flag(o.stdout)),
            ("stderr", flag(o.stderr)),
            ("follow", flag(o.follow)),
            ("timestamps", flag(o.timestamps)),
        ];
        if let Some(t) = &o.tail {
            q.push(("tail", t.clone()));
        }
        if let Some(s) = &o.since {
            q.push(("since", s.clone()));
        }
        if let Some(u) = &o.until {
            q.push(("until", u.clone()));
        }
        let path = format!("/containers/{}/logs", encode_component(id));
        let resp = self.request(Method::GET, &path, &q, body::empty(), None).await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `POST /containers/{id}/wait`: returns once the daemon has sent the response headers (the
    /// daemon registers the wait before flushing them), so a start after this cannot be missed.
    /// Read the result with [`Client::wait_result`].
    pub async fn container_wait(&self, id: &str, condition: &str) -> Result<Response<Incoming>> {
        let q = vec![("condition", condition.to_string())];
        let path = format!("/containers/{}/wait", encode_component(id));
        self.request(Method::POST, &path, &q, body::empty(), None).await
    }

    /// The exit status carried by a wait response body: `(StatusCode, Error.Message)`.
    pub async fn wait_result(resp: Response<Incoming>) -> Result<(i64, Option<String>)> {
        let bytes = resp.into_body().collect().await?.to_bytes();
        let w: models::ContainerWaitResponse = serde_json::from_slice(&bytes)?;
        let err = w.error.and_then(|e| e.message).filter(|m| !m.is_empty());
        Ok((w.status_code, err))
    }

    /// `POST /containers/{id}/resize`.
    pub async fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let q = vec![("h", height.to_string()), ("w", width.to_string())];
        self.call(
            Method::POST,
            &format!("/containers/{}/resize", encode_component(id)),
            &q,
        )
        .await
    }

    /// `POST /containers/{id}/rename`.
    pub async fn container_rename(&self, id: &str, name: &str) -> Result<()> {
        let q = vec![("name", name.to_string())];
        self.call(
            Method::POST,
            &format!("/containers/{}/rename", encode_component(id)),
            &q,
        )
        .await
    }

    /// `POST /containers/prune`.
    pub async fn containers_prune(&self, filters: &Filters) -> Result<Value> {
        let mut q = Query::new();
        push_filters(&mut q, filters);
        self.json(Method::POST, "/containers/prune", &q, None).await
    }

    /// `POST /containers/{id}/attach` with `Upgrade: tcp`: after `101 Switching Protocols` the
    /// connection is a raw bidirectional stream. A daemon answering `200` streams output only.
    pub async fn container_attach(&self, id: &str, o: AttachOptions) -> Result<AttachConn> {
        let q = vec![
            ("stream", flag(true)),
            ("stdin", flag(o.stdin)),
            ("stdout", flag(o.stdout)),
            ("stderr", flag(o.stderr)),
            ("logs", flag(o.logs)),
        ];
        let path = format!("/containers/{}/attach{}", encode_component(id), build_query(&q));
        let resp = self
            .send(
                Method::POST,
                path,
                body::empty(),
                &crate::SendOpts {
                    upgrade: true,
                    ..Default::default()
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
}
