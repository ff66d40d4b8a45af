//! Prometheus metrics of the API (requests by route, method and status; latency histograms by
//! route) and, through `berth_engine::metrics`, of the engine; served by [`serve_metrics`] on the
//! daemon's `--metrics-addr`, apart from the API.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_engine::Services;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A request's route (the router's pattern, `/containers/{id}/json`), method and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// A route and method, for the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

static API: LazyLock<ApiMetrics> = LazyLock::new(|| ApiMetrics {
    requests: Family::default(),
    latency: Family::new_with_constructor(latency_histogram),
});

/// Middleware of the API router: counts each request and times it until its response head (a
/// stream's or hijacked connection's lifetime is not included).
pub(crate) async fn track(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let route = matched
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    API.latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(secs);
    API.requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// Every metric of the daemon.
fn registry() -> Registry {
    let mut r = Registry::default();
    r.register(
        "berth_api_requests",
        "Engine API requests, by method, route and status",
        API.requests.clone(),
    );
    r.register(
        "berth_api_request_duration_seconds",
        "Engine API request latency until the response head, by method and route",
        API.latency.clone(),
    );
    berth_engine::metrics::register(&mut r);
    r
}

/// The OpenMetrics text of every metric, with the container gauges read now.
pub fn render(services: &Services, registry: &Registry) -> Result<String, std::fmt::Error> {
    let (running, paused, stopped) = services.system.container_counts();
    berth_engine::metrics::set_container_states(running, paused, stopped);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

async fn metrics_page(State((services, registry)): State<(Arc<Services>, Arc<Registry>)>) -> Response {
    match render(&services, &registry) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the metrics: {e}")).into_response(),
    }
}

/// Serves `GET /metrics` on `listener` forever (`berthd --metrics-addr`).
pub async fn serve_metrics(listener: tokio::net::TcpListener, services: Arc<Services>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .with_state((services, Arc::new(registry())));
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_route_and_status() {
        let app: Router = Router::new()
            .route("/things/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(track));
        for id in ["a", "b"] {
            let req = Request::builder()
                .uri(format!("/things/{id}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry()).unwrap();
        assert!(
            text.contains(r#"berth_api_requests_total{method="GET",route="/things/{id}",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"berth_api_request_duration_seconds_count{method="GET",route="/things/{id}"} 2"#),
            "{text}"
        );
        assert!(text.contains("berth_image_pulls"), "{text}");
    }
}
