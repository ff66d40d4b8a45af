//! One json-file log entry: `{"log":"..","stream":"stdout","time":"RFC3339Nano"}`.

use serde::{Deserialize, Serialize};
use std::io;

/// The stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The container's stdout (and all TTY output).
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl Stream {
    /// Docker's name (`stdout`, `stderr`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The stream number of Docker's multiplexed framing (1 stdout, 2 stderr).
    pub fn fd(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

/// One line of the log, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEntry {
    /// The output, with its `\n` unless it was a partial line.
    pub log: String,
    /// Where it came from.
    pub stream: Stream,
    /// When the shim read it (RFC 3339 with nanoseconds).
    pub time: String,
}

/// The shape written: borrowed, so the writer allocates nothing per entry.
#[derive(Serialize)]
struct RawEntry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

impl LogEntry {
    /// Decodes one line (without its `\n`); `None` for anything that is not an entry.
    pub fn parse(line: &[u8]) -> Option<LogEntry> {
        serde_json::from_slice(line).ok()
    }

    /// `time` as fractional Unix seconds (what `since`/`until` compare against); `None` if unparsable.
    pub fn unix_time(&self) -> Option<f64> {
        berth_types::time::parse_rfc3339(&self.time)
            .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
    }

    /// The bytes a client is sent: the output, prefixed with `time ` when timestamps are asked for.
    pub fn into_output(self, timestamps: bool) -> Vec<u8> {
        if timestamps {
            format!("{} {}", self.time, self.log).into_bytes()
        } else {
            self.log.into_bytes()
        }
    }

    /// Appends this entry as one log line (with `\n`) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> io::Result<()> {
        encode(out, &self.log, self.stream.as_str(), &self.time)
    }
}

/// Appends `{"log":..,"stream":..,"time":..}\n` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, log: &str, stream: &str, time: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &RawEntry { log, stream, time })?;
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_is_dockers_format() {
        let e = LogEntry {
            log: "a \"q\"\n".into(),
            stream: Stream::Stderr,
            time: "2024-01-02T03:04:05.123456789Z".into(),
        };
        let mut out = Vec::new();
        e.encode(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"log\":\"a \\\"q\\\"\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-02T03:04:05.123456789Z\"}\n"
        );
        assert_eq!(LogEntry::parse(&out[..out.len() - 1]), Some(e));
    }

    #[test]
    fn parse_rejects_what_is_not_an_entry() {
        for bad in [
            &b""[..],
            b"garbage",
            b"{\"log\":\"x\"}",
            b"{\"log\":\"x\",\"stream\":\"stdin\",\"time\":\"t\"}",
            b"{\"log\":\"x\",\"stream\":\"stdout\",\"ti",
        ] {
            assert_eq!(LogEntry::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn unix_time_and_output() {
        let e = LogEntry {
            log: "hi\n".into(),
            stream: Stream::Stdout,
            time: "1970-01-01T00:00:10.5Z".into(),
        };
        assert_eq!(e.unix_time(), Some(10.5));
        assert_eq!(e.clone().into_output(false), b"hi\n");
        assert_eq!(e.into_output(true), b"1970-01-01T00:00:10.5Z hi\n");
        assert_eq!(Stream::Stdout.fd(), 1);
        assert_eq!(Stream::Stderr.fd(), 2);
    }
}
