//! The Dockerfile parser. It follows BuildKit's `frontend/dockerfile/parser` (line handling,
//! directives, continuations, heredocs, per-instruction argument shapes) and the argument checks of
//! `frontend/dockerfile/instructions` (argument counts, flag names), so a file BuildKit rejects is
//! rejected here with the same words, naming the line.

use crate::ast::{Args, Command, Directives, Dockerfile, Heredoc, Instruction, KeyValue, Warning};
use crate::error::{ParseError, ParseErrorKind as K};
use crate::expand::Lexer;

/// Parses a Dockerfile.
///
/// Parser directives are read only at the top of the file; comment lines and blank lines inside a
/// continued instruction are skipped; here-documents are read for RUN, COPY and ADD (also as
/// ONBUILD triggers). No variable is expanded (see [`crate::expand`]).
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = src.split_inclusive('\n').collect();
    let mut dir = DirectiveState::default();
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    let mut current_line = 0;

    while i < lines.len() {
        let mut raw = lines[i];
        i += 1;
        if current_line == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        let token = process_line(&mut dir, raw, true).map_err(|k| ParseError::new(current_line + 1, k))?;
        current_line += 1;
        let start_line = current_line;
        let (mut line, mut end_of_line) = trim_continuation(&token, dir.directives.escape);
        if end_of_line && line.is_empty() {
            continue;
        }

        let mut empty_continuation = false;
        while !end_of_line && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let token = process_line(&mut dir, raw, false).map_err(|k| ParseError::new(current_line + 1, k))?;
            current_line += 1;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (cont, eol) = trim_continuation(&token, dir.directives.escape);
            line.push_str(&cont);
            end_of_line = eol;
        }
        if empty_continuation {
            warnings.push(Warning {
                line: start_line,
                message: format!("Empty continuation line found in: {line}"),
            });
        }

        let mut inst = parse_instruction(&line, dir.directives.escape).map_err(|k| ParseError::new(start_line, k))?;

        // Here-documents: the lines after the instruction, up to each delimiter in turn.
        let target = match &mut inst.args {
            Args::OnBuild(next) => next.as_mut(),
            _ => &mut inst,
        };
        if target.command.allows_heredocs() && !target.json && line.contains("<<") {
            for mut doc in heredocs_from_line(&line) {
                let mut body = String::new();
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    current_line += 1;
                    let text = raw.strip_suffix('\n').unwrap_or(raw);
                    let text = if doc.chomp { text.trim_start_matches('\t') } else { text };
                    if text.trim_end_matches(['\r', '\n']) == doc.name {
                        terminated = true;
                        break;
                    }
                    body.push_str(text);
                    body.push('\n');
                }
                if !terminated {
                    return Err(ParseError::new(start_line, K::UnterminatedHeredoc(doc.name)));
                }
                doc.content = body;
                target.heredocs.push(doc);
            }
        }
        set_lines(&mut inst, start_line, current_line);
        instructions.push(inst);
    }

    if instructions.is_empty() {
        return Err(ParseError::new(current_line.max(1), K::NoInstructions));
    }
    Ok(Dockerfile {
        directives: dir.directives,
        instructions,
        warnings,
    })
}

fn set_lines(inst: &mut Instruction, start: usize, end: usize) {
    inst.line = start;
    inst.end_line = end;
    if let Args::OnBuild(next) = &mut inst.args {
        set_lines(next, start, end);
    }
}

/// Tracks parser directives: they are read only until the first line that is not one.
#[derive(Default)]
struct DirectiveState {
    done: bool,
    seen: Vec<String>,
    directives: Directives,
}

impl DirectiveState {
    fn possible_directive(&mut self, line: &str) -> Result<(), K> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = match_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = name.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            // An unknown directive is a comment and ends the directive section.
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(K::DuplicateDirective(key));
        }
        match key.as_str() {
            "escape" => match value {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                other => return Err(K::InvalidEscape(other.to_string())),
            },
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        self.seen.push(key);
        Ok(())
    }
}

