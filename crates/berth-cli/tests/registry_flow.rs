//! `berth login`, `logout`, `push`, `pull`, `search` and `manifest inspect` against a small fake
//! daemon, with the client config in a temp `DOCKER_CONFIG`: what a user sees, what lands in
//! config.json, and the `X-Registry-Auth` each request carries. Each command runs in a child
//! process (this test binary re-executed, see `child_berth`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::seen;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

mod common;

const CHILD_ENV: &str = "BERTH_REGISTRY_FLOW_CHILD_ARGS";

/// Not a test of its own: when the parent sets `CHILD_ENV`, runs berth with those arguments and
/// exits with its code.
#[test]
fn child_berth() {
    common::child_main(CHILD_ENV);
}

#[derive(Default)]
struct State {
    /// `METHOD /path?query`, the decoded `X-Registry-Auth` (`null` when absent) and the body.
    log: Vec<(String, Value, Value)>,
}

type Shared = Arc<Mutex<State>>;

const PULL_STREAM: &str = r#"{"status":"Pulling from bb","id":"v1"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaaa"}
{"status":"Downloading","progressDetail":{"current":100,"total":200},"progress":"[==>  ]","id":"aaaa"}
{"status":"Downloading","progressDetail":{"current":200,"total":200},"progress":"[====>]","id":"aaaa"}
{"status":"Pull complete","progressDetail":{},"id":"aaaa"}
{"status":"Digest: sha256:d1"}
{"status":"Status: Downloaded newer image for localhost:5000/bb:v1"}
"#;

