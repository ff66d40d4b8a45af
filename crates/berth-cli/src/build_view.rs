//! The live view of `berth build --progress=tty`: the classic builder's JSON stream drawn as
//! BuildKit's `tty` progress looks. A header with the elapsed time and the steps done out of the
//! total, one row per `Step N/M` with its duration (`CACHED` for a cache hit, `ERROR` for the step
//! that failed), under the running step the last lines of its output, and at the end the image
//! written and the names given to it (BuildKit's `writing image` / `naming to`). The frame is
//! redrawn in place (cursor up, erase line) on each message, at most ten times a second.
//!
//! [`BuildView`] is a state machine over the stream's messages and a clock, knowing nothing of
//! terminals; [`Screen`] turns successive frames into escape sequences; [`display`] drives both
//! from the daemon's response.
//!
//! The classic builder's lines it reads (moby `builder/dockerfile`, berth-engine `build.rs`):
//! `Step N/M : INSTRUCTION` starts a step; ` ---> Running in ID` and `Removing intermediate
//! container ID` are housekeeping; ` ---> Using cache` marks a cache hit; ` ---> ID` (` ---> ` for
//! scratch) ends the step; `Successfully built ID` and `Successfully tagged NAME` end the build.
//! Any other text inside a step is the step's output; outside one, a note kept below the steps
//! (`[Warning] One or more build-args ...`). Pull progress (`status`/`id`) of a FROM shows as the
//! step's output, one line per layer.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use berth_client::stream::{JsonMessages, ProgressMessage};
use tokio::io::AsyncRead;

use crate::progress::Target;
use crate::StatusError;

/// Lines of output shown under the running step (BuildKit shows six).
const TAIL_LINES: usize = 6;
/// The shortest time between two frames.
const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// The width assumed when the output is not a terminal (`--progress=tty` into a pipe).
const DEFAULT_WIDTH: usize = 80;
/// Output without a newline longer than this is taken as a line (it is cut to the width anyway).
const MAX_PARTIAL: usize = 8192;

/// How a row of the frame is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The header and finished steps.
    Plain,
    /// The step running now.
    Running,
    /// The step that failed.
    Error,
    /// A line of a step's output.
    Log,
}

/// One line of a frame, already fitted to the width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub style: Style,
    pub text: String,
}

impl Row {
    /// The row with its colour (blue running, red error, dim output, as BuildKit's).
    fn paint(&self, color: bool) -> String {
        let code = match self.style {
            _ if !color => return self.text.clone(),
            Style::Plain => return self.text.clone(),
            Style::Running => "34",
            Style::Error => "31",
            Style::Log => "2",
        };
        format!("\x1b[{code}m{}\x1b[0m", self.text)
    }
}

/// The last lines of some output; a line with a key (a layer id being pulled) is replaced by the
/// next line with the same key.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<(Option<String>, String)>,
}

impl Tail {
    fn push(&mut self, key: Option<&str>, line: String) {
        if let Some(k) = key {
            if let Some(slot) = self.lines.iter_mut().find(|(lk, _)| lk.as_deref() == Some(k)) {
                slot.1 = line;
                return;
            }
        }
        self.lines.push_back((key.map(String::from), line));
        while self.lines.len() > TAIL_LINES {
            self.lines.pop_front();
        }
    }
}

/// One `Step N/M`.
#[derive(Debug)]
struct Step {
    /// `[N/M] INSTRUCTION`.
    label: String,
    started: Instant,
    ended: Option<Instant>,
    cached: bool,
    failed: bool,
    output: Tail,
}

/// What a build has shown so far, from its stream; [`BuildView::frame`] draws it.
#[derive(Debug)]
pub struct BuildView {
    start: Instant,
    steps: Vec<Step>,
    /// `M` of the last `Step N/M`.
    total: usize,
    /// Output of the running step not yet ended by a newline.
    partial: String,
    /// Pull progress while no step runs (`--cache-from` images), shown until a step starts.
    outside: Tail,
    /// Text outside the steps, kept below them.
    notes: Vec<String>,
    image: Option<String>,
    tags: Vec<String>,
    finished: Option<Instant>,
    failed: bool,
}

