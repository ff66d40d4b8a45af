//! Health checks, as dockerd runs them (`daemon/health.go`): from the container's `Healthcheck`
//! (the image's `HEALTHCHECK`, or `--health-*`), a monitor task per run probes the container with
//! an exec through its shim every interval (the start interval while starting, within the start
//! period), keeps `State.Health` (status, failing streak, the last five results) and publishes
//! `health_status: healthy|unhealthy` when the status changes. The monitor ends with the run.

use super::ContainerService;
use crate::lock;
use crate::registry::Container;
use berth_api::models::{Health, HealthConfig, HealthStatusEnum, HealthcheckResult};
use berth_types::time::now_rfc3339;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
const MAX_LOG: usize = 5;
/// Output kept per result.
const MAX_OUTPUT: usize = 4096;

/// A nanosecond setting, or its default when unset or zero (dockerd's `timeoutWithDefault`).
fn or_default(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe's command line: `CMD args…` as is, `CMD-SHELL cmd` through the container's shell
/// (`/bin/sh -c` by default); `None` for `NONE`, an empty test or an unknown kind.
pub(crate) fn probe_cmd(hc: &HealthConfig, shell: Option<&[String]>) -> Option<Vec<String>> {
    let test = hc.test.as_deref().unwrap_or_default();
    let (kind, rest) = test.split_first()?;
    match kind.as_str() {
        "CMD" if !rest.is_empty() => Some(rest.to_vec()),
        "CMD-SHELL" if !rest.is_empty() => {
            let mut cmd = match shell.filter(|s| !s.is_empty()) {
                Some(s) => s.to_vec(),
                None => vec!["/bin/sh".into(), "-c".into()],
            };
            cmd.push(rest.join(" "));
            Some(cmd)
        }
        _ => None,
    }
}

/// dockerd's merge of the container's health settings over the image's: each unset field of the
/// container's comes from the image.
pub(crate) fn merge_config(container: &mut Option<HealthConfig>, image: Option<&HealthConfig>) {
    let Some(image) = image else {
        return;
    };
    let Some(c) = container else {
        *container = Some(image.clone());
        return;
    };
    if c.test.as_ref().is_none_or(|t| t.is_empty()) {
        c.test = image.test.clone();
    }
    for (mine, theirs) in [
        (&mut c.interval, image.interval),
        (&mut c.timeout, image.timeout),
        (&mut c.start_period, image.start_period),
        (&mut c.start_interval, image.start_interval),
        (&mut c.retries, image.retries),
    ] {
        if mine.unwrap_or(0) == 0 {
            *mine = theirs;
        }
    }
}

/// One container's health.
#[derive(Debug, Clone)]
pub(crate) struct HealthState {
    pub status: HealthStatusEnum,
    pub failing_streak: i64,
    pub log: VecDeque<HealthcheckResult>,
}

impl HealthState {
    fn starting() -> HealthState {
        HealthState {
            status: HealthStatusEnum::STARTING,
            failing_streak: 0,
            log: VecDeque::new(),
        }
    }

    /// Records a probe's result (dockerd's `handleProbeResult`): success makes it healthy; a
    /// failure adds to the streak (not while starting within the start period) and `retries`
    /// failures in a row make it unhealthy. Returns the new status when it changed.
    pub fn record(
        &mut self,
        result: HealthcheckResult,
        in_start_period: bool,
        retries: i64,
    ) -> Option<HealthStatusEnum> {
        let before = self.status;
        if result.exit_code == Some(0) {
            self.failing_streak = 0;
            self.status = HealthStatusEnum::HEALTHY;
        } else if !(self.status == HealthStatusEnum::STARTING && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatusEnum::UNHEALTHY;
            }
        }
        self.log.push_back(result);
        while self.log.len() > MAX_LOG {
            self.log.pop_front();
        }
        (self.status != before).then_some(self.status)
    }

    fn api(&self) -> Health {
        Health {
            status: Some(self.status),
            failing_streak: Some(self.failing_streak),
            log: Some(self.log.iter().cloned().collect()),
        }
    }
}

/// The health of the containers that have a health check.
#[derive(Default)]
pub(crate) struct HealthMonitors {
    map: Mutex<HashMap<String, Arc<Mutex<HealthState>>>>,
}

impl ContainerService {
    /// `State.Health` for inspect.
    pub(crate) fn health(&self, id: &str) -> Option<Health> {
        let state = lock(&self.health.map).get(id).cloned()?;
        let h = lock(&state).api();
        Some(h)
    }

    /// What `ps` adds to a running container's status: ` (healthy)`, ` (health: starting)`.
    pub(crate) fn health_suffix(&self, id: &str) -> String {
        match self.health(id).and_then(|h| h.status) {
            Some(HealthStatusEnum::STARTING) => " (health: starting)".into(),
            Some(HealthStatusEnum::HEALTHY) => " (healthy)".into(),
            Some(HealthStatusEnum::UNHEALTHY) => " (unhealthy)".into(),
            _ => String::new(),
        }
    }

