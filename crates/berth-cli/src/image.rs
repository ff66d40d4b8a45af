//! Image commands: images, rmi, tag, import, load, save, history, prune.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use berth_client::{body, Client, ImportOptions};
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;

use crate::args::{
    HistoryArgs, ImagePruneArgs, ImagesArgs, ImportArgs, LoadArgs, PullArgs, RmiArgs, SaveArgs, TagArgs,
};
use crate::filters::parse_filters;
use crate::format::{ellipsis, Format};
use crate::term::confirm;
use crate::transfer::Transfer;
use crate::units;
use crate::StatusError;

fn fail(e: impl std::fmt::Display) -> StatusError {
    StatusError::new(1, e.to_string())
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];

fn split_repo_tag(rt: &str) -> (String, String) {
    let last_slash = rt.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rt[last_slash..].rfind(':') {
        Some(i) => (rt[..last_slash + i].to_string(), rt[last_slash + i + 1..].to_string()),
        None => (rt.to_string(), "<none>".to_string()),
    }
}

/// The `docker images` rows of one image summary, as the docker CLI's
/// `imageFormatTaggedAndDigest`: one row per tag (per digest too with `--digests`), else `<none>`.
pub fn image_rows(img: &Value, trunc: bool, show_digests: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or_default();
    let shown_id = if trunc {
        berth_types::short_id(id).to_string()
    } else {
        id.to_string()
    };
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_f64().unwrap_or(0.0);
    let strs = |k: &str| -> Vec<String> {
        img[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let tags: Vec<String> = strs("RepoTags").into_iter().filter(|t| t != "<none>:<none>").collect();
    let digests: Vec<String> = strs("RepoDigests")
        .into_iter()
        .filter(|d| d != "<none>@<none>")
        .collect();
    // repo -> tags / digests, in order of first appearance.
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &tags {
        let (repo, tag) = split_repo_tag(t);
        match repo_tags.iter_mut().find(|(r, _)| *r == repo) {
            Some((_, v)) => v.push(tag),
            None => repo_tags.push((repo, vec![tag])),
        }
    }
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for d in &digests {
        if let Some((repo, dg)) = d.split_once('@') {
            match repo_digests.iter_mut().find(|(r, _)| r == repo) {
                Some((_, v)) => v.push(dg.to_string()),
                None => repo_digests.push((repo.to_string(), vec![dg.to_string()])),
            }
        }
    }
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    for (repo, tags) in &repo_tags {
        let pos = repo_digests.iter().position(|(r, _)| r == repo);
        let dgs = pos.map(|p| repo_digests.remove(p).1).unwrap_or_default();
        for tag in tags {
            if dgs.is_empty() || !show_digests {
                pairs.push((repo.clone(), tag.clone(), "<none>".into()));
            } else {
                for d in &dgs {
                    pairs.push((repo.clone(), tag.clone(), d.clone()));
                }
            }
        }
    }
    for (repo, dgs) in repo_digests {
        if show_digests {
            for d in dgs {
                pairs.push((repo.clone(), "<none>".into(), d));
            }
        } else {
            pairs.push((repo, "<none>".into(), String::new()));
        }
    }
    if pairs.is_empty() {
        pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
    }
    let created_at = units::go_time_string(created);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    pairs
        .into_iter()
        .map(|(repo, tag, digest)| {
            let mut m = Map::new();
            m.insert("ID".into(), json!(shown_id));
            m.insert("Repository".into(), json!(repo));
            m.insert("Tag".into(), json!(tag));
            m.insert("Digest".into(), json!(digest));
            m.insert("CreatedSince".into(), json!(units::ago_unix(created)));
            m.insert("CreatedAt".into(), json!(created_at));
            m.insert("Size".into(), json!(units::human_size(size)));
            m.insert("VirtualSize".into(), json!(units::human_size_prec(size, 4)));
            m.insert(
                "SharedSize".into(),
                json!(match img["SharedSize"].as_f64() {
                    Some(s) if s >= 0.0 => units::human_size(s),
                    _ => "N/A".into(),
                }),
            );
            m.insert("UniqueSize".into(), json!("N/A"));
            m.insert(
                "Containers".into(),
                json!(if containers < 0 {
                    "N/A".to_string()
                } else {
                    containers.to_string()
                }),
            );
            Value::Object(m)
        })
        .collect()
}

/// `docker images`.
pub async fn images(client: &Client, a: ImagesArgs) -> Result<i32> {
    let mut filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    if let Some(r) = &a.reference {
        filters.entry("reference".into()).or_default().push(r.clone());
    }
    let list = client.image_list(a.all, a.digests, &filters).await.map_err(fail)?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list.iter().flat_map(|i| image_rows(i, trunc, a.digests)).collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            Some(f) if !f.is_empty() && f != "table" => f.to_string(),
            _ if a.digests => {
                "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
            }
            _ => "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into(),
        }
    };
    let f = Format::parse(&fmt).map_err(fail)?;
    let out = f.render_rows(&rows, IMAGE_HEADERS).map_err(fail)?;
    crate::write_out(&out);
    Ok(0)
}

