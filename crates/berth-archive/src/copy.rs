//! Copying files out of (and resolving paths inside) a container root held as a directory fd: the
//! archive API (`docker cp`) and `docker export`.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to the
//! root fd, so `..` and absolute symlinks stay inside the container whatever the container does to
//! its files meanwhile (the CVE-2018-15664 class). Below the resolved object, the tar writer walks
//! with `openat(O_NOFOLLOW)`, `statat(AT_SYMLINK_NOFOLLOW)` and `readlinkat`, never by path: a
//! directory swapped for a symlink during the walk is archived as the symlink it became.

use crate::error::{io_err, ArchiveError};
use berth_types::IdentityMapping;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// How many symlinks [`link_target_in_root`] follows before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// A container path split the way Docker's archive API reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPath {
    /// Normal components from the root, `..` clamped at the root (Docker joins the path onto `/`).
    pub comps: Vec<OsString>,
    /// The path ends in `/` or `/.`: the last component must be a directory and a symlink there is
    /// followed.
    pub trailing_sep: bool,
    /// The path ends in `/.`: a directory's contents are meant, not the directory itself.
    pub trailing_dot: bool,
}

impl ContainerPath {
    /// Parses a path given to the archive API; relative paths are relative to `/`.
    pub fn parse(path: &str) -> ContainerPath {
        let mut comps: Vec<OsString> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    comps.pop();
                }
                c => comps.push(OsString::from(c)),
            }
        }
        ContainerPath {
            comps,
            trailing_sep: path.ends_with('/') || path.ends_with("/.") || path == ".",
            trailing_dot: path.ends_with("/.") || path == ".",
        }
    }

    /// The absolute, cleaned path (`/` for the root).
    pub fn absolute(&self) -> String {
        let mut s = String::new();
        for c in &self.comps {
            s.push('/');
            s.push_str(&c.to_string_lossy());
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }

    /// The path relative to the root, for `openat2` (`.` for the root).
    fn relative(&self) -> OsString {
        if self.comps.is_empty() {
            return OsString::from(".");
        }
        let mut out = Vec::new();
        for (i, c) in self.comps.iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(c.as_bytes());
        }
        OsString::from_vec(out)
    }

    /// The name Docker gives the copied object: the last component, `.` for the contents of a
    /// directory (`/dir/.`), `/` for the root.
    pub fn base_name(&self) -> String {
        if self.trailing_dot {
            return ".".into();
        }
        match self.comps.last() {
            Some(c) => c.to_string_lossy().into_owned(),
            None => "/".into(),
        }
    }
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Opens `path` inside `root` (`O_PATH`), following a symlink in the last component only when
/// `follow` is set. Intermediate symlinks, `..` and absolute targets are resolved inside `root`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &ContainerPath, follow: bool) -> Result<OwnedFd, io::Error> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    loop {
        match rustix::fs::openat2(root, path.relative(), flags, Mode::empty(), resolve_flags()) {
            // The kernel asks to retry when a rename raced the lookup (RESOLVE_IN_ROOT's safety check).
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Opens the directory at `path` inside `root` for writing into it (`O_RDONLY | O_DIRECTORY`,
/// symlinks followed inside the root).
pub fn open_dir_in_root(root: BorrowedFd<'_>, path: &ContainerPath) -> Result<OwnedFd, io::Error> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    loop {
        match rustix::fs::openat2(root, path.relative(), flags, Mode::empty(), resolve_flags()) {
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Where the symlink at `path` leads inside `root`, as an absolute container path (Docker's
/// `linkTarget` in the path stat): each hop is read with `readlinkat` and joined lexically, `..`
/// clamped at the root, until a non-symlink (or a missing file) is reached.
pub fn link_target_in_root(root: BorrowedFd<'_>, path: &ContainerPath) -> Result<String, io::Error> {
    let mut cur = ContainerPath {
        comps: path.comps.clone(),
        trailing_sep: false,
        trailing_dot: false,
    };
    for _ in 0..MAX_LINKS {
        let fd = match open_in_root(root, &cur, false) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(cur.absolute()),
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            return Ok(cur.absolute());
        }
        let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
        let target = target.to_string_lossy().into_owned();
        let joined = if target.starts_with('/') {
            target
        } else {
            let mut parent = cur.absolute();
            if let Some(i) = parent.rfind('/') {
                parent.truncate(i);
            }
            format!("{parent}/{target}")
        };
        cur = ContainerPath::parse(&joined);
        cur.trailing_sep = false;
        cur.trailing_dot = false;
    }
    Err(io::Error::from(rustix::io::Errno::LOOP))
}

/// `path` with every symlink along it resolved inside `root` (Docker's `ResolveScopedPath`): each
/// component in turn, a symlink's target joined onto the part resolved so far (an absolute target
/// starts again at the root, `..` stops at the root). The part that does not exist is kept as
/// written.
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &ContainerPath) -> Result<String, io::Error> {
    let mut pending: std::collections::VecDeque<OsString> = path.comps.iter().cloned().collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0;
    let mut missing = false;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if c.is_empty() || c == "." {
            continue;
        }
        if missing {
            resolved.push(c);
            continue;
        }
        let mut candidate = resolved.clone();
        candidate.push(c.clone());
        let cp = ContainerPath {
            comps: candidate,
            trailing_sep: false,
            trailing_dot: false,
        };
        let fd = match open_in_root(root, &cp, false) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc_enotdir()) => {
                missing = true;
                resolved.push(c);
                continue;
            }
            Err(e) => return Err(e),
        };
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::Symlink {
            resolved.push(c);
            continue;
        }
        hops += 1;
        if hops > MAX_LINKS {
            return Err(io::Error::from(rustix::io::Errno::LOOP));
        }
        let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
        let target = target.as_bytes();
        if target.starts_with(b"/") {
            resolved.clear();
        }
        for comp in target.split(|b| *b == b'/').rev() {
            pending.push_front(OsString::from_vec(comp.to_vec()));
        }
    }
    Ok(ContainerPath {
        comps: resolved,
        trailing_sep: false,
        trailing_dot: false,
    }
    .absolute())
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}

