//! `inspect`, `version` and `info`.

use anyhow::Result;
use berth_client::{Client, CLIENT_API_VERSION};
use serde_json::{json, Value};

use crate::args::{InfoArgs, RegistryArgs, VersionArgs};
use crate::connect::{connect, ConnectOpts};
use crate::format::Format;
use crate::units;
use crate::StatusError;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// Fields docker's typed structs always have: a missing or null list prints `[]` and a map
/// `map[]` in templates (docker renders inspect templates against Go structs).
const ZERO_LISTS: &[&str] = &[
    "/Args",
    "/Mounts",
    "/RepoTags",
    "/RepoDigests",
    "/Config/Cmd",
    "/Config/Entrypoint",
    "/Config/Env",
    "/Config/OnBuild",
    "/Config/Shell",
    "/HostConfig/Binds",
    "/HostConfig/CapAdd",
    "/HostConfig/CapDrop",
    "/HostConfig/Dns",
    "/HostConfig/DnsOptions",
    "/HostConfig/DnsSearch",
    "/HostConfig/ExtraHosts",
    "/HostConfig/GroupAdd",
    "/HostConfig/Links",
    "/HostConfig/SecurityOpt",
    "/HostConfig/Ulimits",
    "/HostConfig/Devices",
    "/HostConfig/VolumesFrom",
    "/HostConfig/ConsoleSize",
];
const ZERO_MAPS: &[&str] = &[
    "/Config/Labels",
    "/Config/ExposedPorts",
    "/Config/Volumes",
    "/HostConfig/PortBindings",
    "/HostConfig/Tmpfs",
    "/HostConfig/Sysctls",
    "/HostConfig/StorageOpt",
];

fn fill_go_zero_values(v: &mut Value) {
    let is_container = v.get("State").is_some();
    let is_image = v.get("RootFS").is_some();
    if !is_container && !is_image {
        return;
    }
    for (list, paths) in [(true, ZERO_LISTS), (false, ZERO_MAPS)] {
        for p in paths {
            let (parent, key) = p.rsplit_once('/').unwrap_or(("", p));
            let parent_v = if parent.is_empty() {
                Some(&mut *v)
            } else {
                v.pointer_mut(parent)
            };
            if let Some(Value::Object(m)) = parent_v {
                let missing = m.get(key).is_none_or(Value::is_null);
                if missing {
                    m.insert(key.to_string(), if list { json!([]) } else { json!({}) });
                }
            }
        }
    }
}

/// `docker inspect` / `docker container inspect` / `docker image inspect`.
pub async fn inspect(
    client: &Client,
    format: Option<String>,
    size: bool,
    kind: Option<&str>,
    names: Vec<String>,
    generic: bool,
) -> Result<i32> {
    if let Some(k) = kind {
        if !matches!(k, "container" | "image" | "network" | "volume") {
            return Err(fail(format!("\"{k}\" is not a valid value for --type")).into());
        }
    }
    let tmpl = match format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(Format::parse(f).map_err(fail)?),
        None => None,
    };
    let mut found: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for name in &names {
        let res = match kind {
            Some("container") => client.container_inspect_raw(name, size).await,
            Some("image") => client.image_inspect_raw(name).await,
            Some("network") => client.network_inspect_raw(name, &Default::default()).await,
            Some("volume") => client.volume_inspect_raw(name).await,
            // Docker's order for an untyped `inspect`: container, image, network, then volume.
            _ => match client.container_inspect_raw(name, size).await {
                Err(e) if e.is_not_found() => match client.image_inspect_raw(name).await {
                    Err(e) if e.is_not_found() => match client.network_inspect_raw(name, &Default::default()).await {
                        Err(e) if e.is_not_found() => client.volume_inspect_raw(name).await,
                        other => other,
                    },
                    other => other,
                },
                other => other,
            },
        };
        match res {
            Ok(bytes) => found.push(String::from_utf8_lossy(&bytes).trim().to_string()),
            Err(e) if e.is_not_found() && generic => errors.push(match kind {
                Some("container") => format!("Error: No such container: {name}"),
                Some("image") => format!("Error: No such image: {name}"),
                Some("network") => format!("Error: No such network: {name}"),
                // Docker passes the daemon's error through for a typed volume lookup.
                Some("volume") => e.to_string(),
                _ => format!("Error: No such object: {name}"),
            }),
            Err(e) => errors.push(e.to_string()),
        }
    }
    crate::objects::print_inspected(&found, &errors, tmpl, |v| {
        fill_go_zero_values(v);
        if v.get("Mountpoint").is_some() {
            crate::volume::fill_volume_zero_values(v);
        }
    })
}

