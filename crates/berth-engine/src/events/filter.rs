//! `GET /events` filters, as dockerd's `daemon/events/filter.go` applies them: every key given must
//! match (AND), any of a key's values may (OR); `container` and the other object keys match the ID or
//! the `name` attribute by prefix, `image` matches exactly with or without the tag, `label` needs
//! every `k`/`k=v` in the attributes, and `event` matches the action exactly (`health_status`,
//! `exec_create` and `exec_start` by prefix, since their actions carry a suffix).

use super::{Event, EventType};
use crate::error::Result;
use crate::filters::{check_keys, match_kv_list, Filters};

/// The keys `/events` accepts.
const KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// A validated `/events` filter.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    filters: Filters,
}

impl EventFilter {
    /// Validates `filters`; an unknown key is a 400.
    pub fn new(filters: Filters) -> Result<EventFilter> {
        check_keys(&filters, KEYS)?;
        Ok(EventFilter { filters })
    }

    fn values(&self, key: &str) -> Option<&[String]> {
        self.filters.get(key).map(Vec::as_slice).filter(|v| !v.is_empty())
    }

    fn exact(&self, key: &str, source: &str) -> bool {
        self.values(key).is_none_or(|v| v.iter().any(|x| x == source))
    }

    fn fuzzy(&self, key: &str, source: &str) -> bool {
        self.values(key)
            .is_none_or(|v| v.iter().any(|x| x == source || source.starts_with(x.as_str())))
    }

    fn fuzzy_name(&self, key: &str, e: &Event) -> bool {
        let name = e.actor.attributes.get("name").map(String::as_str).unwrap_or("");
        self.values(key).is_none() || self.fuzzy(key, &e.actor.id) || (!name.is_empty() && self.fuzzy(key, name))
    }

    fn event(&self, e: &Event) -> bool {
        let fuzzy = self.values("event").is_some_and(|v| {
            v.iter()
                .any(|x| matches!(x.as_str(), "health_status" | "exec_create" | "exec_start"))
        });
        if fuzzy {
            self.fuzzy("event", &e.action)
        } else {
            self.exact("event", &e.action)
        }
    }

    fn image(&self, e: &Event) -> bool {
        if self.values("image").is_none() {
            return true;
        }
        let attr = if e.typ == EventType::Image { "name" } else { "image" };
        let name = e.actor.attributes.get(attr).map(String::as_str).unwrap_or("");
        [e.actor.id.as_str(), name]
            .into_iter()
            .filter(|s| !s.is_empty())
            .any(|s| self.exact("image", s) || self.exact("image", strip_tag(s)))
    }

    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &Event) -> bool {
        let typ = serde_json::to_value(e.typ)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.event(e)
            && self.exact("type", &typ)
            && self.exact("scope", &e.scope)
            && self.fuzzy_name("daemon", e)
            && self.fuzzy_name("container", e)
            && self.fuzzy_name("plugin", e)
            && self.fuzzy_name("volume", e)
            && self.fuzzy_name("network", e)
            && self.image(e)
            && self.fuzzy_name("node", e)
            && self.fuzzy_name("service", e)
            && self.fuzzy_name("secret", e)
            && self.fuzzy_name("config", e)
            && match_kv_list(
                &self.filters,
                "label",
                &e.actor.attributes.clone().into_iter().collect(),
            )
    }
}

/// What `GET /events` asks for: a time window and a filter.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Replay the kept events from this time (Unix nanoseconds).
    pub since: Option<i64>,
    /// End the stream at this time (Unix nanoseconds); in the past, only kept events are sent.
    pub until: Option<i64>,
    /// Which events.
    pub filter: EventFilter,
}

/// An open `GET /events` stream: the kept events to replay, then the live ones until `until`.
pub struct EventStream {
    /// Kept events in the window that pass the filter, oldest first.
    pub past: Vec<Event>,
    /// Live events, or `None` when `until` has passed (the stream ends after `past`).
    pub live: Option<tokio::sync::broadcast::Receiver<Event>>,
    /// When the live stream ends (Unix nanoseconds).
    pub until: Option<i64>,
    filter: EventFilter,
}

impl EventStream {
    /// Whether a live event is one the client asked for.
    pub fn wants(&self, e: &Event) -> bool {
        self.until.is_none_or(|u| e.time_nano <= u) && self.filter.matches(e)
    }
}

