//! The parsed Dockerfile: instructions as the parser read them (no variable expansion), and the JSON
//! form printed by `berth build --print-ast`.

use serde_json::{json, Map, Value};

/// A parsed Dockerfile: its parser directives and its instructions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The parser directives found at the top of the file.
    pub directives: Directives,
    /// The instructions, in file order.
    pub instructions: Vec<Instruction>,
    /// Non-fatal findings (such as empty continuation lines), as BuildKit reports them.
    pub warnings: Vec<Warning>,
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// First line of the instruction concerned.
    pub line: usize,
    /// What was found.
    pub message: String,
}

/// Parser directives (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` value, if present.
    pub syntax: Option<String>,
    /// The escape character: `\` unless `# escape=` says `` ` ``.
    pub escape: char,
    /// `# check=` value, if present (raw, such as `skip=all;error=true`).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A Dockerfile instruction keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variants are the Dockerfile keywords themselves
pub enum Command {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Command {
    /// Every instruction keyword.
    pub const ALL: [Command; 18] = [
        Command::Add,
        Command::Arg,
        Command::Cmd,
        Command::Copy,
        Command::Entrypoint,
        Command::Env,
        Command::Expose,
        Command::From,
        Command::Healthcheck,
        Command::Label,
        Command::Maintainer,
        Command::Onbuild,
        Command::Run,
        Command::Shell,
        Command::Stopsignal,
        Command::User,
        Command::Volume,
        Command::Workdir,
    ];

    /// The lower-case keyword (`"run"`), as in the AST JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "add",
            Command::Arg => "arg",
            Command::Cmd => "cmd",
            Command::Copy => "copy",
            Command::Entrypoint => "entrypoint",
            Command::Env => "env",
            Command::Expose => "expose",
            Command::From => "from",
            Command::Healthcheck => "healthcheck",
            Command::Label => "label",
            Command::Maintainer => "maintainer",
            Command::Onbuild => "onbuild",
            Command::Run => "run",
            Command::Shell => "shell",
            Command::Stopsignal => "stopsignal",
            Command::User => "user",
            Command::Volume => "volume",
            Command::Workdir => "workdir",
        }
    }

    /// The upper-case keyword (`"RUN"`), as in error messages.
    pub fn upper(self) -> String {
        self.as_str().to_ascii_uppercase()
    }

    /// Looks a keyword up, case-insensitively.
    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether the instruction may carry here-documents (RUN, COPY, ADD).
    pub fn allows_heredocs(self) -> bool {
        matches!(self, Command::Run | Command::Copy | Command::Add)
    }
}

/// A here-document attached to a RUN, COPY or ADD instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, without quotes.
    pub name: String,
    /// The body: each line followed by `\n` (leading tabs removed for `<<-`).
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): the builder must not expand variables.
    pub expand: bool,
    /// True for `<<-`: leading tabs were stripped from the body and the delimiter line.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

/// A `key[=value]` pair of ENV, LABEL or ARG, raw as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, quotes and escapes kept.
    pub key: String,
    /// The value; `None` only for an ARG declared without a default.
    pub value: Option<String>,
}

/// The arguments of an instruction, as the parser read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Exec-form strings (when [`Instruction::json`]), whitespace-separated words (FROM, EXPOSE, and
    /// ADD/COPY/VOLUME in non-JSON form), or one shell-form string (RUN, CMD, ENTRYPOINT, USER, ...).
    Words(Vec<String>),
    /// ENV, LABEL and ARG pairs.
    KeyValues(Vec<KeyValue>),
    /// HEALTHCHECK: its type (`CMD`, `NONE`, as written) and the command (exec strings or one string).
    Healthcheck {
        /// `CMD` or `NONE` as written.
        kind: String,
        /// The command after `CMD`.
        command: Vec<String>,
    },
    /// ONBUILD: the trigger instruction.
    OnBuild(Box<Instruction>),
}

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The keyword.
    pub command: Command,
    /// `--name=value` flags in order (quotes removed as BuildKit's flag scanner does).
    pub flags: Vec<String>,
    /// The arguments.
    pub args: Args,
    /// True when the arguments were written as a JSON array (exec form).
    pub json: bool,
    /// True for ENV/LABEL in the legacy `ENV key value` form.
    pub no_delim: bool,
    /// Here-documents, in the order their delimiters appear.
    pub heredocs: Vec<Heredoc>,
    /// First line (1-based).
    pub line: usize,
    /// Last line (1-based), including continuation and here-document lines.
    pub end_line: usize,
    /// The instruction text with continuations joined (for ONBUILD triggers, the trigger's text).
    pub original: String,
}

impl Instruction {
    /// The arguments as plain words (empty for key/value, HEALTHCHECK and ONBUILD instructions).
    pub fn words(&self) -> &[String] {
        match &self.args {
            Args::Words(w) => w,
            _ => &[],
        }
    }

    /// The key/value pairs of ENV, LABEL and ARG (empty for other instructions).
    pub fn key_values(&self) -> &[KeyValue] {
        match &self.args {
            Args::KeyValues(kv) => kv,
            _ => &[],
        }
    }

    /// This instruction as an AST JSON object (see [`ast_json`]).
    pub fn to_json(&self) -> Value {
        let args: Vec<Value> = match &self.args {
            Args::Words(w) => w.iter().map(|s| Value::String(s.clone())).collect(),
            Args::KeyValues(kvs) => kvs
                .iter()
                .flat_map(|kv| {
                    [
                        Value::String(kv.key.clone()),
                        kv.value.clone().map_or(Value::Null, Value::String),
                    ]
                })
                .collect(),
            Args::Healthcheck { kind, command } => std::iter::once(kind)
                .chain(command.iter())
                .map(|s| Value::String(s.clone()))
                .collect(),
            Args::OnBuild(_) => Vec::new(),
        };
        let heredocs: Vec<Value> = self
            .heredocs
            .iter()
            .map(|h| json!({"name": h.name, "content": h.content}))
            .collect();
        let mut obj = Map::new();
        obj.insert("cmd".into(), Value::String(self.command.as_str().into()));
        obj.insert("flags".into(), json!(self.flags));
        obj.insert("args".into(), Value::Array(args));
        obj.insert("json".into(), Value::Bool(self.json));
        obj.insert("heredocs".into(), Value::Array(heredocs));
        obj.insert("line".into(), json!(self.line));
        if self.no_delim {
            obj.insert("no_delim".into(), Value::Bool(true));
        }
        if let Args::OnBuild(next) = &self.args {
            obj.insert("next".into(), next.to_json());
        }
        Value::Object(obj)
    }
}

/// The AST as printed by `berth build --print-ast`: a JSON array with one object per instruction,
/// `{"cmd", "flags", "args", "json", "heredocs", "line"}` plus `"no_delim": true` on legacy ENV/LABEL
/// and `"next"` on ONBUILD.
pub fn ast_json(df: &Dockerfile) -> Value {
    Value::Array(df.instructions.iter().map(Instruction::to_json).collect())
}
