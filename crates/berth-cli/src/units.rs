//! Docker's unit handling (`github.com/docker/go-units`): sizes like `512m`, human sizes and
//! durations as `docker ps`/`docker images` print them, and `--cpus` to nano-CPUs.

use std::time::Duration;

pub use berth_types::units::{nano_cpus, ram_in_bytes};

/// Parses a non-negative Go duration (`10m`, `1h30m`, `1.5s`, `300ms`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let n = berth_types::units::parse_go_duration(s)?;
    u64::try_from(n).ok().map(Duration::from_nanos)
}

/// Formats like Go's `%.<prec>g`.
pub fn go_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `units.HumanSizeWithPrecision(size, 3)`: decimal units, as Docker prints image and container sizes.
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 3)
}

/// `units.HumanSizeWithPrecision` with an explicit precision (`docker version`/`info` use 4).
pub fn human_size_prec(mut size: f64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(size, prec), UNITS[i])
}

/// `units.BytesSize`: binary units (`docker info` memory).
pub fn bytes_size(mut size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(size, 4), UNITS[i])
}

/// `units.HumanDuration`: "Less than a second", "About a minute", "2 hours", "3 weeks".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// Time since a Unix timestamp, `"<duration> ago"` as the CREATED columns print it.
pub fn ago_unix(created: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let ms = (now - created.saturating_mul(1000)).max(0) as u64;
    format!("{} ago", human_duration(Duration::from_millis(ms)))
}

/// A Unix time as Go's `time.Time.String()` in local time (`2026-11-05 07:17:01 +0000 UTC`).
pub fn go_time_string(unix: i64) -> String {
    match chrono::DateTime::from_timestamp(unix, 0) {
        Some(t) => {
            let local = t.with_timezone(&chrono::Local);
            let zone = if local.offset().local_minus_utc() == 0 {
                "UTC".to_string()
            } else {
                local.format("%z").to_string()
            };
            format!("{} {zone}", local.format("%Y-%m-%d %H:%M:%S %z"))
        }
        None => String::new(),
    }
}

/// Docker's `timetypes.GetTimestamp`: a duration (relative to now), an RFC 3339 time or a date,
/// as `seconds.nanoseconds`; anything else (a Unix timestamp) passes through.
pub fn timestamp_arg(value: &str) -> String {
    if let Some(d) = parse_go_duration(value) {
        let t = chrono::Utc::now() - chrono::Duration::from_std(d).unwrap_or_default();
        return format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return format!("{}.{:09}", t.and_utc().timestamp(), 0);
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_sizes() {
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("512m", Ok(512 << 20)),
            ("1g", Ok(1 << 30)),
            ("1.5GB", Ok(3 << 29)),
            ("1GiB", Ok(1 << 30)),
            ("100", Ok(100)),
            ("100b", Ok(100)),
            ("32k", Ok(32 << 10)),
            ("64 M", Ok(64 << 20)),
            ("abc", Err("invalid size: 'abc'")),
            ("1x", Err("invalid suffix: 'x'")),
            ("1gx", Err("invalid suffix: 'gx'")),
            ("1bb", Err("invalid suffix: 'bb'")),
            ("", Err("invalid size: ''")),
        ];
        for (input, want) in cases {
            assert_eq!(ram_in_bytes(input), want.map_err(str::to_string), "{input}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus("1.25"), Ok(1_250_000_000));
        assert_eq!(nano_cpus(".1"), Ok(100_000_000));
        assert_eq!(nano_cpus("0.0000000001"), Err("value is too precise".into()));
        assert!(nano_cpus("x").is_err());
    }

    #[test]
    fn go_g_format() {
        for (x, want) in [
            (4.261234, "4.26"),
            (1.0, "1"),
            (100.0, "100"),
            (999.9, "1e+03"),
            (12.5, "12.5"),
            (0.0, "0"),
            (1.2e-5, "1.2e-05"),
        ] {
            assert_eq!(go_g(x, 3), want, "{x}");
        }
    }

    #[test]
    fn human_sizes() {
        for (n, want) in [
            (0.0, "0B"),
            (999.0, "999B"),
            (1000.0, "1kB"),
            (4_261_234.0, "4.26MB"),
            (4_200_000.0, "4.2MB"),
            (1_500_000_000.0, "1.5GB"),
            (123_456_789.0, "123MB"),
        ] {
            assert_eq!(human_size(n), want, "{n}");
        }
        assert_eq!(bytes_size(2.0 * 1024.0 * 1024.0 * 1024.0), "2GiB");
        assert_eq!(human_size_prec(4_261_234.0, 4), "4.261MB");
    }

    #[test]
    fn human_durations() {
        let s = Duration::from_secs;
        for (d, want) in [
            (Duration::from_millis(300), "Less than a second"),
            (s(1), "1 second"),
            (s(5), "5 seconds"),
            (s(60), "About a minute"),
            (s(119), "About a minute"),
            (s(120), "2 minutes"),
            (s(59 * 60), "59 minutes"),
            (s(3600), "About an hour"),
            (s(2 * 3600), "2 hours"),
            (s(47 * 3600), "47 hours"),
            (s(3 * 86400), "3 days"),
            (s(15 * 86400), "2 weeks"),
            (s(90 * 86400), "3 months"),
            (s(800 * 86400), "2 years"),
        ] {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1700000000"), None);
        assert_eq!(timestamp_arg("1700000000"), "1700000000");
        assert_eq!(timestamp_arg("2023-11-14T22:13:20Z"), "1700000000.000000000");
    }
}