/// Options of [`tar_at`].
#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// `--userns-remap`: owners on disk are host ids; the archive gets container ids (an id outside
    /// the mapping becomes 65534, the kernel's overflow id).
    pub id_map: Option<IdentityMapping>,
    /// Do not descend into directories on another device than the top object (mount points such as
    /// `/proc` or volumes in a running container's root): `docker export` leaves them out.
    pub one_file_system: bool,
}

struct FdTar<W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), String>,
    dev: u64,
    opts: TarOptions,
}

fn header_for(st: &rustix::fs::Stat, kind: tar::EntryType, map: Option<&IdentityMapping>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    let (uid, gid) = match map {
        Some(m) => m.to_container(st.st_uid, st.st_gid).unwrap_or((65534, 65534)),
        None => (st.st_uid, st.st_gid),
    };
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// Is `dir` on a kernel pseudo filesystem (`/proc`, `/sys`, cgroups, ...)? Seen through a
/// running container's root they are mount points whose files are not the container's: their
/// entries are archived, not their contents (dockerd never sees them, it reads the rootfs).
fn is_pseudo_fs(dir: &OwnedFd) -> bool {
    const PSEUDO: &[i64] = &[
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x0027_e0eb, // cgroup
        0x6367_7270, // cgroup2
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x6462_6720, // debugfs
        0x7363_6673, // securityfs
        0x7472_6163, // tracefs
        0xcafe_4a11, // bpf
        0x6165_676c, // pstore
    ];
    // `f_type` is i64 here but narrower on other architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::fstatfs(dir).is_ok_and(|s| PSEUDO.contains(&(s.f_type as i64)))
}

/// Writes one GNU long-name (`L`) or long-link (`K`) entry carrying `value`.
fn long_entry<W: Write>(b: &mut tar::Builder<W>, kind: tar::EntryType, value: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    let magic = b"././@LongLink";
    if let Some(g) = h.as_gnu_mut() {
        g.name[..magic.len()].copy_from_slice(magic);
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    let mut data = value.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..])
}

