//! Volumes and mounts end to end: named and anonymous volumes, binds, tmpfs, `--volumes-from`, the
//! image's `VOLUME`s with Docker's copy-up, `rm -v`, persistence across containers and a daemon
//! restart, in-use refusal, prune and `system df`, through `berth`, the real docker CLI and the
//! Docker SDK for Python.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{inspect, ok, Daemon};

/// An image with a `VOLUME /data` whose directory has content (for copy-up).
fn image_with_volume(d: &Daemon) {
    ok(d, &["run", "--name", "mk", "bb", "sh", "-c", "mkdir -p /data/sub && echo seed > /data/seed && echo deep > /data/sub/f && chown 1000:1000 /data/seed && chmod 640 /data/seed"]);
    ok(d, &["commit", "--change", "VOLUME /data", "mk", "withvol"]);
    ok(d, &["rm", "mk"]);
}

#[test]
fn named_volumes_persist_across_containers_and_restarts() {
    let mut d = Daemon::start();
    d.load_busybox("bb");
    assert_eq!(ok(&d, &["volume", "create", "--label", "k=v", "store"]), "store\n");
    ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "store:/data",
            "bb",
            "sh",
            "-c",
            "echo hello > /data/f",
        ],
    );
    assert_eq!(
        ok(&d, &["run", "--rm", "-v", "store:/x:ro", "bb", "cat", "/x/f"]),
        "hello\n"
    );
    let r = d.berth(&["run", "--rm", "-v", "store:/x:ro", "bb", "sh", "-c", "echo no > /x/f"]);
    assert_ne!(r.code, 0, "read-only volume was written: {r:?}");
    // Auto-created by -v, listed, inspected as Docker shows it.
    ok(
        &d,
        &["run", "-d", "--name", "user", "-v", "auto:/a", "bb", "sleep", "600"],
    );
    let ls = ok(&d, &["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    assert!(ls.contains("local store\n") && ls.contains("local auto\n"), "{ls}");
    let v: serde_json::Value = serde_json::from_str(&ok(&d, &["volume", "inspect", "store"])).unwrap();
    assert_eq!(v[0]["Labels"]["k"], "v");
    assert!(
        v[0]["Mountpoint"].as_str().unwrap().ends_with("/volumes/store/_data"),
        "{v}"
    );
    let m = &inspect(&d, "user")["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "auto");
    assert_eq!(m["Destination"], "/a");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["RW"], true);
    // In use: 409, even stopped; the data survives a restart.
    let (status, _) = d.api("DELETE", "/volumes/auto", None);
    assert_eq!(status, 409);
    ok(&d, &["stop", "-t", "0", "user"]);
    let (status, _) = d.api("DELETE", "/volumes/auto", None);
    assert_eq!(status, 409);
    d.restart();
    let (status, _) = d.api("DELETE", "/volumes/auto", None);
    assert_eq!(status, 409, "in-use count lost across a restart");
    assert_eq!(
        ok(&d, &["run", "--rm", "-v", "store:/data", "bb", "cat", "/data/f"]),
        "hello\n"
    );
    assert_eq!(ok(&d, &["volume", "ls", "-q", "--filter", "dangling=true"]), "store\n");
    assert_eq!(ok(&d, &["volume", "ls", "-q", "--filter", "dangling=false"]), "auto\n");
    assert_eq!(
        ok(
            &d,
            &[
                "volume",
                "ls",
                "-q",
                "--filter",
                "label=k=v",
                "--filter",
                "driver=local"
            ]
        ),
        "store\n"
    );
    let (status, _) = d.api("GET", "/volumes?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", None);
    assert_eq!(status, 400);
    ok(&d, &["rm", "user"]);
    assert_eq!(ok(&d, &["volume", "rm", "auto"]), "auto\n");
    let r = d.berth(&["volume", "rm", "nosuch"]);
    assert_ne!(r.code, 0);
    for bad in ["../x", "a/b", "-x"] {
        let r = d.berth(&["volume", "create", bad]);
        assert_ne!(r.code, 0, "{bad}: {r:?}");
    }
}

#[test]
fn anonymous_volumes_copy_up_and_rm_v() {
    let d = Daemon::start();
    d.load_busybox("bb");
    image_with_volume(&d);
    ok(&d, &["create", "--name", "c1", "withvol", "true"]);
    let m = &inspect(&d, "c1")["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Destination"], "/data");
    let anon = m["Name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64);
    // Copy-up: the image's content, owners and modes are in the new volume.
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "c1",
            "bb",
            "sh",
            "-c",
            "cat /data/seed /data/sub/f; stat -c '%u:%g %a' /data/seed",
        ],
    );
    assert_eq!(out, "seed\ndeep\n1000:1000 640\n");
    // nocopy: an empty volume.
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "fresh:/data:nocopy",
            "withvol",
            "ls",
            "-A",
            "/data",
        ],
    );
    assert_eq!(out, "");
    // rm -v removes the anonymous volume, named ones stay.
    ok(
        &d,
        &["create", "--name", "c2", "-v", "keep:/k", "-v", "/anon", "bb", "true"],
    );
    let names: Vec<String> = inspect(&d, "c2")["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .collect();
    ok(&d, &["rm", "-v", "c2"]);
    let ls = ok(&d, &["volume", "ls", "-q"]);
    assert!(ls.contains("keep\n"), "{ls}");
    for n in names.iter().filter(|n| n.len() == 64) {
        assert!(!ls.contains(n.as_str()), "anonymous volume {n} left: {ls}");
    }
    // --rm removes anonymous volumes too.
    ok(&d, &["run", "--rm", "-v", "/scratch", "bb", "true"]);
    let count = ok(&d, &["volume", "ls", "-q"]).lines().count();
    ok(&d, &["rm", "c1"]);
    let r = ok(&d, &["volume", "prune", "-f"]);
    assert!(r.contains(&anon), "{r}");
    assert_eq!(ok(&d, &["volume", "ls", "-q"]).lines().count(), count - 1);
}

