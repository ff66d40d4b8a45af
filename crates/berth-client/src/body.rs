//! Request and response bodies: whole buffers, streamed uploads from an `AsyncRead`, and a
//! response body read as an `AsyncRead` (for logs, save, and progress streams).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use tokio::io::{AsyncRead, ReadBuf};

/// The body type of every request the client sends.
pub type ReqBody = UnsyncBoxBody<Bytes, io::Error>;

/// An empty request body.
pub fn empty() -> ReqBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync()
}

/// A request body held in memory.
pub fn full(data: impl Into<Bytes>) -> ReqBody {
    Full::new(data.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A request body streamed from `reader` (image load/import), sent chunked.
pub fn from_reader<R: AsyncRead + Unpin + Send + 'static>(reader: R) -> ReqBody {
    ReaderBody {
        reader,
        buf: BytesMut::new(),
    }
    .boxed_unsync()
}

struct ReaderBody<R> {
    reader: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Body for ReaderBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        this.buf.reserve(64 * 1024);
        match ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut this.reader),
            cx,
            &mut this.buf
        )) {
            Ok(0) => Poll::Ready(None),
            Ok(_) => Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze())))),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// A response body read as a byte stream.
pub struct BodyReader {
    body: Incoming,
    chunk: Bytes,
}

impl BodyReader {
    pub(crate) fn new(body: Incoming) -> Self {
        BodyReader {
            body,
            chunk: Bytes::new(),
        }
    }

    /// Reads the whole remaining body.
    pub async fn bytes(self) -> Result<Bytes, hyper::Error> {
        let mut out = BytesMut::from(&self.chunk[..]);
        let rest = self.body.collect().await?.to_bytes();
        out.extend_from_slice(&rest);
        Ok(out.freeze())
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.chunk.is_empty() {
                let n = this.chunk.len().min(buf.remaining());
                buf.put_slice(&this.chunk[..n]);
                this.chunk.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.chunk = data;
                    }
                }
            }
        }
    }
}
