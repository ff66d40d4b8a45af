//! The reverse of unpacking: an overlay upper dir written as a layer tar (overlay whiteouts become
//! `.wh.` entries, opaque directories a `.wh..wh..opq` member, hard links kept, owners shifted back
//! under `--userns-remap`).

use crate::error::ArchiveError;
use crate::{OPAQUE_WHITEOUT, OPAQUE_XATTR, WHITEOUT_PREFIX};
use berth_types::IdentityMapping;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

pub(crate) fn lgetxattr_vec(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

fn xattrs_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else { continue };
        // Overlay's own bookkeeping never goes into a layer (opaque dirs become `.wh..wh..opq`).
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(v) = lgetxattr_vec(path, name) {
            out.push((name.to_string(), v));
        }
    }
    out
}

struct LayerWriter<'m, W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), String>,
    id_map: Option<&'m IdentityMapping>,
    /// Paths (relative, no leading `/`) left out with everything below them.
    exclude: &'m [&'m str],
    /// No member's mtime later than this (`SOURCE_DATE_EPOCH`: reproducible layers).
    clamp_mtime: Option<u64>,
}

impl<W: Write> LayerWriter<'_, W> {
    fn mtime(&self, md: &std::fs::Metadata) -> u64 {
        let t = md.mtime().max(0) as u64;
        self.clamp_mtime.map_or(t, |c| t.min(c))
    }

    fn header(&self, md: &std::fs::Metadata, kind: tar::EntryType, name: &str) -> Result<tar::Header, ArchiveError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(md.mode() & 0o7777);
        let (uid, gid) = match self.id_map {
            Some(m) => m
                .to_container(md.uid(), md.gid())
                .map_err(|source| ArchiveError::IdMap {
                    entry: name.to_string(),
                    source,
                })?,
            None => (md.uid(), md.gid()),
        };
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(self.mtime(md));
        h.set_size(0);
        Ok(h)
    }

    /// A whiteout's header: the kernel creates overlay whiteouts with the mounter's (host) ids, which
    /// moby leaves unmapped; a remapped layer records them as root.
    fn whiteout_header(&self, md: &std::fs::Metadata) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        let (uid, gid) = match self.id_map {
            Some(m) => m.to_container(md.uid(), md.gid()).unwrap_or((0, 0)),
            None => (md.uid(), md.gid()),
        };
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(self.mtime(md));
        h.set_size(0);
        h
    }

    fn write_xattrs(&mut self, path: &Path, name: &str) -> Result<(), ArchiveError> {
        let xs = xattrs_of(path);
        if xs.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, Vec<u8>)> = xs.into_iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v)).collect();
        self.builder
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(|source| ArchiveError::Write {
                entry: name.to_string(),
                source,
            })
    }

    fn walk(&mut self, dir: &Path, rel: &str) -> Result<(), ArchiveError> {
        let rd = std::fs::read_dir(dir).map_err(|source| ArchiveError::Io {
            op: "read directory",
            entry: rel.into(),
            source,
        })?;
        let mut names: Vec<OsString> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|source| ArchiveError::Io {
                op: "read directory",
                entry: rel.into(),
                source,
            })?;
            names.push(ent.file_name());
        }
        names.sort();
        for n in names {
            let path = dir.join(&n);
            let name = format!("{rel}{}", n.to_string_lossy());
            if self.exclude.contains(&name.as_str()) {
                continue;
            }
            let werr = |source: io::Error| ArchiveError::Write {
                entry: name.clone(),
                source,
            };
            let md = std::fs::symlink_metadata(&path).map_err(|source| ArchiveError::Io {
                op: "stat",
                entry: name.clone(),
                source,
            })?;
            let ft = md.file_type();
            if ft.is_char_device() && md.rdev() == 0 {
                // Overlay whiteout -> `.wh.<name>` (OCI image spec, layer.md "Whiteouts").
                let wh = format!("{rel}{WHITEOUT_PREFIX}{}", n.to_string_lossy());
                let mut h = self.whiteout_header(&md);
                self.builder.append_data(&mut h, &wh, io::empty()).map_err(werr)?;
            } else if ft.is_dir() {
                let mut h = self.header(&md, tar::EntryType::Directory, &name)?;
                self.write_xattrs(&path, &name)?;
                self.builder
                    .append_data(&mut h, format!("{name}/"), io::empty())
                    .map_err(werr)?;
                if lgetxattr_vec(&path, OPAQUE_XATTR).as_deref() == Some(b"y") {
                    let mut oh = self.whiteout_header(&md);
                    self.builder
                        .append_data(&mut oh, format!("{name}/{OPAQUE_WHITEOUT}"), io::empty())
                        .map_err(werr)?;
                }
                self.walk(&path, &format!("{name}/"))?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|source| ArchiveError::Io {
                    op: "read symlink",
                    entry: name.clone(),
                    source,
                })?;
                let mut h = self.header(&md, tar::EntryType::Symlink, &name)?;
                self.builder.append_link(&mut h, &name, &target).map_err(werr)?;
            } else if ft.is_file() {
                if md.nlink() > 1 {
                    if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                        let mut h = self.header(&md, tar::EntryType::Link, &name)?;
                        let first = first.clone();
                        self.builder.append_link(&mut h, &name, &first).map_err(werr)?;
                        continue;
                    }
                    self.links.insert((md.dev(), md.ino()), name.clone());
                }
                let f = std::fs::File::open(&path).map_err(|source| ArchiveError::Io {
                    op: "open",
                    entry: name.clone(),
                    source,
                })?;
                let mut h = self.header(&md, tar::EntryType::Regular, &name)?;
                h.set_size(md.len());
                self.write_xattrs(&path, &name)?;
                self.builder
                    .append_data(&mut h, &name, f.take(md.len()))
                    .map_err(werr)?;
            } else {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else {
                    // Sockets cannot be archived; Docker skips them too.
                    continue;
                };
                let mut h = self.header(&md, kind, &name)?;
                let dev = md.rdev();
                h.set_device_major(rustix::fs::major(dev)).map_err(werr)?;
                h.set_device_minor(rustix::fs::minor(dev)).map_err(werr)?;
                self.builder.append_data(&mut h, &name, io::empty()).map_err(werr)?;
            }
        }
        Ok(())
    }
}

