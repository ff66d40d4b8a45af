//! Arguments of `context create|ls|use|rm|inspect|show|update`, as Docker's CLI spells its flags.

use clap::{Args, Subcommand};
use clap_complete::ArgValueCompleter;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContextCmd {
    /// Create a context
    Create(ContextCreateArgs),
    /// List contexts
    #[command(visible_alias = "list")]
    Ls(ContextLsArgs),
    /// Set the current docker context
    Use(ContextUseArgs),
    /// Remove one or more contexts
    #[command(visible_alias = "remove")]
    Rm(ContextRmArgs),
    /// Display detailed information on one or more contexts
    Inspect(ContextInspectArgs),
    /// Print the name of the current context
    Show,
    /// Update a context
    Update(ContextUpdateArgs),
    /// Export a context to a tar archive FILE or a tar stream on STDOUT.
    Export(ContextExportArgs),
    /// Import a context from a tar file
    Import(ContextImportArgs),
}

/// `context create`.
#[derive(Args, Debug, Default)]
pub struct ContextCreateArgs {
    /// Description of the context
    #[arg(long, default_value = "")]
    pub description: String,
    /// set the docker endpoint (host=…,ca=…,cert=…,key=…,skip-tls-verify=true|false,from=CONTEXT)
    #[arg(long, value_name = "stringToString")]
    pub docker: Vec<String>,
    /// create context from a named context
    #[arg(long, add = ArgValueCompleter::new(crate::completion::contexts))]
    pub from: Option<String>,
    #[arg(value_name = "CONTEXT")]
    pub name: String,
}

/// `context ls`.
#[derive(Args, Debug, Default)]
pub struct ContextLsArgs {
    /// Format output using a custom template ("table", "table TEMPLATE", "json", or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Only show context names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `context use`.
#[derive(Args, Debug)]
pub struct ContextUseArgs {
    #[arg(value_name = "CONTEXT", add = ArgValueCompleter::new(crate::completion::contexts))]
    pub name: String,
}

/// `context rm`.
#[derive(Args, Debug)]
pub struct ContextRmArgs {
    /// Force the removal of a context in use
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "CONTEXT", add = ArgValueCompleter::new(crate::completion::contexts))]
    pub names: Vec<String>,
}

/// `context inspect`.
#[derive(Args, Debug)]
pub struct ContextInspectArgs {
    /// Format output using a custom template ("json", or a Go template)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTEXT", add = ArgValueCompleter::new(crate::completion::contexts))]
    pub names: Vec<String>,
}

/// `context update`.
#[derive(Args, Debug)]
pub struct ContextUpdateArgs {
    /// Description of the context
    #[arg(long, default_value = "")]
    pub description: String,
    /// set the docker endpoint (host=…,ca=…,cert=…,key=…,skip-tls-verify=true|false,from=CONTEXT)
    #[arg(long, value_name = "stringToString")]
    pub docker: Vec<String>,
    #[arg(value_name = "CONTEXT", add = ArgValueCompleter::new(crate::completion::contexts))]
    pub name: String,
}

/// `context export`.
#[derive(Args, Debug)]
pub struct ContextExportArgs {
    #[arg(value_name = "CONTEXT", add = ArgValueCompleter::new(crate::completion::contexts))]
    pub name: String,
    /// Where to write the archive (default CONTEXT.dockercontext; - for standard output)
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
}

/// `context import`.
#[derive(Args, Debug)]
pub struct ContextImportArgs {
    #[arg(value_name = "CONTEXT")]
    pub name: String,
    /// The archive (- for standard input)
    #[arg(value_name = "FILE|-")]
    pub file: String,
}
