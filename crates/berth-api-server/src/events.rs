//! `GET /events`: a stream of JSON objects, one per event, fed by the engine's event bus. Container
//! and image events carry the legacy `status`/`id`/`from` fields dockerd still sends (older clients
//! and docker-py read them).

use crate::containers::async_stream;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use berth_engine::filters::parse_timestamp;
use berth_engine::{Event, EventFilter, EventQuery, EventType};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

/// An event on the wire: the legacy fields first, as dockerd orders them.
#[derive(Serialize)]
struct WireEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(flatten)]
    event: &'a Event,
}

/// One event as a line of the stream.
fn encode(e: &Event) -> Bytes {
    let legacy = matches!(e.typ, EventType::Container | EventType::Image);
    let wire = WireEvent {
        status: legacy.then_some(e.action.as_str()),
        id: legacy.then_some(e.actor.id.as_str()),
        from: (e.typ == EventType::Container)
            .then(|| e.actor.attributes.get("image").map(String::as_str))
            .flatten(),
        event: e,
    };
    let mut line = serde_json::to_vec(&wire).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn timestamp(p: &Params, key: &str) -> ApiResult<Option<i64>> {
    match p.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_timestamp(v, berth_types::time::chrono::Utc::now())
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid value for {key}: {e}"))),
    }
}

async fn events(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::from_query(q.as_deref());
    let query = EventQuery {
        since: timestamp(&p, "since")?,
        until: timestamp(&p, "until")?,
        filter: EventFilter::new(p.filters()?)?,
    };
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if until < since {
            return Err(ApiError::bad_request(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                p.get("since").unwrap_or(""),
                p.get("until").unwrap_or("")
            )));
        }
    }
    let mut stream = e.events.query(query);
    let body = async_stream(move |tx| async move {
        for ev in std::mem::take(&mut stream.past) {
            if tx.send(Ok(encode(&ev))).await.is_err() {
                return;
            }
        }
        let Some(mut live) = stream.live.take() else { return };
        let deadline = stream.until.map(|u| {
            let now = berth_types::time::chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            tokio::time::Instant::now() + std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        let ended = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(ended);
        loop {
            tokio::select! {
                _ = &mut ended => return,
                _ = tx.closed() => return,
                got = live.recv() => match got {
                    Ok(ev) if stream.wants(&ev) => {
                        if tx.send(Ok(encode(&ev))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        berth_engine::metrics::metrics().events_dropped.inc_by(n);
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_default())
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_fields_for_containers_and_images() {
        let c = Event::new(EventType::Container, "start", "abc").attr("image", "busybox");
        let v: serde_json::Value = serde_json::from_slice(&encode(&c)).unwrap();
        assert_eq!(v["status"], "start");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Actor"]["Attributes"]["image"], "busybox");
        let i = Event::new(EventType::Image, "tag", "sha256:1").attr("name", "bb:1");
        let v: serde_json::Value = serde_json::from_slice(&encode(&i)).unwrap();
        assert_eq!(v["status"], "tag");
        assert!(v.get("from").is_none());
        let n = Event::new(EventType::Network, "create", "n1");
        let v: serde_json::Value = serde_json::from_slice(&encode(&n)).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none());
        assert!(encode(&n).ends_with(b"\n"));
    }
}
