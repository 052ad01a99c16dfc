//! attach's `request` line written without serde: with `--events` off it
//! is the one line per request, at up to 100k requests a second, and
//! serde_json's generic path (an escaping scan of every key, addresses
//! through `collect_str`) was a third of the tracer's CPU there (perf,
//! `tracer attach --format json` on bench-server at 90k req/s). Held to
//! serde's bytes by the tests in `fast/tests.rs`.
use std::net::SocketAddr;

use super::{Object, escape_into};
use crate::render::records::{AttachRequestLine, LineType, PhasesUs};

impl AttachRequestLine<'_> {
    /// Appends the line and a newline to `buf`: what `write_line` writes.
    pub fn write_fast(&self, buf: &mut Vec<u8>) {
        buf.reserve(640);
        let mut m = Object { buf, empty: true };
        m.opt_u64("bytes_received", self.bytes_received);
        m.opt_u64("bytes_sent", self.bytes_sent);
        m.opt_u64("connection", self.connection);
        m.opt_str("error", self.error);
        m.opt_str("http_version", self.http_version);
        m.bool("kernel_confirmed", self.kernel_confirmed);
        m.opt_addr("local_addr", self.local_addr);
        m.str("method", self.method);
        m.key("phases_us");
        phases(m.buf, &self.phases_us);
        m.opt_addr("remote_addr", self.remote_addr);
        m.u64("request", self.request);
        m.bool("reused", self.reused);
        m.opt_u64("reused_from", self.reused_from);
        m.opt_u64("socket_cookie", self.socket_cookie);
        m.opt_u64("status", self.status.map(u64::from));
        m.str("type", type_name(self.line));
        let url = &self.url.0;
        match url.host {
            // `Url`'s Display, piece by piece (format machinery is slow).
            Some(h) if url.target.starts_with('/') => {
                m.key("url");
                m.buf.extend_from_slice(if url.https {
                    b"\"https://"
                } else {
                    b"\"http://"
                });
                escape_into(m.buf, h);
                escape_into(m.buf, url.target);
                m.buf.push(b'"');
            }
            _ => m.str("url", url.target),
        }
        m.str("direction", self.only.direction);
        m.u64("pid", self.only.pid.into());
        m.buf.extend_from_slice(b"}\n");
    }
}

fn phases(buf: &mut Vec<u8>, p: &PhasesUs) {
    let mut o = Object { buf, empty: true };
    o.opt_u64("connect", p.connect);
    o.opt_u64("dns", p.dns);
    o.opt_u64("server", p.server);
    o.opt_u64("tls", p.tls);
    o.opt_u64("total", p.total);
    o.opt_u64("transfer", p.transfer);
    o.buf.push(b'}');
}

/// `LineType`'s serde name.
fn type_name(l: LineType) -> &'static str {
    match l {
        LineType::Event => "event",
        LineType::Request => "request",
        LineType::Finding => "finding",
        LineType::Summary => "summary",
        LineType::Stat => "stat",
        LineType::Connection => "connection",
    }
}

impl Object<'_> {
    fn opt_str(&mut self, key: &'static str, v: Option<&str>) {
        match v {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// A socket address as its Display text: IPv4 (nearly every address
    /// attach prints) without the format machinery, which took 15% of the
    /// tracer's CPU on the request line; IPv6 through Display.
    fn opt_addr(&mut self, key: &'static str, a: Option<SocketAddr>) {
        match a {
            Some(SocketAddr::V4(v4)) => {
                self.key(key);
                self.buf.push(b'"');
                let mut n = itoa::Buffer::new();
                for (i, o) in v4.ip().octets().iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b'.');
                    }
                    self.buf.extend_from_slice(n.format(*o).as_bytes());
                }
                self.buf.push(b':');
                self.buf.extend_from_slice(n.format(v4.port()).as_bytes());
                self.buf.push(b'"');
            }
            Some(v6) => self.display(key, &v6),
            None => self.null(key),
        }
    }
}