impl<W: Write> FdTar<W> {
    /// Appends an entry with `name` (and `link`, the target of a symlink or hard link) written
    /// byte for byte: the tar crate drops a leading `./`, which the docker CLI needs to rename the
    /// contents of `dir/.` (it replaces the first `.` of each name with the destination's name).
    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &str,
        link: Option<&[u8]>,
        data: impl Read,
    ) -> Result<(), ArchiveError> {
        let werr = Self::werr(name);
        let raw = name.as_bytes();
        let res = (|| -> io::Result<()> {
            let old = h.as_old_mut();
            if raw.len() > old.name.len() {
                long_entry(&mut self.builder, tar::EntryType::GNULongName, raw)?;
            }
            let n = raw.len().min(h.as_old().name.len());
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..n].copy_from_slice(&raw[..n]);
            if let Some(l) = link {
                if l.len() > old.linkname.len() {
                    long_entry(&mut self.builder, tar::EntryType::GNULongLink, l)?;
                }
                let old = h.as_old_mut();
                let n = l.len().min(old.linkname.len());
                old.linkname = [0; 100];
                old.linkname[..n].copy_from_slice(&l[..n]);
            }
            h.set_cksum();
            self.builder.append(h, data)
        })();
        res.map_err(werr)
    }

    fn werr(name: &str) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
        move |source| ArchiveError::Write {
            entry: name.to_string(),
            source,
        }
    }

    /// Archives the object `fd` (opened `O_PATH | O_NOFOLLOW`, so a symlink is the link itself) as
    /// `name` (empty: the root of an export, whose own entry is left out).
    fn object(&mut self, fd: OwnedFd, name: &str) -> Result<(), ArchiveError> {
        let st = rustix::fs::fstat(&fd).map_err(io_err("stat", name))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let dir = rustix::fs::openat(
                    &fd,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open directory", name))?;
                self.directory(dir, &st, name)
            }
            FileType::RegularFile => {
                // Reopen for reading through our own fd table (not a container path): the object
                // stays the one resolved.
                let file = rustix::fs::open(
                    format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
                    Mode::empty(),
                )
                .map_err(io_err("open", name))?;
                self.file(file, name)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(io_err("read symlink", name))?;
                self.symlink(&st, name, target.as_bytes())
            }
            _ => self.special(&st, name),
        }
    }

    fn file(&mut self, fd: OwnedFd, name: &str) -> Result<(), ArchiveError> {
        let st = rustix::fs::fstat(&fd).map_err(io_err("stat", name))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return self.special(&st, name);
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = header_for(&st, tar::EntryType::Link, self.opts.id_map.as_ref());
                return self.append(&mut h, name, Some(first.as_bytes()), io::empty());
            }
            self.links.insert(key, name.to_string());
        }
        let size = st.st_size.max(0) as u64;
        let mut h = header_for(&st, tar::EntryType::Regular, self.opts.id_map.as_ref());
        h.set_size(size);
        let mut file = std::fs::File::from(fd);
        // A file that shrinks while it is read is padded, one that grows is cut: the header is
        // already written and the archive must stay well formed.
        let reader = (&mut file).take(size).chain(io::repeat(0)).take(size);
        self.append(&mut h, name, None, reader)
    }

    fn symlink(&mut self, st: &rustix::fs::Stat, name: &str, target: &[u8]) -> Result<(), ArchiveError> {
        let mut h = header_for(st, tar::EntryType::Symlink, self.opts.id_map.as_ref());
        self.append(&mut h, name, Some(target), io::empty())
    }

    fn special(&mut self, st: &rustix::fs::Stat, name: &str) -> Result<(), ArchiveError> {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::CharacterDevice => tar::EntryType::Char,
            FileType::BlockDevice => tar::EntryType::Block,
            FileType::Fifo => tar::EntryType::Fifo,
            // Sockets cannot be archived; Docker skips them too.
            _ => return Ok(()),
        };
        let mut h = header_for(st, kind, self.opts.id_map.as_ref());
        h.set_device_major(rustix::fs::major(st.st_rdev))
            .map_err(Self::werr(name))?;
        h.set_device_minor(rustix::fs::minor(st.st_rdev))
            .map_err(Self::werr(name))?;
        self.append(&mut h, name, None, io::empty())
    }

    fn directory(&mut self, dir: OwnedFd, st: &rustix::fs::Stat, name: &str) -> Result<(), ArchiveError> {
        if !name.is_empty() {
            let mut h = header_for(st, tar::EntryType::Directory, self.opts.id_map.as_ref());
            self.append(&mut h, &format!("{}/", name.trim_end_matches('/')), None, io::empty())?;
            if st.st_dev != self.dev && (self.opts.one_file_system || is_pseudo_fs(&dir)) {
                return Ok(());
            }
        }
        let mut names: Vec<OsString> = Vec::new();
        {
            let mut d = rustix::fs::Dir::read_from(&dir).map_err(io_err("read directory", name))?;
            while let Some(ent) = d.read() {
                let ent = ent.map_err(io_err("read directory", name))?;
                let n = ent.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(OsString::from_vec(n.to_vec()));
                }
            }
        }
        names.sort();
        for n in names {
            let child = if name.is_empty() {
                n.to_string_lossy().into_owned()
            } else {
                format!("{}/{}", name.trim_end_matches('/'), n.to_string_lossy())
            };
            self.child(dir.as_fd(), &n, &child)?;
        }
        Ok(())
    }

    fn child(&mut self, dir: BorrowedFd<'_>, n: &OsStr, name: &str) -> Result<(), ArchiveError> {
        let st = match rustix::fs::statat(dir, n, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed while we walk: nothing to archive.
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_err("stat", name)(e)),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                match rustix::fs::openat(dir, n, flags, Mode::empty()) {
                    Ok(fd) => {
                        let st = rustix::fs::fstat(&fd).map_err(io_err("stat", name))?;
                        self.directory(fd, &st, name)
                    }
                    // Swapped for a symlink or a file meanwhile: archive what is there now.
                    Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::NOTDIR) => self.again(dir, n, name),
                    Err(rustix::io::Errno::NOENT) => Ok(()),
                    Err(e) => Err(io_err("open directory", name)(e)),
                }
            }
            FileType::RegularFile => {
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
                match rustix::fs::openat(dir, n, flags, Mode::empty()) {
                    Ok(fd) => self.file(fd, name),
                    Err(rustix::io::Errno::LOOP) => self.again(dir, n, name),
                    Err(rustix::io::Errno::NOENT) => Ok(()),
                    Err(e) => Err(io_err("open", name)(e)),
                }
            }
            FileType::Symlink => match rustix::fs::readlinkat(dir, n, Vec::new()) {
                Ok(t) => self.symlink(&st, name, t.as_bytes()),
                Err(rustix::io::Errno::INVAL) => self.again(dir, n, name),
                Err(rustix::io::Errno::NOENT) => Ok(()),
                Err(e) => Err(io_err("read symlink", name)(e)),
            },
            _ => self.special(&st, name),
        }
    }

    /// The entry changed type between `statat` and opening it: archive it from an `O_PATH` fd.
    fn again(&mut self, dir: BorrowedFd<'_>, n: &OsStr, name: &str) -> Result<(), ArchiveError> {
        match rustix::fs::openat(dir, n, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => self.object(fd, name),
            Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err("open", name)(e)),
        }
    }
}

