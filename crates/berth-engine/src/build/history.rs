//! What a build step writes in its image's history (`created_by`), and how `--cache-from` finds a
//! step in another image's history.
//!
//! The classic builder's `--cache-from` trusts an image's history: a step is taken from a cache
//! image when the image's history and layers begin with those of the step's parent and its next
//! history entry says the same step. So the entry must name everything the step's result depends
//! on that the parent's history does not: the values ENV, LABEL, WORKDIR and USER set (expanded, as
//! Docker records them), the build args a RUN sees (`|2 A=1 B=2 /bin/sh -c ...`, as Docker
//! records them), and the content a COPY or ADD copies (`COPY file:<sha256> in /dest`).

use serde_json::Value;
use std::collections::BTreeMap;

/// An image `--cache-from` named: its ID, history and layers.
#[derive(Debug, Clone)]
pub(crate) struct CacheSource {
    pub id: String,
    pub history: Vec<Value>,
    pub diff_ids: Vec<String>,
}

impl CacheSource {
    /// The source of image `id` with config `config`.
    pub fn new(id: String, config: &Value) -> CacheSource {
        CacheSource {
            id,
            history: history_of(config),
            diff_ids: diff_ids_of(config),
        }
    }
}

/// The entries of an image config's history.
pub(crate) fn history_of(config: &Value) -> Vec<Value> {
    config["history"].as_array().cloned().unwrap_or_default()
}

/// The layers (diff IDs) of an image config.
pub(crate) fn diff_ids_of(config: &Value) -> Vec<String> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// A step found in a cache image: its history entry and how many of the image's layers the
/// step's image has (the parent's, and the step's own unless the entry is an empty layer).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CacheHit {
    pub entry: Value,
    pub layers: usize,
}

fn is_empty_layer(entry: &Value) -> bool {
    entry["empty_layer"].as_bool().unwrap_or(false)
}

/// The step after `parent` (its config) that says `created_by`, if `source` has it: `source`'s
/// history and layers must begin with exactly the parent's.
pub(crate) fn find_step(parent: &Value, source: &CacheSource, created_by: &str) -> Option<CacheHit> {
    let history = history_of(parent);
    let diff_ids = diff_ids_of(parent);
    let entry = source.history.get(history.len())?;
    if source.history[..history.len()] != history[..]
        || source.diff_ids.len() < diff_ids.len()
        || source.diff_ids[..diff_ids.len()] != diff_ids[..]
        || entry["created_by"].as_str() != Some(created_by)
    {
        return None;
    }
    // The parent's layers are those its history says it made; a history that disagrees with its
    // layers is not trusted.
    let made = source.history[..history.len()]
        .iter()
        .filter(|h| !is_empty_layer(h))
        .count();
    if made != diff_ids.len() {
        return None;
    }
    let layers = diff_ids.len() + usize::from(!is_empty_layer(entry));
    (layers <= source.diff_ids.len()).then(|| CacheHit {
        entry: entry.clone(),
        layers,
    })
}

/// The config of the image a cache hit makes: `stage` (the stage's config after the step) with
/// the hit's history entry and layers of `source` appended to the parent's.
pub(crate) fn restored_config(parent: &Value, stage: &Value, source: &CacheSource, hit: &CacheHit) -> Value {
    let mut config = stage.clone();
    let mut history = history_of(parent);
    history.push(hit.entry.clone());
    config["history"] = Value::Array(history);
    config["rootfs"] = serde_json::json!({
        "type": "layers",
        "diff_ids": source.diff_ids[..hit.layers],
    });
    if !hit.entry["created"].is_null() {
        config["created"] = hit.entry["created"].clone();
    }
    config
}

