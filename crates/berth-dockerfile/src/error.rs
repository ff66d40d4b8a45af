//! Typed errors for the Dockerfile parser, variable substitution and `.dockerignore` patterns.
//!
//! Messages follow BuildKit's wording where one exists, so users see what `docker build` would say.

use thiserror::Error;

/// A Dockerfile could not be parsed; `line` is the 1-based line where the failing instruction starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("dockerfile parse error on line {line}: {kind}")]
pub struct ParseError {
    /// First line (1-based) of the instruction or directive that failed.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ParseErrorKind) -> Self {
        ParseError { line, kind }
    }
}

/// What is wrong with a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// The file holds no instruction (empty, or only comments and directives).
    #[error("file with no instructions")]
    NoInstructions,
    /// The first word of a line is not a Dockerfile instruction.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// A parser directive appears twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// The `escape` directive names something other than `\` or `` ` ``.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    /// A here-document has no terminating line.
    #[error("unterminated heredoc {0}")]
    UnterminatedHeredoc(String),
    /// A JSON array holds something other than strings.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// The instruction needs at least one argument.
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(String),
    /// The instruction needs exactly one argument.
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(String),
    /// ADD or COPY without a destination.
    #[error("{0} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination(String),
    /// Legacy `ENV key value` / `LABEL key value` form with the value missing.
    #[error("{0} must have two arguments")]
    MustHaveTwoArguments(String),
    /// A key of ENV, LABEL or ARG is empty.
    #[error("{0} names can not be blank")]
    BlankName(String),
    /// A word of a `key=value` list has no `=`.
    #[error("Syntax error - can't find = in \"{0}\". Must be of the form: name=value")]
    MissingEquals(String),
    /// FROM takes `image` or `image AS name`.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// `ONBUILD ONBUILD`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnBuildChaining,
    /// `ONBUILD FROM` or `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnBuildTrigger(String),
    /// SHELL written in shell form.
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    /// `HEALTHCHECK NONE` followed by more words.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    /// `HEALTHCHECK CMD` with nothing after it.
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    /// HEALTHCHECK type other than CMD or NONE.
    #[error("Unknown type \"{0}\" in HEALTHCHECK (try CMD)")]
    HealthcheckUnknownType(String),
    /// `VOLUME [""]`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// A `--flag` the instruction does not accept.
    #[error("unknown flag: {flag} for {instruction}")]
    UnknownFlag {
        /// Upper-case instruction name.
        instruction: String,
        /// Flag name without `--`.
        flag: String,
    },
    /// A non-repeatable flag given twice.
    #[error("duplicate flag specified: {0}")]
    DuplicateFlag(String),
    /// `--flag` without `=value` where a value is needed, or `--bool=`.
    #[error("missing a value on flag: {0}")]
    MissingFlagValue(String),
    /// A boolean flag with a value other than true/false.
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    BadBoolFlag {
        /// Flag name without `--`.
        flag: String,
        /// The value given.
        value: String,
    },
}

/// Variable substitution failed on `word`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("failed to process \"{word}\": {kind}")]
pub struct ExpandError {
    /// The word being expanded.
    pub word: String,
    /// What went wrong.
    pub kind: ExpandErrorKind,
}

/// What went wrong while expanding a word.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandErrorKind {
    /// An opening `'` has no closing one.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// An opening `"` has no closing one.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// A stop character inside `${...}` is missing.
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    /// `${` without `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${v/pattern` without the second `/`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// A modifier Docker does not support (such as `${v:#x}`).
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${v?msg}` / `${v:?msg}` with `v` unset (or empty).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message given, or Docker's default.
        message: String,
    },
    /// A glob pattern in `${v#p}`, `${v%p}` or `${v/p/r}` is malformed.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// A `.dockerignore` pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IgnoreError {
    /// A line holding only `!`.
    #[error("illegal exclusion pattern: \"!\" on line {0} of .dockerignore")]
    IllegalExclusion(usize),
    /// A pattern `filepath.Match` would reject (unclosed `[`, trailing `\`).
    #[error("syntax error in pattern \"{pattern}\" on line {line} of .dockerignore")]
    BadPattern {
        /// 1-based line in the file.
        line: usize,
        /// The pattern after cleaning.
        pattern: String,
    },
}
