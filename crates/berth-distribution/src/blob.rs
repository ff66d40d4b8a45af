//! Blob downloads as a verified, resumable stream.
//!
//! The stream yields at most `desc.size` bytes. When the connection drops (a body error, or an
//! early end), it asks again with `Range: bytes=<received>-` after a backoff (100 ms doubling), up
//! to [`crate::client::MAX_ATTEMPTS`] failures in a row; a server that ignores `Range` answers 200
//! and the bytes already received are skipped. At the end the bytes from 0 are checked against
//! `desc.digest` and `desc.size`; a mismatch is the stream's last item, an error, so a caller
//! writing to a temp file never commits tampered content. A body that stalls for
//! [`BODY_IDLE_TIMEOUT`] is resumed the same way.

use crate::auth::AuthConfig;
use crate::client::{RegistryClient, BACKOFF_START, MAX_ATTEMPTS};
use crate::error::{DistributionError, Result};
use crate::manifest::Descriptor;
use crate::transport::Endpoint;
use berth_types::{Digest, Reference};
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sha2::Digest as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a blob body may deliver nothing before the download is resumed on a new connection.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running hash of a blob, in the algorithm of its digest.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn for_digest(d: &Digest) -> Hasher {
        if d.algorithm() == "sha512" {
            Hasher::Sha512(sha2::Sha512::new())
        } else {
            Hasher::Sha256(sha2::Sha256::new())
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(&self) -> Digest {
        let s = match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.clone().finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.clone().finalize())),
        };
        // A hex of the right length always parses.
        s.parse().unwrap_or_else(|_| Digest::sha256(b""))
    }
}

struct State {
    client: RegistryClient,
    /// The endpoint that served the first request (None when nothing is left to fetch).
    ep: Option<Endpoint>,
    reference: Reference,
    desc: Descriptor,
    auth: Option<AuthConfig>,
    /// Bytes of the blob hashed so far (absolute position).
    pos: u64,
    /// Bytes below this position are hashed but not yielded (the caller has them).
    emit_from: u64,
    hasher: Hasher,
    body: Option<Incoming>,
    /// Bytes to drop at the start of the current body.
    skip: u64,
    failures: u32,
    done: bool,
}

/// A blob's bytes from the asked offset, verified at the end (see the module doc).
pub struct BlobStream {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
    size: u64,
}

impl BlobStream {
    pub(crate) async fn open(
        client: RegistryClient,
        r: &Reference,
        desc: &Descriptor,
        offset: u64,
        prefix: Option<sha2::Sha256>,
        auth: Option<&AuthConfig>,
    ) -> Result<BlobStream> {
        if offset > desc.size {
            return Err(DistributionError::InvalidArgument(format!(
                "blob {}: offset {offset} is past its size {}",
                desc.digest, desc.size
            )));
        }
        let (hasher, start) = match prefix {
            Some(_) if desc.digest.algorithm() != "sha256" => {
                return Err(DistributionError::InvalidArgument(format!(
                    "blob {}: a sha256 prefix state cannot verify a {} digest",
                    desc.digest,
                    desc.digest.algorithm()
                )))
            }
            Some(h) => (Hasher::Sha256(h), offset),
            None => (Hasher::for_digest(&desc.digest), 0),
        };
        // The first request picks the endpoint (a mirror, or the registry); resumes stay on it.
        let (ep, body, skip) = if start == desc.size {
            (None, None, 0)
        } else {
            let (ep, b, skip) = client
                .on_endpoints(r.domain(), true, |ep| {
                    let client = &client;
                    async move {
                        let (b, skip) = client.open_blob(&ep, r, desc, start, auth).await?;
                        Ok((ep, b, skip))
                    }
                })
                .await?;
            (Some(ep), Some(b), skip)
        };
        let state = State {
            client,
            ep,
            reference: r.clone(),
            desc: desc.clone(),
            auth: auth.cloned(),
            pos: start,
            emit_from: offset,
            hasher,
            body,
            skip,
            failures: 0,
            done: false,
        };
        let size = desc.size;
        let stream = futures_util::stream::unfold(state, |mut st| async move {
            let item = st.next_item().await?;
            Some((item, st))
        });
        Ok(BlobStream {
            inner: Box::pin(stream),
            size,
        })
    }

