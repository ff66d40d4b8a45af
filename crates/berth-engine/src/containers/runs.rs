//! A container's runs as its waiters and attached clients see them: the attach requests that wait
//! for the next start, the `wait` conditions, and the late-waiter rules `docker run` relies on
//! (see `attach.rs`). Pure bookkeeping over the container's `watch` channel: the lifecycle calls
//! [`Container::begin_run`], [`Container::mark_running`], [`Container::end_run`] and
//! [`Container::mark_removed`]; the API's wait and attach call [`Container::waiter`] and
//! [`Container::register_attach`].

use super::attach::{AttachStream, BoxFuture, WaitCondition};
use crate::error::Result;
use crate::registry::{Container, PendingAttach, RunEvent};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long the exit of a run started for attached clients stays claimable by a late `next-exit`.
const LATE_WAIT: Duration = Duration::from_secs(10);

/// Decrements the next-exit waiter count when a waiter goes away.
struct WaiterGuard(Option<Arc<Container>>);

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            let mut inner = crate::lock(&c.inner);
            inner.next_exit_waiters = inner.next_exit_waiters.saturating_sub(1);
        }
    }
}

/// A wait that is already over.
pub(crate) fn ready(code: i64, err: Option<String>) -> BoxFuture<(i64, Option<String>)> {
    Box::pin(async move { (code, err) })
}

