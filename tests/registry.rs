//! Pull and push against a real registry (Debian's docker-registry, distribution 2.8) run inside each
//! test daemon's network namespace on 127.0.0.1:5000, driven by the real docker CLI, berth and docker-py.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, inspect, Daemon};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

const REG: &str = "127.0.0.1:5000";

/// A registry process in the daemon's network namespace, killed (by PID) on drop.
struct Registry {
    child: Child,
    storage: PathBuf,
}

impl Registry {
    fn start(d: &Daemon, htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = d.data_root().parent().unwrap().join("registry");
        std::fs::create_dir_all(&dir).unwrap();
        let storage = dir.join("storage");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {REG}\n",
            storage.display()
        );
        if let Some((user, pass)) = htpasswd {
            let hash = bcrypt::hash_with_result(pass, 4)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            let file = dir.join("htpasswd");
            std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg_path = dir.join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = d
            .netns_cmd("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let up = eventually(Duration::from_secs(20), || {
            d.in_netns(|| std::net::TcpStream::connect(REG).is_ok())
        });
        assert!(up, "docker-registry did not listen on {REG}");
        Registry { child, storage }
    }

    /// The data file of a blob in the registry's storage.
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let r = d.docker(args);
    assert_eq!(r.code, 0, "docker {args:?}: {r:?}\n--- daemon log\n{}", tail(&d.log()));
    r.stdout
}

