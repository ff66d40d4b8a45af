//! Exits: reaping processes, answering waiters, and the end of the shim (exit.json, cleanup).

use crate::conn::ConnState;
use crate::protocol::ExitStatus;
use crate::serve::Shim;
use berth_runtime::sys;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

impl Shim {
    /// Reaps every exited child; records the exits of the init and of execs and answers waiters.
    pub(crate) fn reap(&mut self) {
        let mut buf = [0u8; 128];
        while matches!((&self.sigfd).read(&mut buf), Ok(n) if n > 0) {}
        while let Some(r) = sys::reap_any() {
            self.record_exit(r);
        }
    }

    fn record_exit(&mut self, r: sys::Reaped) {
        let (pid, code, signal) = match r {
            sys::Reaped::Exited(pid, code) => (pid, code, None),
            sys::Reaped::Signaled(pid, sig) => (pid, 128 + sig, Some(sig)),
        };
        // Orphans re-parented to us are not in the table.
        let Some(pi) = self.procs.iter().position(|p| p.pid == pid && p.running()) else {
            return;
        };
        let oom = pi == 0 && self.cgroup.as_ref().map(|c| c.oom_killed()).unwrap_or(false);
        let p = &mut self.procs[pi];
        p.exited = Some(ExitStatus {
            exit_code: code,
            signal,
            oom_killed: oom,
            finished_at: berth_types::time::now_rfc3339(),
            error: p.start_error.clone(),
        });
        p.pending = None;
        p.stdin = None;
        p.stdin_buf.clear();
        if pi == 0 {
            self.exited_at = Some(Instant::now());
        }
        // Waiters get their answer now; output streams close once drained.
        let target = p.exec_id.clone();
        if let Some(line) = p.exit_line() {
            for c in self
                .conns
                .iter_mut()
                .filter(|c| c.state == ConnState::Waiting && c.targets(target.as_deref()))
            {
                c.out.extend(line.iter());
                c.state = ConnState::Closing;
            }
        }
    }

    /// Execs still running once the init is gone (a container without its own pid namespace) are
    /// killed and reaped, so their waiters are answered and the cgroup can go.
    fn end_execs(&mut self) {
        let running: Vec<i32> = self
            .procs
            .iter()
            .skip(1)
            .filter(|p| p.running())
            .map(|p| p.pid)
            .collect();
        if running.is_empty() {
            return;
        }
        for pid in &running {
            let _ = sys::kill(*pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.procs.iter().skip(1).any(|p| p.running()) && Instant::now() < deadline {
            match sys::reap_any() {
                Some(r) => self.record_exit(r),
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// The container is gone and its output drained: record, answer, clean up.
    pub(crate) fn finish(&mut self) {
        self.end_execs();
        let mut status = self.procs[0].exited.clone().unwrap_or_default();
        if status.finished_at.is_empty() {
            status.finished_at = berth_types::time::now_rfc3339();
        }
        if !status.oom_killed {
            status.oom_killed = self.cgroup.as_ref().map(|c| c.oom_killed()).unwrap_or(false);
        }
        self.procs[0].exited = Some(status.clone());
        match serde_json::to_vec(&status) {
            Ok(data) => {
                if let Err(e) = berth_types::write_atomic(&self.bundle.join("exit.json"), &data) {
                    eprintln!("berth-shim: writing exit.json: {e}");
                }
            }
            Err(e) => eprintln!("berth-shim: encoding exit status: {e}"),
        }
        let ours = std::fs::symlink_metadata(&self.socket).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        if ours.is_some() && ours == self.socket_id {
            let _ = std::fs::remove_file(&self.socket);
        }
        let mut conns = std::mem::take(&mut self.conns);
        // Short answers (wait, replies) first, so a stalled attach client cannot delay them.
        conns.sort_by_key(|c| c.state == ConnState::Attached);
        for mut c in conns {
            if c.state == ConnState::Waiting {
                let line = self
                    .procs
                    .iter()
                    .find(|p| c.targets(p.exec_id.as_deref()))
                    .and_then(|p| p.exit_line())
                    .unwrap_or_default();
                c.out.extend(line.iter());
            }
            if c.state == ConnState::Request {
                continue;
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = sys::set_send_timeout(&c.stream, 1000);
            let (a, b) = c.out.as_slices();
            let _ = c.stream.write_all(a).and_then(|()| c.stream.write_all(b));
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(ext) = &self.external {
            ext.delete();
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.remove() {
                eprintln!("berth-shim: removing cgroup: {e}");
            }
        }
        // Remaining orphans (re-parented to us) are reaped before we go.
        while sys::reap_any().is_some() {}
    }
}
