//! Command-line definitions (Docker's verbs, aliases and flags) and dispatch.

use anyhow::Result;
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::connect::{connect, ConnectOpts};
use crate::opts::ContainerOpts;
use crate::{container, image, system};

/// A self-sufficient runtime for containers
#[derive(Parser, Debug)]
#[command(name = "berth", disable_version_flag = true)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Do not start berthd when nothing answers on the default socket
    #[arg(long = "no-autostart")]
    pub no_autostart: bool,
    /// Location of client config files (accepted for compatibility)
    #[arg(long)]
    pub config: Option<String>,
    /// Name of the context to use (accepted for compatibility; only the default exists)
    #[arg(short = 'c', long)]
    pub context: Option<String>,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Show the Docker version information
    Version(VersionArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCmd),
}

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Display detailed information on one or more containers
    Inspect(TypedInspectArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(TypedInspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Display system-wide information
    Info(InfoArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout", allow_hyphen_values = true)]
    pub time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|-
    pub source: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// Runs the parsed command; the result is the process exit code.
pub async fn dispatch(cli: Cli) -> Result<i32> {
    let copts = ConnectOpts {
        host: cli.host.clone(),
        no_autostart: cli.no_autostart,
    };
    let Some(cmd) = cli.cmd else {
        if cli.version {
            outln!(
                "berth version {}, build {}",
                env!("CARGO_PKG_VERSION"),
                option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
            );
            return Ok(0);
        }
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return Ok(0);
    };
    // `version` prints the client part even when the daemon is unreachable.
    match cmd {
        Cmd::Version(a) => return system::version(&copts, a).await,
        Cmd::Info(a) | Cmd::System(SystemCmd::Info(a)) => return system::info(&copts, a).await,
        _ => {}
    }
    let is_run = matches!(cmd, Cmd::Run(_) | Cmd::Container(ContainerCmd::Run(_)));
    let client = match connect(&copts).await {
        Ok(c) => c,
        Err(e) if is_run => return Err(container::run_error("run", &e.to_string()).into()),
        Err(e) => return Err(e),
    };
    let c = &client;
    match cmd {
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => container::run(c, a).await,
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => container::create(c, a).await,
        Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => container::start(c, a).await,
        Cmd::Stop(a) | Cmd::Container(ContainerCmd::Stop(a)) => container::stop(c, a, false).await,
        Cmd::Restart(a) | Cmd::Container(ContainerCmd::Restart(a)) => container::stop(c, a, true).await,
        Cmd::Kill(a) | Cmd::Container(ContainerCmd::Kill(a)) => container::kill(c, a).await,
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => container::rm(c, a).await,
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => container::ps(c, a).await,
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => container::logs(c, a).await,
        Cmd::Wait(a) | Cmd::Container(ContainerCmd::Wait(a)) => container::wait(c, a).await,
        Cmd::Rename(a) | Cmd::Container(ContainerCmd::Rename(a)) => container::rename(c, a).await,
        Cmd::Attach(a) | Cmd::Container(ContainerCmd::Attach(a)) => container::attach(c, a).await,
        Cmd::Container(ContainerCmd::Prune(a)) => container::prune(c, a).await,
        Cmd::Container(ContainerCmd::Inspect(a)) => {
            system::inspect(c, a.format, a.size, Some("container"), a.names, false).await
        }
        Cmd::Image(ImageCmd::Inspect(a)) => system::inspect(c, a.format, a.size, Some("image"), a.names, false).await,
        Cmd::Inspect(a) => system::inspect(c, a.format, a.size, a.kind.as_deref(), a.names, true).await,
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => image::images(c, a).await,
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => image::rmi(c, a).await,
        Cmd::Tag(a) | Cmd::Image(ImageCmd::Tag(a)) => image::tag(c, a).await,
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => image::import(c, a).await,
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => image::load(c, a).await,
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => image::save(c, a).await,
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => image::history(c, a).await,
        Cmd::Image(ImageCmd::Prune(a)) => image::prune(c, a).await,
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => image::pull(c, a).await,
        Cmd::Version(_) | Cmd::Info(_) | Cmd::System(_) => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_before_subcommand_only() {
        let c = Cli::try_parse_from(["berth", "-H", "unix:///x", "run", "-l", "a=b", "-v", "/d", "bb"]).unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///x"));
        match c.cmd {
            Some(Cmd::Run(r)) => {
                assert_eq!(r.opts.label, vec!["a=b"]);
                assert_eq!(r.opts.volume, vec!["/d"]);
                assert!(r.sig_proxy);
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from(["berth", "run", "--sig-proxy=false", "-h", "box", "bb"]).unwrap();
        match c.cmd {
            Some(Cmd::Run(r)) => {
                assert!(!r.sig_proxy);
                assert_eq!(r.opts.hostname.as_deref(), Some("box"));
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from(["berth", "container", "list", "-aq"]).unwrap();
        assert!(matches!(
            c.cmd,
            Some(Cmd::Container(ContainerCmd::Ls(PsArgs {
                all: true,
                quiet: true,
                ..
            })))
        ));
        assert!(Cli::try_parse_from(["berth", "ps", "--bogus"]).is_err());
        let c = Cli::try_parse_from(["berth", "stop", "-t", "0", "a", "b"]).unwrap();
        assert!(matches!(c.cmd, Some(Cmd::Stop(StopArgs { time: Some(0), .. }))));
    }
}
