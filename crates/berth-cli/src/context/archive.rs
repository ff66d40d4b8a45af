//! `context export` and `context import`: a context as the docker CLI archives it, a tar of
//! `meta.json` and `tls/<endpoint>/{ca,cert,key}.pem`, so an archive made by either CLI imports
//! into the other. An archive is untrusted input: only those members are taken, each bounded in
//! size, and nothing is stored unless the whole archive reads well.

use std::io::{Read, Write};

use anyhow::Result;

use super::store::{validate_name, ContextMeta, ContextStore, TlsData, DEFAULT_CONTEXT, DOCKER_ENDPOINT};
use super::{fail, source_meta, source_tls};
use crate::args::{ContextExportArgs, ContextImportArgs};
use crate::connect::ConnectOpts;

/// The most an archive may hold: contexts are a small JSON file and three PEM files.
const MAX_ARCHIVE: u64 = 10 << 20;
/// The most one member may hold.
const MAX_MEMBER: u64 = 1 << 20;

/// The archive of a context: `meta.json`, then its TLS material under `tls/docker/`.
fn archive_of(meta: &ContextMeta, tls: Option<&TlsData>) -> Result<Vec<u8>, std::io::Error> {
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, mode: u32, data: Option<&[u8]>| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(mode);
        h.set_mtime(0);
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                h.set_cksum();
                b.append_data(&mut h, name, d)
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_cksum();
                b.append_data(&mut h, name, std::io::empty())
            }
        }
    };
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    add(&mut b, "meta.json", 0o644, Some(&json))?;
    if let Some(t) = tls {
        add(&mut b, "tls", 0o700, None)?;
        add(&mut b, "tls/docker", 0o700, None)?;
        for (file, content) in [("ca.pem", &t.ca), ("cert.pem", &t.cert), ("key.pem", &t.key)] {
            if let Some(c) = content {
                add(&mut b, &format!("tls/docker/{file}"), 0o600, Some(c))?;
            }
        }
    }
    b.into_inner()
}

/// `context export CONTEXT [FILE|-]`.
pub fn export(copts: &ConnectOpts, s: &ContextStore, a: ContextExportArgs) -> Result<i32> {
    let meta = source_meta(copts, s, &a.name)?;
    let tls = source_tls(copts, s, &a.name)?;
    let data = archive_of(&meta, tls.as_ref()).map_err(fail)?;
    let file = a.file.unwrap_or_else(|| format!("{}.dockercontext", a.name));
    if file == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&data).and_then(|()| out.flush()).map_err(fail)?;
        return Ok(0);
    }
    let path = std::path::Path::new(&file);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| fail(format!("open {file}: {e}")))?;
    tmp.write_all(&data)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| fail(format!("write {file}: {e}")))?;
    tmp.persist(path)
        .map_err(|e| fail(format!("write {file}: {}", e.error)))?;
    eprintln!("Written file {file:?}");
    Ok(0)
}

/// What an archive holds, read whole before anything is stored.
#[derive(Debug, PartialEq)]
struct Imported {
    meta: ContextMeta,
    tls: Option<TlsData>,
}

/// Reads a context archive: `meta.json` and `tls/docker/{ca,cert,key}.pem` (directories skipped);
/// any other member, a path that climbs, a member or an archive too large is refused. A tar that
/// ends without its end-of-archive blocks (as the docker CLI writes them) is read to its end.
fn read_archive(data: &[u8]) -> Result<Imported, String> {
    if data.starts_with(b"PK\x03\x04") {
        return Err(
            "this is a zip archive: berth imports contexts from tar archives (docker context export writes one)".into(),
        );
    }
    // The docker CLI's archives stop right after the last member's data, without its padding or
    // the end-of-archive blocks: complete them (zeros past the end of a whole tar are ignored).
    let mut padded = data.to_vec();
    padded.resize(padded.len().div_ceil(512) * 512 + 1024, 0);
    let mut meta = None;
    let mut tls = TlsData::default();
    let mut has_tls = false;
    let mut ar = tar::Archive::new(&padded[..]);
    let entries = ar.entries().map_err(|e| format!("reading the archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading the archive: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("reading the archive: {e}"))?
            .to_string_lossy()
            .trim_end_matches('/')
            .trim_start_matches("./")
            .to_string();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if name == "tls" || name == "tls/docker" {
                continue;
            }
            return Err(format!("unexpected directory {name:?} in the context archive"));
        }
        if !kind.is_file() {
            return Err(format!(
                "unexpected member {name:?} in the context archive (not a file)"
            ));
        }
        if entry.size() > MAX_MEMBER {
            return Err(format!(
                "{name} in the context archive is larger than {MAX_MEMBER} bytes"
            ));
        }
        let mut content = Vec::new();
        (&mut entry)
            .take(MAX_MEMBER)
            .read_to_end(&mut content)
            .map_err(|e| format!("reading {name} from the archive: {e}"))?;
        let slot = match name.as_str() {
            "meta.json" => {
                let m: ContextMeta =
                    serde_json::from_slice(&content).map_err(|e| format!("meta.json of the archive: {e}"))?;
                meta = Some(m);
                continue;
            }
            "tls/docker/ca.pem" => &mut tls.ca,
            "tls/docker/cert.pem" => &mut tls.cert,
            "tls/docker/key.pem" => &mut tls.key,
            other => return Err(format!("unexpected file {other:?} in the context archive")),
        };
        *slot = Some(content);
        has_tls = true;
    }
    let meta = meta.ok_or("the archive has no meta.json: it is not a context archive")?;
    Ok(Imported {
        meta,
        tls: has_tls.then_some(tls),
    })
}

