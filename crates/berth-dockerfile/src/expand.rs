//! Variable substitution and word splitting, following BuildKit's shell lexer
//! (`frontend/dockerfile/shell/lex.go`): `$v`, `${v}`, `${v:-d}`, `${v-d}`, `${v:+a}`, `${v+a}`,
//! `${v?m}`, `${v:?m}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`, quotes
//! and the escape character. The builder calls this; the parser itself never expands.

use crate::error::{ExpandError, ExpandErrorKind};

/// How a word is lexed. [`Lexer::new`] gives Docker's behaviour for instruction arguments
/// (quotes removed, escapes processed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character (`\` or `` ` `` from the `escape` directive).
    pub escape: char,
    /// Keep quote characters in the output (still honouring their meaning).
    pub raw_quotes: bool,
    /// Keep escape characters in the output (still honouring their meaning).
    pub raw_escapes: bool,
    /// Leave references to unset variables as written instead of expanding them to "".
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters.
    pub skip_quotes: bool,
}

impl Lexer {
    /// Docker's lexer for instruction arguments with the given escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// The lexer BuildKit uses for the body of an unquoted here-document: variables are expanded,
    /// quotes and escapes are kept.
    pub fn heredoc(escape: char) -> Self {
        Lexer {
            raw_quotes: true,
            raw_escapes: true,
            ..Lexer::new(escape)
        }
    }

    /// Expands `word` into one string (Docker's `ProcessWord`): whitespace is kept.
    pub fn process_word(&self, word: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
        self.run(word, vars).map(|(w, _)| w)
    }

