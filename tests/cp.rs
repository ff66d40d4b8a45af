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

/// Runs `script` in a detached container; a script that ends in `&& sleep 1000` touches `/ready`
/// first, so [`wait_for`] can wait until everything before it is written.
fn run_detached(d: &Daemon, name: &str, script: &str) {
    let script = script.replace("&& sleep 1000", "&& touch /ready && sleep 1000");
    let r = d.berth(&["run", "-d", "--name", name, "bb", "sh", "-c", &script]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
}

/// Waits until `path` exists in the container (its command is still setting up).
fn wait_for(d: &Daemon, name: &str, path: &str) {
    let ok = common::eventually(Duration::from_secs(10), || {
        d.api("HEAD", &format!("/containers/{name}/archive?path={path}"), None)
            .0
            == 200
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
    run_detached(
        &d,
        "c1",
        "mkdir -p /data/sub && echo hello > /data/sub/f.txt && echo top > /data/a.txt && sleep 1000",
    );
    let host = tmpdir(&d, "out");
    wait_for(&d, "c1", "/ready");
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
    assert_eq!(
        std::fs::read_to_string(host.join("newdir/sub/f.txt")).unwrap(),
        "hello\n"
    );
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
    let r = d.berth(&[
        "run",
        "--name",
        "c2",
        "bb",
        "sh",
        "-c",
        "mkdir /out && echo done > /out/result",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let host = tmpdir(&d, "h");
    let r = d.docker(&["cp", "c2:/out/result", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(std::fs::read_to_string(host.join("result")).unwrap(), "done\n");
    std::fs::write(host.join("new.txt"), "added while stopped\n").unwrap();
    let r = d.docker(&["cp", host.join("new.txt").to_str().unwrap(), "c2:/out/"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert_eq!(
        read_in(&d, "c2", "/out/new.txt").as_deref(),
        Some("added while stopped\n")
    );
    // The file is in the container's writable layer: a restart sees it.
    let r = d.berth(&["start", "c2"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Nothing stays mounted on the host.
    let overlays: Vec<_> = d.own_mounts().into_iter().filter(|m| m.contains("overlay")).collect();
    assert!(overlays.is_empty(), "{overlays:?}");
    // A created, never started container: the file copied in is there when it runs.
    let r = d.docker(&["create", "--name", "fresh", "bb", "cat", "/config/app.conf"]);
    assert_eq!(r.code, 0, "{r:?}");
    std::fs::create_dir_all(host.join("config")).unwrap();
    std::fs::write(host.join("config/app.conf"), "setting=1\n").unwrap();
    let r = d.docker(&["cp", host.join("config").to_str().unwrap(), "fresh:/"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let r = d.docker(&["start", "-a", "fresh"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "setting=1\n"), "{r:?}");
    // A missing path: Docker's 404 and message, both ways.
    let r = d.docker(&["cp", "c2:/nope", host.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Could not find the file /nope in container c2"),
        "{r:?}"
    );
    let r = d.docker(&["cp", host.join("new.txt").to_str().unwrap(), "c2:/nope/dir/x"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Could not find the file /nope/dir in container c2"),
        "{r:?}"
    );
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
    run_detached(
        &d,
        "c3",
        "echo -n 12345 > /f && ln -s /f /lnk && mkdir /dir && sleep 1000",
    );
    wait_for(&d, "c3", "/ready");
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
    wait_for(&d, "c4", "/ready");
    for p in [
        "/to-root/marker",
        "/up/marker",
        "/up/../../marker",
        "/d/../../../marker",
    ] {
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
    let (status, _) = d.api(
        "PUT",
        "/containers/c4/archive?path=/to-host",
        Some(&raw_tar(&[("pwned", b"x")])),
    );
    assert_eq!(status, 404);
    assert!(!hostdir.join("pwned").exists());
    assert!(!Path::new("/pwned").exists());
    assert_eq!(read_in(&d, "c4", "/tmp/pwned").as_deref(), Some("x"));
    assert_eq!(read_in(&d, "c4", "/pwned").as_deref(), Some("x"));
    assert_eq!(
        std::fs::read_to_string(hostdir.join("secret")).unwrap(),
        "HOST SECRET\n"
    );
}

#[test]
fn an_archive_with_parent_entries_is_refused_and_changes_nothing() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(&d, "c5", "mkdir -p /a/b && sleep 1000");
    wait_for(&d, "c5", "/ready");
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
    // A read-only root filesystem: 403, as dockerd.
    let r = d.berth(&["create", "--name", "ro", "--read-only", "bb", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (status, body) = d.api(
        "PUT",
        "/containers/ro/archive?path=/tmp",
        Some(&raw_tar(&[("x", b"1")])),
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("container rootfs is marked read-only"));
    // noOverwriteDirNonDir: a file may not replace the directory `b`.
    let tar = raw_tar(&[("b", b"1")]);
    let (status, _) = d.api(
        "PUT",
        "/containers/c5/archive?path=/a&noOverwriteDirNonDir=1",
        Some(&tar),
    );
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
    // fast as it can: a path checked as a directory is a symlink a moment later.
    let script = format!(
        "while true; do rm -rf /w; mkdir /w; echo inside > /w/secret; rm -rf /w; ln -s / /w; rm -f /w; ln -s {hd} /w; rm -f /w; done"
    );
    run_detached(&d, "c6", &script);
    let src = tmpdir(&d, "src");
    let unique = format!("dropped-{}", std::process::id());
    std::fs::write(src.join(&unique), "x").unwrap();
    let mut reads = 0;
    for _ in 0..40 {
        if let Some(s) = read_in(&d, "c6", "/w/secret") {
            // The container may be half-way through writing it: a prefix of its content.
            assert!("inside\n".starts_with(&s), "read {s:?}");
            reads += 1;
        }
        let _ = d.docker(&["cp", src.join(&unique).to_str().unwrap(), "c6:/w/"]);
        let tar = raw_tar(&[(&format!("{unique}-2"), b"y")]);
        let _ = d.api("PUT", "/containers/c6/archive?path=/w", Some(&tar));
        // A whole-directory read while it swaps: whatever it gets is the container's.
        let (_, body) = d.api("GET", "/containers/c6/archive?path=/w/", None);
        for mut e in tar::Archive::new(&body[..]).entries().into_iter().flatten().flatten() {
            let mut content = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut content);
            assert!(!content.contains("HOST SECRET"), "{:?}", e.path());
        }
    }
    let names: Vec<_> = std::fs::read_dir(&hostdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("secret")],
        "a write reached the host"
    );
    assert!(!Path::new("/").join(&unique).exists() && !Path::new("/").join(format!("{unique}-2")).exists());
    assert_eq!(
        std::fs::read_to_string(hostdir.join("secret")).unwrap(),
        "HOST SECRET\n"
    );
    eprintln!("{reads} reads of /w/secret succeeded, all from inside the container");
}

#[test]
fn berth_cp_both_ways_with_trailing_slash_rules_and_stdio() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(
        &d,
        "b1",
        "mkdir -p /src/in && echo one > /src/in/1 && echo f > /file && sleep 1000",
    );
    wait_for(&d, "b1", "/ready");
    let host = tmpdir(&d, "b");
    let h = |p: &str| host.join(p).to_str().unwrap().to_string();
    // Out: a file to a new name, a directory into an existing one, `dir/.` to a new name.
    let r = d.berth(&["cp", "b1:/file", &h("renamed")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.starts_with("Successfully copied ") && r.stderr.trim_end().ends_with("renamed"),
        "{r:?}"
    );
    assert_eq!(std::fs::read_to_string(host.join("renamed")).unwrap(), "f\n");
    let r = d.berth(&["cp", "b1:/src", &h("")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("src/in/1")).unwrap(), "one\n");
    let r = d.berth(&["cp", "b1:/src/.", &h("contents")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("contents/in/1")).unwrap(), "one\n");
    // The root, to a new directory.
    let r = d.berth(&["cp", "b1:/", &h("rootfs")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("rootfs/src/in/1")).unwrap(), "one\n");
    assert!(host.join("rootfs/proc").is_dir());
    assert!(
        std::fs::read_dir(host.join("rootfs/proc")).unwrap().next().is_none(),
        "/proc's contents are not the container's"
    );
    // A file to `missing/` is an error: the directory must exist.
    let r = d.berth(&["cp", "b1:/file", &format!("{}/", h("missing"))]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("does not exist"), "{r:?}");
    // A missing path in the container.
    let r = d.berth(&["cp", "b1:/nope", &h("x")]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("Could not find the file /nope in container b1"),
        "{r:?}"
    );
    // In: a file into a directory, a file to a new name, a directory to a new name.
    std::fs::write(host.join("up.txt"), "up\n").unwrap();
    let r = d.berth(&["cp", &h("up.txt"), "b1:/src/"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.trim_end().ends_with("to b1:/src/"), "{r:?}");
    assert_eq!(read_in(&d, "b1", "/src/up.txt").as_deref(), Some("up\n"));
    let r = d.berth(&["cp", &h("up.txt"), "b1:/src/other-name"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(read_in(&d, "b1", "/src/other-name").as_deref(), Some("up\n"));
    let r = d.berth(&["cp", &h("contents"), "b1:/copied"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(read_in(&d, "b1", "/copied/in/1").as_deref(), Some("one\n"));
    // A file may not replace a directory.
    std::fs::create_dir_all(host.join("clash")).unwrap();
    std::fs::write(host.join("clash/in"), "file\n").unwrap();
    let r = d.berth(&["cp", &h("clash/."), "b1:/src"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("cannot overwrite directory"), "{r:?}");
    let r = d.berth(&["cp", &h("up.txt"), "b1:/no/such/"]);
    assert_ne!(r.code, 0, "{r:?}");
    // `-` out: a tar on stdout.
    let out = d.berth_cmd(&["cp", "b1:/src/in", "-"]).output().unwrap();
    assert!(out.status.success());
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["in/", "in/1"]);
    // `-` in: a tar on stdin, extracted into the directory.
    let tar = raw_tar(&[("from-stdin", b"piped\n")]);
    let mut child = d
        .berth_cmd(&["cp", "-", "b1:/src"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &tar).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(read_in(&d, "b1", "/src/from-stdin").as_deref(), Some("piped\n"));
}

#[test]
fn berth_cp_archive_mode_and_follow_link() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(&d, "b2", "echo target > /t && ln -s /t /link && sleep 1000");
    wait_for(&d, "b2", "/ready");
    let host = tmpdir(&d, "l");
    // Without -L the link itself is copied; with -L its target's content, under the link's name.
    let r = d.berth(&["cp", "b2:/link", host.join("plain").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let listing: Vec<_> = std::fs::read_dir(&host)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        std::fs::read_link(host.join("plain")).ok().as_deref(),
        Some(Path::new("/t")),
        "{r:?} {listing:?}"
    );
    let r = d.berth(&["cp", "-L", "b2:/link", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("link")).unwrap(), "target\n");
    // -a keeps the owner of the local file; without it the container's root owns the copy.
    let f = host.join("owned");
    std::fs::write(&f, "o").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    let r = d.berth(&["cp", "-a", f.to_str().unwrap(), "b2:/kept"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.berth(&["cp", f.to_str().unwrap(), "b2:/rooted"]);
    assert_eq!(r.code, 0, "{r:?}");
    let owner = |p: &str| {
        let (_, body) = d.api("GET", &format!("/containers/b2/archive?path={p}"), None);
        let mut a = tar::Archive::new(&body[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        (e.header().uid().unwrap(), e.header().gid().unwrap())
    };
    assert_eq!(owner("/kept"), (1234, 5678));
    assert_eq!(owner("/rooted"), (0, 0));
}

#[test]
fn export_diff_and_commit() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.berth(&[
        "run",
        "--name",
        "e1",
        "bb",
        "sh",
        "-c",
        "echo new > /x && rm /bin/true && echo more >> /etc/passwd",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // diff: berth and the docker CLI agree with Docker's letters.
    let want = "C /bin\nD /bin/true\nC /etc\nC /etc/passwd\nA /x\n";
    let r = d.berth(&["diff", "e1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, want);
    let r = d.docker(&["diff", "e1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, want);
    // export: the whole filesystem, with the change and without the removed file.
    let out = d.root.join("e1.tar");
    let r = d.berth(&["export", "-o", out.to_str().unwrap(), "e1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let data = std::fs::read(&out).unwrap();
    let mut found = std::collections::BTreeMap::new();
    for e in tar::Archive::new(&data[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut s = String::new();
        if e.header().entry_type().is_file() {
            std::io::Read::read_to_string(&mut e, &mut s).unwrap_or_default();
        }
        found.insert(p, s);
    }
    assert_eq!(found.get("x").map(String::as_str), Some("new\n"));
    assert!(
        found.contains_key("bin/sh") || found.contains_key("bin/busybox"),
        "{:?}",
        found.keys()
    );
    assert!(!found.contains_key("bin/true"));
    let r = d.docker(&["export", "e1", "-o", d.root.join("e1-docker.tar").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    // commit with a CMD change, then run the new image.
    let r = d.berth(&[
        "commit",
        "-m",
        "added x",
        "-a",
        "tester",
        "--change",
        r#"CMD ["cat","/x"]"#,
        "e1",
        "committed:v1",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    assert!(r.stdout.trim().starts_with("sha256:"), "{r:?}");
    // The new layer holds the changes, not the runtime's mount points (/etc/hosts, ...).
    let r = d.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "committed:v1"]);
    let layers: Vec<String> = serde_json::from_str(r.stdout.trim()).unwrap();
    let top = layers.last().unwrap().trim_start_matches("sha256:").to_string();
    let blob = std::fs::read(d.data_root().join("image/blobs/sha256").join(top)).unwrap();
    let mut names: Vec<String> = tar::Archive::new(&blob[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["bin/", "bin/.wh.true", "etc/", "etc/passwd", "x"]);
    let r = d.berth(&["run", "--rm", "committed:v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "new\n");
    let r = d.berth(&[
        "run",
        "--rm",
        "committed:v1",
        "sh",
        "-c",
        "test -e /bin/true || echo gone; tail -n1 /etc/passwd",
    ]);
    assert_eq!(r.stdout, "gone\nmore\n", "{r:?}");
    let r = d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Comment}} {{.Author}} {{json .Config.Cmd}}",
        "committed:v1",
    ]);
    assert_eq!(r.stdout.trim(), r#"added x tester ["cat","/x"]"#, "{r:?}");
    // The docker CLI's commit against berthd.
    let r = d.docker(&["commit", "--change", "ENV COMMITTED=yes", "e1", "committed:v2"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let r = d.docker(&["run", "--rm", "committed:v2", "sh", "-c", "cat /x; echo $COMMITTED"]);
    assert_eq!(r.stdout, "new\nyes\n", "{r:?}");
    // A removed container: 404.
    let r = d.berth(&["rm", "e1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["commit", "e1", "committed:v3"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("No such container: e1"), "{r:?}");
    let (status, _) = d.api("POST", "/commit?container=e1", None);
    assert_eq!(status, 404);

    // A running container is frozen while it is committed (pause and unpause events), and runs on.
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "live",
        "bb",
        "sh",
        "-c",
        "echo hot > /h; sleep 300",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["commit", "live", "committed:live"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let r = d.docker(&["inspect", "-f", "{{.State.Status}}", "live"]);
    assert_eq!(r.stdout.trim(), "running", "{r:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let (_, body) = d.api("GET", &format!("/events?since=0&until={now}"), None);
    let body = String::from_utf8_lossy(&body).into_owned();
    let live_events: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["Actor"]["Attributes"]["name"] == "live")
        .collect();
    let actions: Vec<&str> = live_events.iter().filter_map(|e| e["Action"].as_str()).collect();
    let pos = |a: &str| actions.iter().position(|x| *x == a);
    assert!(
        pos("pause") < pos("commit") && pos("commit") < pos("unpause") && pos("pause").is_some(),
        "{actions:?}"
    );
    let r = d.docker(&["run", "--rm", "committed:live", "cat", "/h"]);
    assert_eq!(r.stdout, "hot\n", "{r:?}");
    let (_, body) = d.api("POST", "/commit?container=live&pause=0", None);
    assert!(String::from_utf8_lossy(&body).contains("sha256:"));
}

#[test]
fn cp_under_userns_remap_uses_container_ids() {
    let d = Daemon::start_with(&["--userns-remap", "default"]);
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "--name",
        "u1",
        "bb",
        "sh",
        "-c",
        "mkdir /w && chown 5:6 /w && stat -c %u:%g /bin/busybox",
    ]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let host = tmpdir(&d, "u");
    std::fs::write(host.join("f"), "remapped\n").unwrap();
    // Without -a the container's root owns the copy, seen as 0:0 from inside; with -a the ids
    // of the archive, inside the container's range.
    let r = d.docker(&["cp", host.join("f").to_str().unwrap(), "u1:/w/plain"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    std::os::unix::fs::chown(host.join("f"), Some(7), Some(8)).unwrap();
    let r = d.docker(&["cp", "-a", host.join("f").to_str().unwrap(), "u1:/w/kept"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let owners = |p: &str| {
        let (status, body) = d.api("GET", &format!("/containers/u1/archive?path={p}"), None);
        assert_eq!(status, 200, "{p}");
        let mut a = tar::Archive::new(&body[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        (e.header().uid().unwrap(), e.header().gid().unwrap())
    };
    assert_eq!(owners("/w"), (5, 6));
    assert_eq!(owners("/w/plain"), (0, 0));
    assert_eq!(owners("/w/kept"), (7, 8));
    assert_eq!(owners("/bin/busybox"), (0, 0));
}

#[test]
fn docker_cp_of_the_root_and_of_contents_to_a_new_directory() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(&d, "r1", "mkdir -p /etc/app && echo a > /etc/app/a && sleep 1000");
    wait_for(&d, "r1", "/ready");
    let host = tmpdir(&d, "r");
    let r = d.docker(&["cp", "r1:/etc/app/.", host.join("fresh").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let listing = std::process::Command::new("find").arg(&host).output().unwrap();
    assert_eq!(
        std::fs::read_to_string(host.join("fresh/a")).ok().as_deref(),
        Some("a\n"),
        "{}",
        String::from_utf8_lossy(&listing.stdout)
    );
    let r = d.docker(&["cp", "r1:/", host.join("rootfs").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let listing = std::process::Command::new("find")
        .arg(&host)
        .arg("-maxdepth")
        .arg("2")
        .output()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(host.join("rootfs/etc/app/a")).ok().as_deref(),
        Some("a\n"),
        "{r:?} {}\n{}",
        String::from_utf8_lossy(&listing.stdout),
        d.log()
    );
    let r = d.docker(&["cp", "r1:/etc/app/", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(host.join("app/a")).unwrap(), "a\n");
}

#[test]
fn docker_sdk_for_python_archive_diff_and_commit() {
    if std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        panic!("the Docker SDK for Python is missing: apt-get install python3-docker (scripts/deps.sh)");
    }
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(&d, "p1", "mkdir -p /data && sleep 1000");
    wait_for(&d, "p1", "/ready");
    let script = r#"
import io, sys, tarfile, docker
client = docker.DockerClient(base_url=sys.argv[1])
c = client.containers.get("p1")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"from python\n"
    info = tarfile.TarInfo("py.txt")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
assert c.put_archive("/data", buf.getvalue()) is True
bits, stat = c.get_archive("/data/py.txt")
raw = b"".join(bits)
with tarfile.open(fileobj=io.BytesIO(raw)) as t:
    print(t.getnames(), t.extractfile("py.txt").read().decode().strip())
print(stat["name"], stat["size"], stat["linkTarget"] == "")
try:
    c.get_archive("/nope")
except docker.errors.NotFound as e:
    print("404", e.explanation)
changes = sorted((x["Kind"], x["Path"]) for x in c.diff())
print(changes)
img = c.commit(repository="pyimg", tag="1", message="py", changes=['CMD ["cat","/data/py.txt"]'])
print(img.attrs["Config"]["Cmd"], img.attrs["Comment"])
fresh = client.containers.create(img.id)
bits, _ = fresh.get_archive("/data/py.txt")
with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
    print(t.extractfile("py.txt").read().decode().strip())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &d.host()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "['py.txt'] from python");
    assert_eq!(lines[1], "py.txt 12 True");
    assert!(
        lines[2].starts_with("404 Could not find the file /nope in container "),
        "{stdout}"
    );
    assert_eq!(lines[3], "[(1, '/data'), (1, '/data/py.txt'), (1, '/ready')]");
    assert_eq!(lines[4], "['cat', '/data/py.txt'] py");
    assert_eq!(lines[5], "from python");
}

#[test]
fn large_files_stream_both_ways() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    run_detached(
        &d,
        "big",
        "dd if=/dev/urandom of=/big bs=1M count=24 2>/dev/null && sleep 1000",
    );
    wait_for(&d, "big", "/ready");
    let host = tmpdir(&d, "big");
    let r = d.docker(&["cp", "big:/big", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let data = std::fs::read(host.join("big")).unwrap();
    assert_eq!(data.len(), 24 << 20);
    // And back in under another name, then out again: the same bytes.
    let r = d.berth(&["cp", host.join("big").to_str().unwrap(), "big:/big2"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.berth(&["cp", "big:/big2", host.join("again").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        std::fs::read(host.join("again")).unwrap() == data,
        "content differs after a round trip"
    );
}

#[test]
fn cp_reaches_volumes_of_stopped_and_running_containers() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let vol = tmpdir(&d, "vol");
    let rovol = tmpdir(&d, "rovol");
    std::fs::write(rovol.join("kept"), "ro\n").unwrap();
    let v = format!("{}:/vol", vol.display());
    let ro = format!("{}:/ro:ro", rovol.display());
    let r = d.berth(&[
        "run",
        "--name",
        "v1",
        "-v",
        &v,
        "-v",
        &ro,
        "bb",
        "sh",
        "-c",
        "echo in-volume > /vol/a",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // Stopped: reads and writes go to the volume, not to the mount point under it.
    assert_eq!(read_in(&d, "v1", "/vol/a").as_deref(), Some("in-volume\n"));
    assert_eq!(read_in(&d, "v1", "/ro/kept").as_deref(), Some("ro\n"));
    let (status, body) = d.api(
        "PUT",
        "/containers/v1/archive?path=/vol",
        Some(&raw_tar(&[("b", b"copied\n")])),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(std::fs::read_to_string(vol.join("b")).unwrap(), "copied\n");
    let (status, body) = d.api(
        "PUT",
        "/containers/v1/archive?path=/ro",
        Some(&raw_tar(&[("c", b"no\n")])),
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(!rovol.join("c").exists());
    // An archive that enters the read-only volume from above is refused by the kernel.
    let (status, body) = d.api(
        "PUT",
        "/containers/v1/archive?path=/",
        Some(&raw_tar(&[("ro/sneaky", b"no\n")])),
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(!rovol.join("sneaky").exists());
    // Running: the same through the container's own mounts.
    let r = d.berth(&["run", "-d", "--name", "v3", "-v", &v, "-v", &ro, "bb", "sleep", "1000"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(common::eventually(Duration::from_secs(10), || read_in(
        &d, "v3", "/vol/b"
    )
    .is_some()));
    let (status, body) = d.api(
        "PUT",
        "/containers/v3/archive?path=/vol",
        Some(&raw_tar(&[("d", b"live\n")])),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(std::fs::read_to_string(vol.join("d")).unwrap(), "live\n");
    let (status, body) = d.api(
        "PUT",
        "/containers/v3/archive?path=/ro",
        Some(&raw_tar(&[("e", b"no\n")])),
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(!rovol.join("e").exists());
}
