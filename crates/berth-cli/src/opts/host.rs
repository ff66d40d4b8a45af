//! Host settings of `run`/`create`: restart policy, ulimits, capabilities, security options,
//! memory and CPU limits, and `key=value` flags, with Docker's parsing and error wording.

use std::collections::HashMap;

use berth_api::models::{ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum};
use serde_json::Value;

use super::Env;
use crate::units;

/// `--ulimit name=soft[:hard]`.
pub fn parse_ulimit(s: &str) -> Result<ResourcesUlimits, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (a, b),
        None => (limits, limits),
    };
    let parse =
        |v: &str| -> Result<i64, String> { v.parse::<i64>().map_err(|_| format!("invalid ulimit argument: {s}")) };
    let (soft, hard) = (parse(soft)?, parse(hard)?);
    if soft > hard && hard != -1 {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// `--restart no|always|unless-stopped|on-failure[:max-retries]`.
pub fn parse_restart(s: &str) -> Result<RestartPolicy, String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let policy = |name: RestartPolicyNameEnum, retries: i64| RestartPolicy {
        name: Some(name),
        maximum_retry_count: Some(retries),
    };
    match name {
        "" if count.is_none() => Ok(policy(RestartPolicyNameEnum::EMPTY, 0)),
        "no" if count.is_none() => Ok(policy(RestartPolicyNameEnum::NO, 0)),
        "always" if count.is_none() => Ok(policy(RestartPolicyNameEnum::ALWAYS, 0)),
        "unless-stopped" if count.is_none() => Ok(policy(RestartPolicyNameEnum::UNLESS_STOPPED, 0)),
        "on-failure" => {
            let n = match count {
                Some(c) => c.parse::<i64>().map_err(|_| "invalid restart policy format: maximum retry count must be an integer".to_string())?,
                None => 0,
            };
            Ok(policy(RestartPolicyNameEnum::ON_FAILURE, n))
        }
        "no" | "always" | "unless-stopped" => Err("invalid restart policy format: maximum retry count can only be used with 'on-failure'".to_string()),
        _ => Err(format!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")),
    }
}

/// `key=value` flags (`--label`, `--sysctl`, `--log-opt`) into a map; a bare key is an empty
/// label and an error for the others.
pub fn kv_map(items: &[String], what: &str) -> Result<HashMap<String, String>, String> {
    let mut m = HashMap::new();
    for it in items {
        match it.split_once('=') {
            Some((k, v)) => m.insert(k.to_string(), v.to_string()),
            None if what == "label" => m.insert(it.to_string(), String::new()),
            None => return Err(format!("invalid argument \"{it}\" for \"--{what}\" flag")),
        };
    }
    Ok(m)
}

/// Docker's capability normalisation: upper case with the `CAP_` prefix, `ALL` kept as is.
pub fn normalize_caps(caps: &[String]) -> Vec<String> {
    caps.iter()
        .map(|c| {
            let up = c.to_uppercase();
            if up == "ALL" || up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            }
        })
        .collect()
}

/// `None` for an empty list, as Docker sends `null` rather than `[]` for unset lists.
pub fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

/// `--security-opt seccomp=<file>` inlines the profile JSON as the docker CLI does.
pub fn security_opt(s: &str, env: &Env<'_>) -> Result<String, String> {
    let (k, v) = match s.split_once(['=', ':']) {
        Some(kv) => kv,
        None => return Ok(s.to_string()),
    };
    if k == "seccomp" && v != "unconfined" && !v.starts_with('{') {
        let content = (env.read_file)(v).map_err(|e| format!("opening seccomp profile ({v}) failed: {e}"))?;
        let parsed: Value =
            serde_json::from_str(&content).map_err(|e| format!("parsing seccomp profile ({v}) failed: {e}"))?;
        return Ok(format!("seccomp={parsed}"));
    }
    Ok(s.to_string())
}

/// A memory flag (`-m`, `--memory-swap`, `--memory-reservation`) in bytes; 0 when unset, and
/// `--memory-swap -1` for unlimited swap.
pub fn memory_flag(flag: &str, v: Option<&str>) -> Result<i64, String> {
    match v {
        None => Ok(0),
        Some("-1") if flag == "memory-swap" => Ok(-1),
        Some(s) => units::ram_in_bytes(s).map_err(|e| {
            let shown = if flag == "memory" {
                "-m, --memory".to_string()
            } else {
                format!("--{flag}")
            };
            format!("invalid argument \"{s}\" for \"{shown}\" flag: {e}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(p.maximum_retry_count, Some(3));
        assert_eq!(
            parse_restart("always").unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        assert_eq!(parse_restart("no").unwrap().name, Some(RestartPolicyNameEnum::NO));
        assert!(parse_restart("always:2")
            .unwrap_err()
            .contains("only be used with 'on-failure'"));
        assert!(parse_restart("on-failure:x")
            .unwrap_err()
            .contains("must be an integer"));
        assert!(parse_restart("sometimes")
            .unwrap_err()
            .contains("unknown policy 'sometimes'"));
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        let u = parse_ulimit("nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (Some(10), Some(10)));
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=3:2").unwrap_err().contains("3 > 2"));
    }

    #[test]
    fn memory_and_maps() {
        assert_eq!(memory_flag("memory", Some("512m")), Ok(536_870_912));
        assert_eq!(memory_flag("memory-swap", Some("-1")), Ok(-1));
        assert_eq!(memory_flag("memory", None), Ok(0));
        assert!(memory_flag("memory", Some("lots"))
            .unwrap_err()
            .contains("\"-m, --memory\""));
        assert_eq!(kv_map(&["a".into()], "label").unwrap()["a"], "");
        assert!(kv_map(&["a".into()], "sysctl").is_err());
        assert_eq!(normalize_caps(&["chown".into(), "all".into()]), ["CAP_CHOWN", "ALL"]);
        assert_eq!(non_empty(vec![]), None);
    }
}
