//! `docker load`: finding the images an archive holds (Docker and OCI layouts) and importing them.

use super::*;

/// Resolves `name` (from the archive's metadata) to a regular file inside `root`, following symlinks
/// only within `root` (legacy `docker save` links duplicate layers); anything escaping is refused.
fn resolve_in(root: &Path, name: &str, what: &str) -> Result<PathBuf> {
    let mut comps =
        berth_archive::clean_path(name.as_bytes()).map_err(|r| bad(format!("invalid path {name:?} in {what}: {r}")))?;
    let mut hops = 0;
    'restart: loop {
        let mut cur = root.to_path_buf();
        for (i, c) in comps.iter().enumerate() {
            let next = cur.join(c);
            let md = std::fs::symlink_metadata(&next)
                .map_err(|_| bad(format!("{what} references missing file {name:?}")))?;
            if md.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return Err(bad(format!("too many symlinks resolving {name:?} in {what}")));
                }
                let target = std::fs::read_link(&next).map_err(io_err("read link", &next))?;
                let t = target.as_os_str().as_encoded_bytes();
                if t.first() == Some(&b'/') {
                    return Err(bad(format!("{name:?} in {what} is a symlink to an absolute path")));
                }
                let mut joined: Vec<u8> = Vec::new();
                for p in &comps[..i] {
                    joined.extend_from_slice(p.as_encoded_bytes());
                    joined.push(b'/');
                }
                joined.extend_from_slice(t);
                for p in &comps[i + 1..] {
                    joined.push(b'/');
                    joined.extend_from_slice(p.as_encoded_bytes());
                }
                comps = berth_archive::clean_path(&joined)
                    .map_err(|r| bad(format!("{name:?} in {what} resolves outside the archive: {r}")))?;
                continue 'restart;
            }
            if i + 1 < comps.len() && !md.is_dir() {
                return Err(bad(format!("{what} references missing file {name:?}")));
            }
            if i + 1 == comps.len() && !md.is_file() {
                return Err(bad(format!("{name:?} in {what} is not a regular file")));
            }
            cur = next;
        }
        if comps.is_empty() {
            return Err(bad(format!("invalid path {name:?} in {what}")));
        }
        return Ok(cur);
    }
}

fn read_json_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    let md = std::fs::metadata(path).map_err(io_err("stat", path))?;
    if md.len() > MAX_JSON {
        return Err(bad(format!("{what} is too large ({} bytes)", md.len())));
    }
    std::fs::read(path).map_err(io_err("read", path))
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("malformed JSON in {what}: {e}")))
}

/// `blobs/sha256/<hex>` names carry their digest: Docker 25+ and OCI layouts are verified against it.
fn digest_from_blob_path(name: &str) -> Option<Digest> {
    let comps = berth_archive::clean_path(name.as_bytes()).ok()?;
    match comps.as_slice() {
        [b, alg, hex] if b == "blobs" => format!("{}:{}", alg.to_string_lossy(), hex.to_string_lossy())
            .parse()
            .ok(),
        _ => None,
    }
}

fn blob_path(root: &Path, d: &Digest, what: &str) -> Result<PathBuf> {
    if d.algorithm() != "sha256" {
        return Err(bad(format!("{what}: unsupported digest algorithm in {d}")));
    }
    resolve_in(root, &format!("blobs/{}/{}", d.algorithm(), d.hex()), what)
}

