//! `run`/`create` flags and their translation into the `POST /containers/create` body, using the
//! Engine API field names (`Config` + `HostConfig`), as the docker CLI's `parse()` does.

use serde_json::{json, Map, Value};

use crate::args::ContainerOpts;
use crate::units;

/// Reads `--env-file` lines as Docker's `opts.ParseEnvFile`: `#` comments and blank lines skipped,
/// `KEY` alone takes the value from the environment (and is dropped when unset).
pub fn parse_env_file(
    name: &str,
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if key.contains(char::is_whitespace) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Some(v) = lookup(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    let _ = name;
    Ok(out)
}

/// `-e KEY=VAL`, or `-e KEY` taking the value from the environment (kept as `KEY` if unset).
pub fn expand_env(e: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match lookup(e) {
        Some(v) => format!("{e}={v}"),
        None => e.to_string(),
    }
}

fn parse_ulimit(s: &str) -> Result<Value, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (a, b),
        None => (limits, limits),
    };
    let parse =
        |v: &str| -> Result<i64, String> { v.parse::<i64>().map_err(|_| format!("invalid ulimit argument: {s}")) };
    let (soft, hard) = (parse(soft)?, parse(hard)?);
    if soft > hard && hard != -1 {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

fn parse_restart(s: &str) -> Result<Value, String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match name {
        "" | "no" | "always" | "unless-stopped" if count.is_none() => {
            Ok(json!({"Name": name, "MaximumRetryCount": 0}))
        }
        "on-failure" => {
            let n = match count {
                Some(c) => c.parse::<i64>().map_err(|_| "invalid restart policy format: maximum retry count must be an integer".to_string())?,
                None => 0,
            };
            Ok(json!({"Name": name, "MaximumRetryCount": n}))
        }
        "no" | "always" | "unless-stopped" => Err("invalid restart policy format: maximum retry count can only be used with 'on-failure'".to_string()),
        _ => Err(format!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")),
    }
}

fn split_port(spec: &str) -> (&str, &str) {
    match spec.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (spec, "tcp"),
    }
}

fn port_range(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("invalid containerPort: {s}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u32 = a.parse().map_err(|_| bad())?;
    let b: u32 = b.parse().map_err(|_| bad())?;
    if a > b || b > 65535 {
        return Err(bad());
    }
    Ok((a, b))
}

/// `-p [ip:][hostPort:]containerPort[/proto]` into `ExposedPorts` keys and `PortBindings`.
pub fn parse_publish(
    spec: &str,
    exposed: &mut Map<String, Value>,
    bindings: &mut Map<String, Value>,
) -> Result<(), String> {
    let (addr, proto) = split_port(spec);
    let parts: Vec<&str> = if addr.starts_with('[') {
        // [ipv6]:host:container
        let end = addr.find(']').ok_or_else(|| format!("invalid ip address: {addr}"))?;
        let ip = &addr[1..end];
        let rest: Vec<&str> = addr[end + 1..].trim_start_matches(':').split(':').collect();
        let mut v = vec![ip];
        v.extend(rest);
        v
    } else {
        addr.split(':').collect()
    };
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => return Err(format!("invalid port format for --publish: {spec}")),
    };
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (c0, c1) = port_range(container)?;
    let host_range = if host.is_empty() { None } else { Some(port_range(host)?) };
    if let Some((h0, h1)) = host_range {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
    }
    for (i, p) in (c0..=c1).enumerate() {
        let key = format!("{p}/{proto}");
        exposed.insert(key.clone(), json!({}));
        let host_port = match host_range {
            None => String::new(),
            Some((h0, h1)) if h0 == h1 => h0.to_string(),
            Some((h0, _)) => (h0 + i as u32).to_string(),
        };
        let entry = bindings.entry(key).or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(a) = entry {
            a.push(json!({"HostIp": ip, "HostPort": host_port}));
        }
    }
    Ok(())
}

fn kv_map(items: &[String], what: &str) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    for it in items {
        match it.split_once('=') {
            Some((k, v)) => m.insert(k.to_string(), Value::String(v.to_string())),
            None if what == "label" => m.insert(it.to_string(), Value::String(String::new())),
            None => return Err(format!("invalid argument \"{it}\" for \"--{what}\" flag")),
        };
    }
    Ok(m)
}

