//! A minimal busybox root filesystem on disk.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// The static busybox binary on this machine (Debian's `busybox-static` installs `/bin/busybox`).
pub fn busybox_path() -> Result<PathBuf> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(p);
        if p.exists() {
            return Ok(p.to_path_buf());
        }
    }
    bail!("busybox not found: install Debian's busybox-static (apt-get install busybox-static)")
}

/// The applets the fixture links (a small, stable set keeps fixtures fast to build).
pub const APPLETS: &[&str] = &[
    "sh",
    "ls",
    "cat",
    "echo",
    "true",
    "false",
    "sleep",
    "id",
    "hostname",
    "env",
    "ps",
    "mount",
    "grep",
    "head",
    "tail",
    "wc",
    "touch",
    "mkdir",
    "rm",
    "test",
    "[",
    "printf",
    "pwd",
    "whoami",
    "yes",
    "kill",
    "uname",
    "stat",
    "readlink",
    "dd",
    "nproc",
    "seq",
    "date",
    "chmod",
    "chown",
    "ln",
    "cp",
    "mv",
    "find",
    "awk",
    "sed",
    "ulimit",
    "top",
    "free",
    "df",
    "tr",
    "cut",
    "sort",
    "uniq",
    "timeout",
    "nc",
    "wget",
    "ip",
    "ifconfig",
    "xargs",
    "tee",
    "basename",
    "dirname",
    "nslookup",
    "httpd",
    "ping",
    "su",
    "stty",
    "tty",
    "reset",
    "clear",
    "vi",
    "less",
    "more",
    "od",
    "hexdump",
    "md5sum",
    "sha256sum",
    "tar",
    "gzip",
    "gunzip",
    "init",
    "umount",
    "dmesg",
    "mknod",
    "chroot",
];

/// Writes a busybox root filesystem into `dir`: `/bin/busybox` with applet links, `/etc/passwd`,
/// `/etc/group`, and the usual empty directories.
pub fn busybox_rootfs(dir: &Path) -> Result<()> {
    let bb = busybox_path()?;
    for d in [
        "bin", "etc", "tmp", "root", "home/app", "proc", "sys", "dev", "var/tmp", "usr/bin",
    ] {
        std::fs::create_dir_all(dir.join(d)).with_context(|| format!("creating {d} in {}", dir.display()))?;
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::copy(&bb, dir.join("bin/busybox")).context("copying busybox")?;
    for a in APPLETS {
        let link = dir.join("bin").join(a);
        if !link.exists() {
            symlink("busybox", &link).with_context(|| format!("linking {a}"))?;
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n",
    )?;
    std::fs::write(dir.join("etc/hostname"), "busybox\n")?;
    Ok(())
}
