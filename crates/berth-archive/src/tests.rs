use super::*;
use crate::layer::lgetxattr_vec;
use berth_types::{Digest, ErrorKind, HasErrorKind, IdentityMapping};
use rustix::fs::{FileType, Mode, XattrFlags};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Builds tars byte by byte so hostile names (`..`, absolute) can be written: the `tar` crate's
/// `set_path` refuses them, so names go straight into the header's name field.
#[derive(Default)]
struct RawTar {
    buf: Vec<u8>,
}

impl RawTar {
    fn entry(mut self, name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>) -> Self {
        self.entry_sized(name, kind, data, link, data.len() as u64);
        self
    }

    fn entry_sized(&mut self, name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>, size: u64) {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    fn file(self, name: &str, data: &str) -> Self {
        self.entry(name, tar::EntryType::Regular, data.as_bytes(), None)
    }
    fn dir(self, name: &str) -> Self {
        self.entry(name, tar::EntryType::Directory, b"", None)
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Symlink, b"", Some(target))
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Link, b"", Some(target))
    }
    fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 1024));
        self.buf
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-archive-test")
        .tempdir_in("/var/tmp")
        .unwrap()
}

#[test]
fn hostile_archives_are_refused() {
    struct Case {
        name: &'static str,
        tar: Vec<u8>,
        want: &'static str,
    }
    let cases = vec![
        Case {
            name: "dotdot",
            tar: RawTar::default().file("../evil", "x").finish(),
            want: "escapes",
        },
        Case {
            name: "nested dotdot",
            tar: RawTar::default().file("a/../../evil", "x").finish(),
            want: "escapes",
        },
        Case {
            name: "absolute",
            tar: RawTar::default().file("/etc/evil", "x").finish(),
            want: "absolute",
        },
        Case {
            name: "write through absolute symlink",
            tar: RawTar::default()
                .symlink("escape", "/tmp")
                .file("escape/evil", "x")
                .finish(),
            want: "symlink",
        },
        Case {
            name: "write through relative symlink",
            tar: RawTar::default()
                .dir("a")
                .symlink("a/up", "../..")
                .file("a/up/evil", "x")
                .finish(),
            want: "symlink",
        },
        Case {
            name: "hardlink outside",
            tar: RawTar::default().hardlink("passwd", "../../etc/passwd").finish(),
            want: "escapes",
        },
        Case {
            name: "hardlink absolute",
            tar: RawTar::default().hardlink("passwd", "/etc/passwd").finish(),
            want: "absolute",
        },
        Case {
            name: "hardlink through symlink",
            tar: RawTar::default()
                .symlink("etc", "/etc")
                .hardlink("passwd", "etc/passwd")
                .finish(),
            want: "symlink",
        },
        Case {
            name: "huge size",
            tar: {
                let mut t = RawTar::default();
                t.entry_sized("big", tar::EntryType::Regular, b"tiny", None, 1 << 40);
                t.buf
            },
            want: "claims",
        },
        Case {
            name: "truncated data",
            tar: {
                let mut t = RawTar::default();
                t.entry_sized("short", tar::EntryType::Regular, &[7u8; 512], None, 4096);
                t.buf
            },
            want: "short",
        },
        Case {
            name: "truncated header",
            tar: {
                let mut t = RawTar::default().file("ok", "fine").finish();
                t.truncate(512 + 512 + 100);
                let mut h = RawTar::default().file("x", "y").finish();
                h.truncate(100);
                t.extend(h);
                t
            },
            want: "",
        },
        Case {
            name: "bad checksum",
            tar: {
                let mut t = RawTar::default().file("ok", "fine").finish();
                t[148] = b'9';
                t[149] = b'9';
                t
            },
            want: "",
        },
    ];
    for c in cases {
        let dir = tmp();
        let outside = dir.path().join("outside");
        let dest = dir.path().join("dest");
        let err = unpack_layer(&c.tar[..], &dest).expect_err(c.name);
        let msg = err.to_string();
        assert!(msg.contains(c.want), "{}: {msg}", c.name);
        assert!(!outside.exists(), "{}", c.name);
        assert!(!Path::new("/tmp/evil").exists(), "{}", c.name);
        assert!(!dir.path().join("evil").exists(), "{}", c.name);
    }
}