/// Docker's capability normalisation: upper case with the `CAP_` prefix, `ALL` kept as is.
pub fn normalize_caps(caps: &[String]) -> Vec<String> {
    caps.iter()
        .map(|c| {
            let up = c.to_uppercase();
            if up == "ALL" || up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            }
        })
        .collect()
}

fn list_or_null(v: Vec<String>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// `--mount type=bind,source=/a,target=/b,readonly` into an Engine API `Mount`.
pub fn parse_mount(spec: &str) -> Result<Value, String> {
    let bad = |why: &str| format!("invalid argument \"{spec}\" for \"--mount\" flag: {why}");
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind = Map::new();
    let mut tmpfs = Map::new();
    let mut volume_labels = Map::new();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim())),
            None => (field.trim().to_lowercase(), None),
        };
        let flag = |v: Option<&str>| -> Result<bool, String> {
            match v.map(str::to_lowercase).as_deref() {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(x) => Err(bad(&format!("invalid value for {k}: {x}"))),
            }
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| bad(&format!("invalid field '{field}' must be a key=value pair")))
        };
        match k.as_str() {
            "type" => kind = need(v)?,
            "source" | "src" => {
                m.insert("Source".into(), json!(need(v)?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(need(v)?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(flag(v)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(need(v)?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(need(v)?));
            }
            "bind-recursive" => {}
            "volume-nocopy" => {
                volume_labels.insert("NoCopy".into(), json!(flag(v)?));
            }
            "tmpfs-size" => {
                let n = units::ram_in_bytes(&need(v)?).map_err(|e| bad(&e))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let mode = i64::from_str_radix(&need(v)?, 8).map_err(|e| bad(&e.to_string()))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => return Err(bad(&format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if !m.contains_key("Target") {
        return Err(bad("target is required"));
    }
    m.insert("Type".into(), json!(kind));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    if !volume_labels.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(volume_labels));
    }
    Ok(Value::Object(m))
}

/// Environment and file access the mapping needs, injected for tests.
pub struct Env<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
}

/// Builds the `POST /containers/create` body. `detach` is `run -d` (and always true for `create`).
pub fn create_body(o: &ContainerOpts, detach: bool, env: &Env<'_>) -> Result<Value, String> {
    let image = o.image();
    if image.is_empty() {
        return Err("requires at least 1 argument".into());
    }
    let cmd: Vec<String> = o.args[1..].to_vec();

    // Attach flags as docker computes them.
    let (mut a_in, mut a_out, mut a_err) = (false, false, false);
    if !detach {
        if o.attach.is_empty() {
            a_out = true;
            a_err = true;
            a_in = o.interactive;
        } else {
            for a in &o.attach {
                match a.to_lowercase().as_str() {
                    "stdin" => a_in = true,
                    "stdout" => a_out = true,
                    "stderr" => a_err = true,
                    _ => return Err(format!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")),
                }
            }
        }
    } else if !o.attach.is_empty() {
        return Err("conflicting options: cannot specify both --attach and --detach".into());
    }
    if o.rm && o.restart.as_deref().is_some_and(|r| r != "no" && !r.is_empty()) {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }

    let mut envs = Vec::new();
    for f in &o.env_file {
        let content = (env.read_file)(f).map_err(|e| format!("open {f}: {e}"))?;
        envs.extend(parse_env_file(f, &content, env.lookup)?);
    }
    for e in &o.env {
        envs.push(expand_env(e, env.lookup));
    }

    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for p in &o.publish {
        parse_publish(p, &mut exposed, &mut bindings)?;
    }
    for e in &o.expose {
        let (port, proto) = split_port(e);
        let (a, b) =
            port_range(port).map_err(|_| format!("invalid range format for --expose specification: \"{e}\""))?;
        for p in a..=b {
            exposed.insert(format!("{p}/{proto}"), json!({}));
        }
    }

    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &o.volume {
        if v.contains(':') {
            binds.push(Value::String(v.clone()));
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }

    let mut config = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put(&mut config, "Hostname", json!(o.hostname.clone().unwrap_or_default()));
    put(
        &mut config,
        "Domainname",
        json!(o.domainname.clone().unwrap_or_default()),
    );
    put(&mut config, "User", json!(o.user.clone().unwrap_or_default()));
    put(&mut config, "AttachStdin", json!(a_in));
    put(&mut config, "AttachStdout", json!(a_out));
    put(&mut config, "AttachStderr", json!(a_err));
    if !exposed.is_empty() {
        put(&mut config, "ExposedPorts", Value::Object(exposed));
    }
    put(&mut config, "Tty", json!(o.tty));
    put(&mut config, "OpenStdin", json!(o.interactive));
    put(&mut config, "StdinOnce", json!(o.interactive && a_in && !detach));
    put(&mut config, "Env", json!(envs));
    put(
        &mut config,
        "Cmd",
        if cmd.is_empty() { Value::Null } else { json!(cmd) },
    );
    put(&mut config, "Image", json!(image));
    put(
        &mut config,
        "Volumes",
        if volumes.is_empty() {
            Value::Null
        } else {
            Value::Object(volumes)
        },
    );
    put(&mut config, "WorkingDir", json!(o.workdir.clone().unwrap_or_default()));
    put(
        &mut config,
        "Entrypoint",
        match &o.entrypoint {
            Some(e) => json!([e]),
            None => Value::Null,
        },
    );
    put(&mut config, "Labels", Value::Object(kv_map(&o.label, "label")?));
    if let Some(s) = &o.stop_signal {
        put(&mut config, "StopSignal", json!(s));
    }
    if let Some(t) = o.stop_timeout {
        put(&mut config, "StopTimeout", json!(t));
    }

    let mut hc = Map::new();
    put(
        &mut hc,
        "Binds",
        if binds.is_empty() {
            Value::Null
        } else {
            Value::Array(binds)
        },
    );
    put(
        &mut hc,
        "NetworkMode",
        json!(o.network.clone().unwrap_or_else(|| "default".into())),
    );
    put(&mut hc, "PortBindings", Value::Object(bindings));
    put(
        &mut hc,
        "RestartPolicy",
        parse_restart(o.restart.as_deref().unwrap_or("no"))?,
    );
    put(&mut hc, "AutoRemove", json!(o.rm));
    if let Some(d) = &o.log_driver {
        put(
            &mut hc,
            "LogConfig",
            json!({"Type": d, "Config": kv_map(&o.log_opt, "log-opt")?}),
        );
    }
    put(&mut hc, "CapAdd", list_or_null(normalize_caps(&o.cap_add)));
    put(&mut hc, "CapDrop", list_or_null(normalize_caps(&o.cap_drop)));
    if let Some(c) = &o.cgroupns {
        put(&mut hc, "CgroupnsMode", json!(c));
    }
    put(&mut hc, "Dns", json!(o.dns));
    put(&mut hc, "ExtraHosts", list_or_null(o.add_host.clone()));
    put(&mut hc, "GroupAdd", list_or_null(o.group_add.clone()));
    put(&mut hc, "IpcMode", json!(o.ipc.clone().unwrap_or_default()));
    put(&mut hc, "PidMode", json!(o.pid.clone().unwrap_or_default()));
    put(&mut hc, "Privileged", json!(o.privileged));
    put(&mut hc, "ReadonlyRootfs", json!(o.read_only));
    let mut secopts = Vec::new();
    for s in &o.security_opt {
        secopts.push(Value::String(security_opt(s, env)?));
    }
    put(&mut hc, "SecurityOpt", Value::Array(secopts));
    if !o.mount.is_empty() {
        let mounts = o.mount.iter().map(|m| parse_mount(m)).collect::<Result<Vec<_>, _>>()?;
        put(&mut hc, "Mounts", Value::Array(mounts));
    }
    if !o.tmpfs.is_empty() {
        let mut m = Map::new();
        for t in &o.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            m.insert(path.to_string(), json!(opts));
        }
        put(&mut hc, "Tmpfs", Value::Object(m));
    }
    put(&mut hc, "UTSMode", json!(o.uts.clone().unwrap_or_default()));
    put(&mut hc, "UsernsMode", json!(o.userns.clone().unwrap_or_default()));
    if let Some(s) = &o.shm_size {
        let n = units::ram_in_bytes(s).map_err(|e| format!("invalid argument \"{s}\" for \"--shm-size\" flag: {e}"))?;
        put(&mut hc, "ShmSize", json!(n));
    }
    if !o.sysctl.is_empty() {
        put(&mut hc, "Sysctls", Value::Object(kv_map(&o.sysctl, "sysctl")?));
    }
    if let Some(r) = &o.runtime {
        put(&mut hc, "Runtime", json!(r));
    }
    if o.init {
        put(&mut hc, "Init", json!(true));
    }
    // Resources (flattened into HostConfig).
    let mem = |flag: &str, v: &Option<String>| -> Result<i64, String> {
        match v {
            None => Ok(0),
            Some(s) if s == "-1" && flag == "memory-swap" => Ok(-1),
            Some(s) => units::ram_in_bytes(s).map_err(|e| {
                let shown = if flag == "memory" {
                    "-m, --memory".to_string()
                } else {
                    format!("--{flag}")
                };
                format!("invalid argument \"{s}\" for \"{shown}\" flag: {e}")
            }),
        }
    };
    put(&mut hc, "Memory", json!(mem("memory", &o.memory)?));
    put(&mut hc, "MemorySwap", json!(mem("memory-swap", &o.memory_swap)?));
    put(
        &mut hc,
        "MemoryReservation",
        json!(mem("memory-reservation", &o.memory_reservation)?),
    );
    put(&mut hc, "CpuShares", json!(o.cpu_shares.unwrap_or(0)));
    let nano = match &o.cpus {
        Some(c) => units::nano_cpus(c).map_err(|e| format!("invalid argument \"{c}\" for \"--cpus\" flag: {e}"))?,
        None => 0,
    };
    put(&mut hc, "NanoCpus", json!(nano));
    put(&mut hc, "CpusetCpus", json!(o.cpuset_cpus.clone().unwrap_or_default()));
    if let Some(p) = o.pids_limit {
        put(&mut hc, "PidsLimit", json!(p));
    }
    let mut ulimits = Vec::new();
    for u in &o.ulimit {
        ulimits.push(parse_ulimit(u)?);
    }
    put(&mut hc, "Ulimits", Value::Array(ulimits));

    config.insert("HostConfig".into(), Value::Object(hc));
    config.insert("NetworkingConfig".into(), json!({"EndpointsConfig": {}}));
    Ok(Value::Object(config))
}

/// `--security-opt seccomp=<file>` inlines the profile JSON as the docker CLI does.
fn security_opt(s: &str, env: &Env<'_>) -> Result<String, String> {
    let (k, v) = match s.split_once(['=', ':']) {
        Some(kv) => kv,
        None => return Ok(s.to_string()),
    };
    if k == "seccomp" && v != "unconfined" && !v.starts_with('{') {
        let content = (env.read_file)(v).map_err(|e| format!("opening seccomp profile ({v}) failed: {e}"))?;
        let parsed: Value =
            serde_json::from_str(&content).map_err(|e| format!("parsing seccomp profile ({v}) failed: {e}"))?;
        return Ok(format!("seccomp={parsed}"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
    }

    fn body(args: &[&str]) -> Result<Value, String> {
        let mut argv = vec!["run"];
        argv.extend_from_slice(args);
        let t = T::try_parse_from(argv).map_err(|e| e.to_string())?;
        let lookup = |k: &str| (k == "HOME_X").then(|| "/root".to_string());
        let read = |p: &str| -> std::io::Result<String> {
            match p {
                "envs" => Ok("# comment\nA=1\n\n  B=two words\nHOME_X\nUNSET_X\n".into()),
                "sec.json" => Ok("{ \"defaultAction\": \"SCMP_ACT_ALLOW\" }".into()),
                _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            }
        };
        create_body(
            &t.o,
            false,
            &Env {
                lookup: &lookup,
                read_file: &read,
            },
        )
    }

    #[test]
    fn run_flags_to_create_body() {
        // (args, JSON pointer, expected value)
        let cases: &[(&[&str], &str, Value)] = &[
            (&["busybox"], "/Image", json!("busybox")),
            (&["busybox"], "/Cmd", Value::Null),
            (
                &["busybox", "sh", "-c", "echo hi"],
                "/Cmd",
                json!(["sh", "-c", "echo hi"]),
            ),
            (&["busybox", "ls", "-l"], "/Labels", json!({})),
            (&["-l", "a=b", "-l", "c", "bb"], "/Labels", json!({"a": "b", "c": ""})),
            (
                &["-e", "A=1", "-e", "HOME_X", "-e", "NOPE", "bb"],
                "/Env",
                json!(["A=1", "HOME_X=/root", "NOPE"]),
            ),
            (
                &["--env-file", "envs", "-e", "C=3", "bb"],
                "/Env",
                json!(["A=1", "B=two words", "HOME_X=/root", "C=3"]),
            ),
            (&["-w", "/tmp", "-u", "1000:1000", "bb"], "/WorkingDir", json!("/tmp")),
            (&["-u", "nobody", "bb"], "/User", json!("nobody")),
            (&["--entrypoint", "", "bb"], "/Entrypoint", json!([""])),
            (&["--entrypoint", "/bin/sh", "bb"], "/Entrypoint", json!(["/bin/sh"])),
            (&["-h", "box", "bb"], "/Hostname", json!("box")),
            (&["-i", "bb"], "/OpenStdin", json!(true)),
            (&["-i", "bb"], "/AttachStdin", json!(true)),
            (&["-i", "bb"], "/StdinOnce", json!(true)),
            (&["-t", "bb"], "/Tty", json!(true)),
            (&["bb"], "/AttachStdout", json!(true)),
            (
                &["--stop-signal", "SIGINT", "--stop-timeout", "3", "bb"],
                "/StopSignal",
                json!("SIGINT"),
            ),
            (&["--stop-timeout", "3", "bb"], "/StopTimeout", json!(3)),
            (&["--rm", "bb"], "/HostConfig/AutoRemove", json!(true)),
            (&["--init", "bb"], "/HostConfig/Init", json!(true)),
            (&["--privileged", "bb"], "/HostConfig/Privileged", json!(true)),
            (&["--read-only", "bb"], "/HostConfig/ReadonlyRootfs", json!(true)),
            (
                &["--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "bb"],
                "/HostConfig/CapAdd",
                json!(["CAP_NET_ADMIN"]),
            ),
            (&["--cap-drop", "ALL", "bb"], "/HostConfig/CapDrop", json!(["ALL"])),
            (
                &["--cap-drop", "chown", "bb"],
                "/HostConfig/CapDrop",
                json!(["CAP_CHOWN"]),
            ),
            (&["bb"], "/HostConfig/CapDrop", Value::Null),
            (
                &["--security-opt", "no-new-privileges", "bb"],
                "/HostConfig/SecurityOpt",
                json!(["no-new-privileges"]),
            ),
            (
                &["--security-opt", "seccomp=sec.json", "bb"],
                "/HostConfig/SecurityOpt",
                json!(["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]),
            ),
            (&["-m", "512m", "bb"], "/HostConfig/Memory", json!(536870912)),
            (&["--memory-swap", "-1", "bb"], "/HostConfig/MemorySwap", json!(-1)),
            (
                &["--memory-swap", "1g", "bb"],
                "/HostConfig/MemorySwap",
                json!(1073741824),
            ),
            (&["--cpus", "0.5", "bb"], "/HostConfig/NanoCpus", json!(500000000)),
            (&["-c", "512", "bb"], "/HostConfig/CpuShares", json!(512)),
            (&["--pids-limit", "100", "bb"], "/HostConfig/PidsLimit", json!(100)),
            (
                &["--ulimit", "nofile=1024:2048", "bb"],
                "/HostConfig/Ulimits",
                json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
            ),
            (
                &["--ulimit", "nproc=10", "bb"],
                "/HostConfig/Ulimits",
                json!([{"Name": "nproc", "Soft": 10, "Hard": 10}]),
            ),
            (&["bb"], "/HostConfig/NetworkMode", json!("default")),
            (&["--network", "none", "bb"], "/HostConfig/NetworkMode", json!("none")),
            (&["--net", "host", "bb"], "/HostConfig/NetworkMode", json!("host")),
            (&["--runtime", "runc", "bb"], "/HostConfig/Runtime", json!("runc")),
            (
                &["--restart", "on-failure:3", "bb"],
                "/HostConfig/RestartPolicy",
                json!({"Name": "on-failure", "MaximumRetryCount": 3}),
            ),
            (
                &["--restart", "always", "bb"],
                "/HostConfig/RestartPolicy",
                json!({"Name": "always", "MaximumRetryCount": 0}),
            ),
            (
                &["--tmpfs", "/run:rw,size=64m", "--tmpfs", "/x", "bb"],
                "/HostConfig/Tmpfs",
                json!({"/run": "rw,size=64m", "/x": ""}),
            ),
            (
                &["-v", "/host:/c:ro", "bb"],
                "/HostConfig/Binds",
                json!(["/host:/c:ro"]),
            ),
            (&["-v", "/data", "bb"], "/Volumes", json!({"/data": {}})),
            (
                &["-p", "8080:80", "bb"],
                "/HostConfig/PortBindings",
                json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
            ),
            (
                &["-p", "127.0.0.1:53:53/udp", "bb"],
                "/HostConfig/PortBindings",
                json!({"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}]}),
            ),
            (&["-p", "80", "bb"], "/ExposedPorts", json!({"80/tcp": {}})),
            (
                &["--expose", "7000-7001", "bb"],
                "/ExposedPorts",
                json!({"7000/tcp": {}, "7001/tcp": {}}),
            ),
            (&["--userns", "host", "bb"], "/HostConfig/UsernsMode", json!("host")),
            (&["--shm-size", "1g", "bb"], "/HostConfig/ShmSize", json!(1073741824)),
            (
                &["--sysctl", "net.ipv4.ip_forward=1", "bb"],
                "/HostConfig/Sysctls",
                json!({"net.ipv4.ip_forward": "1"}),
            ),
            (
                &["--mount", "type=bind,src=/a,dst=/b,readonly", "bb"],
                "/HostConfig/Mounts",
                json!([{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true}]),
            ),
            (
                &["--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777", "bb"],
                "/HostConfig/Mounts",
                json!([{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}}]),
            ),
            // Flags after the image belong to the command.
            (&["bb", "-l", "--rm"], "/Cmd", json!(["-l", "--rm"])),
            (&["bb", "-l", "--rm"], "/HostConfig/AutoRemove", json!(false)),
        ];
        for (args, pointer, want) in cases {
            let b = body(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(b.pointer(pointer), Some(want), "{args:?} {pointer}: {b}");
        }
    }

    #[test]
    fn run_flag_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["-m", "lots", "bb"],
                "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'",
            ),
            (&["--cpus", "x", "bb"], "--cpus"),
            (
                &["--rm", "--restart", "always", "bb"],
                "conflicting options: cannot specify both --restart and --rm",
            ),
            (&["--restart", "sometimes", "bb"], "unknown policy"),
            (&["--ulimit", "nofile", "bb"], "invalid ulimit argument"),
            (&["--env-file", "missing", "bb"], "open missing"),
            (&["-p", "1:2:3:4", "bb"], "invalid port format"),
            (&["-a", "stdfoo", "bb"], "valid streams"),
            (&["--mount", "type=bind,src=/a", "bb"], "target is required"),
            (&["--mount", "type=bind,bogus=1,target=/b", "bb"], "unexpected key"),
        ];
        for (args, want) in cases {
            let e = body(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    /// Every top-level and HostConfig key we send is a field of the spec's ContainerConfig /
    /// HostConfig (names checked against engine-api-v1.47.yaml).
    #[test]
    fn field_names_match_spec() {
        let spec = std::fs::read_to_string("/work/shared/specs/engine-api-v1.47.yaml");
        let Ok(spec) = spec else {
            eprintln!("skipping: engine API spec not present");
            return;
        };
        let b = body(&[
            "-e",
            "A=1",
            "-p",
            "80:80",
            "--init",
            "--runtime",
            "r",
            "--stop-signal",
            "S",
            "--stop-timeout",
            "1",
            "--tmpfs",
            "/t",
            "--shm-size",
            "1m",
            "--sysctl",
            "a=b",
            "--pids-limit",
            "1",
            "-v",
            "/d",
            "--log-driver",
            "json-file",
            "--cgroupns",
            "host",
            "bb",
        ])
        .unwrap();
        let obj = b.as_object().unwrap();
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.extend(obj["HostConfig"].as_object().unwrap().keys());
        for k in keys {
            assert!(
                spec.contains(&format!("\n        {k}:")) || spec.contains(&format!(" {k}:")),
                "{k} not in spec"
            );
        }
    }

    #[test]
    fn env_files() {
        let lookup = |k: &str| (k == "SET").then(|| "v".to_string());
        assert_eq!(
            parse_env_file("f", "\u{feff}A=1\n# c\n\nSET\nUNSET\n  B = x\n", &lookup),
            Err("variable 'B ' contains whitespaces".to_string())
        );
        assert_eq!(
            parse_env_file("f", "A=1\n# c\n\nSET\nUNSET\nC=a=b\nD=\n", &lookup).unwrap(),
            vec!["A=1", "SET=v", "C=a=b", "D="]
        );
        assert!(parse_env_file("f", "=x", &lookup)
            .unwrap_err()
            .contains("no variable name"));
    }
}
