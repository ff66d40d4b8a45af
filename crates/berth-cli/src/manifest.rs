//! `manifest create/annotate/inspect/push/rm`: manifest lists made on the client, as docker's
//! `manifest` commands make them, talking to the registry directly (no daemon).
//!
//! A list being made lives in docker's store, `<config>/manifests/<list>/<image>` (each name the
//! fully qualified reference with `:` as `-` and `/` as `_`), one JSON file per image in docker's
//! `types.ImageManifest` form: its reference, its descriptor (with the platform read from the
//! image's config, or set by `annotate`), the manifest bytes as fetched (`Raw`) and the parsed
//! manifest. So the docker CLI can inspect, annotate and push what berth made, and the other way.
//! `push` writes the list as docker does (a Docker manifest list, indented as Go's `MarshalIndent`
//! with three spaces, so both CLIs push the same bytes), after copying into the list's repository
//! the images that live in another repository of the same registry: their blobs by cross-repository
//! mount (copied through the client when the registry declines the mount, where docker gives up),
//! their manifests by digest.

use std::path::PathBuf;

use anyhow::Result;
use base64::Engine as _;
use berth_distribution::manifest::{
    classify, parse_image_manifest, ManifestKind, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_CONFIG_SIZE,
};
use berth_distribution::{ClientConfig, Descriptor, RegistryClient};
use berth_types::Reference;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::args::{ManifestAnnotateArgs, ManifestCreateArgs, ManifestPushArgs, ManifestRmArgs};
use crate::format::json_indent;
use crate::StatusError;

/// The media type of the lists `push` writes (docker's).
const LIST_MEDIA_TYPE: &str = DOCKER_MANIFEST_LIST;
/// A stored entry beyond this is not a manifest of ours.
const MAX_ENTRY: u64 = 16 << 20;

fn fail(e: impl std::fmt::Display) -> anyhow::Error {
    StatusError::new(1, e.to_string()).into()
}

/// One image of a local list: docker's `types.ImageManifest`.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct ImageManifest {
    #[serde(rename = "Ref")]
    reference: String,
    #[serde(rename = "Descriptor")]
    descriptor: StoredDescriptor,
    /// The manifest as fetched, base64 (Go's `[]byte`).
    #[serde(rename = "Raw", default, skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    #[serde(rename = "SchemaV2Manifest", default, skip_serializing_if = "Option::is_none")]
    schema2: Option<Value>,
    #[serde(rename = "OCIManifest", default, skip_serializing_if = "Option::is_none")]
    oci: Option<Value>,
}

/// An OCI descriptor with its platform; members berth does not know are kept.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct StoredDescriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformSpec>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// A platform, as an OCI descriptor and a manifest list entry carry it (`architecture` and `os`
/// always written, as docker writes them).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct PlatformSpec {
    architecture: String,
    os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "String::is_empty")]
    os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    variant: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    features: Vec<String>,
}

impl ImageManifest {
    fn raw_bytes(&self) -> Result<Vec<u8>> {
        let raw = self.raw.as_deref().ok_or_else(|| {
            fail(format!(
                "the stored manifest of {} has no raw content: create the list again",
                self.reference
            ))
        })?;
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| fail(format!("the stored manifest of {}: {e}", self.reference)))
    }

    fn reference(&self) -> Result<Reference> {
        Reference::parse(&self.reference).map_err(|_| fail(format!("invalid reference format: {}", self.reference)))
    }
}

/// The list document `push` uploads and `inspect` shows: Go's `MarshalIndent` with three spaces.
#[derive(Serialize)]
struct ManifestList<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    manifests: Vec<ListEntry>,
}

#[derive(Serialize)]
struct ListEntry {
    #[serde(rename = "mediaType")]
    media_type: String,
    size: u64,
    digest: String,
    platform: PlatformSpec,
}

/// `ref` normalized as docker's manifest commands do: a tag (`latest`) unless it has a digest.
fn normalize(s: &str) -> Result<Reference> {
    Reference::parse(s).map_err(|_| fail(format!("invalid reference format: {s}")))
}

/// A store path component: the fully qualified reference with `:` as `-` and `/` as `_`.
fn filesafe(r: &Reference) -> String {
    r.to_string().replace(':', "-").replace('/', "_")
}

