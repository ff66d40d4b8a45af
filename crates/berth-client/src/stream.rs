//! Docker's stream formats as the client reads them: the multiplexed stdout/stderr framing used by
//! logs and attach when the container has no TTY (format and parser in [`berth_api::stream`]), and
//! the JSON message stream of load/import/pull.

use std::io;

pub use berth_api::stream::StreamType;
use berth_api::stream::{parse_header, HEADER_LEN};
pub use berth_api::{JsonError, JsonMessage, ProgressDetail};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt};

/// One message of a pull/push/load progress stream, as the CLI renders it.
pub type ProgressMessage = JsonMessage;

/// Reads one frame (`[stream,0,0,0,len_be32]` then `len` bytes) into `buf`; `None` at a clean EOF.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<Option<StreamType>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < header.len() {
        let n = reader.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated stream frame header",
            ));
        }
        got += n;
    }
    let h = parse_header(&header).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let len = usize::try_from(h.len).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf).await?;
    Ok(Some(h.stream))
}

/// Reads concatenated JSON messages as they arrive ([`JsonMessage`] unless told otherwise).
pub struct JsonMessages<R, M = JsonMessage> {
    reader: R,
    buf: Vec<u8>,
    eof: bool,
    _message: std::marker::PhantomData<fn() -> M>,
}

impl<R: AsyncRead + Unpin> JsonMessages<R> {
    /// Reads messages from `reader`.
    pub fn new(reader: R) -> Self {
        Self::of(reader)
    }
}

impl<R: AsyncRead + Unpin, M: DeserializeOwned> JsonMessages<R, M> {
    /// Reads messages of type `M` from `reader`.
    pub fn of(reader: R) -> Self {
        JsonMessages {
            reader,
            buf: Vec::new(),
            eof: false,
            _message: std::marker::PhantomData,
        }
    }

    /// The next message, `None` at the end of the stream.
    pub async fn next(&mut self) -> io::Result<Option<M>> {
        loop {
            let trimmed_start = self.buf.iter().position(|b| !b.is_ascii_whitespace());
            match trimmed_start {
                None => self.buf.clear(),
                Some(start) => {
                    let mut it = serde_json::Deserializer::from_slice(&self.buf[start..]).into_iter::<M>();
                    match it.next() {
                        Some(Ok(msg)) => {
                            let used = start + it.byte_offset();
                            self.buf.drain(..used);
                            return Ok(Some(msg));
                        }
                        Some(Err(e)) if e.is_eof() && !self.eof => {}
                        Some(Err(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                        None => self.buf.clear(),
                    }
                }
            }
            if self.eof {
                return Ok(None);
            }
            let mut chunk = [0u8; 8192];
            let n = self.reader.read(&mut chunk).await?;
            if n == 0 {
                self.eof = true;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn frames() {
        let mut data = vec![1, 0, 0, 0, 0, 0, 0, 3];
        data.extend_from_slice(b"out");
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        data.extend_from_slice(b"er");
        let mut r = &data[..];
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), Some(StreamType::Stdout));
        assert_eq!(buf, b"out");
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), Some(StreamType::Stderr));
        assert_eq!(buf, b"er");
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), None);
        let mut short = &[1u8, 0, 0][..];
        assert!(read_frame(&mut short, &mut buf).await.is_err());
        let mut bad = &[9u8, 0, 0, 0, 0, 0, 0, 0][..];
        let e = read_frame(&mut bad, &mut buf).await.unwrap_err();
        assert_eq!(e.to_string(), "unrecognized stream: 9");
        let mut truncated_body = &[2u8, 0, 0, 0, 0, 0, 0, 5, b'a'][..];
        assert!(read_frame(&mut truncated_body, &mut buf).await.is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn json_messages() {
        let data = b"{\"stream\":\"Loaded image: bb:latest\\n\"}\r\n{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}{\"status\":\"x\"}\n";
        let mut m = JsonMessages::new(&data[..]);
        let a = m.next().await.unwrap().unwrap();
        assert_eq!(a.stream.as_deref(), Some("Loaded image: bb:latest\n"));
        let b = m.next().await.unwrap().unwrap();
        assert_eq!(b.error.as_deref(), Some("boom"));
        let c = m.next().await.unwrap().unwrap();
        assert_eq!(c.status.as_deref(), Some("x"));
        assert!(m.next().await.unwrap().is_none());
    }
}
