//! A container's lifecycle as one state machine over Docker's states. Every change of status goes
//! through [`Status::apply`]; an illegal move is refused with the 409 (or 304) Docker answers.
//!
//! ```text
//!            start                 exit
//!  created ─────────▶ running ─────────────▶ exited ──┐ start
//!     ▲                │  ▲ unpause              │    └──────▶ running
//!     │ start failed   │  │                      │ policy
//!     └────────────────┘  paused                 ▼
//!                      pause                restarting ──start──▶ running
//!  any stopped state ──remove──▶ removing ──(failure)──▶ dead
//! ```

use crate::error::EngineError;
use serde::{Deserialize, Serialize};

/// A container's lifecycle status, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or its start failed).
    #[default]
    Created,
    /// The init process runs.
    Running,
    /// Frozen (cgroup freezer).
    Paused,
    /// Waiting to be restarted by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// The init process ended.
    Exited,
    /// Removal failed half-way.
    Dead,
}

impl Status {
    /// Docker's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether the container's init process exists (Docker's `IsRunning`).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }

    /// The status after `t`, or Docker's refusal. `id` and `name` fill Docker's messages.
    pub fn apply(self, t: Transition, id: &str, name: &str) -> Result<Status, EngineError> {
        use Status::*;
        use Transition as T;
        let conflict = |m: String| Err(EngineError::Conflict(m));
        match (t, self) {
            (T::Start, Created | Exited | Restarting) => Ok(Running),
            (T::Start, Running) => Err(EngineError::NotModified("container already started".into())),
            (T::Start, Paused) => conflict("cannot start a paused container, try unpause instead".into()),
            (T::Start, Removing | Dead) => conflict(format!(
                "container is marked for removal and cannot be started: {id}"
            )),
            // A start that failed leaves a never-started container created and a stopped one exited.
            (T::StartFailed, s @ (Created | Exited | Restarting)) => Ok(if s == Restarting { Exited } else { s }),
            (T::StartFailed, s) => Ok(s),
            (T::Exit, Running | Paused | Restarting) => Ok(Exited),
            // The shim reports exits it saw; a second report of the same exit changes nothing.
            (T::Exit, s @ (Exited | Created | Removing | Dead)) => Ok(s),
            (T::Pause, Running) => Ok(Paused),
            (T::Pause, Paused) => conflict(format!("Container {id} is already paused")),
            (T::Pause, _) => conflict(format!("Container {id} is not running")),
            (T::Unpause, Paused) => Ok(Running),
            (T::Unpause, _) => conflict(format!("Container {id} is not paused")),
            (T::Restarting, Exited) => Ok(Restarting),
            (T::Restarting, s) => conflict(format!("container {id} is {}, not exited", s.as_str())),
            (T::Remove, Created | Exited | Dead) => Ok(Removing),
            (T::Remove, Removing) => conflict(format!("removal of container {id} is already in progress")),
            (T::Remove, Paused) => conflict(format!(
                "cannot remove container \"/{name}\": container is paused and must be unpaused first"
            )),
            (T::Remove, s @ (Running | Restarting)) => conflict(format!(
                "cannot remove container \"/{name}\": container is {}: stop the container before removing or force remove",
                s.as_str()
            )),
            (T::RemoveFailed, Removing) => Ok(Dead),
            (T::RemoveFailed, s) => Ok(s),
        }
    }

