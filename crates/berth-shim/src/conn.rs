//! One connection on the control socket: its request line, what it is attached to, its output queue.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;

/// One connection on the control socket.
pub(crate) struct Conn {
    pub(crate) stream: UnixStream,
    pub(crate) inbuf: Vec<u8>,
    pub(crate) out: VecDeque<u8>,
    pub(crate) state: ConnState,
    /// The process the request targets (`exec_id`; `None`: the init).
    pub(crate) target: Option<String>,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) stdin: bool,
    pub(crate) read_closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Reading the request line.
    Request,
    /// Streaming output (and taking stdin).
    Attached,
    /// Waiting for the exit status.
    Waiting,
    /// Answer queued; close once written.
    Closing,
}

impl Conn {
    pub(crate) fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            state: ConnState::Request,
            target: None,
            stdout: false,
            stderr: false,
            stdin: false,
            read_closed: false,
        }
    }

    /// Whether this connection is about the process `exec_id` (`None`: the init).
    pub(crate) fn targets(&self, exec_id: Option<&str>) -> bool {
        self.target.as_deref() == exec_id
    }

    /// Queues `data` and writes what it can.
    pub(crate) fn send(&mut self, data: &[u8]) {
        self.out.extend(data.iter());
        flush_conn(self);
    }
}

/// Writes what the connection has queued without blocking; false when the peer is gone.
pub(crate) fn flush_conn(c: &mut Conn) -> bool {
    while !c.out.is_empty() {
        let (a, _) = c.out.as_slices();
        match c.stream.write(a) {
            Ok(0) => return false,
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                c.out.clear();
                c.state = ConnState::Closing;
                return false;
            }
        }
    }
    if c.out.capacity() > 64 * 1024 {
        c.out = VecDeque::new();
    }
    true
}
