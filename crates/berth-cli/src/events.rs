//! `events` (`system events`), `system df` and `system prune`, printed as the docker CLI prints them.

use anyhow::Result;
use berth_client::Client;
use serde_json::{json, Map, Value};
use std::io::Write;
use tokio::io::AsyncBufReadExt;

use crate::args::{DfArgs, EventsArgs, SystemPruneArgs};
use crate::filters::parse_filters;
use crate::format::Format;
use crate::term::confirm;
use crate::units::{human_size_prec, timestamp_arg};
use crate::StatusError;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// Docker's `jsonmessage.RFC3339NanoFixed` of Unix nanoseconds, in local time.
fn event_time(nanos: i64) -> String {
    use chrono::TimeZone;
    let t = chrono::Local.timestamp_nanos(nanos);
    let zone = if t.offset().local_minus_utc() == 0 {
        "Z".to_string()
    } else {
        t.format("%:z").to_string()
    };
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.9f"))
}

/// docker's default line: `time type action id (k=v, ...)`, attributes sorted by key.
fn pretty_event(e: &Value) -> String {
    let mut line = String::new();
    if let Some(n) = e["timeNano"].as_i64().filter(|n| *n != 0) {
        line.push_str(&event_time(n));
        line.push(' ');
    } else if let Some(s) = e["time"].as_i64().filter(|s| *s != 0) {
        line.push_str(&event_time(s.saturating_mul(1_000_000_000)));
        line.push(' ');
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    line.push_str(&format!(
        "{} {} {}",
        s(&e["Type"]),
        s(&e["Action"]),
        s(&e["Actor"]["ID"])
    ));
    if let Some(attrs) = e["Actor"]["Attributes"].as_object().filter(|a| !a.is_empty()) {
        let mut kv: Vec<(&String, &Value)> = attrs.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        let parts: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={}", s(v))).collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    line
}

/// The event as docker's templates see it: Go field names (`.Status`, `.ID`, `.From`, `.Scope`,
/// `.Time`, `.TimeNano`) beside `.Type`, `.Action` and `.Actor`.
fn template_event(e: &Value) -> Value {
    let mut out = Map::new();
    for (wire, go) in [
        ("status", "Status"),
        ("id", "ID"),
        ("from", "From"),
        ("Type", "Type"),
        ("Action", "Action"),
        ("Actor", "Actor"),
        ("scope", "Scope"),
        ("time", "Time"),
        ("timeNano", "TimeNano"),
    ] {
        out.insert(go.to_string(), e.get(wire).cloned().unwrap_or(json!("")));
    }
    Value::Object(out)
}

/// `docker events`: prints each event as it arrives until the daemon ends the stream.
pub async fn events(client: &Client, a: EventsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    let format = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) if f.trim() == "json" => Some(None),
        Some(f) => Some(Some(Format::parse(f).map_err(fail)?)),
        None => None,
    };
    let since = a.since.as_deref().map(timestamp_arg);
    let until = a.until.as_deref().map(timestamp_arg);
    let body = client
        .events(since.as_deref(), until.as_deref(), &filters)
        .await
        .map_err(fail)?;
    let mut lines = tokio::io::BufReader::new(body).lines();
    let mut out = std::io::stdout();
    while let Some(line) = lines.next_line().await.map_err(fail)? {
        if line.trim().is_empty() {
            continue;
        }
        let e: Value = serde_json::from_str(&line).map_err(fail)?;
        let text = match &format {
            None => pretty_event(&e),
            Some(None) => line.trim().to_string(),
            Some(Some(f)) => f.render(&template_event(&e)).map_err(fail)?,
        };
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(0)
}

fn percent(part: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size_prec(part as f64, 4), part * 100 / total)
    } else {
        human_size_prec(part as f64, 4)
    }
}

/// The rows of `docker system df`, computed as the docker CLI computes them.
fn df_rows(df: &Value) -> Vec<Value> {
    let empty = Vec::new();
    let images = df["Images"].as_array().unwrap_or(&empty);
    let containers = df["Containers"].as_array().unwrap_or(&empty);
    let layers = df["LayersSize"].as_i64().unwrap_or(0);
    let used: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) != 0)
        .filter_map(|i| Some(i["Size"].as_i64()? - i["SharedSize"].as_i64().filter(|s| *s >= 0)?))
        .sum();
    let active = |c: &&Value| {
        let st = c["State"].as_str().unwrap_or("");
        st.contains("running") || st.contains("paused") || st.contains("restarting")
    };
    let rw = |c: &Value| c["SizeRw"].as_i64().unwrap_or(0);
    let total_rw: i64 = containers.iter().map(rw).sum();
    let idle_rw: i64 = containers.iter().filter(|c| !active(c)).map(rw).sum();
    vec![
        json!({
            "Type": "Images",
            "TotalCount": images.len().to_string(),
            "Active": images.iter().filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0).count().to_string(),
            "Size": human_size_prec(layers as f64, 4),
            "Reclaimable": percent(layers - used, layers),
        }),
        json!({
            "Type": "Containers",
            "TotalCount": containers.len().to_string(),
            "Active": containers.iter().filter(active).count().to_string(),
            "Size": human_size_prec(total_rw as f64, 4),
            "Reclaimable": percent(idle_rw, total_rw),
        }),
        crate::df::volumes_row(df["Volumes"].as_array().unwrap_or(&empty)),
        json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ]
}

