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

mod args;
mod attach;
mod build;
mod build_session;
mod build_view;
mod clientconfig;
mod completion;
mod compose;
mod connect;
mod container;
mod context;
mod credentials;
mod df;
mod dispatch;
mod events;
mod filters;
mod format;
mod image;
mod man;
mod manifest;
mod network;
mod objects;
mod opts;
mod progress;
mod registry;
mod sortorder;
mod system;
mod term;
mod transfer;
mod units;
mod volume;

use std::fmt;
use std::io::Write;

use clap::Parser;

pub use args::Cli;

/// An error that decides the exit code; `message` (if any) is printed to stderr.
#[derive(Debug)]
pub struct StatusError {
    /// The process exit code.
    pub code: i32,
    /// What to print on stderr, if anything.
    pub message: Option<String>,
}

impl StatusError {
    /// An exit code with a message.
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

/// The command path as typed (`ps`, `container ls`), skipping global flags.
fn command_path(args: &[String]) -> String {
    let mut parts = Vec::new();
    let mut i = 1;
    while i < args.len() && parts.len() < 2 {
        let a = &args[i];
        if matches!(
            a.as_str(),
            "-H" | "--host"
                | "-l"
                | "--log-level"
                | "--config"
                | "-c"
                | "--context"
                | "--tlscacert"
                | "--tlscert"
                | "--tlskey"
        ) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        parts.push(a.clone());
        if !matches!(
            a.as_str(),
            "container" | "context" | "image" | "manifest" | "network" | "system" | "volume"
        ) {
            break;
        }
        i += 1;
    }
    parts.join(" ")
}

/// Docker's wording and exit codes for command-line mistakes: unknown flags and bad values exit
/// 125, wrong argument counts and unknown commands exit 1. `None` keeps clap's own text.
fn usage_error(e: &clap::Error, args: &[String]) -> (i32, Option<String>) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let p = prog();
    let path = command_path(args);
    let hint = format!("Run '{p} {path} --help' for more information");
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            (0, None)
        }
        ErrorKind::UnknownArgument if invalid.starts_with("--") => {
            let flag = invalid.split('=').next().unwrap_or(&invalid);
            (125, Some(format!("unknown flag: {flag}\n\n{hint}")))
        }
        ErrorKind::UnknownArgument if invalid.starts_with('-') && invalid.len() > 1 => {
            let c = invalid.chars().nth(1).unwrap_or('-');
            (
                125,
                Some(format!("unknown shorthand flag: '{c}' in {invalid}\n\n{hint}")),
            )
        }
        // `volume create [VOLUME]` takes one optional argument (cobra's `RequiresMaxArgs(1)`).
        ErrorKind::UnknownArgument if path == "volume create" => (
            1,
            Some(format!("{p}: '{p} {path}' requires at most 1 argument\n\n{hint}")),
        ),
        ErrorKind::UnknownArgument => (1, Some(format!("{p}: '{p} {path}' accepts no arguments\n\n{hint}"))),
        ErrorKind::MissingRequiredArgument | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => (
            1,
            Some(format!("{p}: '{p} {path}' requires at least 1 argument\n\n{hint}")),
        ),
        ErrorKind::InvalidSubcommand => (
            1,
            Some(format!(
                "{p}: unknown command: {p} {}\n\nRun '{p} --help' for more information",
                path
            )),
        ),
        ErrorKind::MissingSubcommand => (1, None),
        _ => (125, None),
    }
}

/// Entry point of the `berth` binary.
pub fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `COMPLETE=bash berth -- berth start w`: the completion scripts asking for candidates.
    completion::complete_from_env(&args);
    let code = run(args);
    // Exit without waiting for the stdin reader thread or background tasks.
    std::process::exit(code);
}

/// Parses `args` (program name first), runs the command, and returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            let (code, msg) = usage_error(&e, &words);
            match msg {
                Some(m) => eprintln!("{m}"),
                None => {
                    let _ = e.print();
                }
            }
            return code;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(dispatch::dispatch(cli));
    let _ = std::io::stdout().flush();
    // Background tasks (stdin copy, signal forwarding) must not hold the exit up.
    rt.shutdown_background();
    match result {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_paths() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command_path(&a(&["berth", "-H", "unix:///x", "ps", "-a"])), "ps");
        assert_eq!(command_path(&a(&["berth", "container", "ls", "x"])), "container ls");
        assert_eq!(command_path(&a(&["berth", "--debug", "image", "rm"])), "image rm");
        assert_eq!(command_path(&a(&["berth"])), "");
        assert_eq!(
            command_path(&a(&["berth", "network", "create", "-d", "x"])),
            "network create"
        );
    }
}
