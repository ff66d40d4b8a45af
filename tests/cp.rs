//! `docker cp` / `berth cp` (the archive API), `export`, `diff` and `commit`: what a user sees, and
//! the symlink-escape attempts of the CVE-2018-15664 class. Each test runs its own daemon, as root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;
use std::path::Path;
use std::time::Duration;

fn tmpdir(d: &Daemon, name: &str) -> std::path::PathBuf {
    let p = d.root.join("host").join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn run_detached(d: &Daemon, name: &str, script: &str) {
    let r = d.berth(&["run", "-d", "--name", name, "bb", "sh", "-c", script]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
}

/// Waits until `path` exists in the container (its command is still setting up).
fn wait_for(d: &Daemon, name: &str, path: &str) {
    let ok = common::eventually(Duration::from_secs(10), || {
        d.api("HEAD", &format!("/containers/{name}/archive?path={path}"), None).0 == 200
    });
    assert!(ok, "{path} never appeared in {name}\n{}", d.log());
}

/// Reads one file of a container through `GET /archive`.
fn read_in(d: &Daemon, name: &str, path: &str) -> Option<String> {
    let (status, body) = d.api("GET", &format!("/containers/{name}/archive?path={path}"), None);
    if status != 200 {
        return None;
    }
    let mut a = tar::Archive::new(&body[..]);
    let mut e = a.entries().ok()?.next()?.ok()?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).ok()?;
    Some(s)
}

/// A tar whose member names are written raw, `../` included (the tar crate refuses to build one).
fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn docker_cp_round_trips_files_and_directories() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(&d, "c1", "mkdir -p /data/sub && echo hello > /data/sub/f.txt && echo top > /data/a.txt && sleep 1000");
    let host = tmpdir(&d, "out");
    wait_for(&d, "c1", "/data/sub/f.txt");
    // A file out, to a new name and into an existing directory.
    let r = d.docker(&["cp", "c1:/data/a.txt", host.join("a-copy").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(std::fs::read_to_string(host.join("a-copy")).unwrap(), "top\n");
    let r = d.docker(&["cp", "c1:/data/a.txt", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("a.txt")).unwrap(), "top\n");
    // A directory: to a new name it becomes that name; into an existing directory it nests.
    let r = d.docker(&["cp", "c1:/data", host.join("newdir").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("newdir/sub/f.txt")).unwrap(), "hello\n");
    let r = d.docker(&["cp", "c1:/data", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("data/sub/f.txt")).unwrap(), "hello\n");
    // `dir/.`: the contents, into an existing directory.
    let into = tmpdir(&d, "into");
    let r = d.docker(&["cp", "c1:/data/.", into.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(into.join("sub/f.txt")).unwrap(), "hello\n");
    assert_eq!(std::fs::read_to_string(into.join("a.txt")).unwrap(), "top\n");
    // And back in: a host file and directory into the container, read back out.
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    let r = d.docker(&["cp", host.join("in.txt").to_str().unwrap(), "c1:/data/"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let r = d.docker(&["cp", into.to_str().unwrap(), "c1:/tree"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let back = tmpdir(&d, "back");
    let r = d.docker(&["cp", "c1:/data/in.txt", back.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(back.join("in.txt")).unwrap(), "from host\n");
    let r = d.docker(&["cp", "c1:/tree/sub/f.txt", back.join("f").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(back.join("f")).unwrap(), "hello\n");
}

#[test]
fn docker_cp_on_a_stopped_container_and_a_missing_path() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&["run", "--name", "c2", "bb", "sh", "-c", "mkdir /out && echo done > /out/result"]);
    assert_eq!(r.code, 0, "{r:?}");
    let host = tmpdir(&d, "h");
    let r = d.docker(&["cp", "c2:/out/result", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(std::fs::read_to_string(host.join("result")).unwrap(), "done\n");
    std::fs::write(host.join("new.txt"), "added while stopped\n").unwrap();
    let r = d.docker(&["cp", host.join("new.txt").to_str().unwrap(), "c2:/out/"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(read_in(&d, "c2", "/out/new.txt").as_deref(), Some("added while stopped\n"));
    // The file is in the container's writable layer: a restart sees it.
    let r = d.berth(&["start", "c2"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Nothing stays mounted on the host.
    let overlays: Vec<_> = d.own_mounts().into_iter().filter(|m| m.contains("overlay")).collect();
    assert!(overlays.is_empty(), "{overlays:?}");
    // A missing path: Docker's 404 and message, both ways.
    let r = d.docker(&["cp", "c2:/nope", host.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Could not find the file /nope in container c2"), "{r:?}");
    let r = d.docker(&["cp", host.join("new.txt").to_str().unwrap(), "c2:/nope/dir/x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Could not find the file /nope/dir in container c2"), "{r:?}");
    let (status, _) = d.api("HEAD", "/containers/c2/archive?path=/nope", None);
    assert_eq!(status, 404);
    let (status, body) = d.api("GET", "/containers/nosuch/archive?path=/", None);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    // A trailing slash on a file is refused.
    let (status, _) = d.api("HEAD", "/containers/c2/archive?path=/out/result/", None);
    assert_eq!(status, 400);
}

#[test]
fn archive_stat_header_is_dockers() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(&d, "c3", "echo -n 12345 > /f && ln -s /f /lnk && mkdir /dir && sleep 1000");
    wait_for(&d, "c3", "/dir");
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"HEAD /containers/c3/archive?path=/lnk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let line = resp
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-docker-container-path-stat:"))
        .unwrap_or_else(|| panic!("no stat header in {resp}"));
    let b64 = line.split_once(':').unwrap().1.trim();
    let json = base64_decode(b64);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["name"], "lnk", "{v}");
    assert_eq!(v["linkTarget"], "/f", "{v}");
    assert_eq!(v["mode"].as_u64().unwrap() & (1 << 27), 1 << 27, "symlink bit: {v}");
    assert!(v["mtime"].as_str().unwrap().ends_with('Z'), "{v}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn symlinks_in_the_container_resolve_inside_it() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    // A host directory with a secret, and container symlinks to `/`, `../../..` and its host path.
    let hostdir = tmpdir(&d, "secret-dir");
    std::fs::write(hostdir.join("secret"), "HOST SECRET\n").unwrap();
    let hd = hostdir.to_str().unwrap();
    let script = format!(
        "echo inside > /marker && ln -s / /to-root && ln -s ../../.. /up && ln -s {hd} /to-host && mkdir -p /d && ln -s {hd}/secret /d/direct && sleep 1000"
    );
    run_detached(&d, "c4", &script);
    wait_for(&d, "c4", "/d/direct");
    for p in ["/to-root/marker", "/up/marker", "/up/../../marker", "/d/../../../marker"] {
        assert_eq!(read_in(&d, "c4", p).as_deref(), Some("inside\n"), "{p}");
    }
    for p in ["/to-host/secret", "/d/direct/"] {
        assert_eq!(read_in(&d, "c4", p), None, "{p} reached the host");
    }
    // `docker cp -L` follows the link inside the container: it points at nothing there.
    let out = tmpdir(&d, "out");
    let r = d.docker(&["cp", "-L", "c4:/d/direct", out.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!out.join("direct").exists());
    // Writes through the links land in the container, never on the host.
    std::fs::write(out.join("pwned"), "x").unwrap();
    for dst in ["c4:/up/tmp/", "c4:/to-root/"] {
        let r = d.docker(&["cp", out.join("pwned").to_str().unwrap(), dst]);
        assert_eq!(r.code, 0, "{dst}: {r:?}");
    }
    // The host path does not exist inside the container.
    let r = d.docker(&["cp", out.join("pwned").to_str().unwrap(), "c4:/to-host/"]);
    assert_ne!(r.code, 0, "{r:?}");
    let (status, _) = d.api("PUT", "/containers/c4/archive?path=/to-host", Some(&raw_tar(&[("pwned", b"x")])));
    assert_eq!(status, 404);
    assert!(!hostdir.join("pwned").exists());
    assert!(!Path::new("/pwned").exists());
    assert_eq!(read_in(&d, "c4", "/tmp/pwned").as_deref(), Some("x"));
    assert_eq!(read_in(&d, "c4", "/pwned").as_deref(), Some("x"));
    assert_eq!(std::fs::read_to_string(hostdir.join("secret")).unwrap(), "HOST SECRET\n");
}

#[test]
fn an_archive_with_parent_entries_is_refused_and_changes_nothing() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(&d, "c5", "mkdir -p /a/b && sleep 1000");
    wait_for(&d, "c5", "/a/b");
    let tar = raw_tar(&[("ok.txt", b"fine"), ("../../escaped.txt", b"bad")]);
    let (status, body) = d.api("PUT", "/containers/c5/archive?path=/a/b", Some(&tar));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let msg = String::from_utf8_lossy(&body);
    assert!(msg.contains("escaped.txt"), "{msg}");
    // The good entry before it was not written either: the archive is checked whole first.
    assert_eq!(read_in(&d, "c5", "/a/b/ok.txt"), None);
    assert_eq!(read_in(&d, "c5", "/escaped.txt"), None);
    let tar = raw_tar(&[("/abs.txt", b"bad")]);
    let (status, _) = d.api("PUT", "/containers/c5/archive?path=/a", Some(&tar));
    assert_eq!(status, 400);
    // A file as the extraction point.
    let tar = raw_tar(&[("x", b"1")]);
    let (status, _) = d.api("PUT", "/containers/c5/archive?path=/a", Some(&tar));
    assert_eq!(status, 200);
    let (status, body) = d.api("PUT", "/containers/c5/archive?path=/a/x", Some(&tar));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // noOverwriteDirNonDir: a file may not replace the directory `b`.
    let tar = raw_tar(&[("b", b"1")]);
    let (status, _) = d.api("PUT", "/containers/c5/archive?path=/a&noOverwriteDirNonDir=1", Some(&tar));
    assert_eq!(status, 400);
}

#[test]
fn a_symlink_swap_during_cp_never_touches_the_host() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let hostdir = tmpdir(&d, "victim");
    std::fs::write(hostdir.join("secret"), "HOST SECRET\n").unwrap();
    let hd = hostdir.to_str().unwrap();
    // The container swaps /w between a real directory and symlinks to `/` and to the host dir as
    // fast as it can.
    let script = format!(
        "mkdir -p /real && echo inside > /real/secret && while true; do ln -sfn / /w; ln -sfn {hd} /w; rm -f /w; ln -s /real /w; done"
    );
    run_detached(&d, "c6", &script);
    let src = tmpdir(&d, "src");
    std::fs::write(src.join("dropped"), "x").unwrap();
    let mut reads = 0;
    for _ in 0..40 {
        if let Some(s) = read_in(&d, "c6", "/w/secret") {
            assert_eq!(s, "inside\n");
            reads += 1;
        }
        let _ = d.docker(&["cp", src.join("dropped").to_str().unwrap(), "c6:/w/"]);
        let tar = raw_tar(&[("dropped2", b"y")]);
        let _ = d.api("PUT", "/containers/c6/archive?path=/w", Some(&tar));
    }
    let names: Vec<_> = std::fs::read_dir(&hostdir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secret")], "a write reached the host");
    assert!(!Path::new("/dropped").exists() && !Path::new("/dropped2").exists());
    assert_eq!(std::fs::read_to_string(hostdir.join("secret")).unwrap(), "HOST SECRET\n");
    eprintln!("{reads} reads of /w/secret succeeded, all from inside the container");
}
