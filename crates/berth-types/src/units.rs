//! Docker's unit parsing (`github.com/docker/go-units` and Go's `time.ParseDuration`), shared by the
//! CLI's flags, the daemon's filters and builds, and compose files.

/// A Go duration (`1h30m`, `10s`, `1.5h`, `-5m`) in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    let n = total.round() as i64;
    Some(if neg { -n } else { n })
}

/// Parses a size in binary units as `units.RAMInBytes` does (`512m`, `1g`, `1.5GB`, `100`).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
    let Some(sep) = sep else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = s.split_at(sep + 1);
    let num = num.trim_end_matches(' ');
    let size: f64 = match num.parse() {
        Ok(v) if num.chars().all(|c| c.is_ascii_digit() || c == '.') => v,
        _ => return Err(format!("invalid size: '{s}'")),
    };
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || Err(format!("invalid suffix: '{sfx}'"));
    if sfx.len() > 3 {
        return bad();
    }
    let lower = sfx.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    if bytes[0] == b'b' {
        return if bytes.len() > 1 { bad() } else { Ok(size as i64) };
    }
    let mul: f64 = match bytes[0] {
        b'k' => 1024.0,
        b'm' => 1024f64.powi(2),
        b'g' => 1024f64.powi(3),
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return bad(),
    };
    match bytes.len() {
        2 if bytes[1] != b'b' => return bad(),
        3 if &lower[1..] != "ib" => return bad(),
        _ => {}
    }
    Ok((size * mul) as i64)
}

/// Parses `--cpus` (`0.5`, `2`) into nano-CPUs exactly, refusing more than 9 decimals.
pub fn nano_cpus(s: &str) -> Result<i64, String> {
    let invalid = || format!("failed to parse {s} as a rational number");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > 9 {
        return Err("value is too precise".to_string());
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| invalid())?
    };
    let mut nanos: i64 = 0;
    if !frac_trim.is_empty() {
        let padded = format!("{frac_trim:0<9}");
        nanos = padded.parse().map_err(|_| invalid())?;
    }
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos))
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_in_nanoseconds() {
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("-5m"), Some(-300_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(ram_in_bytes("64M"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1.5g"), Ok(3 << 29));
        assert!(ram_in_bytes("12x").is_err());
        assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
        assert!(nano_cpus("0.0000000001").is_err());
    }
}