/// `context import CONTEXT FILE|-`.
pub fn import(s: &ContextStore, a: ContextImportArgs) -> Result<i32> {
    if a.name == DEFAULT_CONTEXT {
        return Err(fail(format!("{DEFAULT_CONTEXT:?} is a reserved context name")).into());
    }
    validate_name(&a.name)?;
    if s.exists(&a.name) {
        return Err(fail(format!("context {:?} already exists", a.name)).into());
    }
    let mut data = Vec::new();
    let read = if a.file == "-" {
        std::io::stdin().lock().take(MAX_ARCHIVE + 1).read_to_end(&mut data)
    } else {
        std::fs::File::open(&a.file).and_then(|f| f.take(MAX_ARCHIVE + 1).read_to_end(&mut data))
    };
    read.map_err(|e| fail(format!("open {}: {e}", a.file)))?;
    if data.len() as u64 > MAX_ARCHIVE {
        return Err(fail(format!("{}: a context archive is at most {MAX_ARCHIVE} bytes", a.file)).into());
    }
    let mut got = read_archive(&data).map_err(fail)?;
    got.meta.name = a.name.clone();
    s.save(&got.meta)?;
    if let Some(tls) = &got.tls {
        if let Err(e) = s.reset_endpoint_tls(&a.name, DOCKER_ENDPOINT, Some(tls)) {
            let _ = s.remove(&a.name);
            return Err(e.into());
        }
    }
    outln!("{}", a.name);
    eprintln!("Successfully imported context {:?}", a.name);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::super::store::DockerEndpoint;
    use super::*;

    fn meta() -> ContextMeta {
        ContextMeta::new(
            "x",
            "d",
            &DockerEndpoint {
                host: "tcp://127.0.0.1:2376".into(),
                skip_tls_verify: false,
            },
        )
    }

    fn tar_with(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            // The name written raw: the builder itself refuses `..`.
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn archives_round_trip() {
        let tls = TlsData {
            ca: Some(b"CA".to_vec()),
            cert: None,
            key: Some(b"KEY".to_vec()),
        };
        let data = archive_of(&meta(), Some(&tls)).unwrap();
        let got = read_archive(&data).unwrap();
        assert_eq!(got.meta, meta());
        assert_eq!(got.tls, Some(tls));
        let got = read_archive(&archive_of(&meta(), None).unwrap()).unwrap();
        assert_eq!(got.tls, None);
        // Without the last member's padding and the end-of-archive blocks, as docker writes them.
        let data = archive_of(&meta(), None).unwrap();
        let json_len = serde_json::to_vec(&meta()).unwrap().len();
        let cut = &data[..512 + json_len];
        assert_eq!(read_archive(cut).unwrap().meta, meta());
    }

    #[test]
    fn hostile_archives_are_refused() {
        let m = serde_json::to_vec(&meta()).unwrap();
        for (members, want) in [
            (
                vec![("meta.json", &m[..]), ("tls/docker/../../evil", b"x" as &[u8])],
                "unexpected file",
            ),
            (vec![("meta.json", &m[..]), ("other.txt", b"x")], "unexpected file"),
            (vec![("tls/docker/ca.pem", b"x" as &[u8])], "no meta.json"),
            (vec![("meta.json", b"{not json" as &[u8])], "meta.json of the archive"),
        ] {
            let e = read_archive(&tar_with(&members)).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let big = vec![b'a'; (MAX_MEMBER + 1) as usize];
        let e = read_archive(&tar_with(&[("meta.json", &big[..])])).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        assert!(read_archive(b"PK\x03\x04rest").unwrap_err().contains("zip"));
        assert!(read_archive(b"garbage that is not a tar").is_err());
    }
}