fn tail(log: &str) -> String {
    let v: Vec<&str> = log.lines().rev().take(40).collect();
    v.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The digest `docker push` printed (`latest: digest: sha256:... size: N`).
fn pushed_digest(out: &str) -> String {
    let l = out
        .lines()
        .find(|l| l.contains(": digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line in {out}"));
    l.split_whitespace().nth(2).unwrap().to_string()
}

fn image_id(d: &Daemon, name: &str) -> String {
    docker_ok(d, &["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

fn blob_file(d: &Daemon, digest: &str) -> PathBuf {
    d.data_root()
        .join("image/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn docker_push_then_pull_back_and_run() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, None);
    d.load_busybox("bb");
    let target = format!("{REG}/bb:latest");
    docker_ok(&d, &["tag", "bb", &target]);

    let out = docker_ok(&d, &["push", &target]);
    assert!(
        out.contains(&format!("The push refers to repository [{REG}/bb]")),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);
    let again = docker_ok(&d, &["push", &target]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert_eq!(pushed_digest(&again), digest);

    // The same blobs pushed to another repository of the same registry are mounted, not uploaded.
    let other = format!("{REG}/other/bb:v1");
    docker_ok(&d, &["tag", "bb", &other]);
    let out = docker_ok(&d, &["push", &other]);
    assert!(out.contains("Mounted from bb"), "{out}");

    let id = image_id(&d, "bb");
    docker_ok(&d, &["rmi", "-f", &id]);
    assert_ne!(d.docker(&["image", "inspect", &target]).code, 0);

    let out = docker_ok(&d, &["pull", &target]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {target}")),
        "{out}"
    );
    assert_eq!(image_id(&d, &target), id, "the pulled image has the pushed config");
    let img = inspect(&d, &target);
    assert_eq!(img["RepoTags"], serde_json::json!([target.clone()]));
    assert_eq!(img["RepoDigests"], serde_json::json!([format!("{REG}/bb@{digest}")]));

    let r = d.docker(&["run", "--rm", &target, "echo", "pulled and running"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "pulled and running\n");

    let out = docker_ok(&d, &["pull", &target]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {target}")),
        "{out}"
    );

    // By digest.
    let by_digest = format!("{REG}/bb@{digest}");
    let out = docker_ok(&d, &["pull", &by_digest]);
    assert!(out.contains("Image is up to date"), "{out}");

    // berth's own CLI, from scratch.
    docker_ok(&d, &["rmi", "-f", &id]);
    let r = d.berth(&["pull", &format!("{REG}/other/bb:v1")]);
    assert_eq!(r.code, 0, "{r:?}\n{}", tail(&d.log()));
    assert_eq!(image_id(&d, &format!("{REG}/other/bb:v1")), id);

    // The progress messages, as dockerd streams them.
    docker_ok(&d, &["rmi", "-f", &id]);
    let (status, body) = d.api(
        "POST",
        &format!("/v1.47/images/create?fromImage={REG}/bb&tag=latest"),
        None,
    );
    assert_eq!(status, 200);
    let msgs: Vec<serde_json::Value> = String::from_utf8_lossy(&body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let layer_id = &img["RootFS"]["Layers"][0].as_str().unwrap()[7..19];
    let statuses: Vec<String> = msgs
        .iter()
        .filter(|m| m["id"] == *layer_id)
        .map(|m| m["status"].as_str().unwrap().to_string())
        .collect();
    let mut want = vec![
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
    ];
    want.extend(["Extracting", "Pull complete"]);
    let mut dedup = statuses.clone();
    dedup.dedup();
    assert_eq!(dedup, want, "{msgs:?}");
    assert_eq!(
        msgs[0],
        serde_json::json!({"status": "Pulling from bb", "id": "latest"})
    );
    let dl = msgs.iter().find(|m| m["status"] == "Downloading").unwrap();
    assert!(dl["progressDetail"]["total"].as_u64().unwrap() > 0, "{dl}");
    assert!(dl["progress"].as_str().unwrap().starts_with('['), "{dl}");
    assert_eq!(msgs[msgs.len() - 2]["status"], format!("Digest: {digest}"));
    assert_eq!(
        msgs[msgs.len() - 1]["status"],
        format!("Status: Downloaded newer image for {target}")
    );

    // The registry as the API sees it.
    let v = d.api_json(&format!("/v1.47/distribution/{REG}/bb:latest/json"));
    assert_eq!(v["Descriptor"]["digest"], digest.as_str(), "{v}");
    assert_eq!(v["Platforms"][0]["os"], "linux", "{v}");
    let (status, body) = d.api("GET", &format!("/v1.47/images/search?term={REG}/bb"), None);
    let body = String::from_utf8_lossy(&body);
    assert!(
        status >= 400 && body.contains("does not support search"),
        "{status} {body}"
    );
}

/// docker-py's `images.pull`; prints the exception class it raised, or `ok`.
fn docker_py_pull(d: &Daemon, repo: &str, tag: &str) -> String {
    let py = format!(
        "import docker\nc = docker.DockerClient(base_url='{}')\ntry:\n    c.images.pull('{repo}', tag='{tag}')\n    print('ok')\nexcept docker.errors.APIError as e:\n    print(type(e).__name__)\n",
        d.host()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&py)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn pull_of_a_missing_repository_is_not_found() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, None);
    // An open registry (distribution 2.8) answers MANIFEST_UNKNOWN for a repository it does not
    // have; dockerd words it as below.
    let r = d.docker(&["pull", &format!("{REG}/nope:latest")]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains(&format!("manifest for {REG}/nope:latest not found: manifest unknown")),
        "{r:?}"
    );
    let (status, body) = d.api(
        "POST",
        &format!("/v1.47/images/create?fromImage={REG}/nope&tag=latest"),
        None,
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(docker_py_pull(&d, &format!("{REG}/nope"), "latest"), "NotFound");
    // Nothing was created for it.
    assert_eq!(d.api_json("/v1.47/images/json"), serde_json::json!([]));
}

/// A single-platform image pulled with another `--platform` is refused with dockerd's message and
/// nothing of it is stored; with its own platform it pulls.
#[test]
fn pull_of_another_platform_is_refused() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, None);
    d.load_busybox("bb");
    let target = format!("{REG}/plat:1");
    docker_ok(&d, &["tag", "bb", &target]);
    docker_ok(&d, &["push", &target]);
    docker_ok(&d, &["rmi", &target]);
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let r = d.docker(&["pull", "--platform", "linux/s390x", &target]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "image with reference {target} was found but does not match the specified platform: wanted linux/s390x, actual: linux/{host}"
        )),
        "{r:?}"
    );
    let listed = d.api_json("/v1.47/images/json").to_string();
    assert!(!listed.contains("plat"), "{listed}");
    docker_ok(&d, &["pull", "--platform", &format!("linux/{host}"), &target]);
    assert!(d.api_json("/v1.47/images/json").to_string().contains(&target));
}

/// A build whose FROM image is not here pulls it (classic builder's behaviour), with the pull's
/// progress in the build's output.
#[test]
fn build_pulls_a_missing_base_image() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, None);
    d.load_busybox("bb");
    let base = format!("{REG}/base:1");
    docker_ok(&d, &["tag", "bb", &base]);
    docker_ok(&d, &["push", &base]);
    docker_ok(&d, &["rmi", &base]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo built > /b\n"),
    )
    .unwrap();
    let mut c = d.docker_cmd(&["build", "-t", "frompulled"]);
    c.arg(dir.path()).env("DOCKER_BUILDKIT", "0");
    let r: common::Run = c.output().unwrap().into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("Pulling from base") || r.stdout.contains("Pull complete"),
        "{r:?}"
    );
    assert_eq!(docker_ok(&d, &["run", "--rm", "frompulled", "cat", "/b"]), "built\n");
}

#[test]
fn tampered_blob_is_refused_and_leaves_nothing() {
    let d = Daemon::start();
    let reg = Registry::start(&d, None);
    d.load_busybox("bb");
    let target = format!("{REG}/bb:latest");
    docker_ok(&d, &["tag", "bb", &target]);
    docker_ok(&d, &["push", &target]);
    let img = inspect(&d, &target);
    let layer = img["RootFS"]["Layers"][0].as_str().unwrap().to_string();
    let id = image_id(&d, &target);
    docker_ok(&d, &["rmi", "-f", &id]);
    assert!(!blob_file(&d, &layer).exists());

    // Same length, other bytes: only the digest can tell.
    let data = reg.blob_path(&layer);
    let len = std::fs::metadata(&data).unwrap().len() as usize;
    std::fs::write(&data, vec![b'x'; len]).unwrap();

    let r = d.docker(&["pull", &target]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("verification failed"), "{r:?}");
    assert_ne!(d.docker(&["image", "inspect", &target]).code, 0);
    assert!(!blob_file(&d, &layer).exists(), "the tampered blob was kept");
    assert!(!d
        .data_root()
        .join("snapshots")
        .join(layer.trim_start_matches("sha256:"))
        .exists());
    for dir in ["image/tmp", "snapshots/tmp"] {
        let tmp: Vec<_> = std::fs::read_dir(d.data_root().join(dir)).unwrap().collect();
        assert!(tmp.is_empty(), "temp files left in {dir}: {tmp:?}");
    }
}

#[test]
fn login_then_push_and_pull_with_credentials() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, Some(("alice", "s3cret")));
    d.load_busybox("bb");
    let target = format!("{REG}/private/bb:1");
    docker_ok(&d, &["tag", "bb", &target]);

    // Wrong password: 401 with the registry's reason.
    let body = format!(r#"{{"username":"alice","password":"nope","serveraddress":"{REG}"}}"#);
    let (status, resp) = d.api("POST", "/v1.47/auth", Some(body.as_bytes()));
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("unauthorized: incorrect username or password"));
    let r = login(&d, "nope");
    assert_ne!(r.0, 0);
    assert!(r.1.contains("incorrect username or password"), "{r:?}");

    // Without credentials the push is refused, and a pull is "pull access denied" (a 404, which
    // docker-py raises as ImageNotFound).
    let r = d.docker(&["push", &target]);
    assert_ne!(r.code, 0, "{r:?}");
    let r = d.docker(&["pull", &target]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "pull access denied for {REG}/private/bb, repository does not exist or may require 'docker login'"
        )),
        "{r:?}"
    );
    assert_eq!(docker_py_pull(&d, &format!("{REG}/private/bb"), "1"), "ImageNotFound");

    let r = login(&d, "s3cret");
    assert_eq!(r.0, 0, "{r:?}");
    assert!(r.1.contains("Login Succeeded"), "{r:?}");
    let out = docker_ok(&d, &["push", &target]);
    assert!(out.contains("Pushed"), "{out}");
    let id = image_id(&d, &target);
    docker_ok(&d, &["rmi", "-f", &id]);
    let out = docker_ok(&d, &["pull", &target]);
    assert!(out.contains("Downloaded newer image"), "{out}");

    // A build FROM the private image pulls it with the credentials the CLI sends
    // (`X-Registry-Config`): the docker CLI's classic builder, then berth's.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {target}\nRUN echo built > /b\n"),
    )
    .unwrap();
    let ctx = ctx.path().to_str().unwrap().to_string();
    docker_ok(&d, &["rmi", "-f", &id]);
    let r: common::Run = d
        .docker_cmd(&["build", "-t", "frompriv:1", &ctx])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Pulling from private/bb"), "{r:?}");
    docker_ok(&d, &["rmi", "-f", &id, "frompriv:1"]);
    let docker_config = d.data_root().parent().unwrap().join("docker-config");
    let r: common::Run = d
        .berth_cmd(&["build", "-t", "frompriv:2", &ctx])
        .env("DOCKER_CONFIG", &docker_config)
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(docker_ok(&d, &["run", "--rm", "frompriv:2", "cat", "/b"]), "built\n");
    // Without them the pull is refused and the build fails saying so.
    docker_ok(&d, &["rmi", "-f", &id, "frompriv:2"]);
    let empty_config = tempfile::tempdir().unwrap();
    let r: common::Run = d
        .berth_cmd(&["build", &ctx])
        .env("DOCKER_CONFIG", empty_config.path())
        .output()
        .unwrap()
        .into();
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("pull access denied"), "{r:?}");
}

