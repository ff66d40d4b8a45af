//! Arguments of `completion` (shell completion scripts) and the hidden `__man` (man pages).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `berth completion SHELL`.
#[derive(Args, Debug)]
#[command(after_long_help = COMPLETION_HELP)]
pub struct CompletionArgs {
    /// The shell to write the completion script for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `berth completion` writes scripts for.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionShell {
    /// GNU bash (with bash-completion, or `source <(berth completion bash)`)
    Bash,
    /// Z shell
    Zsh,
    /// The friendly interactive shell
    Fish,
}

/// `berth __man DIR`: writes `berth.1` and one page per subcommand into DIR.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Where to write the pages (created if missing)
    #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: PathBuf,
}

/// How to load the script, shown by `berth completion --help`.
const COMPLETION_HELP: &str = "\
The script asks berth for completions as you type (container, image, network and volume names
come from the daemon named by -H, BERTH_HOST or DOCKER_HOST; the daemon is never started for
it). Load it for the current shell, or install it where the shell looks:
  bash: source <(berth completion bash)
        berth completion bash > /usr/local/share/bash-completion/completions/berth
  zsh:  source <(berth completion zsh)
        berth completion zsh > /usr/local/share/zsh/site-functions/_berth
  fish: berth completion fish | source
        berth completion fish > ~/.config/fish/completions/berth.fish";
