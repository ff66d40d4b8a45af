//! The content store: blobs addressed by their sha256 digest, verified on write.

use crate::{io_err, Result, StoreError};
use berth_types::Digest;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary name in `dir` (pid first, so stale files of dead processes can be recognised).
pub(crate) fn tmp_name(dir: &Path, prefix: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!("{}-{prefix}-{nanos}-{n}", std::process::id()))
}

/// Writes `data` to `path` atomically and durably (temp file, fsync, rename, fsync of the directory).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    berth_types::write_atomic(path, data).map_err(|e| io_err("write", path)(e.source))
}

/// Blobs under `<root>/sha256/<hex>`, with temporary files in `<root>/../tmp`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl ContentStore {
    pub(crate) fn open(root: PathBuf, tmp: PathBuf) -> Result<Self> {
        for d in [root.join("sha256"), tmp.clone()] {
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        Ok(ContentStore { root, tmp })
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join(d.algorithm()).join(d.hex())
    }

    /// Whether the blob exists.
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        std::fs::metadata(&p).map(|m| m.len()).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => io_err("stat", &p)(e),
        })
    }

    /// Opens a stored blob.
    pub fn open_blob(&self, d: &Digest) -> Result<std::fs::File> {
        let p = self.path(d);
        std::fs::File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => io_err("open", &p)(e),
        })
    }

    /// Reads a whole stored blob.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut v)
            .map_err(io_err("read", &self.path(d)))?;
        Ok(v)
    }

    /// Streams `r` into the store, hashing while writing; fsync then rename. When `expected` is given a
    /// different digest is an error and nothing is stored. Returns the digest and size.
    pub fn put(&self, r: impl Read, expected: Option<&Digest>, what: &str) -> Result<(Digest, u64)> {
        let tmp = tmp_name(&self.tmp, "blob");
        let res = (|| -> Result<(Digest, u64)> {
            let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
            let mut reader = berth_archive::DigestReader::new(r);
            io::copy(&mut reader, &mut f).map_err(|e| StoreError::Read {
                what: what.to_string(),
                source: e,
            })?;
            let (d, n) = reader.finish().map_err(|e| StoreError::Read {
                what: what.to_string(),
                source: e,
            })?;
            f.sync_all().map_err(io_err("sync", &tmp))?;
            self.commit(&tmp, d, n, expected, what)
        })();
        let _ = std::fs::remove_file(&tmp);
        res
    }

    /// A writer that stores a blob as its bytes pass through (for a pull that unpacks a layer while it
    /// downloads): hashes while writing to a temp file; [`BlobWriter::commit`] checks the digest, fsyncs
    /// and renames; dropping it uncommitted removes the temp file.
    pub fn writer(&self, what: &str) -> Result<BlobWriter> {
        let tmp = tmp_name(&self.tmp, "blob");
        let file = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        Ok(BlobWriter {
            store: self.clone(),
            tmp,
            file: Some(io::BufWriter::with_capacity(256 * 1024, file)),
            hasher: sha2::Sha256::default(),
            size: 0,
            what: what.to_string(),
        })
    }

    /// Stores an existing file (on the same filesystem) by hard-linking it into the store after hashing
    /// it, so a load does not copy layer data twice. The source file is left in place.
    pub fn put_file(&self, src: &Path, expected: Option<&Digest>, what: &str) -> Result<(Digest, u64)> {
        let f = std::fs::File::open(src).map_err(io_err("open", src))?;
        let (d, n) = berth_archive::DigestReader::new(f)
            .finish()
            .map_err(|e| StoreError::Read {
                what: what.to_string(),
                source: e,
            })?;
        if let Some(want) = expected {
            if want != &d {
                return Err(StoreError::DigestMismatch {
                    what: what.to_string(),
                    expected: want.clone(),
                    actual: d,
                });
            }
        }
        if self.has(&d) {
            return Ok((d, n));
        }
        let tmp = tmp_name(&self.tmp, "blob");
        if std::fs::hard_link(src, &tmp).is_err() {
            // Another filesystem: fall back to a verified copy.
            let f = std::fs::File::open(src).map_err(io_err("open", src))?;
            return self.put(f, Some(&d), what);
        }
        let res = std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err("sync", &tmp))
            .and_then(|_| self.commit(&tmp, d, n, None, what));
        let _ = std::fs::remove_file(&tmp);
        res
    }

    fn commit(&self, tmp: &Path, d: Digest, n: u64, expected: Option<&Digest>, what: &str) -> Result<(Digest, u64)> {
        if let Some(want) = expected {
            if want != &d {
                return Err(StoreError::DigestMismatch {
                    what: what.to_string(),
                    expected: want.clone(),
                    actual: d,
                });
            }
        }
        let dst = self.path(&d);
        // Same digest, same bytes: replacing an existing blob (a concurrent writer) is harmless.
        std::fs::rename(tmp, &dst).map_err(io_err("store blob", &dst))?;
        Ok((d, n))
    }

    /// Every stored sha256 blob.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("sha256");
        let rd = std::fs::read_dir(&dir).map_err(io_err("read", &dir))?;
        let mut out: Vec<Digest> = rd
            .flatten()
            .filter_map(|e| Digest::from_sha256_hex(&e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes a blob (nothing to do if absent).
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }
}

/// A blob being written into the [`ContentStore`] (see [`ContentStore::writer`]).
pub struct BlobWriter {
    store: ContentStore,
    tmp: PathBuf,
    file: Option<io::BufWriter<std::fs::File>>,
    hasher: sha2::Sha256,
    size: u64,
    what: String,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("what", &self.what)
            .field("size", &self.size)
            .finish()
    }
}

impl io::Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use sha2::Digest as _;
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already finished"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Checks the bytes written against `expected` (when given), syncs and stores the blob. A mismatch
    /// stores nothing. Returns the digest and size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        use sha2::Digest as _;
        let Some(f) = self.file.take() else {
            return Err(StoreError::Corrupt(format!(
                "{}: blob writer already finished",
                self.what
            )));
        };
        let f = f.into_inner().map_err(|e| io_err("write", &self.tmp)(e.into_error()))?;
        f.sync_all().map_err(io_err("sync", &self.tmp))?;
        drop(f);
        let hex = hex_lower(&self.hasher.clone().finalize());
        let d: Digest = format!("sha256:{hex}")
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("{}: computed digest does not parse", self.what)))?;
        self.store.commit(&self.tmp, d, self.size, expected, &self.what)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
