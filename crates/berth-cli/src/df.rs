//! `system df` beyond the summary rows of images and containers: the `Local Volumes` row from the
//! volumes' `UsageData`, and the `-v` report (images, containers, volumes, build cache), laid out
//! as the docker CLI's disk-usage formatter does.

use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::format::Format;
use crate::units::{ago_unix, human_size_prec};
use crate::volume::volume_row;

/// A volume's `UsageData` as `(size, refcount)`; a volume without one counts as size `-1`
/// ("not available") and no references.
fn usage(v: &Value) -> (i64, i64) {
    let u = &v["UsageData"];
    (u["Size"].as_i64().unwrap_or(-1), u["RefCount"].as_i64().unwrap_or(0))
}

/// The `Local Volumes` summary row of `system df`, computed as the docker CLI's
/// `diskUsageVolumesContext` does: sizes of `-1` left out, volumes with no references reclaimable.
pub fn volumes_row(volumes: &[Value]) -> Value {
    let active = volumes.iter().filter(|v| usage(v).1 > 0).count();
    let (mut size, mut reclaimable) = (0i64, 0i64);
    for v in volumes {
        let (s, refs) = usage(v);
        if s != -1 {
            if refs == 0 {
                reclaimable += s;
            }
            size += s;
        }
    }
    let reclaim = if size > 0 {
        format!(
            "{} ({}%)",
            human_size_prec(reclaimable as f64, 4),
            reclaimable * 100 / size
        )
    } else {
        human_size_prec(reclaimable as f64, 4)
    };
    json!({
        "Type": "Local Volumes",
        "TotalCount": volumes.len().to_string(),
        "Active": active.to_string(),
        "Size": human_size_prec(size as f64, 4),
        "Reclaimable": reclaim,
    })
}

