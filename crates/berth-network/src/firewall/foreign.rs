//! Living beside another firewall that drops forwarded traffic by policy, as dockerd leaves the
//! host (`iptables -P FORWARD DROP`, with its `DOCKER-USER` chain first in FORWARD).
//!
//! berth's own table cannot help there: every base chain on the forward hook must accept a packet,
//! so an accept in `inet berth` does not undo a drop in iptables' filter table. Docker keeps
//! `DOCKER-USER` for exactly this kind of rule, so for each of berth's bridges two rules go there
//! (at the top of FORWARD when there is no DOCKER-USER): `-i BRIDGE -j ACCEPT` and
//! `-o BRIDGE -j ACCEPT`, tagged `-m comment --comment "berth network <id>"`. berth's table still
//! decides (isolation, `--internal`, icc): it sees the same packets and drops what it must.
//!
//! The rules are written with the iptables tool that owns the drop (iptables-nft or
//! iptables-legacy, and the ip6tables ones), so the tables stay in the format those tools (and
//! dockerd) read back. Nothing is written when no FORWARD chain drops by policy. The legacy tools
//! are only asked when the kernel's legacy tables are loaded (`/proc/net/ip_tables_names`), so
//! looking does not load them.

use super::iptables::find;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The comment on berth's rules in another firewall's chains.
fn tag(network_id: &str) -> String {
    format!("berth network {network_id}")
}

/// The iptables tools of this host that could hold a drop policy.
pub(crate) struct Foreign {
    tools: Vec<PathBuf>,
    netns: Option<OwnedFd>,
}

/// Splits an `iptables -S` line into its words, keeping a double-quoted word whole.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Whether an `iptables -S FORWARD` listing drops by policy.
fn drops_by_policy(listing: &str) -> bool {
    listing.lines().any(|l| l.trim() == "-P FORWARD DROP")
}

/// berth's rules in an `iptables -S CHAIN` listing: (network id, the rule's words after `-A`).
fn berth_rules(listing: &str) -> Vec<(String, Vec<String>)> {
    listing
        .lines()
        .filter(|l| l.starts_with("-A "))
        .filter_map(|l| {
            let w = words(l);
            let i = w.iter().position(|x| x == "--comment")?;
            let id = w.get(i + 1)?.strip_prefix("berth network ")?.to_string();
            Some((id, w[1..].to_vec()))
        })
        .collect()
}

impl Foreign {
    /// Nothing to do: with the iptables backend berth's chains share the tables that drop, and an
    /// accept ahead of them would skip their drops (isolation, `--internal`).
    pub(crate) fn disabled() -> Foreign {
        Foreign {
            tools: Vec::new(),
            netns: None,
        }
    }

    /// Finds the tools; their commands run in the calling thread's network namespace.
    pub(crate) fn open() -> Foreign {
        let legacy_loaded = |file: &str| Path::new(file).exists();
        let mut tools = Vec::new();
        for (nft, legacy, proc_file) in [
            ("iptables-nft", "iptables-legacy", "/proc/net/ip_tables_names"),
            ("ip6tables-nft", "ip6tables-legacy", "/proc/net/ip6_tables_names"),
        ] {
            tools.extend(find(&[nft]));
            if legacy_loaded(proc_file) {
                tools.extend(find(&[legacy]));
            }
        }
        let netns = std::fs::File::open("/proc/thread-self/ns/net").ok().map(OwnedFd::from);
        Foreign { tools, netns }
    }

    fn run(&self, tool: &Path, args: &[&str]) -> Option<String> {
        let mut cmd = Command::new(tool);
        cmd.arg("-w").args(args).stdin(Stdio::null()).stderr(Stdio::null());
        if let Some(fd) = &self.netns {
            let fd = fd.as_raw_fd();
            // SAFETY: runs in the forked child before exec; setns(2) is async-signal-safe and the
            // descriptor is owned by `self`, which outlives the spawn.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let out = cmd.output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The chain of `tool` that needs berth's accepts: DOCKER-USER or FORWARD when FORWARD drops
    /// by policy, else none.
    fn chain(&self, tool: &Path) -> Option<&'static str> {
        if !drops_by_policy(&self.run(tool, &["-t", "filter", "-S", "FORWARD"])?) {
            return None;
        }
        Some(if self.run(tool, &["-t", "filter", "-S", "DOCKER-USER"]).is_some() {
            "DOCKER-USER"
        } else {
            "FORWARD"
        })
    }

    /// Makes every dropping FORWARD chain let exactly the bridges `wanted` (network id, bridge)
    /// through: adds what is missing, removes berth's rules for any other network. Best effort: a
    /// failure is logged, berth's own table is not affected.
    pub(crate) fn sync(&self, wanted: &[(String, String)], only: Option<&str>) {
        for tool in &self.tools {
            let Some(chain) = self.chain(tool) else { continue };
            let listing = self.run(tool, &["-t", "filter", "-S", chain]).unwrap_or_default();
            let present = berth_rules(&listing);
            for (id, rule) in &present {
                let keep = wanted
                    .iter()
                    .any(|(w, br)| w == id && (rule.windows(2).any(|p| (p[0] == "-i" || p[0] == "-o") && &p[1] == br)));
                if keep || only.is_some_and(|o| o != id) {
                    continue;
                }
                let mut args: Vec<&str> = vec!["-t", "filter", "-D"];
                args.extend(rule.iter().map(String::as_str));
                if self.run(tool, &args).is_none() {
                    tracing::warn!(
                        "removing berth's rule for network {id} from {chain} ({})",
                        tool.display()
                    );
                }
            }
            for (id, bridge) in wanted {
                if only.is_some_and(|o| o != id) {
                    continue;
                }
                let comment = tag(id);
                for dir in ["-o", "-i"] {
                    let has = present
                        .iter()
                        .any(|(p, r)| p == id && r.windows(2).any(|w| w[0] == dir && &w[1] == bridge));
                    if has {
                        continue;
                    }
                    let args = [
                        "-t",
                        "filter",
                        "-I",
                        chain,
                        "1",
                        dir,
                        bridge,
                        "-m",
                        "comment",
                        "--comment",
                        &comment,
                        "-j",
                        "ACCEPT",
                    ];
                    if self.run(tool, &args).is_none() {
                        tracing::warn!(
                            "{chain} of {} drops forwarded traffic and berth could not add an accept for {bridge}: \
                             containers on it may not reach other hosts",
                            tool.display()
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_parsed() {
        let fwd = "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-A FORWARD -j DOCKER-USER\n";
        assert!(drops_by_policy(fwd));
        assert!(!drops_by_policy("-P FORWARD ACCEPT\n"));
        let user = "-N DOCKER-USER\n\
                    -A DOCKER-USER -o br1 -m comment --comment \"berth network n1\" -j ACCEPT\n\
                    -A DOCKER-USER -i br1 -m comment --comment \"berth network n1\" -j ACCEPT\n\
                    -A DOCKER-USER -i eth9 -m comment --comment \"someone else\" -j DROP\n\
                    -A DOCKER-USER -j RETURN\n";
        let rules = berth_rules(user);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].0, "n1");
        assert_eq!(
            rules[0].1,
            [
                "DOCKER-USER",
                "-o",
                "br1",
                "-m",
                "comment",
                "--comment",
                "berth network n1",
                "-j",
                "ACCEPT"
            ]
        );
    }
}
