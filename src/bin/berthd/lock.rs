//! One daemon per root: berthd holds an exclusive `flock(2)` on its data root and its exec root for
//! as long as it runs, and a second daemon on either refuses to start, naming the PID that holds it
//! (as dockerd does with its pid file). The kernel drops the locks when the process dies, so a crash
//! never leaves a stale lock behind.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The locks of a running daemon; dropped (released) when the daemon exits.
pub struct RootLocks {
    _held: Vec<Flock<File>>,
}

impl RootLocks {
    /// Locks `<data_root>/berthd.lock` (which records our PID) and the exec root directory.
    pub fn acquire(data_root: &Path, exec_root: &Path) -> Result<RootLocks> {
        let path = data_root.join("berthd.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut data = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut f, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = f.read_to_string(&mut pid);
                bail!(in_use("data root", data_root, pid.trim()));
            }
            Err((_, e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
        };
        data.set_len(0).context("truncating the lock file")?;
        data.rewind().context("rewinding the lock file")?;
        write!(data, "{}", std::process::id()).with_context(|| format!("writing {}", path.display()))?;
        let exec = lock_dir(exec_root)?;
        Ok(RootLocks {
            _held: vec![data, exec],
        })
    }

    /// Locks the exec root again after a tmpfs was mounted on it: a daemon that starts later opens
    /// the path and gets the tmpfs, whose root must be locked too.
    pub fn relock_exec_root(&mut self, exec_root: &Path) -> Result<()> {
        let l = lock_dir(exec_root)?;
        self._held.push(l);
        Ok(())
    }
}

fn in_use(what: &str, path: &Path, pid: &str) -> String {
    let who = if pid.is_empty() {
        "another berthd".to_string()
    } else {
        format!("another berthd (pid {pid})")
    };
    format!(
        "the {what} {} is in use by {who}: stop it first, or give this daemon its own --data-root and --exec-root",
        path.display()
    )
}

fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let f = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(l),
        Err((_, Errno::EWOULDBLOCK)) => {
            let pid = std::fs::read_to_string(dir.join("berthd.pid")).unwrap_or_default();
            bail!(in_use("exec root", dir, pid.trim()))
        }
        Err((_, e)) => Err(e).with_context(|| format!("locking {}", dir.display())),
    }
}