    /// The blob's full size (from its descriptor).
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl State {
    async fn next_item(&mut self) -> Option<Result<Bytes>> {
        loop {
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                if self.pos == self.desc.size {
                    self.done = true;
                    let actual = self.hasher.finish();
                    if actual != self.desc.digest {
                        return Some(Err(DistributionError::DigestMismatch {
                            what: format!("filesystem layer {}", self.desc.digest),
                            expected: self.desc.digest.to_string(),
                            actual: actual.to_string(),
                        }));
                    }
                    return None;
                }
                let Some(ep) = self.ep.as_ref() else {
                    self.done = true;
                    return Some(Err(DistributionError::InvalidArgument(format!(
                        "blob {}: no endpoint to fetch from",
                        self.desc.digest
                    ))));
                };
                match self
                    .client
                    .open_blob(ep, &self.reference, &self.desc, self.pos, self.auth.as_ref())
                    .await
                {
                    Ok((b, skip)) => {
                        self.body = Some(b);
                        self.skip = skip;
                    }
                    Err(e) if e.is_transient() && self.failures < MAX_ATTEMPTS => {
                        self.backoff().await;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            };
            let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
                Ok(f) => f,
                Err(_) => {
                    // A stalled connection: drop it and resume like a broken one.
                    self.body = None;
                    tracing::debug!(digest = %self.desc.digest, pos = self.pos, "blob download stalled");
                    if self.failures >= MAX_ATTEMPTS {
                        self.done = true;
                        return Some(Err(DistributionError::Connect {
                            registry: self.reference.domain().into(),
                            reason: format!(
                                "blob {} stalled at byte {} for {BODY_IDLE_TIMEOUT:?}",
                                self.desc.digest, self.pos
                            ),
                        }));
                    }
                    self.backoff().await;
                    continue;
                }
            };
            match frame {
                None => {
                    self.body = None;
                    if self.pos < self.desc.size {
                        // An early end: the connection was closed before the whole blob.
                        if self.failures >= MAX_ATTEMPTS {
                            self.done = true;
                            return Some(Err(DistributionError::SizeMismatch {
                                digest: self.desc.digest.to_string(),
                                expected: self.desc.size,
                                actual: self.pos,
                            }));
                        }
                        self.backoff().await;
                    }
                }
                Some(Err(source)) => {
                    self.body = None;
                    tracing::debug!(digest = %self.desc.digest, pos = self.pos, "blob download interrupted: {source}");
                    if self.failures >= MAX_ATTEMPTS {
                        self.done = true;
                        return Some(Err(DistributionError::Body {
                            op: "fetching blob",
                            target: self.desc.digest.to_string(),
                            source,
                        }));
                    }
                    self.backoff().await;
                }
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else { continue };
                    if self.skip > 0 {
                        let n = (self.skip as usize).min(data.len());
                        let _ = data.split_to(n);
                        self.skip -= n as u64;
                    }
                    if data.is_empty() {
                        continue;
                    }
                    // Progress resets the failure count: each resume got somewhere.
                    self.failures = 0;
                    let len = data.len() as u64;
                    if self.pos + len > self.desc.size {
                        self.done = true;
                        self.body = None;
                        return Some(Err(DistributionError::SizeMismatch {
                            digest: self.desc.digest.to_string(),
                            expected: self.desc.size,
                            actual: self.pos + len,
                        }));
                    }
                    self.hasher.update(&data);
                    let before = self.pos;
                    self.pos += len;
                    if self.pos <= self.emit_from {
                        continue;
                    }
                    if before < self.emit_from {
                        let _ = data.split_to((self.emit_from - before) as usize);
                    }
                    return Some(Ok(data));
                }
            }
        }
    }

    async fn backoff(&mut self) {
        let delay = BACKOFF_START * 2u32.saturating_pow(self.failures.min(6));
        self.failures += 1;
        tokio::time::sleep(delay.min(Duration::from_secs(5))).await;
    }
}