/// Reads a blob of an OCI layout, verifying digest and size.
fn read_blob(root: &Path, d: &Descriptor, what: &str) -> Result<Vec<u8>> {
    let p = blob_path(root, &d.digest, what)?;
    let bytes = read_json_file(&p, what)?;
    let got = Digest::sha256(&bytes);
    if got != d.digest {
        return Err(StoreError::DigestMismatch {
            what: what.into(),
            expected: d.digest.clone(),
            actual: got,
        });
    }
    if d.size >= 0 && d.size as u64 != bytes.len() as u64 {
        return Err(bad(format!(
            "{what}: descriptor size {} but blob has {} bytes",
            d.size,
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn docker_candidates(root: &Path, manifest: &Path) -> Result<Vec<Candidate>> {
    let entries: Vec<DockerManifestEntry> = parse_json(&read_json_file(manifest, "manifest.json")?, "manifest.json")?;
    let mut out = Vec::new();
    for e in entries {
        let config = resolve_in(root, &e.config, "manifest.json")?;
        // Legacy configs are named `<id>.json`, newer ones `blobs/sha256/<id>`: both name the digest.
        let config_digest = digest_from_blob_path(&e.config).or_else(|| {
            let base = e.config.rsplit('/').next().unwrap_or_default();
            base.strip_suffix(".json").and_then(|h| Digest::from_sha256_hex(h).ok())
        });
        let mut layers = Vec::new();
        for l in &e.layers {
            layers.push((resolve_in(root, l, "manifest.json")?, digest_from_blob_path(l), None));
        }
        let mut tags = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            let r = Reference::parse(&t).map_err(|err| bad(format!("invalid tag {t:?} in manifest.json: {err}")))?;
            if r.digest().is_some() {
                return Err(bad(format!(
                    "invalid tag {t:?} in manifest.json: digest references cannot be tags"
                )));
            }
            tags.push(r);
        }
        out.push(Candidate {
            config,
            config_digest,
            layers,
            tags,
        });
    }
    Ok(out)
}

/// The image name an index entry carries: containerd's annotation, or the OCI ref name when it is a full
/// reference (a bare `latest` names no repository).
fn oci_tag(d: &Descriptor) -> Option<Reference> {
    let a = d.annotations.as_ref()?;
    if let Some(n) = a.get(ANNOTATION_CONTAINERD_NAME) {
        if let Ok(r) = Reference::parse(n) {
            return Some(r);
        }
    }
    let n = a.get(ANNOTATION_REF_NAME)?;
    if n.contains('/') || n.contains(':') {
        return Reference::parse(n).ok().filter(|r| r.tag().is_some());
    }
    None
}

fn oci_manifest_for(root: &Path, d: &Descriptor, depth: usize) -> Result<Option<(Manifest, Digest)>> {
    if depth > 4 {
        return Err(bad("index.json: image indexes nested too deeply"));
    }
    let what = format!("manifest {}", d.digest);
    let bytes = read_blob(root, d, &what)?;
    let v: Value = parse_json(&bytes, &what)?;
    let is_index = d.media_type == MEDIA_OCI_INDEX
        || d.media_type == MEDIA_DOCKER_LIST
        || (v.get("manifests").is_some() && v.get("config").is_none());
    if !is_index {
        let m: Manifest = parse_json(&bytes, &what)?;
        return Ok(Some((m, d.digest.clone())));
    }
    let idx: Index = parse_json(&bytes, &what)?;
    // The host's platform, else the only entry there is.
    let arch = host_architecture();
    let pick = idx
        .manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .or_else(|| {
            if idx.manifests.len() == 1 {
                idx.manifests.first()
            } else {
                None
            }
        });
    match pick {
        Some(m) => oci_manifest_for(root, m, depth + 1),
        None => Ok(None),
    }
}

fn oci_candidates(root: &Path, index: &Path) -> Result<Vec<Candidate>> {
    let idx: Index = parse_json(&read_json_file(index, "index.json")?, "index.json")?;
    // Several index entries (one per tag) may name the same manifest: merge their tags.
    let mut by_manifest: BTreeMap<Digest, Candidate> = BTreeMap::new();
    let mut order = Vec::new();
    for d in &idx.manifests {
        let Some((m, mdigest)) = oci_manifest_for(root, d, 0)? else {
            return Err(bad(format!(
                "index.json: no manifest for linux/{} in {}",
                host_architecture(),
                d.digest
            )));
        };
        let tag = oci_tag(d);
        if let Some(c) = by_manifest.get_mut(&mdigest) {
            c.tags.extend(tag);
            continue;
        }
        let what = format!("manifest {mdigest}");
        let config = blob_path(root, &m.config.digest, &what)?;
        let mut layers = Vec::new();
        for l in &m.layers {
            let p = blob_path(root, &l.digest, &what)?;
            let len = std::fs::metadata(&p).map_err(io_err("stat", &p))?.len();
            if l.size >= 0 && l.size as u64 != len {
                return Err(bad(format!(
                    "{what}: layer {} has size {len}, descriptor says {}",
                    l.digest, l.size
                )));
            }
            layers.push((p, Some(l.digest.clone()), Some(l.media_type.clone())));
        }
        order.push(mdigest.clone());
        by_manifest.insert(
            mdigest,
            Candidate {
                config,
                config_digest: Some(m.config.digest.clone()),
                layers,
                tags: tag.into_iter().collect(),
            },
        );
    }
    Ok(order.into_iter().filter_map(|d| by_manifest.remove(&d)).collect())
}

fn sniff_media_type(path: &Path) -> Result<&'static str> {
    let mut head = [0u8; 2];
    let mut f = std::fs::File::open(path).map_err(io_err("open", path))?;
    let n = f.read(&mut head).map_err(io_err("read", path))?;
    Ok(if n == 2 && head == [0x1f, 0x8b] {
        crate::MEDIA_DOCKER_LAYER_GZIP
    } else {
        MEDIA_DOCKER_LAYER
    })
}

impl ImageStore {
    /// `docker load`. See the module docs for the formats. Progress and result lines go to `on_progress`.
    pub fn load(&self, tar: impl Read + Send, on_progress: &mut dyn FnMut(&str)) -> Result<Vec<LoadedImage>> {
        let tmp = TempGuard(tmp_name(&self.root.join("tmp"), "load"));
        let archive_err = |source| StoreError::Archive {
            what: "invalid image archive".into(),
            source,
        };
        let reader = berth_archive::decompress(tar).map_err(archive_err)?;
        let opts = berth_archive::UnpackOptions {
            whiteouts: false,
            preserve_owners: false,
            id_map: None,
            no_overwrite_dir_non_dir: false,
            rebase: None,
            chown_to: None,
        };
        berth_archive::unpack(reader, &tmp.0, &opts).map_err(archive_err)?;
        let root = tmp.0.as_path();
        let candidates = if std::fs::symlink_metadata(root.join("manifest.json")).is_ok() {
            docker_candidates(root, &resolve_in(root, "manifest.json", "archive")?)?
        } else if std::fs::symlink_metadata(root.join("index.json")).is_ok() {
            oci_candidates(root, &resolve_in(root, "index.json", "archive")?)?
        } else {
            return Err(bad(
                "neither manifest.json nor index.json found (not a docker save or OCI layout tarball)",
            ));
        };
        if candidates.is_empty() {
            return Err(bad("no images found"));
        }
        let mut loaded = Vec::new();
        for c in candidates {
            let rec = self.load_candidate(&c, on_progress)?;
            let mut tags = Vec::new();
            for t in &c.tags {
                if let Some(old) = self.set_reference(t, &rec.id)? {
                    on_progress(&format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string",
                        t.familiar()
                    ));
                }
                tags.push(t.familiar());
            }
            let li = LoadedImage {
                id: rec.id.clone(),
                tags,
            };
            for m in li.messages() {
                on_progress(&m);
            }
            loaded.push(li);
        }
        Ok(loaded)
    }

    fn load_candidate(&self, c: &Candidate, on_progress: &mut dyn FnMut(&str)) -> Result<ImageRecord> {
        let config = read_json_file(&c.config, "image config")?;
        let id = Digest::sha256(&config);
        if let Some(want) = &c.config_digest {
            if want != &id {
                return Err(StoreError::DigestMismatch {
                    what: "image config".into(),
                    expected: want.clone(),
                    actual: id,
                });
            }
        }
        let mut layers = Vec::new();
        let mut new_blobs = Vec::new();
        // Hold the blobs this image needs so a concurrent failing load does not collect them.
        let mut leased = Vec::new();
        let res = self.load_layers(c, on_progress, &mut layers, &mut new_blobs, &mut leased);
        let res = res.and_then(|_| self.create_image(&config, &layers));
        self.unlease(&leased);
        if res.is_err() {
            let _ = self.collect_garbage(&[], &new_blobs, &[]);
        }
        res
    }

    fn load_layers(
        &self,
        c: &Candidate,
        on_progress: &mut dyn FnMut(&str),
        layers: &mut Vec<LayerBlob>,
        new_blobs: &mut Vec<Digest>,
        leased: &mut Vec<String>,
    ) -> Result<()> {
        for (path, digest, media) in &c.layers {
            if let Some(d) = digest {
                leased.push(format!("blob:{d}"));
                self.lease(&leased[leased.len() - 1..]);
            }
            let what = match digest {
                Some(d) => format!("layer {d}"),
                None => format!("layer {}", path.strip_prefix(&self.root).unwrap_or(path).display()),
            };
            let existed = digest.as_ref().is_some_and(|d| self.blobs.has(d));
            let (d, size) = self.blobs.put_file(path, digest.as_ref(), &what)?;
            if digest.is_none() {
                leased.push(format!("blob:{d}"));
                self.lease(&leased[leased.len() - 1..]);
            }
            if !existed {
                new_blobs.push(d.clone());
            }
            let media_type = match media {
                Some(m) if !m.is_empty() => m.clone(),
                _ => sniff_media_type(path)?.to_string(),
            };
            on_progress(&format!("Loading layer {}", berth_types::short_id(d.hex())));
            layers.push(LayerBlob {
                digest: d,
                media_type,
                size,
            });
        }
        Ok(())
    }
}