impl BuildView {
    /// A view of a build that started at `start`.
    pub fn new(start: Instant) -> Self {
        BuildView {
            start,
            steps: Vec::new(),
            total: 0,
            partial: String::new(),
            outside: Tail::default(),
            notes: Vec::new(),
            image: None,
            tags: Vec::new(),
            finished: None,
            failed: false,
        }
    }

    /// Takes in one message of the stream, received at `now`; an error message fails the build.
    pub fn message(&mut self, m: &ProgressMessage, now: Instant) {
        if m.error_message().is_some() {
            self.fail(now);
            return;
        }
        if let Some(id) = m.aux.as_ref().and_then(|v| v.get("ID")).and_then(|v| v.as_str()) {
            self.image = Some(id.to_string());
        }
        if let Some(text) = m.stream.as_deref().filter(|s| !s.is_empty()) {
            self.stream(text, now);
        }
        if let Some(status) = m.status.as_deref().filter(|s| !s.is_empty()) {
            let id = m.id.as_deref().filter(|i| !i.is_empty());
            let mut line = match id {
                Some(id) => format!("{id}: {status}"),
                None => status.to_string(),
            };
            if let Some(p) = m.progress.as_deref().filter(|p| !p.is_empty()) {
                line.push(' ');
                line.push_str(p);
            }
            let line = sanitize(&line);
            match self.running_mut() {
                Some(s) => s.output.push(id, line),
                None => self.outside.push(id, line),
            }
        }
    }

    /// The build failed at `now`: the running step is the one that failed.
    pub fn fail(&mut self, now: Instant) {
        self.flush_partial(now);
        if let Some(s) = self.running_mut() {
            s.failed = true;
            s.ended = Some(now);
        }
        self.failed = true;
        self.finished.get_or_insert(now);
    }

    /// The stream ended at `now` (without an error).
    pub fn finish(&mut self, now: Instant) {
        self.flush_partial(now);
        self.end_running(now);
        self.finished.get_or_insert(now);
    }