const PUSH_STREAM: &str = r#"{"status":"The push refers to repository [localhost:5000/bb]"}
{"status":"Preparing","progressDetail":{},"id":"5b8c72934dfc"}
{"status":"Pushing","progressDetail":{"current":512,"total":2048},"progress":"[=>  ]","id":"5b8c72934dfc"}
{"status":"Pushed","progressDetail":{},"id":"5b8c72934dfc"}
{"status":"latest: digest: sha256:d1 size: 527"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:d1","Size":527}}
"#;

const DENIED_STREAM: &str = r#"{"status":"The push refers to repository [localhost:5000/denied]"}
{"status":"Preparing","progressDetail":{},"id":"5b8c72934dfc"}
{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied: requested access to the resource is denied"}
"#;

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn route(method: &str, path: &str, query: &str, body: &Value) -> (&'static str, String) {
    match (method, path) {
        ("GET", "/_ping") => ("200 OK", "OK".into()),
        ("POST", "/auth") => match (body["username"].as_str(), body["password"].as_str()) {
            (_, Some("bad")) => (
                "401 Unauthorized",
                json!({"message": "login attempt to http://localhost:5000/v2/ failed with status: 401 Unauthorized"})
                    .to_string(),
            ),
            (Some("tok"), _) => (
                "200 OK",
                json!({"Status": "Login Succeeded", "IdentityToken": "id-token-1"}).to_string(),
            ),
            _ => ("200 OK", json!({"Status": "Login Succeeded"}).to_string()),
        },
        ("POST", "/images/create") => ("200 OK", PULL_STREAM.into()),
        ("POST", p) if p.starts_with("/images/") && p.ends_with("/push") => {
            if p.contains("denied") {
                ("200 OK", DENIED_STREAM.into())
            } else {
                ("200 OK", PUSH_STREAM.into())
            }
        }
        ("GET", "/images/search") if query.contains("term=boom") => (
            "500 Internal Server Error",
            json!({"message": "Get \"https://index.docker.io/v1/search?q=boom\": dial tcp: lookup index.docker.io: no such host"})
                .to_string(),
        ),
        ("GET", "/images/search") => (
            "200 OK",
            json!([{"name": "busybox", "description": "Busybox base image.", "star_count": 3300,
                    "is_official": true, "is_automated": false}])
            .to_string(),
        ),
        ("GET", p) if p.starts_with("/distribution/") => (
            "200 OK",
            json!({"Descriptor": {"mediaType": "application/vnd.oci.image.index.v1+json",
                                  "digest": "sha256:d1", "size": 527},
                   "Platforms": [{"architecture": "amd64", "os": "linux"}]})
            .to_string(),
        ),
        _ => ("404 Not Found", json!({"message": format!("page not found: {path}")}).to_string()),
    }
}

async fn handle(mut s: UnixStream, st: Shared) {
    while let Some((method, target, headers, body)) = common::read_request_with_headers(&mut s).await {
        let target = percent_decode(&target);
        let target = target.strip_prefix("/v1.47").unwrap_or(&target).to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let auth = headers
            .iter()
            .find(|(k, _)| k == "x-registry-auth")
            .map(|(_, v)| {
                let raw = base64::engine::general_purpose::URL_SAFE.decode(v).unwrap();
                serde_json::from_slice::<Value>(&raw).unwrap()
            })
            .unwrap_or(Value::Null);
        if path != "/_ping" {
            st.lock()
                .unwrap()
                .log
                .push((format!("{method} {target}"), auth, body.clone()));
        }
        let (status, reply) = route(&method, path, query, &body);
        if s.write_all(common::response(status, &reply).as_bytes()).await.is_err() {
            return;
        }
    }
}

struct Env {
    daemon: common::Daemon<State>,
    dir: tempfile::TempDir,
}

impl Env {
    fn new(name: &str) -> Env {
        let daemon = common::start_daemon(
            "berth-registry-flow",
            name,
            Arc::new(Mutex::new(State::default())),
            handle,
        );
        Env {
            daemon,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("config.json")
    }

    fn berth(&self, args: &[&str], input: &str) -> common::Seen {
        self.berth_with_path(args, input, None)
    }

    fn berth_with_path(&self, args: &[&str], input: &str, path: Option<&str>) -> common::Seen {
        let dir = self.dir.path().to_str().unwrap().to_string();
        let mut vars = vec![("DOCKER_CONFIG", dir.as_str())];
        if let Some(p) = path {
            vars.push(("PATH", p));
        }
        common::berth_in_env(CHILD_ENV, &self.daemon.sock, args, input, &vars)
    }

    fn take_log(&self) -> Vec<(String, Value, Value)> {
        std::mem::take(&mut self.daemon.st.lock().unwrap().log)
    }

    fn read_config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.config()).unwrap()).unwrap()
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

const PLAINTEXT_WARNING: &str = "Configure a credential helper to remove this warning.";

#[test]
fn login_stores_credentials_and_logout_removes_them() {
    let env = Env::new("login");
    std::fs::write(env.config(), r#"{"psFormat":"table {{.ID}}","detachKeys":"ctrl-x"}"#).unwrap();

    let r = env.berth(
        &["login", "-u", "bob", "--password-stdin", "localhost:5000"],
        "s3cret\n",
    );
    assert_eq!((r.out.as_str(), r.code), ("Login Succeeded\n", 0), "{r:?}");
    assert!(r.err.contains(PLAINTEXT_WARNING), "{r:?}");
    let log = env.take_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0, "POST /auth");
    assert_eq!(
        log[0].2,
        json!({"username": "bob", "password": "s3cret", "serveraddress": "localhost:5000"})
    );
    let c = env.read_config();
    assert_eq!(c["auths"]["localhost:5000"]["auth"], b64("bob:s3cret"));
    assert_eq!(c["psFormat"], "table {{.ID}}");
    assert_eq!(c["detachKeys"], "ctrl-x");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(env.config()).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // An identity token replaces the password; -p warns.
    let r = env.berth(&["login", "-u", "tok", "-p", "pw", "reg.example:443"], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r
        .err
        .starts_with("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"));
    let c = env.read_config();
    assert_eq!(c["auths"]["reg.example:443"]["identitytoken"], "id-token-1");
    assert!(!c["auths"]["reg.example:443"]["auth"]
        .as_str()
        .map(|a| a.ends_with(&b64("tok:pw")))
        .unwrap_or(false));

    // A refused login prints the daemon's error and stores nothing.
    env.take_log();
    let r = env.berth(&["login", "-u", "eve", "--password-stdin", "other:1"], "bad");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.err,
        "Error response from daemon: login attempt to http://localhost:5000/v2/ failed with status: 401 Unauthorized\n"
    );
    assert!(env.read_config()["auths"].get("other:1").is_none());

    // Usage mistakes.
    let r = env.berth(&["login", "--password-stdin"], "x");
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Must provide --username with --password-stdin\n", 1)
    );
    let r = env.berth(&["login", "-u", "bob", "other:1"], "");
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error: Cannot perform an interactive login from a non TTY device\n", 1)
    );

    let r = env.berth(&["logout", "localhost:5000"], "");
    assert_eq!(r, seen("Removing login credentials for localhost:5000\n", "", 0));
    let c = env.read_config();
    assert!(c["auths"].get("localhost:5000").is_none());
    assert!(c["auths"].get("reg.example:443").is_some());
    assert_eq!(c["psFormat"], "table {{.ID}}");
    let r = env.berth(&["logout", "localhost:5000"], "");
    assert_eq!(r, seen("Not logged in to localhost:5000\n", "", 0));

    // The global --config flag wins over DOCKER_CONFIG.
    let other = tempfile::tempdir().unwrap();
    let dir = other.path().to_str().unwrap();
    let r = env.berth(
        &["--config", dir, "login", "-u", "cfg", "--password-stdin", "c:1"],
        "pw",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let c: Value = serde_json::from_slice(&std::fs::read(other.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(c["auths"]["c:1"]["auth"], b64("cfg:pw"));
    assert!(env.read_config()["auths"].get("c:1").is_none());
}

#[test]
fn push_renders_the_stream_and_fails_on_an_error() {
    let env = Env::new("push");
    std::fs::write(
        env.config(),
        json!({"auths": {"localhost:5000": {"auth": b64("bob:pw")}}}).to_string(),
    )
    .unwrap();
    let r = env.berth(&["push", "localhost:5000/bb"], "");
    assert_eq!(
        r,
        seen(
            "Using default tag: latest\n\
             The push refers to repository [localhost:5000/bb]\n\
             5b8c72934dfc: Preparing\n\
             5b8c72934dfc: Pushed\n\
             latest: digest: sha256:d1 size: 527\n",
            "",
            0
        )
    );
    let log = env.take_log();
    assert_eq!(log[0].0, "POST /images/localhost:5000/bb/push?tag=latest");
    assert_eq!(log[0].1["username"], "bob");
    assert_eq!(log[0].1["password"], "pw");
    assert_eq!(log[0].1["serveraddress"], "localhost:5000");

    let r = env.berth(&["image", "push", "-q", "localhost:5000/bb:v2"], "");
    assert_eq!(r, seen("localhost:5000/bb:v2\n", "", 0));
    assert_eq!(env.take_log()[0].0, "POST /images/localhost:5000/bb/push?tag=v2");

    let r = env.berth(&["push", "--all-tags", "localhost:5000/bb"], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.take_log()[0].0, "POST /images/localhost:5000/bb/push");

    let r = env.berth(&["push", "localhost:5000/denied:1"], "");
    assert_eq!(
        r,
        seen(
            "The push refers to repository [localhost:5000/denied]\n5b8c72934dfc: Preparing\n",
            "denied: requested access to the resource is denied\n",
            1
        )
    );
    let r = env.berth(&["push", "-a", "localhost:5000/bb:v1"], "");
    assert_eq!((r.err.as_str(), r.code), ("tag can't be used with --all-tags/-a\n", 1));

    // Without credentials for the registry, `{}` goes out.
    let r = env.berth(&["push", "-q", "other.example/bb:1"], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.take_log().last().unwrap().1, json!({}));
}

#[test]
fn pull_sends_the_stored_credentials() {
    let env = Env::new("pull");
    std::fs::write(
        env.config(),
        json!({"auths": {"localhost:5000": {"auth": b64("bob:pw")},
                         "https://index.docker.io/v1/": {"identitytoken": "hub-token"}}})
        .to_string(),
    )
    .unwrap();
    let r = env.berth(&["pull", "localhost:5000/bb:v1"], "");
    assert_eq!(
        r,
        seen(
            "v1: Pulling from bb\n\
             aaaa: Pulling fs layer\n\
             aaaa: Pull complete\n\
             Digest: sha256:d1\n\
             Status: Downloaded newer image for localhost:5000/bb:v1\n\
             localhost:5000/bb:v1\n",
            "",
            0
        )
    );
    let log = env.take_log();
    assert_eq!(log[0].0, "POST /images/create?fromImage=localhost:5000/bb&tag=v1");
    assert_eq!(
        log[0].1,
        json!({"username": "bob", "password": "pw", "serveraddress": "localhost:5000"})
    );
    let r = env.berth(&["pull", "-q", "busybox"], "");
    assert_eq!(r, seen("docker.io/library/busybox:latest\n", "", 0));
    assert_eq!(
        env.take_log()[0].1,
        json!({"identitytoken": "hub-token", "serveraddress": "https://index.docker.io/v1/"})
    );
    let r = env.berth(&["pull", "-q", "nowhere.example/x"], "");
    assert_eq!(r.code, 0);
    assert_eq!(env.take_log()[0].1, json!({}));
}

#[test]
fn credential_helper_from_path() {
    let env = Env::new("helper");
    let bin = env.dir.path().join("bin");
    let store = env.dir.path().join("store");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    // The credential helper protocol: `get` reads the server and prints JSON, `store` reads
    // {"ServerURL","Username","Secret"}, `erase` reads the server.
    let script = format!(
        r#"#!/bin/sh
d={}
case "$1" in
  get) s=$(cat); f="$d/$(echo "$s" | tr '/:' '__')"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) j=$(cat); s=$(echo "$j" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); echo "$j" > "$d/$(echo "$s" | tr '/:' '__')" ;;
  erase) s=$(cat); rm -f "$d/$(echo "$s" | tr '/:' '__')" ;;
esac
"#,
        store.display()
    );
    let helper = bin.join("docker-credential-test");
    std::fs::write(&helper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(env.config(), r#"{"credsStore":"test"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let r = env.berth_with_path(
        &["login", "-u", "bob", "--password-stdin", "localhost:5000"],
        "pw",
        Some(&path),
    );
    assert_eq!(r, seen("Login Succeeded\n", "", 0));
    assert_eq!(
        std::fs::read_to_string(env.config()).unwrap(),
        r#"{"credsStore":"test"}"#
    );
    assert!(Path::new(&store.join("localhost_5000")).exists());
    env.take_log();
    let r = env.berth_with_path(&["pull", "-q", "localhost:5000/bb:v1"], "", Some(&path));
    assert_eq!(r.code, 0, "{r:?}");
    let log = env.take_log();
    assert_eq!(log[0].1["username"], "bob");
    assert_eq!(log[0].1["password"], "pw");
    let r = env.berth_with_path(&["logout", "localhost:5000"], "", Some(&path));
    assert_eq!(r, seen("Removing login credentials for localhost:5000\n", "", 0));
    assert!(!Path::new(&store.join("localhost_5000")).exists());
}

