//! `docker pause`/`unpause`, `stats`, `top` and `update`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use berth_client::{Client, Filters};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use crate::args::{PauseArgs, PortArgs, StatsArgs, TopArgs, UpdateArgs};
use crate::format::{tabwrite, Format};
use crate::opts::{memory_flag, parse_restart};
use crate::units;
use crate::StatusError;

/// `docker pause` (or `unpause`).
pub async fn pause(client: &Client, a: PauseArgs, freeze: bool) -> Result<i32> {
    super::for_each(&a.containers, |c| async move {
        if freeze {
            client.container_pause(&c).await
        } else {
            client.container_unpause(&c).await
        }
    })
    .await
}

/// `docker top CONTAINER [ps OPTIONS]`.
pub async fn top(client: &Client, a: TopArgs) -> Result<i32> {
    let ps = a.ps_args.join(" ");
    let v = client
        .container_top(&a.container, (!ps.is_empty()).then_some(ps.as_str()))
        .await?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    };
    let mut text = strs(&v["Titles"]).join("\t");
    text.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        text.push_str(&strs(p).join("\t"));
        text.push('\n');
    }
    crate::write_out(&tabwrite(&text));
    Ok(0)
}

/// Go's `net.JoinHostPort`: brackets around an IPv6 host.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The lines `docker port` prints for `NetworkSettings.Ports` (the spec's `PortMap`):
/// `80/tcp -> 0.0.0.0:8080` for every binding, or with `port` only its host addresses; in
/// natural order, as the docker CLI sorts them. The error is Docker's wording.
pub fn port_lines(
    ports: &serde_json::Map<String, Value>,
    port: Option<&str>,
    container: &str,
) -> Result<Vec<String>, String> {
    let bindings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                join_host_port(
                    b["HostIp"].as_str().unwrap_or_default(),
                    b["HostPort"].as_str().unwrap_or_default(),
                )
            })
            .collect()
    };
    let mut out = Vec::new();
    match port {
        Some(p) => {
            let (num, proto) = p.split_once('/').unwrap_or((p, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if let Err(e) = num.parse::<u16>() {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow => "value out of range",
                    _ => "invalid syntax",
                };
                return Err(format!(
                    "Error: invalid port ({num}): strconv.ParseUint: parsing \"{num}\": {why}"
                ));
            }
            match ports.get(&format!("{num}/{proto}")) {
                Some(v) if !v.is_null() => out.extend(bindings(v)),
                // The docker CLI names the port and the container as the user typed them.
                _ => return Err(format!("Error: No public port '{p}' published for {container}")),
            }
        }
        None => {
            for (k, v) in ports {
                out.extend(bindings(v).into_iter().map(|b| format!("{k} -> {b}")));
            }
        }
    }
    out.sort_by(|a, b| crate::sortorder::natural_cmp(a, b));
    Ok(out)
}

/// `docker port`: the container's published ports from inspect (`NetworkSettings.Ports`).
pub async fn port(client: &Client, a: PortArgs) -> Result<i32> {
    let v = client.container_inspect(&a.container).await?;
    let ports = v["NetworkSettings"]["Ports"].as_object().cloned().unwrap_or_default();
    let lines = port_lines(&ports, a.port.as_deref(), &a.container).map_err(|e| StatusError::new(1, e))?;
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    crate::write_out(&out);
    Ok(0)
}

/// `docker update`.
pub async fn update(client: &Client, a: UpdateArgs) -> Result<i32> {
    let mut body = serde_json::Map::new();
    let usage = |m: String| StatusError::new(125, format!("{m}\nSee '{} update --help'.", crate::prog()));
    let memory = memory_flag("memory", a.memory.as_deref()).map_err(usage)?;
    let swap = memory_flag("memory-swap", a.memory_swap.as_deref()).map_err(usage)?;
    if memory != 0 {
        body.insert("Memory".into(), memory.into());
    }
    if swap != 0 {
        body.insert("MemorySwap".into(), swap.into());
    }
    if let Some(c) = &a.cpus {
        let n = units::nano_cpus(c).map_err(|e| usage(format!("invalid argument \"{c}\" for \"--cpus\" flag: {e}")))?;
        body.insert("NanoCpus".into(), n.into());
    }
    for (k, v) in [
        ("CpuShares", a.cpu_shares),
        ("CpuQuota", a.cpu_quota),
        ("CpuPeriod", a.cpu_period),
        ("PidsLimit", a.pids_limit),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), v.into());
        }
    }
    if let Some(r) = &a.restart {
        let p = parse_restart(r).map_err(usage)?;
        body.insert("RestartPolicy".into(), serde_json::to_value(p)?);
    }
    if body.is_empty() {
        return Err(StatusError::new(1, "you must provide one or more flags when using this command").into());
    }
    let body = Value::Object(body);
    let body = &body;
    let mut failed = false;
    for c in &a.containers {
        match client.container_update(c, body).await {
            Ok(resp) => {
                for w in resp["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or(""));
                }
                outln!("{c}");
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(StatusError::new(
            1,
            format!("Error: failed to update container: {}", a.containers.join(", ")),
        )
        .into());
    }
    Ok(0)
}

/// One row of `docker stats`, computed from a stats object as the docker CLI does.
pub(crate) fn stats_row(v: &Value, no_trunc: bool) -> Value {
    let u = |v: &Value| v.as_u64().unwrap_or(0) as f64;
    let cpu = &v["cpu_stats"];
    let pre = &v["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let mut online = u(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"].as_array().map_or(0, |a| a.len()) as f64;
    }
    let cpu_pct = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &v["memory_stats"];
    let usage = u(&mem["usage"]);
    // Docker shows usage without the page cache it could reclaim.
    let inactive = mem["stats"]
        .get("total_inactive_file")
        .or_else(|| mem["stats"].get("inactive_file"))
        .map(u)
        .unwrap_or(0.0);
    let used = if inactive < usage { usage - inactive } else { usage };
    let limit = u(&mem["limit"]);
    let mem_pct = if limit > 0.0 { used / limit * 100.0 } else { 0.0 };
    let (mut read, mut write) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += u(&e["value"]),
            Some("write") => write += u(&e["value"]),
            _ => {}
        }
    }
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = v["networks"].as_object() {
        for n in nets.values() {
            rx += u(&n["rx_bytes"]);
            tx += u(&n["tx_bytes"]);
        }
    }
    let id = v["id"].as_str().unwrap_or("");
    let id = if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    };
    let running = v["read"].as_str().is_some_and(|r| !r.starts_with("0001-"));
    let dash = |s: String| if running { s } else { "--".to_string() };
    json!({
        "Container": id.clone(),
        "ID": id,
        "Name": v["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": dash(format!("{cpu_pct:.2}%")),
        "MemUsage": if running { format!("{} / {}", units::bytes_size(used), units::bytes_size(limit)) } else { "-- / --".into() },
        "MemPerc": dash(format!("{mem_pct:.2}%")),
        "NetIO": if running { format!("{} / {}", units::human_size(rx), units::human_size(tx)) } else { "-- / --".into() },
        "BlockIO": if running { format!("{} / {}", units::human_size(read), units::human_size(write)) } else { "-- / --".into() },
        "PIDs": if running { v["pids_stats"]["current"].as_u64().unwrap_or(0).to_string() } else { "0".into() },
    })
}