/// Writes the contents of an overlay upper dir as a layer tar: overlay whiteouts (char 0/0) become
/// `.wh.<name>`, opaque directories get a `.wh..wh..opq` member, hard links are kept.
pub fn layer_from_dir(upper: &Path, writer: impl Write) -> Result<(), ArchiveError> {
    layer_from_dir_idmap(upper, writer, None)
}

/// [`layer_from_dir`] for a `--userns-remap` daemon: owners are shifted back from host to container ids
/// (moby's `TarOptions.IDMap`); a file whose owner is outside the mapping is an error naming it.
pub fn layer_from_dir_idmap(
    upper: &Path,
    writer: impl Write,
    id_map: Option<&IdentityMapping>,
) -> Result<(), ArchiveError> {
    layer_from_dir_excluding(upper, writer, id_map, &[])
}

/// [`layer_from_dir_idmap`] leaving out `exclude` (paths relative to `upper`, such as `etc/hosts`)
/// and everything below them: `docker commit` leaves out the mount points the runtime made.
pub fn layer_from_dir_excluding(
    upper: &Path,
    writer: impl Write,
    id_map: Option<&IdentityMapping>,
    exclude: &[&str],
) -> Result<(), ArchiveError> {
    layer_from_dir_clamped(upper, writer, id_map, exclude, None)
}

/// [`layer_from_dir_excluding`] with no member's mtime later than `clamp_mtime` (a build with
/// `SOURCE_DATE_EPOCH`: the same files give the same layer whenever they were written).
pub fn layer_from_dir_clamped(
    upper: &Path,
    writer: impl Write,
    id_map: Option<&IdentityMapping>,
    exclude: &[&str],
    clamp_mtime: Option<u64>,
) -> Result<(), ArchiveError> {
    let mut lw = LayerWriter {
        builder: tar::Builder::new(writer),
        links: HashMap::new(),
        id_map: id_map.filter(|m| !m.is_empty()),
        exclude,
        clamp_mtime,
    };
    lw.builder.follow_symlinks(false);
    lw.walk(upper, "")?;
    lw.builder.into_inner().map_err(|source| ArchiveError::Write {
        entry: "end of archive".into(),
        source,
    })?;
    Ok(())
}