/// Writes the object `fd` (an `O_PATH` fd from [`open_in_root`]) and, for a directory, everything
/// below it as a tar named `name` (`name/child`, ...). An empty `name` archives a directory's
/// contents without an entry for the directory itself (`docker export`).
pub fn tar_at(fd: OwnedFd, name: &str, writer: impl Write, opts: TarOptions) -> Result<(), ArchiveError> {
    let st = rustix::fs::fstat(&fd).map_err(io_err("stat", name))?;
    let mut t = FdTar {
        builder: tar::Builder::new(writer),
        links: HashMap::new(),
        dev: st.st_dev,
        opts: TarOptions {
            id_map: opts.id_map.filter(|m| !m.is_empty()),
            ..opts
        },
    };
    t.builder.follow_symlinks(false);
    t.object(fd, name)?;
    let werr = |source| ArchiveError::Write {
        entry: "end of archive".into(),
        source,
    };
    // Flushed here, not on drop: a buffered writer would lose the error of its last write.
    let mut w = t.builder.into_inner().map_err(werr)?;
    w.flush().map_err(werr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check_archive, unpack_at, UnpackOptions};

    fn root(dir: &std::path::Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn parses_paths_as_docker() {
        for (p, abs, base, sep, dot) in [
            ("/a/b", "/a/b", "b", false, false),
            ("/a/b/", "/a/b", "b", true, false),
            ("/a/b/.", "/a/b", ".", true, true),
            ("a/../../b", "/b", "b", false, false),
            ("/", "/", "/", true, false),
            ("", "/", "/", false, false),
        ] {
            let cp = ContainerPath::parse(p);
            assert_eq!(cp.absolute(), abs, "{p}");
            assert_eq!(cp.base_name(), base, "{p}");
            assert_eq!((cp.trailing_sep, cp.trailing_dot), (sep, dot), "{p}");
        }
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        let outside = host.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "host").unwrap();
        let r = host.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/marker"), "inside").unwrap();
        std::os::unix::fs::symlink("/", r.join("to-root")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("etc/up")).unwrap();
        std::os::unix::fs::symlink(&outside, r.join("to-host")).unwrap();
        std::os::unix::fs::symlink("../outside/secret", r.join("rel-out")).unwrap();
        let fd = root(&r);
        let open = |p: &str, follow: bool| open_in_root(fd.as_fd(), &ContainerPath::parse(p), follow);
        assert!(open("/to-root/etc/marker", true).is_ok());
        assert!(open("/etc/up/etc/marker", true).is_ok());
        assert!(open("/to-host/secret", true).is_err());
        assert!(open("/rel-out", true).is_err());
        assert!(open("/../../outside/secret", true).is_err());
        // Where the links lead, inside the container.
        let target = |p: &str| link_target_in_root(fd.as_fd(), &ContainerPath::parse(p)).unwrap();
        assert_eq!(target("/to-root"), "/");
        assert_eq!(target("/etc/up"), "/");
        assert_eq!(target("/to-host"), outside.display().to_string());
        assert_eq!(target("/rel-out"), "/outside/secret");
        // Whole paths resolved component by component, the missing rest kept.
        std::os::unix::fs::symlink("/etc", r.join("app")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        let resolve = |p: &str| resolve_in_root(fd.as_fd(), &ContainerPath::parse(p));
        assert_eq!(resolve("/app/new/file").unwrap(), "/etc/new/file");
        assert_eq!(resolve("/etc/up/app").unwrap(), "/etc");
        assert_eq!(resolve("/to-root/to-root/etc/marker").unwrap(), "/etc/marker");
        assert_eq!(
            resolve("/to-host/secret").unwrap(),
            format!("{}/secret", outside.display())
        );
        assert_eq!(resolve("/etc/marker/below").unwrap(), "/etc/marker/below");
        assert!(resolve("/loop/x").is_err());
    }

    #[test]
    fn tar_at_names_entries_and_round_trips() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("d/sub")).unwrap();
        std::fs::write(src.path().join("d/sub/f"), "data").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("d/l")).unwrap();
        let fd = open_in_root(root(src.path()).as_fd(), &ContainerPath::parse("/d"), false).unwrap();
        let mut tar = Vec::new();
        tar_at(fd, "renamed", &mut tar, TarOptions::default()).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["renamed/", "renamed/l", "renamed/sub/", "renamed/sub/f"]);
        assert_eq!(check_archive(&tar[..]).unwrap(), 4);
        let dst = tempfile::tempdir().unwrap();
        let opts = UnpackOptions {
            whiteouts: false,
            preserve_owners: false,
            rebase: Some(("renamed".into(), "again".into())),
            ..UnpackOptions::default()
        };
        let dfd = rustix::fs::open(dst.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        unpack_at(&tar[..], dfd, "dst", &opts).unwrap();
        assert_eq!(std::fs::read_to_string(dst.path().join("again/sub/f")).unwrap(), "data");
        assert_eq!(
            std::fs::read_link(dst.path().join("again/l")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        // noOverwriteDirNonDir: the directory `again/sub` may not become a file.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "again/sub", &b"x"[..]).unwrap();
        let file_tar = b.into_inner().unwrap();
        let opts = UnpackOptions {
            whiteouts: false,
            preserve_owners: false,
            no_overwrite_dir_non_dir: true,
            ..UnpackOptions::default()
        };
        let dfd = rustix::fs::open(dst.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let e = unpack_at(&file_tar[..], dfd, "dst", &opts).unwrap_err();
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        assert!(dst.path().join("again/sub/f").exists());
    }

    #[test]
    fn check_archive_refuses_escapes() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let e = check_archive(&tar[..]).unwrap_err();
        assert!(e.to_string().contains("../escape"), "{e}");
    }
}
