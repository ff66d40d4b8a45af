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
    /// Display an image manifest, or manifest list
    ///
    /// A list made locally (`manifest create`) is shown from the client's store; an image of it
    /// with `inspect LIST IMAGE`. Otherwise berth asks the daemon (GET /distribution/{name}/json),
    /// which holds the registry configuration (mirrors, certificates, insecure registries);
    /// credentials from the client config are sent along.
    Inspect(ManifestInspectArgs),
    /// Create a local manifest list for annotating and pushing to a registry
    Create(ManifestCreateArgs),
    /// Add additional information to a local image manifest
    Annotate(ManifestAnnotateArgs),
    /// Push a manifest list to a repository
    Push(ManifestPushArgs),
    /// Delete one or more manifest lists from local storage
    Rm(ManifestRmArgs),
}

#[derive(Args, Debug)]
pub struct ManifestInspectArgs {
    /// Output additional info including layers and platform
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Allow communication with an insecure registry (the daemon's insecure-registries decide)
    #[arg(long)]
    pub insecure: bool,
    /// [MANIFEST_LIST] MANIFEST
    #[arg(value_name = "MANIFEST", num_args = 1..=2, required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ManifestCreateArgs {
    /// Amend an existing manifest list
    #[arg(short = 'a', long)]
    pub amend: bool,
    /// Allow communication with an insecure registry
    #[arg(long)]
    pub insecure: bool,
    /// The list to create (a reference in the registry it will be pushed to)
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
    /// The images it lists, each in the list's registry
    #[arg(value_name = "MANIFEST", required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ManifestAnnotateArgs {
    /// Set architecture
    #[arg(long)]
    pub arch: Option<String>,
    /// Set operating system
    #[arg(long)]
    pub os: Option<String>,
    /// Set operating system feature
    #[arg(long = "os-features")]
    pub os_features: Vec<String>,
    /// Set operating system version
    #[arg(long = "os-version")]
    pub os_version: Option<String>,
    /// Set architecture variant
    #[arg(long)]
    pub variant: Option<String>,
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
    #[arg(value_name = "MANIFEST")]
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ManifestPushArgs {
    /// Allow push to an insecure registry
    #[arg(long)]
    pub insecure: bool,
    /// Remove the local manifest list after push
    #[arg(short = 'p', long)]
    pub purge: bool,
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
}

#[derive(Args, Debug)]
pub struct ManifestRmArgs {
    #[arg(value_name = "MANIFEST_LIST", required = true)]
    pub lists: Vec<String>,
}
