//! Docker's context store, byte for byte the docker CLI's layout so both CLIs see the same
//! contexts (docker/cli `cli/context/store`):
//!
//! ```text
//! <configdir>/contexts/meta/<sha256 hex of the name>/meta.json
//!     {"Name":"x","Metadata":{"Description":"..."},"Endpoints":{"docker":{"Host":"tcp://…","SkipTLSVerify":false}}}
//! <configdir>/contexts/tls/<sha256 hex of the name>/docker/{ca.pem,cert.pem,key.pem}
//! ```
//!
//! Keys this code does not know (other endpoints, extra metadata) are kept as they were. Files are
//! written to a temp file, fsynced and renamed into place; a TLS directory is replaced as a whole.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The built-in context: the `-H`/`DOCKER_HOST`/default-socket endpoint, never on disk.
pub const DEFAULT_CONTEXT: &str = "default";
/// The endpoint key of the Docker Engine API in a context.
pub const DOCKER_ENDPOINT: &str = "docker";
/// Docker's pattern for context names (`store.ValidateContextName`).
pub const NAME_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$";

/// The TLS files of an endpoint, by the names Docker gives them.
const TLS_FILES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];

/// Why a context could not be named, read or written. Messages are the docker CLI's.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// An empty name.
    #[error("context name cannot be empty")]
    EmptyName,
    /// `default` names the built-in context.
    #[error("\"default\" is a reserved context name")]
    Reserved,
    /// A name that does not match [`NAME_PATTERN`].
    #[error("context name {0:?} is invalid, names are validated against regexp {NAME_PATTERN:?}")]
    InvalidName(String),
    /// No such context on disk (as docker words it: the file it failed to open).
    #[error("context {name:?}: context not found: open {}: no such file or directory", path.display())]
    NotFound {
        /// The context.
        name: String,
        /// Its meta.json.
        path: PathBuf,
    },
    /// `create` of a name that exists.
    #[error("context {0:?} already exists")]
    Exists(String),
    /// `rm` (without `-f`) of a name that does not exist.
    #[error("context {0:?} does not exist")]
    DoesNotExist(String),
    /// A context without a `docker` endpoint.
    #[error("cannot find docker endpoint in context")]
    NoDockerEndpoint,
    /// A meta.json that is not a context's metadata.
    #[error("context {name:?}: invalid {}: {reason}", path.display())]
    Invalid {
        /// The context (or its directory, when the name is unknown).
        name: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the store failed.
    #[error("{op} {}: {}", path.display(), go_io_error(source))]
    Io {
        /// What was being done (`reading`, `writing`, `removing`, `open`).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// An I/O error worded as Go's `os` package words it (`no such file or directory`), which is what
/// users of the docker CLI see in the same messages.
pub fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => {
            let s = e.to_string();
            // "Text (os error N)" → "text".
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => s,
            }
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ContextError + 'a {
    move |source| ContextError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a name the way `docker context create` does: not empty, not `default`, and matching
/// [`NAME_PATTERN`] (so at least two characters).
pub fn validate_name(name: &str) -> Result<(), ContextError> {
    if name.is_empty() {
        return Err(ContextError::EmptyName);
    }
    if name == DEFAULT_CONTEXT {
        return Err(ContextError::Reserved);
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    let rest_ok = !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(ContextError::InvalidName(name.to_string()))
    }
}

/// A context's directory name: the hex SHA-256 of its name (docker's `contextdirOf`).
pub fn context_id(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// A context's `meta.json`: its name, free-form metadata (Docker's `Description`) and endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextMeta {
    /// The context's name.
    #[serde(rename = "Name")]
    pub name: String,
    /// `{"Description": "..."}` and whatever else a client put there.
    #[serde(rename = "Metadata", default)]
    pub metadata: Value,
    /// Endpoints by kind (`docker`; others are kept untouched).
    #[serde(rename = "Endpoints", default)]
    pub endpoints: Map<String, Value>,
}

/// The `docker` endpoint of a context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEndpoint {
    /// The daemon address (`tcp://…`, `unix://…`); empty means the client's default.
    pub host: String,
    /// Use TLS without checking the daemon's certificate.
    pub skip_tls_verify: bool,
}

impl ContextMeta {
    /// A new context's metadata.
    pub fn new(name: &str, description: &str, endpoint: &DockerEndpoint) -> ContextMeta {
        let mut m = ContextMeta {
            name: name.to_string(),
            metadata: Value::Object(Map::new()),
            endpoints: Map::new(),
        };
        m.set_description(description);
        m.set_docker_endpoint(endpoint);
        m
    }

    /// `Metadata.Description`, or empty.
    pub fn description(&self) -> &str {
        self.metadata.get("Description").and_then(Value::as_str).unwrap_or("")
    }

    /// Sets `Metadata.Description`; empty removes it (Docker's `omitempty`).
    pub fn set_description(&mut self, description: &str) {
        if !self.metadata.is_object() {
            self.metadata = Value::Object(Map::new());
        }
        if let Value::Object(m) = &mut self.metadata {
            if description.is_empty() {
                m.remove("Description");
            } else {
                m.insert("Description".into(), Value::String(description.into()));
            }
        }
    }

    /// The `docker` endpoint.
    pub fn docker_endpoint(&self) -> Result<DockerEndpoint, ContextError> {
        let ep = self
            .endpoints
            .get(DOCKER_ENDPOINT)
            .and_then(Value::as_object)
            .ok_or(ContextError::NoDockerEndpoint)?;
        Ok(DockerEndpoint {
            host: ep.get("Host").and_then(Value::as_str).unwrap_or("").to_string(),
            skip_tls_verify: ep.get("SkipTLSVerify").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// Replaces the `docker` endpoint (`Host` left out when empty, as Docker writes it).
    pub fn set_docker_endpoint(&mut self, ep: &DockerEndpoint) {
        let mut m = Map::new();
        if !ep.host.is_empty() {
            m.insert("Host".into(), Value::String(ep.host.clone()));
        }
        m.insert("SkipTLSVerify".into(), Value::Bool(ep.skip_tls_verify));
        self.endpoints.insert(DOCKER_ENDPOINT.into(), Value::Object(m));
    }
}

/// The TLS material of one endpoint, as file contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsData {
    /// `ca.pem`.
    pub ca: Option<Vec<u8>>,
    /// `cert.pem`.
    pub cert: Option<Vec<u8>>,
    /// `key.pem`.
    pub key: Option<Vec<u8>>,
}

impl TlsData {
    /// Reads the files named (docker's `TLSDataFromFiles`); `None` when no file is named.
    pub fn from_files(
        ca: Option<&str>,
        cert: Option<&str>,
        key: Option<&str>,
    ) -> Result<Option<TlsData>, ContextError> {
        let read = |p: Option<&str>| -> Result<Option<Vec<u8>>, ContextError> {
            match p.filter(|p| !p.is_empty()) {
                Some(p) => std::fs::read(p).map(Some).map_err(io_err("open", Path::new(p))),
                None => Ok(None),
            }
        };
        let d = TlsData {
            ca: read(ca)?,
            cert: read(cert)?,
            key: read(key)?,
        };
        Ok((d.ca.is_some() || d.cert.is_some() || d.key.is_some()).then_some(d))
    }

    fn files(&self) -> [(&'static str, Option<&Vec<u8>>); 3] {
        [
            (TLS_FILES[0], self.ca.as_ref()),
            (TLS_FILES[1], self.cert.as_ref()),
            (TLS_FILES[2], self.key.as_ref()),
        ]
    }
}

/// Where a context's files are (`docker context inspect`'s `Storage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    /// The directory of meta.json.
    pub metadata_path: PathBuf,
    /// The directory of the TLS material.
    pub tls_path: PathBuf,
}

/// The contexts under a client config directory.
#[derive(Debug, Clone)]
pub struct ContextStore {
    root: PathBuf,
}

impl ContextStore {
    /// The store of the client config directory `config_dir` (`~/.docker`).
    pub fn new(config_dir: &Path) -> ContextStore {
        ContextStore {
            root: config_dir.join("contexts"),
        }
    }

    fn meta_root(&self) -> PathBuf {
        self.root.join("meta")
    }

    fn tls_root(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// Where `name`'s files are.
    pub fn storage(&self, name: &str) -> StorageInfo {
        let id = context_id(name);
        StorageInfo {
            metadata_path: self.meta_root().join(&id),
            tls_path: self.tls_root().join(&id),
        }
    }

    /// The directory of `name`'s TLS files for `endpoint`.
    pub fn endpoint_tls_dir(&self, name: &str, endpoint: &str) -> PathBuf {
        self.storage(name).tls_path.join(endpoint)
    }

    /// Whether `name` has a metadata directory (what `docker context rm` checks).
    pub fn exists(&self, name: &str) -> bool {
        self.storage(name).metadata_path.exists()
    }

    /// Reads `name`'s metadata.
    pub fn get(&self, name: &str) -> Result<ContextMeta, ContextError> {
        let path = self.storage(name).metadata_path.join("meta.json");
        match read_meta(&path)? {
            Some(m) => Ok(m),
            None => Err(ContextError::NotFound {
                name: name.to_string(),
                path,
            }),
        }
    }

    /// Every context on disk (in directory order; the caller sorts).
    pub fn list(&self) -> Result<Vec<ContextMeta>, ContextError> {
        let root = self.meta_root();
        let rd = match std::fs::read_dir(&root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &root)(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io_err("reading", &root))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Some(m) = read_meta(&entry.path().join("meta.json"))? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Writes `meta` (creating or replacing the context's meta.json).
    pub fn save(&self, meta: &ContextMeta) -> Result<(), ContextError> {
        let dir = self.storage(&meta.name).metadata_path;
        create_dir(&dir, 0o755)?;
        let path = dir.join("meta.json");
        let data = serde_json::to_vec(meta).map_err(|e| ContextError::Invalid {
            name: meta.name.clone(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &data, 0o644)
    }

    /// The TLS files each endpoint of `name` has (`docker context inspect`'s `TLSMaterial`).
    pub fn tls_files(&self, name: &str) -> Result<BTreeMap<String, Vec<String>>, ContextError> {
        let dir = self.storage(name).tls_path;
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io_err("reading", &dir)(e)),
        };
        let mut out = BTreeMap::new();
        for entry in rd {
            let entry = entry.map_err(io_err("reading", &dir))?;
            let ep = entry.file_name().to_string_lossy().into_owned();
            if ep.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let mut files: Vec<String> = std::fs::read_dir(entry.path())
                .map_err(io_err("reading", &entry.path()))?
                .flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .filter(|f| !f.starts_with('.'))
                .collect();
            files.sort();
            if !files.is_empty() {
                out.insert(ep, files);
            }
        }
        Ok(out)
    }

    /// The TLS material of `name`'s `endpoint`, as file contents (for copying a context).
    pub fn tls_data(&self, name: &str, endpoint: &str) -> Result<Option<TlsData>, ContextError> {
        let dir = self.endpoint_tls_dir(name, endpoint);
        let read = |f: &str| -> Result<Option<Vec<u8>>, ContextError> {
            let p = dir.join(f);
            match std::fs::read(&p) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err("open", &p)(e)),
            }
        };
        let d = TlsData {
            ca: read(TLS_FILES[0])?,
            cert: read(TLS_FILES[1])?,
            key: read(TLS_FILES[2])?,
        };
        Ok((d.ca.is_some() || d.cert.is_some() || d.key.is_some()).then_some(d))
    }

    /// Replaces the TLS material of `name`'s `endpoint` with `data` (none: removes it). The new
    /// files are written beside the old directory and swapped in with renames.
    pub fn reset_endpoint_tls(&self, name: &str, endpoint: &str, data: Option<&TlsData>) -> Result<(), ContextError> {
        let ctx_dir = self.storage(name).tls_path;
        let dir = ctx_dir.join(endpoint);
        let Some(data) = data else {
            remove_all(&dir)?;
            // Leave no empty context directory behind (docker does not create one).
            let _ = std::fs::remove_dir(&ctx_dir);
            return Ok(());
        };
        create_dir(&ctx_dir, 0o700)?;
        let tmp = ctx_dir.join(format!(".{endpoint}.new-{}", unique()));
        create_dir(&tmp, 0o700)?;
        let written = (|| {
            for (file, content) in data.files() {
                if let Some(c) = content {
                    write_atomic(&tmp.join(file), c, 0o600)?;
                }
            }
            let old = ctx_dir.join(format!(".{endpoint}.old-{}", unique()));
            let had_old = match std::fs::rename(&dir, &old) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_err("replacing", &dir)(e)),
            };
            std::fs::rename(&tmp, &dir).map_err(io_err("replacing", &dir))?;
            if had_old {
                remove_all(&old)?;
            }
            sync_dir(&ctx_dir);
            Ok(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        written
    }

    /// Removes all of `name`'s TLS material.
    pub fn remove_tls(&self, name: &str) -> Result<(), ContextError> {
        remove_all(&self.storage(name).tls_path)
    }

    /// Removes `name`'s metadata and TLS material; a context that does not exist is no error.
    pub fn remove(&self, name: &str) -> Result<(), ContextError> {
        let s = self.storage(name);
        remove_all(&s.metadata_path)?;
        remove_all(&s.tls_path)
    }
}

/// Reads a meta.json; `None` when it does not exist.
fn read_meta(path: &Path) -> Result<Option<ContextMeta>, ContextError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let invalid = |reason: String| ContextError::Invalid {
        name: path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_path_buf(),
        reason,
    };
    let meta: ContextMeta = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(meta))
}

/// A suffix no other writer in this process or another uses at the same time.
fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), ContextError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io_err("creating", dir))
}

