//! Arguments of the registry commands (`login`, `logout`, `push`, `search`, `manifest`).

use clap::{Args, Subcommand};
use clap_complete::ArgValueCompleter;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image signing (accepted for compatibility; berth does not sign)
    #[arg(long = "disable-content-trust", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub disable_content_trust: bool,
    /// NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]", add = ArgValueCompleter::new(crate::completion::images))]
    pub image: String,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long)]
    pub limit: Option<u32>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// What to search for (`busybox`, `localhost:5000/app` for another registry)
    pub term: String,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ManifestCmd {
    /// Display an image manifest's descriptor and platforms, as the daemon resolves them.
    ///
    /// Unlike docker's, which talks to the registry itself, berth asks the daemon
    /// (GET /distribution/{name}/json), which holds the registry configuration (mirrors,
    /// certificates, insecure registries); credentials from the client config are sent along.
    Inspect(ManifestInspectArgs),
}

#[derive(Args, Debug)]
pub struct ManifestInspectArgs {
    /// Output additional info: the platforms of a manifest list
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Allow communication with an insecure registry (the daemon's insecure-registries decide)
    #[arg(long)]
    pub insecure: bool,
    /// The image reference
    #[arg(value_name = "MANIFEST")]
    pub name: String,
}
