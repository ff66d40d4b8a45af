//! The berth command-line interface: Docker's verbs, flags, output and exit codes, speaking only
//! the Engine API (through `berth-client`) to `berthd`.

/// `println!` that ignores a closed stdout instead of panicking.
macro_rules! outln {
    () => {
        $crate::write_out("\n")
    };
    ($($t:tt)*) => {
        $crate::write_out(&format!("{}\n", format_args!($($t)*)))
    };
}

mod attach;
mod cli;
mod connect;
mod container;
mod format;
mod image;
mod opts;
mod system;
mod term;
mod units;

use std::fmt;
use std::io::Write;

use clap::Parser;

pub use cli::Cli;

/// An error that decides the exit code; `message` (if any) is printed to stderr.
#[derive(Debug)]
pub struct StatusError {
    pub code: i32,
    pub message: Option<String>,
}

impl StatusError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        StatusError {
            code,
            message: Some(message.into()),
        }
    }

    /// An exit code with nothing more to say (the error was already printed).
    pub fn silent(code: i32) -> Self {
        StatusError { code, message: None }
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for StatusError {}

/// The program name as invoked (`berth`, or `docker` through a symlink), for messages.
pub(crate) fn prog() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "berth".into())
}

/// Writes command output to stdout; a closed pipe (`berth ps | head -1`) is not an error.
pub(crate) fn write_out(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// Entry point of the `berth` binary.
pub fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(cli::dispatch(cli));
    let _ = std::io::stdout().flush();
    let code = match result {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<StatusError>() {
            Some(s) => {
                if let Some(m) = &s.message {
                    eprintln!("{m}");
                }
                s.code
            }
            None => {
                eprintln!("{e}");
                1
            }
        },
    };
    // Exit without waiting for the stdin reader thread or background tasks.
    std::process::exit(code);
}