const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINER_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUME_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const BUILD_CACHE_TABLE: &str =
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];
const CONTAINER_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Size", "SIZE"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
];
const VOLUME_HEADERS: &[(&str, &str)] = &[("Name", "VOLUME NAME"), ("Links", "LINKS"), ("Size", "SIZE")];
const BUILD_CACHE_HEADERS: &[(&str, &str)] = &[
    ("ID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("Size", "SIZE"),
    ("CreatedSince", "CREATED"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("Shared", "SHARED"),
];

/// One image of the verbose report: only its first tag (`<none>` for a dangling image).
pub fn image_row(img: &Value, trunc: bool) -> Value {
    let first = img["RepoTags"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .filter(|t| *t != "<none>:<none>");
    let (repo, tag) = first
        .and_then(|t| {
            let slash = t.rfind('/').map_or(0, |i| i + 1);
            t[slash..]
                .rfind(':')
                .map(|i| (t[..slash + i].to_string(), t[slash + i + 1..].to_string()))
        })
        .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
    let id = img["Id"].as_str().unwrap_or_default();
    let id = if trunc {
        berth_types::short_id(id).to_string()
    } else {
        id.to_string()
    };
    let size = img["Size"].as_i64().unwrap_or(0);
    let shared = img["SharedSize"].as_i64().unwrap_or(-1);
    let created = img["Created"].as_i64().unwrap_or(0);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    let na_or = |n: i64, s: String| if n == -1 { "N/A".to_string() } else { s };
    json!({
        "Repository": repo,
        "Tag": tag,
        "ID": id,
        "CreatedSince": if created == 0 { String::new() } else { ago_unix(created) },
        "Size": human_size_prec(size as f64, 3),
        "SharedSize": na_or(shared, human_size_prec(shared as f64, 3)),
        "UniqueSize": na_or(shared, human_size_prec((size - shared) as f64, 3)),
        "Containers": na_or(containers, containers.to_string()),
    })
}

/// One container of the verbose report: `ps`'s row without the virtual size, and `LOCAL VOLUMES`
/// counting the mounts of `local` volumes.
pub fn container_row(c: &Value, trunc: bool) -> Value {
    let mut c = c.clone();
    if let Value::Object(m) = &mut c {
        // "Don't display the virtual size", as the docker CLI says.
        m.remove("SizeRootFs");
    }
    let mut row = crate::container::ps_row(&c, trunc);
    let local = c["Mounts"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|m| m["Driver"] == "local").count());
    if let Value::Object(m) = &mut row {
        m.insert("LocalVolumes".into(), json!(local.to_string()));
    }
    row
}

fn rows(df: &Value, key: &str, f: impl Fn(&Value) -> Value) -> Vec<Value> {
    df[key]
        .as_array()
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}

/// `system df -v`: the four sections as the docker CLI prints them, or `format` rendered against
/// `.Images`, `.Containers`, `.Volumes` and `.BuildCache` when it is not a table.
pub fn render_verbose(df: &Value, format: Option<&str>) -> Result<String> {
    let custom = format.filter(|f| !f.trim().is_empty() && !f.trim().starts_with("table"));
    let trunc = custom.is_none();
    let images = rows(df, "Images", |i| image_row(i, trunc));
    let containers = rows(df, "Containers", |c| container_row(c, trunc));
    let volumes = rows(df, "Volumes", volume_row);
    if let Some(f) = custom {
        let mut ctx = Map::new();
        ctx.insert("Images".into(), Value::Array(images));
        ctx.insert("Containers".into(), Value::Array(containers));
        ctx.insert("Volumes".into(), Value::Array(volumes));
        ctx.insert("BuildCache".into(), json!([]));
        let mut out = Format::parse(f)?.render(&Value::Object(ctx))?;
        out.push('\n');
        return Ok(out);
    }
    let table = |tmpl: &str, rows: &[Value], headers: &[(&str, &str)]| Format::parse(tmpl)?.render_rows(rows, headers);
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&table(IMAGE_TABLE, &images, HEADERS)?);
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&table(CONTAINER_TABLE, &containers, CONTAINER_HEADERS)?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    out.push_str(&table(VOLUME_TABLE, &volumes, VOLUME_HEADERS)?);
    let builder = df["BuilderSize"].as_i64().unwrap_or(0);
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size_prec(builder as f64, 4)
    ));
    out.push_str(&table(BUILD_CACHE_TABLE, &[], BUILD_CACHE_HEADERS)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn df() -> Value {
        json!({
            "LayersSize": 1000,
            "Images": [{"Id": format!("sha256:{}", "a".repeat(64)), "RepoTags": ["busybox:latest", "bb:1"],
                        "Created": 0, "Size": 4_261_550, "SharedSize": 0, "Containers": 1}],
            "Containers": [{"Id": "c".repeat(64), "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:aaa",
                            "Command": "sleep 1000", "Created": 0, "State": "running", "Status": "Up 2 minutes",
                            "SizeRw": 12, "SizeRootFs": 4_261_562,
                            "Mounts": [{"Type": "volume", "Name": "data", "Driver": "local", "Destination": "/d"},
                                       {"Type": "bind", "Source": "/h", "Destination": "/c"}]}],
            "Volumes": [
                {"Name": "data", "Driver": "local", "Mountpoint": "/m/data", "Labels": null, "Scope": "local",
                 "UsageData": {"Size": 10_920_104, "RefCount": 1}},
                {"Name": "old", "Driver": "local", "Mountpoint": "/m/old", "Labels": null, "Scope": "local",
                 "UsageData": {"Size": 2_000_000, "RefCount": 0}},
                {"Name": "remote", "Driver": "nfs", "Mountpoint": "", "Labels": null, "Scope": "global",
                 "UsageData": {"Size": -1, "RefCount": 0}},
            ],
            "BuildCache": [],
        })
    }

    #[test]
    fn local_volumes_row() {
        let d = df();
        let row = volumes_row(d["Volumes"].as_array().unwrap());
        assert_eq!(
            row,
            json!({"Type": "Local Volumes", "TotalCount": "3", "Active": "1", "Size": "12.92MB",
                   "Reclaimable": "2MB (15%)"})
        );
        assert_eq!(
            volumes_row(&[]),
            json!({"Type": "Local Volumes", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"})
        );
    }

    #[test]
    fn verbose_report() {
        let out = render_verbose(&df(), None).unwrap();
        let want_volumes = "\nLocal Volumes space usage:\n\n\
                            VOLUME NAME   LINKS     SIZE\n\
                            data          1         10.92MB\n\
                            old           0         2MB\n\
                            remote        0         -1B\n\
                            \nBuild cache usage: 0B\n\n\
                            CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n";
        assert!(out.ends_with(want_volumes), "{out}");
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("Images space usage:"));
        assert_eq!(lines.next(), Some(""));
        assert_eq!(
            lines.next(),
            Some("REPOSITORY   TAG       IMAGE ID       CREATED   SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS")
        );
        assert_eq!(
            lines.next(),
            Some("busybox      latest    aaaaaaaaaaaa             4.26MB    0B            4.26MB        1")
        );
        assert_eq!(lines.next(), Some(""));
        assert_eq!(lines.next(), Some("Containers space usage:"));
        assert_eq!(lines.next(), Some(""));
        let header = lines.next().unwrap_or_default();
        assert!(
            header.starts_with("CONTAINER ID   IMAGE     COMMAND        LOCAL VOLUMES   SIZE      CREATED"),
            "{header}"
        );
        let row = lines.next().unwrap_or_default();
        assert!(
            row.starts_with("cccccccccccc   busybox   \"sleep 1000\"   1               12B       "),
            "{row}"
        );
        assert!(row.ends_with("Up 2 minutes   web"), "{row}");
        let names = render_verbose(&df(), Some("{{range .Volumes}}{{.Name}}={{.Links}} {{end}}")).unwrap();
        assert_eq!(names, "data=1 old=0 remote=0 \n");
        let j: Value = serde_json::from_str(&render_verbose(&df(), Some("json")).unwrap()).unwrap();
        assert_eq!(j["Volumes"][1]["Name"], "old");
        assert_eq!(j["Volumes"][1]["Size"], "2MB");
        assert!(j["Volumes"][1].get("__berthLabels").is_none());
        assert_eq!(j["BuildCache"], json!([]));
    }
}
