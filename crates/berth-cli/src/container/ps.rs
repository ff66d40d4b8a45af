//! `docker ps`: rows shaped like Docker's (ports folded into ranges, truncated ids, commands
//! and mounts) and its table format.

use anyhow::Result;
use berth_client::Client;
use serde_json::{json, Map, Value};

use crate::args::PsArgs;
use crate::filters::parse_filters;
use crate::format::{ellipsis, go_quote, Format};
use crate::units;
use crate::StatusError;

const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// Docker's `DisplayablePorts` (docker CLI up to 27, matching API 1.47): sorted, consecutive
/// ports folded into ranges, host mappings last (`443/tcp, 0.0.0.0:8080->80/tcp, :::8080->80/tcp`,
/// `8000-8002/tcp`). The input is the spec's `Port` list (`IP`, `PrivatePort`, `PublicPort`, `Type`).
pub fn display_ports(ports: &[Value]) -> String {
    struct P {
        ip: String,
        private: i64,
        public: i64,
        kind: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or_default().to_string(),
            private: p["PrivatePort"].as_i64().unwrap_or(0),
            public: p["PublicPort"].as_i64().unwrap_or(0),
            kind: p["Type"].as_str().unwrap_or("tcp").to_string(),
        })
        .collect();
    ps.sort_by(|a, b| (a.private, &a.ip, a.public, &a.kind).cmp(&(b.private, &b.ip, b.public, &b.kind)));
    let form = |key: &str, first: i64, last: i64| {
        let (ip, kind) = match key.rsplit_once('/') {
            Some((ip, k)) => (ip, k),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{kind}")
    };
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    let mut groups: Vec<(String, i64, i64)> = Vec::new();
    for p in &ps {
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                // Docker through 27 prints the IP as is (`:::8080->80/tcp`), no brackets.
                host_mappings.push(format!("{}:{}->{}/{}", p.ip, p.public, p.private, p.kind));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for (k, first, last) in &groups {
        result.push(form(k, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// One `docker ps` row as the template context (`.ID`, `.Names`, ...).
pub fn ps_row(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or_default();
    let id = if trunc {
        berth_types::short_id(id).to_string()
    } else {
        id.to_string()
    };
    let mut image = c["Image"].as_str().unwrap_or_default().to_string();
    if image.is_empty() {
        image = "<no image>".into();
    } else if trunc {
        // Docker shortens the image only when it is the image ID itself.
        let image_id = c["ImageID"].as_str().unwrap_or_default();
        if !image_id.is_empty() && berth_types::short_id(image_id) == berth_types::short_id(&image) {
            image = berth_types::short_id(&image).to_string();
        } else if let Some((name, _)) = image.split_once('@') {
            image = name.to_string();
        }
    }
    let mut command = c["Command"].as_str().unwrap_or_default().to_string();
    if trunc {
        command = ellipsis(&command, 20);
    }
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !trunc || !n.contains('/'))
                .collect()
        })
        .unwrap_or_default();
    let created = c["Created"].as_i64().unwrap_or(0);
    let created_at = units::go_time_string(created);
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let size = {
        let rw = c["SizeRw"].as_f64().unwrap_or(0.0);
        let root = c["SizeRootFs"].as_f64().unwrap_or(0.0);
        let srw = units::human_size(rw);
        if root > 0.0 {
            format!("{srw} (virtual {})", units::human_size(root))
        } else {
            srw
        }
    };
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let name = m["Name"].as_str().filter(|n| !n.is_empty());
                    let src = name.or(m["Source"].as_str()).unwrap_or_default();
                    if trunc {
                        ellipsis(src, 15)
                    } else {
                        src.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let ports = c["Ports"].as_array().map(|p| display_ports(p)).unwrap_or_default();
    let mut row = Map::new();
    row.insert("ID".into(), json!(id));
    row.insert("Image".into(), json!(image));
    row.insert("Command".into(), json!(go_quote(&command)));
    row.insert("CreatedAt".into(), json!(created_at));
    row.insert("RunningFor".into(), json!(units::ago_unix(created)));
    row.insert("Ports".into(), json!(ports));
    row.insert("State".into(), c["State"].clone());
    row.insert("Status".into(), c["Status"].clone());
    row.insert("Size".into(), json!(size));
    row.insert("Names".into(), json!(names.join(",")));
    row.insert("Labels".into(), json!(labels.join(",")));
    row.insert(
        "__berthLabels".into(),
        c["Labels"]
            .as_object()
            .map(|m| Value::Object(m.clone()))
            .unwrap_or(json!({})),
    );
    row.insert("Mounts".into(), json!(mounts.join(",")));
    row.insert("Networks".into(), json!(networks.join(",")));
    // Docker counts the mounts of `local` volumes.
    let local_volumes = c["Mounts"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|m| m["Driver"] == "local").count());
    row.insert("LocalVolumes".into(), json!(local_volumes.to_string()));
    row.insert("Platform".into(), Value::Null);
    Value::Object(row)
}

/// `docker ps`.
pub async fn ps(client: &Client, a: PsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    let limit = if a.latest { Some(1) } else { a.last.filter(|n| *n > 0) };
    let size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let list = client
        .container_list(a.all || limit.is_some(), limit, size, &filters)
        .await
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list.iter().map(|c| ps_row(c, trunc)).collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            Some(f) if !f.is_empty() && f != "table" => f.to_string(),
            _ if a.size => "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}".into(),
            _ => "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".into(),
        }
    };
    let f = Format::parse(&fmt).map_err(|e| StatusError::new(1, e.to_string()))?;
    let out = f
        .render_rows(&rows, PS_HEADERS)
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    crate::write_out(&out);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_like_docker() {
        let p = |ip: &str, private: i64, public: i64, t: &str| {
            let mut v = json!({"PrivatePort": private, "Type": t});
            if !ip.is_empty() {
                v["IP"] = json!(ip);
                v["PublicPort"] = json!(public);
            }
            v
        };
        let cases: Vec<(Vec<Value>, &str)> = vec![
            (vec![p("", 80, 0, "tcp")], "80/tcp"),
            (
                vec![p("", 8002, 0, "tcp"), p("", 8000, 0, "tcp"), p("", 8001, 0, "tcp")],
                "8000-8002/tcp",
            ),
            (
                vec![p("0.0.0.0", 80, 8080, "tcp"), p("", 443, 0, "tcp")],
                "443/tcp, 0.0.0.0:8080->80/tcp",
            ),
            (vec![p("0.0.0.0", 80, 80, "tcp")], "0.0.0.0:80->80/tcp"),
            (vec![p("::", 80, 8080, "tcp")], ":::8080->80/tcp"),
            (
                vec![p("::", 80, 8080, "tcp"), p("0.0.0.0", 80, 8080, "tcp")],
                "0.0.0.0:8080->80/tcp, :::8080->80/tcp",
            ),
            (
                vec![
                    p("0.0.0.0", 80, 80, "tcp"),
                    p("::", 80, 80, "tcp"),
                    p("0.0.0.0", 81, 81, "tcp"),
                    p("::", 81, 81, "tcp"),
                ],
                "0.0.0.0:80-81->80-81/tcp, :::80-81->80-81/tcp",
            ),
            (
                vec![
                    p("0.0.0.0", 53, 53, "udp"),
                    p("0.0.0.0", 53, 53, "tcp"),
                    p("", 7, 0, "sctp"),
                ],
                "7/sctp, 0.0.0.0:53->53/tcp, 0.0.0.0:53->53/udp",
            ),
            (vec![p("", 53, 0, "udp"), p("", 53, 0, "tcp")], "53/tcp, 53/udp"),
            (vec![p("", 1, 0, "tcp"), p("", 3, 0, "tcp")], "1/tcp, 3/tcp"),
        ];
        for (ports, want) in cases {
            assert_eq!(display_ports(&ports), want);
        }
    }

    #[test]
    fn ps_rows() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web", "/other/link"], "Image": "busybox",
            "Command": "sh -c 'echo hello world'", "ImageID": "sha256:ff", "Created": chrono::Utc::now().timestamp() - 5,
            "State": "running", "Status": "Up 4 seconds",
            "Ports": [{"PrivatePort": 80, "Type": "tcp", "IP": "0.0.0.0", "PublicPort": 8080}, {"PrivatePort": 443, "Type": "tcp"}],
            "Labels": {"b": "2", "a": "1"}, "SizeRw": 12, "SizeRootFs": 4261234
        });
        let r = ps_row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sh -c 'echo hello w…\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Image"], "busybox");
        let by_id = json!({"Image": "sha256:0123456789abcdef", "ImageID": "sha256:0123456789abcdef"});
        assert_eq!(ps_row(&by_id, true)["Image"], "0123456789ab");
        let other = json!({"Image": "sha256:0123456789abcdef", "ImageID": "sha256:ffff"});
        assert_eq!(ps_row(&other, true)["Image"], "sha256:0123456789abcdef");
        assert_eq!(r["RunningFor"], "5 seconds ago");
        assert_eq!(r["Ports"], "443/tcp, 0.0.0.0:8080->80/tcp");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Size"], "12B (virtual 4.26MB)");
        let r = ps_row(&c, false);
        assert_eq!(r["Names"], "web,other/link");
        assert_eq!(r["Command"], "\"sh -c 'echo hello world'\"");

        let f = Format::parse(
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
        )
        .unwrap();
        let out = f.render_rows(&[ps_row(&c, true)], PS_HEADERS).unwrap();
        let header = out.lines().next().unwrap();
        assert!(
            header
                .starts_with("CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS"),
            "{header}"
        );
    }
}
