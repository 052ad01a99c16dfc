//! attach's `event` line written without serde. A release timing loop of
//! attach's tracker and output over 2 M send/recv events (best of 12)
//! took 140 ns an event this way and 228 ns through serde_json, whose
//! escaping scan of every key and many small copies cost more than the
//! rest of the path. The record is still the contract: the bytes here are
//! serde's for the same [`EventLine`], on any input (tests below).
use std::fmt::{self, Display, Write as _};

use super::event::{EventFields, EventLine, HookFields, KernelWhat};

impl EventLine<'_> {
    /// Appends the line and a newline to `buf`: what [`super::write_line`]
    /// writes, faster.
    pub fn write_fast(&self, buf: &mut Vec<u8>) {
        // An event line is about 300 bytes: one capacity check for most.
        buf.reserve(512);
        let mut m = Object { buf, empty: true };
        m.str("type", "event");
        m.str("source", self.source);
        m.str("name", self.name);
        m.u64("ts_ns", self.ts_ns);
        m.u64("offset_us", self.offset_us);
        m.opt_u64("socket_cookie", self.socket_cookie);
        if let Some(p) = &self.place {
            m.u64("pid", p.pid.into());
            m.opt_u64("connection", p.connection);
        }
        match &self.fields {
            EventFields::Client(c) => {
                m.str("detail", &c.detail);
                match &c.hook {
                    HookFields::GotConn {
                        reused,
                        was_idle,
                        idle_time_ns,
                        local_addr,
                        remote_addr,
                    } => {
                        m.bool("reused", *reused);
                        m.bool("was_idle", *was_idle);
                        m.opt_u64("idle_time_ns", *idle_time_ns);
                        m.opt_display("local_addr", local_addr.as_ref().map(|a| a as _));
                        m.opt_display("remote_addr", remote_addr.as_ref().map(|a| a as _));
                    }
                    HookFields::Status { status } => m.u64("status", (*status).into()),
                    HookFields::Body { bytes } => m.u64("bytes", *bytes),
                    HookFields::Error { error } => m.str("error", error),
                    HookFields::None {} => {}
                }
            }
            EventFields::Kernel(k) => {
                m.display("detail", &k.detail.0);
                m.u64("tid", k.tid.into());
                kernel_what(&mut m, &k.what);
            }
            EventFields::None {} => {}
        }
        if self.derived {
            m.bool("derived", true);
        }
        m.opt_u64("request", self.request);
        m.buf.extend_from_slice(b"}\n");
    }
}

fn kernel_what(m: &mut Object<'_>, what: &KernelWhat<'_>) {
    match what {
        KernelWhat::Connect {
            fd,
            ret,
            remote_addr,
            duration_ns,
        } => {
            match fd {
                Some(fd) => m.i64("fd", (*fd).into()),
                None => m.null("fd"),
            }
            m.i64("ret", (*ret).into());
            m.display("remote_addr", remote_addr);
            m.u64("duration_ns", *duration_ns);
        }
        KernelWhat::State {
            old,
            new,
            local_addr,
            remote_addr,
        } => {
            m.str("old", old);
            m.str("new", new);
            m.display("local_addr", local_addr);
            m.display("remote_addr", remote_addr);
        }
        KernelWhat::Io { bytes, protocol } => {
            m.i64("bytes", (*bytes).into());
            m.str("protocol", protocol);
        }
        KernelWhat::Close { fd } => m.i64("fd", (*fd).into()),
        KernelWhat::Destroy { freed } => m.bool("freed", *freed),
        KernelWhat::Retransmit { state } => m.str("state", state),
        KernelWhat::Reset { direction, state } => {
            m.str("direction", direction);
            m.str("state", state);
        }
        KernelWhat::Socket {
            local_addr,
            remote_addr,
            protocol,
        } => {
            m.display("local_addr", local_addr);
            m.display("remote_addr", remote_addr);
            m.str("protocol", protocol);
        }
        KernelWhat::Dns { host } => m.str("host", host),
        KernelWhat::DnsDone {
            host,
            ret,
            duration_ns,
        } => {
            m.str("host", host);
            m.i64("ret", (*ret).into());
            m.u64("duration_ns", *duration_ns);
        }
        KernelWhat::Payload {} => {}
    }
}

/// One JSON object being written at the end of a buffer, fields in the
/// order they are put.
struct Object<'a> {
    buf: &'a mut Vec<u8>,
    empty: bool,
}

impl Object<'_> {
    /// Inlined, so that each key, a literal, is copied with a known length.
    #[inline]
    fn key(&mut self, key: &'static str) {
        self.buf
            .extend_from_slice(if self.empty { b"{\"" } else { b",\"" });
        self.empty = false;
        // Keys are our own names, none of which needs escaping.
        debug_assert!(!key.bytes().any(needs_escape), "key {key:?}");
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    #[inline]
    fn str(&mut self, key: &'static str, v: &str) {
        self.key(key);
        self.buf.push(b'"');
        escape_into(self.buf, v);
        self.buf.push(b'"');
    }

    #[inline]
    fn display(&mut self, key: &'static str, v: &dyn Display) {
        self.key(key);
        self.buf.push(b'"');
        // Escaping goes piece by piece; JSON escapes each char on its own.
        let _ = write!(Escaper(self.buf), "{v}");
        self.buf.push(b'"');
    }

    fn opt_display(&mut self, key: &'static str, v: Option<&dyn Display>) {
        match v {
            Some(v) => self.display(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    fn u64(&mut self, key: &'static str, v: u64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    #[inline]
    fn opt_u64(&mut self, key: &'static str, v: Option<u64>) {
        match v {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    fn i64(&mut self, key: &'static str, v: i64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    #[inline]
    fn bool(&mut self, key: &'static str, v: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    #[inline]
    fn null(&mut self, key: &'static str) {
        self.key(key);
        self.buf.extend_from_slice(b"null");
    }
}

/// `fmt::Write` that appends JSON-escaped text.
struct Escaper<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends the contents of a JSON string for `s`, escaped as serde_json
/// does: `"`, `\` and the C0 controls, short forms where JSON has them.
fn escape_into(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Nearly every value (names, numbers-as-text, addresses) is plain.
    let Some(first) = bytes.iter().position(|&b| needs_escape(b)) else {
        buf.extend_from_slice(bytes);
        return;
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(short);
        }
    }
    buf.extend_from_slice(&bytes[start..]);
}

mod request;

#[cfg(test)]
mod tests;
