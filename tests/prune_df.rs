//! Prune with filters, the space it reports, `system df` and `system prune`, driven by the real
//! docker CLI and berth.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Daemon;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn ids(d: &Daemon) -> Vec<String> {
    let r = d.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut v: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn now_precise() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn created(d: &Daemon, args: &[&str]) {
    let mut a = vec!["create"];
    a.extend(args);
    let r = d.docker(&a);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn container_prune_honours_label_filters() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    created(&d, &["--name", "keep", "bb", "true"]);
    created(&d, &["--name", "lab1", "--label", "x", "bb", "true"]);
    created(&d, &["--name", "lab2", "--label", "x=2", "bb", "true"]);
    // Before the fix this removed every stopped container.
    let r = d.docker(&["container", "prune", "-f", "--filter", "label=x=2"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ids(&d), ["keep", "lab1"]);
    let r = d.docker(&["container", "prune", "-f", "--filter", "label!=x"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ids(&d), ["lab1"]);
    // A misspelt filter is refused, and nothing is removed.
    let r = d.docker(&["container", "prune", "-f", "--filter", "lable=x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid filter 'lable'"), "{r:?}");
    let (status, body) = d.api(
        "POST",
        "/v1.47/containers/prune?filters=%7B%22lable%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["message"], "invalid filter 'lable'");
    assert_eq!(ids(&d), ["lab1"]);
}

#[test]
fn container_prune_until_and_space_reclaimed() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "--name",
        "old",
        "bb",
        "dd",
        "if=/dev/zero",
        "of=/blob",
        "bs=1024",
        "count=100",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    std::thread::sleep(Duration::from_millis(50));
    let between = now_precise();
    std::thread::sleep(Duration::from_millis(50));
    created(&d, &["--name", "new", "bb", "true"]);
    let (status, body) = d.api(
        "POST",
        &format!("/containers/prune?filters=%7B%22until%22%3A%5B%22{between}%22%5D%7D"),
        None,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["ContainersDeleted"].as_array().unwrap().len(), 1, "{v}");
    let space = v["SpaceReclaimed"].as_u64().unwrap();
    assert!((100 * 1024..200 * 1024).contains(&space), "{v}");
    assert_eq!(ids(&d), ["new"]);
    // docker prints what it was told.
    let r = d.docker(&[
        "run",
        "--name",
        "again",
        "bb",
        "dd",
        "if=/dev/zero",
        "of=/blob",
        "bs=1000",
        "count=50",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["container", "prune", "-f"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Deleted Containers:"), "{r:?}");
    assert!(r.stdout.contains("Total reclaimed space: 50"), "{r:?}");
    assert!(ids(&d).is_empty());
}

/// A one-file root filesystem tarball for `docker import`.
fn rootfs_tar(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir.join("fs")).unwrap();
    std::fs::write(dir.join("fs/hello"), vec![b'x'; 4096]).unwrap();
    let tar = dir.join("rootfs.tar");
    let ok = std::process::Command::new("tar")
        .args([
            "-C",
            &dir.join("fs").display().to_string(),
            "-cf",
            &tar.display().to_string(),
            ".",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    tar.display().to_string()
}

fn tags(d: &Daemon) -> Vec<String> {
    let r = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut v: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn image_prune_honours_label_and_refuses_unknown_filters() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let tar = rootfs_tar(&d.root.join("img"));
    for (name, change) in [
        ("lab:1", "LABEL tier=x"),
        ("other:1", "LABEL tier=y"),
        ("plain:1", "ENV A=1"),
    ] {
        let r = d.docker(&["import", "--change", change, &tar, name]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    // Before the fix `-a --filter label=..` removed the base image too.
    let r = d.docker(&["image", "prune", "-a", "-f", "--filter", "label=tier=x"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("untagged: lab:1"), "{r:?}");
    assert_eq!(tags(&d), ["bb:latest", "other:1", "plain:1"]);
    let r = d.docker(&["image", "prune", "-f", "--filter", "lable=x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid filter 'lable'"), "{r:?}");
    let (status, body) = d.api("GET", "/images/json?filters=%7B%22lable%22%3A%5B%22x%22%5D%7D", None);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = d.api(
        "POST",
        "/images/prune?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D",
        None,
    );
    assert_eq!(status, 400);
    // bb is in use by a container: `-a` spares it, and removes the rest that is unused.
    created(&d, &["--name", "user", "bb", "true"]);
    let r = d.docker(&["image", "prune", "-a", "-f", "--filter", "label=tier"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(tags(&d), ["bb:latest", "plain:1"]);
    assert_eq!(d.docker(&["ps", "-aq"]).stdout.lines().count(), 1);
    // until: only images created before it (the busybox fixture is dated 2026-01-01; the import is new).
    assert_eq!(d.docker(&["rm", "user"]).code, 0);
    let r = d.docker(&["image", "prune", "-a", "-f", "--filter", "until=1h"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(tags(&d), ["plain:1"]);
}

#[test]
fn system_df_as_docker_prints_it() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let r = d.docker(&[
        "run",
        "--name",
        "writer",
        "bb",
        "dd",
        "if=/dev/zero",
        "of=/blob",
        "bs=1000",
        "count=20",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let df = d.api_json("/system/df");
    assert!(df["LayersSize"].as_i64().unwrap() > 0, "{df}");
    assert_eq!(df["Images"].as_array().unwrap().len(), 1);
    assert_eq!(df["Images"][0]["Containers"], 1);
    let rw = df["Containers"][0]["SizeRw"].as_i64().unwrap();
    assert!((20_000..24_096).contains(&rw), "{df}");
    assert_eq!(df["Volumes"], serde_json::json!([]));
    assert_eq!(df["BuildCache"], serde_json::json!([]));
    let docker = d.docker(&["system", "df"]);
    assert_eq!(docker.code, 0, "{docker:?}");
    let lines: Vec<&str> = docker.stdout.lines().collect();
    assert!(
        lines[0].starts_with("TYPE") && lines[0].contains("RECLAIMABLE"),
        "{docker:?}"
    );
    let containers: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(containers[..3], ["Containers", "1", "0"], "{docker:?}");
    assert!(
        containers[3].starts_with("20") && containers[5] == "(100%)",
        "{docker:?}"
    );
    // berth prints the same table.
    let berth = d.berth(&["system", "df"]);
    assert_eq!(berth.code, 0, "{berth:?}");
    assert_eq!(berth.stdout, docker.stdout);
    let r = d.berth(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]);
    assert_eq!(
        r.stdout, "Images=1\nContainers=1\nLocal Volumes=0\nBuild Cache=0\n",
        "{r:?}"
    );
}

#[test]
fn berth_system_prune_removes_stopped_containers_and_images() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let tar = rootfs_tar(&d.root.join("img"));
    assert_eq!(d.docker(&["import", &tar, "spare:1"]).code, 0);
    let r = d.docker(&[
        "run",
        "--name",
        "gone",
        "bb",
        "dd",
        "if=/dev/zero",
        "of=/blob",
        "bs=1000",
        "count=10",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    created(&d, &["--name", "kept", "--label", "keep=1", "bb", "true"]);
    let r = d.berth(&["system", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("Deleted Containers:\n"), "{r:?}");
    assert!(r.stdout.contains("Total reclaimed space: 10"), "{r:?}");
    assert_eq!(ids(&d), ["kept"]);
    // Nothing dangling: both images stay.
    assert_eq!(tags(&d), ["bb:latest", "spare:1"]);
    let r = d.berth(&["system", "prune", "-a", "-f"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Deleted Images:\nuntagged: "), "{r:?}");
    assert!(r.stdout.contains("untagged: bb:latest"), "{r:?}");
    assert!(r.stdout.contains("untagged: spare:1"), "{r:?}");
    assert!(ids(&d).is_empty());
    assert!(tags(&d).is_empty());
    let r = d.berth(&["system", "prune", "-f", "--filter", "lable=x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid filter 'lable'"), "{r:?}");
}

#[test]
fn docker_system_prune_works_and_prunes_are_announced() {
    let d = Daemon::start();
    d.load_busybox("bb:latest");
    let t0 = now_precise();
    let r = d.docker(&[
        "run",
        "--name",
        "gone",
        "bb",
        "dd",
        "if=/dev/zero",
        "of=/blob",
        "bs=1000",
        "count=10",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.docker(&["system", "prune", "-f"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("Deleted Containers:\n"), "{r:?}");
    assert!(ids(&d).is_empty());
    assert_eq!(tags(&d), ["bb:latest"]);
    let until = now_precise();
    let r = d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=prune",
        "--format",
        "{{.Type}} {{.Actor.Attributes.reclaimed}}",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    let reclaimed: u64 = lines[0].strip_prefix("container ").unwrap().parse().unwrap();
    assert!((10_000..14_096).contains(&reclaimed), "{r:?}");
    assert_eq!(lines[1], "network 0", "{r:?}");
    assert_eq!(lines[2], "image 0", "{r:?}");
}
