//! Restart policies as dockerd applies them: after an exit the policy decides; the container waits
//! in `restarting` for a delay that starts at 100 ms and doubles at each quick failure up to one
//! minute, and goes back to 100 ms once a run lasted 10 seconds. `always` and `unless-stopped`
//! containers start again when the daemon starts (`unless-stopped` not after a user's stop).

use super::ContainerService;
use crate::record::ContainerRecord;
use crate::registry::Container;
use crate::state::{Status, Transition};
use berth_api::models::RestartPolicyNameEnum;
use berth_types::time::parse_rfc3339;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first delay.
const FIRST: Duration = Duration::from_millis(100);
/// The longest delay.
const MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// The current delay of each container that restarted.
#[derive(Default)]
pub(crate) struct Backoff(Mutex<HashMap<String, Duration>>);

impl Backoff {
    /// The delay before the next restart, given how long the last run lasted.
    pub(crate) fn next(&self, id: &str, ran: Option<Duration>) -> Duration {
        let mut m = crate::lock(&self.0);
        let prev = m.get(id).copied().filter(|_| ran.is_none_or(|r| r < RESET_AFTER));
        let d = next_delay(prev);
        m.insert(id.to_string(), d);
        d
    }

    /// Forgets a container (removed).
    pub(crate) fn forget(&self, id: &str) {
        crate::lock(&self.0).remove(id);
    }
}

/// dockerd's restart manager: 100 ms, then twice the previous delay, at most one minute.
pub(crate) fn next_delay(prev: Option<Duration>) -> Duration {
    match prev {
        None => FIRST,
        Some(d) => (d * 2).min(MAX),
    }
}

/// How long the last run lasted, from the record's times.
fn run_time(rec: &ContainerRecord) -> Option<Duration> {
    let start = parse_rfc3339(&rec.state.started_at)?;
    let end = parse_rfc3339(&rec.state.finished_at)?;
    (end - start).to_std().ok()
}

/// Whether the daemon starts this stopped container when it starts.
pub(crate) fn starts_with_daemon(rec: &ContainerRecord) -> bool {
    let name = rec.host_config.restart_policy.as_ref().and_then(|p| p.name);
    match name {
        Some(RestartPolicyNameEnum::ALWAYS) => true,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => !rec.state.stopped_by_user,
        _ => false,
    }
}

impl ContainerService {
    /// Puts an exited container in `restarting` and starts it again after the backoff delay, unless
    /// a user stops or removes it meanwhile.
    pub(crate) fn schedule_restart(self: &Arc<Self>, c: Arc<Container>) {
        let rec = c.record();
        if c.transition(Transition::Restarting, |_| {}).is_err() {
            return;
        }
        c.save_later();
        let delay = self.backoff.next(&c.id, run_time(&rec));
        tracing::debug!("restarting {} in {delay:?} (policy)", berth_types::short_id(&c.id));
        let svc = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            let r = c.record();
            if r.state.status != Status::Restarting || r.state.stopped_by_user {
                return;
            }
            c.modify(|r| r.restart_count += 1);
            if let Err(e) = svc.start_locked(&c).await {
                tracing::warn!("restarting container {}: {e}", berth_types::short_id(&c.id));
            }
        });
    }

    /// A stop, kill or `rm -f` of a container waiting to restart: it stays exited.
    pub(crate) fn cancel_restart(&self, c: &Arc<Container>) {
        if c.status() == Status::Restarting && c.transition(Transition::Exit, |_| {}).is_ok() {
            c.save_later();
        }
    }

    /// Starts the stopped `always` and `unless-stopped` containers (called once the daemon has
    /// reconciled its state; containers found dead with a policy were scheduled by then).
    pub(crate) fn restart_on_boot(self: &Arc<Self>) {
        for c in self.registry.all() {
            let rec = c.record();
            if rec.state.status != Status::Exited || !starts_with_daemon(&rec) {
                continue;
            }
            let svc = self.clone();
            tokio::spawn(async move {
                let _op = c.op.lock().await;
                if c.status() != Status::Exited {
                    return;
                }
                tracing::info!("starting {} (restart policy)", berth_types::short_id(&c.id));
                if let Err(e) = svc.start_locked(&c).await {
                    tracing::warn!("starting container {}: {e}", berth_types::short_id(&c.id));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute_and_resets_after_a_long_run() {
        let b = Backoff::default();
        let quick = Some(Duration::from_millis(50));
        let ms = |d: Duration| d.as_millis();
        let seq: Vec<u128> = (0..4).map(|_| ms(b.next("c", quick))).collect();
        assert_eq!(seq, vec![100, 200, 400, 800]);
        for _ in 0..20 {
            b.next("c", quick);
        }
        assert_eq!(b.next("c", quick), MAX);
        assert_eq!(b.next("c", Some(Duration::from_secs(11))), FIRST);
        assert_eq!(b.next("other", None), FIRST);
        b.forget("c");
        assert_eq!(b.next("c", quick), FIRST);
    }

    #[test]
    fn policies_at_daemon_start() {
        let rec = |name, by_user| {
            let mut r: ContainerRecord = serde_json::from_value(serde_json::json!({
                "id": "x", "name": "x", "created": "", "path": "true", "args": [],
                "config": {}, "host_config": {"RestartPolicy": {"Name": name}},
                "image": "", "chain_ids": [], "state": {"status": "exited", "pid": 0, "exit_code": 0,
                "error": "", "oom_killed": false, "started_at": "", "finished_at": ""}, "log_path": ""
            }))
            .unwrap();
            r.state.stopped_by_user = by_user;
            r
        };
        assert!(starts_with_daemon(&rec("always", false)));
        assert!(starts_with_daemon(&rec("always", true)));
        assert!(starts_with_daemon(&rec("unless-stopped", false)));
        assert!(!starts_with_daemon(&rec("unless-stopped", true)));
        assert!(!starts_with_daemon(&rec("on-failure", false)));
        assert!(!starts_with_daemon(&rec("no", false)));
    }
}
