//! attach's requests as OpenTelemetry spans: one trace per request, SERVER
//! for a request the traced process answered, CLIENT for one it made, a
//! resource per traced process. Sent through the exporter's bounded queue.
use std::collections::HashMap;

use opentelemetry_proto::tonic::trace::v1::{
    Span, Status,
    span::{Event, SpanKind},
    status::StatusCode,
};

use crate::{
    attach::conns::{Connection, Request},
    export::otlp::{SpanQueue, SpanSource, TraceIds, flag, int, text},
    render::records::Url,
};

pub struct AttachOtlp {
    queue: SpanQueue,
    unix_offset_ns: u64,
    /// Executable names by pid, read from /proc once each.
    names: HashMap<u32, String>,
    /// (exported, dropped), once the queue is finished.
    pub counts: Option<(u64, u64)>,
}

impl AttachOtlp {
    pub fn new(queue: SpanQueue) -> Self {
        AttachOtlp {
            queue,
            unix_offset_ns: crate::clock::unix_offset_ns(),
            names: HashMap::new(),
            counts: None,
        }
    }

    pub fn request(&mut self, r: &Request, c: &Connection, pid: u32) {
        let executable = self
            .names
            .entry(pid)
            .or_insert_with(|| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_default()
            })
            .clone();
        let span = span(r, c, pid, self.unix_offset_ns);
        self.queue.push(SpanSource { pid, executable }, span);
    }

    pub async fn finish(&mut self) {
        self.counts = Some(self.queue.finish().await);
    }
}

fn span(r: &Request, c: &Connection, pid: u32, offset: u64) -> Span {
    let ids = TraceIds::random();
    let end = r
        .last_byte_ns
        .or(r.first_byte_ns)
        .unwrap_or(r.start_ns)
        .max(r.start_ns);
    let mut a = vec![
        text("http.request.method", r.method),
        text("url.path", r.target.clone()),
        int("tracer.process.pid", pid),
        int("tracer.request", r.number),
        int("tracer.connection", c.number),
        int("tracer.socket.cookie", r.cookie),
        flag("tracer.connection.reused", r.reused),
        flag("tracer.connection.kernel_confirmed", true),
    ];
    if r.host.is_some() && r.target.starts_with('/') {
        let url = Url {
            host: r.host.as_deref(),
            target: &r.target,
            // OpenSSL's plaintext: the request went over TLS.
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
    if let Some(peer) = c.remote {
        a.push(text("network.peer.address", peer.ip().to_string()));
        a.push(int("network.peer.port", peer.port()));
    }
    let version = r.version.trim_start_matches("HTTP/");
    a.push(text("network.protocol.version", version));
    if let Some(status) = r.status {
        a.push(int("http.response.status_code", status));
    }
    // HTTP conventions: 5xx is a server span's error, 4xx too on a client's.
    let error = r.status.filter(|&s| s >= 500 || (r.outbound && s >= 400));
    if let Some(code) = error {
        a.push(text("error.type", code.to_string()));
    }
    let events = r
        .first_byte_ns
        .map(|ts| Event {
            time_unix_nano: ts + offset,
            name: "GotFirstResponseByte".into(),
            ..Default::default()
        })
        .into_iter()
        .collect();
    Span {
        trace_id: ids.trace_id.to_vec(),
        span_id: ids.root().to_vec(),
        flags: 1,
        name: r.method.into(),
        kind: if r.outbound {
            SpanKind::Client
        } else {
            SpanKind::Server
        } as i32,
        start_time_unix_nano: r.start_ns + offset,
        end_time_unix_nano: end + offset,
        attributes: a,
        events,
        status: error.map(|code| Status {
            message: format!("status {code}"),
            code: StatusCode::Error as i32,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a bad literal should fail the test loudly"
)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    use super::*;

    fn answered(status: u16) -> (Request, Connection) {
        let r = Request {
            number: 1,
            connection: 0,
            cookie: 9,
            method: "POST",
            target: "/orders?id=1".into(),
            host: Some("shop:8080".into()),
            version: "HTTP/1.1".into(),
            outbound: false,
            status: Some(status),
            interim: None,
            start_ns: 1_000,
            first_byte_ns: Some(1_500),
            last_byte_ns: Some(1_800),
            bytes_sent: 120,
            bytes_received: 78,
            reused: false,
        };
        let c = Connection {
            number: 1,
            local: Some("10.0.0.1:8080".parse().unwrap()),
            remote: Some("10.0.0.2:40000".parse().unwrap()),
            ..Connection::default()
        };
        (r, c)
    }

    fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a Value> {
        let kv = s.attributes.iter().find(|kv| kv.key == key)?;
        kv.value.as_ref()?.value.as_ref()
    }

    #[test]
    fn a_request_the_process_answered_is_a_server_span_on_its_own_address() {
        let (r, c) = answered(503);
        let s = span(&r, &c, 42, 10);
        assert_eq!(s.kind, SpanKind::Server as i32);
        assert_eq!(
            (s.start_time_unix_nano, s.end_time_unix_nano),
            (1_010, 1_810)
        );
        let text = |v: &str| Some(Value::StringValue(v.into()));
        assert_eq!(attr(&s, "server.address").cloned(), text("10.0.0.1"));
        assert_eq!(attr(&s, "server.port"), Some(&Value::IntValue(8080)));
        assert_eq!(attr(&s, "network.peer.address").cloned(), text("10.0.0.2"));
        assert_eq!(
            attr(&s, "url.full").cloned(),
            text("http://shop:8080/orders?id=1")
        );
        assert_eq!(attr(&s, "tracer.process.pid"), Some(&Value::IntValue(42)));
        assert_eq!(attr(&s, "error.type").cloned(), text("503"));
        assert_eq!(s.status.map(|st| st.code), Some(StatusCode::Error as i32));
        // A 404 is the client's error, not the server's.
        let (r, c) = answered(404);
        assert_eq!(attr(&span(&r, &c, 42, 10), "error.type"), None);
    }
}