#[test]
fn truncated_archive_names_the_entry() {
    let mut t = RawTar::default();
    t.entry_sized("etc/shadow", tar::EntryType::Regular, &[1u8; 512], None, 1 << 20);
    let dir = tmp();
    let err = unpack_layer(&t.buf[..], dir.path()).unwrap_err();
    assert!(matches!(err, ArchiveError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("etc/shadow"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn symlinks_are_created_not_followed() {
    let dir = tmp();
    let tar = RawTar::default()
        .symlink("abs", "/etc/passwd")
        .symlink("rel", "../../../x")
        .file("abs2", "replaced")
        .finish();
    unpack_layer(&tar[..], dir.path()).unwrap();
    assert_eq!(
        std::fs::read_link(dir.path().join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::read_link(dir.path().join("rel")).unwrap(),
        Path::new("../../../x")
    );
    // A regular file over a symlink replaces the link, it does not write through it.
    let tar = RawTar::default()
        .symlink("f", "/tmp/berth-archive-should-not-exist")
        .file("f", "data")
        .finish();
    unpack_layer(&tar[..], dir.path()).unwrap();
    assert!(!Path::new("/tmp/berth-archive-should-not-exist").exists());
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"data");
}

#[test]
fn regular_layer_unpacks_with_metadata() {
    let dir = tmp();
    let tar = RawTar::default()
        .dir("etc/")
        .file("etc/hosts", "127.0.0.1 localhost\n")
        .file("a/../b", "clean")
        .hardlink("etc/hosts2", "etc/hosts")
        .entry("dev-null", tar::EntryType::Char, b"", None)
        .finish();
    let stats = unpack_layer(&tar[..], dir.path()).unwrap();
    assert_eq!(stats.entries, 5);
    assert_eq!(stats.size, 20 + 5);
    let md = std::fs::metadata(dir.path().join("etc/hosts")).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o644);
    assert_eq!(md.mtime(), 1_700_000_000);
    assert_eq!(md.nlink(), 2);
    assert_eq!(
        std::fs::metadata(dir.path().join("etc")).unwrap().mtime(),
        1_700_000_000
    );
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"clean");
    assert!(std::fs::symlink_metadata(dir.path().join("dev-null"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_back() {
    let dir = tmp();
    let dest = dir.path().join("fs");
    let tar = RawTar::default()
        .dir("etc/")
        .file("etc/.wh.motd", "")
        .dir("opt/")
        .file("opt/.wh..wh..opq", "")
        .file("opt/keep", "k")
        .file(".wh..wh.plnk", "")
        .finish();
    unpack_layer(&tar[..], &dest).unwrap();
    let wh = std::fs::symlink_metadata(dest.join("etc/motd")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        lgetxattr_vec(&dest.join("opt"), OPAQUE_XATTR).as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dest.join(".wh..wh.plnk").exists());

    let mut out = Vec::new();
    layer_from_dir(&dest, &mut out).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    for want in ["etc/", "etc/.wh.motd", "opt/", "opt/.wh..wh..opq", "opt/keep"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    // Round trip: unpacking the written layer gives the same tree.
    let again = dir.path().join("again");
    unpack_layer(&out[..], &again).unwrap();
    assert!(std::fs::symlink_metadata(again.join("etc/motd"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(
        lgetxattr_vec(&again.join("opt"), OPAQUE_XATTR).as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(std::fs::read(again.join("opt/keep")).unwrap(), b"k");
}

#[test]
fn plain_unpack_keeps_wh_files() {
    let dir = tmp();
    let tar = RawTar::default().file(".wh.x", "").finish();
    unpack(
        &tar[..],
        dir.path(),
        &UnpackOptions {
            whiteouts: false,
            preserve_owners: true,
            id_map: None,
            no_overwrite_dir_non_dir: false,
            rebase: None,
            chown_to: None,
        },
    )
    .unwrap();
    assert!(std::fs::symlink_metadata(dir.path().join(".wh.x")).unwrap().is_file());
}

#[test]
fn decompress_sniffs() {
    let tar = RawTar::default().file("a", "hello").finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    for input in [tar.clone(), gz] {
        let mut out = Vec::new();
        decompress(&input[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, tar);
    }
    assert!(matches!(
        decompress(&[0xfd, b'7', b'z', b'X', b'Z', 0][..]),
        Err(ArchiveError::UnsupportedCompression("xz"))
    ));
    let (d, n) = DigestReader::new(&tar[..]).finish().unwrap();
    assert_eq!(d, Digest::sha256(&tar));
    assert_eq!(n, tar.len() as u64);
}

#[test]
fn clean_path_table() {
    let ok = [
        ("a/b", vec!["a", "b"]),
        ("./a//b/", vec!["a", "b"]),
        ("a/../b", vec!["b"]),
        ("./", vec![]),
    ];
    for (input, want) in ok {
        let got = clean_path(input.as_bytes()).unwrap();
        let want: Vec<OsString> = want.into_iter().map(OsString::from).collect();
        assert_eq!(got, want, "{input}");
    }
    for bad in ["", "/a", "..", "a/../../b", "../"] {
        assert!(clean_path(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_multi_frame_with_skippable_frame() {
    let tar = RawTar::default()
        .file("a", &"hello ".repeat(10_000))
        .file("b", "world")
        .finish();
    let (first, second) = tar.split_at(3000);
    let mut z = ruzstd::encoding::compress_to_vec(first, ruzstd::encoding::CompressionLevel::Fastest);
    // A skippable frame (magic 0x184D2A50, little endian length) between two data frames.
    z.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
    z.extend(ruzstd::encoding::compress_to_vec(
        second,
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let mut out = Vec::new();
    decompress(&z[..]).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, tar);
    let dir = tmp();
    unpack_layer(decompress(&z[..]).unwrap(), dir.path()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"world");
    let mut truncated = z.clone();
    truncated.truncate(z.len() / 2);
    assert!(decompress(&truncated[..])
        .unwrap()
        .read_to_end(&mut Vec::new())
        .is_err());
}

#[test]
fn later_members_replace_earlier_ones() {
    let dir = tmp();
    let tar = RawTar::default()
        .dir("a/")
        .file("a/inner", "x")
        .file("a", "now a file")
        .symlink("l", "/etc")
        .dir("l/")
        .file("l/inside", "y")
        .finish();
    unpack_layer(&tar[..], dir.path()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"now a file");
    assert!(std::fs::symlink_metadata(dir.path().join("l")).unwrap().is_dir());
    assert_eq!(std::fs::read(dir.path().join("l/inside")).unwrap(), b"y");
    assert!(!Path::new("/etc/inside").exists());
}

#[test]
fn layer_from_dir_round_trips_links_devices_and_xattrs() {
    let dir = tmp();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/file"), "content").unwrap();
    std::fs::hard_link(src.join("d/file"), src.join("hard")).unwrap();
    std::os::unix::fs::symlink("../outside/target", src.join("d/link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rustix::fs::setxattr(src.join("d/file"), "user.note", b"kept", XattrFlags::empty()).unwrap();
    let mut out = Vec::new();
    layer_from_dir(&src, &mut out).unwrap();
    let dst = dir.path().join("dst");
    unpack_layer(&out[..], &dst).unwrap();
    assert_eq!(std::fs::read(dst.join("d/file")).unwrap(), b"content");
    let (a, b) = (
        std::fs::metadata(dst.join("d/file")).unwrap(),
        std::fs::metadata(dst.join("hard")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    assert_eq!(
        std::fs::read_link(dst.join("d/link")).unwrap(),
        Path::new("../outside/target")
    );
    let fifo = std::fs::symlink_metadata(dst.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.permissions().mode() & 0o777, 0o640);
    assert_eq!(
        lgetxattr_vec(&dst.join("d/file"), "user.note").as_deref(),
        Some(&b"kept"[..])
    );
}

/// A tar built with the `tar` crate, each member with its own owner.
fn owned_tar(members: &[(&str, tar::EntryType, u64, u64, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, uid, gid, link) in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(*uid);
        h.set_gid(*gid);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        match link {
            Some(l) => b.append_link(&mut h, name, l).unwrap(),
            None => b.append_data(&mut h, name, io::empty()).unwrap(),
        }
    }
    b.into_inner().unwrap()
}

fn remap() -> IdentityMapping {
    IdentityMapping::single(100_000, 200_000, 65_536)
}

fn owner(p: &Path) -> (u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid())
}

#[test]
fn unpack_with_id_map_shifts_owners() {
    let dir = tmp();
    let dest = dir.path().join("fs");
    use tar::EntryType as T;
    let tar = owned_tar(&[
        ("etc/", T::Directory, 0, 0, None),
        ("etc/passwd", T::Regular, 0, 42, None),
        ("home/alice/", T::Directory, 1000, 1000, None),
        ("home/alice/file", T::Regular, 1000, 1000, None),
        ("home/alice/link", T::Symlink, 1000, 100, Some("file")),
        ("home/alice/hard", T::Link, 7, 7, Some("home/alice/file")),
        ("implied/deep/file", T::Regular, 65_535, 65_535, None),
        ("dev/fifo", T::Fifo, 5, 6, None),
        ("etc/.wh.motd", T::Regular, 3, 4, None),
    ]);
    let opts = UnpackOptions {
        id_map: Some(remap()),
        ..UnpackOptions::default()
    };
    unpack(&tar[..], &dest, &opts).unwrap();
    let cases: &[(&str, (u32, u32))] = &[
        ("", (100_000, 200_000)),
        ("etc", (100_000, 200_000)),
        ("etc/passwd", (100_000, 200_042)),
        ("home", (100_000, 200_000)),
        ("home/alice", (101_000, 201_000)),
        ("home/alice/file", (101_000, 201_000)),
        ("home/alice/link", (101_000, 200_100)),
        ("home/alice/hard", (101_000, 201_000)),
        ("implied", (100_000, 200_000)),
        ("implied/deep", (100_000, 200_000)),
        ("implied/deep/file", (165_535, 265_535)),
        ("dev", (100_000, 200_000)),
        ("dev/fifo", (100_005, 200_006)),
        ("etc/motd", (100_003, 200_004)),
    ];
    for (path, want) in cases {
        assert_eq!(owner(&dest.join(path)), *want, "{path}");
    }
    let wh = std::fs::symlink_metadata(dest.join("etc/motd")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "whiteout");

    // The reverse gives the container's ids back: a normal layer.
    let mut out = Vec::new();
    layer_from_dir_idmap(&dest, &mut out, Some(&remap())).unwrap();
    let mut seen = HashMap::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        seen.insert(
            e.path().unwrap().display().to_string(),
            (h.uid().unwrap(), h.gid().unwrap()),
        );
    }
    let back: &[(&str, (u64, u64))] = &[
        ("etc/", (0, 0)),
        ("etc/passwd", (0, 42)),
        ("etc/.wh.motd", (3, 4)),
        ("home/alice/", (1000, 1000)),
        ("home/alice/link", (1000, 100)),
        ("implied/deep/file", (65_535, 65_535)),
        ("dev/fifo", (5, 6)),
    ];
    for (path, want) in back {
        assert_eq!(seen.get(*path), Some(want), "{path} in {seen:?}");
    }
    // Without the mapping the host ids are what is on disk.
    let mut raw = Vec::new();
    layer_from_dir(&dest, &mut raw).unwrap();
    let first_passwd = tar::Archive::new(&raw[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap() == Path::new("etc/passwd"))
        .map(|e| e.header().uid().unwrap());
    assert_eq!(first_passwd, Some(100_000));
}

#[test]
fn unpack_with_id_map_refuses_ids_outside_the_range() {
    use tar::EntryType as T;
    for (uid, gid) in [(65_536u64, 0u64), (0, 70_000), (u32::MAX as u64, 0), (1 << 40, 0)] {
        let dir = tmp();
        let tar = owned_tar(&[("ok", T::Regular, 0, 0, None), ("bad", T::Regular, uid, gid, None)]);
        let opts = UnpackOptions {
            id_map: Some(remap()),
            ..UnpackOptions::default()
        };
        let e = unpack(&tar[..], &dir.path().join("fs"), &opts).unwrap_err();
        assert!(e.to_string().contains("\"bad\""), "{uid}:{gid}: {e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
}

#[test]
fn layer_from_dir_idmap_refuses_unmapped_owners() {
    let dir = tmp();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    std::os::unix::fs::chown(dir.path().join("f"), Some(5), Some(5)).unwrap();
    let e = layer_from_dir_idmap(dir.path(), io::sink(), Some(&remap())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot map the owner of archive entry \"f\": host uid 5 cannot be mapped to a container uid"
    );
}