/// Docker's local store of lists being made.
struct Store {
    root: PathBuf,
}

impl Store {
    fn open() -> Result<Store> {
        Ok(Store {
            root: crate::credentials::config_dir()?.join("manifests"),
        })
    }

    fn list_dir(&self, list: &Reference) -> PathBuf {
        self.root.join(filesafe(list))
    }

    /// The images of `list`, by file name; `None` when there is no such list.
    fn get_list(&self, list: &Reference) -> Result<Option<Vec<ImageManifest>>> {
        let dir = self.list_dir(list);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(format!("reading {}: {e}", dir.display()))),
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            // A write a crash interrupted leaves its temporary file: not an entry.
            .filter(|e| !berth_types::fs::is_temp_name(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| read_entry(p))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn get(&self, list: &Reference, image: &Reference) -> Result<Option<ImageManifest>> {
        let path = self.list_dir(list).join(filesafe(image));
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => read_entry(&path).map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(format!("reading {}: {e}", path.display()))),
        }
    }

    /// Writes an image's entry atomically (a temporary file renamed into place).
    fn save(&self, list: &Reference, image: &Reference, m: &ImageManifest) -> Result<()> {
        let dir = self.list_dir(list);
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(filesafe(image));
        berth_types::write_atomic(&path, &serde_json::to_vec(m)?)
            .map_err(|e| fail(format!("writing {}: {e}", path.display())))
    }

    fn remove(&self, list: &Reference) -> Result<()> {
        let dir = self.list_dir(list);
        std::fs::remove_dir_all(&dir).map_err(|e| fail(format!("removing {}: {e}", dir.display())))
    }
}

fn read_entry(path: &std::path::Path) -> Result<ImageManifest> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > MAX_ENTRY {
        return Err(fail(format!("{}: {len} bytes is not a manifest entry", path.display())));
    }
    let text = std::fs::read(path).map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
    serde_json::from_slice(&text).map_err(|e| fail(format!("{}: not a manifest entry: {e}", path.display())))
}

/// A registry client for `domain`; `insecure` allows plain HTTP and unverified TLS there.
fn registry(domain: &str, insecure: bool) -> RegistryClient {
    let mut config = ClientConfig::default();
    if insecure {
        config.insecure_registries.push(domain.to_string());
    }
    RegistryClient::new(config)
}

/// Fetches `image`'s manifest and, from its config, its platform.
async fn fetch_image(reg: &RegistryClient, image: &Reference) -> Result<ImageManifest> {
    let auth = crate::credentials::auth_for(image.domain());
    let shown = image.familiar();
    let (bytes, media_type, digest) = reg
        .get_manifest(image, &image.manifest_reference(), Some(&auth))
        .await
        .map_err(fail)?;
    let (_, kind) = classify(&shown, Some(&media_type), &bytes).map_err(fail)?;
    if kind == ManifestKind::Index {
        return Err(fail(format!("{image} is a manifest list")));
    }
    let (config_desc, _) = parse_image_manifest(&shown, &bytes).map_err(fail)?;
    let config = reg
        .fetch_blob_bytes(image, &config_desc, MAX_CONFIG_SIZE, Some(&auth))
        .await
        .map_err(fail)?;
    let config: Value =
        serde_json::from_slice(&config).map_err(|e| fail(format!("the image config of {shown}: {e}")))?;
    let text = |k: &str| config[k].as_str().unwrap_or_default().to_string();
    let platform = PlatformSpec {
        architecture: text("architecture"),
        os: text("os"),
        os_version: text("os.version"),
        os_features: serde_json::from_value(config["os.features"].clone()).unwrap_or_default(),
        variant: text("variant"),
        features: Vec::new(),
    };
    let parsed: Value = serde_json::from_slice(&bytes)?;
    let is_docker = media_type == DOCKER_MANIFEST;
    Ok(ImageManifest {
        reference: image.to_string(),
        descriptor: StoredDescriptor {
            media_type,
            digest: digest.to_string(),
            size: bytes.len() as u64,
            platform: Some(platform),
            other: serde_json::Map::new(),
        },
        raw: Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
        schema2: is_docker.then(|| parsed.clone()),
        oci: (!is_docker).then_some(parsed),
    })
}