fn remove_all(p: &Path) -> Result<(), ContextError> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", p)(e)),
    }
}

fn sync_dir(dir: &Path) {
    // Best effort: the rename is what makes the change atomic; this makes it durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `path` through a temp file in the same directory, fsynced, then renamed over it.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), ContextError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", unique()));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    match res {
        Ok(()) => {
            sync_dir(dir);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(io_err("writing", path)(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_docker_validates_them() {
        for ok in ["ab", "a1", "my-ctx", "x.y_z+w", "0-"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for (bad, msg) in [
            ("", "context name cannot be empty"),
            ("default", "\"default\" is a reserved context name"),
            (
                "a b",
                "context name \"a b\" is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"",
            ),
        ] {
            assert_eq!(validate_name(bad).unwrap_err().to_string(), msg);
        }
        for bad in ["a", "-ab", ".x", "a/b", "ä1", "a:b"] {
            assert!(matches!(validate_name(bad), Err(ContextError::InvalidName(_))), "{bad}");
        }
    }

    #[test]
    fn ids_are_docker_s() {
        // Directory names the docker CLI 28 created for these names.
        assert_eq!(
            context_id("a1"),
            "f55ff16f66f43360266b95db6f8fec01d76031054306ae4a4b380598f6cfd114"
        );
        assert_eq!(
            context_id("a2"),
            "2c3a4249d77070058649dbd822dcaf7957586fce428cfb2ca88b94741eda8b07"
        );
    }

    #[test]
    fn meta_round_trip_keeps_unknown_keys() {
        let src = r#"{"Name":"k","Metadata":{"Description":"d","Extra":1},"Endpoints":{"docker":{"Host":"tcp://h:1","SkipTLSVerify":true},"kubernetes":{"x":2}}}"#;
        let mut m: ContextMeta = serde_json::from_str(src).unwrap();
        assert_eq!(m.description(), "d");
        assert_eq!(
            m.docker_endpoint().unwrap(),
            DockerEndpoint {
                host: "tcp://h:1".into(),
                skip_tls_verify: true
            }
        );
        m.set_description("");
        m.set_docker_endpoint(&DockerEndpoint::default());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"Name":"k","Metadata":{"Extra":1},"Endpoints":{"docker":{"SkipTLSVerify":false},"kubernetes":{"x":2}}}"#
        );
        // Docker's own layout for a new context, field order included.
        let n = ContextMeta::new(
            "a1",
            "d 1",
            &DockerEndpoint {
                host: "tcp://1.2.3.4:2375".into(),
                skip_tls_verify: false,
            },
        );
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"Name":"a1","Metadata":{"Description":"d 1"},"Endpoints":{"docker":{"Host":"tcp://1.2.3.4:2375","SkipTLSVerify":false}}}"#
        );
        let none: ContextMeta = serde_json::from_str(r#"{"Name":"n","Metadata":null,"Endpoints":{}}"#).unwrap();
        assert_eq!(none.description(), "");
        assert!(matches!(none.docker_endpoint(), Err(ContextError::NoDockerEndpoint)));
    }

    #[test]
    fn store_create_list_tls_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContextStore::new(dir.path());
        assert!(s.list().unwrap().is_empty());
        let err = s.get("nope").unwrap_err().to_string();
        assert!(
            err.starts_with("context \"nope\": context not found: open ")
                && err.ends_with("/meta.json: no such file or directory"),
            "{err}"
        );
        let m = ContextMeta::new("c1", "", &DockerEndpoint::default());
        s.save(&m).unwrap();
        assert_eq!(s.get("c1").unwrap(), m);
        assert!(s.exists("c1"));
        let st = s.storage("c1");
        assert_eq!(
            st.metadata_path,
            dir.path().join("contexts/meta").join(context_id("c1"))
        );
        assert_eq!(st.tls_path, dir.path().join("contexts/tls").join(context_id("c1")));

        let tls = TlsData {
            ca: Some(b"CA".to_vec()),
            cert: None,
            key: Some(b"KEY".to_vec()),
        };
        s.reset_endpoint_tls("c1", DOCKER_ENDPOINT, Some(&tls)).unwrap();
        let files = s.tls_files("c1").unwrap();
        assert_eq!(files["docker"], vec!["ca.pem", "key.pem"]);
        assert_eq!(s.tls_data("c1", DOCKER_ENDPOINT).unwrap(), Some(tls));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(st.tls_path.join("docker/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Replacing swaps the whole directory: no file of the old material survives.
        let only_ca = TlsData {
            ca: Some(b"CA2".to_vec()),
            ..TlsData::default()
        };
        s.reset_endpoint_tls("c1", DOCKER_ENDPOINT, Some(&only_ca)).unwrap();
        assert_eq!(s.tls_files("c1").unwrap()["docker"], vec!["ca.pem"]);
        let leftovers: Vec<_> = std::fs::read_dir(&st.tls_path).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "only the endpoint directory is left");
        s.reset_endpoint_tls("c1", DOCKER_ENDPOINT, None).unwrap();
        assert!(s.tls_files("c1").unwrap().is_empty());

        s.save(&ContextMeta::new("c2", "two", &DockerEndpoint::default()))
            .unwrap();
        let mut names: Vec<String> = s.list().unwrap().into_iter().map(|m| m.name).collect();
        names.sort();
        assert_eq!(names, ["c1", "c2"]);
        s.remove("c1").unwrap();
        s.remove("c1").unwrap();
        assert!(!s.exists("c1"));
        assert_eq!(s.list().unwrap().len(), 1);
        // No temp files are left behind by the writes.
        let meta_dir = s.storage("c2").metadata_path;
        let entries: Vec<String> = std::fs::read_dir(meta_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries, ["meta.json"]);
    }

    #[test]
    fn tls_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        std::fs::write(&ca, "x").unwrap();
        assert_eq!(TlsData::from_files(None, None, Some("")).unwrap(), None);
        let d = TlsData::from_files(ca.to_str(), None, None).unwrap().unwrap();
        assert_eq!(d.ca.as_deref(), Some(&b"x"[..]));
        let e = TlsData::from_files(Some("/nonexistent/ca.pem"), None, None).unwrap_err();
        assert_eq!(e.to_string(), "open /nonexistent/ca.pem: no such file or directory");
    }
}