/// `docker system df`.
pub async fn df(client: &Client, a: DfArgs) -> Result<i32> {
    let df = client.system_df().await.map_err(fail)?;
    if a.verbose {
        let out = crate::df::render_verbose(&df, a.format.as_deref()).map_err(fail)?;
        crate::write_out(&out);
        return Ok(0);
    }
    let fmt = a
        .format
        .as_deref()
        .filter(|f| !f.is_empty())
        .unwrap_or("table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}");
    let f = Format::parse(fmt).map_err(fail)?;
    let text = f
        .render_rows(
            &df_rows(&df),
            &[
                ("Type", "TYPE"),
                ("TotalCount", "TOTAL"),
                ("Active", "ACTIVE"),
                ("Size", "SIZE"),
                ("Reclaimable", "RECLAIMABLE"),
            ],
        )
        .map_err(fail)?;
    print!("{text}");
    Ok(0)
}

/// The confirmation text of `system prune`, as the docker CLI's `confirmationMessage` (without
/// the question `confirm` adds).
pub fn system_prune_warning(all: bool, volumes: bool, filters: &[String]) -> String {
    let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n");
    w.push_str("  - all networks not used by at least one container\n");
    if volumes {
        w.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if all {
        w.push_str("  - all images without at least one container associated to them\n");
    } else {
        w.push_str("  - all dangling images\n");
    }
    if !filters.is_empty() {
        w.push_str("\n  Items to be pruned will be filtered with:\n");
        for f in filters {
            w.push_str(&format!("  - {f}\n"));
        }
    }
    w
}

/// `docker system prune`: stopped containers, unused networks, anonymous volumes (`--volumes`),
/// then dangling (or, with `-a`, unused) images; each report as its own prune prints it.
pub async fn prune(client: &Client, a: SystemPruneArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    if a.volumes && filters.contains_key("until") {
        return Err(fail(r#"ERROR: The "until" filter is not supported with "--volumes""#).into());
    }
    if !a.force && !confirm(&system_prune_warning(a.all, a.volumes, &a.filter)) {
        return Ok(0);
    }
    let mut out = String::new();
    let containers = client.containers_prune(&filters).await.map_err(fail)?;
    let deleted: Vec<&str> = containers["ContainersDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str(&crate::objects::deleted_section("Deleted Containers", &deleted));
    let mut space = containers["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    let networks = client.networks_prune(&filters).await.map_err(fail)?;
    out.push_str(&crate::network::prune_output(
        &networks.networks_deleted.unwrap_or_default(),
    ));
    if a.volumes {
        // As the docker CLI's `volume.RunPrune`: anonymous volumes only, whatever `-a` says.
        let report = client.volumes_prune(&filters).await.map_err(fail)?;
        out.push_str(&crate::objects::deleted_section(
            "Deleted Volumes",
            &report.volumes_deleted,
        ));
        if !report.volumes_deleted.is_empty() {
            space += report.space_reclaimed as f64;
        }
    }
    let mut image_filters = filters.clone();
    image_filters.insert("dangling".into(), vec![if a.all { "false" } else { "true" }.into()]);
    let images = client.images_prune(&image_filters).await.map_err(fail)?;
    let items = images["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    out.push_str(&crate::objects::images_deleted_section(&items));
    space += images["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    out.push_str(&crate::objects::reclaimed_line(space));
    crate::write_out(&out);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_event_line_is_dockers() {
        let e = json!({
            "Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "bb"}},
            "time": 1, "timeNano": 1_000_000_000i64,
        });
        let line = pretty_event(&e);
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.contains(".000000000"), "{time}");
        assert_eq!(rest, "container start abc (image=bb, name=web)");
        let t = template_event(&json!({"status": "start", "id": "abc", "Type": "container"}));
        assert_eq!(t["Status"], "start");
        assert_eq!(t["ID"], "abc");
    }

    #[test]
    fn system_prune_warnings() {
        assert_eq!(
            system_prune_warning(false, false, &[]),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n"
        );
        assert_eq!(
            system_prune_warning(true, true, &["label=a".into()]),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  \
             - all anonymous volumes not used by at least one container\n  \
             - all images without at least one container associated to them\n\n  \
             Items to be pruned will be filtered with:\n  - label=a\n"
        );
    }

    #[test]
    fn df_rows_as_docker_computes_them() {
        let df = json!({
            "LayersSize": 1000,
            "Images": [
                {"Size": 600, "SharedSize": 100, "Containers": 1},
                {"Size": 500, "SharedSize": 100, "Containers": 0},
            ],
            "Containers": [
                {"State": "running", "SizeRw": 30},
                {"State": "exited", "SizeRw": 10},
            ],
        });
        let rows = df_rows(&df);
        assert_eq!(rows[0]["TotalCount"], "2");
        assert_eq!(rows[0]["Active"], "1");
        assert_eq!(rows[0]["Size"], "1kB");
        assert_eq!(rows[0]["Reclaimable"], "500B (50%)");
        assert_eq!(rows[1]["Active"], "1");
        assert_eq!(rows[1]["Size"], "40B");
        assert_eq!(rows[1]["Reclaimable"], "10B (25%)");
        assert_eq!(rows[2]["Reclaimable"], "0B");
        let empty = df_rows(&json!({"LayersSize": 0, "Images": [], "Containers": []}));
        assert_eq!(empty[0]["Reclaimable"], "0B");
    }
}