    /// The container's health as `ps --filter health=` names it (`none` without a health check).
    pub(crate) fn health_filter_value(&self, id: &str) -> &'static str {
        match self.health(id).and_then(|h| h.status) {
            Some(HealthStatusEnum::STARTING) => "starting",
            Some(HealthStatusEnum::HEALTHY) => "healthy",
            Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
            _ => "none",
        }
    }

    /// Starts the health monitor of a run that just began (or was re-adopted), if the container
    /// has a health check. It ends when the run ends.
    pub(crate) fn spawn_health(self: &Arc<Self>, c: &Arc<Container>) {
        let rec = c.record();
        let Some(hc) = rec.config.healthcheck.clone() else {
            return;
        };
        let Some(cmd) = probe_cmd(&hc, rec.config.shell.as_deref()) else {
            return;
        };
        let state = {
            let mut map = lock(&self.health.map);
            map.retain(|id, _| self.registry.contains(id));
            let s = map
                .entry(c.id.clone())
                .or_insert_with(|| Arc::new(Mutex::new(HealthState::starting())))
                .clone();
            // A new run starts again (the log of earlier runs is kept, as dockerd does).
            let mut st = lock(&s);
            st.status = HealthStatusEnum::STARTING;
            st.failing_streak = 0;
            drop(st);
            s
        };
        let interval = or_default(hc.interval, DEFAULT_INTERVAL);
        let timeout = or_default(hc.timeout, DEFAULT_TIMEOUT);
        let start_period = or_default(hc.start_period, Duration::ZERO);
        let start_interval = or_default(hc.start_interval, DEFAULT_START_INTERVAL);
        let retries = match hc.retries {
            Some(r) if r > 0 => r,
            _ => DEFAULT_RETRIES,
        };
        let mut rx = c.events.subscribe();
        let run = rx.borrow_and_update().exits;
        let svc = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let run_over = |e: &crate::registry::RunEvent| !e.running || e.exits != run;
            loop {
                let starting = lock(&state).status == HealthStatusEnum::STARTING;
                let wait = if starting && started.elapsed() < start_period {
                    start_interval
                } else {
                    interval
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = rx.wait_for(run_over) => return,
                }
                if run_over(&rx.borrow()) {
                    return;
                }
                let start = now_rfc3339();
                let in_start_period = started.elapsed() < start_period;
                let (code, output) = match svc.exec_capture(&c, cmd.clone(), timeout, MAX_OUTPUT).await {
                    Ok(r) => r,
                    Err(e) => (-1, e.to_string()),
                };
                if run_over(&rx.borrow()) {
                    return;
                }
                let result = HealthcheckResult {
                    start: Some(start),
                    end: Some(now_rfc3339()),
                    exit_code: Some(code),
                    output: Some(output),
                };
                let changed = lock(&state).record(result, in_start_period, retries);
                if let Some(status) = changed {
                    svc.publish(&c, &format!("health_status: {status}"), &[]);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: Some(code),
            ..Default::default()
        }
    }

    #[test]
    fn probes_move_the_status_as_dockerd_does() {
        use HealthStatusEnum::*;
        let mut h = HealthState::starting();
        // Failures within the start period do not count while starting.
        assert_eq!(h.record(result(1), true, 2), None);
        assert_eq!((h.status, h.failing_streak), (STARTING, 0));
        assert_eq!(h.record(result(0), true, 2), Some(HEALTHY));
        assert_eq!(h.record(result(1), false, 2), None);
        assert_eq!((h.status, h.failing_streak), (HEALTHY, 1));
        assert_eq!(h.record(result(1), false, 2), Some(UNHEALTHY));
        assert_eq!(h.record(result(2), false, 2), None, "any non-zero code is a failure");
        assert_eq!(h.failing_streak, 3);
        assert_eq!(h.record(result(0), false, 2), Some(HEALTHY));
        assert_eq!(h.failing_streak, 0);
        for _ in 0..10 {
            h.record(result(0), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG);
        // Once past the start period, failures count while starting too.
        let mut h = HealthState::starting();
        assert_eq!(h.record(result(1), false, 1), Some(UNHEALTHY));
    }

    #[test]
    fn probe_commands() {
        let hc = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(probe_cmd(&hc(&["CMD", "true", "x"]), None).unwrap(), ["true", "x"]);
        assert_eq!(
            probe_cmd(&hc(&["CMD-SHELL", "exit 1"]), None).unwrap(),
            ["/bin/sh", "-c", "exit 1"]
        );
        let shell = ["/bin/ash".to_string(), "-e".into(), "-c".into()];
        assert_eq!(
            probe_cmd(&hc(&["CMD-SHELL", "true"]), Some(&shell)).unwrap(),
            ["/bin/ash", "-e", "-c", "true"]
        );
        assert!(probe_cmd(&hc(&["NONE"]), None).is_none());
        assert!(probe_cmd(&hc(&[]), None).is_none());
        assert!(probe_cmd(&hc(&["CMD"]), None).is_none());
    }

    #[test]
    fn container_settings_override_the_images() {
        let image = HealthConfig {
            test: Some(vec!["CMD".into(), "true".into()]),
            interval: Some(5),
            retries: Some(7),
            ..Default::default()
        };
        let mut none = None;
        merge_config(&mut none, Some(&image));
        assert_eq!(none.as_ref(), Some(&image));
        let mut partial = Some(HealthConfig {
            interval: Some(1),
            ..Default::default()
        });
        merge_config(&mut partial, Some(&image));
        let p = partial.unwrap();
        assert_eq!((p.test, p.interval, p.retries), (image.test.clone(), Some(1), Some(7)));
        let mut off = Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
        merge_config(&mut off, Some(&image));
        assert!(probe_cmd(off.as_ref().unwrap(), None).is_none());
    }
}
