//! `--user` resolution against the image's `/etc/passwd` and `/etc/group`, with the semantics (and
//! error messages) of runc's `user.GetExecUser`, which Docker uses.

use crate::config::ResolvedUser;
use crate::error::{Error, Result};

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct Group<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn lines(b: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(b)
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn passwd_entries(b: &[u8]) -> impl Iterator<Item = Passwd<'_>> {
    lines(b).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        Some(Passwd {
            name: f.first()?,
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(b: &[u8]) -> impl Iterator<Item = Group<'_>> {
    lines(b).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        Some(Group {
            name: f.first()?,
            gid: f.get(2)?.parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

fn parse_id(s: &str) -> Result<Option<u32>> {
    match s.parse::<i64>() {
        Ok(n) if (0..=i32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
        Ok(_) => Err(Error::Invalid("uids and gids must be in range 0-2147483647".into())),
        Err(_) => Ok(None),
    }
}

/// Resolves `--user` (`name`, `uid`, `name:group`, `uid:gid`, empty = root) to numeric ids plus the
/// supplementary groups the user belongs to in `/etc/group` (only when no group is given, as runc does).
pub fn resolve_user(user: &str, passwd: Option<&[u8]>, group: Option<&[u8]>) -> Result<ResolvedUser> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, ""),
    };
    let mut out = ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let passwd = passwd.unwrap_or(b"");
    let group = group.unwrap_or(b"");

    let mut matched_name: Option<&str> = None;
    let user_id = parse_id(user_arg)?;
    let found = if user_arg.is_empty() {
        passwd_entries(passwd).find(|p| p.uid == 0)
    } else {
        passwd_entries(passwd).find(|p| p.name == user_arg || Some(p.uid) == user_id)
    };
    match found {
        Some(p) => {
            out.uid = p.uid;
            out.gid = p.gid;
            if !p.home.is_empty() {
                out.home = p.home.to_string();
            }
            matched_name = Some(p.name);
        }
        None if user_arg.is_empty() => {}
        None => match user_id {
            Some(uid) => out.uid = uid,
            None => return Err(Error::UserNotFound(user_arg.to_string())),
        },
    }

    if !group_arg.is_empty() {
        let gid_arg = parse_id(group_arg)?;
        match group_entries(group).find(|g| g.name == group_arg || Some(g.gid) == gid_arg) {
            Some(g) => out.gid = g.gid,
            None => match gid_arg {
                Some(gid) => out.gid = gid,
                None => return Err(Error::GroupNotFound(group_arg.to_string())),
            },
        }
    } else if let Some(name) = matched_name {
        for g in group_entries(group) {
            if g.members.contains(&name) && !out.additional_gids.contains(&g.gid) {
                out.additional_gids.push(g.gid);
            }
        }
    }
    Ok(out)
}

/// Resolves one `--group-add` entry (name or gid) against `/etc/group`.
pub fn resolve_group(name: &str, group: Option<&[u8]>) -> Result<u32> {
    let gid = parse_id(name)?;
    match group_entries(group.unwrap_or(b"")).find(|g| g.name == name || Some(g.gid) == gid) {
        Some(g) => Ok(g.gid),
        None => gid.ok_or_else(|| Error::GroupNotFound(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n# comment\n";
    const GROUP: &[u8] = b"root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n";

    #[test]
    fn table() {
        type Case<'a> = (&'a str, Result<(u32, u32, &'a [u32], &'a str), &'a str>);
        let cases: &[Case] = &[
            ("", Ok((0, 0, &[10], "/root"))),
            ("root", Ok((0, 0, &[10], "/root"))),
            ("0", Ok((0, 0, &[10], "/root"))),
            ("app", Ok((1000, 1000, &[10, 50], "/home/app"))),
            ("1000", Ok((1000, 1000, &[10, 50], "/home/app"))),
            ("app:staff", Ok((1000, 50, &[], "/home/app"))),
            ("app:50", Ok((1000, 50, &[], "/home/app"))),
            ("nobody", Ok((65534, 65534, &[], "/nonexistent"))),
            ("4242", Ok((4242, 0, &[], "/"))),
            ("4242:4343", Ok((4242, 4343, &[], "/"))),
            ("1000:nogroup", Ok((1000, 65534, &[], "/home/app"))),
            (
                "bob",
                Err("unable to find user bob: no matching entries in passwd file"),
            ),
            (
                "app:ghosts",
                Err("unable to find group ghosts: no matching entries in group file"),
            ),
            ("-1", Err("uids and gids must be in range 0-2147483647")),
        ];
        for (input, want) in cases {
            let got = resolve_user(input, Some(PASSWD), Some(GROUP));
            match (want, got) {
                (Ok((uid, gid, gids, home)), Ok(u)) => {
                    assert_eq!(
                        (u.uid, u.gid, u.additional_gids.as_slice(), u.home.as_str()),
                        (*uid, *gid, *gids, *home),
                        "{input}"
                    )
                }
                (Err(msg), Err(e)) => assert_eq!(e.to_string(), *msg, "{input}"),
                (want, got) => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn no_files() {
        let u = resolve_user("", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
        assert_eq!(resolve_user("12:34", None, None).unwrap().gid, 34);
        assert!(resolve_user("nobody", None, None).is_err());
        assert_eq!(resolve_group("staff", Some(GROUP)).unwrap(), 50);
        assert_eq!(resolve_group("77", None).unwrap(), 77);
        assert!(resolve_group("x", None).is_err());
    }
}
