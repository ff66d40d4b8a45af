//! User-namespace remapping (`dockerd --userns-remap`): the identity mapping between container and host
//! ids, the `/etc/subuid` / `/etc/subgid` parser and the resolution of a `--userns-remap` value, all pure
//! functions over file contents (moby's `pkg/idtools` and `daemon.parseRemappedRoot`).

use crate::{ErrorKind, HasErrorKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The user Docker creates (and remaps to) for `--userns-remap=default`.
pub const DEFAULT_REMAP_USER: &str = "dockremap";
/// Where a new subordinate range starts when none is configured (shadow-utils' and moby's default).
pub const DEFAULT_SUBID_START: u32 = 100_000;
/// Size of the subordinate range given to a newly created remap user.
pub const DEFAULT_SUBID_COUNT: u32 = 65_536;

/// One contiguous range: container ids `container_id..container_id+size` are host ids
/// `host_id..host_id+size` (a line of `/proc/<pid>/uid_map`; moby's `idtools.IDMap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdMap {
    /// First id inside the container.
    pub container_id: u32,
    /// First id on the host.
    pub host_id: u32,
    /// Number of ids.
    pub size: u32,
}

/// The uid and gid mappings of a remapped daemon (moby's `idtools.IdentityMapping`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdentityMapping {
    /// uid ranges.
    pub uids: Vec<IdMap>,
    /// gid ranges.
    pub gids: Vec<IdMap>,
}

/// An id a mapping cannot translate, or bad remapping configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernsError {
    /// A container id outside the mapping (moby: `Container ID %d cannot be mapped to a host ID`).
    #[error("container {kind} {id} cannot be mapped to a host {kind}")]
    NoHostId {
        /// `uid` or `gid`.
        kind: &'static str,
        /// The container id.
        id: u32,
    },
    /// A host id outside the mapping (moby: `Host ID %d cannot be mapped to a container ID`).
    #[error("host {kind} {id} cannot be mapped to a container {kind}")]
    NoContainerId {
        /// `uid` or `gid`.
        kind: &'static str,
        /// The host id.
        id: u32,
    },
    /// A malformed line in `/etc/subuid` or `/etc/subgid`.
    #[error("cannot parse {file} line {line}: {reason}")]
    SubidSyntax {
        /// `/etc/subuid` or `/etc/subgid`.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The remap user has no subordinate range.
    #[error("no {file_kind} ranges found for user {user:?}")]
    NoRanges {
        /// `subuid` or `subgid`.
        file_kind: &'static str,
        /// The user name.
        user: String,
    },
    /// The `--userns-remap` value itself is malformed.
    #[error("Invalid user/group specification in --userns-remap: {0:?}")]
    InvalidSpec(String),
    /// A user or group named in `--userns-remap` does not exist (Docker's wording per case).
    #[error("{0}")]
    Lookup(String),
    /// `--userns-remap=default` and the `dockremap` user does not exist yet: create it, then resolve again.
    #[error("user {DEFAULT_REMAP_USER:?} does not exist")]
    DefaultUserMissing,
    /// The mapping leaves container root unmapped or a range overflows 32 bits.
    #[error("invalid id mapping: {0}")]
    InvalidMapping(String),
}

impl HasErrorKind for UsernsError {
    fn kind(&self) -> ErrorKind {
        match self {
            UsernsError::DefaultUserMissing => ErrorKind::NotFound,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

fn map_id(ranges: &[IdMap], id: u32, to_host: bool) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let (from, to) = if to_host {
            (r.container_id, r.host_id)
        } else {
            (r.host_id, r.container_id)
        };
        let off = id.checked_sub(from)?;
        (off < r.size).then(|| to.checked_add(off)).flatten()
    })
}

