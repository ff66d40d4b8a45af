//! `--health-*` and `--no-healthcheck` into the container's `Healthcheck`, as Docker's CLI builds it.

use berth_api::models::HealthConfig;

use crate::args::ContainerOpts;
use crate::units::parse_go_duration;

/// A `--health-*` duration in nanoseconds (0 when unset); negative ones are refused as Docker does.
fn duration_ns(flag: &str, value: Option<&str>) -> Result<i64, String> {
    let Some(v) = value else {
        return Ok(0);
    };
    let (negative, magnitude) = match v.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, v),
    };
    let d = parse_go_duration(magnitude)
        .ok_or_else(|| format!("invalid argument \"{v}\" for \"--{flag}\" flag: time: invalid duration \"{v}\""))?;
    if negative && !d.is_zero() {
        return Err(format!("--{flag} cannot be negative"));
    }
    Ok(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The `Healthcheck` of the create body: `NONE` with `--no-healthcheck`, the flags' settings when
/// any is given (the image's fill the rest at create), else nothing.
pub fn health_config(o: &ContainerOpts) -> Result<Option<HealthConfig>, String> {
    let any = o.health_cmd.is_some()
        || o.health_interval.is_some()
        || o.health_timeout.is_some()
        || o.health_start_period.is_some()
        || o.health_start_interval.is_some()
        || o.health_retries.is_some();
    if o.no_healthcheck {
        if any {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    let retries = o.health_retries.unwrap_or(0);
    if retries < 0 {
        return Err("--health-retries cannot be negative".into());
    }
    Ok(Some(HealthConfig {
        test: o
            .health_cmd
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| vec!["CMD-SHELL".into(), c.clone()]),
        interval: Some(duration_ns("health-interval", o.health_interval.as_deref())?),
        timeout: Some(duration_ns("health-timeout", o.health_timeout.as_deref())?),
        start_period: Some(duration_ns("health-start-period", o.health_start_period.as_deref())?),
        start_interval: Some(duration_ns(
            "health-start-interval",
            o.health_start_interval.as_deref(),
        )?),
        retries: Some(retries),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_dockers_healthcheck() {
        let o = ContainerOpts {
            health_cmd: Some("test -f /ok".into()),
            health_interval: Some("500ms".into()),
            health_retries: Some(2),
            ..Default::default()
        };
        let h = health_config(&o).unwrap().unwrap();
        assert_eq!(h.test.unwrap(), ["CMD-SHELL", "test -f /ok"]);
        assert_eq!(h.interval, Some(500_000_000));
        assert_eq!((h.timeout, h.retries), (Some(0), Some(2)));

        let none = ContainerOpts {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(health_config(&none).unwrap().unwrap().test.unwrap(), ["NONE"]);
        assert!(health_config(&ContainerOpts::default()).unwrap().is_none());

        let conflict = ContainerOpts {
            no_healthcheck: true,
            health_retries: Some(1),
            ..Default::default()
        };
        assert!(health_config(&conflict).unwrap_err().contains("conflicts"));
        let negative = ContainerOpts {
            health_interval: Some("-1s".into()),
            ..Default::default()
        };
        assert_eq!(
            health_config(&negative).unwrap_err(),
            "--health-interval cannot be negative"
        );
        let bad = ContainerOpts {
            health_timeout: Some("soon".into()),
            ..Default::default()
        };
        assert!(health_config(&bad)
            .unwrap_err()
            .starts_with("invalid argument \"soon\""));
    }
}
