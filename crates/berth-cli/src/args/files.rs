//! Arguments of the commands on a container's files: `cp`, `export`, `diff`, `commit`.

use clap::Args;
use clap_complete::ArgValueCompleter;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)
    #[arg(value_name = "SRC", add = ArgValueCompleter::new(crate::completion::container_or_path))]
    pub src: String,
    /// CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)
    #[arg(value_name = "DEST", add = ArgValueCompleter::new(crate::completion::container_or_path))]
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    #[arg(add = ArgValueCompleter::new(crate::completion::containers))]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[arg(add = ArgValueCompleter::new(crate::completion::containers))]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    #[arg(add = ArgValueCompleter::new(crate::completion::containers))]
    pub container: String,
    /// REPOSITORY[:TAG]
    pub repository: Option<String>,
}
