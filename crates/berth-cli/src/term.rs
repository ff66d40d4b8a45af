//! The local terminal: raw mode while attached to a TTY container, its size for `/resize`.

use std::io::{BufRead, IsTerminal};
use std::os::fd::AsFd;

use nix::sys::termios::{self, SetArg, Termios};

/// Which standard stream a terminal setting belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Std {
    In,
    Out,
}

fn with_fd<T>(which: Std, f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> T) -> T {
    match which {
        Std::In => f(std::io::stdin().as_fd()),
        Std::Out => f(std::io::stdout().as_fd()),
    }
}

/// Whether the stream is a terminal.
pub fn is_tty(which: Std) -> bool {
    match which {
        Std::In => std::io::stdin().is_terminal(),
        Std::Out => std::io::stdout().is_terminal(),
    }
}

/// Restores the saved terminal settings when dropped.
pub struct RawGuard {
    which: Std,
    saved: Termios,
}

/// Puts the stream's terminal in raw mode; `None` if it is not a terminal.
pub fn make_raw(which: Std) -> Option<RawGuard> {
    if !is_tty(which) {
        return None;
    }
    let saved = with_fd(which, |fd| termios::tcgetattr(fd)).ok()?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    // Keep output post-processing off too: the container's pty already translates newlines.
    with_fd(which, |fd| termios::tcsetattr(fd, SetArg::TCSANOW, &raw)).ok()?;
    Some(RawGuard { which, saved })
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = with_fd(self.which, |fd| termios::tcsetattr(fd, SetArg::TCSANOW, &self.saved));
    }
}

/// `(height, width)` of the terminal on stdout (else stdin), if any.
pub fn size() -> Option<(u16, u16)> {
    size_of(std::io::stdout().as_fd()).or_else(|| size_of(std::io::stdin().as_fd()))
}

/// `(height, width)` of the terminal on `fd`, if it is one.
pub fn size_of(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u16, u16)> {
    let (terminal_size::Width(w), terminal_size::Height(h)) = terminal_size::terminal_size_of(fd)?;
    Some((h, w))
}

/// Asks `question [y/N]`, on stdout as the docker CLI's `PromptForConfirmation` does.
pub fn confirm(question: &str) -> bool {
    crate::write_out(&format!("{question}\nAre you sure you want to continue? [y/N] "));
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}
