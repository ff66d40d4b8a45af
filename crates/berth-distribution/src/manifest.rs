//! Manifests and indexes (OCI image spec `manifest.md`, `image-index.md`; Docker image manifest
//! v2 schema 2 and manifest list): media types, descriptor validation, platform selection.

use crate::error::{DistributionError, Result};
use berth_types::Digest;
use serde::{Deserialize, Serialize};

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 1 (refused).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1, signed (refused).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Layer media types a pull accepts (OCI `media-types.md`, Docker schema 2).
pub const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// The `Accept` header of manifest requests: every type we can use, preferred first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or index accepted (the distribution spec suggests 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG_SIZE: u64 = 64 << 20;
/// Largest layer accepted: a sanity bound on the descriptor's size field.
pub const MAX_LAYER_SIZE: u64 = 1 << 40;

/// A content descriptor (OCI `descriptor.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Other places to fetch it from (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Annotations, kept for callers that show them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Descriptor {
    /// A descriptor of `bytes` with the given media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Digest::sha256(bytes),
            size: bytes.len() as u64,
            urls: Vec::new(),
            annotations: None,
        }
    }
}

/// A platform (OCI index `platform`): the one an image is chosen for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`, `windows`.
    pub os: String,
    /// Go's GOARCH: `amd64`, `arm64`, `arm`.
    pub architecture: String,
    /// `v7`, `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on, in Go's names.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(String::from),
        }
    }

    /// Parses `os/arch[/variant]` as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_lowercase(),
                architecture: normalize_arch(arch).into(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.to_lowercase(),
                architecture: normalize_arch(arch).into(),
                variant: Some(v.to_string()),
            }),
            _ => Err(DistributionError::InvalidArgument(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            ))),
        }
    }

    /// Whether an index entry's platform serves this one. `arm64` without a variant equals
    /// `arm64/v8`; a request without a variant accepts any.
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || normalize_arch(&self.architecture) != normalize_arch(&other.architecture) {
            return false;
        }
        let default_variant = |p: &Platform| match (normalize_arch(&p.architecture), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            ("arm", None) => Some("v7".to_string()),
            (_, v) => v.map(String::from),
        };
        match &self.variant {
            None => true,
            Some(_) => default_variant(self) == default_variant(other),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" => "386",
        other => other,
    }
}

/// What kind of document a manifest body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (Docker schema 2 or OCI).
    Image,
    /// An index or manifest list.
    Index,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// Decides the media type of a manifest body from the `Content-Type` and the body's own
/// `mediaType`; refuses schema 1 and unknown types.
pub fn classify(reference: &str, content_type: Option<&str>, body: &[u8]) -> Result<(String, ManifestKind)> {
    let invalid = |reason: String| DistributionError::InvalidManifest {
        reference: reference.into(),
        reason,
    };
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty());
    if matches!(ct.as_deref(), Some(DOCKER_SCHEMA1) | Some(DOCKER_SCHEMA1_SIGNED)) {
        return Err(DistributionError::Schema1 {
            reference: reference.into(),
        });
    }
    let probe: Probe = serde_json::from_slice(body).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if probe.schema_version == Some(1) {
        return Err(DistributionError::Schema1 {
            reference: reference.into(),
        });
    }
    if probe.schema_version != Some(2) {
        return Err(invalid(format!(
            "schemaVersion is {:?}, expected 2",
            probe.schema_version
        )));
    }
    // The body's mediaType wins over a generic Content-Type (application/json, octet-stream).
    let known = |t: &str| matches!(t, DOCKER_MANIFEST | DOCKER_MANIFEST_LIST | OCI_MANIFEST | OCI_INDEX);
    let mt = match (probe.media_type, ct) {
        (Some(m), Some(c)) if known(&c) && m != c => {
            return Err(invalid(format!("mediaType {m} differs from Content-Type {c}")))
        }
        (Some(m), _) => m,
        (None, Some(c)) if known(&c) => c,
        // OCI allows omitting mediaType: tell an index from a manifest by its fields.
        (None, _) if probe.manifests.is_some() => OCI_INDEX.into(),
        (None, _) if probe.layers.is_some() => OCI_MANIFEST.into(),
        (None, c) => return Err(invalid(format!("unknown manifest type (Content-Type {c:?})"))),
    };
    match mt.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => Ok((mt, ManifestKind::Image)),
        DOCKER_MANIFEST_LIST | OCI_INDEX => Ok((mt, ManifestKind::Index)),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(DistributionError::Schema1 {
            reference: reference.into(),
        }),
        other => Err(invalid(format!("unsupported manifest media type {other}"))),
    }
}