#[test]
fn binds_tmpfs_and_mount_flags() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let host = d.root.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let spec = format!("{}:/h", host.display());
    assert_eq!(
        ok(&d, &["run", "--rm", "-v", &spec, "bb", "cat", "/h/in"]),
        "from host\n"
    );
    ok(
        &d,
        &["run", "--rm", "-v", &spec, "bb", "sh", "-c", "echo back > /h/out"],
    );
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "back\n");
    // -v creates a missing host directory; --mount refuses it.
    let missing = d.root.join("made-by-v");
    ok(
        &d,
        &["run", "--rm", "-v", &format!("{}:/m", missing.display()), "bb", "true"],
    );
    assert!(missing.is_dir());
    let r = d.berth(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={}/nope,target=/m", d.root.display()),
        "bb",
        "true",
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bind source path does not exist"), "{r:?}");
    let ro = ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "robind",
            "--mount",
            &format!("type=bind,source={},target=/h,readonly", host.display()),
            "bb",
            "sleep",
            "600",
        ],
    );
    assert!(!ro.is_empty());
    let m = &inspect(&d, "robind")["Mounts"][0];
    assert_eq!(
        (m["Type"].as_str(), m["RW"].as_bool(), m["Propagation"].as_str()),
        (Some("bind"), Some(false), Some("rprivate"))
    );
    let r = d.berth(&["exec", "robind", "sh", "-c", "echo x > /h/in"]);
    assert_ne!(r.code, 0);
    // tmpfs with a size limit and a mode.
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--tmpfs",
            "/t:size=1m,mode=1777",
            "bb",
            "sh",
            "-c",
            "stat -c %a /t; dd if=/dev/zero of=/t/big bs=1k count=2048 2>/dev/null; echo rc=$?",
        ],
    );
    assert!(out.starts_with("1777\n"), "{out}");
    assert!(out.contains("rc=1"), "tmpfs size not enforced: {out}");
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/tm,tmpfs-size=65536",
            "bb",
            "sh",
            "-c",
            "grep ' /tm ' /proc/mounts",
        ],
    );
    assert!(out.contains("tmpfs") && out.contains("size=64k"), "{out}");
    let r = d.berth(&["run", "--rm", "-v", "/a:/x", "-v", "/b:/x", "bb", "true"]);
    assert!(r.stderr.contains("Duplicate mount point"), "{r:?}");
}