    /// Stream text: whole builder lines, or a chunk of a step's output.
    fn stream(&mut self, text: &str, now: Instant) {
        if let Some((n, m, instruction)) = parse_step(text) {
            self.flush_partial(now);
            self.end_running(now);
            self.steps.push(Step {
                label: format!("[{n}/{m}] {instruction}"),
                started: now,
                ended: None,
                cached: false,
                failed: false,
                output: Tail::default(),
            });
            self.total = m;
            self.outside = Tail::default();
            return;
        }
        // The builder's own lines come as messages of their own: output left without a newline
        // before them is a line of its own.
        if BUILDER_PREFIXES.iter().any(|p| text.starts_with(p)) {
            self.flush_partial(now);
        }
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(&line[..i], now);
        }
        if self.partial.len() > MAX_PARTIAL {
            self.flush_partial(now);
        }
    }

    /// One whole line of stream text.
    fn line(&mut self, line: &str, now: Instant) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == " ---> Using cache" {
            if let Some(s) = self.running_mut() {
                s.cached = true;
            }
            return;
        }
        if line.starts_with(" ---> Running in ") || line.starts_with("Removing intermediate container ") {
            return;
        }
        if let Some(id) = line.strip_prefix(" --->") {
            if id.trim().chars().all(|c| c.is_ascii_hexdigit()) {
                self.end_running(now);
                return;
            }
        }
        if let Some(id) = line.strip_prefix("Successfully built ") {
            self.image.get_or_insert_with(|| id.trim().to_string());
            return;
        }
        if let Some(name) = line.strip_prefix("Successfully tagged ") {
            self.tags.push(name.trim().to_string());
            return;
        }
        let text = sanitize(line);
        match self.running_mut() {
            Some(s) => s.output.push(None, text),
            None if !text.trim().is_empty() => self.notes.push(text),
            None => {}
        }
    }

    fn flush_partial(&mut self, now: Instant) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest, now);
        }
    }

    fn running_mut(&mut self) -> Option<&mut Step> {
        self.steps.last_mut().filter(|s| s.ended.is_none())
    }

    fn end_running(&mut self, now: Instant) {
        if let Some(s) = self.running_mut() {
            s.ended = Some(now);
        }
    }

    /// The frame at `now`, each row at most `width` columns; with a `height`, at most that many
    /// rows less one (the oldest steps give way: a frame taller than the screen cannot be redrawn).
    pub fn frame(&self, now: Instant, width: usize, height: Option<usize>) -> Vec<Row> {
        let end = self.finished.unwrap_or(now);
        let done = self.steps.iter().filter(|s| s.ended.is_some() && !s.failed).count();
        let finished = if self.finished.is_some() && !self.failed {
            " FINISHED"
        } else {
            ""
        };
        let mut rows = vec![Row {
            style: Style::Plain,
            text: truncate(
                &format!(
                    "[+] Building {:.1}s ({done}/{}){finished}",
                    secs(end.saturating_duration_since(self.start)),
                    self.total
                ),
                width,
            ),
        }];
        let log = |rows: &mut Vec<Row>, line: &str| {
            rows.push(Row {
                style: Style::Log,
                text: truncate(&format!(" => => # {line}"), width),
            });
        };
        for s in &self.steps {
            let (style, word) = match s {
                Step { failed: true, .. } => (Style::Error, "ERROR "),
                Step { cached: true, .. } => (Style::Plain, "CACHED "),
                Step { ended: None, .. } => (Style::Running, ""),
                _ => (Style::Plain, ""),
            };
            let took = s.ended.unwrap_or(end).saturating_duration_since(s.started);
            rows.push(Row {
                style,
                text: fit(&format!(" => {word}{}", s.label), &format!("{:.1}s", secs(took)), width),
            });
            if s.ended.is_none() || s.failed {
                for (_, line) in &s.output.lines {
                    log(&mut rows, line);
                }
                if s.ended.is_none() && !self.partial.is_empty() {
                    log(&mut rows, &sanitize(&self.partial));
                }
            }
        }
        if self.finished.is_none() && self.steps.last().is_none_or(|s| s.ended.is_some()) {
            for (_, line) in &self.outside.lines {
                log(&mut rows, line);
            }
        }
        let plain = |text: String| Row {
            style: Style::Plain,
            text: truncate(&text, width),
        };
        if let Some(id) = &self.image {
            rows.push(plain(format!(" => writing image {id}")));
        }
        rows.extend(self.tags.iter().map(|t| plain(format!(" => naming to {t}"))));
        rows.extend(self.notes.iter().map(|n| plain(n.clone())));
        if let Some(h) = height {
            let keep = h.saturating_sub(1).max(2);
            if rows.len() > keep {
                rows.drain(1..rows.len() - (keep - 1));
            }
        }
        rows
    }
}

/// Starts of the builder's own lines (besides `Step`).
const BUILDER_PREFIXES: [&str; 4] = [
    " ---> ",
    "Removing intermediate container ",
    "Successfully built ",
    "Successfully tagged ",
];

/// `Step N/M : INSTRUCTION` as `(N, M, INSTRUCTION)`, the instruction on one line.
fn parse_step(text: &str) -> Option<(usize, usize, String)> {
    let (nm, instruction) = text.strip_prefix("Step ")?.split_once(" : ")?;
    let (n, m) = nm.split_once('/')?;
    let (n, m) = (n.parse().ok()?, m.parse().ok()?);
    Some((n, m, instruction.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// A line of output as it would look on a terminal, made safe to draw in a frame: what a carriage
/// return overwrote is gone, escape sequences and control characters are dropped, tabs expanded.
fn sanitize(line: &str) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    let line = line.rsplit('\r').next().unwrap_or(line);
    let mut out = String::with_capacity(line.len());
    let mut cols = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => {
                let n = 8 - cols % 8;
                out.extend(std::iter::repeat_n(' ', n));
                cols += n;
            }
            c if c.is_control() => {}
            c => {
                out.push(c);
                cols += 1;
            }
        }
    }
    out
}

/// `s` cut to `width` characters.
fn truncate(s: &str, width: usize) -> String {
    s.chars().take(width).collect()
}

