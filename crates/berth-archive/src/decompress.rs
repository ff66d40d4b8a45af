//! Compression sniffing: gzip, zstd (feature `zstd`) or plain tar; xz and bzip2 are refused by name.

use crate::error::ArchiveError;
use std::io::{BufRead, BufReader, Read};

/// Sniffs the stream and returns a reader of the uncompressed tar: gzip, zstd (feature `zstd`, on by
/// default) or plain.
pub fn decompress<'a, R: Read + Send + 'a>(reader: R) -> Result<Box<dyn Read + Send + 'a>, ArchiveError> {
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf.fill_buf().map_err(ArchiveError::Read)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buf)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        #[cfg(feature = "zstd")]
        return Ok(Box::new(zstd::ZstdReader::new(buf)));
        #[cfg(not(feature = "zstd"))]
        return Err(ArchiveError::UnsupportedCompression("zstd"));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Err(ArchiveError::UnsupportedCompression("xz"));
    }
    if head.starts_with(b"BZh") {
        return Err(ArchiveError::UnsupportedCompression("bzip2"));
    }
    Ok(Box::new(buf))
}

#[cfg(feature = "zstd")]
mod zstd {
    //! A zstd reader for whole streams: ruzstd's `StreamingDecoder` reads one frame, layers may hold
    //! several (and skippable frames, as zstd:chunked writes).
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
    use std::io::{self, BufRead, Read};

    pub(crate) struct ZstdReader<R> {
        src: R,
        dec: FrameDecoder,
        in_frame: bool,
    }

    impl<R: BufRead> ZstdReader<R> {
        pub(crate) fn new(src: R) -> Self {
            ZstdReader {
                src,
                dec: FrameDecoder::new(),
                in_frame: false,
            }
        }
    }

    impl<R: BufRead> Read for ZstdReader<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if buf.is_empty() {
                return Ok(0);
            }
            loop {
                if !self.in_frame {
                    if self.src.fill_buf()?.is_empty() {
                        return Ok(0);
                    }
                    match self.dec.reset(&mut self.src) {
                        Ok(()) => self.in_frame = true,
                        Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                            length,
                            ..
                        })) => {
                            let skipped = io::copy(&mut (&mut self.src).take(length as u64), &mut io::sink())?;
                            if skipped != length as u64 {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "truncated zstd skippable frame",
                                ));
                            }
                        }
                        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                    }
                    continue;
                }
                while self.dec.can_collect() < buf.len() && !self.dec.is_finished() {
                    let want = buf.len() - self.dec.can_collect();
                    self.dec
                        .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(want))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
                let n = self.dec.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if self.dec.is_finished() {
                    self.in_frame = false;
                }
            }
        }
    }
}
