//! The fallback for kernels without nf_tables: the same rules as `BERTH-*` chains in iptables' nat
//! and filter tables (and ip6tables'), jumped to from the built-in chains, written with
//! `iptables-restore --noflush` (one commit per table) and found again through `iptables-save`
//! (each rule carries its owner in `-m comment`). Slower than netlink (a few processes per change),
//! which is why it is only the fallback.
//!
//! The tools run in the network namespace the backend was opened in (`setns` before `exec`).

use super::rule::{Action, Chain, Family, Match, Owner, Rule};
use super::FirewallError;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The iptables table and chain name of a berth chain, and the built-in chain that jumps to it.
fn place(chain: Chain) -> (&'static str, &'static str, Option<&'static str>) {
    match chain {
        Chain::Prerouting => ("nat", "BERTH-PREROUTING", Some("PREROUTING")),
        Chain::Output => ("nat", "BERTH-OUTPUT", Some("OUTPUT")),
        Chain::Postrouting => ("nat", "BERTH-POSTROUTING", Some("POSTROUTING")),
        Chain::Ports => ("nat", "BERTH-PORTS", None),
        Chain::Forward => ("filter", "BERTH-FORWARD", Some("FORWARD")),
        Chain::Isolation => ("filter", "BERTH-ISOLATION", None),
        Chain::ForwardCt => ("filter", "BERTH-FORWARD-CT", None),
        Chain::ForwardNetworks => ("filter", "BERTH-FORWARD-NETWORKS", None),
        Chain::ForwardAccept => ("filter", "BERTH-FORWARD-ACCEPT", None),
    }
}

const TABLES: [&str; 2] = ["nat", "filter"];

/// One family's tools.
#[derive(Debug, Clone)]
struct Tools {
    family: Family,
    restore: PathBuf,
    save: PathBuf,
}

/// The iptables backend.
pub struct Iptables {
    tools: Vec<Tools>,
    netns: OwnedFd,
}

/// The first of `names` found on PATH or in the sbin/bin directories.
pub(super) fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        for name in names {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn tool_error(op: impl Into<String>, e: std::io::Error) -> FirewallError {
    FirewallError::Netlink {
        op: op.into(),
        source: e,
    }
}

/// A rule as one `iptables-restore` line (without `-A`), for `family`.
fn render(rule: &Rule, family: Family) -> Option<String> {
    if rule.family.is_some_and(|f| f != family) {
        return None;
    }
    let (_, chain, _) = place(rule.chain);
    let mut out = format!("-A {chain}");
    for m in &rule.matches {
        match m {
            Match::Iif { name, negate } => out += &format!(" {}-i {name}", if *negate { "! " } else { "" }),
            Match::Oif { name, negate } => out += &format!(" {}-o {name}", if *negate { "! " } else { "" }),
            Match::SrcNet(net) => {
                if net.addr().is_ipv4() != (family == Family::V4) {
                    return None;
                }
                out += &format!(" -s {net}");
            }
            Match::DstAddr(ip) => {
                if ip.is_ipv4() != (family == Family::V4) {
                    return None;
                }
                out += &format!(" -d {ip}");
            }
            Match::L4(p) => {
                out += &format!(" -p {p} -m {p}");
            }
            Match::DstPort(port) => out += &format!(" --dport {port}"),
            Match::DstLocal => out += " -m addrtype --dst-type LOCAL",
            Match::CtEstablished => out += " -m conntrack --ctstate RELATED,ESTABLISHED",
            Match::CtDnat => out += " -m conntrack --ctstate DNAT",
        }
    }
    out += &format!(" -m comment --comment \"{}\"", rule.owner.comment());
    match &rule.action {
        Action::Accept => out += " -j ACCEPT",
        Action::Drop => out += " -j DROP",
        Action::Jump(c) => out += &format!(" -j {}", place(*c).1),
        Action::Masquerade => out += " -j MASQUERADE",
        Action::Dnat(ip, port) => {
            if ip.is_ipv4() != (family == Family::V4) {
                return None;
            }
            match ip {
                std::net::IpAddr::V4(a) => out += &format!(" -j DNAT --to-destination {a}:{port}"),
                std::net::IpAddr::V6(a) => out += &format!(" -j DNAT --to-destination [{a}]:{port}"),
            }
        }
    }
    Some(out)
}

/// The owner written in a saved rule's `--comment`.
fn saved_owner(line: &str) -> Option<Owner> {
    let rest = line.split("--comment ").nth(1)?;
    let comment = if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()?
    } else {
        rest.split_whitespace().next()?
    };
    Owner::from_comment(comment)
}

/// `iptables-save` output of one table, split into lines.
struct Saved {
    lines: Vec<String>,
}

