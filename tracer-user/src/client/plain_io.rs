//! The client's own plaintext I/O on a TLS connection, seen record by record
//! as rustls encrypts and decrypts it (see `tls_records`): where a request
//! was written and where its response began.
//!
//! The kernel cannot tell these apart on TLS: its first send of a new
//! connection is the ClientHello, and a TLS 1.3 server's session tickets
//! arrive as application-data records before the answer. On h2, SETTINGS
//! frames come and go before and between requests. So the marks come from
//! the plaintext: for HTTP/1.x, a write after a read starts a request and a
//! read after a write starts its response; for h2, the frame headers say
//! which stream's HEADERS or END_STREAM went by.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::event::Hook;
use crate::clock::monotonic_ns;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Marks kept per connection; a request takes its own when it ends.
const MAX_MARKS: usize = 64;

const FRAME_DATA: u8 = 0x0;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkKind {
    WroteHeaders,
    WroteRequest,
    GotFirstResponseByte,
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    ts_ns: u64,
    /// The h2 stream; 0 on HTTP/1.x.
    stream: u32,
    kind: MarkKind,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    #[default]
    Unknown,
    Http1 {
        writing: bool,
        last_write_ns: u64,
    },
    H2,
}

/// Frame boundaries of one direction of an h2 connection.
#[derive(Debug, Default)]
struct FrameReader {
    header: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to pass over.
    skip: usize,
}

impl FrameReader {
    /// Calls `frame(type, flags, stream)` for each frame header in `bytes`.
    fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(u8, u8, u32)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                self.have = 0;
                let h = self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                frame(h[3], h[4], stream);
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    protocol: Protocol,
    wrote_any: bool,
    writes: FrameReader,
    reads: FrameReader,
    marks: VecDeque<Mark>,
}

impl State {
    fn mark(&mut self, ts_ns: u64, stream: u32, kind: MarkKind) {
        if self.marks.len() == MAX_MARKS {
            self.marks.pop_front();
        }
        self.marks.push_back(Mark {
            ts_ns,
            stream,
            kind,
        });
    }
}

/// One TLS connection's plaintext marks, shared by its record wrappers.
#[derive(Debug, Default)]
pub(crate) struct PlainIo {
    state: Mutex<State>,
}

impl PlainIo {
    /// The application wrote `chunks` (one record's plaintext).
    pub(crate) fn wrote(&self, chunks: &[&[u8]]) {
        let ts_ns = monotonic_ns();
        let mut s = self.lock();
        if !s.wrote_any {
            s.wrote_any = true;
            let starts_h2 = chunks.first().is_some_and(|c| c.starts_with(H2_PREFACE));
            if starts_h2 {
                s.protocol = Protocol::H2;
                s.writes.skip = H2_PREFACE.len();
            } else if s.protocol == Protocol::Unknown {
                s.protocol = Protocol::Http1 {
                    writing: false,
                    last_write_ns: 0,
                };
            }
        }
        match s.protocol {
            Protocol::Http1 { writing, .. } => {
                if !writing {
                    s.mark(ts_ns, 0, MarkKind::WroteHeaders);
                }
                s.protocol = Protocol::Http1 {
                    writing: true,
                    last_write_ns: ts_ns,
                };
            }
            Protocol::H2 => {
                let mut found = Vec::new();
                for chunk in chunks {
                    s.writes.feed(chunk, |typ, flags, stream| {
                        let headers = typ == FRAME_HEADERS || typ == FRAME_CONTINUATION;
                        if headers && flags & FLAG_END_HEADERS != 0 {
                            found.push((stream, MarkKind::WroteHeaders));
                        }
                        let ends = typ == FRAME_HEADERS || typ == FRAME_DATA;
                        if ends && flags & FLAG_END_STREAM != 0 {
                            found.push((stream, MarkKind::WroteRequest));
                        }
                    });
                }
                for (stream, kind) in found {
                    s.mark(ts_ns, stream, kind);
                }
            }
            Protocol::Unknown => {}
        }
    }

    /// The application is handed `bytes` (one record's plaintext).
    pub(crate) fn read(&self, bytes: &[u8]) {
        let ts_ns = monotonic_ns();
        let mut s = self.lock();
        match s.protocol {
            Protocol::Http1 {
                writing: true,
                last_write_ns,
            } => {
                s.mark(last_write_ns, 0, MarkKind::WroteRequest);
                s.mark(ts_ns, 0, MarkKind::GotFirstResponseByte);
                s.protocol = Protocol::Http1 {
                    writing: false,
                    last_write_ns,
                };
            }
            Protocol::Http1 { writing: false, .. } => {}
            // An HTTP/1.x server never speaks first; an h2 server does.
            Protocol::Unknown | Protocol::H2 => {
                s.protocol = Protocol::H2;
                let mut found = Vec::new();
                s.reads.feed(bytes, |typ, _, stream| {
                    if typ == FRAME_HEADERS && stream != 0 {
                        found.push(stream);
                    }
                });
                for stream in found {
                    let seen = s
                        .marks
                        .iter()
                        .any(|m| m.stream == stream && m.kind == MarkKind::GotFirstResponseByte);
                    if !seen {
                        s.mark(ts_ns, stream, MarkKind::GotFirstResponseByte);
                    }
                }
            }
        }
    }

    /// The marks of the first request written at or after `start_ns`, as
    /// hooks with their times; they and every older mark are forgotten.
    pub(crate) fn take_request(&self, start_ns: u64) -> Vec<(u64, Hook)> {
        let mut s = self.lock();
        let Some(first) = s
            .marks
            .iter()
            .find(|m| m.ts_ns >= start_ns && m.kind == MarkKind::WroteHeaders)
            .copied()
        else {
            return Vec::new();
        };
        let mut hooks = Vec::new();
        for kind in [
            MarkKind::WroteHeaders,
            MarkKind::WroteRequest,
            MarkKind::GotFirstResponseByte,
        ] {
            let found = s
                .marks
                .iter()
                .find(|m| m.stream == first.stream && m.kind == kind && m.ts_ns >= first.ts_ns);
            if let Some(m) = found {
                let hook = match kind {
                    MarkKind::WroteHeaders => Hook::WroteHeaders,
                    MarkKind::WroteRequest => Hook::WroteRequest,
                    MarkKind::GotFirstResponseByte => Hook::GotFirstResponseByte,
                };
                hooks.push((m.ts_ns, hook));
            }
        }
        s.marks
            .retain(|m| m.ts_ns >= first.ts_ns && m.stream != first.stream);
        hooks
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