/// A metadata step's `created_by`: ENV, LABEL, WORKDIR and USER with the values they set (after
/// `stage_config`, the stage's config once the step applied), the rest as written.
pub(crate) fn metadata_created_by(
    command: berth_dockerfile::Command,
    original: &str,
    keys: &[String],
    stage_config: &Value,
) -> String {
    use berth_dockerfile::Command;
    let c = &stage_config["config"];
    let text = match command {
        Command::Env => {
            let env: Vec<&str> = c["Env"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let pairs: Vec<String> = keys
                .iter()
                .filter_map(|k| {
                    env.iter()
                        .rev()
                        .find(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
                        .map(|e| (*e).to_string())
                })
                .collect();
            format!("ENV {}", pairs.join(" "))
        }
        Command::Label => {
            let pairs: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}={}", c["Labels"][k].as_str().unwrap_or("")))
                .collect();
            format!("LABEL {}", pairs.join(" "))
        }
        Command::Workdir => format!("WORKDIR {}", c["WorkingDir"].as_str().unwrap_or("/")),
        Command::User => format!("USER {}", c["User"].as_str().unwrap_or("")),
        _ => original.trim().to_string(),
    };
    format!("/bin/sh -c #(nop)  {text}")
}

/// A RUN's `created_by`: its command, after the build args it sees (those of `args` its
/// environment does not set) as `|N K=V ...`.
pub(crate) fn run_created_by(cmd: &[String], args: &BTreeMap<String, String>, env: &[String]) -> String {
    let seen: Vec<String> = args
        .iter()
        .filter(|(k, _)| {
            !env.iter()
                .any(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k.as_str()))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if seen.is_empty() {
        cmd.join(" ")
    } else {
        format!("|{} {} {}", seen.len(), seen.join(" "), cmd.join(" "))
    }
}

/// A COPY's or ADD's `created_by`: `COPY <kind>:<sha256> in <dest> ` (Docker's form), the digest
/// over what is copied (`content`) and how (`how`: owner, mode, flags, destination).
pub(crate) fn copy_created_by(what: &str, kind: &str, content: &str, how: &str, dest: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(content.as_bytes());
    h.update([0]);
    h.update(how.as_bytes());
    format!(
        "/bin/sh -c #(nop) {what} {kind}:{} in {dest} ",
        hex::encode(h.finalize())
    )
}

/// The image a `--cache-from` entry names: an image reference, or BuildKit's
/// `type=registry,ref=<image>`; other BuildKit cache types are not images and are refused.
pub(crate) fn cache_ref(entry: &str) -> Result<String, String> {
    let entry = entry.trim();
    if !entry.contains('=') {
        return Ok(entry.to_string());
    }
    let mut typ = "registry";
    let mut reference = None;
    for part in entry.split(',') {
        match part.split_once('=') {
            Some(("type", t)) => typ = t,
            Some(("ref", r)) => reference = Some(r),
            _ => {}
        }
    }
    match (typ, reference) {
        ("registry", Some(r)) if !r.is_empty() => Ok(r.to_string()),
        ("registry", _) => Err("a registry cache source needs ref=<image>".into()),
        (t, _) => Err(format!(
            "type={t} is a BuildKit cache store; berth's builder takes its cache from images (type=registry,ref=<image>)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(history: &[(&str, bool)], diffs: &[&str]) -> Value {
        let h: Vec<Value> = history
            .iter()
            .map(|(c, empty)| json!({"created": "2026-01-01T00:00:00Z", "created_by": c, "empty_layer": empty}))
            .collect();
        json!({"config": {}, "history": h, "rootfs": {"type": "layers", "diff_ids": diffs}})
    }

    fn source(config: &Value) -> CacheSource {
        CacheSource::new("sha256:src".into(), config)
    }

    #[test]
    fn a_step_is_found_after_its_exact_parent() {
        let parent = image(&[("base", false)], &["sha256:a"]);
        let cache = image(
            &[("base", false), ("RUN x", false), ("ENV", true)],
            &["sha256:a", "sha256:b"],
        );
        let hit = find_step(&parent, &source(&cache), "RUN x").expect("the RUN step");
        assert_eq!(hit.layers, 2);
        assert_eq!(find_step(&parent, &source(&cache), "RUN y"), None, "another command");
        // The step after the RUN: an empty layer, so no new layer.
        let after_run = image(&[("base", false), ("RUN x", false)], &["sha256:a", "sha256:b"]);
        let hit = find_step(&after_run, &source(&cache), "ENV").expect("the ENV step");
        assert_eq!(hit.layers, 2);
        // The restored image: the parent's history and the hit's entry, the cache's layers.
        let stage = json!({"config": {"Env": ["A=1"]}, "history": [], "rootfs": {}});
        let restored = restored_config(&after_run, &stage, &source(&cache), &hit);
        assert_eq!(restored["history"].as_array().map(Vec::len), Some(3));
        assert_eq!(restored["rootfs"]["diff_ids"], json!(["sha256:a", "sha256:b"]));
        assert_eq!(restored["config"]["Env"], json!(["A=1"]));
        assert_eq!(restored["created"], json!("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn another_parent_or_a_history_that_lies_is_no_match() {
        let cache = image(&[("base", false), ("RUN x", false)], &["sha256:a", "sha256:b"]);
        let other_base = image(&[("base", false)], &["sha256:z"]);
        assert_eq!(find_step(&other_base, &source(&cache), "RUN x"), None, "other layers");
        let other_history = image(&[("base2", false)], &["sha256:a"]);
        assert_eq!(
            find_step(&other_history, &source(&cache), "RUN x"),
            None,
            "other history"
        );
        // History says two layers were made before, the layers say one.
        let lying = image(
            &[("base", false), ("RUN w", false), ("RUN x", false)],
            &["sha256:a", "sha256:b"],
        );
        let parent = image(&[("base", false), ("RUN w", false)], &["sha256:a"]);
        assert_eq!(find_step(&parent, &source(&lying), "RUN x"), None);
        // Nothing after the parent.
        assert_eq!(find_step(&cache, &source(&cache), "RUN x"), None);
        // An empty parent (FROM scratch) is the parent of every history.
        let scratch = image(&[], &[]);
        assert!(find_step(&scratch, &source(&cache), "base").is_some());
    }

    #[test]
    fn cache_entries_name_images() {
        assert_eq!(cache_ref("reg:5000/app:latest"), Ok("reg:5000/app:latest".into()));
        assert_eq!(cache_ref("type=registry,ref=reg/app:1"), Ok("reg/app:1".into()));
        assert_eq!(cache_ref("ref=reg/app"), Ok("reg/app".into()));
        assert!(cache_ref("type=local,src=/tmp/c").unwrap_err().contains("type=local"));
        assert!(cache_ref("type=registry").is_err());
    }

    #[test]
    fn history_texts_name_what_the_step_depends_on() {
        let stage = json!({"config": {"Env": ["PATH=/bin", "A=x y"], "Labels": {"l": "v"}, "WorkingDir": "/app", "User": "app"}});
        use berth_dockerfile::Command;
        assert_eq!(
            metadata_created_by(Command::Env, "ENV A=$V", &["A".into()], &stage),
            "/bin/sh -c #(nop)  ENV A=x y"
        );
        assert_eq!(
            metadata_created_by(Command::Label, "LABEL l=$X", &["l".into()], &stage),
            "/bin/sh -c #(nop)  LABEL l=v"
        );
        assert_eq!(
            metadata_created_by(Command::Workdir, "WORKDIR app", &[], &stage),
            "/bin/sh -c #(nop)  WORKDIR /app"
        );
        assert_eq!(
            metadata_created_by(Command::Cmd, "CMD [\"sh\"] ", &[], &stage),
            "/bin/sh -c #(nop)  CMD [\"sh\"]"
        );
        let cmd = vec!["/bin/sh".to_string(), "-c".into(), "make".into()];
        let args = BTreeMap::from([("V".to_string(), "1".to_string()), ("A".to_string(), "2".to_string())]);
        assert_eq!(run_created_by(&cmd, &BTreeMap::new(), &[]), "/bin/sh -c make");
        assert_eq!(run_created_by(&cmd, &args, &[]), "|2 A=2 V=1 /bin/sh -c make");
        assert_eq!(run_created_by(&cmd, &args, &["A=9".into()]), "|1 V=1 /bin/sh -c make");
        let a = copy_created_by("COPY", "file", "abc", "dest=/x", "/x");
        assert!(
            a.starts_with("/bin/sh -c #(nop) COPY file:") && a.ends_with(" in /x "),
            "{a}"
        );
        assert_ne!(a, copy_created_by("COPY", "file", "abd", "dest=/x", "/x"));
        assert_ne!(a, copy_created_by("COPY", "file", "abc", "dest=/x chown=1", "/x"));
    }
}