/// An RFC 3339 build time as Go's `time.ANSIC` (`Thu Jan  1 00:00:00 2026`), as docker prints it.
fn go_ansic(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn client_version(api: &str, context: &str) -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "DefaultAPIVersion": CLIENT_API_VERSION,
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "GoVersion": "n/a (rust)",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": context,
    })
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `docker version`.
/// `berth registry ...`: runs `berth-registry` with the same arguments (as docker runs its CLI
/// plugins) and answers with its exit code.
pub fn registry(a: RegistryArgs) -> Result<i32> {
    let bin = crate::connect::sibling_binary("berth-registry");
    let status = std::process::Command::new(&bin).args(&a.args).status().map_err(|e| {
        StatusError::new(
            1,
            format!(
                "berth registry: cannot run {}: {e} (is berth installed completely?)",
                bin.display()
            ),
        )
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// `system dial-stdio`: relays standard input and output over a new connection to the daemon. It
/// is what `ssh` runs on the remote host for an `ssh://` daemon address (docker's and berth's
/// clients ask for `docker system dial-stdio`), once per connection: the daemon is dialled
/// straight away, and only when that fails is it pinged (for autostart, or the usual error). As
/// docker's: when standard input ends, the connection's write side is closed and the daemon's
/// answer still read to its end; when the daemon closes, it returns at once.
pub async fn dial_stdio(copts: &ConnectOpts) -> Result<i32> {
    use tokio::io::AsyncWriteExt;
    let stream = match crate::connect::client_for(&copts.endpoint()?)?.dial().await {
        Ok(s) => s,
        Err(_) => connect(copts).await?.dial().await?,
    };
    let (mut from_daemon, mut to_daemon) = tokio::io::split(stream);
    let up = async {
        tokio::io::copy(&mut tokio::io::stdin(), &mut to_daemon).await?;
        to_daemon.shutdown().await
    };
    let down = async {
        let mut stdout = tokio::io::stdout();
        tokio::io::copy(&mut from_daemon, &mut stdout).await?;
        stdout.flush().await
    };
    tokio::pin!(up, down);
    // The CLI prints an error's top line only: the cause goes in it.
    let failed = |what: &'static str| move |e: std::io::Error| anyhow::anyhow!("{what}: {e}");
    let down_failed = failed("copying the daemon's stream to standard output");
    tokio::select! {
        r = &mut up => {
            r.map_err(failed("copying standard input to the daemon"))?;
            down.await.map_err(down_failed)?;
        }
        r = &mut down => r.map_err(down_failed)?,
    }
    Ok(0)
}

pub async fn version(copts: &ConnectOpts, a: VersionArgs) -> Result<i32> {
    let conn = connect(copts).await;
    let server = match &conn {
        Ok(c) => c.version().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let api = conn
        .as_ref()
        .map(|c| c.api_version().to_string())
        .unwrap_or_else(|_| CLIENT_API_VERSION.into());
    let context = copts.context_name(|k| std::env::var(k).ok());
    let cv = client_version(&api, &context);
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let t = Format::parse(f).map_err(fail)?;
        let ctx = json!({"Client": cv, "Server": server.as_ref().ok()});
        outln!("{}", t.render(&ctx).map_err(fail)?);
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(fail(e).into()),
        };
    }
    let mut out = String::new();
    out.push_str("Client:\n");
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!(" {:<19}{v}\n", format!("{k}:")));
    line(&mut out, "Version", &s(&cv, "Version"));
    let api_shown = if api == CLIENT_API_VERSION {
        api.clone()
    } else {
        format!("{api} (downgraded from {CLIENT_API_VERSION})")
    };
    line(&mut out, "API version", &api_shown);
    if let Some(rustc) = option_env!("BERTH_RUSTC_VERSION") {
        line(&mut out, "Rust version", rustc);
    }
    line(&mut out, "Git commit", &s(&cv, "GitCommit"));
    line(&mut out, "OS/Arch", &format!("{}/{}", s(&cv, "Os"), s(&cv, "Arch")));
    line(&mut out, "Context", &context);
    let sv = match server {
        Ok(v) => v,
        Err(e) => {
            crate::write_out(&out);
            return Err(fail(e).into());
        }
    };
    let platform = sv.pointer("/Platform/Name").and_then(Value::as_str).unwrap_or("");
    out.push('\n');
    out.push_str(&format!(
        "Server:{}\n",
        if platform.is_empty() {
            String::new()
        } else {
            format!(" {platform}")
        }
    ));
    let l2 = |out: &mut String, k: &str, v: &str| out.push_str(&format!("  {:<18}{v}\n", format!("{k}:")));
    let comps = sv["Components"].as_array().cloned().unwrap_or_default();
    let engine = comps.iter().find(|c| c["Name"] == "Engine");
    out.push_str(" Engine:\n");
    let d = engine.map(|e| e["Details"].clone()).unwrap_or(Value::Null);
    let pick = |dk: &str, sk: &str| {
        let v = s(&d, dk);
        if v.is_empty() {
            s(&sv, sk)
        } else {
            v
        }
    };
    l2(&mut out, "Version", &s(&sv, "Version"));
    l2(
        &mut out,
        "API version",
        &format!(
            "{} (minimum version {})",
            pick("ApiVersion", "ApiVersion"),
            pick("MinAPIVersion", "MinAPIVersion")
        ),
    );
    l2(&mut out, "Go version", &pick("GoVersion", "GoVersion"));
    l2(&mut out, "Git commit", &pick("GitCommit", "GitCommit"));
    l2(&mut out, "Built", &go_ansic(&pick("BuildTime", "BuildTime")));
    l2(
        &mut out,
        "OS/Arch",
        &format!("{}/{}", pick("Os", "Os"), pick("Arch", "Arch")),
    );
    l2(&mut out, "Experimental", &pick("Experimental", "Experimental"));
    for c in comps.iter().filter(|c| c["Name"] != "Engine") {
        out.push_str(&format!(" {}:\n", s(c, "Name")));
        l2(&mut out, "Version", &s(c, "Version"));
        if let Some(details) = c["Details"].as_object() {
            let mut keys: Vec<&String> = details.keys().collect();
            keys.sort();
            for k in keys {
                l2(&mut out, k, &s(&c["Details"], k));
            }
        }
    }
    crate::write_out(&out);
    Ok(0)
}

/// `docker info`.
pub async fn info(copts: &ConnectOpts, a: InfoArgs) -> Result<i32> {
    let context = copts.context_name(|k| std::env::var(k).ok());
    let conn = connect(copts).await;
    let server = match &conn {
        Ok(c) => c.info().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let t = Format::parse(f).map_err(fail)?;
        let mut ctx = server.clone().unwrap_or_else(|_| json!({}));
        if let Value::Object(m) = &mut ctx {
            m.insert(
                "ClientInfo".into(),
                json!({"Version": env!("CARGO_PKG_VERSION"), "Context": context, "Debug": false}),
            );
            if let Err(e) = &server {
                m.insert("ServerErrors".into(), json!([e]));
            }
        }
        outln!("{}", t.render(&ctx).map_err(fail)?);
        return Ok(if server.is_ok() { 0 } else { 1 });
    }
    let mut out = String::new();
    out.push_str(&format!(
        "Client:\n Version:    {}\n Context:    {context}\n Debug Mode: false\n\nServer:\n",
        env!("CARGO_PKG_VERSION")
    ));
    let v = match server {
        Ok(v) => v,
        Err(e) => {
            crate::write_out(&out);
            return Err(fail(format!("ERROR: {e}\nerrors pretty printing info")).into());
        }
    };
    out.push_str(&render_info(&v));
    crate::write_out(&out);
    Ok(0)
}

/// The server half of `docker info`, in the docker CLI's order and wording.
pub fn render_info(v: &Value) -> String {
    let mut o = String::new();
    let n = |k: &str| v[k].as_i64().unwrap_or(0);
    let line = |o: &mut String, label: &str, val: String| o.push_str(&format!(" {label}: {val}\n"));
    line(&mut o, "Containers", n("Containers").to_string());
    o.push_str(&format!("  Running: {}\n", n("ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", n("ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", n("ContainersStopped")));
    line(&mut o, "Images", n("Images").to_string());
    line(&mut o, "Server Version", s(v, "ServerVersion"));
    line(&mut o, "Storage Driver", s(v, "Driver"));
    if let Some(status) = v["DriverStatus"].as_array() {
        for pair in status {
            if let (Some(k), Some(val)) = (pair[0].as_str(), pair[1].as_str()) {
                o.push_str(&format!("  {k}: {val}\n"));
            }
        }
    }
    line(&mut o, "Logging Driver", s(v, "LoggingDriver"));
    line(&mut o, "Cgroup Driver", s(v, "CgroupDriver"));
    line(&mut o, "Cgroup Version", s(v, "CgroupVersion"));
    o.push_str(" Plugins:\n");
    for kind in ["Volume", "Network", "Log"] {
        let list: Vec<&str> = v["Plugins"][kind]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        o.push_str(&format!("  {kind}: {}\n", list.join(" ")));
    }
    // As the docker CLI: node details unless the node is inactive or locked.
    let swarm = v.pointer("/Swarm/LocalNodeState").and_then(Value::as_str).unwrap_or("");
    line(&mut o, "Swarm", swarm.to_string());
    if swarm != "inactive" && swarm != "locked" {
        let sw = &v["Swarm"];
        o.push_str(&format!("  NodeID: {}\n", s(sw, "NodeID")));
        o.push_str(&format!(
            "  Is Manager: {}\n",
            sw["ControlAvailable"].as_bool().unwrap_or(false)
        ));
        o.push_str(&format!("  Node Address: {}\n", s(sw, "NodeAddr")));
    }
    if let Some(rt) = v["Runtimes"].as_object() {
        let mut names: Vec<&str> = rt.keys().map(String::as_str).collect();
        names.sort();
        line(&mut o, "Runtimes", names.join(" "));
    }
    line(&mut o, "Default Runtime", s(v, "DefaultRuntime"));
    line(&mut o, "Init Binary", s(v, "InitBinary"));
    let commit = |k: &str| v[k]["ID"].as_str().unwrap_or_default().to_string();
    o.push_str(&format!(" containerd version: {}\n", commit("ContainerdCommit")));
    o.push_str(&format!(" runc version: {}\n", commit("RuncCommit")));
    o.push_str(&format!(" init version: {}\n", commit("InitCommit")));
    if let Some(sec) = v["SecurityOptions"].as_array().filter(|a| !a.is_empty()) {
        o.push_str(" Security Options:\n");
        for opt in sec.iter().filter_map(Value::as_str) {
            let mut parts = opt.split(',');
            let name = parts.next().unwrap_or_default().trim_start_matches("name=");
            o.push_str(&format!("  {name}\n"));
            for p in parts {
                if let Some((k, val)) = p.split_once('=') {
                    let mut label = k.to_string();
                    if let Some(first) = label.get_mut(0..1) {
                        first.make_ascii_uppercase();
                    }
                    o.push_str(&format!("   {label}: {val}\n"));
                }
            }
        }
    }
    line(&mut o, "Kernel Version", s(v, "KernelVersion"));
    line(&mut o, "Operating System", s(v, "OperatingSystem"));
    line(&mut o, "OSType", s(v, "OSType"));
    line(&mut o, "Architecture", s(v, "Architecture"));
    line(&mut o, "CPUs", n("NCPU").to_string());
    line(
        &mut o,
        "Total Memory",
        units::bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0)),
    );
    line(&mut o, "Name", s(v, "Name"));
    line(&mut o, "ID", s(v, "ID"));
    line(&mut o, "Docker Root Dir", s(v, "DockerRootDir"));
    line(&mut o, "Debug Mode", v["Debug"].as_bool().unwrap_or(false).to_string());
    for (label, key) in [
        ("HTTP Proxy", "HttpProxy"),
        ("HTTPS Proxy", "HttpsProxy"),
        ("No Proxy", "NoProxy"),
    ] {
        if !s(v, key).is_empty() {
            line(&mut o, label, s(v, key));
        }
    }
    let strings = |val: &Value| -> Vec<String> {
        val.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let labels = strings(&v["Labels"]);
    if !labels.is_empty() {
        o.push_str(" Labels:\n");
        for l in labels {
            o.push_str(&format!("  {l}\n"));
        }
    }
    line(
        &mut o,
        "Experimental",
        v["ExperimentalBuild"].as_bool().unwrap_or(false).to_string(),
    );
    let reg = &v["RegistryConfig"];
    let mut insecure: Vec<String> = reg["IndexConfigs"]
        .as_object()
        .map(|m| {
            m.values()
                .filter(|c| c["Secure"] == false)
                .filter_map(|c| c["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    insecure.sort();
    insecure.extend(strings(&reg["InsecureRegistryCIDRs"]));
    if !insecure.is_empty() {
        o.push_str(" Insecure Registries:\n");
        for r in insecure {
            o.push_str(&format!("  {r}\n"));
        }
    }
    let mirrors = strings(&reg["Mirrors"]);
    if !mirrors.is_empty() {
        o.push_str(" Registry Mirrors:\n");
        for m in mirrors {
            o.push_str(&format!("  {m}\n"));
        }
    }
    line(
        &mut o,
        "Live Restore Enabled",
        v["LiveRestoreEnabled"].as_bool().unwrap_or(false).to_string(),
    );
    if let Some(pools) = v["DefaultAddressPools"].as_array().filter(|p| !p.is_empty()) {
        o.push_str(" Default Address Pools:\n");
        for p in pools {
            o.push_str(&format!(
                "   Base: {}, Size: {}\n",
                s(p, "Base"),
                p["Size"].as_i64().unwrap_or(0)
            ));
        }
    }
    o.push('\n');
    if let Some(w) = v["Warnings"].as_array() {
        for x in w.iter().filter_map(Value::as_str) {
            o.push_str(x);
            o.push('\n');
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_for_templates() {
        let mut v = json!({"State": {}, "Config": {"Cmd": ["sh"], "Entrypoint": null}, "HostConfig": {}});
        fill_go_zero_values(&mut v);
        let f =
            Format::parse("{{.Config.Entrypoint}}|{{.Config.Cmd}}|{{.HostConfig.Binds}}|{{.Config.Labels}}").unwrap();
        assert_eq!(f.render(&v).unwrap(), "[]|[sh]|[]|map[]");
    }

    #[test]
    fn info_rendering() {
        let v = json!({
            "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 2,
            "Images": 4, "ServerVersion": "0.1.0", "Driver": "overlay2", "LoggingDriver": "json-file",
            "CgroupVersion": "2", "Runtimes": {"runc": {}, "berth": {}}, "DefaultRuntime": "berth",
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "NCPU": 2, "MemTotal": 8_589_934_592u64, "Debug": false, "Name": "host"
        });
        let out = render_info(&v);
        assert!(
            out.starts_with(
                " Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 4\n Server Version: 0.1.0\n"
            ),
            "{out}"
        );
        assert!(out.contains(" Runtimes: berth runc\n"));
        assert!(out.contains("  seccomp\n   Profile: builtin\n  cgroupns\n"));
        assert!(out.contains(" CPUs: 2\n Total Memory: 8GiB\n"));
        assert!(out.contains(" Debug Mode: false\n"));
        let v = json!({
            "Labels": ["team=a"], "HttpProxy": "http://p:3128", "LiveRestoreEnabled": true,
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": ["https://m.example/"],
                "IndexConfigs": {"docker.io": {"Name": "docker.io", "Secure": true}}},
            "DefaultAddressPools": [{"Base": "10.9.0.0/16", "Size": 24}], "Warnings": ["WARNING: x"]
        });
        let out = render_info(&v);
        for want in [
            " HTTP Proxy: http://p:3128\n Labels:\n  team=a\n Experimental: false\n",
            " Insecure Registries:\n  127.0.0.0/8\n Registry Mirrors:\n  https://m.example/\n",
            " Live Restore Enabled: true\n Default Address Pools:\n   Base: 10.9.0.0/16, Size: 24\n\nWARNING: x\n",
        ] {
            assert!(out.contains(want), "{want:?} in\n{out}");
        }
    }
}