    /// Expands `word` and splits it into words (Docker's `ProcessWords`): whitespace outside quotes
    /// separates words, and whitespace coming from a variable's value splits too.
    pub fn process_words(&self, word: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, ExpandError> {
        self.run(word, vars).map(|(_, ws)| ws)
    }

    fn run(&self, word: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<(String, Vec<String>), ExpandError> {
        let mut sw = ShellWord {
            chars: word.chars().collect(),
            pos: 0,
            vars,
            lex: *self,
        };
        let raw = self.raw_escapes;
        sw.stop_on(None, raw).map_err(|kind| ExpandError {
            word: word.to_string(),
            kind,
        })
    }
}

/// Expands variables in `word` as Docker does for ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
/// USER, VOLUME and WORKDIR arguments: quotes are removed, `escape` escapes the next character
/// (`\$foo` gives `$foo`), and the result is one string.
pub fn expand(word: &str, vars: &dyn Fn(&str) -> Option<String>, escape: char) -> Result<String, ExpandError> {
    Lexer::new(escape).process_word(word, vars)
}

/// Like [`expand`] but splits the result into words by Docker's rules (unquoted whitespace, including
/// whitespace inside expanded values, separates words; quoted whitespace does not).
pub fn expand_words(
    word: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(escape).process_words(word, vars)
}

/// Expands the body of an unquoted here-document (quotes and escapes stay as written).
pub fn expand_heredoc(
    content: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    Lexer::heredoc(escape).process_word(content, vars)
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Fn(&str) -> Option<String>,
    lex: Lexer,
}

type Kind = ExpandErrorKind;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (or the end), with raw escapes set as asked for the duration.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), Kind> {
        let saved = self.lex.raw_escapes;
        self.lex.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.lex.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), Kind> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            if ch == '$' {
                let tmp = self.dollar()?;
                result.push_str(&tmp);
                words.add_string(&tmp);
                continue;
            }
            if !self.lex.skip_quotes && (ch == '\'' || ch == '"') {
                let tmp = if ch == '\'' {
                    self.single_quote()?
                } else {
                    self.double_quote()?
                };
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
                continue;
            }
            self.pos += 1;
            let mut ch = ch;
            if ch == self.lex.escape {
                if self.lex.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => {
                        ch = c;
                        words.add_raw_char(c);
                    }
                }
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(s) = stop {
            return Err(Kind::UnexpectedEnd(s));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, Kind> {
        // Everything up to the next ' is literal; ' cannot be escaped inside.
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(Kind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, Kind> {
        // Literal except `$` and the escape character, which escapes only `"`, `$` and itself.
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(Kind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                }
                Some(ch) => {
                    self.pos += 1;
                    if ch == self.lex.escape {
                        match self.peek() {
                            None => {
                                if self.lex.raw_escapes {
                                    result.push(ch);
                                }
                            }
                            Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                                if self.lex.raw_escapes {
                                    result.push(ch);
                                }
                                self.pos += 1;
                                result.push(n);
                            }
                            Some(_) => result.push(ch),
                        }
                    } else {
                        result.push(ch);
                    }
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.vars)(name)
    }

    fn dollar(&mut self) -> Result<String, Kind> {
        self.pos += 1; // the '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1; // the '{'
        match self.peek() {
            None => return Err(Kind::MissingBrace),
            Some('{' | '}' | ':') => return Err(Kind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(Kind::MissingBrace),
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(c @ (':' | '+' | '-' | '?' | '#' | '%')) => self.modifier(name, c),
            Some('/') => self.replace(name),
            Some(c) => Err(Kind::UnsupportedModifier(c.to_string())),
        }
    }

    fn modifier(&mut self, name: String, first: char) -> Result<String, Kind> {
        let mut chs = first.to_string();
        let mut op = first;
        let null_is_unset = first == ':';
        if null_is_unset {
            op = self.next().ok_or(Kind::MissingBrace)?;
            chs.push(op);
        }
        let raw = op == '#' || op == '%';
        if null_is_unset && raw {
            return Err(Kind::UnsupportedModifier(chs));
        }
        let mut word = match self.stop_on(Some('}'), raw) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err(Kind::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        if self.lex.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match op {
            '-' => Ok(if unset { word } else { value.unwrap_or_default() }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => match value {
                None => Err(Kind::Required {
                    message: if word.is_empty() {
                        "is not allowed to be unset".into()
                    } else {
                        word
                    },
                    name,
                }),
                Some(v) if null_is_unset && v.is_empty() => Err(Kind::Required {
                    message: if word.is_empty() {
                        "is not allowed to be empty".into()
                    } else {
                        word
                    },
                    name,
                }),
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                // `#`/`%` remove the shortest match, `##`/`%%` the longest.
                let greedy = word.starts_with(op);
                if greedy {
                    word.remove(0);
                }
                let pattern = compile_pattern(&word)?;
                let v: Vec<char> = value.unwrap_or_default().chars().collect();
                Ok(if op == '#' {
                    trim_prefix(&pattern, &v, greedy)
                } else {
                    trim_suffix(&pattern, &v, greedy)
                })
            }
            _ => Err(Kind::UnsupportedModifier(chs)),
        }
    }

    fn replace(&mut self, name: String) -> Result<String, Kind> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = match self.stop_on(Some('/'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err(Kind::MissingSlash),
            Err(e) => return Err(e),
        };
        let replacement = match self.stop_on(Some('}'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err(Kind::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        let Some(value) = value else {
            if self.lex.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let toks = compile_pattern(&pattern)?;
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut done = false;
        // As Go's ReplaceAllString: an empty match right after a previous match is ignored.
        let mut last_end: Option<usize> = None;
        while i <= v.len() {
            if !done {
                if let Some(end) = longest_match_at(&toks, &v, i).filter(|&e| e > i || last_end != Some(i)) {
                    out.push_str(&replacement);
                    done = !all;
                    last_end = Some(end);
                    if end > i {
                        i = end;
                        continue;
                    }
                }
            }
            if i < v.len() {
                out.push(v[i]);
            }
            i += 1;
        }
        Ok(out)
    }

    /// Reads a variable name: letters, digits and `_`; or a run of digits; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}

/// A token of a substitution glob pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// Compiles a shell pattern: `*`, `?`, and `\*`, `\?`, `\\` for literals (`\}` is a literal `}`).
fn compile_pattern(p: &str) -> Result<Vec<Tok>, Kind> {
    let mut toks = Vec::new();
    let mut it = p.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::Any),
            '\\' => match it.next() {
                Some('}') => toks.push(Tok::Lit('}')),
                Some(n @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(n)),
                n => {
                    return Err(Kind::InvalidPattern {
                        pattern: p.to_string(),
                        reason: format!("invalid escape '\\{}'", n.map(String::from).unwrap_or_default()),
                    })
                }
            },
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// Whether all of `s` matches the pattern.
fn glob_match(toks: &[Tok], s: &[char]) -> bool {
    let (mut ti, mut si) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while si < s.len() {
        match toks.get(ti) {
            Some(Tok::Star) => {
                back = Some((ti, si));
                ti += 1;
                continue;
            }
            Some(Tok::Any) => {
                ti += 1;
                si += 1;
                continue;
            }
            Some(Tok::Lit(c)) if *c == s[si] => {
                ti += 1;
                si += 1;
                continue;
            }
            _ => {}
        }
        match back {
            Some((bt, bs)) => {
                ti = bt + 1;
                si = bs + 1;
                back = Some((bt, bs + 1));
            }
            None => return false,
        }
    }
    toks[ti.min(toks.len())..].iter().all(|t| *t == Tok::Star)
}

fn trim_prefix(toks: &[Tok], v: &[char], greedy: bool) -> String {
    let mut ends: Vec<usize> = (0..=v.len()).collect();
    if greedy {
        ends.reverse();
    }
    for i in ends {
        if glob_match(toks, &v[..i]) {
            return v[i..].iter().collect();
        }
    }
    v.iter().collect()
}

fn trim_suffix(toks: &[Tok], v: &[char], greedy: bool) -> String {
    let mut starts: Vec<usize> = (0..=v.len()).collect();
    if !greedy {
        starts.reverse();
    }
    for j in starts {
        if glob_match(toks, &v[j..]) {
            return v[..j].iter().collect();
        }
    }
    v.iter().collect()
}

/// The end of the longest match of the pattern starting at `start`, if any.
fn longest_match_at(toks: &[Tok], v: &[char], start: usize) -> Option<usize> {
    (start..=v.len()).rev().find(|&end| glob_match(toks, &v[start..end]))
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
