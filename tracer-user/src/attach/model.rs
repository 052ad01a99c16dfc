//! What attach knows about each connection and each reconstructed request.
use std::{collections::VecDeque, net::SocketAddr};

use super::{framing::Body, handshake::Handshake};
use crate::probes::SocketCookie;

#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// 1-based, in order of first sight.
    pub number: usize,
    pub cookie: SocketCookie,
    /// The process (tgid) the kernel attributed the socket to first.
    pub pid: u32,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub udp: bool,
    /// It existed before the attach (seen in /proc), with this fd.
    pub preexisting_fd: Option<i32>,
    pub connect_seen: bool,
    /// Its handshake as the kernel saw it: SYN_SENT and ESTABLISHED (ns),
    /// when it succeeded.
    pub connect_ns: Option<(u64, u64)>,
    /// The request that opened it (its number): the first one on a
    /// connection seen from its start.
    pub first_request: Option<usize>,
    pub encrypted: bool,
    /// Its TLS library's plaintext is probed (OpenSSL, Go crypto/tls): requests, their
    /// timing and their bytes come from the plaintext; the kernel's I/O
    /// (the TLS records) counts to the connection's bytes only.
    pub plaintext: bool,
    /// Its TLS handshake, read from the kernel's heads of its first flights.
    pub handshake: Option<Box<Handshake>>,
    pub requests: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub closed: bool,
    /// Requests (indices) waiting for their status line, oldest first.
    pub(super) awaiting: VecDeque<usize>,
    /// Started and not finished, oldest first.
    pub(super) open: Vec<usize>,
    /// The request whose response is under way (its status line was seen),
    /// and what is left of that response's body.
    pub(super) responding: Option<usize>,
    pub(super) body: Body,
    /// The payload head just read, for the send or recv that carried it
    /// (the kernel hands the head first, the I/O right after).
    pub(super) head_io: Option<HeadIo>,
    /// The start of a request line whose send ended before the line did.
    pub(super) split_head: Option<SplitHead>,
}

/// Sends (or recvs) seen whole that hold only the start of a request line.
#[derive(Clone, Debug)]
pub(super) struct SplitHead {
    pub send: bool,
    /// When the first of them moved: the request's start.
    pub ts_ns: u64,
    pub bytes: Vec<u8>,
}

/// How the send or recv whose head was just parsed is accounted: the
/// messages that start in it, in order, and the bytes each takes.
#[derive(Clone, Copy, Debug)]
pub(super) struct HeadIo {
    pub ts_ns: u64,
    pub send: bool,
    pub shares: [Share; 8],
    pub len: usize,
}

/// Bytes of one I/O that belong to one message.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Share {
    /// Its request; None for a message that could not be parsed.
    pub request: Option<usize>,
    pub bytes: u64,
    /// Its last byte completes that request's response.
    pub completes: bool,
}

impl HeadIo {
    pub fn new(ts_ns: u64, send: bool) -> Self {
        Self {
            ts_ns,
            send,
            shares: [Share::default(); 8],
            len: 0,
        }
    }

    /// False when full: the caller counts the rest as unparsed.
    pub fn push(&mut self, request: Option<usize>, bytes: u64, completes: bool) -> bool {
        let Some(s) = self.shares.get_mut(self.len) else {
            return false;
        };
        *s = Share {
            request,
            bytes,
            completes,
        };
        self.len += 1;
        true
    }

    pub fn has(&self, r: usize) -> bool {
        self.shares[..self.len].iter().any(|s| s.request == Some(r))
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub number: usize,
    pub connection: usize,
    pub cookie: SocketCookie,
    pub method: &'static str,
    pub target: String,
    pub host: Option<String>,
    /// "HTTP/1.1" and "HTTP/1.0" are not allocated (see `http`).
    pub version: std::borrow::Cow<'static, str>,
    /// Whether the traced process wrote the request (it is the client).
    pub outbound: bool,
    /// The final status (1xx answers are not final).
    pub status: Option<u16>,
    /// The last informational (1xx) status before it, e.g. 100 Continue.
    pub interim: Option<u16>,
    pub start_ns: u64,
    /// The request's own last byte moved (written by a client, read by a
    /// server).
    pub request_end_ns: Option<u64>,
    pub first_byte_ns: Option<u64>,
    pub last_byte_ns: Option<u64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub reused: bool,
    /// The request that opened the connection this one reused, when the
    /// kernel saw it opened.
    pub reused_from: Option<usize>,
    /// The handshake (SYN_SENT, ESTABLISHED) of the connection the kernel
    /// saw opened for this request: the first the process made on it.
    pub connect_ns: Option<(u64, u64)>,
}

/// What one event changed, for the output.
#[derive(Debug, Default)]
pub struct Effect {
    pub connection: Option<usize>,
    /// The request the event belongs to.
    pub request: Option<usize>,
    /// A request line (true) or final status line (false) was just recognised.
    pub http_line: Option<bool>,
    /// An informational (1xx) status line was just recognised.
    pub interim: Option<u16>,
    /// Requests that ended with this event (indices into `requests`).
    pub finished: Vec<usize>,
    /// The connection was seen to open (true) or close (false) here.
    pub opened: Option<bool>,
}

/// A request's times as the kernel saw them (ns): the one definition that
/// every output (text, JSON, Chrome, OTLP, `--stat`) shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelPhases {
    /// The handshake of a connection opened for it (SYN_SENT to ESTABLISHED).
    pub connect: Option<u64>,
    /// Its first byte to the response's first byte.
    pub server: Option<u64>,
    /// The response's first byte to its last.
    pub transfer: Option<u64>,
    /// Its first byte to the response's last; None when no response byte
    /// was seen.
    pub total: Option<u64>,
}

impl Request {
    pub fn phases(&self) -> KernelPhases {
        let total = self
            .last_byte_ns
            .map(|end| end.saturating_sub(self.start_ns));
        let server = self.first_byte_ns.map(|f| f.saturating_sub(self.start_ns));
        KernelPhases {
            connect: self.connect_ns.map(|(a, b)| b.saturating_sub(a)),
            server,
            transfer: server.zip(total).map(|(f, t)| t.saturating_sub(f)),
            total,
        }
    }
}