/// `manifest create LIST IMAGE...`.
pub async fn create(a: ManifestCreateArgs) -> Result<i32> {
    let list = normalize(&a.list)?;
    let store = Store::open()?;
    if store.get_list(&list)?.is_some() && !a.amend {
        return Err(fail("refusing to amend an existing manifest list with no --amend flag"));
    }
    let reg = registry(list.domain(), a.insecure);
    // Every image is looked up before any is stored: a failure leaves the store as it was.
    let mut entries = Vec::with_capacity(a.images.len());
    for name in &a.images {
        let image = normalize(name)?;
        // An image already in the list (amending) is kept as it was annotated.
        let entry = match store.get(&list, &image)? {
            Some(m) => m,
            None => fetch_image(&reg, &image).await?,
        };
        entries.push((image, entry));
    }
    for (image, entry) in &entries {
        store.save(&list, image, entry)?;
    }
    crate::write_out(&format!("Created manifest list {list}\n"));
    Ok(0)
}

/// Docker's valid `os/arch` pairs (Go's ports); the variant is not checked, as in docker.
fn valid_platform(os: &str, arch: &str) -> bool {
    const PAIRS: &[(&str, &[&str])] = &[
        ("aix", &["ppc64"]),
        ("android", &["386", "amd64", "arm", "arm64"]),
        ("darwin", &["386", "amd64", "arm", "arm64"]),
        ("dragonfly", &["amd64"]),
        ("freebsd", &["386", "amd64", "arm"]),
        ("illumos", &["amd64"]),
        ("ios", &["arm64"]),
        ("js", &["wasm"]),
        (
            "linux",
            &[
                "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64", "ppc64le",
                "riscv64", "s390x",
            ],
        ),
        ("netbsd", &["386", "amd64", "arm"]),
        ("openbsd", &["386", "amd64", "arm"]),
        ("plan9", &["386", "amd64"]),
        ("solaris", &["amd64"]),
        ("wasip1", &["wasm"]),
        ("windows", &["386", "amd64", "arm", "arm64"]),
    ];
    PAIRS.iter().any(|(o, arches)| *o == os && arches.contains(&arch))
}

/// `manifest annotate LIST IMAGE`: sets the platform of an image of a local list.
pub fn annotate(a: ManifestAnnotateArgs) -> Result<i32> {
    let list = normalize(&a.list)?;
    let image = normalize(&a.image)?;
    let store = Store::open()?;
    let mut m = store
        .get(&list, &image)?
        .ok_or_else(|| fail(format!("manifest for image {} does not exist in {}", a.image, a.list)))?;
    let p = m.descriptor.platform.get_or_insert_with(PlatformSpec::default);
    if let Some(os) = &a.os {
        p.os = os.clone();
    }
    if let Some(arch) = &a.arch {
        p.architecture = arch.clone();
    }
    if let Some(v) = a.variant {
        p.variant = v;
    }
    if let Some(v) = a.os_version {
        p.os_version = v;
    }
    if !a.os_features.is_empty() {
        let mut features: Vec<String> = Vec::new();
        for f in a.os_features.iter().flat_map(|f| f.split(',')) {
            if !f.is_empty() && !features.iter().any(|x| x == f) {
                features.push(f.to_string());
            }
        }
        p.os_features = features;
    }
    if !valid_platform(&p.os, &p.architecture) {
        // Docker names the values given, not the resulting platform.
        return Err(fail(format!(
            "manifest entry for image has unsupported os/arch combination: {}/{}",
            a.os.as_deref().unwrap_or_default(),
            a.arch.as_deref().unwrap_or_default()
        )));
    }
    store.save(&list, &image, &m)?;
    Ok(0)
}

/// The list document of `images` for `list`: one entry per image, each of `list`'s registry
/// and with an OS and architecture.
fn build_list(list: &Reference, images: &[ImageManifest]) -> Result<Vec<u8>> {
    let mut manifests = Vec::with_capacity(images.len());
    for m in images {
        let image = m.reference()?;
        if image.domain() != list.domain() {
            return Err(fail(format!(
                "cannot use source images from a different registry than the target image: {} != {}",
                image.domain(),
                list.domain()
            )));
        }
        let platform = m.descriptor.platform.clone().unwrap_or_default();
        if platform.os.is_empty() || platform.architecture.is_empty() {
            return Err(fail(format!(
                "manifest {} must have an OS and Architecture to be pushed to a registry",
                m.reference
            )));
        }
        manifests.push(ListEntry {
            media_type: m.descriptor.media_type.clone(),
            size: m.descriptor.size,
            digest: m.descriptor.digest.clone(),
            platform,
        });
    }
    let doc = ManifestList {
        schema_version: 2,
        media_type: LIST_MEDIA_TYPE,
        manifests,
    };
    Ok(json_indent(&serde_json::to_string(&doc)?, "   ").into_bytes())
}