/// Go's `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re_space);
    let name_len = rest
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest
        .trim_start_matches(is_re_space)
        .strip_prefix('=')?
        .trim_matches(is_re_space);
    (!value.is_empty()).then_some((name, value))
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(raw: &str) -> bool {
    trim_newline(raw).trim_start().starts_with('#')
}

/// Strips the newline (and leading whitespace on a first line), feeds the directive parser, and
/// blanks comment lines.
fn process_line(dir: &mut DirectiveState, raw: &str, strip_left: bool) -> Result<String, K> {
    let mut token = trim_newline(raw);
    if strip_left {
        token = token.trim_start();
    }
    dir.possible_directive(token)?;
    if is_comment(token) {
        return Ok(String::new());
    }
    Ok(token.to_string())
}

/// Removes a trailing escape character (and spaces/tabs after it); returns whether the line ends here.
/// As BuildKit, an escaped escape at the end (`c:\\`) still continues the line.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest.to_string(), false),
        None => (line.to_string(), true),
    }
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]+`.
fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits on runs of [`is_ws`], dropping empty pieces at the ends (input is trimmed already).
fn split_ws(s: &str) -> Vec<String> {
    s.split(is_ws).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// Splits `s` at the first run of whitespace into two parts.
fn split_ws2(s: &str) -> (&str, Option<&str>) {
    match s.find(is_ws) {
        Some(p) => (&s[..p], Some(s[p..].trim_start_matches(is_ws))),
        None => (s, None),
    }
}

/// Reads the leading `--flag` words of an instruction's arguments (BuildKit's `extractBuilderFlags`:
/// quotes are removed and `\` escapes, `--` ends the flags). Returns the rest and the flags.
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos == chars.len();
        let ch = chars.get(pos).map(|c| c.1).unwrap_or('\0');
        let byte_pos = chars.get(pos).map(|c| c.0).unwrap_or(line.len());
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            if ch != '-' || chars.get(pos + 1).map(|c| c.1) != Some('-') {
                return (&line[byte_pos..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[byte_pos..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if ch == '\\' {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = chars[pos].1;
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if ch == '\\' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = chars[pos].1;
        }
        word.push(c);
        pos += 1;
    }
    ("", words)
}

/// Splits ENV/LABEL/ARG arguments into words, keeping quotes and escapes (BuildKit's `parseWords`).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos == chars.len();
        let ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            let mut c = ch;
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                // Unquoted escape: keep it and the next character, even a quote.
                word.push(ch);
                pos += 1;
                c = chars[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        let mut c = ch;
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
            c = chars[pos];
        }
        word.push(c);
        pos += 1;
    }
    words
}

/// `Ok(Some(strings))` for a JSON array of strings, `Ok(None)` for anything that is not a JSON array
/// (shell form), an error for a JSON array holding non-strings.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, K> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(K::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Arguments and the JSON flag for RUN/CMD/ENTRYPOINT/SHELL: exec strings, or one shell string.
fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), K> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match parse_json(rest)? {
        Some(v) => (v, true),
        None => (vec![rest.to_string()], false),
    })
}

/// Arguments for ADD/COPY/VOLUME: exec strings, or whitespace-separated words.
fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), K> {
    Ok(match parse_json(rest)? {
        Some(v) => (v, true),
        None => (split_ws(rest), false),
    })
}

/// ENV and LABEL: `k=v ...`, or the legacy `k value words` (`no_delim`).
fn name_val(rest: &str, cmd: Command, escape: char) -> Result<(Vec<KeyValue>, bool), K> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok((Vec::new(), false));
    };
    if !first.contains('=') {
        let (key, value) = split_ws2(rest);
        let value = value.ok_or_else(|| K::MustHaveTwoArguments(cmd.upper()))?;
        return Ok((
            vec![KeyValue {
                key: key.to_string(),
                value: Some(value.to_string()),
            }],
            true,
        ));
    }
    let mut kvs = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(K::MissingEquals(w));
        };
        kvs.push(KeyValue {
            key: k.to_string(),
            value: Some(v.to_string()),
        });
    }
    Ok((kvs, false))
}

/// Parses one (continuation-joined) instruction line.
fn parse_instruction(line: &str, escape: char) -> Result<Instruction, K> {
    let trimmed = line.trim();
    let (cmd_word, rest) = split_ws2(trimmed);
    let (rest, flags) = match rest {
        Some(r) => {
            let (r, f) = extract_flags(r);
            (r.trim(), f)
        }
        None => ("", Vec::new()),
    };
    let command = Command::from_name(cmd_word).ok_or_else(|| K::UnknownInstruction(cmd_word.to_string()))?;
    let up = command.upper();
    let mut json = false;
    let mut no_delim = false;
    let args = match command {
        Command::Run | Command::Cmd | Command::Entrypoint | Command::Shell => {
            let (a, j) = maybe_json(rest)?;
            json = j;
            if command == Command::Shell {
                if !json {
                    return Err(K::ShellNotJson);
                }
                if a.is_empty() {
                    return Err(K::AtLeastOneArgument(up));
                }
            }
            Args::Words(a)
        }
        Command::Add | Command::Copy | Command::Volume => {
            let (a, j) = maybe_json_to_list(rest)?;
            json = j;
            if command == Command::Volume {
                if a.is_empty() {
                    return Err(K::AtLeastOneArgument(up));
                }
                if a.iter().any(|v| v.trim().is_empty()) {
                    return Err(K::EmptyVolume);
                }
            } else if a.len() < 2 {
                return Err(K::NoDestination(up));
            }
            Args::Words(a)
        }
        Command::Expose | Command::From => {
            let a = split_ws(rest);
            if a.is_empty() {
                return Err(K::AtLeastOneArgument(up));
            }
            if command == Command::From && !(a.len() == 1 || (a.len() == 3 && a[1].eq_ignore_ascii_case("as"))) {
                return Err(K::FromArguments);
            }
            Args::Words(a)
        }
        Command::Maintainer | Command::Stopsignal | Command::User | Command::Workdir => {
            if rest.is_empty() {
                return Err(K::ExactlyOneArgument(up));
            }
            Args::Words(vec![rest.to_string()])
        }
        Command::Env | Command::Label => {
            let (kvs, nd) = name_val(rest, command, escape)?;
            if kvs.is_empty() {
                return Err(K::AtLeastOneArgument(up));
            }
            if kvs.iter().any(|kv| kv.key.is_empty()) {
                return Err(K::BlankName(up));
            }
            no_delim = nd;
            Args::KeyValues(kvs)
        }
        Command::Arg => {
            let words = parse_words(rest, escape);
            if words.is_empty() {
                return Err(K::AtLeastOneArgument(up));
            }
            let mut kvs = Vec::new();
            for w in words {
                let kv = match w.split_once('=') {
                    Some((k, v)) => KeyValue {
                        key: k.to_string(),
                        value: Some(v.to_string()),
                    },
                    None => KeyValue { key: w, value: None },
                };
                if kv.key.is_empty() {
                    return Err(K::BlankName(up));
                }
                kvs.push(kv);
            }
            Args::KeyValues(kvs)
        }
        Command::Healthcheck => {
            let (kind, cmd) = split_health(rest);
            if kind.is_empty() {
                return Err(K::AtLeastOneArgument(up));
            }
            let (command, j) = maybe_json(cmd)?;
            json = j;
            if kind.eq_ignore_ascii_case("none") {
                if !command.is_empty() {
                    return Err(K::HealthcheckNoneArguments);
                }
            } else if kind.eq_ignore_ascii_case("cmd") {
                if command.is_empty() {
                    return Err(K::HealthcheckMissingCommand);
                }
            } else {
                return Err(K::HealthcheckUnknownType(kind.to_string()));
            }
            Args::Healthcheck {
                kind: kind.to_string(),
                command,
            }
        }
        Command::Onbuild => {
            if rest.is_empty() {
                return Err(K::AtLeastOneArgument(up));
            }
            let (trigger, _) = split_ws2(rest);
            match Command::from_name(trigger) {
                Some(Command::Onbuild) => return Err(K::OnBuildChaining),
                Some(c @ (Command::From | Command::Maintainer)) => return Err(K::OnBuildTrigger(c.upper())),
                _ => {}
            }
            Args::OnBuild(Box::new(parse_instruction(rest, escape)?))
        }
    };
    check_flags(command, &flags)?;
    Ok(Instruction {
        command,
        flags,
        args,
        json,
        no_delim,
        heredocs: Vec::new(),
        line: 0,
        end_line: 0,
        original: line.trim().to_string(),
    })
}

/// HEALTHCHECK: the type word, then the rest after whitespace.
fn split_health(rest: &str) -> (&str, &str) {
    match rest.find(char::is_whitespace) {
        Some(p) => (&rest[..p], rest[p..].trim_start()),
        None => (rest, ""),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    String,
    Strings,
}

/// The flags each instruction accepts (reference.md), with their BuildKit types.
fn allowed_flags(command: Command) -> &'static [(&'static str, FlagType)] {
    use FlagType::*;
    match command {
        Command::From => &[("platform", String)],
        Command::Run => &[
            ("mount", Strings),
            ("network", String),
            ("security", String),
            ("device", Strings),
        ],
        Command::Copy => &[
            ("from", String),
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Strings),
        ],
        Command::Add => &[
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", String),
            ("exclude", Strings),
            ("unpack", Bool),
        ],
        Command::Healthcheck => &[
            ("interval", String),
            ("timeout", String),
            ("start-period", String),
            ("start-interval", String),
            ("retries", String),
        ],
        _ => &[],
    }
}

/// Checks flags as BuildKit's `BFlags.Parse` does: known names, values where needed, booleans,
/// no repeats except for repeatable flags.
fn check_flags(command: Command, flags: &[String]) -> Result<(), K> {
    let allowed = allowed_flags(command);
    let mut seen: Vec<&str> = Vec::new();
    for f in flags {
        let body = f.strip_prefix("--").unwrap_or(f);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some((_, ty)) = allowed.iter().find(|(n, _)| *n == name) else {
            return Err(K::UnknownFlag {
                instruction: command.upper(),
                flag: name.to_string(),
            });
        };
        if *ty != FlagType::Strings && seen.contains(&name) {
            return Err(K::DuplicateFlag(name.to_string()));
        }
        seen.push(name);
        match (ty, value) {
            (FlagType::Bool, Some("")) => return Err(K::MissingFlagValue(name.to_string())),
            (FlagType::Bool, Some(v)) if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => {
                return Err(K::BadBoolFlag {
                    flag: name.to_string(),
                    value: v.to_string(),
                })
            }
            (FlagType::String | FlagType::Strings, None) => return Err(K::MissingFlagValue(name.to_string())),
            _ => {}
        }
    }
    Ok(())
}

/// Finds the here-document words of a line (`<<EOF`, `<<-EOF`, `3<<"EOF"`), as BuildKit does: the
/// line is split into shell words with quotes kept, and each word of the form `[n]<<[-]word` is one.
fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let none = |_: &str| None;
    let split = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    let Ok(words) = split.process_words(line, &none) else {
        return Vec::new();
    };
    words.iter().filter_map(|w| parse_heredoc_word(w)).collect()
}

fn parse_heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let fd = if digits > 0 {
        word[..digits].parse::<u32>().ok()
    } else {
        None
    };
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let none = |_: &str| None;
    let lex = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = lex.process_words(rest, &none).ok()?;
    if words.len() != 1 {
        return None;
    }
    let raw = Lexer {
        raw_quotes: true,
        ..lex
    }
    .process_words(rest, &none)
    .ok()?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '"' || *c == '\'').count();
    // A quote removed by unquoting means part of the delimiter was quoted: no expansion of the body.
    let expand = raw.len() == 1 && quotes(&words[0]) == quotes(&raw[0]);
    Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        expand,
        chomp,
        fd,
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