/// `docker login` with the password on stdin; (exit code, stdout + stderr).
fn login(d: &Daemon, password: &str) -> (i32, String) {
    let mut c = d.docker_cmd(&["login", REG, "-u", "alice", "--password-stdin"]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn registry_flags_show_in_info() {
    let d = Daemon::start_with(&[
        "--insecure-registry",
        "reg.local:5000",
        "--insecure-registry",
        "10.9.0.0/16",
        "--registry-mirror",
        "https://mirror.example",
    ]);
    let info = d.api_json("/v1.47/info");
    let rc = &info["RegistryConfig"];
    assert_eq!(rc["Mirrors"], serde_json::json!(["https://mirror.example/"]), "{rc}");
    assert!(rc["InsecureRegistryCIDRs"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("10.9.0.0/16")));
    assert_eq!(rc["IndexConfigs"]["reg.local:5000"]["Secure"], false, "{rc}");
    let out = docker_ok(&d, &["info"]);
    assert!(out.contains("reg.local:5000"), "{out}");
    assert!(out.contains("https://mirror.example/"), "{out}");
}

#[test]
fn multi_layer_image_and_all_tags_round_trip() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, None);
    d.load_busybox("bb");
    docker_ok(&d, &["run", "--name", "ctr", "bb", "sh", "-c", "echo layered > /hello"]);
    let v1 = format!("{REG}/multi:1");
    let v2 = format!("{REG}/multi:2");
    docker_ok(&d, &["commit", "ctr", &v1]);
    docker_ok(&d, &["rm", "ctr"]);
    docker_ok(&d, &["tag", &v1, &v2]);
    let out = docker_ok(&d, &["push", &v1]);
    assert_eq!(out.matches("Pushed").count(), 2, "{out}");
    let out = docker_ok(&d, &["push", &v2]);
    assert_eq!(out.matches("Layer already exists").count(), 2, "{out}");

    let id = image_id(&d, &v1);
    let bb = image_id(&d, "bb");
    docker_ok(&d, &["rmi", "-f", &id, &bb]);
    assert_eq!(d.api_json("/v1.47/images/json"), serde_json::json!([]));

    let out = docker_ok(&d, &["pull", &v1]);
    assert_eq!(out.matches("Pull complete").count(), 2, "{out}");
    assert_eq!(image_id(&d, &v1), id);
    let r = d.docker(&["run", "--rm", &v1, "cat", "/hello"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "layered\n");

    // An interrupted pull keeps the layers it verified: simulate one that completed the base layer
    // (its blob is in the content store, nothing else), then pull every tag of the repository.
    let base = inspect(&d, &v1)["RootFS"]["Layers"][0].as_str().unwrap().to_string();
    let base_blob = std::fs::read(blob_file(&d, &base)).unwrap();
    docker_ok(&d, &["rmi", "-f", &id]);
    assert!(!blob_file(&d, &base).exists());
    std::fs::write(blob_file(&d, &base), &base_blob).unwrap();
    let out = docker_ok(&d, &["pull", "--all-tags", &format!("{REG}/multi")]);
    assert!(out.contains(&format!("{}: Already exists", &base[7..19])), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {REG}/multi")),
        "{out}"
    );
    let img = inspect(&d, &v2);
    let mut tags: Vec<String> = serde_json::from_value(img["RepoTags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, vec![v1.clone(), v2.clone()]);
    let r = d.docker(&["run", "--rm", &v2, "cat", "/hello"]);
    assert_eq!(r.stdout, "layered\n", "{r:?}");
}

#[test]
fn gzip_layers_pull_streaming_and_push_as_they_are() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, None);
    // skopeo compresses the layer (gzip) on its way to the registry, as a real image has it.
    let dir = d.data_root().parent().unwrap().join("skopeo");
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join("bb.tar");
    std::fs::write(&archive, berth_testkit::busybox_image_tar("bb:latest").unwrap()).unwrap();
    let out = d
        .netns_cmd("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-compress"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker://{REG}/gz:1"))
        .env("TMPDIR", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));

    let v = d.api_json(&format!("/v1.47/distribution/{REG}/gz:1/json"));
    let out = docker_ok(&d, &["pull", &format!("{REG}/gz:1")]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Digest: {}", v["Descriptor"]["digest"].as_str().unwrap())),
        "{out}"
    );
    let r = d.docker(&["run", "--rm", &format!("{REG}/gz:1"), "echo", "from gzip"]);
    assert_eq!(r.stdout, "from gzip\n", "{r:?}");
    let img = inspect(&d, &format!("{REG}/gz:1"));
    let diff_id = img["RootFS"]["Layers"][0].as_str().unwrap().to_string();

    // Pushed elsewhere as stored: the same gzip blob (mounted), not a recompressed one.
    let copy = format!("{REG}/copy/gz:1");
    docker_ok(&d, &["tag", &format!("{REG}/gz:1"), &copy]);
    let out = docker_ok(&d, &["push", &copy]);
    assert!(out.contains("Mounted from gz"), "{out}");
    let m = d.api_json(&format!("/v1.47/distribution/{copy}/json"));
    assert_eq!(
        m["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let src = raw_manifest(&d, &format!("{REG}/gz:1"));
    let dst = raw_manifest(&d, &copy);
    assert_eq!(dst["layers"][0]["digest"], src["layers"][0]["digest"], "{dst}");
    assert_ne!(dst["layers"][0]["digest"], diff_id.as_str(), "the layer is compressed");
    assert_eq!(
        dst["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
}

/// A manifest as the registry stores it (read with skopeo in the daemon's namespace).
fn raw_manifest(d: &Daemon, reference: &str) -> serde_json::Value {
    let out = d
        .netns_cmd("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `berth` with its docker config (credentials) in `cfg`, and the password (if any) on stdin.
fn berth_with(d: &Daemon, cfg: &std::path::Path, args: &[&str], stdin: Option<&str>) -> common::Run {
    let mut c = d.berth_cmd(args);
    c.env("DOCKER_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("running berth");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("writing stdin");
    }
    drop(input);
    child.wait_with_output().expect("berth output").into()
}

#[test]
fn berth_cli_logs_in_pushes_and_pulls() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, Some(("carol", "pw-9")));
    d.load_busybox("bb");
    let cfg = d.data_root().parent().unwrap().join("docker-config");
    let target = format!("{REG}/team/bb:v1");
    assert_eq!(d.berth(&["tag", "bb", &target]).code, 0);
    // Not logged in: the registry refuses, berth says so and fails.
    let r = berth_with(&d, &cfg, &["push", &target], None);
    assert_ne!(r.code, 0, "{r:?}");
    let r = berth_with(
        &d,
        &cfg,
        &["login", "-u", "carol", "--password-stdin", REG],
        Some("wrong\n"),
    );
    assert_ne!(r.code, 0, "a wrong password must fail: {r:?}");
    let r = berth_with(
        &d,
        &cfg,
        &["login", "-u", "carol", "--password-stdin", REG],
        Some("pw-9\n"),
    );
    assert_eq!(r.code, 0, "{r:?}\n{}", tail(&d.log()));
    assert!(r.stdout.contains("Login Succeeded"), "{r:?}");
    let saved = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(saved.contains(REG), "credentials stored in config.json: {saved}");

    // Not a TTY: plain lines, one per layer status change, then the digest line.
    let r = berth_with(&d, &cfg, &["push", &target], None);
    assert_eq!(r.code, 0, "{r:?}\n{}", tail(&d.log()));
    assert!(
        r.stdout
            .contains(&format!("The push refers to repository [{REG}/team/bb]")),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("Pushed") && r.stdout.contains("v1: digest: sha256:"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("\x1b["), "no cursor moves without a TTY: {r:?}");
    let r = berth_with(&d, &cfg, &["manifest", "inspect", &target], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{r:?}"
    );

    assert_eq!(d.berth(&["rmi", &target, "bb"]).code, 0);
    let r = berth_with(&d, &cfg, &["pull", &target], None);
    assert_eq!(r.code, 0, "{r:?}\n{}", tail(&d.log()));
    assert!(r.stdout.contains("Pull complete"), "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("Status: Downloaded newer image for {target}")),
        "{r:?}"
    );
    let r = d.berth(&["run", "--rm", "--network", "none", &target, "echo", "from the registry"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "from the registry\n"), "{r:?}");
    let r = berth_with(&d, &cfg, &["pull", "-q", &target], None);
    assert_eq!((r.code, r.stdout.trim()), (0, target.as_str()), "{r:?}");

    let r = berth_with(&d, &cfg, &["logout", REG], None);
    assert_eq!(r.code, 0, "{r:?}");
    let saved = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(!saved.contains(REG), "credentials removed: {saved}");
}

#[test]
fn berth_pushes_to_and_pulls_from_berths_own_registry() {
    let d = Daemon::start();
    d.load_busybox("bb");
    let dir = d.data_root().parent().unwrap().join("berth-registry");
    let mut server = d
        .netns_cmd(common::bin("berth-registry").to_str().unwrap())
        .args(["serve", "--addr", "127.0.0.1:5001", "--root"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting berth-registry");
    let up = eventually(Duration::from_secs(20), || {
        d.in_netns(|| std::net::TcpStream::connect("127.0.0.1:5001").is_ok())
    });
    assert!(up, "berth-registry did not listen");
    let target = "127.0.0.1:5001/own/bb:latest";
    assert_eq!(d.berth(&["tag", "bb", target]).code, 0);
    let r = d.berth(&["push", target]);
    assert_eq!(r.code, 0, "{r:?}\n{}", tail(&d.log()));
    assert_eq!(d.berth(&["rmi", target, "bb"]).code, 0);
    let r = d.berth(&["pull", target]);
    assert_eq!(r.code, 0, "{r:?}\n{}", tail(&d.log()));
    let r = d.berth(&["run", "--rm", "--network", "none", target, "echo", "round trip"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "round trip\n"), "{r:?}");
    let _ = server.kill();
    let _ = server.wait();
}
