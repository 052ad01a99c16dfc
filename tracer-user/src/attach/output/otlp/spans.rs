//! The spans of one request attach reconstructed: the request's (CLIENT or
//! SERVER), a child per phase the kernel saw, its events and findings.
use std::net::SocketAddr;

use opentelemetry_proto::tonic::{
    common::v1::KeyValue,
    trace::v1::{Span, span::SpanKind},
};

use super::Held;
use crate::{
    attach::conns::{Connection, Request},
    export::otlp::{
        SAMPLED, TraceIds, finding_event, int, kernel_event, peer, phase_span, response, reuse,
        status_error, text,
    },
    render::records::Url,
    timeline::Finding,
};

/// What a request's span says of its connection: copied out of the
/// tracker, so that the span can be built on the exporter's thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnFacts {
    pub number: usize,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// A TLS library's plaintext: the request went over TLS.
    pub plaintext: bool,
}

impl From<&Connection> for ConnFacts {
    fn from(c: &Connection) -> Self {
        ConnFacts {
            number: c.number,
            local: c.local,
            remote: c.remote,
            plaintext: c.plaintext,
        }
    }
}

/// The phases of `r` that the kernel saw, in order, as (name, start, end):
/// `connect` the handshake of a connection opened for it; `request` its
/// first to last byte; `server` from then to the response's first byte;
/// `transfer` from that to the response's last byte.
pub fn phases(r: &Request) -> Vec<(&'static str, u64, u64)> {
    let mut p = Vec::with_capacity(4);
    if let Some((a, b)) = r.connect_ns {
        p.push(("connect", a, b));
    }
    if let Some(end) = r.request_end_ns {
        p.push(("request", r.start_ns, end));
        if let Some(first) = r.first_byte_ns.filter(|&f| f >= end) {
            p.push(("server", end, first));
        }
    }
    if let (Some(first), Some(last)) = (r.first_byte_ns, r.last_byte_ns) {
        p.push(("transfer", first, last));
    }
    p
}

/// (start, end) of `r`'s span: from its connect, if one was made for it,
/// to the last byte of either direction.
fn window(r: &Request) -> (u64, u64) {
    let start = r.connect_ns.map_or(r.start_ns, |(a, _)| a.min(r.start_ns));
    let end = [r.request_end_ns, r.first_byte_ns, r.last_byte_ns]
        .into_iter()
        .flatten()
        .fold(r.start_ns, u64::max);
    (start, end)
}

/// The request's span first, then its phase children.
pub fn request_spans(r: &Request, c: &ConnFacts, pid: u32, held: &Held, offset: u64) -> Vec<Span> {
    let ids = TraceIds::random();
    let (start, end) = window(r);
    let inside = |ts: u64| ts.clamp(start, end) + offset;
    let mut events: Vec<_> = held
        .events
        .iter()
        .map(|(ts, cookie, what)| kernel_event(what, *cookie, inside(*ts)))
        .collect();
    events.extend(
        held.findings
            .iter()
            .map(|(ts, f)| finding_event(f, inside(*ts))),
    );
    // HTTP conventions: 5xx is a server span's error, 4xx too on a client's.
    let error = r.status.filter(|&s| s >= 500 || (r.outbound && s >= 400));
    let mut spans = vec![Span {
        trace_id: ids.trace_id.to_vec(),
        span_id: ids.root().to_vec(),
        flags: SAMPLED,
        name: r.method.into(),
        kind: if r.outbound {
            SpanKind::Client
        } else {
            SpanKind::Server
        } as i32,
        start_time_unix_nano: start + offset,
        end_time_unix_nano: end + offset,
        attributes: attributes(r, c, pid, error),
        events,
        dropped_events_count: held.dropped,
        status: error.map(|code| status_error(&format!("status {code}"))),
        ..Default::default()
    }];
    for (k, (name, a, b)) in phases(r).into_iter().enumerate() {
        let (root, phase) = (ids.root(), ids.phase(0, k));
        let (a, b) = (inside(a), inside(b.max(a)));
        spans.push(phase_span(&ids.trace_id, &phase, &root, name, a, b));
    }
    spans
}

fn attributes(r: &Request, c: &ConnFacts, pid: u32, error: Option<u16>) -> Vec<KeyValue> {
    let mut a = vec![
        text("http.request.method", r.method),
        text("url.path", r.target.clone()),
        int("tracer.process.pid", pid),
        int("tracer.request", r.number),
        int("tracer.connection", c.number),
        int("tracer.socket.cookie", r.cookie),
    ];
    reuse(&mut a, r.reused, r.reused_from.map(|n| n as u64), true);
    if r.host.is_some() && r.target.starts_with('/') {
        let url = Url {
            host: r.host.as_deref(),
            target: &r.target,
            https: c.plaintext,
        };
        a.push(text("url.full", url.to_string()));
    }
    // The server is the far end of a request made, this end of one answered.
    let server = if r.outbound { c.remote } else { c.local };
    if let Some(s) = server {
        a.push(text("server.address", s.ip().to_string()));
        a.push(int("server.port", s.port()));
    }
    peer(&mut a, c.remote);
    let code = error.map(|c| c.to_string());
    response(&mut a, Some(&r.version), r.status, code.as_deref());
    a
}

/// A finding no open request owns: a span of its own (INTERNAL, an
/// instant at `ts_ns`) named `tracer finding`, its connection's
/// attributes, the finding as its event.
pub fn finding_span(f: &Finding, c: Option<&Connection>, ts_ns: u64, offset: u64) -> Span {
    let ids = TraceIds::random();
    let mut attributes = Vec::new();
    if let Some(c) = c {
        attributes.push(int("tracer.process.pid", c.pid));
        attributes.push(int("tracer.connection", c.number));
        peer(&mut attributes, c.remote);
    }
    if let Some(cookie) = f.cookie {
        attributes.push(int("tracer.socket.cookie", cookie));
    }
    Span {
        trace_id: ids.trace_id.to_vec(),
        span_id: ids.root().to_vec(),
        flags: SAMPLED,
        name: "tracer finding".into(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: ts_ns + offset,
        end_time_unix_nano: ts_ns + offset,
        attributes,
        events: vec![finding_event(f, ts_ns + offset)],
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "spans_tests.rs"]
mod tests;
