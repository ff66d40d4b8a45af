//! `manifest create/annotate/inspect/push/rm`, against a registry of berth's own on 127.0.0.1 in the
//! test's network namespace, beside the real docker CLI on the same client config: a list berth
//! makes is shown by docker exactly as by berth, both push the same bytes (the same digest), an
//! image from another repository is copied into the list's, the pushed list is pulled by the
//! daemon; refusing to amend, a bad platform, a missing image (nothing stored) and missing lists
//! give docker's errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{bin, ok, Daemon, Registry, Run};
use std::path::Path;
use std::process::Stdio;

/// `program args…` in the daemon's network namespace (where the registry is), on `config`.
fn cli(d: &Daemon, program: &str, config: &Path, args: &[&str]) -> Run {
    d.netns_cmd(program)
        .args(args)
        .env("BERTH_HOST", d.host())
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_CLI_HINTS", "false")
        .env("BERTH_NO_AUTOSTART", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running the client")
        .into()
}

fn berth(d: &Daemon, config: &Path, args: &[&str]) -> Run {
    cli(d, bin("berth").to_str().unwrap(), config, args)
}

fn docker(d: &Daemon, config: &Path, args: &[&str]) -> Run {
    cli(d, "docker", config, args)
}

/// A daemon, a registry on 127.0.0.1:`port` beside it holding `bb` as `{reg}/app:amd64` and a
/// changed copy as `{reg}/other:arm64`, and a client config directory of the test's.
fn setup(port: u16) -> (Daemon, Registry, String, std::path::PathBuf) {
    let d = Daemon::start();
    let registry = Registry::start(&d, port);
    let reg = format!("127.0.0.1:{port}");
    d.load_busybox("bb:latest");
    let amd64 = format!("{reg}/app:amd64");
    let arm64 = format!("{reg}/other:arm64");
    ok(&d, &["tag", "bb", &amd64]);
    ok(&d, &["run", "--name", "mk", "bb", "sh", "-c", "echo arm >/marker"]);
    ok(&d, &["commit", "mk", &arm64]);
    // The daemon pushes, from its network namespace.
    for r in [&amd64, &arm64] {
        ok(&d, &["push", "-q", r]);
    }
    let config = d.root.join("client-config");
    std::fs::create_dir_all(&config).unwrap();
    (d, registry, reg, config)
}

#[test]
fn a_list_made_by_berth_is_dockers_and_both_push_the_same_bytes() {
    let (d, _registry, reg, config) = setup(15301);
    let list = format!("{reg}/app:multi");
    let (amd64, arm64) = (format!("{reg}/app:amd64"), format!("{reg}/other:arm64"));

    let r = berth(&d, &config, &["manifest", "create", &list, &amd64, &arm64]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, format!("Created manifest list {list}\n").as_str()),
        "{r:?}"
    );
    let r = berth(&d, &config, &["manifest", "create", &list, &amd64]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "refusing to amend an existing manifest list with no --amend flag\n"
    );
    let r = berth(&d, &config, &["manifest", "create", "--amend", &list, &amd64]);
    assert_eq!(r.code, 0, "{r:?}");

    // The platform comes from each image's config; annotate changes it, and checks it.
    let r = berth(
        &d,
        &config,
        &[
            "manifest",
            "annotate",
            "--arch",
            "arm64",
            "--variant",
            "v8",
            &list,
            &arm64,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = berth(
        &d,
        &config,
        &[
            "manifest", "annotate", "--os", "plan9", "--arch", "arm64", &list, &arm64,
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "manifest entry for image has unsupported os/arch combination: plan9/arm64\n"
    );
    let nothere = format!("{reg}/nothere");
    let r = berth(
        &d,
        &config,
        &["manifest", "annotate", "--arch", "arm64", &list, &nothere],
    );
    assert_eq!(
        r.stderr,
        format!("manifest for image {nothere} does not exist in {list}\n"),
        "{r:?}"
    );

    // docker reads berth's store and shows the same documents.
    for args in [
        vec!["manifest", "inspect", list.as_str()],
        vec!["manifest", "inspect", "-v", list.as_str()],
        vec!["manifest", "inspect", list.as_str(), arm64.as_str()],
    ] {
        let (b, k) = (berth(&d, &config, &args), docker(&d, &config, &args));
        assert_eq!((b.code, k.code), (0, 0), "{b:?}\n{k:?}");
        assert_eq!(b.stdout, k.stdout, "{args:?}");
    }
    let shown: serde_json::Value =
        serde_json::from_str(&berth(&d, &config, &["manifest", "inspect", &list]).stdout).unwrap();
    let platforms: Vec<String> = shown["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            format!(
                "{}/{}{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
                p["variant"].as_str().map(|v| format!("/{v}")).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);

    // Push: the arm64 image is copied from `other` into `app` by digest, then the list.
    let r = berth(&d, &config, &["manifest", "push", &list]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    let arm_digest = shown["manifests"][1]["digest"].as_str().unwrap();
    assert_eq!(
        lines[0],
        format!("Pushed ref {reg}/app@{arm_digest} with digest: {arm_digest}")
    );
    let list_digest = lines[1].to_string();
    let k = docker(&d, &config, &["manifest", "push", &list]);
    assert_eq!(k.code, 0, "{k:?}");
    assert_eq!(
        k.stdout.lines().last(),
        Some(list_digest.as_str()),
        "docker pushed other bytes: {k:?}"
    );

    // The registry has the list: the daemon resolves and pulls it for this host's platform.
    let r = berth(&d, &config, &["manifest", "rm", &list]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = berth(&d, &config, &["manifest", "inspect", "-v", &list]);
    assert_eq!(r.code, 0, "{r:?}");
    let remote: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(remote["Descriptor"]["digest"], list_digest.as_str(), "{r:?}");
    ok(&d, &["pull", "-q", &list]);
    let id = |name: &str| ok(&d, &["image", "inspect", "-f", "{{.Id}}", name]);
    assert_eq!(id(&list), id("bb"));

    // Missing lists.
    let r = berth(&d, &config, &["manifest", "rm", &list, &format!("{reg}/nope:1")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        format!("No such manifest: {list}\nNo such manifest: {reg}/nope:1\n")
    );
    let r = berth(&d, &config, &["manifest", "push", &list]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, format!("No such manifest: {list}\n").as_str()),
        "{r:?}"
    );
}

#[test]
fn a_create_that_fails_stores_nothing() {
    let (d, _registry, reg, config) = setup(15302);
    let list = format!("{reg}/app:broken");
    let r = berth(
        &d,
        &config,
        &[
            "manifest",
            "create",
            &list,
            &format!("{reg}/app:amd64"),
            &format!("{reg}/missing:1"),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("missing"), "{r:?}");
    assert!(!config.join("manifests").join("127.0.0.1-15302_app-broken").exists());
    // An image from another registry cannot be pushed in the list.
    let other = "127.0.0.1:15303/app:multi";
    let r = berth(&d, &config, &["manifest", "create", other, &format!("{reg}/app:amd64")]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = berth(&d, &config, &["manifest", "push", other]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "cannot use source images from a different registry than the target image: 127.0.0.1:15302 != 127.0.0.1:15303\n"
    );
}