/// `docker rmi`.
pub async fn rmi(client: &Client, a: RmiArgs) -> Result<i32> {
    let mut failed = false;
    for name in &a.images {
        match client.image_remove(name, a.force, a.no_prune).await {
            Ok(items) => {
                for it in items {
                    if let Some(u) = it["Untagged"].as_str() {
                        outln!("Untagged: {u}");
                    }
                    if let Some(d) = it["Deleted"].as_str() {
                        outln!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `docker tag`.
pub async fn tag(client: &Client, a: TagArgs) -> Result<i32> {
    let reference = berth_types::Reference::parse_name_only(&a.target).map_err(|_| {
        fail(format!(
            "Error parsing reference: \"{}\" is not a valid repository/tag: invalid reference format",
            a.target
        ))
    })?;
    if reference.digest().is_some() {
        return Err(fail("refusing to create a tag with a digest reference").into());
    }
    let (repo, tag) = split_repo_tag(&a.target);
    let tag = if tag == "<none>" { None } else { Some(tag) };
    client.image_tag(&a.source, &repo, tag.as_deref()).await.map_err(fail)?;
    Ok(0)
}

/// Prints a JSON message stream as the docker CLI does; an error message ends it.
async fn print_messages<R: tokio::io::AsyncRead + Unpin>(reader: R) -> Result<(), StatusError> {
    crate::progress::display_stream(reader, crate::progress::Target::Stdout, |_| {}).await
}

/// `docker import`.
pub async fn import(client: &Client, a: ImportArgs) -> Result<i32> {
    let mut o = ImportOptions {
        source: a.source.clone(),
        message: a.message.clone(),
        changes: a.change.clone(),
        platform: a.platform.clone(),
        ..Default::default()
    };
    if let Some(r) = &a.reference {
        berth_types::Reference::parse_name_only(r).map_err(|e| fail(e.to_string()))?;
        let (repo, tag) = split_repo_tag(r);
        o.repo = Some(repo);
        o.tag = (tag != "<none>").then_some(tag);
    }
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let (req_body, transfer) = if a.source == "-" {
        let t = Transfer::start("Importing", None, false);
        (body::from_reader(t.reader(tokio::io::stdin())), Some(t))
    } else if is_url {
        (body::empty(), None)
    } else {
        let f = tokio::fs::File::open(&a.source)
            .await
            .map_err(|e| fail(format!("open {}: {e}", a.source)))?;
        o.source = "-".into();
        let size = f.metadata().await.ok().map(|m| m.len());
        let t = Transfer::start("Importing", size, false);
        (body::from_reader(t.reader(f)), Some(t))
    };
    let resp = client.image_import(req_body, &o).await;
    if let Some(t) = transfer {
        t.finish().await;
    }
    let resp = resp.map_err(fail)?;
    print_messages(resp).await?;
    Ok(0)
}

/// `docker load`.
pub async fn load(client: &Client, a: LoadArgs) -> Result<i32> {
    let (req_body, transfer) = match &a.input {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| fail(format!("open {path}: {e}")))?;
            let size = f.metadata().await.ok().map(|m| m.len());
            let t = Transfer::start("Loading", size, a.quiet);
            (body::from_reader(t.reader(f)), t)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(fail("requested load from stdin, but stdin is empty").into());
            }
            let t = Transfer::start("Loading", None, a.quiet);
            (body::from_reader(t.reader(tokio::io::stdin())), t)
        }
    };
    let resp = client.image_load(req_body, a.quiet).await;
    transfer.finish().await;
    let resp = resp.map_err(fail)?;
    print_messages(resp).await?;
    Ok(0)
}

/// `docker save`.
pub async fn save(client: &Client, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(fail("cowardly refusing to save to a terminal. Use the -o flag or redirect").into());
    }
    let body = client.image_save(&a.images).await.map_err(fail)?;
    let transfer = Transfer::start("Saving", None, false);
    let mut body = transfer.reader(body);
    let mut buf = vec![0u8; 64 * 1024];
    match &a.output {
        Some(path) => {
            // Write to a temporary file beside the target, then rename, as docker does.
            let tmp = format!("{path}.berth-save.tmp");
            let mut f = std::fs::File::create(&tmp).map_err(|e| fail(format!("failed to save image: {e}")))?;
            let res: std::io::Result<()> = async {
                loop {
                    let n = body.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&buf[..n])?;
                }
                f.sync_all()?;
                std::fs::rename(&tmp, path)
            }
            .await;
            transfer.finish().await;
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(fail(format!("failed to save image: {e}")).into());
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            loop {
                let n = body.read(&mut buf).await.map_err(fail)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).map_err(fail)?;
            }
            out.flush().map_err(fail)?;
            transfer.finish().await;
        }
    }
    Ok(0)
}

