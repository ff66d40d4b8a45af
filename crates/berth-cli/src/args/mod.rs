//! Command-line definitions: Docker's verbs, aliases and flags as clap types. Nothing here runs a
//! command (see `dispatch`), so the command modules import these types and not the other way round.

mod completion;
mod compose;
mod container;
mod context;
mod files;
mod image;
mod network;
mod registry;
mod resources;
mod system;
mod volume;

use clap::{Parser, Subcommand};

pub use completion::*;
pub use compose::*;
pub use container::*;
pub use context::*;
pub use files::*;
pub use image::*;
pub use network::*;
pub use registry::*;
pub use resources::*;
pub use system::*;
pub use volume::*;

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
    /// Location of client config files
    #[arg(long)]
    pub config: Option<String>,
    /// Name of the context to use to connect to the daemon (overrides DOCKER_HOST env var and
    /// default context set with "berth context use")
    #[arg(short = 'c', long, add = clap_complete::ArgValueCompleter::new(crate::completion::contexts))]
    pub context: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the remote
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA (default "$DOCKER_CERT_PATH/ca.pem")
    #[arg(long)]
    pub tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file (default "$DOCKER_CERT_PATH/cert.pem")
    #[arg(long)]
    pub tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file (default "$DOCKER_CERT_PATH/key.pem")
    #[arg(long)]
    pub tlskey: Option<std::path::PathBuf>,
    /// The command to run
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
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
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
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
    /// Upload an image to a registry
    Push(PushArgs),
    /// Authenticate to a registry (defaults to Docker Hub)
    Login(LoginArgs),
    /// Log out from a registry (defaults to Docker Hub)
    Logout(LogoutArgs),
    /// Search Docker Hub for images
    Search(SearchArgs),
    /// Manage Docker image manifests
    #[command(subcommand)]
    Manifest(ManifestCmd),
    /// Run a registry server, or collect its garbage (berth-registry)
    #[command(disable_help_flag = true)]
    Registry(RegistryArgs),
    /// Build an image from a Dockerfile
    Build(BuildCmd),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCmd),
    /// Define and run multi-container applications (Docker Compose)
    Compose(ComposeArgs),
    /// Show the Docker version information
    Version(VersionArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage contexts
    #[command(subcommand)]
    Context(ContextCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Generate the autocompletion script for the specified shell
    Completion(CompletionArgs),
    /// Write man pages (berth.1, berth-run.1, ...) into DIR
    #[command(name = "__man", hide = true)]
    Man(ManArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
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
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
// Parsed once per process; `build` is as large here as in `Cmd`.
#[allow(clippy::large_enum_variant)]
pub enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
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
    /// Build an image from a Dockerfile
    Build(BuildCmd),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Display system-wide information
    Info(InfoArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Show docker disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Proxy the stdio stream to the daemon connection. Should not be invoked manually.
    #[command(hide = true)]
    DialStdio,
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

/// The `berth build` command line: the build itself and how its progress is shown (compose
/// builds with [`BuildArgs`] alone).
#[derive(clap::Args, Debug)]
pub struct BuildCmd {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Set type of progress output ("auto", "plain", "tty", "quiet"); "auto" is "tty" on a
    /// terminal, else "plain" (the classic builder's output) [default: $BUILDKIT_PROGRESS, else auto]
    #[arg(long, value_enum, value_name = "type")]
    pub progress: Option<ProgressMode>,
}

/// `--progress` of `berth build`, as docker's (`BUILDKIT_PROGRESS` sets the default; not clap's
/// `env`, which refuses the empty value docker takes as unset).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// `tty` when the output is a terminal, else `plain`.
    #[default]
    Auto,
    /// The classic builder's stream, as docker prints it.
    Plain,
    /// A live view of the steps, redrawn in place.
    Tty,
    /// Only the image ID, at the end (as `-q`).
    Quiet,
}

/// `berth build`: an image from a Dockerfile and a context (the classic builder's API), or the
/// parser's view of a Dockerfile (`--print-ast`).
#[derive(clap::Args, Debug)]
#[command(after_long_help = PRINT_AST_HELP)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Images to consider as cache sources (pulled when missing)
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or "id=TOKEN,env=VAR")
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent socket to expose to the build (format: "default|<id>[=<socket>]"; the daemon must
    /// run on this host)
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Secrets already read (compose's `build.secrets`), by id, besides `--secret`.
    #[arg(skip)]
    pub secret_values: std::collections::BTreeMap<String, Vec<u8>>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Set the target platform for the build (this host's platform only)
    #[arg(long)]
    pub platform: Option<String>,
    /// Print the parse of Dockerfile FILE ("-" for stdin) as JSON and exit (see --help)
    #[arg(long = "print-ast", value_name = "FILE")]
    pub print_ast: Option<String>,
    /// The build context: a directory, or "-" for a tar on stdin
    #[arg(value_name = "PATH")]
    pub context: Option<String>,
}

/// `berth builder ...`.
#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
// Parsed once per process; `build` is as large here as in `Cmd`.
#[allow(clippy::large_enum_variant)]
pub enum BuilderCmd {
    /// Remove build cache
    Prune(BuilderPruneArgs),
    /// Build an image from a Dockerfile
    Build(BuildCmd),
}

/// `berth builder prune`.
#[derive(clap::Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones (berth's cache has only one kind)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// The `--print-ast` format, shown by `berth build --help`.
const PRINT_AST_HELP: &str = "\
--print-ast FILE prints a JSON array, one object per instruction in order:
  {\"cmd\": the instruction in lower case, \"flags\": [\"--from=x\", ...], \"args\": [...],
   \"json\": true for the exec (JSON) form, \"heredocs\": [{\"name\": ..., \"content\": ...}],
   \"line\": the instruction's first line}
and \"no_delim\": true on ENV/LABEL written in the legacy `ENV key value` form.
args are the parser's raw words (no expansion, quotes and escapes as written, continuation lines
joined): the exec-form strings for the JSON form, one string for the shell form of RUN, CMD,
ENTRYPOINT and the like, key/value pairs for ENV, LABEL and ARG flattened as [\"k1\",\"v1\",\"k2\",\"v2\"]
with null as the value of an ARG declared without one (ARG foo bar=baz -> [\"foo\", null, \"bar\", \"baz\"]);
HEALTHCHECK's first arg is its type (CMD, NONE); ONBUILD nests its instruction as \"next\": {...}.
An empty file, one with only comments, an unknown instruction or ENV without a value is an error
naming the line (exit status 1).";

/// `berth registry ...`: everything after the verb goes to the `berth-registry` binary.
#[derive(clap::Args, Debug)]
pub struct RegistryArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}
