//! Renders the JSON progress streams of pull, push, load and import as the docker CLI's
//! `jsonmessage.DisplayJSONMessagesStream` does. On a terminal, each layer id keeps one line that
//! is rewritten in place (ANSI erase-line and cursor up/down, exactly docker's sequences, so
//! output captured from both CLIs compares byte for byte); elsewhere, progress updates
//! (`Downloading` with byte counts) are dropped and only status changes print
//! (`<id>: Pull complete`). Messages without an id print as plain lines (`Digest: ...`).
//!
//! Hand-written rather than an indicatif `MultiProgress`: docker's format is a few escape
//! sequences, indicatif's bars look different and would tie the output to its redraw timer.

use std::collections::HashMap;
use std::io::Write;

use berth_client::stream::{JsonMessages, ProgressDetail, ProgressMessage};
use tokio::io::AsyncRead;

use crate::units;
use crate::StatusError;

/// Draws a progress stream on `out`.
pub struct Renderer<W: Write> {
    out: W,
    tty: bool,
    width: usize,
    /// Line of each layer id, counted from the first progress line of the current operation.
    ids: HashMap<String, usize>,
}

impl<W: Write> Renderer<W> {
    /// A renderer for a terminal `width` columns wide (`tty`), or for a pipe or file.
    pub fn new(out: W, tty: bool, width: usize) -> Self {
        Renderer {
            out,
            tty,
            width,
            ids: HashMap::new(),
        }
    }

    /// Draws one message; an error message is returned (nothing is drawn for it).
    pub fn message(&mut self, m: &ProgressMessage) -> Result<(), String> {
        // Aux messages (pushed digest, loaded image id) are for callers, not for display.
        if m.aux.is_some() {
            return Ok(());
        }
        let id = m.id.as_deref().filter(|i| !i.is_empty());
        let has_progress = m.progress_detail.is_some() || m.progress.as_deref().is_some_and(|p| !p.is_empty());
        let mut diff = 0;
        match id {
            Some(id) if has_progress => {
                let line = match self.ids.get(id) {
                    Some(l) => *l,
                    None => {
                        let l = self.ids.len();
                        self.ids.insert(id.to_string(), l);
                        if self.tty {
                            let _ = writeln!(self.out);
                        }
                        l
                    }
                };
                diff = self.ids.len() - line;
                if self.tty && diff > 0 {
                    let _ = write!(self.out, "\x1b[{diff}A");
                }
            }
            // Anything else ends the group of lines being updated (pull -a: the next tag's
            // layers start below).
            _ => self.ids.clear(),
        }
        self.display(m)?;
        if id.is_some() && self.tty && diff > 0 {
            let _ = write!(self.out, "\x1b[{diff}B");
        }
        let _ = self.out.flush();
        Ok(())
    }

    /// `JSONMessage.Display`.
    fn display(&mut self, m: &ProgressMessage) -> Result<(), String> {
        if let Some(e) = m.error_message() {
            return Err(e.to_string());
        }
        let status = m.status.as_deref().unwrap_or_default();
        let stream = m.stream.as_deref().unwrap_or_default();
        let mut endl = "";
        if self.tty && stream.is_empty() && m.progress_detail.is_some() {
            let _ = write!(self.out, "\x1b[2K\r");
            endl = "\r";
        } else if m.progress_detail.is_some_and(|d| !bar(&d, self.width).is_empty()) {
            // No progress bars off a terminal.
            return Ok(());
        }
        if let Some(id) = m.id.as_deref().filter(|i| !i.is_empty()) {
            let _ = write!(self.out, "{id}: ");
        }
        let progress = m.progress.as_deref().unwrap_or_default();
        let _ = match m.progress_detail {
            Some(d) if self.tty => write!(self.out, "{status} {}{endl}", bar(&d, self.width)),
            _ if !progress.is_empty() => write!(self.out, "{status} {progress}{endl}"),
            _ if !stream.is_empty() => write!(self.out, "{stream}{endl}"),
            _ => writeln!(self.out, "{status}{endl}"),
        };
        Ok(())
    }