#[test]
fn search_and_manifest_inspect() {
    let env = Env::new("search");
    let r = env.berth(&["search", "--limit", "5", "-f", "is-official=true", "busybox"], "");
    assert_eq!(
        r,
        seen(
            "NAME      DESCRIPTION           STARS     OFFICIAL\nbusybox   Busybox base image.   3300      [OK]\n",
            "",
            0
        )
    );
    let log = env.take_log();
    assert_eq!(
        log[0].0,
        r#"GET /images/search?term=busybox&limit=5&filters={"is-official":{"true":true}}"#
    );
    assert_eq!(log[0].1, json!({}));
    let r = env.berth(&["search", "--format", "{{.Name}}: {{.StarCount}}", "busybox"], "");
    assert_eq!(r, seen("busybox: 3300\n", "", 0));
    let r = env.berth(&["search", "boom"], "");
    assert_eq!(
        r,
        seen(
            "",
            "Error response from daemon: Get \"https://index.docker.io/v1/search?q=boom\": dial tcp: lookup index.docker.io: no such host\n",
            1
        )
    );

    env.take_log();
    let r = env.berth(&["manifest", "inspect", "localhost:5000/bb:v1"], "");
    assert_eq!(
        r,
        seen(
            "{\n   \"digest\": \"sha256:d1\",\n   \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n   \"size\": 527\n}\n",
            "",
            0
        )
    );
    assert_eq!(env.take_log()[0].0, "GET /distribution/localhost:5000/bb:v1/json");
    let r = env.berth(&["manifest", "inspect", "-v", "localhost:5000/bb:v1"], "");
    assert_eq!(r.code, 0);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["Platforms"][0]["os"], "linux");
    assert_eq!(v["Ref"], "localhost:5000/bb:v1");
}
