//! The loader's error: what went wrong, in which file, at which line and under which key.

use std::fmt;
use std::path::PathBuf;

/// Where in a compose file a problem was found: the file, the line when known, and the key path
/// (`services.web.ports`), so a message reads `compose.yaml:7: services.web.ports: ...`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The compose file (or `.env` file), when the problem belongs to one.
    pub file: Option<PathBuf>,
    /// The 1-based line of the key or value, when known.
    pub line: Option<usize>,
    /// The dotted key path (`services.web.ports.0`), empty for the document itself.
    pub path: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            wrote = true;
        }
        if !self.path.is_empty() {
            if wrote {
                f.write_str(": ")?;
            }
            f.write_str(&self.path)?;
            wrote = true;
        }
        if wrote {
            f.write_str(": ")?;
        }
        Ok(())
    }
}

/// An error loading a compose project; its message names the file, the line and the key path
/// when they are known, and otherwise reads like Docker Compose v2's.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read (or a directory listed).
    #[error("reading {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No compose file was given and none was found in the working directory or its parents.
    #[error("no configuration file provided: not found")]
    NotFound,
    /// The YAML itself is malformed (syntax, duplicate keys, alias bombs, size limits).
    #[error("{at}{message}")]
    Yaml {
        /// Where.
        at: Location,
        /// What.
        message: String,
    },
    /// Variable interpolation failed (a required variable is missing, a bad `${...}`, a failed cast).
    #[error("{at}error while interpolating: {message}")]
    Interpolation {
        /// Where.
        at: Location,
        /// What.
        message: String,
    },
    /// The model does not conform to the compose specification's JSON schema.
    #[error("{at}{message}")]
    Schema {
        /// Where.
        at: Location,
        /// What, in Compose's words (`additional properties 'imagee' not allowed`).
        message: String,
    },
    /// The model is well-formed but inconsistent (unknown dependency, dependency cycle, undefined
    /// network...).
    #[error("{at}{message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What.
        message: String,
    },
    /// A project name given with `-p` (or COMPOSE_PROJECT_NAME) breaks Compose's naming rule.
    #[error("invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    ProjectName {
        /// The name given.
        name: String,
    },
}

impl LoadError {
    /// The location the error names, when it names one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            LoadError::Yaml { at, .. }
            | LoadError::Interpolation { at, .. }
            | LoadError::Schema { at, .. }
            | LoadError::Invalid { at, .. } => Some(at),
            _ => None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        LoadError::Invalid {
            at: Location::default(),
            message: message.into(),
        }
    }
}