    /// The writer, back.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `JSONProgress.String`: `[====>    ] 1.234MB/3.4MB` (the bar only on terminals wider than 110).
pub(crate) fn bar(d: &ProgressDetail, width: usize) -> String {
    let current = d.current.unwrap_or(0);
    let total = d.total.unwrap_or(0);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    let size = |n: i64| units::human_size_prec(n as f64, 4);
    if total <= 0 {
        return format!("{:>8}", size(current));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let mut s = String::new();
    if width > 110 {
        s = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    }
    if current > total {
        s.push_str(&format!("{:>8}", size(current)));
    } else {
        s.push_str(&format!("{:>8}/{}", size(current), size(total)));
    }
    s
}

/// Where [`display_stream`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Standard output (`pull`, `push`, `load`).
    Stdout,
    /// Standard error (the pull of `run`/`create`, which keep stdout for the container).
    Stderr,
    /// Nowhere (`-q`): errors still end the stream.
    Discard,
}

/// Renders a stream; an error message ends it with exit status 1 and the message. `on_message`
/// sees every message (aux data, the last status).
pub async fn display_stream<R: AsyncRead + Unpin>(
    reader: R,
    target: Target,
    mut on_message: impl FnMut(&ProgressMessage),
) -> Result<(), StatusError> {
    use std::io::IsTerminal;
    let (out, tty): (Box<dyn Write>, bool) = match target {
        Target::Stdout => (Box::new(std::io::stdout()), std::io::stdout().is_terminal()),
        Target::Stderr => (Box::new(std::io::stderr()), std::io::stderr().is_terminal()),
        Target::Discard => (Box::new(std::io::sink()), false),
    };
    let width = if tty {
        crate::term::size().map(|(_, w)| usize::from(w)).unwrap_or(200)
    } else {
        200
    };
    let mut r = Renderer::new(out, tty, width);
    let mut msgs = JsonMessages::<_, ProgressMessage>::of(reader);
    while let Some(m) = msgs.next().await.map_err(|e| StatusError::new(1, e.to_string()))? {
        on_message(&m);
        r.message(&m).map_err(|e| StatusError::new(1, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded `docker pull` stream (two layers, dockerd's messages).
    const PULL: &str = r#"{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaaa"}
{"status":"Pulling fs layer","progressDetail":{},"id":"bbbb"}
{"status":"Waiting","progressDetail":{},"id":"bbbb"}
{"status":"Downloading","progressDetail":{"current":1000,"total":3400000},"progress":"[>   ]  1kB/3.4MB","id":"aaaa"}
{"status":"Downloading","progressDetail":{"current":1234567,"total":3400000},"progress":"[=>  ]  1.2MB/3.4MB","id":"aaaa"}
{"status":"Verifying Checksum","progressDetail":{},"id":"aaaa"}
{"status":"Download complete","progressDetail":{},"id":"aaaa"}
{"status":"Extracting","progressDetail":{"current":32768,"total":3400000},"id":"aaaa"}
{"status":"Pull complete","progressDetail":{},"id":"aaaa"}
{"status":"Downloading","progressDetail":{"current":10,"total":20},"id":"bbbb"}
{"status":"Pull complete","progressDetail":{},"id":"bbbb"}
{"status":"Digest: sha256:abc"}
{"status":"Status: Downloaded newer image for busybox:latest"}
"#;

    fn render(stream: &str, tty: bool, width: usize) -> (String, Result<(), String>) {
        let mut r = Renderer::new(Vec::new(), tty, width);
        let mut res = Ok(());
        for line in stream.lines().filter(|l| !l.trim().is_empty()) {
            let m: ProgressMessage = serde_json::from_str(line).unwrap();
            res = r.message(&m);
            if res.is_err() {
                break;
            }
        }
        (String::from_utf8(r.into_inner()).unwrap(), res)
    }

    #[test]
    fn plain_output_shows_status_changes_only() {
        let (out, res) = render(PULL, false, 200);
        assert!(res.is_ok());
        assert_eq!(
            out,
            "latest: Pulling from library/busybox\n\
             aaaa: Pulling fs layer\n\
             bbbb: Pulling fs layer\n\
             bbbb: Waiting\n\
             aaaa: Verifying Checksum\n\
             aaaa: Download complete\n\
             aaaa: Pull complete\n\
             bbbb: Pull complete\n\
             Digest: sha256:abc\n\
             Status: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn push_stream_and_errors() {
        let push = r#"{"status":"The push refers to repository [localhost:5000/bb]"}
{"status":"Preparing","progressDetail":{},"id":"5b8c72934dfc"}
{"status":"Pushing","progressDetail":{"current":512,"total":2048},"id":"5b8c72934dfc"}
{"status":"Pushed","progressDetail":{},"id":"5b8c72934dfc"}
{"status":"latest: digest: sha256:d1 size: 527"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:d1","Size":527}}
{"status":"Preparing","progressDetail":{},"id":"ffff"}
{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied: requested access to the resource is denied"}
{"status":"never shown"}
"#;
        let (out, res) = render(push, false, 200);
        assert_eq!(
            out,
            "The push refers to repository [localhost:5000/bb]\n\
             5b8c72934dfc: Preparing\n\
             5b8c72934dfc: Pushed\n\
             latest: digest: sha256:d1 size: 527\n\
             ffff: Preparing\n"
        );
        assert_eq!(res, Err("denied: requested access to the resource is denied".into()));
        // load's `stream` messages print as they are.
        let (out, _) = render(r#"{"stream":"Loaded image: bb:latest\n"}"#, false, 200);
        assert_eq!(out, "Loaded image: bb:latest\n");
    }

    #[test]
    fn terminal_output_rewrites_each_layer_line() {
        let s = r#"{"status":"Pulling fs layer","progressDetail":{},"id":"aaaa"}
{"status":"Pulling fs layer","progressDetail":{},"id":"bbbb"}
{"status":"Downloading","progressDetail":{"current":1234567,"total":3400000},"id":"aaaa"}
{"status":"Digest: sha256:abc"}
"#;
        let (out, _) = render(s, true, 120);
        let bar = format!("[{}>{}]  1.235MB/3.4MB", "=".repeat(18), " ".repeat(32));
        assert_eq!(
            out,
            format!(
                "\n\x1b[1A\x1b[2K\raaaa: Pulling fs layer \r\x1b[1B\
                 \n\x1b[1A\x1b[2K\rbbbb: Pulling fs layer \r\x1b[1B\
                 \x1b[2A\x1b[2K\raaaa: Downloading {bar}\r\x1b[2B\
                 Digest: sha256:abc\n"
            )
        );
        // Narrow terminals get the numbers without the bar.
        let (out, _) = render(s, true, 80);
        assert!(out.contains("aaaa: Downloading  1.235MB/3.4MB\r"), "{out:?}");
    }

    #[test]
    fn bars() {
        let d = |c, t| ProgressDetail {
            current: Some(c),
            total: Some(t),
        };
        assert_eq!(bar(&d(0, 0), 200), "");
        assert_eq!(bar(&d(2048, 0), 80), " 2.048kB");
        assert_eq!(bar(&d(30, 20), 80), "     30B");
        assert_eq!(
            bar(&d(10, 20), 120),
            format!("[{}>{}]      10B/20B", "=".repeat(25), " ".repeat(25))
        );
    }
}
