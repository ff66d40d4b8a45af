//! `berth-init`: the init process for `--init` (bind-mounted at `/sbin/docker-init`). It runs the
//! command as its child, forwards the signals it receives to it, reaps every zombie re-parented to
//! it, and exits with the child's status, like Docker's tini.
//! Usage: `berth-init -- command args...`

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};
use std::ffi::CString;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).skip_while(|a| a != "--").skip(1).collect();
    let args = if args.is_empty() { std::env::args().skip(1).filter(|a| a != "--").collect() } else { args };
    if args.is_empty() {
        eprintln!("berth-init: usage: berth-init -- command [args...]");
        std::process::exit(125);
    }
    let cargs: Vec<CString> = match args.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("berth-init: an argument contains a NUL byte");
            std::process::exit(125);
        }
    };
    // Block every signal here; the child gets them unblocked and receives what we forward.
    let all = SigSet::all();
    let mut old = SigSet::empty();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)) {
        eprintln!("berth-init: blocking signals: {e}");
        std::process::exit(125);
    }
    let child = match fork_single_threaded() {
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            let err = execvp(&cargs[0], &cargs).err();
            let code = match err {
                Some(nix::errno::Errno::ENOENT) => 127,
                Some(nix::errno::Errno::EACCES) => 126,
                _ => 125,
            };
            eprintln!("berth-init: exec {}: {}", args[0], err.map(|e| e.desc()).unwrap_or("failed"));
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("berth-init: fork: {e}");
            std::process::exit(125);
        }
    };
    loop {
        match all.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap(child) {
                    std::process::exit(code);
                }
            }
            Ok(sig) => {
                let _ = kill(child, sig);
            }
            Err(_) => {}
        }
    }
}

/// `fork` wrapper: berth-init is single-threaded, which makes fork safe here.
fn fork_single_threaded() -> nix::Result<ForkResult> {
    // SAFETY: the process has a single thread (no runtime, no threads spawned), so the child may run
    // arbitrary code after fork.
    unsafe { fork() }
}

/// Reaps all exited children; returns the exit code once the main child has ended.
fn reap(main_child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main_child => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main_child => result = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