    /// Refuses operations that need a running container (kill, resize, attach to a paused one…)
    /// with Docker's messages; `Ok` means the operation may go ahead.
    pub fn check(self, op: Operation, id: &str, name: &str) -> Result<(), EngineError> {
        use Operation as O;
        use Status::*;
        match (op, self) {
            (O::Kill, Running | Paused | Restarting) => Ok(()),
            (O::Kill, _) => Err(EngineError::Conflict(format!(
                "Cannot kill container: {name}: container {id} is not running"
            ))),
            (O::Stop, Running | Paused | Restarting) => Ok(()),
            (O::Stop, _) => Err(EngineError::NotModified("container already stopped".into())),
            (O::Resize | O::Exec, Running) => Ok(()),
            (O::Exec, Paused) => Err(EngineError::Conflict(format!(
                "Container {id} is paused, unpause the container before exec"
            ))),
            (O::Resize | O::Exec, _) => Err(EngineError::Conflict(format!("Container {id} is not running"))),
            (O::Attach, Paused) => Err(EngineError::Conflict(format!(
                "container {id} is paused, unpause the container before attach"
            ))),
            (O::Attach, Removing | Dead) => Err(EngineError::Conflict(format!("container {id} is being removed"))),
            (O::Attach, _) => Ok(()),
            (O::Top, Running | Paused) => Ok(()),
            (O::Top, Restarting) => Err(EngineError::Conflict(format!(
                "Container {id} is restarting, wait until the container is running"
            ))),
            (O::Top, _) => Err(EngineError::Conflict(format!("Container {id} is not running"))),
            (O::Update, Removing | Dead) => Err(EngineError::Conflict(format!(
                "Cannot update container {id}: container is marked for removal and cannot be \"update\""
            ))),
            (O::Update, _) => Ok(()),
        }
    }
}

/// A move of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The init process execs.
    Start,
    /// The process could not be started.
    StartFailed,
    /// The init process ended (or the shim went away).
    Exit,
    /// Frozen.
    Pause,
    /// Thawed.
    Unpause,
    /// The restart policy will start it again after a delay.
    Restarting,
    /// Removal begins (a running container must have been stopped first).
    Remove,
    /// Removal failed half-way.
    RemoveFailed,
}

/// Operations that do not change the status but need a particular one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Send a signal.
    Kill,
    /// Stop (signal, then SIGKILL).
    Stop,
    /// Resize the terminal.
    Resize,
    /// Start a process in the container.
    Exec,
    /// Attach to the container's stdio.
    Attach,
    /// List the container's processes (`docker top`).
    Top,
    /// Change its resources or restart policy (any state but removal).
    Update,
}