impl IdentityMapping {
    /// One range for both uids and gids: container 0.. is host `host_uid..` / `host_gid..`.
    pub fn single(host_uid: u32, host_gid: u32, size: u32) -> IdentityMapping {
        IdentityMapping {
            uids: vec![IdMap {
                container_id: 0,
                host_id: host_uid,
                size,
            }],
            gids: vec![IdMap {
                container_id: 0,
                host_id: host_gid,
                size,
            }],
        }
    }

    /// Container ids numbered contiguously from 0 over the subordinate ranges, in file order (moby's
    /// `createIDMap`).
    pub fn from_subid_ranges(uids: &[SubIdRange], gids: &[SubIdRange]) -> Result<IdentityMapping, UsernsError> {
        let build = |ranges: &[SubIdRange]| -> Result<Vec<IdMap>, UsernsError> {
            let mut next = 0u32;
            let mut out = Vec::with_capacity(ranges.len());
            for r in ranges {
                if r.count == 0 {
                    continue;
                }
                r.start
                    .checked_add(r.count - 1)
                    .ok_or_else(|| UsernsError::InvalidMapping(format!("range {}:{} overflows", r.start, r.count)))?;
                out.push(IdMap {
                    container_id: next,
                    host_id: r.start,
                    size: r.count,
                });
                next = next.checked_add(r.count).ok_or_else(|| {
                    UsernsError::InvalidMapping("subordinate ranges exceed 2^32 container ids".into())
                })?;
            }
            Ok(out)
        };
        let m = IdentityMapping {
            uids: build(uids)?,
            gids: build(gids)?,
        };
        m.root_pair()?;
        Ok(m)
    }

    /// No mapping at all (remapping off).
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }

    /// The host uid of a container uid.
    pub fn uid_to_host(&self, uid: u32) -> Result<u32, UsernsError> {
        map_id(&self.uids, uid, true).ok_or(UsernsError::NoHostId { kind: "uid", id: uid })
    }

    /// The host gid of a container gid.
    pub fn gid_to_host(&self, gid: u32) -> Result<u32, UsernsError> {
        map_id(&self.gids, gid, true).ok_or(UsernsError::NoHostId { kind: "gid", id: gid })
    }

    /// The container uid of a host uid.
    pub fn uid_to_container(&self, uid: u32) -> Result<u32, UsernsError> {
        map_id(&self.uids, uid, false).ok_or(UsernsError::NoContainerId { kind: "uid", id: uid })
    }

    /// The container gid of a host gid.
    pub fn gid_to_container(&self, gid: u32) -> Result<u32, UsernsError> {
        map_id(&self.gids, gid, false).ok_or(UsernsError::NoContainerId { kind: "gid", id: gid })
    }

    /// Container `(uid, gid)` to host ids.
    pub fn to_host(&self, uid: u32, gid: u32) -> Result<(u32, u32), UsernsError> {
        Ok((self.uid_to_host(uid)?, self.gid_to_host(gid)?))
    }

    /// Host `(uid, gid)` to container ids.
    pub fn to_container(&self, uid: u32, gid: u32) -> Result<(u32, u32), UsernsError> {
        Ok((self.uid_to_container(uid)?, self.gid_to_container(gid)?))
    }

    /// The host ids of the container's root (owner of snapshots and writable layers; moby's `RootPair`).
    pub fn root_pair(&self) -> Result<(u32, u32), UsernsError> {
        self.to_host(0, 0)
            .map_err(|e| UsernsError::InvalidMapping(format!("container root is not mapped: {e}")))
    }

    /// `<data-root>/<uid>.<gid>`: the directory a remapped daemon keeps its images, containers and
    /// volumes in, as dockerd does, so layers shifted for one mapping are never used with another.
    pub fn remapped_root(&self, data_root: &Path) -> Result<PathBuf, UsernsError> {
        let (uid, gid) = self.root_pair()?;
        Ok(data_root.join(format!("{uid}.{gid}")))
    }
}