/// Local lists for `inspect`: `Some` when handled here (a local list, or an image of one).
pub fn inspect_local(names: &[String], verbose: bool) -> Result<Option<String>> {
    let store = Store::open()?;
    match names {
        [list, image] => {
            let (list, image) = (normalize(list)?, normalize(image)?);
            let m = store
                .get(&list, &image)?
                .ok_or_else(|| fail(format!("No such manifest: {image}")))?;
            let out = if verbose {
                json_indent(&serde_json::to_string(&m)?, "\t")
            } else {
                json_indent(&String::from_utf8_lossy(&m.raw_bytes()?), "\t")
            };
            Ok(Some(out))
        }
        [name] => {
            let Ok(list) = Reference::parse(name) else {
                return Ok(None);
            };
            match store.get_list(&list)? {
                None => Ok(None),
                Some(images) if verbose => Ok(Some(json_indent(&serde_json::to_string(&images)?, "\t"))),
                Some(images) => Ok(Some(String::from_utf8_lossy(&build_list(&list, &images)?).into_owned())),
            }
        }
        _ => Err(fail(
            "\"docker manifest inspect\" requires at least 1 and at most 2 arguments",
        )),
    }
}

/// `manifest push LIST`: the images from other repositories first (blobs mounted, manifests by
/// digest), then the list under its tag; prints the list's digest.
pub async fn push(a: ManifestPushArgs) -> Result<i32> {
    let list = normalize(&a.list)?;
    let store = Store::open()?;
    let images = store
        .get_list(&list)?
        .ok_or_else(|| fail(format!("No such manifest: {list}")))?;
    if images.is_empty() {
        return Err(fail(format!("{list} not found")));
    }
    let body = build_list(&list, &images)?;
    let reg = registry(list.domain(), a.insecure);
    let auth = crate::credentials::auth_for(list.domain());
    for m in &images {
        let image = m.reference()?;
        if image.path() == list.path() {
            continue;
        }
        let raw = m.raw_bytes()?;
        let (config, layers) = parse_image_manifest(&image.familiar(), &raw).map_err(fail)?;
        for blob in std::iter::once(&config).chain(layers.iter()) {
            copy_blob(&reg, &image, &list, blob, &auth).await?;
        }
        let digest = reg
            .put_manifest(&list, &m.descriptor.digest, &m.descriptor.media_type, &raw, Some(&auth))
            .await
            .map_err(fail)?;
        let pushed = format!("{}/{}@{digest}", list.domain(), list.path());
        crate::write_out(&format!("Pushed ref {pushed} with digest: {digest}\n"));
    }
    let digest = reg
        .put_manifest(&list, &list.manifest_reference(), LIST_MEDIA_TYPE, &body, Some(&auth))
        .await
        .map_err(fail)?;
    crate::write_out(&format!("{digest}\n"));
    if a.purge {
        store.remove(&list)?;
    }
    Ok(0)
}

/// Makes `blob` of `from`'s repository present in `to`'s: already there, mounted, or (when the
/// registry declines the mount) fetched and pushed through the client.
async fn copy_blob(
    reg: &RegistryClient,
    from: &Reference,
    to: &Reference,
    blob: &Descriptor,
    auth: &berth_distribution::AuthConfig,
) -> Result<()> {
    use futures_util::TryStreamExt;
    if reg
        .blob_exists(to, &blob.digest, Some(auth))
        .await
        .map_err(fail)?
        .is_some()
    {
        return Ok(());
    }
    if reg
        .mount_blob(to, &blob.digest, from.path(), Some(auth))
        .await
        .map_err(fail)?
    {
        return Ok(());
    }
    let stream = reg
        .fetch_blob(from, blob, 0, Some(auth))
        .await
        .map_err(fail)?
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    reg.push_blob(to, blob, reader, &|_| {}, Some(auth)).await.map_err(|e| {
        fail(format!(
            "copying {} from {} to {}: {e}",
            blob.digest,
            from.familiar_repository(),
            to.familiar_repository()
        ))
    })
}

