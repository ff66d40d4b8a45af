//! The host side of `dockerd --userns-remap`: reading the user databases, creating the `dockremap` user
//! and its subordinate ranges (`useradd --system`, `usermod --add-subuids`), and the remapped data root
//! `<data-root>/<uid>.<gid>` a remapped daemon keeps its images, snapshots and containers in.
//!
//! The daemon calls [`load_userns_remap`] with the flag's value, then [`prepare_remapped_root`], and
//! opens everything below the returned directory with
//! `Snapshotter::open_with_idmap(&root.join("snapshots"), Some(map))` and `ImageStore::open(&root.join("image"), ..)`.

use berth_types::userns::{
    next_subid_start, parse_subid_file, resolve_userns_remap, subid_ranges_for, RemapFiles, RemapUser,
    DEFAULT_REMAP_USER, DEFAULT_SUBID_COUNT,
};
use berth_types::{ErrorKind, HasErrorKind, IdentityMapping, UsernsError};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Errors setting up user-namespace remapping on the host.
#[derive(Debug, thiserror::Error)]
pub enum UsernsSetupError {
    /// The `--userns-remap` value or the subordinate id files are wrong.
    #[error("cannot set up --userns-remap: {0}")]
    Resolve(#[from] UsernsError),
    /// Reading a user database failed.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `useradd` / `usermod` failed or could not be run.
    #[error("failed to create the remap user {user:?}: {command} failed: {message}")]
    CreateUser {
        /// The user being set up.
        user: String,
        /// The command line run.
        command: String,
        /// Its stderr, or why it could not run.
        message: String,
    },
    /// Creating or chowning the remapped data root failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl HasErrorKind for UsernsSetupError {
    fn kind(&self) -> ErrorKind {
        match self {
            UsernsSetupError::Resolve(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }
}

type Result<T, E = UsernsSetupError> = std::result::Result<T, E>;

/// The contents of `/etc/{passwd,group,subuid,subgid}` below `prefix` (a missing subid file is empty).
struct EtcFiles {
    passwd: String,
    group: String,
    subuid: String,
    subgid: String,
}

impl EtcFiles {
    fn read(prefix: &Path) -> Result<EtcFiles> {
        let read = |name: &str, optional: bool| -> Result<String> {
            let path = prefix.join("etc").join(name);
            match std::fs::read(&path) {
                Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
                Err(e) if optional && e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
                Err(source) => Err(UsernsSetupError::Read { path, source }),
            }
        };
        Ok(EtcFiles {
            passwd: read("passwd", false)?,
            group: read("group", false)?,
            subuid: read("subuid", true)?,
            subgid: read("subgid", true)?,
        })
    }

    fn remap_files(&self) -> RemapFiles<'_> {
        RemapFiles {
            passwd: &self.passwd,
            group: &self.group,
            subuid: &self.subuid,
            subgid: &self.subgid,
        }
    }
}

/// Resolves a `--userns-remap` value against the host's `/etc` files. For `default`, the `dockremap`
/// user and its `100000:65536`-style ranges are created first when missing, as dockerd does.
/// `Ok(None)`: remapping is off (empty value or `root`).
pub fn load_userns_remap(spec: &str) -> Result<Option<(RemapUser, IdentityMapping)>> {
    load_userns_remap_at(Path::new("/"), spec)
}

/// [`load_userns_remap`] with the user databases below `prefix` (`/` on a real host; a directory
/// holding an `etc/` in tests). `useradd`/`usermod` get `--prefix` when it is not `/`.
pub fn load_userns_remap_at(prefix: &Path, spec: &str) -> Result<Option<(RemapUser, IdentityMapping)>> {
    if spec.trim() == "default" {
        ensure_remap_user_at(prefix, DEFAULT_REMAP_USER)?;
    }
    let files = EtcFiles::read(prefix)?;
    Ok(resolve_userns_remap(spec, &files.remap_files())?)
}

/// Creates `name` as a system user with its own group (`useradd --system --user-group`) unless it
/// exists, and gives it subordinate uid and gid ranges of 65536 ids (`usermod --add-subuids/--add-subgids`,
/// at the first free start at or above 100000) unless it has some. Needs root.
pub fn ensure_remap_user(name: &str) -> Result<()> {
    ensure_remap_user_at(Path::new("/"), name)
}

/// [`ensure_remap_user`] on the user databases below `prefix`.
pub fn ensure_remap_user_at(prefix: &Path, name: &str) -> Result<()> {
    let files = EtcFiles::read(prefix)?;
    let uid = files.passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name)).then(|| f.nth(1).and_then(|u| u.trim().parse::<u32>().ok()))?
    });
    let uid = match uid {
        Some(u) => u,
        None => {
            run(
                prefix,
                "useradd",
                &[
                    "--system",
                    "--shell",
                    "/bin/false",
                    "--no-create-home",
                    "--user-group",
                    name,
                ],
                name,
            )?;
            let files = EtcFiles::read(prefix)?;
            files
                .passwd
                .lines()
                .find_map(|l| {
                    let mut f = l.split(':');
                    (f.next() == Some(name)).then(|| f.nth(1).and_then(|u| u.trim().parse::<u32>().ok()))?
                })
                .ok_or_else(|| UsernsSetupError::CreateUser {
                    user: name.to_string(),
                    command: "useradd".into(),
                    message: "the user is still missing from /etc/passwd".into(),
                })?
        }
    };
    let files = EtcFiles::read(prefix)?;
    let mut args: Vec<String> = Vec::new();
    for (content, file, flag) in [
        (&files.subuid, "/etc/subuid", "--add-subuids"),
        (&files.subgid, "/etc/subgid", "--add-subgids"),
    ] {
        let entries = parse_subid_file(content, file)?;
        if subid_ranges_for(&entries, name, uid).is_empty() {
            let start = next_subid_start(&entries, DEFAULT_SUBID_COUNT)?;
            args.push(flag.into());
            args.push(format!("{start}-{}", start + (DEFAULT_SUBID_COUNT - 1)));
        }
    }
    if !args.is_empty() {
        args.push(name.to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(prefix, "usermod", &refs, name)?;
    }
    Ok(())
}