impl Saved {
    fn has_chain(&self, chain: &str) -> bool {
        let decl = format!(":{chain} ");
        self.lines.iter().any(|l| l.starts_with(&decl))
    }

    fn has_line(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    /// berth's rules (`-A BERTH-...`) with their owner.
    fn berth_rules(&self) -> impl Iterator<Item = (&str, Option<Owner>)> {
        self.lines
            .iter()
            .filter(|l| l.starts_with("-A BERTH-"))
            .map(|l| (l.as_str(), saved_owner(l)))
    }
}

impl Iptables {
    /// Finds the tools (legacy ones first: this backend is for kernels without nf_tables) and
    /// remembers the calling thread's network namespace.
    pub fn open() -> Result<Iptables, FirewallError> {
        let v4 = (
            find(&["iptables-legacy-restore", "iptables-restore"]),
            find(&["iptables-legacy-save", "iptables-save"]),
        );
        let (Some(restore), Some(save)) = v4 else {
            return Err(FirewallError::Netlink {
                op: "find iptables-restore".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        };
        let mut tools = vec![Tools {
            family: Family::V4,
            restore,
            save,
        }];
        if let (Some(restore), Some(save)) = (
            find(&["ip6tables-legacy-restore", "ip6tables-restore"]),
            find(&["ip6tables-legacy-save", "ip6tables-save"]),
        ) {
            tools.push(Tools {
                family: Family::V6,
                restore,
                save,
            });
        }
        let netns = std::fs::File::open("/proc/thread-self/ns/net")
            .map_err(|e| tool_error("open /proc/thread-self/ns/net", e))?
            .into();
        Ok(Iptables { tools, netns })
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        let fd = self.netns.as_raw_fd();
        // SAFETY: runs in the forked child before exec; setns(2) is async-signal-safe and `fd`
        // stays open (it is owned by `self`, which outlives the spawn).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    fn save(&self, tools: &Tools, table: &str) -> Result<Saved, FirewallError> {
        let op = format!("run {} -t {table}", tools.save.display());
        let out = self
            .command(&tools.save)
            .args(["-t", table])
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| tool_error(&op, e))?;
        if !out.status.success() {
            return Err(tool_error(
                op,
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            ));
        }
        Ok(Saved {
            lines: String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
        })
    }

    fn restore(&self, tools: &Tools, input: &str) -> Result<(), FirewallError> {
        let op = format!("run {} --noflush", tools.restore.display());
        let mut child = self
            .command(&tools.restore)
            .args(["--noflush", "-w"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| tool_error(&op, e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).map_err(|e| tool_error(&op, e))?;
        }
        let out = child.wait_with_output().map_err(|e| tool_error(&op, e))?;
        if !out.status.success() {
            let msg = format!("{}; input:\n{input}", String::from_utf8_lossy(&out.stderr).trim());
            return Err(tool_error(op, std::io::Error::other(msg)));
        }
        Ok(())
    }

    /// Restore input creating the missing chains and jumps of `table`.
    fn skeleton(saved: &Saved, table: &str, out: &mut String) {
        for chain in Chain::ALL {
            let (t, name, from) = place(chain);
            if t != table {
                continue;
            }
            if !saved.has_chain(name) {
                out.push_str(&format!(":{name} - [0:0]\n"));
            }
            if let Some(from) = from {
                // Appended: Docker's chains (and the host's) see their traffic first, and ours
                // only decide what they left alone.
                let jump = format!("-A {from} -j {name}");
                if !saved.has_line(&jump) {
                    out.push_str(&jump);
                    out.push('\n');
                }
            }
        }
    }

    /// Replaces the rules of `owner` with `rules` (and creates the chains if missing).
    pub fn replace(&self, owner: &Owner, rules: &[Rule]) -> Result<(), FirewallError> {
        let base = super::rule::base_rules();
        for tools in &self.tools {
            let mut input = String::new();
            for table in TABLES {
                let saved = self.save(tools, table)?;
                let fresh = Chain::ALL
                    .into_iter()
                    .map(place)
                    .any(|(t, name, _)| t == table && !saved.has_chain(name));
                input.push_str(&format!("*{table}\n"));
                Self::skeleton(&saved, table, &mut input);
                if fresh {
                    for r in base.iter().filter(|r| place(r.chain).0 == table) {
                        if let Some(line) = render(r, tools.family) {
                            input.push_str(&line);
                            input.push('\n');
                        }
                    }
                }
                for (line, o) in saved.berth_rules() {
                    if o.as_ref() == Some(owner) {
                        input.push_str(&line.replacen("-A ", "-D ", 1));
                        input.push('\n');
                    }
                }
                for r in rules.iter().filter(|r| place(r.chain).0 == table) {
                    if let Some(line) = render(r, tools.family) {
                        input.push_str(&line);
                        input.push('\n');
                    }
                }
                input.push_str("COMMIT\n");
            }
            self.restore(tools, &input)?;
        }
        Ok(())
    }

    /// Flushes berth's chains and fills them with exactly `rules` (base rules included).
    pub fn sync(&self, rules: &[Rule]) -> Result<(), FirewallError> {
        let base = super::rule::base_rules();
        for tools in &self.tools {
            let mut input = String::new();
            for table in TABLES {
                let saved = self.save(tools, table)?;
                input.push_str(&format!("*{table}\n"));
                Self::skeleton(&saved, table, &mut input);
                for chain in Chain::ALL {
                    let (t, name, _) = place(chain);
                    if t == table && saved.has_chain(name) {
                        input.push_str(&format!("-F {name}\n"));
                    }
                }
                for r in base.iter().chain(rules).filter(|r| place(r.chain).0 == table) {
                    if let Some(line) = render(r, tools.family) {
                        input.push_str(&line);
                        input.push('\n');
                    }
                }
                input.push_str("COMMIT\n");
            }
            self.restore(tools, &input)?;
        }
        Ok(())
    }

    /// Removes berth's chains and the jumps to them.
    pub fn remove_all(&self) -> Result<(), FirewallError> {
        for tools in &self.tools {
            let mut input = String::new();
            for table in TABLES {
                let saved = self.save(tools, table)?;
                input.push_str(&format!("*{table}\n"));
                for chain in Chain::ALL {
                    let (t, name, from) = place(chain);
                    if t != table {
                        continue;
                    }
                    if let Some(from) = from {
                        let jump = format!("-A {from} -j {name}");
                        if saved.has_line(&jump) {
                            input.push_str(&format!("-D {from} -j {name}\n"));
                        }
                    }
                    if saved.has_chain(name) {
                        input.push_str(&format!("-F {name}\n"));
                    }
                }
                for chain in Chain::ALL {
                    let (t, name, _) = place(chain);
                    if t == table && saved.has_chain(name) {
                        input.push_str(&format!("-X {name}\n"));
                    }
                }
                input.push_str("COMMIT\n");
            }
            self.restore(tools, &input)?;
        }
        Ok(())
    }

    /// berth's rules of every family and table (chain name, owner); handles are their positions.
    pub fn list(&self) -> Result<Vec<super::nft::ListedRule>, FirewallError> {
        let mut out = Vec::new();
        for tools in &self.tools {
            for table in TABLES {
                let saved = self.save(tools, table)?;
                for (line, owner) in saved.berth_rules() {
                    let chain = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                    out.push(super::nft::ListedRule {
                        chain,
                        handle: out.len() as u64,
                        owner,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::rule::{network_rules, port_rules};
    use crate::firewall::{NetworkRules, PortMapping, Proto};

    #[test]
    fn rules_render_as_iptables_lines() {
        let p = PortMapping {
            proto: Proto::Tcp,
            host_ip: Some("10.0.0.1".parse().unwrap()),
            host_port: 8080,
            container_ip: "172.18.0.2".parse().unwrap(),
            container_port: 80,
            bridge: "br0".into(),
        };
        let r = &port_rules("c1", &[p])[0];
        assert_eq!(
            render(r, Family::V4).unwrap(),
            "-A BERTH-PORTS -d 10.0.0.1 -p tcp -m tcp --dport 8080 -m comment --comment \"container:c1\" \
             -j DNAT --to-destination 172.18.0.2:80"
        );
        assert_eq!(render(r, Family::V6), None);
        let net = NetworkRules {
            id: "n".into(),
            bridge: "br0".into(),
            subnets: vec!["fd00::/64".parse().unwrap()],
            internal: false,
            masquerade: true,
            icc: true,
        };
        let rules = network_rules(&net);
        let masq = render(&rules[0], Family::V6).unwrap();
        assert_eq!(
            masq,
            "-A BERTH-POSTROUTING -s fd00::/64 ! -o br0 -m comment --comment \"network:n\" -j MASQUERADE"
        );
        assert_eq!(render(&rules[0], Family::V4), None);
    }

    #[test]
    fn saved_comments_are_parsed_quoted_or_not() {
        assert_eq!(
            saved_owner("-A BERTH-PORTS -p tcp -m comment --comment container:c1 -j DNAT"),
            Some(Owner::Container("c1".into()))
        );
        assert_eq!(
            saved_owner("-A BERTH-PORTS -m comment --comment \"network:n 1\" -j DROP"),
            Some(Owner::Network("n 1".into()))
        );
        assert_eq!(saved_owner("-A BERTH-PORTS -j DROP"), None);
    }
}
