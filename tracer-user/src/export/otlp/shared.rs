//! Span pieces that trace's and attach's spans write alike: a phase child,
//! the peer, the response and the connection's reuse, so that a request's
//! attributes mean one thing whichever command exported it.
use std::net::SocketAddr;

use opentelemetry_proto::tonic::{
    common::v1::KeyValue,
    trace::v1::{Span, span::SpanKind},
};

use super::attrs::{flag, int, text};

/// W3C trace flags: sampled.
pub const SAMPLED: u32 = 1;

/// A phase of a request: an INTERNAL child of span `parent`, from `start`
/// to `end` (unix ns).
pub fn phase_span(
    trace_id: &[u8],
    span_id: &[u8],
    parent: &[u8],
    name: &str,
    start: u64,
    end: u64,
) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.to_vec(),
        flags: SAMPLED,
        name: name.into(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end.max(start),
        ..Default::default()
    }
}

/// `network.peer.*` of the socket's far end.
pub fn peer(a: &mut Vec<KeyValue>, remote: Option<SocketAddr>) {
    if let Some(peer) = remote {
        a.push(text("network.peer.address", peer.ip().to_string()));
        a.push(int("network.peer.port", peer.port()));
    }
}

/// The response: `network.protocol.version` ("1.1", "2": the conventions'
/// spelling of `HTTP/1.1`, `HTTP/2.0`), the status and the error type.
pub fn response(
    a: &mut Vec<KeyValue>,
    version: Option<&str>,
    status: Option<u16>,
    error_type: Option<&str>,
) {
    if let Some(v) = version {
        let v = match v.trim_start_matches("HTTP/") {
            "2.0" => "2",
            "3.0" => "3",
            other => other,
        };
        a.push(text("network.protocol.version", v));
    }
    if let Some(status) = status {
        a.push(int("http.response.status_code", status));
    }
    if let Some(kind) = error_type {
        a.push(text("error.type", kind));
    }
}

/// `tracer.connection.*`: reused (and from which request), confirmed by
/// the kernel's socket cookie.
pub fn reuse(a: &mut Vec<KeyValue>, reused: bool, from: Option<u64>, kernel_confirmed: bool) {
    a.push(flag("tracer.connection.reused", reused));
    if let Some(from) = from {
        a.push(int("tracer.connection.reused_from_request", from));
    }
    a.push(flag("tracer.connection.kernel_confirmed", kernel_confirmed));
}