#[test]
fn docker_cli_and_sdk_drive_volumes() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let r = d.docker(&["volume", "create", "dv"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["run", "--rm", "-v", "dv:/d", "bb", "sh", "-c", "echo hi > /d/x"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["run", "--rm", "--mount", "source=dv,target=/d", "bb", "cat", "/d/x"]);
    assert_eq!(r.stdout, "hi\n", "{r:?}");
    let r = d.docker(&["volume", "ls", "--filter", "name=dv", "-q"]);
    assert_eq!(r.stdout, "dv\n", "{r:?}");
    let r = d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(r.stdout.contains("Local Volumes 1"), "{r:?}");
    let probe = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import docker"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: the Docker SDK for Python is missing (apt-get install python3-docker)");
        return;
    }
    let script = r#"
import docker
c = docker.from_env()
v = c.volumes.create("pyvol", labels={"a": "b"})
out = c.containers.run("bb", "sh -c 'echo py > /v/f; cat /v/f'", volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
print(out.decode().strip())
print(c.volumes.get("pyvol").attrs["Labels"])
try:
    c.containers.create("bb", "true", name="holder", volumes=["pyvol:/v"])
    c.volumes.get("pyvol").remove()
    print("removed in use!")
except docker.errors.APIError as e:
    print("refused", e.status_code)
c.containers.get("holder").remove()
v.remove()
print(sorted(x.name for x in c.volumes.list()))
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "py\n{'a': 'b'}\nrefused 409\n['dv']\n");
}

#[test]
fn a_symlink_in_the_image_cannot_send_a_mount_outside() {
    let d = Daemon::start();
    d.load_busybox("bb");
    // A host directory the image's symlink points at (through enough `..` to leave any root).
    let host = std::path::PathBuf::from(format!("/tmp/berth-escape-{}", std::process::id()));
    std::fs::create_dir_all(&host).unwrap();
    let target = format!("/../../../../../../..{}", host.display());
    ok(&d, &["run", "--name", "evil", "bb", "ln", "-s", &target, "/escape"]);
    ok(&d, &["commit", "evil", "evil:1"]);
    let vol = d.root.join("vsrc");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("payload"), "x").unwrap();
    // The bind lands inside the container (the symlink resolved in its root), never on the host.
    let r = d.berth(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/escape/sub", vol.display()),
        "evil:1",
        "ls",
        "/escape/sub",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "payload\n", "{r:?}");
    assert_eq!(
        std::fs::read_dir(&host).unwrap().count(),
        0,
        "something was made on the host"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&host.display().to_string()),
        "a mount reached the host"
    );
    std::fs::remove_dir_all(&host).unwrap();
}

#[test]
fn typed_local_volumes_and_subpaths() {
    let d = Daemon::start();
    d.load_busybox("bb");
    ok(
        &d,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=1m",
            "tv",
        ],
    );
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "tv:/t",
            "bb",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts; dd if=/dev/zero of=/t/big bs=1k count=2048 2>/dev/null; echo rc=$?",
        ],
    );
    assert!(out.contains("tmpfs /t tmpfs"), "{out}");
    assert!(out.contains("rc=1"), "size option not applied: {out}");
    // Unmounted again once no container uses it.
    let mp = serde_json::from_str::<serde_json::Value>(&ok(&d, &["volume", "inspect", "tv"])).unwrap()[0]["Mountpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&mp), "tmpfs volume still mounted at {mp}");
    ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/d",
            "bb",
            "sh",
            "-c",
            "mkdir -p /d/sub && echo in-sub > /d/sub/f",
        ],
    );
    let out = ok(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=data,target=/s,volume-subpath=sub",
            "bb",
            "cat",
            "/s/f",
        ],
    );
    assert_eq!(out, "in-sub\n");
}