/// A raw descriptor as found in JSON: sizes checked before they become `u64`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct RawManifest {
    config: RawDescriptor,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
}

fn descriptor(reference: &str, what: &str, raw: RawDescriptor, max: u64) -> Result<Descriptor> {
    let invalid = |reason: String| DistributionError::InvalidManifest {
        reference: reference.into(),
        reason,
    };
    let digest: Digest = raw
        .digest
        .parse()
        .map_err(|e| invalid(format!("{what}: {e} (digests must be sha256 or sha512)")))?;
    if raw.size < 0 {
        return Err(invalid(format!("{what} {digest}: negative size {}", raw.size)));
    }
    let size = raw.size as u64;
    if size > max {
        return Err(invalid(format!("{what} {digest}: size {size} exceeds {max}")));
    }
    for u in &raw.urls {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(invalid(format!("{what} {digest}: url {u:?} is not http(s)")));
        }
    }
    Ok(Descriptor {
        media_type: raw.media_type,
        digest,
        size,
        urls: raw.urls,
        annotations: raw.annotations,
    })
}

/// Parses an image manifest into its config and layers, validating every descriptor.
pub fn parse_image_manifest(reference: &str, body: &[u8]) -> Result<(Descriptor, Vec<Descriptor>)> {
    let invalid = |reason: String| DistributionError::InvalidManifest {
        reference: reference.into(),
        reason,
    };
    let m: RawManifest = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    let config = descriptor(reference, "config", m.config, MAX_CONFIG_SIZE)?;
    if !(config.media_type == DOCKER_CONFIG || config.media_type == OCI_CONFIG) {
        return Err(invalid(format!(
            "config media type {:?} is not an image config (an artifact, not a runnable image)",
            config.media_type
        )));
    }
    let mut layers = Vec::with_capacity(m.layers.len());
    for l in m.layers {
        let d = descriptor(reference, "layer", l, MAX_LAYER_SIZE)?;
        if !LAYER_MEDIA_TYPES.contains(&d.media_type.as_str()) {
            return Err(invalid(format!(
                "layer {}: unknown media type {:?}",
                d.digest, d.media_type
            )));
        }
        layers.push(d);
    }
    Ok((config, layers))
}

/// An index entry: the manifest's descriptor and the platform it is for.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// Its platform, if the index says.
    pub platform: Option<Platform>,
}

/// Parses an index or manifest list.
pub fn parse_index(reference: &str, body: &[u8]) -> Result<Vec<IndexEntry>> {
    let i: RawIndex = serde_json::from_slice(body).map_err(|e| DistributionError::InvalidManifest {
        reference: reference.into(),
        reason: e.to_string(),
    })?;
    i.manifests
        .into_iter()
        .map(|mut raw| {
            let platform = raw.platform.take().map(|p| Platform {
                os: p.os,
                architecture: p.architecture,
                variant: p.variant.filter(|v| !v.is_empty()),
            });
            Ok(IndexEntry {
                descriptor: descriptor(reference, "manifest", raw, MAX_MANIFEST_SIZE)?,
                platform,
            })
        })
        .collect()
}

