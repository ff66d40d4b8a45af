//! `berth volume ...`, `inspect` of volumes, `run`/`create` volume flags, `rm -v` and
//! `system df` against a small fake daemon, asserting what a user sees: stdout, stderr and the exit
//! code. Each command runs in a child process (this test binary re-executed, see `child_berth`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{seen, Seen};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

mod common;

const CHILD_ENV: &str = "BERTH_VOLUME_FLOW_CHILD_ARGS";

/// Not a test of its own: when the parent sets `CHILD_ENV`, runs berth with those arguments and
/// exits with its code (the markers separate berth's output from the test harness's).
#[test]
fn child_berth() {
    common::child_main(CHILD_ENV);
}

#[derive(Default)]
struct State {
    /// `METHOD /path?query` and the JSON body of each request.
    log: Vec<(String, Value)>,
    vols: Vec<Value>,
}

type Shared = Arc<Mutex<State>>;

fn vol(name: &str, driver: &str) -> Value {
    json!({"CreatedAt": "2026-01-02T03:04:05Z", "Driver": driver, "Labels": null,
           "Mountpoint": format!("/var/lib/berth/volumes/{name}/_data"), "Name": name,
           "Options": null, "Scope": "local"})
}

fn route(st: &mut State, method: &str, path: &str, query: &str, body: &Value) -> (&'static str, String) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let find = |st: &State, n: &str| st.vols.iter().position(|v| v["Name"] == n);
    let no_such = |n: &str| json!({"message": format!("get {n}: no such volume")}).to_string();
    match (method, parts.as_slice()) {
        ("GET", ["_ping"]) => ("200 OK", "OK".into()),
        ("GET", ["volumes"]) => (
            "200 OK",
            json!({"Volumes": st.vols.clone(), "Warnings": null}).to_string(),
        ),
        ("POST", ["volumes", "create"]) => {
            let name = body["Name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{:064x}", 0xabc + st.vols.len()));
            if let Some(i) = find(st, &name) {
                return ("201 Created", st.vols[i].to_string());
            }
            let mut v = vol(&name, body["Driver"].as_str().unwrap_or("local"));
            v["Labels"] = body["Labels"].clone();
            v["Options"] = body["DriverOpts"].clone();
            st.vols.push(v.clone());
            ("201 Created", v.to_string())
        }
        ("POST", ["volumes", "prune"]) => {
            let all = query.contains("%22all%22");
            let anonymous = |v: &Value| v["Name"].as_str().is_some_and(|n| n.len() == 64);
            let (gone, kept): (Vec<Value>, Vec<Value>) = st
                .vols
                .drain(..)
                .partition(|v| v["Name"] != "busy" && (all || anonymous(v)));
            st.vols = kept;
            let names: Vec<Value> = gone.iter().map(|v| v["Name"].clone()).collect();
            let reclaimed = 1024 * names.len();
            (
                "200 OK",
                json!({"VolumesDeleted": names, "SpaceReclaimed": reclaimed}).to_string(),
            )
        }
        ("GET", ["volumes", n]) => match find(st, n) {
            Some(i) => ("200 OK", st.vols[i].to_string()),
            None => ("404 Not Found", no_such(n)),
        },
        ("DELETE", ["volumes", "busy"]) => {
            let msg = json!({"message": format!("remove busy: volume is in use - [{}]", "c".repeat(64))});
            ("409 Conflict", msg.to_string())
        }
        ("DELETE", ["volumes", n]) => match find(st, n) {
            Some(i) => {
                st.vols.remove(i);
                ("204 No Content", String::new())
            }
            None if query.contains("force=1") => ("204 No Content", String::new()),
            None => ("404 Not Found", no_such(n)),
        },
        ("GET", ["containers", n, "json"]) => (
            "404 Not Found",
            json!({"message": format!("No such container: {n}")}).to_string(),
        ),
        ("GET", ["images", n, "json"]) => (
            "404 Not Found",
            json!({"message": format!("No such image: {n}:latest")}).to_string(),
        ),
        ("GET", ["networks", n]) => (
            "404 Not Found",
            json!({"message": format!("network {n} not found")}).to_string(),
        ),
        ("POST", ["containers", "create"]) => {
            ("201 Created", json!({"Id": "c".repeat(64), "Warnings": []}).to_string())
        }
        ("DELETE", ["containers", _]) => ("204 No Content", String::new()),
        ("POST", ["containers", "prune"]) => (
            "200 OK",
            json!({"ContainersDeleted": null, "SpaceReclaimed": 0}).to_string(),
        ),
        ("POST", ["networks", "prune"]) => ("200 OK", json!({"NetworksDeleted": null}).to_string()),
        ("POST", ["images", "prune"]) => (
            "200 OK",
            json!({"ImagesDeleted": null, "SpaceReclaimed": 0}).to_string(),
        ),
        ("GET", ["system", "df"]) => {
            let mut vols = st.vols.clone();
            for (i, v) in vols.iter_mut().enumerate() {
                v["UsageData"] = json!({"Size": 1_000_000 * (i as i64 + 1), "RefCount": i64::from(i == 0)});
            }
            let df = json!({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": vols, "BuildCache": []});
            ("200 OK", df.to_string())
        }
        _ => ("404 Not Found", r#"{"message":"page not found"}"#.into()),
    }
}

async fn handle(mut s: UnixStream, st: Shared) {
    let Some((method, target, body)) = common::read_json_request(&mut s).await else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = path.strip_prefix("/v1.47").unwrap_or(path).to_string();
    let (status, answer) = {
        let mut g = st.lock().unwrap();
        if !path.ends_with("_ping") {
            g.log.push((format!("{method} {target}"), body.clone()));
        }
        route(&mut g, &method, &path, query, &body)
    };
    let msg = common::response_or_no_content(status, &answer);
    let _ = s.write_all(msg.as_bytes()).await;
}

type Daemon = common::Daemon<State>;

fn start_daemon(name: &str) -> Daemon {
    common::start_daemon("berth-cli-vol", name, Arc::default(), handle)
}

/// Runs berth with `args`, `input` on its stdin.
fn berth_in(sock: &Path, args: &[&str], input: &str) -> Seen {
    common::berth_in(CHILD_ENV, sock, args, input)
}

fn berth(sock: &Path, args: &[&str]) -> Seen {
    berth_in(sock, args, "")
}

fn last_request(d: &Daemon) -> (String, Value) {
    d.st.lock().unwrap().log.last().cloned().unwrap()
}

#[test]
fn volume_create_ls_inspect_rm() {
    let d = start_daemon("crud");
    assert_eq!(
        berth(
            &d.sock,
            &["volume", "create", "-o", "type=tmpfs", "--label", "env=dev", "data"]
        ),
        seen("data\n", "", 0)
    );
    assert_eq!(
        last_request(&d),
        (
            "POST /v1.47/volumes/create".to_string(),
            json!({"Name": "data", "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": {"env": "dev"}})
        )
    );
    let anon = berth(&d.sock, &["volume", "create"]);
    let anon_name = format!("{:064x}", 0xabc + 1);
    assert_eq!(anon, seen(&format!("{anon_name}\n"), "", 0));
    assert_eq!(last_request(&d).1, json!({"Driver": "local"}));
    assert_eq!(berth(&d.sock, &["volume", "create", "-d", "nfs", "vol10"]).code, 0);
    assert_eq!(berth(&d.sock, &["volume", "create", "vol2"]).code, 0);

    assert_eq!(
        berth(&d.sock, &["volume", "ls"]),
        seen(
            &format!("DRIVER    VOLUME NAME\nlocal     {anon_name}\nlocal     data\nlocal     vol2\nnfs       vol10\n"),
            "",
            0
        )
    );
    assert_eq!(
        berth(
            &d.sock,
            &["volume", "ls", "-q", "-f", "dangling=true", "--filter", "label=env"]
        )
        .code,
        0
    );
    assert_eq!(
        last_request(&d).0,
        "GET /v1.47/volumes?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%2C%22label%22%3A%7B%22env%22%3Atrue%7D%7D"
    );
    assert_eq!(
        berth(
            &d.sock,
            &[
                "volume",
                "list",
                "--format",
                "{{.Name}}: {{.Labels}}",
                "-f",
                "name=data"
            ]
        )
        .out,
        format!("{anon_name}: \ndata: env=dev\nvol2: \nvol10: \n")
    );
    let json_line = berth(&d.sock, &["volume", "ls", "--format", "json"]).out;
    let first: Value = serde_json::from_str(json_line.lines().nth(1).unwrap()).unwrap();
    assert_eq!(first["Name"], "data");
    assert_eq!(first["Links"], "N/A");
    assert_eq!(
        berth(&d.sock, &["volume", "ls", "-f", "bogus"]),
        seen("", "bad format of filter (expected name=value)\n", 125)
    );

    let inspect = berth(&d.sock, &["volume", "inspect", "data", "nope"]);
    assert_eq!(inspect.code, 1);
    assert_eq!(inspect.err, "Error response from daemon: get nope: no such volume\n");
    assert!(
        inspect
            .out
            .starts_with("[\n    {\n        \"CreatedAt\": \"2026-01-02T03:04:05Z\",\n"),
        "{}",
        inspect.out
    );
    let arr: Value = serde_json::from_str(&inspect.out).unwrap();
    assert_eq!(arr[0]["Labels"], json!({"env": "dev"}));
    assert_eq!(
        berth(&d.sock, &["volume", "inspect", "nope"]),
        seen("[]\n", "Error response from daemon: get nope: no such volume\n", 1)
    );
    assert_eq!(
        berth(
            &d.sock,
            &[
                "volume",
                "inspect",
                "-f",
                "{{.Name}} {{.Driver}} {{.Options}}",
                "vol10",
                "data"
            ]
        ),
        seen("vol10 nfs map[]\ndata local map[type:tmpfs]\n", "", 0)
    );

    // The generic `inspect` finds volumes after containers, images and networks.
    assert_eq!(
        berth(&d.sock, &["inspect", "-f", "{{.Mountpoint}}", "data"]),
        seen("/var/lib/berth/volumes/data/_data\n", "", 0)
    );
    assert_eq!(
        berth(&d.sock, &["inspect", "--type", "volume", "-f", "{{.Name}}", "vol2"]),
        seen("vol2\n", "", 0)
    );
    assert_eq!(
        berth(&d.sock, &["inspect", "--type", "volume", "nope"]),
        seen("[]\n", "Error response from daemon: get nope: no such volume\n", 1)
    );
    assert_eq!(
        berth(&d.sock, &["inspect", "nope"]),
        seen("[]\n", "Error: No such object: nope\n", 1)
    );

    assert_eq!(
        berth(&d.sock, &["volume", "rm", "nope", "vol2", "busy"]),
        seen(
            "vol2\n",
            &format!(
                "Error response from daemon: get nope: no such volume\n\
                 Error response from daemon: remove busy: volume is in use - [{}]\n",
                "c".repeat(64)
            ),
            1
        )
    );
    assert_eq!(
        berth(&d.sock, &["volume", "remove", "-f", "nope"]),
        seen("nope\n", "", 0)
    );
    assert_eq!(last_request(&d).0, "DELETE /v1.47/volumes/nope?force=1");
    assert_eq!(berth(&d.sock, &["volume", "rm", "vol10"]), seen("vol10\n", "", 0));
    assert_eq!(last_request(&d).0, "DELETE /v1.47/volumes/vol10");
    let usage = berth(&d.sock, &["volume", "create", "a", "b"]);
    assert_eq!(usage.code, 1);
    assert!(
        usage.err.contains(" volume create' requires at most 1 argument\n"),
        "{}",
        usage.err
    );
    let usage = berth(&d.sock, &["volume", "rm"]);
    assert_eq!(usage.code, 1);
    assert!(
        usage.err.contains(" volume rm' requires at least 1 argument\n"),
        "{}",
        usage.err
    );
}

#[test]
fn volume_prune_prompts_and_reports() {
    let d = start_daemon("prune");
    for args in [&["volume", "create"][..], &["volume", "create", "named"][..]] {
        assert_eq!(berth(&d.sock, args).code, 0);
    }
    let anon = format!("{:064x}", 0xabc);
    let prompt = "WARNING! This will remove anonymous local volumes not used by at least one container.\n\
                  Are you sure you want to continue? [y/N] ";
    assert_eq!(berth_in(&d.sock, &["volume", "prune"], "n\n"), seen(prompt, "", 0));
    assert_eq!(last_request(&d).0, "POST /v1.47/volumes/create");
    assert_eq!(
        berth_in(&d.sock, &["volume", "prune"], "y\n"),
        seen(
            &format!("{prompt}Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 1.024kB\n"),
            "",
            0
        )
    );
    assert_eq!(last_request(&d).0, "POST /v1.47/volumes/prune");
    assert_eq!(
        berth(&d.sock, &["volume", "prune", "-f"]),
        seen("Total reclaimed space: 0B\n", "", 0)
    );
    let all_prompt = "WARNING! This will remove all local volumes not used by at least one container.\n\
                      Are you sure you want to continue? [y/N] ";
    assert_eq!(
        berth_in(&d.sock, &["volume", "prune", "--all", "--filter", "label=x"], "y\n"),
        seen(
            &format!("{all_prompt}Deleted Volumes:\nnamed\n\nTotal reclaimed space: 1.024kB\n"),
            "",
            0
        )
    );
    assert_eq!(
        last_request(&d).0,
        "POST /v1.47/volumes/prune?filters=%7B%22all%22%3A%7B%22true%22%3Atrue%7D%2C%22label%22%3A%7B%22x%22%3Atrue%7D%7D"
    );
    // `system prune --volumes` prunes anonymous volumes only, even with `-a`.
    assert_eq!(berth(&d.sock, &["volume", "create"]).code, 0);
    assert_eq!(berth(&d.sock, &["volume", "create", "kept"]).code, 0);
    let anon = format!("{:064x}", 0xabc);
    let sys = berth_in(&d.sock, &["system", "prune", "--volumes", "-a"], "y\n");
    assert_eq!(
        sys,
        seen(
            &format!(
                "WARNING! This will remove:\n  - all stopped containers\n  \
                 - all networks not used by at least one container\n  \
                 - all anonymous volumes not used by at least one container\n  \
                 - all images without at least one container associated to them\n\n\
                 Are you sure you want to continue? [y/N] \
                 Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 1.024kB\n"
            ),
            "",
            0
        )
    );
    let log: Vec<String> =
        d.st.lock()
            .unwrap()
            .log
            .iter()
            .rev()
            .take(4)
            .map(|(l, _)| l.clone())
            .collect();
    assert_eq!(
        log,
        [
            "POST /v1.47/images/prune?filters=%7B%22dangling%22%3A%7B%22false%22%3Atrue%7D%7D",
            "POST /v1.47/volumes/prune",
            "POST /v1.47/networks/prune",
            "POST /v1.47/containers/prune",
        ]
    );
    assert_eq!(
        berth(&d.sock, &["system", "prune", "-f", "--volumes", "--filter", "until=1h"]),
        seen(
            "",
            "ERROR: The \"until\" filter is not supported with \"--volumes\"\n",
            1
        )
    );
    assert_eq!(
        berth(&d.sock, &["volume", "prune", "-af", "--filter", "all=1"]),
        seen(
            "",
            "conflicting options: cannot specify both --all and --filter all=1\n",
            1
        )
    );
}

#[test]
fn run_and_create_volume_flags() {
    let d = start_daemon("run");
    let created = berth(
        &d.sock,
        &[
            "create",
            "-v",
            "data:/d:ro,nocopy",
            "-v",
            "/srv:/srv:rshared",
            "-v",
            "/anon",
            "--mount",
            "type=volume,src=cache,dst=/cache,volume-subpath=app,volume-driver=local,volume-opt=o=uid=1000",
            "--mount",
            "type=tmpfs,dst=/scratch,tmpfs-size=64m,tmpfs-mode=1770",
            "--tmpfs",
            "/run:size=1m",
            "--volumes-from",
            "db:ro",
            "--volume-driver",
            "local",
            "bb",
        ],
    );
    assert_eq!(
        created,
        seen(
            &format!("{}\n", "c".repeat(64)),
            "WARN[0000] `--volume-driver` is ignored for volumes specified via `--mount`. \
             Use `--mount type=volume,volume-driver=...` instead.\n",
            0
        )
    );
    let (line, body) = last_request(&d);
    assert_eq!(line, "POST /v1.47/containers/create");
    assert_eq!(body["Volumes"], json!({"/anon": {}}));
    let hc = &body["HostConfig"];
    assert_eq!(hc["Binds"], json!(["data:/d:ro,nocopy", "/srv:/srv:rshared"]));
    assert_eq!(hc["VolumesFrom"], json!(["db:ro"]));
    assert_eq!(hc["VolumeDriver"], "local");
    assert_eq!(hc["Tmpfs"], json!({"/run": "size=1m"}));
    assert_eq!(
        hc["Mounts"],
        json!([
            {"Type": "volume", "Source": "cache", "Target": "/cache",
             "VolumeOptions": {"Subpath": "app", "DriverConfig": {"Name": "local", "Options": {"o": "uid=1000"}}}},
            {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1016}}
        ])
    );

    let bad = berth(&d.sock, &["create", "-v", "a::/b", "bb"]);
    assert_eq!(bad.code, 125);
    assert!(
        bad.err
            .contains(": invalid spec: a::/b: empty section between colons\n"),
        "{}",
        bad.err
    );
    let bad = berth(
        &d.sock,
        &["run", "--mount", "type=bind,src=/a,dst=/b,volume-nocopy", "bb"],
    );
    assert_eq!(bad.code, 125);
    assert!(
        bad.err.starts_with(
            "invalid argument \"type=bind,src=/a,dst=/b,volume-nocopy\" for \"--mount\" flag: \
             cannot mix 'volume-*' options with mount type 'bind'\n"
        ),
        "{}",
        bad.err
    );

    assert_eq!(berth(&d.sock, &["rm", "-v", "web"]), seen("web\n", "", 0));
    assert_eq!(last_request(&d).0, "DELETE /v1.47/containers/web?force=0&v=1");
}

#[test]
fn system_df_volumes() {
    let d = start_daemon("df");
    for name in ["data", "old"] {
        assert_eq!(berth(&d.sock, &["volume", "create", name]).code, 0);
    }
    let df = berth(&d.sock, &["system", "df"]);
    assert_eq!(df.code, 0, "{}", df.err);
    assert_eq!(
        df.out.lines().nth(3),
        Some("Local Volumes   2         1         3MB       2MB (66%)")
    );
    let v = berth(&d.sock, &["system", "df", "-v"]);
    assert_eq!(v.code, 0, "{}", v.err);
    assert!(
        v.out.contains(
            "\nLocal Volumes space usage:\n\n\
             VOLUME NAME   LINKS     SIZE\n\
             data          1         1MB\n\
             old           0         2MB\n\
             \nBuild cache usage: 0B\n"
        ),
        "{}",
        v.out
    );
    assert!(
        v.out.starts_with("Images space usage:\n\nREPOSITORY   TAG "),
        "{}",
        v.out
    );
}
