//! `volume create|ls|inspect|rm|prune`: Docker's flags into the Engine API's `/volumes` requests
//! (built by pure functions, tested below), and Docker's output and exit codes.

use anyhow::Result;
use berth_client::models::VolumeCreateOptions;
use berth_client::{Client, Filters};
use serde_json::{json, Map, Value};

use crate::args::{VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs};
use crate::filters::parse_filters;
use crate::format::Format;
use crate::opts::kv_map;
use crate::sortorder::natural_cmp;
use crate::term::confirm;
use crate::units::human_size_prec;
use crate::StatusError;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

/// Docker's `MapOpts` (`-o key=value`; a bare `key` maps to an empty value, later keys win).
fn map_opts(items: &[String]) -> std::collections::HashMap<String, String> {
    items
        .iter()
        .map(|it| {
            let (k, v) = it.split_once('=').unwrap_or((it.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The `POST /volumes/create` body for `volume create`, as the docker CLI sends it: the driver
/// always (default `local`), the name, options and labels only when given (Go's `omitempty`).
pub fn create_request(a: &VolumeCreateArgs) -> Result<VolumeCreateOptions, String> {
    let name = match (&a.name, &a.name_flag) {
        (Some(_), Some(_)) => {
            return Err("conflicting options: either specify --name or provide positional arg, not both".into())
        }
        (Some(n), None) | (None, Some(n)) => Some(n.clone()),
        (None, None) => None,
    };
    let opts = map_opts(&a.opt);
    let labels = kv_map(&a.label, "label")?;
    Ok(VolumeCreateOptions {
        name: name.filter(|n| !n.is_empty()),
        driver: Some(a.driver.clone()).filter(|d| !d.is_empty()),
        driver_opts: (!opts.is_empty()).then_some(opts),
        labels: (!labels.is_empty()).then_some(labels),
        cluster_volume_spec: None,
    })
}

/// Column titles of `volume ls` (the docker CLI's volume formatter).
const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Group", "GROUP"),
    ("Availability", "AVAILABILITY"),
    ("Status", "STATUS"),
];

/// One volume as the docker CLI's volume context shows it (`.Name`, `.Driver`, `.Links`, ...):
/// usage figures are `N/A` unless the daemon computed them (`system df`), cluster fields `N/A`.
pub fn volume_row(v: &Value) -> Value {
    let text = |k: &str| json!(v[k].as_str().unwrap_or_default());
    let labels_map = v["Labels"].as_object().cloned().unwrap_or_default();
    let mut labels: Vec<String> = labels_map
        .iter()
        .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let usage = v["UsageData"].as_object();
    let links = usage
        .and_then(|u| u.get("RefCount"))
        .and_then(Value::as_i64)
        .map_or("N/A".to_string(), |n| n.to_string());
    let size = usage
        .and_then(|u| u.get("Size"))
        .and_then(Value::as_i64)
        .map_or("N/A".to_string(), |n| human_size_prec(n as f64, 4));
    // Cluster (swarm) volumes only; `N/A` otherwise, as the docker CLI's volume context.
    let c = &v["ClusterVolume"];
    let cluster = |k: &str| {
        if c.is_null() {
            return json!("N/A");
        }
        match k {
            "Group" => json!(c["Spec"]["Group"].as_str().unwrap_or_default()),
            // Docker's Go type has it in `Spec`; the swagger under `Spec.AccessMode`.
            "Availability" => json!(c["Spec"]["Availability"]
                .as_str()
                .or(c["Spec"]["AccessMode"]["Availability"].as_str())
                .unwrap_or_default()),
            _ => {
                let published = c["PublishStatus"].as_array().map_or(0, Vec::len);
                json!(match published {
                    _ if c["Info"]["VolumeID"].as_str().unwrap_or_default().is_empty() => {
                        "pending creation".to_string()
                    }
                    0 => "created".to_string(),
                    1 => "in use (1 node)".to_string(),
                    n => format!("in use ({n} nodes)"),
                })
            }
        }
    };
    let mut row = Map::new();
    row.insert("Name".into(), text("Name"));
    row.insert("Driver".into(), text("Driver"));
    row.insert("Scope".into(), text("Scope"));
    row.insert("Mountpoint".into(), text("Mountpoint"));
    row.insert("Labels".into(), json!(labels.join(",")));
    row.insert("Links".into(), json!(links));
    row.insert("Size".into(), json!(size));
    row.insert("Group".into(), cluster("Group"));
    row.insert("Availability".into(), cluster("Availability"));
    row.insert("Status".into(), cluster("Status"));
    row.insert("__berthLabels".into(), Value::Object(labels_map));
    Value::Object(row)
}

/// The template `volume ls` renders: Docker's `NewVolumeFormat` (`-q` only changes the built-in
/// formats; a custom template wins).
fn ls_format(format: Option<&str>, quiet: bool) -> String {
    match format.filter(|f| !f.is_empty()) {
        None | Some("table") if quiet => "{{.Name}}".into(),
        None | Some("table") => "table {{.Driver}}\t{{.Name}}".into(),
        Some("raw") if quiet => "name: {{.Name}}".into(),
        // Escaped as in the docker CLI, so the trailing newline survives the format's trimming.
        Some("raw") => "name: {{.Name}}\\ndriver: {{.Driver}}\\n".into(),
        Some(f) => f.to_string(),
    }
}

/// Renders `volume ls` output from the daemon's list: sorted by name in natural order.
pub fn render_ls(list: &[Value], a: &VolumeLsArgs) -> Result<String> {
    let mut vols: Vec<&Value> = list.iter().collect();
    vols.sort_by(|x, y| natural_cmp(x["Name"].as_str().unwrap_or(""), y["Name"].as_str().unwrap_or("")));
    let rows: Vec<Value> = vols.iter().map(|v| volume_row(v)).collect();
    let f = Format::parse(&ls_format(a.format.as_deref(), a.quiet))?;
    f.render_rows(&rows, VOLUME_HEADERS)
}

/// `docker volume create`: prints the volume's name.
pub async fn create(client: &Client, a: VolumeCreateArgs) -> Result<i32> {
    let req = create_request(&a).map_err(fail)?;
    let vol = client.volume_create(&req).await.map_err(fail)?;
    outln!("{}", vol["Name"].as_str().unwrap_or_default());
    Ok(0)
}

/// `docker volume ls`.
pub async fn ls(client: &Client, a: VolumeLsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    let list = client.volume_list(&filters).await.map_err(fail)?;
    let out = render_ls(&list.volumes, &a).map_err(fail)?;
    crate::write_out(&out);
    Ok(0)
}

/// Go's zero values for a volume's maps, so `{{.Labels}}` prints `map[]` as with docker.
pub fn fill_volume_zero_values(v: &mut Value) {
    if let Value::Object(m) = v {
        for k in ["Labels", "Options"] {
            if m.get(k).is_none_or(Value::is_null) {
                m.insert(k.into(), json!({}));
            }
        }
    }
}

/// `docker volume inspect`: a JSON array of the volumes found (or each rendered through
/// `--format`), then one error line per volume not found; exit 1 if any failed.
pub async fn inspect(client: &Client, a: VolumeInspectArgs) -> Result<i32> {
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(Format::parse(f).map_err(fail)?),
        None => None,
    };
    let mut found: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for name in &a.volumes {
        match client.volume_inspect_raw(name).await {
            Ok(bytes) => found.push(String::from_utf8_lossy(&bytes).trim().to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    crate::objects::print_inspected(&found, &errors, tmpl, fill_volume_zero_values)
}

/// `docker volume rm`: each name removed on stdout, the errors on stderr; exit 1 if any failed.
/// `-f` goes to the daemon as `force=1`, which forgives volumes that do not exist.
pub async fn rm(client: &Client, a: VolumeRmArgs) -> Result<i32> {
    let mut errors = Vec::new();
    for name in &a.volumes {
        match client.volume_remove(name, a.force).await {
            Ok(()) => outln!("{name}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(StatusError::new(1, errors.join("\n")).into())
    }
}

/// `volume prune`'s confirmation text for anonymous volumes only.
pub const UNUSED_VOLUMES_WARNING: &str =
    "WARNING! This will remove anonymous local volumes not used by at least one container.";
/// `volume prune`'s confirmation text for all unused volumes (`--all`, or API < 1.42).
pub const ALL_VOLUMES_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.";

/// The filters and warning of `volume prune`, as the docker CLI decides them: `--all` becomes the
/// `all=true` filter from API 1.42 on; older daemons prune named volumes too.
pub fn prune_plan(a: &VolumePruneArgs, api_version: &str) -> Result<(Filters, &'static str), String> {
    let mut filters = parse_filters(&a.filter)?;
    if berth_client::version_less(api_version, "1.42") {
        return Ok((filters, ALL_VOLUMES_WARNING));
    }
    if !a.all {
        return Ok((filters, UNUSED_VOLUMES_WARNING));
    }
    if filters.contains_key("all") {
        return Err("conflicting options: cannot specify both --all and --filter all=1".into());
    }
    filters.insert("all".into(), vec!["true".into()]);
    Ok((filters, ALL_VOLUMES_WARNING))
}

/// The text `volume prune` prints for the daemon's report (the docker CLI counts the space only
/// when volumes were deleted).
pub fn prune_output(deleted: &[String], reclaimed: u64) -> String {
    let reclaimed = if deleted.is_empty() { 0 } else { reclaimed };
    let mut out = crate::objects::deleted_section("Deleted Volumes", deleted);
    out.push_str(&crate::objects::reclaimed_line(reclaimed as f64));
    out
}

/// `docker volume prune`.
pub async fn prune(client: &Client, a: VolumePruneArgs) -> Result<i32> {
    let (filters, warning) = prune_plan(&a, client.api_version()).map_err(|e| {
        if e.starts_with("conflicting") {
            fail(e)
        } else {
            StatusError::new(125, e)
        }
    })?;
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let report = client.volumes_prune(&filters).await.map_err(fail)?;
    crate::write_out(&prune_output(&report.volumes_deleted, report.space_reclaimed));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Cmd, VolumeCmd};
    use clap::Parser;

    fn parse(args: &[&str]) -> VolumeCmd {
        let mut argv = vec!["berth", "volume"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .cmd
        {
            Some(Cmd::Volume(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    fn create_body(args: &[&str]) -> Result<Value, String> {
        let mut argv = vec!["create"];
        argv.extend_from_slice(args);
        match parse(&argv) {
            VolumeCmd::Create(a) => create_request(&a).map(|r| serde_json::to_value(r).unwrap_or_default()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_flags_to_request_body() {
        assert_eq!(create_body(&[]).unwrap(), json!({"Driver": "local"}));
        assert_eq!(
            create_body(&["data"]).unwrap(),
            json!({"Name": "data", "Driver": "local"})
        );
        assert_eq!(
            create_body(&["--name", "data", "-d", "nfs"]).unwrap(),
            json!({"Name": "data", "Driver": "nfs"})
        );
        assert_eq!(
            create_body(&[
                "-o",
                "type=tmpfs",
                "--opt",
                "device=tmpfs",
                "-o",
                "o=size=100m,uid=1000",
                "--label",
                "a=1",
                "--label",
                "b",
                "v"
            ])
            .unwrap(),
            json!({"Name": "v", "Driver": "local",
                   "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=100m,uid=1000"},
                   "Labels": {"a": "1", "b": ""}})
        );
        assert_eq!(
            create_body(&["--name", "a", "b"]).unwrap_err(),
            "conflicting options: either specify --name or provide positional arg, not both"
        );
        assert!(Cli::try_parse_from(["berth", "volume", "create", "a", "b"]).is_err());
    }

    /// Every key of the create body is a property of the spec's `VolumeCreateOptions`.
    #[test]
    fn create_field_names_match_spec() {
        let Ok(spec) = std::fs::read_to_string("/work/shared/specs/engine-api-v1.47.yaml") else {
            eprintln!("skipping: engine API spec not present");
            return;
        };
        let start = spec.find("\n  VolumeCreateOptions:").unwrap();
        let section = &spec[start..start + 2000];
        let b = create_body(&["-o", "x=y", "--label", "l", "n"]).unwrap();
        for k in b.as_object().unwrap().keys() {
            assert!(
                section.contains(&format!("\n      {k}:")),
                "{k} not in VolumeCreateOptions"
            );
        }
    }

    fn vols() -> Vec<Value> {
        vec![
            json!({"Name": "vol10", "Driver": "local", "Mountpoint": "/var/lib/berth/volumes/vol10/_data",
                   "Labels": {"b": "2", "a": "1"}, "Scope": "local", "Options": null,
                   "CreatedAt": "2026-01-02T03:04:05Z"}),
            json!({"Name": "0f3c9a", "Driver": "local", "Mountpoint": "/m/0f3c9a", "Labels": null, "Scope": "local",
                   "Options": {}, "UsageData": {"Size": 2048, "RefCount": 2}}),
            json!({"Name": "vol2", "Driver": "nfs", "Mountpoint": "", "Labels": {}, "Scope": "global"}),
        ]
    }

    fn ls(args: &[&str]) -> String {
        let mut argv = vec!["ls"];
        argv.extend_from_slice(args);
        match parse(&argv) {
            VolumeCmd::Ls(a) => render_ls(&vols(), &a).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ls_table_quiet_format_json() {
        assert_eq!(
            ls(&[]),
            "DRIVER    VOLUME NAME\n\
             local     0f3c9a\n\
             nfs       vol2\n\
             local     vol10\n"
        );
        assert_eq!(ls(&["-q"]), "0f3c9a\nvol2\nvol10\n");
        assert_eq!(ls(&["--format", "table", "--quiet"]), "0f3c9a\nvol2\nvol10\n");
        assert_eq!(ls(&["-q", "--format", "{{.Driver}}"]), "local\nnfs\nlocal\n");
        assert_eq!(
            ls(&[
                "--format",
                "table {{.Name}}\t{{.Scope}}\t{{.Labels}}\t{{.Links}}\t{{.Size}}"
            ]),
            "VOLUME NAME   SCOPE     LABELS    LINKS     SIZE\n\
             0f3c9a        local               2         2.048kB\n\
             vol2          global              N/A       N/A\n\
             vol10         local     a=1,b=2   N/A       N/A\n"
        );
        assert_eq!(
            ls(&["--format", "{{.Label \"a\"}}|{{.Mountpoint}}"]).lines().last(),
            Some("1|/var/lib/berth/volumes/vol10/_data")
        );
        let first: Value = serde_json::from_str(ls(&["--format", "json"]).lines().next().unwrap()).unwrap();
        assert_eq!(
            first,
            json!({"Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "", "Links": "2",
                   "Mountpoint": "/m/0f3c9a", "Name": "0f3c9a", "Scope": "local", "Size": "2.048kB", "Status": "N/A"})
        );
        assert_eq!(
            ls(&["--format", "raw"]),
            "name: 0f3c9a\ndriver: local\n\nname: vol2\ndriver: nfs\n\nname: vol10\ndriver: local\n\n"
        );
        assert_eq!(
            render_ls(&[], &VolumeLsArgs::default()).unwrap(),
            "DRIVER    VOLUME NAME\n"
        );
    }

    #[test]
    fn prune_filters_warning_and_report() {
        let plan = |args: &[&str], api: &str| {
            let mut argv = vec!["prune"];
            argv.extend_from_slice(args);
            match parse(&argv) {
                VolumeCmd::Prune(a) => prune_plan(&a, api),
                other => panic!("{other:?}"),
            }
        };
        let (f, w) = plan(&[], "1.47").unwrap();
        assert!(f.is_empty());
        assert_eq!(w, UNUSED_VOLUMES_WARNING);
        let (f, w) = plan(&["-a", "--filter", "label=x"], "1.47").unwrap();
        assert_eq!(f["all"], ["true"]);
        assert_eq!(f["label"], ["x"]);
        assert_eq!(w, ALL_VOLUMES_WARNING);
        let (f, w) = plan(&["--all"], "1.41").unwrap();
        assert!(f.is_empty());
        assert_eq!(w, ALL_VOLUMES_WARNING);
        assert_eq!(
            plan(&["-a", "--filter", "all=1"], "1.47").unwrap_err(),
            "conflicting options: cannot specify both --all and --filter all=1"
        );
        assert_eq!(
            ALL_VOLUMES_WARNING,
            "WARNING! This will remove all local volumes not used by at least one container."
        );
        assert_eq!(prune_output(&[], 0), "Total reclaimed space: 0B\n");
        assert_eq!(prune_output(&[], 512), "Total reclaimed space: 0B\n");
        assert_eq!(
            prune_output(&["a".into(), "b".into()], 1_500_000),
            "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 1.5MB\n"
        );
    }

    #[test]
    fn subcommands_and_aliases() {
        assert!(matches!(
            parse(&["list", "-q"]),
            VolumeCmd::Ls(VolumeLsArgs { quiet: true, .. })
        ));
        assert!(
            matches!(parse(&["remove", "-f", "a", "b"]), VolumeCmd::Rm(VolumeRmArgs { force: true, ref volumes }) if volumes.len() == 2)
        );
        assert!(matches!(
            parse(&["inspect", "-f", "{{.Name}}", "a"]),
            VolumeCmd::Inspect(_)
        ));
        assert!(matches!(
            parse(&["prune", "-af", "--filter", "label=a"]),
            VolumeCmd::Prune(VolumePruneArgs {
                all: true,
                force: true,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["berth", "volume", "rm"]).is_err());
        assert!(Cli::try_parse_from(["berth", "volume", "inspect"]).is_err());
        assert!(Cli::try_parse_from(["berth", "volume", "ls", "x"]).is_err());
    }

    #[test]
    fn cluster_fields() {
        let row = |c: Value| volume_row(&json!({"Name": "c", "ClusterVolume": c}));
        let r = row(json!({"Spec": {"Group": "g", "AccessMode": {"Availability": "active"}},
                           "Info": {"VolumeID": "x"}, "PublishStatus": [{}, {}]}));
        assert_eq!(
            (r["Group"].as_str(), r["Availability"].as_str()),
            (Some("g"), Some("active"))
        );
        assert_eq!(r["Status"], "in use (2 nodes)");
        assert_eq!(row(json!({"Spec": {}}))["Status"], "pending creation");
        assert_eq!(row(json!({"Info": {"VolumeID": "x"}}))["Status"], "created");
        assert_eq!(volume_row(&json!({"Name": "l"}))["Status"], "N/A");
    }

    #[test]
    fn zero_values() {
        let mut v = json!({"Name": "a", "Labels": null});
        fill_volume_zero_values(&mut v);
        let f = Format::parse("{{.Labels}} {{.Options}}").unwrap();
        assert_eq!(f.render(&v).unwrap(), "map[] map[]");
    }
}
