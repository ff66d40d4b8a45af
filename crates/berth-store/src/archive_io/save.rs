//! `docker save`: an OCI layout that also carries Docker's `manifest.json` and `repositories`.

use super::*;

impl ImageStore {
    /// `docker save`: the named images (references or IDs) as one tarball Docker 25+ and older can load.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        // Image ID -> tags to write for it, in first-named order.
        let mut images: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
        let mut add = |rec: ImageRecord, tags: Vec<Reference>| match images.iter_mut().find(|(r, _)| r.id == rec.id) {
            Some((_, t)) => {
                for x in tags {
                    if !t.contains(&x) {
                        t.push(x);
                    }
                }
            }
            None => images.push((rec, tags)),
        };
        for name in names {
            // `docker save busybox` (no tag): every tag of the repository, as Docker's exporter does.
            if let Ok(named) = Reference::parse_name_only(name) {
                if named.tag().is_none() && named.digest().is_none() {
                    let repo = named.repository();
                    let mut found = false;
                    for rec in self.list()? {
                        let tags: Vec<Reference> = rec
                            .repo_tags
                            .iter()
                            .filter_map(|t| Reference::parse(t).ok())
                            .filter(|r| r.repository() == repo)
                            .collect();
                        if !tags.is_empty() {
                            found = true;
                            add(rec, tags);
                        }
                    }
                    if found {
                        continue;
                    }
                }
            }
            let rec = self.resolve(name)?;
            let by_id = rec.id.to_string().starts_with(name.as_str()) || rec.id.hex().starts_with(name.as_str());
            let tags = match Reference::parse(name) {
                Ok(r) if !by_id && r.tag().is_some() => vec![r],
                _ => Vec::new(),
            };
            add(rec, tags);
        }

        let mut b = tar::Builder::new(out);
        let werr = |what: &str| {
            let what = what.to_string();
            move |source: io::Error| StoreError::Io {
                op: "write",
                path: PathBuf::from(what),
                source,
            }
        };
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = file_header(0);
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            b.append_data(&mut h, dir, io::empty()).map_err(werr(dir))?;
        }
        let mut written: HashSet<Digest> = HashSet::new();
        let mut index_entries = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (rec, tags) in &images {
            let config = self.blobs.read(&rec.id)?;
            append_blob_bytes(&mut b, &mut written, &rec.id, &config)?;
            let mut layer_descs = Vec::new();
            let mut layer_paths = Vec::new();
            for (i, layer) in rec.layers.iter().enumerate() {
                let diff_id = &rec.diff_ids[i];
                let size = self.append_layer(&mut b, &mut written, layer, diff_id)?;
                layer_descs.push(json!({"mediaType": MEDIA_OCI_LAYER, "digest": diff_id.to_string(), "size": size}));
                layer_paths.push(format!("blobs/sha256/{}", diff_id.hex()));
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": rec.id.to_string(), "size": config.len()},
                "layers": layer_descs,
            });
            let mbytes = serde_json::to_vec(&manifest).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mdigest = Digest::sha256(&mbytes);
            append_blob_bytes(&mut b, &mut written, &mdigest, &mbytes)?;
            let desc = |annotations: Option<Value>| {
                let mut d =
                    json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": mdigest.to_string(), "size": mbytes.len()});
                if let (Some(a), Some(obj)) = (annotations, d.as_object_mut()) {
                    obj.insert("annotations".into(), a);
                }
                d
            };
            if tags.is_empty() {
                index_entries.push(desc(None));
            }
            for t in tags {
                index_entries.push(desc(Some(json!({
                    ANNOTATION_CONTAINERD_NAME: t.to_string(),
                    ANNOTATION_REF_NAME: t.tag().unwrap_or("latest"),
                }))));
                if let (Some(tag), Some(top)) = (t.tag(), rec.diff_ids.last()) {
                    repositories
                        .entry(t.familiar_repository())
                        .or_default()
                        .insert(tag.to_string(), top.hex().to_string());
                }
            }
            docker_manifest.push(json!({
                "Config": format!("blobs/sha256/{}", rec.id.hex()),
                "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags.iter().map(|t| t.familiar()).collect::<Vec<_>>()) },
                "Layers": layer_paths,
            }));
        }
        let index = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index_entries});
        let files: Vec<(&str, Vec<u8>)> = vec![
            (
                "index.json",
                serde_json::to_vec(&index).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
            (
                "manifest.json",
                serde_json::to_vec(&docker_manifest).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ];
        for (name, data) in files {
            let mut h = file_header(data.len() as u64);
            b.append_data(&mut h, name, data.as_slice()).map_err(werr(name))?;
        }
        if !repositories.is_empty() {
            let data = serde_json::to_vec(&repositories).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut h = file_header(data.len() as u64);
            b.append_data(&mut h, "repositories", data.as_slice())
                .map_err(werr("repositories"))?;
        }
        b.into_inner().map_err(werr("end of archive"))?;
        Ok(())
    }

    /// Writes one layer as an uncompressed tar at `blobs/sha256/<diff-id>`; returns its size.
    fn append_layer<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        written: &mut HashSet<Digest>,
        layer: &LayerBlob,
        diff_id: &Digest,
    ) -> Result<u64> {
        let name = format!("blobs/sha256/{}", diff_id.hex());
        if layer.digest == *diff_id {
            let size = self.blobs.size(&layer.digest)?;
            if written.insert(diff_id.clone()) {
                let f = self.blobs.open_blob(&layer.digest)?;
                let mut h = file_header(size);
                b.append_data(&mut h, &name, f.take(size))
                    .map_err(|source| StoreError::Io {
                        op: "write",
                        path: PathBuf::from(&name),
                        source,
                    })?;
            }
            return Ok(size);
        }
        // A compressed blob: decompress into a temp file (the tar header needs the size first) and
        // check it really is the layer the config names.
        let tmp = TempGuard(tmp_name(&self.root.join("tmp"), "save"));
        let what = format!("layer {}", layer.digest);
        let reader =
            berth_archive::decompress(self.blobs.open_blob(&layer.digest)?).map_err(|source| StoreError::Archive {
                what: what.clone(),
                source,
            })?;
        let mut dr = berth_archive::DigestReader::new(reader);
        let mut f = std::fs::File::create(&tmp.0).map_err(io_err("create", &tmp.0))?;
        io::copy(&mut dr, &mut f).map_err(|source| StoreError::Read {
            what: what.clone(),
            source,
        })?;
        let (d, size) = dr.finish().map_err(|source| StoreError::Read {
            what: what.clone(),
            source,
        })?;
        if d != *diff_id {
            return Err(StoreError::DigestMismatch {
                what,
                expected: diff_id.clone(),
                actual: d,
            });
        }
        if written.insert(diff_id.clone()) {
            let f = std::fs::File::open(&tmp.0).map_err(io_err("open", &tmp.0))?;
            let mut h = file_header(size);
            b.append_data(&mut h, &name, f.take(size))
                .map_err(|source| StoreError::Io {
                    op: "write",
                    path: PathBuf::from(&name),
                    source,
                })?;
        }
        Ok(size)
    }
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_blob_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    written: &mut HashSet<Digest>,
    d: &Digest,
    data: &[u8],
) -> Result<()> {
    if !written.insert(d.clone()) {
        return Ok(());
    }
    let name = format!("blobs/sha256/{}", d.hex());
    let mut h = file_header(data.len() as u64);
    b.append_data(&mut h, &name, data).map_err(|source| StoreError::Io {
        op: "write",
        path: PathBuf::from(&name),
        source,
    })
}