impl Container {
    /// Registers an attach for the next start; `None` when the container runs (attach now).
    pub(crate) fn register_attach(
        &self,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Option<oneshot::Receiver<Result<AttachStream>>> {
        let mut inner = crate::lock(&self.inner);
        if !inner.accepting_attaches {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        inner.pending_attaches.push(PendingAttach {
            stdin,
            stdout,
            stderr,
            reply: tx,
        });
        Some(rx)
    }

    /// A start is about to let the process exec: takes the attaches that wait for it. The run's
    /// exit stays claimable by one late `next-exit` waiter when clients attached and none waited.
    pub(crate) fn begin_run(&self) -> Vec<PendingAttach> {
        let mut inner = crate::lock(&self.inner);
        inner.accepting_attaches = false;
        let pending = std::mem::take(&mut inner.pending_attaches);
        inner.late_wait_ok = !pending.is_empty() && inner.next_exit_waiters == 0;
        pending
    }

    /// The process runs.
    pub(crate) fn mark_running(&self) {
        crate::lock(&self.inner).accepting_attaches = false;
        self.events.send_modify(|e| {
            e.running = true;
            e.error = None;
        });
    }

    /// The run ended (or never began, with `error`): wakes the waiters.
    pub(crate) fn end_run(&self, exit_code: i64, error: Option<String>, exited: bool) {
        let late_ok = {
            let mut inner = crate::lock(&self.inner);
            inner.accepting_attaches = true;
            std::mem::take(&mut inner.late_wait_ok)
        };
        self.events.send_modify(|e| {
            e.exit_code = exit_code;
            e.error = error;
            if exited {
                e.running = false;
                e.exits += 1;
                e.claimable = late_ok;
                e.finished = Some(Instant::now());
            }
        });
    }

    /// The container is gone.
    pub(crate) fn mark_removed(&self) {
        self.events.send_modify(|e| e.removed = true);
    }

    /// The future of the exit code and error of the run `condition` waits for; registered now.
    pub(crate) fn waiter(self: &Arc<Self>, condition: WaitCondition) -> BoxFuture<(i64, Option<String>)> {
        let mut rx = self.events.subscribe();
        let start = rx.borrow_and_update().clone();
        let recent = start.finished.is_some_and(|t| t.elapsed() < LATE_WAIT);
        if condition == WaitCondition::NextExit && !start.running && start.claimable && recent {
            self.events.send_modify(|e| e.claimable = false);
            return ready(start.exit_code, start.error);
        }
        let guard = if condition == WaitCondition::NextExit {
            crate::lock(&self.inner).next_exit_waiters += 1;
            WaiterGuard(Some(self.clone()))
        } else {
            WaiterGuard(None)
        };
        Box::pin(async move {
            let _guard = guard;
            loop {
                let now = rx.borrow_and_update().clone();
                if condition.done(&start, &now) {
                    return (now.exit_code, now.error);
                }
                if rx.changed().await.is_err() {
                    let e = rx.borrow().clone();
                    return (e.exit_code, e.error);
                }
            }
        })
    }
}

impl WaitCondition {
    /// Whether `now` satisfies a waiter that registered when `start` was current.
    pub(crate) fn done(self, start: &RunEvent, now: &RunEvent) -> bool {
        match self {
            WaitCondition::NotRunning => !now.running,
            WaitCondition::NextExit => now.exits > start.exits,
            WaitCondition::Removed => now.removed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ContainerRecord;
    use std::task::{Context, Poll};

    fn container() -> Arc<Container> {
        let rec = ContainerRecord {
            id: "c".repeat(64),
            name: "web".into(),
            created: String::new(),
            path: "true".into(),
            args: vec![],
            config: Default::default(),
            host_config: Default::default(),
            image: String::new(),
            chain_ids: vec![],
            state: Default::default(),
            restart_count: 0,
            networks: Default::default(),
            mounts: Vec::new(),
            log_path: String::new(),
            runtime: String::new(),
        };
        Container::new("/nonexistent".into(), "/nonexistent".into(), "/nonexistent".into(), rec)
    }

    /// Polls once: `Some` if the wait is over.
    fn poll(f: &mut BoxFuture<(i64, Option<String>)>) -> Option<(i64, Option<String>)> {
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut Context::from_waker(waker)) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    #[test]
    fn wait_registered_before_start_sees_that_runs_exit() {
        let c = container();
        let mut next = c.waiter(WaitCondition::NextExit);
        let mut removed = c.waiter(WaitCondition::Removed);
        assert_eq!(poll(&mut next), None);
        c.begin_run();
        c.mark_running();
        assert_eq!(poll(&mut next), None);
        c.end_run(3, None, true);
        assert_eq!(poll(&mut next), Some((3, None)));
        assert_eq!(poll(&mut removed), None);
        c.mark_removed();
        assert_eq!(poll(&mut removed), Some((3, None)));
    }

    #[test]
    fn not_running_returns_at_once_for_a_stopped_container() {
        let c = container();
        let mut w = c.waiter(WaitCondition::NotRunning);
        assert_eq!(poll(&mut w), Some((0, None)));
    }

    #[test]
    fn a_fast_exit_stays_claimable_by_one_late_waiter() {
        // `docker run`: attach registered, start, the process exits before the wait arrives.
        let c = container();
        let _attach = c.register_attach(false, true, true).unwrap();
        assert_eq!(c.begin_run().len(), 1);
        c.mark_running();
        assert!(c.register_attach(false, true, true).is_none(), "running: attach now");
        c.end_run(7, None, true);
        let mut late = c.waiter(WaitCondition::NextExit);
        assert_eq!(poll(&mut late), Some((7, None)));
        // Only once: another late waiter waits for the next run.
        let mut second = c.waiter(WaitCondition::NextExit);
        assert_eq!(poll(&mut second), None);
    }

    #[test]
    fn no_late_claim_when_a_waiter_was_there() {
        let c = container();
        let _attach = c.register_attach(false, true, true).unwrap();
        let mut early = c.waiter(WaitCondition::NextExit);
        c.begin_run();
        c.mark_running();
        c.end_run(1, None, true);
        assert_eq!(poll(&mut early), Some((1, None)));
        let mut late = c.waiter(WaitCondition::NextExit);
        assert_eq!(poll(&mut late), None, "the exit went to the waiter that was there");
    }

    #[test]
    fn a_failed_start_releases_waiters_with_the_error() {
        let c = container();
        let mut w = c.waiter(WaitCondition::NotRunning);
        c.end_run(
            127,
            Some("exec: \"nope\": executable file not found in $PATH".into()),
            false,
        );
        let (code, err) = poll(&mut w).unwrap();
        assert_eq!(code, 127);
        assert!(err.unwrap().contains("not found"));
        assert!(
            c.register_attach(false, true, false).is_some(),
            "a created container takes attaches again"
        );
    }

    #[test]
    fn dropped_waiters_are_not_counted() {
        let c = container();
        let w = c.waiter(WaitCondition::NextExit);
        drop(w);
        let _attach = c.register_attach(false, true, true).unwrap();
        c.begin_run();
        c.mark_running();
        c.end_run(0, None, true);
        let mut late = c.waiter(WaitCondition::NextExit);
        assert_eq!(
            poll(&mut late),
            Some((0, None)),
            "the dropped waiter did not take the claim"
        );
    }
}