/// One `/etc/subuid` or `/etc/subgid` entry for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubIdRange {
    /// First subordinate id.
    pub start: u32,
    /// Number of ids.
    pub count: u32,
}

/// One parsed line of a subordinate id file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubIdEntry {
    /// User name or numeric uid, as written.
    pub name: String,
    /// The range.
    pub range: SubIdRange,
}

/// Parses `/etc/subuid` or `/etc/subgid` (`name:start:count` per line; blank lines and `#` comments
/// skipped). Like moby, any malformed line is an error. `file` names the file in errors.
pub fn parse_subid_file(content: &str, file: &'static str) -> Result<Vec<SubIdEntry>, UsernsError> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: String| UsernsError::SubidSyntax {
            file,
            line: i + 1,
            reason,
        };
        let parts: Vec<&str> = line.split(':').collect();
        let [name, start, count] = parts.as_slice() else {
            return Err(err(format!("expected name:start:count, got {line:?}")));
        };
        if name.is_empty() {
            return Err(err("empty user name".into()));
        }
        let num = |s: &str, what: &str| -> Result<u32, UsernsError> {
            s.trim()
                .parse::<u32>()
                .map_err(|e| err(format!("invalid {what} {s:?}: {e}")))
        };
        out.push(SubIdEntry {
            name: name.to_string(),
            range: SubIdRange {
                start: num(start, "start")?,
                count: num(count, "count")?,
            },
        });
    }
    Ok(out)
}

/// The ranges of a user, matched by name or numeric uid (moby's `lookupSubUIDRanges`), in file order.
pub fn subid_ranges_for(entries: &[SubIdEntry], user: &str, uid: u32) -> Vec<SubIdRange> {
    let uid_s = uid.to_string();
    entries
        .iter()
        .filter(|e| e.name == user || e.name == uid_s)
        .map(|e| e.range)
        .collect()
}

/// The start of a free range of `count` ids at or above [`DEFAULT_SUBID_START`] not overlapping any
/// existing entry (moby's `findNextRangeStart`, used when creating `dockremap`).
pub fn next_subid_start(entries: &[SubIdEntry], count: u32) -> Result<u32, UsernsError> {
    let mut ranges: Vec<SubIdRange> = entries.iter().map(|e| e.range).collect();
    ranges.sort_by_key(|r| r.start);
    let mut start = DEFAULT_SUBID_START as u64;
    for r in ranges {
        let (rs, re) = (r.start as u64, r.start as u64 + r.count as u64);
        if start < re && rs < start + count as u64 {
            start = re;
        }
    }
    u32::try_from(start)
        .ok()
        .filter(|s| s.checked_add(count).is_some())
        .ok_or_else(|| UsernsError::InvalidMapping("no free subordinate id range left".into()))
}

/// A `/etc/passwd` or `/etc/group` entry: name and numeric id (fields 1 and 3).
fn parse_db(content: &str) -> Vec<(String, u32)> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.trim().parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

/// The user (and group) a `--userns-remap` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemapUser {
    /// User name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Group name (the user's name when none was given).
    pub group: String,
}

/// The files a `--userns-remap` value is resolved against.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemapFiles<'a> {
    /// `/etc/passwd`.
    pub passwd: &'a str,
    /// `/etc/group`.
    pub group: &'a str,
    /// `/etc/subuid`.
    pub subuid: &'a str,
    /// `/etc/subgid`.
    pub subgid: &'a str,
}