impl super::EventBus {
    /// Opens a stream as dockerd does: with `since` or `until`, the kept events between them (an
    /// `until` alone replays every kept event before it); without either, only live ones; an `until`
    /// in the past ends the stream after the replay.
    pub fn query(&self, q: EventQuery) -> EventStream {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let replay = (q.since.is_some() || q.until.is_some()).then(|| q.since.unwrap_or(0));
        let sub = self.subscribe(replay);
        let past = sub
            .past
            .into_iter()
            .filter(|e| q.until.is_none_or(|u| e.time_nano <= u) && q.filter.matches(e))
            .collect();
        let live = q.until.is_none_or(|u| u > now).then_some(sub.live);
        EventStream {
            past,
            live,
            until: q.until,
            filter: q.filter,
        }
    }
}

/// `bb:1.0` → `bb`, `localhost:5000/bb:1` → `localhost:5000/bb`, `bb@sha256:..` → `bb`.
fn strip_tag(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(n, _)| n);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &[&str])]) -> EventFilter {
        EventFilter::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        )
        .unwrap()
    }

    fn container(action: &str) -> Event {
        Event::new(EventType::Container, action, "0123456789abcdef")
            .attr("name", "web")
            .attr("image", "busybox:latest")
            .attr("tier", "front")
    }

    #[test]
    fn filters_as_dockerd_applies_them() {
        let start = container("start");
        let tag = Event::new(EventType::Image, "tag", "sha256:aaa").attr("name", "busybox:1");
        let health = container("health_status: healthy");
        for (f, e, want) in [
            (filter(&[]), &start, true),
            (filter(&[("type", &["container"])]), &start, true),
            (filter(&[("type", &["image"])]), &start, false),
            (filter(&[("type", &["image", "container"])]), &tag, true),
            (filter(&[("container", &["web"])]), &start, true),
            (filter(&[("container", &["0123"])]), &start, true),
            (filter(&[("container", &["db"])]), &start, false),
            (filter(&[("container", &["web"])]), &tag, false),
            (filter(&[("event", &["start", "die"])]), &start, true),
            (filter(&[("event", &["stop"])]), &start, false),
            (filter(&[("event", &["health_status"])]), &health, true),
            (filter(&[("image", &["busybox"])]), &start, true),
            (filter(&[("image", &["busybox:latest"])]), &start, true),
            (filter(&[("image", &["alpine"])]), &start, false),
            (filter(&[("image", &["busybox"])]), &tag, true),
            (filter(&[("label", &["tier"])]), &start, true),
            (filter(&[("label", &["tier=front"])]), &start, true),
            (filter(&[("label", &["tier=back"])]), &start, false),
            (filter(&[("type", &["container"]), ("event", &["die"])]), &start, false),
        ] {
            assert_eq!(f.matches(e), want, "{f:?} on {} {}", e.action, e.actor.id);
        }
    }

    #[test]
    fn query_replays_the_window_and_ends_when_until_passed() {
        let bus = super::super::EventBus::new();
        bus.publish(container("create"));
        bus.publish(container("start"));
        bus.publish(Event::new(EventType::Image, "tag", "sha256:aaa"));
        let all = bus.query(EventQuery {
            since: Some(0),
            ..Default::default()
        });
        assert_eq!(all.past.len(), 3);
        assert!(all.live.is_some());
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let done = bus.query(EventQuery {
            since: Some(0),
            until: Some(now),
            filter: filter(&[("type", &["container"])]),
        });
        assert_eq!(
            done.past.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["create", "start"]
        );
        assert!(done.live.is_none());
        let future = bus.query(EventQuery {
            since: Some(now + 1_000_000_000),
            ..Default::default()
        });
        assert!(future.past.is_empty());
        // Neither since nor until: live only.
        assert!(bus.query(EventQuery::default()).past.is_empty());
    }

    #[test]
    fn unknown_key_is_refused() {
        let e = EventFilter::new([("contianer".to_string(), vec!["x".to_string()])].into()).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'contianer'");
    }

    #[test]
    fn tags_are_stripped() {
        assert_eq!(strip_tag("bb:1.0"), "bb");
        assert_eq!(strip_tag("localhost:5000/bb"), "localhost:5000/bb");
        assert_eq!(strip_tag("localhost:5000/bb:2"), "localhost:5000/bb");
        assert_eq!(strip_tag("bb@sha256:abc"), "bb");
    }
}