const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// `docker history`.
pub async fn history(client: &Client, a: HistoryArgs) -> Result<i32> {
    let items = client.image_history(&a.image).await.map_err(fail)?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = items
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" || !trunc {
                id.to_string()
            } else {
                berth_types::short_id(id).to_string()
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let created_by = h["CreatedBy"].as_str().unwrap_or_default().replace('\t', " ");
            let created_by = if trunc { ellipsis(&created_by, 45) } else { created_by };
            let size = h["Size"].as_f64().unwrap_or(0.0);
            let created_at = chrono::DateTime::from_timestamp(created, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            json!({
                "ID": id,
                "CreatedSince": if a.human { units::ago_unix(created) } else { created_at.clone() },
                "CreatedAt": created_at,
                "CreatedBy": created_by,
                "Size": if a.human { units::human_size(size) } else { format!("{}", size as i64) },
                "Comment": h["Comment"].as_str().unwrap_or_default(),
            })
        })
        .collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        a.format
            .clone()
            .filter(|f| !f.is_empty() && f != "table")
            .unwrap_or_else(|| {
                let created = if a.human { "CreatedSince" } else { "CreatedAt" };
                format!("table {{{{.ID}}}}\t{{{{.{created}}}}}\t{{{{.CreatedBy}}}}\t{{{{.Size}}}}\t{{{{.Comment}}}}")
            })
    };
    let f = Format::parse(&fmt).map_err(fail)?;
    crate::write_out(&f.render_rows(&rows, HISTORY_HEADERS).map_err(fail)?);
    Ok(0)
}

/// `docker pull` (the daemon answers with a progress stream, or an error without a registry).
pub async fn pull(client: &Client, a: PullArgs) -> Result<i32> {
    let named = berth_types::Reference::parse_name_only(&a.image).map_err(|_| {
        fail(format!(
            "invalid reference format: repository name ({}) must be lowercase",
            a.image
        ))
    })?;
    if named.tag().is_none() && named.digest().is_none() && !a.all_tags && !a.quiet {
        outln!("Using default tag: latest");
    }
    let reference = berth_types::Reference::parse(&a.image).map_err(fail)?;
    let tag = if a.all_tags {
        None
    } else {
        reference.tag().map(str::to_string)
    };
    let auth = crate::credentials::auth_for(reference.domain());
    let body = client
        .image_pull(&reference.repository(), tag.as_deref(), a.platform.as_deref(), &auth)
        .await
        .map_err(fail)?;
    let target = if a.quiet {
        crate::progress::Target::Discard
    } else {
        crate::progress::Target::Stdout
    };
    crate::progress::display_stream(body, target, |_| {}).await?;
    outln!("{}", reference);
    Ok(0)
}

/// `docker image prune`.
pub async fn prune(client: &Client, a: ImagePruneArgs) -> Result<i32> {
    let mut filters = parse_filters(&a.filter).map_err(|e| StatusError::new(125, e))?;
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    filters.insert("dangling".into(), vec![if a.all { "false" } else { "true" }.into()]);
    let report = client.images_prune(&filters).await.map_err(fail)?;
    let items = report["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    crate::write_out(&crate::objects::images_deleted_section(&items));
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    crate::write_out(&crate::objects::reclaimed_line(space));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag() {
        let img = json!({
            "Id": "sha256:0123456789abcdef", "RepoTags": ["bb:latest", "localhost:5000/bb:v1"],
            "RepoDigests": ["bb@sha256:aaa"], "Created": chrono::Utc::now().timestamp() - 7200, "Size": 4261234
        });
        let rows = image_rows(&img, true, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "bb");
        assert_eq!(rows[0]["Tag"], "latest");
        assert_eq!(rows[0]["Digest"], "sha256:aaa");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["CreatedSince"], "2 hours ago");
        assert_eq!(rows[0]["Size"], "4.26MB");
        assert_eq!(rows[1]["Repository"], "localhost:5000/bb");
        assert_eq!(rows[1]["Tag"], "v1");
        assert_eq!(rows[1]["Digest"], "<none>");
        let dangling = json!({"Id": "sha256:ff", "RepoTags": null, "Created": 0, "Size": 0});
        let rows = image_rows(&dangling, false, false);
        assert_eq!(image_rows(&img, true, false)[0]["Digest"], "<none>");
        assert_eq!(rows[0]["Repository"], "<none>");
        assert_eq!(rows[0]["ID"], "sha256:ff");
        let f = Format::parse("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}").unwrap();
        let out = f
            .render_rows(&image_rows(&img, true, false)[..1], IMAGE_HEADERS)
            .unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\nbb           latest    0123456789ab   2 hours ago   4.26MB\n"
        );
    }
}
