//! User namespace id mappings: container ids to host ids, and mount data shifted for them.

/// `(container_id, host_id, size)` ranges of one id mapping.
pub(super) type IdRanges = Vec<(u32, u32, u32)>;

pub(super) fn id_to_host(ranges: &IdRanges, id: u32) -> Option<u32> {
    ranges.iter().find_map(|&(c, h, n)| {
        id.checked_sub(c)
            .filter(|off| *off < n)
            .and_then(|off| h.checked_add(off))
    })
}

/// Mount data for a filesystem the runtime mounts as host root on behalf of a user-namespaced
/// container: `uid=`/`gid=` options are container ids (runc mounts from inside the namespace) so they
/// are shifted to host ids, and a tmpfs root without them belongs to the container's root (Docker's
/// `/dev` and `/dev/shm` are root-owned inside a remapped container).
pub(super) fn userns_mount_data(kind: &str, data: &str, uids: &IdRanges, gids: &IdRanges) -> String {
    if kind != "tmpfs" && kind != "devpts" {
        return data.to_string();
    }
    let mut out = Vec::new();
    let (mut has_uid, mut has_gid) = (false, false);
    for o in data.split(',').filter(|o| !o.is_empty()) {
        let shifted = if let Some(v) = o.strip_prefix("uid=") {
            has_uid = true;
            v.parse()
                .ok()
                .and_then(|id| id_to_host(uids, id))
                .map(|h| format!("uid={h}"))
        } else if let Some(v) = o.strip_prefix("gid=") {
            has_gid = true;
            v.parse()
                .ok()
                .and_then(|id| id_to_host(gids, id))
                .map(|h| format!("gid={h}"))
        } else {
            None
        };
        out.push(shifted.unwrap_or_else(|| o.to_string()));
    }
    if kind == "tmpfs" {
        if let (false, Some(h)) = (has_uid, id_to_host(uids, 0)) {
            out.push(format!("uid={h}"));
        }
        if let (false, Some(h)) = (has_gid, id_to_host(gids, 0)) {
            out.push(format!("gid={h}"));
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userns_mount_data_table() {
        let uids = vec![(0, 100_000, 65_536)];
        let gids = vec![(0, 200_000, 1_000), (1_000, 300_000, 10)];
        let cases = [
            (
                "tmpfs",
                "mode=755,size=65536k",
                "mode=755,size=65536k,uid=100000,gid=200000",
            ),
            ("tmpfs", "", "uid=100000,gid=200000"),
            (
                "tmpfs",
                "uid=1000,gid=1005,mode=1777",
                "uid=101000,gid=300005,mode=1777",
            ),
            // Ids outside the mapping are left for the kernel to apply as given.
            ("tmpfs", "uid=70000,gid=2000", "uid=70000,gid=2000"),
            (
                "devpts",
                "newinstance,ptmxmode=0666,mode=0620,gid=5",
                "newinstance,ptmxmode=0666,mode=0620,gid=200005",
            ),
            ("devpts", "newinstance", "newinstance"),
            ("proc", "", ""),
            ("sysfs", "", ""),
            ("mqueue", "", ""),
        ];
        for (kind, data, want) in cases {
            assert_eq!(userns_mount_data(kind, data, &uids, &gids), want, "{kind} {data}");
        }
        assert_eq!(id_to_host(&gids, 1_009), Some(300_009));
        assert_eq!(id_to_host(&gids, 1_010), None);
    }
}
