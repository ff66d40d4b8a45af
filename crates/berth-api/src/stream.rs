//! Docker's stdout/stderr multiplexing ("stream framing"), used by `attach` and `logs` when the
//! container has no TTY. Each frame is an 8-byte header `[stream, 0, 0, 0, len_be32]` followed by
//! `len` bytes of payload; stream 0 is stdin, 1 stdout, 2 stderr (Engine API, "Attach to a
//! container", section "Stream format"; moby `pkg/stdcopy`).
//!
//! Who uses it: the shim frames container output for attach clients, the API server frames log
//! lines, and the client parses both (berth-client's async `read_frame`).

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// The largest payload one frame can carry (the length field is 32 bits).
pub const MAX_FRAME_LEN: usize = u32::MAX as usize;

/// Which stream a frame belongs to (the first header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// Standard input (written by clients of some daemons; never by berth).
    Stdin,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl StreamType {
    /// The stream for a header byte, `None` for a byte Docker does not define.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(StreamType::Stdin),
            1 => Some(StreamType::Stdout),
            2 => Some(StreamType::Stderr),
            _ => None,
        }
    }

    /// The header byte of this stream.
    pub fn as_byte(self) -> u8 {
        match self {
            StreamType::Stdin => 0,
            StreamType::Stdout => 1,
            StreamType::Stderr => 2,
        }
    }

    /// The stream's name as the json-file log and Docker's messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            StreamType::Stdin => "stdin",
            StreamType::Stdout => "stdout",
            StreamType::Stderr => "stderr",
        }
    }
}

/// A decoded frame header: the stream and the length of the payload that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The stream the payload belongs to.
    pub stream: StreamType,
    /// Payload length in bytes.
    pub len: u32,
}

/// A frame header that is not Docker's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The stream byte is not 0, 1 or 2 (moby's wording).
    #[error("unrecognized stream: {0}")]
    UnknownStream(u8),
}

/// Encodes the header of a frame carrying `len` bytes of `stream`.
pub fn encode_header(stream: StreamType, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_be_bytes();
    [stream.as_byte(), 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Parses a frame header.
pub fn parse_header(header: &[u8; HEADER_LEN]) -> Result<FrameHeader, FrameError> {
    let stream = StreamType::from_byte(header[0]).ok_or(FrameError::UnknownStream(header[0]))?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    Ok(FrameHeader { stream, len })
}

/// Appends `data` to `out` as frames of `stream` (one frame, unless `data` exceeds
/// [`MAX_FRAME_LEN`]). Empty data writes nothing: an empty frame means nothing to a reader.
pub fn write_frames(out: &mut Vec<u8>, stream: StreamType, data: &[u8]) {
    out.reserve(data.len() + HEADER_LEN);
    for chunk in data.chunks(MAX_FRAME_LEN) {
        // `chunks(MAX_FRAME_LEN)` bounds every chunk by u32::MAX.
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&encode_header(stream, len));
        out.extend_from_slice(chunk);
    }
}

/// `data` framed for `stream` (see [`write_frames`]).
pub fn frame(stream: StreamType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    write_frames(&mut out, stream, data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bytes_round_trip() {
        for s in [StreamType::Stdin, StreamType::Stdout, StreamType::Stderr] {
            assert_eq!(StreamType::from_byte(s.as_byte()), Some(s));
        }
        assert_eq!(StreamType::from_byte(3), None);
        assert_eq!(StreamType::Stderr.name(), "stderr");
    }

    #[test]
    fn headers() {
        // (stream, len, encoded)
        let cases = [
            (StreamType::Stdin, 0u32, [0u8, 0, 0, 0, 0, 0, 0, 0]),
            (StreamType::Stdout, 3, [1, 0, 0, 0, 0, 0, 0, 3]),
            (StreamType::Stderr, 0x0102_0304, [2, 0, 0, 0, 1, 2, 3, 4]),
            (StreamType::Stdout, u32::MAX, [1, 0, 0, 0, 255, 255, 255, 255]),
        ];
        for (stream, len, want) in cases {
            assert_eq!(encode_header(stream, len), want);
            assert_eq!(parse_header(&want), Ok(FrameHeader { stream, len }));
        }
        assert_eq!(
            parse_header(&[7, 0, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::UnknownStream(7))
        );
        assert_eq!(FrameError::UnknownStream(7).to_string(), "unrecognized stream: 7");
    }

    #[test]
    fn frames() {
        assert_eq!(frame(StreamType::Stdout, b"out"), b"\x01\0\0\0\0\0\0\x03out");
        assert!(frame(StreamType::Stderr, b"").is_empty());
        let mut out = frame(StreamType::Stderr, b"er");
        write_frames(&mut out, StreamType::Stdout, b"x");
        assert_eq!(out, b"\x02\0\0\0\0\0\0\x02er\x01\0\0\0\0\0\0\x01x");
    }
}
