//! The shim's command line: `--bundle <dir> --socket <path>`.

use crate::ShimError;
use std::path::PathBuf;

/// Command line: `--bundle <dir> --socket <path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The bundle directory (`config.json`, `shim.json`, `exit.json`).
    pub bundle: PathBuf,
    /// The control socket to listen on.
    pub socket: PathBuf,
}

/// Parses the shim's arguments (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, ShimError> {
    let mut bundle = None;
    let mut socket = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| ShimError::Usage(format!("{key} needs a value")))
        };
        match key.as_str() {
            "--bundle" => bundle = Some(PathBuf::from(value()?)),
            "--socket" => socket = Some(PathBuf::from(value()?)),
            other => return Err(ShimError::Usage(format!("unknown argument {other}"))),
        }
    }
    Ok(Args {
        bundle: bundle.ok_or_else(|| ShimError::Usage("--bundle is required".into()))?,
        socket: socket.ok_or_else(|| ShimError::Usage("--socket is required".into()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let a = parse_args(["--bundle", "/b", "--socket=/s.sock"].map(String::from)).unwrap();
        assert_eq!(
            a,
            Args {
                bundle: "/b".into(),
                socket: "/s.sock".into()
            }
        );
        assert!(parse_args(["--bundle", "/b"].map(String::from)).is_err());
        assert!(parse_args(["--what"].map(String::from)).is_err());
    }
}
