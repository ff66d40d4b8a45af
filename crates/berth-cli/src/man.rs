//! `berth __man DIR`: man pages from the clap definitions, `berth.1` and one page per visible
//! subcommand (`berth-run.1`, `berth-container-ls.1`, ...), as `scripts/install.sh` installs them.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::args::{Cli, ManArgs};

/// Writes the pages into `a.dir`.
pub fn man(a: ManArgs) -> Result<i32> {
    write_pages(&a.dir)?;
    Ok(0)
}

/// Renders every page into `dir` (created if missing); returns the paths written.
pub fn write_pages(dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating man page directory {}", dir.display()))?;
    // `help` is clap's, not a command of its own; build() names each subcommand `berth-container-ls`.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: &clap::Command, dir: &Path, written: &mut Vec<String>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("berth {}", env!("CARGO_PKG_VERSION")))
        .manual("Berth Manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("rendering man page {}", path.display()))?;
    let mut f = std::fs::File::create(&path).with_context(|| format!("writing man page {}", path.display()))?;
    f.write_all(&page)
        .with_context(|| format!("writing man page {}", path.display()))?;
    written.push(path.display().to_string());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_for_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_pages(dir.path()).unwrap();
        for name in [
            "berth.1",
            "berth-run.1",
            "berth-container-ls.1",
            "berth-network-rm.1",
            "berth-completion.1",
        ] {
            let p = dir.path().join(name);
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(text.starts_with(".ie") || text.contains(".TH"), "{name}: {text}");
        }
        // Hidden commands (this one) and clap's `help` get no page.
        assert!(!written
            .iter()
            .any(|p| p.ends_with("berth-__man.1") || p.ends_with("berth-help.1")));
        let run = std::fs::read_to_string(dir.path().join("berth-run.1")).unwrap();
        assert!(run.contains("berth\\-run"), "{run}");
    }
}
