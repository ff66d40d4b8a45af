//! The event bus: every service publishes Docker-shaped events (`GET /events` in the Engine API)
//! on one in-process bus. Subscribers (the `/events` endpoint, health checks, compose, the cluster)
//! get each event once, in order; the last [`HISTORY`] events are kept for `since` queries, as
//! dockerd keeps its last 256.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

mod filter;
pub use filter::{EventFilter, EventQuery, EventStream};

/// How many past events are kept for subscribers that ask for `since`.
pub const HISTORY: usize = 256;
/// How many events a slow subscriber may fall behind before it misses some.
const CHANNEL: usize = 1024;

/// The kind of object an event is about (Docker's `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A container.
    Container,
    /// An image.
    Image,
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// The daemon itself.
    Daemon,
}

/// The object an event is about: its ID and attributes (a container's name and image, labels…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    /// The object's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its attributes.
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, in the Engine API's shape (`EventMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What kind of object.
    #[serde(rename = "Type")]
    pub typ: EventType,
    /// What happened: `create`, `start`, `die`, `destroy`, `tag`, `delete`, `exec_start: sh`…
    #[serde(rename = "Action")]
    pub action: String,
    /// The object.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// `local` (or `swarm` for cluster events).
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// A local event of now.
    pub fn new(typ: EventType, action: impl Into<String>, id: impl Into<String>) -> Event {
        let now = chrono::Utc::now();
        let time_nano = now.timestamp_nanos_opt().unwrap_or(now.timestamp() * 1_000_000_000);
        Event {
            typ,
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::new(),
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano,
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Event {
        self.actor.attributes.insert(key.into(), value.into());
        self
    }

    /// Adds several attributes (a container's or image's labels).
    pub fn attrs<'a>(mut self, kv: impl IntoIterator<Item = (&'a String, &'a String)>) -> Event {
        for (k, v) in kv {
            self.actor.attributes.insert(k.clone(), v.clone());
        }
        self
    }
}

/// The bus. Cloning it gives another handle on the same bus.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

/// A subscription: the past events asked for, then the live ones.
pub struct Subscription {
    /// Events before the subscription that matched `since`, oldest first.
    pub past: Vec<Event>,
    /// Events from now on. A subscriber more than 1024 events behind gets `Lagged` and goes on.
    pub live: broadcast::Receiver<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(CHANNEL);
        EventBus {
            inner: Arc::new(Inner {
                tx,
                history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            }),
        }
    }

    /// Publishes an event to every subscriber (none is fine).
    pub fn publish(&self, event: Event) {
        let mut h = crate::lock(&self.inner.history);
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(event.clone());
        // Sent under the history lock, so a subscriber sees each event exactly once.
        let _ = self.inner.tx.send(event);
    }

    /// Subscribes; `since_nanos` also returns the kept events at or after that time.
    pub fn subscribe(&self, since_nanos: Option<i64>) -> Subscription {
        let h = crate::lock(&self.inner.history);
        let past = match since_nanos {
            Some(t) => h.iter().filter(|e| e.time_nano >= t).cloned().collect(),
            None => Vec::new(),
        };
        let live = self.inner.tx.subscribe();
        Subscription { past, live }
    }

    /// How many subscribers listen now (`NEventsListener` in `/info`).
    pub fn listeners(&self) -> usize {
        self.inner.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_dockers() {
        let e = Event::new(EventType::Container, "start", "abc").attr("name", "web");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "start");
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["scope"], "local");
        assert!(v["timeNano"].as_i64().unwrap() / 1_000_000_000 == v["time"].as_i64().unwrap());
    }

    #[tokio::test]
    async fn subscribers_see_each_event_once_in_order() {
        let bus = EventBus::new();
        bus.publish(Event::new(EventType::Image, "tag", "old"));
        let mut s = bus.subscribe(Some(0));
        assert_eq!(s.past.len(), 1);
        bus.publish(Event::new(EventType::Container, "create", "a"));
        bus.publish(Event::new(EventType::Container, "start", "a"));
        assert_eq!(s.live.recv().await.unwrap().action, "create");
        assert_eq!(s.live.recv().await.unwrap().action, "start");
        assert!(s.live.try_recv().is_err());
        // Without `since`, no history.
        assert!(bus.subscribe(None).past.is_empty());
        assert_eq!(bus.listeners(), 1);
    }

    #[test]
    fn history_is_bounded() {
        let bus = EventBus::new();
        for i in 0..HISTORY + 10 {
            bus.publish(Event::new(EventType::Container, "start", i.to_string()));
        }
        let s = bus.subscribe(Some(0));
        assert_eq!(s.past.len(), HISTORY);
        assert_eq!(s.past[0].actor.id, "10");
    }
}
