//! The engine's Prometheus metrics: image pulls and pushes, builds, containers by state, events
//! that subscribers fell too far behind to get. Counters are process-wide (one daemon per
//! process); `berthd --metrics-addr` serves them with the API's (see berth-api-server).

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How an operation ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `success` or `failure`.
    pub result: &'static str,
}

impl Outcome {
    fn of<T, E>(r: &Result<T, E>) -> Outcome {
        Outcome {
            result: if r.is_ok() { "success" } else { "failure" },
        }
    }
}

/// A container state (`running`, `paused`, `stopped`), as dockerd labels it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct State {
    /// The state.
    pub state: &'static str,
}

/// The engine's metrics.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    /// `POST /images/create` pulls, by outcome.
    pub pulls: Family<Outcome, Counter>,
    /// Pushes, by outcome.
    pub pushes: Family<Outcome, Counter>,
    /// Builds, by outcome.
    pub builds: Family<Outcome, Counter>,
    /// Events a slow `/events` subscriber did not get.
    pub events_dropped: Counter,
    /// Containers by state, set when scraped.
    pub containers: Family<State, Gauge>,
}

static METRICS: LazyLock<EngineMetrics> = LazyLock::new(EngineMetrics::default);

/// The engine's metrics.
pub fn metrics() -> &'static EngineMetrics {
    &METRICS
}

/// Counts an operation's outcome in `family` and hands the result back.
pub(crate) fn count<T, E>(family: &Family<Outcome, Counter>, r: Result<T, E>) -> Result<T, E> {
    family.get_or_create(&Outcome::of(&r)).inc();
    r
}

/// Sets the containers-by-state gauge (running, paused, stopped).
pub fn set_container_states(running: i64, paused: i64, stopped: i64) {
    let m = metrics();
    for (state, n) in [("running", running), ("paused", paused), ("stopped", stopped)] {
        m.containers.get_or_create(&State { state }).set(n);
    }
}

/// Registers the engine's metrics in `registry`, named under `berth_` (and `engine_daemon_` where
/// dockerd has the same metric).
pub fn register(registry: &mut Registry) {
    let m = metrics();
    // Every series exists from the start (at 0), so a scrape shows what can be counted.
    for family in [&m.pulls, &m.pushes, &m.builds] {
        for result in ["success", "failure"] {
            let _ = family.get_or_create(&Outcome { result });
        }
    }
    set_container_states(0, 0, 0);
    registry.register(
        "engine_daemon_container_states_containers",
        "The count of containers in various states",
        m.containers.clone(),
    );
    registry.register("berth_image_pulls", "Image pulls, by result", m.pulls.clone());
    registry.register("berth_image_pushes", "Image pushes, by result", m.pushes.clone());
    registry.register("berth_builds", "Image builds, by result", m.builds.clone());
    registry.register(
        "berth_events_dropped",
        "Events not delivered to an /events subscriber that fell behind",
        m.events_dropped.clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_outcome() {
        let family = Family::<Outcome, Counter>::default();
        let _ = count(&family, Ok::<_, ()>(1));
        let _ = count(&family, Err::<(), _>(()));
        let _ = count(&family, Err::<(), _>(()));
        assert_eq!(family.get_or_create(&Outcome { result: "success" }).get(), 1);
        assert_eq!(family.get_or_create(&Outcome { result: "failure" }).get(), 2);
    }
}