const STATS_TABLE: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const STATS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn render(fmt: &Format, rows: &[Value]) -> Result<String> {
    fmt.render_rows(rows, STATS_HEADERS)
}

/// `docker stats`: a table redrawn every second, or one reading with `--no-stream`.
pub async fn stats(client: &Client, a: StatsArgs) -> Result<i32> {
    let fmt = Format::parse(a.format.as_deref().filter(|f| !f.is_empty()).unwrap_or(STATS_TABLE))?;
    let names: Vec<String> = if a.containers.is_empty() {
        client
            .container_list(a.all, None, false, &Filters::new())
            .await?
            .iter()
            .map(|c| c["Id"].as_str().unwrap_or("").to_string())
            .collect()
    } else {
        a.containers.clone()
    };
    if a.no_stream {
        let mut rows = Vec::new();
        let mut failed = false;
        for n in &names {
            let got = async {
                let mut r = tokio::io::BufReader::new(client.container_stats(n, false).await?);
                let mut line = String::new();
                r.read_line(&mut line).await?;
                Ok::<Value, anyhow::Error>(serde_json::from_str(&line)?)
            }
            .await;
            match got {
                Ok(v) => rows.push(stats_row(&v, a.no_trunc)),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        crate::write_out(&render(&fmt, &rows)?);
        return Ok(if failed { 1 } else { 0 });
    }
    let latest: Arc<Mutex<BTreeMap<usize, Value>>> = Arc::default();
    for (i, n) in names.iter().enumerate() {
        let mut r = tokio::io::BufReader::new(client.container_stats(n, true).await?);
        let latest = latest.clone();
        let no_trunc = a.no_trunc;
        tokio::spawn(async move {
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Ok(v) = serde_json::from_str::<Value>(&line) {
                            let row = stats_row(&v, no_trunc);
                            latest.lock().unwrap_or_else(|p| p.into_inner()).insert(i, row);
                        }
                    }
                }
            }
        });
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let rows: Vec<Value> = latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        // Clear the screen and draw again, as the docker CLI does on a terminal.
        crate::write_out(&format!("\x1b[2J\x1b[H{}", render(&fmt, &rows)?));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lines_like_docker() {
        let ports = json!({
            "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}],
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "9000/tcp": null
        });
        let ports = ports.as_object().unwrap();
        assert_eq!(
            port_lines(ports, None, "web").unwrap(),
            [
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080",
                "443/tcp -> 0.0.0.0:8443"
            ]
        );
        assert_eq!(
            port_lines(ports, Some("80"), "web").unwrap(),
            ["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(port_lines(ports, Some("53/udp"), "web").unwrap(), ["127.0.0.1:5353"]);
        assert_eq!(
            port_lines(ports, Some("53"), "web").unwrap_err(),
            "Error: No public port '53' published for web"
        );
        assert_eq!(
            port_lines(ports, Some("9000"), "web").unwrap_err(),
            "Error: No public port '9000' published for web"
        );
        assert_eq!(
            port_lines(ports, Some("http"), "web").unwrap_err(),
            "Error: invalid port (http): strconv.ParseUint: parsing \"http\": invalid syntax"
        );
        assert_eq!(
            port_lines(ports, Some("70000/tcp"), "web").unwrap_err(),
            "Error: invalid port (70000): strconv.ParseUint: parsing \"70000\": value out of range"
        );
        let empty_ip = json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]});
        assert_eq!(
            port_lines(empty_ip.as_object().unwrap(), None, "w").unwrap(),
            ["80/tcp -> :8080"]
        );
    }

    #[test]
    fn a_row_as_docker_computes_it() {
        let v = json!({
            "id": "0123456789abcdef", "name": "/web", "read": "2026-01-01T00:00:01Z",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3145728, "limit": 67108864, "stats": {"total_inactive_file": 1048576}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 1000}]},
            "pids_stats": {"current": 3}
        });
        let r = stats_row(&v, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "2MiB / 64MiB");
        assert_eq!(r["MemPerc"], "3.12%");
        assert_eq!(r["BlockIO"], "4.1kB / 1kB");
        assert_eq!(r["PIDs"], "3");
    }
}