/// Resolves a `--userns-remap` value (`default`, `user`, `user:group`, `uid`, `uid:gid`) the way dockerd
/// does (`parseRemappedRoot` + `LoadIdentityMapping`): the user's subuid *and* subgid ranges (matched by
/// name or uid) become the mapping; a group, when given, must exist. `Ok(None)`: remapping is off (an
/// empty value, or `root`, which dockerd refuses to remap with a warning). `default` whose `dockremap`
/// does not exist yet is [`UsernsError::DefaultUserMissing`]: create it, then call again.
pub fn resolve_userns_remap(
    spec: &str,
    files: &RemapFiles<'_>,
) -> Result<Option<(RemapUser, IdentityMapping)>, UsernsError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(UsernsError::InvalidSpec(spec.to_string()));
    }
    let users = parse_db(files.passwd);
    let groups = parse_db(files.group);
    let (user, uid) = if let Ok(uid) = parts[0].parse::<u32>() {
        let name = users
            .iter()
            .find(|(_, id)| *id == uid)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| UsernsError::Lookup(format!("Uid {uid} has no entry in /etc/passwd")))?;
        (name, uid)
    } else {
        let name = if parts[0] == "default" {
            DEFAULT_REMAP_USER
        } else {
            parts[0]
        };
        match users.iter().find(|(n, _)| n == name) {
            Some((n, id)) => (n.clone(), *id),
            None if parts[0] == "default" => return Err(UsernsError::DefaultUserMissing),
            None => {
                return Err(UsernsError::Lookup(format!(
                    "Error during uid lookup for {name:?}: no such user"
                )))
            }
        }
    };
    let group = match parts.get(1) {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => groups
                .iter()
                .find(|(_, id)| *id == gid)
                .map(|(n, _)| n.clone())
                .ok_or_else(|| UsernsError::Lookup(format!("Gid {gid} has no entry in /etc/group")))?,
            Err(_) => groups
                .iter()
                .find(|(n, _)| n == g)
                .map(|(n, _)| n.clone())
                .ok_or_else(|| {
                    UsernsError::Lookup(format!("Error during groupname lookup for {g:?}: no such group"))
                })?,
        },
        // A numeric uid alone names its gid too; a name alone its same-named group (dockerd's lookups).
        None if parts[0].parse::<u32>().is_ok() => groups
            .iter()
            .find(|(_, id)| *id == uid)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| UsernsError::Lookup(format!("Gid {uid} has no entry in /etc/group")))?,
        None => groups
            .iter()
            .find(|(n, _)| *n == user)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| UsernsError::Lookup(format!("Error during gid lookup for {user:?}: no such group")))?,
    };
    if user == "root" {
        return Ok(None);
    }
    let subuid = parse_subid_file(files.subuid, "/etc/subuid")?;
    let subgid = parse_subid_file(files.subgid, "/etc/subgid")?;
    let uids = subid_ranges_for(&subuid, &user, uid);
    if uids.is_empty() {
        return Err(UsernsError::NoRanges {
            file_kind: "subuid",
            user,
        });
    }
    let gids = subid_ranges_for(&subgid, &user, uid);
    if gids.is_empty() {
        return Err(UsernsError::NoRanges {
            file_kind: "subgid",
            user,
        });
    }
    let map = IdentityMapping::from_subid_ranges(&uids, &gids)?;
    Ok(Some((RemapUser { user, uid, group }, map)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        dockremap:x:998:998::/home/dockremap:/bin/false\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        bob:x:1001:1001::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:alice\ndockremap:x:998:\nalice:x:1000:\n";
    const SUBUID: &str = "# comment\n\ndockremap:100000:65536\nalice:165536:65536\n1001:300000:1000\n\
        1001:400000:2000\n";
    const SUBGID: &str = "dockremap:100000:65536\nalice:200000:65536\nbob:500000:3000\n";

    fn files() -> RemapFiles<'static> {
        RemapFiles {
            passwd: PASSWD,
            group: GROUP,
            subuid: SUBUID,
            subgid: SUBGID,
        }
    }

    #[test]
    fn subid_parse_table() {
        type Parsed<'a> = Vec<(&'a str, u32, u32)>;
        let ok: &[(&str, Parsed)] = &[
            ("", vec![]),
            ("# only a comment\n\n", vec![]),
            ("a:1:2", vec![("a", 1, 2)]),
            ("a:100000:65536\n1000:5:6\n", vec![("a", 100000, 65536), ("1000", 5, 6)]),
            ("  b:7:8  \n", vec![("b", 7, 8)]),
        ];
        for (input, want) in ok {
            let got = parse_subid_file(input, "/etc/subuid").unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let got: Vec<(&str, u32, u32)> = got
                .iter()
                .map(|e| (e.name.as_str(), e.range.start, e.range.count))
                .collect();
            assert_eq!(&got, want, "{input:?}");
        }
        for bad in [
            "a:1",
            "a:1:2:3",
            ":1:2",
            "a:x:2",
            "a:1:-2",
            "a:1:99999999999",
            "ok:1:2\nbroken",
        ] {
            let e = parse_subid_file(bad, "/etc/subgid").expect_err(bad);
            assert!(
                e.to_string().starts_with("cannot parse /etc/subgid line"),
                "{bad:?}: {e}"
            );
        }
        let e = parse_subid_file("ok:1:2\nbroken", "/etc/subuid").expect_err("line 2");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn ranges_match_name_or_uid() {
        let entries = parse_subid_file(SUBUID, "/etc/subuid").expect("parse");
        assert_eq!(
            subid_ranges_for(&entries, "bob", 1001),
            vec![
                SubIdRange {
                    start: 300000,
                    count: 1000
                },
                SubIdRange {
                    start: 400000,
                    count: 2000
                }
            ]
        );
        assert!(subid_ranges_for(&entries, "carol", 1002).is_empty());
    }

    #[test]
    fn mapping_translates_both_ways() {
        let m = IdentityMapping::from_subid_ranges(
            &[
                SubIdRange {
                    start: 300000,
                    count: 1000,
                },
                SubIdRange {
                    start: 400000,
                    count: 2000,
                },
            ],
            &[SubIdRange {
                start: 500000,
                count: 10,
            }],
        )
        .expect("map");
        let cases: &[(u32, Option<u32>)] = &[
            (0, Some(300000)),
            (999, Some(300999)),
            (1000, Some(400000)),
            (2999, Some(401999)),
            (3000, None),
            (u32::MAX, None),
        ];
        for (c, h) in cases {
            assert_eq!(m.uid_to_host(*c).ok(), *h, "uid {c}");
            if let Some(h) = h {
                assert_eq!(m.uid_to_container(*h).ok(), Some(*c), "host {h}");
            }
        }
        assert_eq!(m.gid_to_host(9).ok(), Some(500009));
        assert_eq!(
            m.gid_to_host(10).expect_err("out").to_string(),
            "container gid 10 cannot be mapped to a host gid"
        );
        assert_eq!(
            m.uid_to_container(5).expect_err("out").to_string(),
            "host uid 5 cannot be mapped to a container uid"
        );
        assert_eq!(m.root_pair().expect("root"), (300000, 500000));
        assert_eq!(
            m.remapped_root(Path::new("/var/lib/berth")).expect("dir"),
            Path::new("/var/lib/berth/300000.500000")
        );
        assert!(IdentityMapping::from_subid_ranges(&[], &[]).is_err());
        assert!(IdentityMapping::from_subid_ranges(
            &[SubIdRange {
                start: u32::MAX,
                count: 2
            }],
            &[SubIdRange { start: 1, count: 1 }]
        )
        .is_err());
    }

    #[test]
    fn resolve_table() {
        let single = |u, g, n| IdentityMapping::single(u, g, n);
        type Want<'a> = Result<Option<(&'a str, u32, &'a str, IdentityMapping)>, &'a str>;
        let cases: Vec<(&str, Want)> = vec![
            ("", Ok(None)),
            (
                "default",
                Ok(Some(("dockremap", 998, "dockremap", single(100000, 100000, 65536)))),
            ),
            (
                "dockremap",
                Ok(Some(("dockremap", 998, "dockremap", single(100000, 100000, 65536)))),
            ),
            (
                "alice",
                Ok(Some(("alice", 1000, "alice", single(165536, 200000, 65536)))),
            ),
            (
                "alice:staff",
                Ok(Some(("alice", 1000, "staff", single(165536, 200000, 65536)))),
            ),
            (
                "alice:50",
                Ok(Some(("alice", 1000, "staff", single(165536, 200000, 65536)))),
            ),
            (
                "1000",
                Ok(Some(("alice", 1000, "alice", single(165536, 200000, 65536)))),
            ),
            (
                "1000:998",
                Ok(Some(("alice", 1000, "dockremap", single(165536, 200000, 65536)))),
            ),
            ("root", Ok(None)),
            ("0:0", Ok(None)),
            (
                "a:b:c",
                Err("Invalid user/group specification in --userns-remap: \"a:b:c\""),
            ),
            (
                "alice:",
                Err("Invalid user/group specification in --userns-remap: \"alice:\""),
            ),
            ("carol", Err("Error during uid lookup for \"carol\": no such user")),
            ("4242", Err("Uid 4242 has no entry in /etc/passwd")),
            (
                "alice:nogroup",
                Err("Error during groupname lookup for \"nogroup\": no such group"),
            ),
            ("alice:4242", Err("Gid 4242 has no entry in /etc/group")),
            ("bob", Err("Error during gid lookup for \"bob\": no such group")),
            ("1001", Err("Gid 1001 has no entry in /etc/group")),
            (
                "bob:staff",
                Ok(Some((
                    "bob",
                    1001,
                    "staff",
                    IdentityMapping {
                        uids: vec![
                            IdMap {
                                container_id: 0,
                                host_id: 300000,
                                size: 1000,
                            },
                            IdMap {
                                container_id: 1000,
                                host_id: 400000,
                                size: 2000,
                            },
                        ],
                        gids: vec![IdMap {
                            container_id: 0,
                            host_id: 500000,
                            size: 3000,
                        }],
                    },
                ))),
            ),
        ];
        for (spec, want) in cases {
            let got = resolve_userns_remap(spec, &files());
            match (got, want) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some((u, m))), Ok(Some((name, uid, group, map)))) => {
                    assert_eq!((u.user.as_str(), u.uid, u.group.as_str()), (name, uid, group), "{spec}");
                    assert_eq!(m, map, "{spec}");
                }
                (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "{spec}"),
                (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn resolve_missing_ranges_and_default_user() {
        let f = RemapFiles { subuid: "", ..files() };
        assert_eq!(
            resolve_userns_remap("alice", &f).expect_err("no ranges").to_string(),
            "no subuid ranges found for user \"alice\""
        );
        let f = RemapFiles {
            subgid: "other:1:2\n",
            ..files()
        };
        assert_eq!(
            resolve_userns_remap("alice", &f).expect_err("no ranges").to_string(),
            "no subgid ranges found for user \"alice\""
        );
        let f = RemapFiles {
            passwd: "root:x:0:0::/root:/bin/sh\n",
            ..files()
        };
        let e = resolve_userns_remap("default", &f).expect_err("missing");
        assert_eq!(e, UsernsError::DefaultUserMissing);
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn next_start_table() {
        let e = |s: &str| parse_subid_file(s, "/etc/subuid").expect("parse");
        let cases: &[(&str, u32)] = &[
            ("", 100000),
            ("a:100000:65536", 165536),
            ("a:165536:65536\nb:100000:65536", 231072),
            ("a:10:10", 100000),
            ("a:200000:65536", 100000),
            ("a:150000:10", 150010),
            ("a:4294000000:100", 100000),
        ];
        for (input, want) in cases {
            assert_eq!(next_subid_start(&e(input), 65536).expect("start"), *want, "{input:?}");
        }
        assert!(next_subid_start(&e("a:100000:4294867000"), 65536).is_err());
    }
}
