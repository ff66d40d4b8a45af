//! Manifest validation: which media types are accepted, and the descriptors a manifest references
//! (checked to exist before it is stored) or points to as its `subject` (the referrers API).

use berth_types::Digest;
use serde_json::{Map, Value};

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An image manifest (config + layers) or an index (child manifests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Docker schema 2 or OCI image manifest.
    Image,
    /// Docker manifest list or OCI index.
    Index,
}

/// A content descriptor (OCI image spec "Descriptor"), the fields the registry uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// `mediaType`.
    pub media_type: Option<String>,
    /// `digest`.
    pub digest: Digest,
    /// `size`.
    pub size: u64,
    /// Whether the descriptor carries `urls` (a foreign layer the registry need not hold).
    pub foreign: bool,
}

/// What the registry needs to know about a manifest it is asked to store.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The effective media type (from `mediaType`, else `Content-Type`, else the structure).
    pub media_type: String,
    /// Image or index.
    pub kind: Kind,
    /// `config` then `layers` (image manifests).
    pub blobs: Vec<Descriptor>,
    /// `manifests` (indexes).
    pub manifests: Vec<Descriptor>,
    /// `subject`, if any.
    pub subject: Option<Descriptor>,
    /// `artifactType`, else (image manifests) the config's media type: what the referrers API lists.
    pub artifact_type: Option<String>,
    /// `annotations`.
    pub annotations: Option<Map<String, Value>>,
}

/// Strips parameters from a `Content-Type` value.
pub fn bare_media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

fn descriptor(v: &Value, what: &str) -> Result<Descriptor, String> {
    let o = v.as_object().ok_or_else(|| format!("{what}: not an object"))?;
    let digest = o
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}: missing digest"))?;
    let digest: Digest = digest.parse().map_err(|e| format!("{what}: {e}"))?;
    let size = o
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{what}: missing or negative size"))?;
    let media_type = match o.get("mediaType") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(format!("{what}: mediaType is not a string")),
    };
    let foreign = o.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty());
    Ok(Descriptor {
        media_type,
        digest,
        size,
        foreign,
    })
}

fn descriptors(o: &Map<String, Value>, field: &str) -> Result<Vec<Descriptor>, String> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| descriptor(v, &format!("{field}[{i}]")))
            .collect(),
        Some(_) => Err(format!("{field} is not an array")),
    }
}

/// Parses and validates manifest bytes pushed with `content_type`. The error is the reason, for a
/// MANIFEST_INVALID answer. Schema 1 manifests are refused (Docker dropped them).
pub fn parse(data: &[u8], content_type: Option<&str>) -> Result<Manifest, String> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("not valid JSON: {e}"))?;
    let o = v.as_object().ok_or("not a JSON object")?;
    match o.get("schemaVersion").and_then(Value::as_i64) {
        Some(2) => {}
        Some(1) => return Err("schema 1 manifests are not supported".into()),
        _ => return Err("schemaVersion must be 2".into()),
    }
    let field_mt = match o.get("mediaType") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("mediaType is not a string".into()),
    };
    let ct = content_type.map(bare_media_type).filter(|c| !c.is_empty());
    if let (Some(f), Some(c)) = (field_mt, ct) {
        if f != c {
            return Err(format!("Content-Type {c} does not match the manifest's mediaType {f}"));
        }
    }
    let known = |t: &str| [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX].contains(&t);
    let media_type = match (field_mt, ct) {
        (Some(f), _) => f.to_string(),
        (None, Some(c)) if known(c) => c.to_string(),
        // No (usable) type given: OCI allows omitting mediaType, so tell by the structure.
        _ if o.contains_key("manifests") => OCI_INDEX.to_string(),
        _ if o.contains_key("config") => OCI_MANIFEST.to_string(),
        _ => return Err("cannot tell the manifest's media type".into()),
    };
    let kind = match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => Kind::Image,
        DOCKER_MANIFEST_LIST | OCI_INDEX => Kind::Index,
        t if t.starts_with("application/vnd.docker.distribution.manifest.v1") => {
            return Err("schema 1 manifests are not supported".into())
        }
        t => return Err(format!("unsupported manifest media type {t}")),
    };
    let (blobs, manifests) = match kind {
        Kind::Image => {
            let config = descriptor(o.get("config").ok_or("image manifest without config")?, "config")?;
            if !o.contains_key("layers") && media_type == DOCKER_MANIFEST {
                return Err("image manifest without layers".into());
            }
            let mut blobs = vec![config];
            blobs.extend(descriptors(o, "layers")?);
            (blobs, Vec::new())
        }
        Kind::Index => {
            if !o.get("manifests").is_some_and(Value::is_array) {
                return Err("index without a manifests array".into());
            }
            (Vec::new(), descriptors(o, "manifests")?)
        }
    };
    let subject = o.get("subject").map(|s| descriptor(s, "subject")).transpose()?;
    let artifact_type = o
        .get("artifactType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| match kind {
            Kind::Image => blobs.first().and_then(|c| c.media_type.clone()),
            Kind::Index => None,
        });
    let annotations = o.get("annotations").and_then(Value::as_object).cloned();
    Ok(Manifest {
        media_type,
        kind,
        blobs,
        manifests,
        subject,
        artifact_type,
        annotations,
    })
}

impl Manifest {
    /// The descriptor the referrers API lists for this manifest, stored as `digest` of `size` bytes.
    pub fn referrer_descriptor(&self, digest: &Digest, size: usize) -> Value {
        let mut d = serde_json::json!({
            "mediaType": self.media_type,
            "digest": digest.to_string(),
            "size": size,
        });
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = Value::String(t.clone());
        }
        if let Some(a) = &self.annotations {
            d["annotations"] = Value::Object(a.clone());
        }
        d
    }

    /// Every digest this manifest references (config, layers, children); not the subject.
    pub fn references(&self) -> impl Iterator<Item = &Descriptor> {
        self.blobs.iter().chain(self.manifests.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::sha256(s.as_bytes()).to_string()
    }

    #[test]
    fn accepted_and_refused() {
        let img = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d("c"), "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d("l"), "size": 2}],
            "annotations": {"a": "b"}
        })
        .to_string();
        let m = parse(img.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, Kind::Image);
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert!(parse(img.as_bytes(), None).is_ok(), "no Content-Type: use mediaType");
        assert!(parse(img.as_bytes(), Some(&format!("{OCI_MANIFEST}; charset=utf-8"))).is_ok());
        assert!(parse(img.as_bytes(), Some(DOCKER_MANIFEST)).is_err(), "type mismatch");

        let idx = serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": d("m"), "size": 3}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d("s"), "size": 4}})
        .to_string();
        let m = parse(idx.as_bytes(), Some(OCI_INDEX)).unwrap();
        assert_eq!(m.kind, Kind::Index);
        assert_eq!(m.subject.unwrap().digest.to_string(), d("s"));
        let m = parse(idx.as_bytes(), None).unwrap();
        assert_eq!(m.media_type, OCI_INDEX, "inferred");

        for (bad, ct) in [
            ("not json", None),
            ("[]", None),
            (r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#, None),
            (
                r#"{"schemaVersion":1}"#,
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            ),
            (r#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
                None,
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:x","size":1},"layers":[]}"#,
                None,
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
                None,
            ),
        ] {
            assert!(parse(bad.as_bytes(), ct).is_err(), "{bad}");
        }
    }
}