fn run(prefix: &Path, program: &str, args: &[&str], user: &str) -> Result<()> {
    let mut cmd = Command::new(program);
    if prefix != Path::new("/") {
        cmd.arg("--prefix").arg(prefix);
    }
    cmd.args(args);
    let command = format!("{program} {}", args.join(" "));
    let fail = |message: String| UsernsSetupError::CreateUser {
        user: user.to_string(),
        command: command.clone(),
        message,
    };
    let out = cmd.output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(fail(if stderr.is_empty() {
            out.status.to_string()
        } else {
            stderr
        }));
    }
    Ok(())
}

/// Creates `<data-root>/<uid>.<gid>` for a remapped daemon as dockerd does: the data root itself
/// `0711` (traversable, not listable), the remapped root `0710` owned by `root:<remapped root gid>`.
/// Returns it: the daemon's effective data root (`image/`, `snapshots/`, `containers/` live below it).
pub fn prepare_remapped_root(data_root: &Path, id_map: &IdentityMapping) -> Result<PathBuf> {
    let (_, gid) = id_map.root_pair()?;
    let dir = id_map.remapped_root(data_root)?;
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| UsernsSetupError::Io { op, path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    std::fs::set_permissions(data_root, std::fs::Permissions::from_mode(0o711))
        .map_err(io_err("set permissions of", data_root))?;
    std::os::unix::fs::chown(&dir, Some(0), Some(gid)).map_err(io_err("set owner of", &dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710))
        .map_err(io_err("set permissions of", &dir))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn etc(dir: &Path, subuid: &str, subgid: &str) {
        let e = dir.join("etc");
        std::fs::create_dir_all(&e).unwrap();
        for (name, content) in [
            (
                "passwd",
                "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
            ),
            ("group", "root:x:0:\nalice:x:1000:\n"),
            ("shadow", "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n"),
            ("gshadow", "root:*::\nalice:!::\n"),
            ("subuid", subuid),
            ("subgid", subgid),
        ] {
            std::fs::write(e.join(name), content).unwrap();
        }
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("berth-userns-test")
            .tempdir_in("/var/tmp")
            .unwrap()
    }

    fn is_root() -> bool {
        // Our own euid, read through /proc (no unsafe code outside the runtime).
        std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
    }

    #[test]
    fn default_creates_dockremap_with_free_ranges() {
        if !is_root() {
            eprintln!("SKIP: useradd --prefix needs root");
            return;
        }
        let d = tmp();
        etc(d.path(), "alice:100000:65536\n", "");
        let (user, map) = load_userns_remap_at(d.path(), "default").unwrap().unwrap();
        assert_eq!(user.user, "dockremap");
        assert_eq!(user.group, "dockremap");
        assert_eq!(map, IdentityMapping::single(165_536, 100_000, 65_536));
        let subuid = std::fs::read_to_string(d.path().join("etc/subuid")).unwrap();
        assert!(subuid.contains("dockremap:165536:65536"), "{subuid}");
        // Idempotent: a second daemon start changes nothing.
        load_userns_remap_at(d.path(), "default").unwrap().unwrap();
        let again = std::fs::read_to_string(d.path().join("etc/subuid")).unwrap();
        assert_eq!(subuid, again);
        // A named user is never created.
        let e = load_userns_remap_at(d.path(), "bob").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot set up --userns-remap: Error during uid lookup for \"bob\": no such user"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            load_userns_remap_at(d.path(), "alice").unwrap_err().to_string(),
            "cannot set up --userns-remap: no subgid ranges found for user \"alice\""
        );
    }

    #[test]
    fn failing_useradd_is_a_clear_error() {
        if !is_root() {
            eprintln!("SKIP: useradd --prefix needs root");
            return;
        }
        let d = tmp();
        etc(d.path(), "", "");
        let e = ensure_remap_user_at(d.path(), "bad name!").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("failed to create the remap user \"bad name!\": useradd --system"),
            "{msg}"
        );
        assert!(msg.contains("invalid user name"), "{msg}");
        let e = load_userns_remap_at(&d.path().join("nothing"), "alice").unwrap_err();
        assert!(e.to_string().starts_with("failed to read "), "{e}");
    }

    #[test]
    fn remapped_root_layout() {
        let d = tmp();
        let map = IdentityMapping::single(100_000, 200_000, 65_536);
        let root = prepare_remapped_root(d.path(), &map).unwrap();
        assert_eq!(root, d.path().join("100000.200000"));
        let md = std::fs::metadata(&root).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o710);
        if is_root() {
            assert_eq!((md.uid(), md.gid()), (0, 200_000));
        }
        assert_eq!(std::fs::metadata(d.path()).unwrap().mode() & 0o7777, 0o711);
    }
}