/// Picks the index entry for `wanted`: the first image manifest whose platform matches, an exact
/// variant preferred; the error lists the platforms available.
pub fn select_platform(reference: &str, entries: &[IndexEntry], wanted: &Platform) -> Result<Descriptor> {
    let images = || {
        entries
            .iter()
            .filter(|e| matches!(e.descriptor.media_type.as_str(), DOCKER_MANIFEST | OCI_MANIFEST | ""))
    };
    let exact = images().find(|e| e.platform.as_ref().is_some_and(|p| p == wanted));
    let any = || images().find(|e| e.platform.as_ref().is_some_and(|p| wanted.matches(p)));
    if let Some(e) = exact.or_else(any) {
        return Ok(e.descriptor.clone());
    }
    Err(DistributionError::NoMatchingPlatform {
        reference: reference.into(),
        wanted: wanted.to_string(),
        available: images()
            .filter_map(|e| e.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| p.to_string())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn index() -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":10,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":10,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":10,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn platform_selection() {
        let e = parse_index("x", &index()).unwrap();
        let cases = [
            ("linux/amd64", Some(D1)),
            ("linux/arm64", Some(D2)),
            ("linux/arm64/v8", Some(D2)),
            ("linux/aarch64", Some(D2)),
            ("linux/arm/v7", None),
            ("windows/amd64", None),
        ];
        for (p, want) in cases {
            let got = select_platform("x", &e, &Platform::parse(p).unwrap());
            match want {
                Some(d) => assert_eq!(got.unwrap().digest.to_string(), d, "{p}"),
                None => {
                    let msg = got.unwrap_err().to_string();
                    assert!(msg.contains("linux/amd64, linux/arm64/v8"), "{msg}");
                    assert!(!msg.contains("unknown/unknown"), "{msg}");
                }
            }
        }
        assert!(matches!(
            Platform::parse("linux"),
            Err(DistributionError::InvalidArgument(_))
        ));
    }

    #[test]
    fn classify_types() {
        let m = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{}},"layers":[]}}"#);
        assert_eq!(
            classify("r", Some(DOCKER_MANIFEST), m.as_bytes()).unwrap().1,
            ManifestKind::Image
        );
        assert_eq!(
            classify("r", Some("application/json"), m.as_bytes()).unwrap().0,
            DOCKER_MANIFEST
        );
        let no_mt = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            classify("r", None, no_mt).unwrap(),
            (OCI_INDEX.into(), ManifestKind::Index)
        );
        let s1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(matches!(
            classify("r", None, s1),
            Err(DistributionError::Schema1 { .. })
        ));
        assert!(matches!(
            classify("r", Some(DOCKER_SCHEMA1_SIGNED), b"{}"),
            Err(DistributionError::Schema1 { .. })
        ));
        assert!(classify("r", Some(OCI_INDEX), m.as_bytes()).is_err());
        assert!(classify("r", None, b"not json").is_err());
    }

    #[test]
    fn manifest_validation() {
        let good_cfg = format!(r#"{{"mediaType":"{OCI_CONFIG}","digest":"{D1}","size":2}}"#);
        let layer = |mt: &str, size: i64, digest: &str| {
            format!(
                r#"{{"schemaVersion":2,"config":{good_cfg},"layers":[{{"mediaType":"{mt}","digest":"{digest}","size":{size}}}]}}"#
            )
        };
        let ok = layer("application/vnd.oci.image.layer.v1.tar+zstd", 5, D2);
        let (c, l) = parse_image_manifest("r", ok.as_bytes()).unwrap();
        assert_eq!((c.size, l[0].size), (2, 5));
        for bad in [
            layer("application/vnd.oci.image.layer.v1.tar+zstd", -1, D2),
            layer("application/vnd.oci.image.layer.v1.tar+zstd", 1 << 50, D2),
            layer("application/x-unknown", 5, D2),
            layer("application/vnd.oci.image.layer.v1.tar", 5, "md5:abc"),
            layer("application/vnd.oci.image.layer.v1.tar", 5, "sha256:xyz"),
        ] {
            assert!(parse_image_manifest("r", bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