/// `left` and `right` on one row `width` wide, `right` against the right edge (BuildKit's rows);
/// `left` is cut to make room.
fn fit(left: &str, right: &str, width: usize) -> String {
    let rw = right.chars().count();
    if width < rw + 2 {
        return truncate(left, width);
    }
    let left = truncate(left, width - rw - 1);
    let pad = width - left.chars().count() - rw;
    format!("{left}{}{right}", " ".repeat(pad))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Replaces the frame last drawn with the next one.
#[derive(Debug, Default)]
pub struct Screen {
    /// Rows of the frame on screen, above the cursor.
    lines: usize,
}

impl Screen {
    /// The bytes that move up over the last frame and draw `rows` in its place (cursor up, then
    /// each row on an erased line, then the rest of the screen erased).
    pub fn redraw(&mut self, rows: &[String]) -> String {
        let mut s = String::new();
        if self.lines > 0 {
            s.push_str(&format!("\x1b[{}A", self.lines));
        }
        for r in rows {
            s.push_str("\r\x1b[2K");
            s.push_str(r);
            s.push('\n');
        }
        if self.lines > rows.len() {
            s.push_str("\x1b[J");
        }
        self.lines = rows.len();
        s
    }
}

/// Draws a build's stream as a live view on `target` until it ends; an error message ends it
/// with exit status 1 and the message (printed by the caller, as with `--progress=plain`), after
/// a last frame showing the step that failed. `on_message` sees every message.
pub async fn display<R: AsyncRead + Unpin>(
    reader: R,
    target: Target,
    mut on_message: impl FnMut(&ProgressMessage),
) -> Result<(), StatusError> {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut view = BuildView::new(Instant::now());
    let mut screen = Screen::default();
    let draw = |view: &BuildView, screen: &mut Screen, live: bool| {
        let (height, width) = size(target);
        let rows: Vec<String> = view
            .frame(Instant::now(), width, height.filter(|_| live))
            .iter()
            .map(|r| r.paint(color))
            .collect();
        write(target, screen.redraw(&rows).as_bytes());
    };
    let mut msgs = JsonMessages::<_, ProgressMessage>::of(reader);
    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_draw: Option<Instant> = None;
    let result = loop {
        // `next` keeps what it has read in `msgs` across an interrupted call: the tick can win.
        let (now, min_gap) = tokio::select! {
            m = msgs.next() => {
                let now = Instant::now();
                match m {
                    Ok(Some(m)) => {
                        on_message(&m);
                        view.message(&m, now);
                        if let Some(e) = m.error_message() {
                            break Err(StatusError::new(1, e));
                        }
                    }
                    Ok(None) => {
                        view.finish(now);
                        break Ok(());
                    }
                    Err(e) => {
                        view.fail(now);
                        break Err(StatusError::new(1, e.to_string()));
                    }
                }
                (now, FRAME_INTERVAL)
            }
            // The clock moves on: a frame when the last is (about) an interval old.
            _ = tick.tick() => (Instant::now(), FRAME_INTERVAL * 9 / 10),
        };
        if last_draw.is_none_or(|t| now.saturating_duration_since(t) >= min_gap) {
            draw(&view, &mut screen, true);
            last_draw = Some(now);
        }
    };
    // The final frame, whole, stays on screen.
    draw(&view, &mut screen, false);
    result
}

/// `(height, width)` of the terminal `target` draws on; the width is 80 off a terminal.
fn size(target: Target) -> (Option<usize>, usize) {
    let s = match target {
        Target::Stdout => crate::term::size(),
        Target::Stderr => crate::term::size_of(std::io::stderr().as_fd()).or_else(crate::term::size),
        Target::Discard => None,
    };
    match s {
        Some((h, w)) if w > 0 => (Some(usize::from(h)).filter(|h| *h > 0), usize::from(w)),
        _ => (None, DEFAULT_WIDTH),
    }
}

/// Writes one frame's bytes at once (a closed stream is not an error: the build goes on).
fn write(target: Target, bytes: &[u8]) {
    let _ = match target {
        Target::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Target::Stderr => {
            let mut out = std::io::stderr().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Target::Discard => Ok(()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(s: &str) -> ProgressMessage {
        ProgressMessage {
            stream: Some(s.to_string()),
            ..Default::default()
        }
    }

    /// Feeds `(milliseconds after the start, message)` pairs.
    fn feed(view: &mut BuildView, t0: Instant, msgs: &[(u64, &str)]) {
        for (ms, s) in msgs {
            view.message(&stream(s), t0 + Duration::from_millis(*ms));
        }
    }

    fn text(view: &BuildView, now: Instant, width: usize) -> Vec<String> {
        view.frame(now, width, None).into_iter().map(|r| r.text).collect()
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// The stream of a three-step build as berthd sends it.
    const BUILD: [(u64, &str); 12] = [
        (0, "Step 1/3 : FROM bb\n"),
        (100, " ---> 1a2b3c4d5e6f\n"),
        (100, "Step 2/3 : RUN echo hi\n"),
        (200, " ---> Running in 0123456789ab\n"),
        (300, "hi\n"),
        (900, "Removing intermediate container 0123456789ab\n"),
        (1000, " ---> 2b3c4d5e6f70\n"),
        (1000, "Step 3/3 : COPY f /f\n"),
        (1300, " ---> 3c4d5e6f7081\n"),
        (1300, "Successfully built 3c4d5e6f7081\n"),
        (1300, "Successfully tagged demo:latest\n"),
        (1300, "[Warning] One or more build-args [FOO] were not consumed\n"),
    ];

    #[test]
    fn steps_come_from_step_lines_with_done_and_total() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        assert_eq!(text(&v, at(t0, 50), 60), ["[+] Building 0.1s (0/0)"]);
        feed(&mut v, t0, &BUILD[..5]);
        assert_eq!(
            text(&v, at(t0, 400), 60),
            [
                "[+] Building 0.4s (1/3)",
                " => [1/3] FROM bb                                       0.1s",
                " => [2/3] RUN echo hi                                   0.3s",
                " => => # hi",
            ]
        );
        feed(&mut v, t0, &BUILD[5..]);
        v.message(
            &ProgressMessage {
                aux: Some(serde_json::json!({"ID": "sha256:3c4d5e6f7081aa"})),
                ..Default::default()
            },
            at(t0, 1300),
        );
        v.finish(at(t0, 1400));
        // The finished frame does not age.
        assert_eq!(
            text(&v, at(t0, 9000), 60),
            [
                "[+] Building 1.4s (3/3) FINISHED",
                " => [1/3] FROM bb                                       0.1s",
                " => [2/3] RUN echo hi                                   0.9s",
                " => [3/3] COPY f /f                                     0.3s",
                " => writing image sha256:3c4d5e6f7081aa",
                " => naming to demo:latest",
                "[Warning] One or more build-args [FOO] were not consumed",
            ]
        );
    }

    #[test]
    fn cache_hits_are_cached_and_styles_follow_the_state() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        feed(
            &mut v,
            t0,
            &[
                (0, "Step 1/3 : FROM bb\n"),
                (0, " ---> 1a2b3c4d5e6f\n"),
                (0, "Step 2/3 : RUN echo hi\n"),
                (10, " ---> Using cache\n"),
                (20, " ---> 2b3c4d5e6f70\n"),
                (20, "Step 3/3 : RUN sleep 1\n"),
            ],
        );
        let rows = v.frame(at(t0, 520), 50, None);
        assert_eq!(rows[0].text, "[+] Building 0.5s (2/3)");
        assert_eq!(rows[2].text, format!("{:<46}0.0s", " => CACHED [2/3] RUN echo hi"));
        assert_eq!(rows[2].style, Style::Plain);
        assert_eq!(rows[3].text, format!("{:<46}0.5s", " => [3/3] RUN sleep 1"));
        assert_eq!(rows[3].style, Style::Running);
        assert_eq!(rows[3].paint(true), format!("\x1b[34m{}\x1b[0m", rows[3].text));
        assert_eq!(rows[3].paint(false), rows[3].text);
    }

    #[test]
    fn durations_run_until_the_step_ends() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        feed(&mut v, t0, &[(1000, "Step 1/2 : FROM bb\n")]);
        assert!(text(&v, at(t0, 3500), 40)[1].ends_with(" 2.5s"));
        assert!(text(&v, at(t0, 64_000), 40)[1].ends_with(" 63.0s"));
        feed(&mut v, t0, &[(4000, " ---> 1a2b3c4d5e6f\n")]);
        assert!(text(&v, at(t0, 64_000), 40)[1].ends_with(" 3.0s"));
        // A step with no ` ---> ` of its own (a global ARG) ends when the next one starts.
        feed(
            &mut v,
            t0,
            &[(4000, "Step 2/2 : ARG X\n"), (4200, "Step 1/1 : FROM bb\n")],
        );
        assert!(text(&v, at(t0, 9000), 40)[2].ends_with(" 0.2s"));
    }

    #[test]
    fn the_running_step_shows_the_tail_of_its_output() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        feed(
            &mut v,
            t0,
            &[(0, "Step 1/2 : RUN make\n"), (0, " ---> Running in abc\n")],
        );
        for i in 1..=10 {
            feed(&mut v, t0, &[(i, &format!("line {i}\n"))]);
        }
        // Output in chunks: a partial line shows, a carriage return overwrites, escapes go.
        feed(
            &mut v,
            t0,
            &[(20, "progress 10%\rprogress 50%"), (20, "\x1b[1mbold\x1b[0m\tx\n")],
        );
        let rows = text(&v, at(t0, 100), 40);
        assert_eq!(
            rows[2..],
            [
                " => => # line 6",
                " => => # line 7",
                " => => # line 8",
                " => => # line 9",
                " => => # line 10",
                " => => # progress 50%bold        x",
            ]
        );
        assert!(v.frame(at(t0, 100), 40, None)[2..]
            .iter()
            .all(|r| r.style == Style::Log));
        // Once done, the step folds.
        feed(&mut v, t0, &[(200, " ---> 1a2b3c4d5e6f\n")]);
        assert_eq!(text(&v, at(t0, 300), 40).len(), 2);
    }

    #[test]
    fn output_left_without_a_newline_is_flushed_before_builder_lines() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        feed(
            &mut v,
            t0,
            &[
                (0, "Step 1/1 : RUN printf no-newline\n"),
                (0, "no-newline"),
                (0, "Removing intermediate container abc\n"),
            ],
        );
        assert_eq!(text(&v, at(t0, 0), 40)[2..], [" => => # no-newline"]);
        // Endless output without a newline is not kept whole.
        for _ in 0..100 {
            feed(&mut v, t0, &[(0, &"z".repeat(1000))]);
        }
        assert!(v.partial.len() <= MAX_PARTIAL);
        assert!(v.steps[0].output.lines.iter().skip(1).all(|(_, l)| l.len() == 9000));
        assert_eq!(text(&v, at(t0, 0), 40).len(), 2 + TAIL_LINES + 1);
        feed(&mut v, t0, &[(0, " ---> 1a2b3c4d5e6f\n")]);
        v.finish(at(t0, 0));
        assert_eq!(text(&v, at(t0, 0), 40)[0], "[+] Building 0.0s (1/1) FINISHED");
    }

    #[test]
    fn pull_progress_shows_as_the_from_steps_output_one_line_per_layer() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        feed(&mut v, t0, &[(0, "Step 1/2 : FROM busybox\n")]);
        for (status, progress, id) in [
            ("Pulling from library/busybox", "", "latest"),
            ("Pulling fs layer", "", "aaaa"),
            ("Downloading", "[=>   ] 1MB/3MB", "aaaa"),
            ("Downloading", "[===> ] 2MB/3MB", "aaaa"),
            ("Digest: sha256:abc", "", ""),
        ] {
            let m = ProgressMessage {
                status: Some(status.into()),
                progress: Some(progress.into()),
                id: Some(id.into()),
                ..Default::default()
            };
            v.message(&m, t0);
        }
        assert_eq!(
            text(&v, t0, 60)[2..],
            [
                " => => # latest: Pulling from library/busybox",
                " => => # aaaa: Downloading [===> ] 2MB/3MB",
                " => => # Digest: sha256:abc",
            ]
        );
    }

    #[test]
    fn a_failure_marks_the_running_step_and_keeps_its_output() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        feed(
            &mut v,
            t0,
            &[
                (0, "Step 1/3 : FROM bb\n"),
                (0, " ---> 1a2b3c4d5e6f\n"),
                (0, "Step 2/3 : RUN false\n"),
                (0, " ---> Running in abc\n"),
                (100, "oops\n"),
            ],
        );
        let err = ProgressMessage {
            error: Some("The command '/bin/sh -c false' returned a non-zero code: 1".into()),
            ..Default::default()
        };
        v.message(&err, at(t0, 800));
        let rows = v.frame(at(t0, 5000), 50, None);
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "[+] Building 0.8s (1/3)",
                " => [1/3] FROM bb                             0.0s",
                " => ERROR [2/3] RUN false                     0.8s",
                " => => # oops",
            ]
        );
        assert_eq!(rows[2].style, Style::Error);
    }

    #[test]
    fn rows_are_cut_to_the_width() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        let long = format!("Step 1/1 : RUN echo {}\n", "x".repeat(200));
        feed(&mut v, t0, &[(0, &long), (0, &format!("{}\n", "y".repeat(200)))]);
        for width in [5, 12, 30, 80] {
            let rows = text(&v, at(t0, 1200), width);
            assert!(rows.iter().all(|r| r.chars().count() <= width), "{width}: {rows:?}");
            if width > 10 {
                // The duration stays, the instruction gives way.
                assert_eq!(rows[1].chars().count(), width);
                assert!(rows[1].ends_with(" 1.2s"), "{rows:?}");
            }
        }
        assert_eq!(text(&v, at(t0, 1200), 12)[1], " => [1/ 1.2s");
    }

    #[test]
    fn a_frame_taller_than_the_screen_keeps_the_header_and_the_newest_rows() {
        let t0 = Instant::now();
        let mut v = BuildView::new(t0);
        for n in 1..=9 {
            feed(&mut v, t0, &[(0, &format!("Step {n}/9 : RUN {n}\n"))]);
        }
        feed(&mut v, t0, &[(0, "out\n")]);
        let rows: Vec<String> = v.frame(t0, 40, Some(5)).into_iter().map(|r| r.text).collect();
        assert_eq!(rows.len(), 4);
        assert!(rows[0].starts_with("[+] Building"));
        assert!(rows[1].starts_with(" => [8/9] RUN 8"));
        assert!(rows[2].starts_with(" => [9/9] RUN 9"));
        assert_eq!(rows[3], " => => # out");
        assert_eq!(v.frame(t0, 40, None).len(), 11);
    }

    #[test]
    fn the_screen_redraws_over_the_last_frame() {
        let mut s = Screen::default();
        let frame = |rows: &[&str]| rows.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        assert_eq!(s.redraw(&frame(&["a", "b"])), "\r\x1b[2Ka\n\r\x1b[2Kb\n");
        assert_eq!(
            s.redraw(&frame(&["a", "b", "c"])),
            "\x1b[2A\r\x1b[2Ka\n\r\x1b[2Kb\n\r\x1b[2Kc\n"
        );
        // A shorter frame erases what the longer one left below it.
        assert_eq!(s.redraw(&frame(&["z"])), "\x1b[3A\r\x1b[2Kz\n\x1b[J");
    }

    #[test]
    fn sanitizing_output() {
        assert_eq!(sanitize("a\tb"), "a       b");
        assert_eq!(sanitize("12345678\tb"), "12345678        b");
        assert_eq!(sanitize("x\x1b]0;title\x07y\x1b[31mz\x1b[0m\x07"), "xyz");
        assert_eq!(sanitize("windows line\r"), "windows line");
        assert_eq!(sanitize("10%\r20%\r30%"), "30%");
        assert_eq!(sanitize("héllo wörld"), "héllo wörld");
    }

    #[test]
    fn step_lines() {
        assert_eq!(parse_step("Step 3/7 : RUN make\n"), Some((3, 7, "RUN make".into())));
        assert_eq!(
            parse_step("Step 1/2 : RUN a \\\n  && b\n"),
            Some((1, 2, "RUN a \\ && b".into()))
        );
        assert_eq!(parse_step("Step x/7 : RUN make\n"), None);
        assert_eq!(parse_step("Stepping 3/7 : RUN make\n"), None);
    }
}
