//! Docker's filter conventions, shared by the list, prune and events endpoints: which keys an
//! endpoint accepts (an unknown one is a 400, `invalid filter 'lable'`, as dockerd's `filters.Validate`
//! words it), `label`/`label!` matching (`MatchKVList`), and the timestamps `since`/`until` take
//! (Unix seconds with an optional fraction, RFC 3339, or a Go duration such as `10m` counted back from
//! now, as `timetypes.GetTimestamp`).

use crate::error::{EngineError, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use std::collections::HashMap;

/// Parsed `filters`: key to values.
pub type Filters = HashMap<String, Vec<String>>;

/// Refuses a key not in `accepted`, with dockerd's message.
pub fn check_keys(filters: &Filters, accepted: &[&str]) -> Result<()> {
    let mut keys: Vec<&String> = filters.keys().collect();
    keys.sort();
    match keys.into_iter().find(|k| !accepted.contains(&k.as_str())) {
        Some(k) => Err(EngineError::InvalidArgument(format!("invalid filter '{k}'"))),
        None => Ok(()),
    }
}

/// Docker's `MatchKVList`: every value of `key` (`k` or `k=v`) matches `labels`; true without values.
pub fn match_kv_list(filters: &Filters, key: &str, labels: &HashMap<String, String>) -> bool {
    filters.get(key).is_none_or(|vals| {
        vals.iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    })
}

/// Prune's label rule: every `label` matches and not every `label!` matches (dockerd's `matchLabels`).
pub fn prune_labels_match(filters: &Filters, labels: &HashMap<String, String>) -> bool {
    if !match_kv_list(filters, "label", labels) {
        return false;
    }
    !(filters.get("label!").is_some_and(|v| !v.is_empty()) && match_kv_list(filters, "label!", labels))
}

/// The `until` filter of a prune as Unix nanoseconds: objects created at or after it are kept.
pub fn prune_until(filters: &Filters) -> Result<Option<i64>> {
    match filters.get("until").map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([one]) => parse_timestamp(one, Utc::now()).map(Some),
        Some(_) => Err(EngineError::InvalidArgument(
            "filters for 'until' must be a single value".into(),
        )),
    }
}

/// Whether a `created` RFC 3339 time is before `until` (always, without `until`).
pub fn created_before(created: &str, until: Option<i64>) -> bool {
    let Some(until) = until else { return true };
    berth_types::time::parse_rfc3339(created)
        .and_then(|t| t.timestamp_nanos_opt())
        .is_some_and(|t| t < until)
}
pub(crate) use berth_types::units::parse_go_duration;

/// `seconds[.fraction]` in nanoseconds (the fraction is up to nine digits, as dockerd sends it).
fn parse_unix(s: &str) -> Option<i64> {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    sec.checked_mul(1_000_000_000)?
        .checked_add(if sec < 0 { -nanos } else { nanos })
}

fn nanos(t: DateTime<Utc>) -> Option<i64> {
    t.timestamp_nanos_opt()
}

/// A `since`/`until` value in Unix nanoseconds: Unix seconds (`1700000000`, `1700000000.5`), RFC 3339
/// (with or without a zone, or a date), or a Go duration counted back from `now` (`10m`).
pub fn parse_timestamp(value: &str, now: DateTime<Utc>) -> Result<i64> {
    let v = value.trim();
    let bad = || EngineError::InvalidArgument(format!("failed to parse value {value:?} as a timestamp"));
    if v != "0" {
        if let Some(d) = parse_go_duration(v).filter(|_| v.ends_with(|c: char| c.is_ascii_alphabetic())) {
            return nanos(now - chrono::Duration::nanoseconds(d)).ok_or_else(bad);
        }
    }
    if let Some(n) = parse_unix(v) {
        return Ok(n);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return nanos(t.with_timezone(&Utc)).ok_or_else(bad);
    }
    for layout in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, layout) {
            return nanos(Utc.from_utc_datetime(&t)).ok_or_else(bad);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .and_then(|t| nanos(Utc.from_utc_datetime(&t)))
            .ok_or_else(bad);
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &[&str])]) -> Filters {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn unknown_keys_are_refused_with_dockers_message() {
        let e = check_keys(&f(&[("lable", &["x"])]), &["label", "until"]).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'lable'");
        assert!(check_keys(&f(&[("label", &["x"])]), &["label"]).is_ok());
    }

    #[test]
    fn labels_as_prune_matches_them() {
        let labels: HashMap<String, String> = [("a".to_string(), "1".to_string())].into();
        for (filters, want) in [
            (f(&[]), true),
            (f(&[("label", &["a"])]), true),
            (f(&[("label", &["a=1"])]), true),
            (f(&[("label", &["a=2"])]), false),
            (f(&[("label", &["a", "b"])]), false),
            (f(&[("label!", &["a"])]), false),
            (f(&[("label!", &["a=2"])]), true),
            (f(&[("label!", &["b"])]), true),
            (f(&[("label", &["a"]), ("label!", &["a=1"])]), false),
        ] {
            assert_eq!(prune_labels_match(&filters, &labels), want, "{filters:?}");
        }
    }

    #[test]
    fn timestamps_in_dockers_forms() {
        let now = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let n = nanos(now).unwrap();
        for (v, want) in [
            ("1700000000", 1_700_000_000_000_000_000),
            ("1700000000.5", 1_700_000_000_500_000_000),
            ("1700000000.000000001", 1_700_000_000_000_000_001),
            ("2024-01-02T03:04:05Z", n),
            ("2024-01-02T04:04:05+01:00", n),
            ("2024-01-02T03:04:05", n),
            ("10m", n - 600_000_000_000),
            ("1h30m", n - 5_400_000_000_000),
            ("0", 0),
        ] {
            assert_eq!(parse_timestamp(v, now).unwrap(), want, "{v}");
        }
        assert_eq!(
            parse_timestamp("2024-01-02", now).unwrap(),
            nanos(Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap()).unwrap()
        );
        for bad in ["", "yesterday", "12x", "1.2.3"] {
            assert!(parse_timestamp(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn until_keeps_newer_objects() {
        let until = parse_timestamp("2024-01-02T00:00:00Z", Utc::now()).ok();
        assert!(created_before("2024-01-01T00:00:00Z", until));
        assert!(!created_before("2024-01-03T00:00:00Z", until));
        assert!(created_before("2024-01-03T00:00:00Z", None));
        assert!(prune_until(&f(&[("until", &["a", "b"])])).is_err());
    }
}
