//! Reading `/proc/self/mountinfo`, so a volume that is already mounted (berthd restarted, the
//! mount survived) is recognised instead of being mounted a second time over itself.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The mount points of this mount namespace, in mount order.
pub(crate) fn mount_points() -> std::io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse(&text))
}

/// Whether something is mounted exactly at `path`.
pub(crate) fn is_mounted(path: &Path) -> std::io::Result<bool> {
    Ok(mount_points()?.iter().any(|p| p == path))
}

/// Mount points at `path` or below it.
pub(crate) fn mounts_under(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(mount_points()?.into_iter().filter(|p| p.starts_with(path)).collect())
}

/// The fifth field of each line (the mount point), with the kernel's octal escapes (`\040` for a
/// space, `\011`, `\012`, `\134`) undone.
fn parse(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .collect()
}

fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mount_points_with_escapes() {
        let text = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    30 22 0:40 / /var/lib/berth/volumes/v1/_data rw - tmpfs tmpfs rw,size=1024k\n\
                    31 22 0:41 / /mnt/with\\040space rw - tmpfs tmpfs rw\n";
        let points = parse(text);
        assert_eq!(
            points,
            vec![
                PathBuf::from("/"),
                PathBuf::from("/var/lib/berth/volumes/v1/_data"),
                PathBuf::from("/mnt/with space"),
            ]
        );
        assert_eq!(unescape("a\\134b\\011"), PathBuf::from("a\\b\t"));
        assert_eq!(unescape("trailing\\04"), PathBuf::from("trailing\\04"));
    }

    #[test]
    fn sees_the_root_mount() {
        assert!(is_mounted(Path::new("/")).unwrap());
    }
}
