//! Timestamps in the RFC 3339 forms Docker's API uses.

use chrono::{DateTime, SecondsFormat, Utc};

/// Docker's zero time, printed for containers that never started or finished.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Now, as RFC 3339 with nanoseconds (Docker's `time.RFC3339Nano`).
pub fn now_rfc3339() -> String {
    rfc3339(Utc::now())
}

/// A time as RFC 3339 with nanoseconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an RFC 3339 timestamp; `None` for the zero time or garbage.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    if s.is_empty() || s == ZERO_TIME {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (0 when unparsable).
pub fn unix_seconds(s: &str) -> i64 {
    parse_rfc3339(s).map(|t| t.timestamp()).unwrap_or(0)
}

pub use chrono;