/// `manifest rm LIST...`: deletes local lists; every name is tried, the errors reported together.
pub fn rm(a: ManifestRmArgs) -> Result<i32> {
    let store = Store::open()?;
    let mut errors = Vec::new();
    for name in &a.lists {
        let list = match normalize(name) {
            Ok(l) => l,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        match store.get_list(&list) {
            Ok(Some(_)) => {
                if let Err(e) = store.remove(&list) {
                    errors.push(e.to_string());
                }
            }
            Ok(None) => errors.push(format!("No such manifest: {list}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(fail(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(reference: &str, platform: Option<PlatformSpec>) -> ImageManifest {
        ImageManifest {
            reference: reference.into(),
            descriptor: StoredDescriptor {
                media_type: DOCKER_MANIFEST.into(),
                digest: format!("sha256:{}", "a".repeat(64)),
                size: 527,
                platform,
                other: serde_json::Map::new(),
            },
            raw: None,
            schema2: None,
            oci: None,
        }
    }

    fn linux(arch: &str) -> Option<PlatformSpec> {
        Some(PlatformSpec {
            architecture: arch.into(),
            os: "linux".into(),
            ..PlatformSpec::default()
        })
    }

    #[test]
    fn store_names_are_dockers() {
        assert_eq!(
            filesafe(&normalize("127.0.0.1:5000/team/app").unwrap()),
            "127.0.0.1-5000_team_app-latest"
        );
        assert_eq!(
            filesafe(&normalize("busybox").unwrap()),
            "docker.io_library_busybox-latest"
        );
    }

    #[test]
    fn the_list_is_indented_as_gos_marshal_indent() {
        let list = normalize("127.0.0.1:5000/app:multi").unwrap();
        let body = build_list(&list, &[entry("127.0.0.1:5000/app:amd64", linux("amd64"))]).unwrap();
        let want = format!(
            "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{LIST_MEDIA_TYPE}\",\n   \"manifests\": [\n      {{\n         \
             \"mediaType\": \"{DOCKER_MANIFEST}\",\n         \"size\": 527,\n         \"digest\": \"sha256:{}\",\n         \
             \"platform\": {{\n            \"architecture\": \"amd64\",\n            \"os\": \"linux\"\n         }}\n      }}\n   ]\n}}",
            "a".repeat(64)
        );
        assert_eq!(String::from_utf8(body).unwrap(), want);
    }

    #[test]
    fn a_list_needs_one_registry_and_platforms() {
        let list = normalize("127.0.0.1:5000/app:multi").unwrap();
        let e = build_list(&list, &[entry("127.0.0.1:5001/app:x", linux("amd64"))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot use source images from a different registry than the target image: 127.0.0.1:5001 != 127.0.0.1:5000"
        );
        let e = build_list(&list, &[entry("127.0.0.1:5000/app:x", None)]).unwrap_err();
        assert!(e.to_string().contains("must have an OS and Architecture"), "{e}");
    }

    #[test]
    fn platforms_are_checked_as_docker_checks_them() {
        assert!(valid_platform("linux", "arm64"));
        assert!(valid_platform("windows", "amd64"));
        assert!(!valid_platform("linux", "amd65"));
        assert!(!valid_platform("plan9", "arm64"));
    }

    #[test]
    fn entries_read_back_with_unknown_descriptor_members_kept() {
        let text = r#"{"Ref":"docker.io/library/a:latest","Descriptor":{"mediaType":"m","digest":"sha256:x","size":1,"annotations":{"k":"v"},"platform":{"architecture":"arm","os":"linux","variant":"v7"}},"Raw":"e30="}"#;
        let m: ImageManifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.raw_bytes().unwrap(), b"{}");
        assert_eq!(m.descriptor.platform.as_ref().unwrap().variant, "v7");
        let back = serde_json::to_string(&m).unwrap();
        assert!(back.contains(r#""annotations":{"k":"v"}"#), "{back}");
    }
}