/// The mutable run state of a container.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    /// Lifecycle status.
    pub status: Status,
    /// Host PID of the init process while running, else 0.
    pub pid: i64,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// Error text of the last failed start.
    pub error: String,
    /// The last run was ended by the OOM killer.
    pub oom_killed: bool,
    /// RFC 3339 time of the last start (empty when never started).
    pub started_at: String,
    /// RFC 3339 time of the last exit (empty when never exited).
    pub finished_at: String,
    /// Set by `stop`/`kill` through the API so restart policies know it was deliberate.
    #[serde(default)]
    pub stopped_by_user: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;
    use Transition as T;

    const ALL: [Status; 7] = [Created, Running, Paused, Restarting, Removing, Exited, Dead];

    fn apply(s: Status, t: Transition) -> Result<Status, EngineError> {
        s.apply(t, "abc", "web")
    }

    #[test]
    fn every_transition_from_every_state() {
        // (transition, from, expected: Some(to) or None for a refusal)
        let table: &[(Transition, Status, Option<Status>)] = &[
            (T::Start, Created, Some(Running)),
            (T::Start, Exited, Some(Running)),
            (T::Start, Restarting, Some(Running)),
            (T::Start, Running, None),
            (T::Start, Paused, None),
            (T::Start, Removing, None),
            (T::Start, Dead, None),
            (T::StartFailed, Created, Some(Created)),
            (T::StartFailed, Exited, Some(Exited)),
            (T::StartFailed, Restarting, Some(Exited)),
            (T::Exit, Running, Some(Exited)),
            (T::Exit, Paused, Some(Exited)),
            (T::Exit, Restarting, Some(Exited)),
            (T::Exit, Exited, Some(Exited)),
            (T::Exit, Removing, Some(Removing)),
            (T::Pause, Running, Some(Paused)),
            (T::Pause, Paused, None),
            (T::Pause, Exited, None),
            (T::Pause, Created, None),
            (T::Unpause, Paused, Some(Running)),
            (T::Unpause, Running, None),
            (T::Unpause, Exited, None),
            (T::Restarting, Exited, Some(Restarting)),
            (T::Restarting, Running, None),
            (T::Remove, Created, Some(Removing)),
            (T::Remove, Exited, Some(Removing)),
            (T::Remove, Dead, Some(Removing)),
            (T::Remove, Running, None),
            (T::Remove, Paused, None),
            (T::Remove, Restarting, None),
            (T::Remove, Removing, None),
            (T::RemoveFailed, Removing, Some(Dead)),
        ];
        for (t, from, want) in table {
            let got = apply(*from, *t);
            match want {
                Some(to) => assert_eq!(got.as_ref().ok(), Some(to), "{t:?} from {from:?}: {got:?}"),
                None => assert!(got.is_err(), "{t:?} from {from:?} should be refused, got {got:?}"),
            }
        }
    }

    #[test]
    fn refusals_use_dockers_status_and_words() {
        use berth_types::{ErrorKind, HasErrorKind};
        let e = apply(Running, T::Start).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotModified);
        let e = apply(Paused, T::Start).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.to_string(), "cannot start a paused container, try unpause instead");
        let e = apply(Running, T::Remove).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot remove container \"/web\": container is running: stop the container before removing or force remove"
        );
        let e = apply(Removing, T::Start).unwrap_err();
        assert_eq!(
            e.to_string(),
            "container is marked for removal and cannot be started: abc"
        );
        let e = apply(Removing, T::Remove).unwrap_err();
        assert_eq!(e.to_string(), "removal of container abc is already in progress");
        // Every refusal of a transition is a 409, except a start of a running container (304).
        for s in ALL {
            for t in [T::Start, T::Pause, T::Unpause, T::Restarting, T::Remove] {
                if let Err(e) = apply(s, t) {
                    let want = if (s, t) == (Running, T::Start) {
                        ErrorKind::NotModified
                    } else {
                        ErrorKind::Conflict
                    };
                    assert_eq!(e.kind(), want, "{t:?} from {s:?}");
                }
            }
        }
    }

    #[test]
    fn operations_need_the_right_state() {
        use berth_types::{ErrorKind, HasErrorKind};
        for s in ALL {
            assert_eq!(s.check(Operation::Kill, "abc", "web").is_ok(), s.is_running(), "{s:?}");
            assert_eq!(s.check(Operation::Exec, "abc", "web").is_ok(), s == Running, "{s:?}");
        }
        let e = Exited.check(Operation::Stop, "abc", "web").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotModified);
        let e = Exited.check(Operation::Kill, "abc", "web").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Cannot kill container: web: container abc is not running"
        );
        assert!(Paused.check(Operation::Attach, "abc", "web").is_err());
        assert!(Created.check(Operation::Attach, "abc", "web").is_ok());
        let e = Paused.check(Operation::Exec, "abc", "web").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        for s in ALL {
            assert_eq!(
                s.check(Operation::Top, "abc", "web").is_ok(),
                matches!(s, Running | Paused),
                "{s:?}"
            );
        }
        let e = Exited.check(Operation::Top, "abc", "web").unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::Conflict, "Container abc is not running".into())
        );
        let e = Restarting.check(Operation::Top, "abc", "web").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Container abc is restarting, wait until the container is running"
        );
    }

    #[test]
    fn update_in_any_state_but_removal() {
        for s in ALL {
            assert_eq!(
                s.check(Operation::Update, "abc", "web").is_ok(),
                !matches!(s, Removing | Dead),
                "{s:?}"
            );
        }
    }

    #[test]
    fn pause_and_unpause_messages() {
        use berth_types::{ErrorKind, HasErrorKind};
        let e = apply(Exited, T::Pause).unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::Conflict, "Container abc is not running".into())
        );
        assert_eq!(
            apply(Paused, T::Pause).unwrap_err().to_string(),
            "Container abc is already paused"
        );
        assert_eq!(
            apply(Running, T::Unpause).unwrap_err().to_string(),
            "Container abc is not paused"
        );
        // A paused container that is killed ends like a running one.
        assert_eq!(apply(Paused, T::Exit).unwrap(), Exited);
    }
}
