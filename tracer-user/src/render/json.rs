//! JSON Lines, the contract of DESIGN.md: `event`, `request`, `summary`.
use serde_json::{Map, Value, json};

use super::kernel_detail;
use crate::{
    client::Hook,
    probes::KernelDetail,
    timeline::{EventBody, RequestTimeline, TimelineEvent, Trace},
};

pub fn json_lines(trace: &Trace) -> String {
    let mut out = String::new();
    let mut line = |v: Value| {
        out.push_str(&v.to_string());
        out.push('\n');
    };
    for t in &trace.requests {
        for e in &t.events {
            line(event(t, e));
        }
        line(request(t));
    }
    let s = &trace.summary;
    line(json!({
        "type": "summary",
        "requests": s.requests,
        "connections": s.connections,
        "reused": s.reused,
        "failed": s.failed,
        "lost_events": s.lost_events,
        "kernel": trace.kernel,
        "verdict": s.verdict.as_str(),
    }));
    out
}

pub fn event(t: &RequestTimeline, e: &TimelineEvent) -> Value {
    let mut v = json!({
        "type": "event",
        "request": t.info.number,
        "source": e.source.as_str(),
        "name": e.name(),
        "ts_ns": e.ts_ns,
        "offset_us": e.ts_ns.saturating_sub(t.info.start_ns) / 1000,
        "socket_cookie": e.cookie,
    });
    let Value::Object(m) = &mut v else { return v };
    match &e.body {
        EventBody::Client(h) => client_fields(m, h),
        EventBody::Kernel(k) => kernel_fields(m, k, e.tid),
        EventBody::Derived(_) => {
            m.insert("derived".into(), json!(true));
        }
    }
    v
}

fn client_fields(m: &mut Map<String, Value>, h: &Hook) {
    m.insert("detail".into(), json!(h.detail()));
    match h {
        Hook::GotConn {
            reused,
            was_idle,
            idle_time_ns,
            local_addr,
            remote_addr,
        } => {
            m.insert("reused".into(), json!(reused));
            m.insert("was_idle".into(), json!(was_idle));
            m.insert("idle_time_ns".into(), json!(idle_time_ns));
            m.insert(
                "local_addr".into(),
                json!(local_addr.map(|a| a.to_string())),
            );
            m.insert(
                "remote_addr".into(),
                json!(remote_addr.map(|a| a.to_string())),
            );
        }
        Hook::GotResponseHeaders { status, .. } => {
            m.insert("status".into(), json!(status));
        }
        Hook::BodyDone { bytes } => {
            m.insert("bytes".into(), json!(bytes));
        }
        Hook::DNSDone { error: Some(e), .. }
        | Hook::ConnectDone { error: Some(e), .. }
        | Hook::TLSHandshakeDone { error: Some(e), .. }
        | Hook::PutIdleConn { error: Some(e) } => {
            m.insert("error".into(), json!(e));
        }
        _ => {}
    }
}

/// The kernel event's own fields of an `event` line (shared with attach).
/// Where the fields of an object go: a `serde_json` map, or a [`JsonLine`]
/// written straight out (attach writes one per event, where building a map
/// cost more than everything else).
pub trait FieldSink {
    fn put(&mut self, key: &'static str, value: Value);
}

impl FieldSink for Map<String, Value> {
    fn put(&mut self, key: &'static str, value: Value) {
        self.insert(key.into(), value);
    }
}

/// One JSON object, fields in the order they are put, no map in between.
pub struct JsonLine {
    buf: Vec<u8>,
}

impl Default for JsonLine {
    fn default() -> Self {
        Self { buf: b"{".to_vec() }
    }
}

impl JsonLine {
    pub fn finish(mut self) -> String {
        self.buf.push(b'}');
        // serde_json writes UTF-8 and the keys are ASCII.
        String::from_utf8(self.buf).unwrap_or_default()
    }
}

impl FieldSink for JsonLine {
    fn put(&mut self, key: &'static str, value: Value) {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
        let _ = serde_json::to_writer(&mut self.buf, &value);
    }
}

pub fn kernel_fields(m: &mut impl FieldSink, k: &KernelDetail, tid: u32) {
    let proto = |p: u16| {
        json!(if p == tracer_ebpf::IPPROTO_UDP {
            "udp"
        } else {
            "tcp"
        })
    };
    m.put("detail", json!(kernel_detail(k)));
    m.put("tid", json!(tid));
    match k {
        KernelDetail::Connect {
            fd,
            ret,
            remote,
            duration_ns,
        } => {
            // -1: not known on this architecture.
            m.put("fd", if *fd >= 0 { json!(fd) } else { Value::Null });
            m.put("ret", json!(ret));
            m.put("remote_addr", json!(remote.to_string()));
            m.put("duration_ns", json!(duration_ns));
        }
        KernelDetail::State {
            old,
            new,
            local,
            remote,
        } => {
            m.put("old", json!(tracer_ebpf::tcp_state::name(*old)));
            m.put("new", json!(tracer_ebpf::tcp_state::name(*new)));
            m.put("local_addr", json!(local.to_string()));
            m.put("remote_addr", json!(remote.to_string()));
        }
        KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
            m.put("bytes", json!(bytes));
            m.put("protocol", proto(*protocol));
        }
        KernelDetail::Close { fd } => {
            m.put("fd", json!(fd));
        }
        KernelDetail::Destroy => {
            m.put("freed", json!(true));
        }
        KernelDetail::Socket {
            local,
            remote,
            protocol,
        } => {
            m.put("local_addr", json!(local.to_string()));
            m.put("remote_addr", json!(remote.to_string()));
            m.put("protocol", proto(*protocol));
        }
        KernelDetail::Payload { .. } => {}
        KernelDetail::DnsStart { host } => {
            m.put("host", json!(host));
        }
        KernelDetail::DnsDone {
            host,
            ret,
            duration_ns,
        } => {
            m.put("host", json!(host));
            m.put("ret", json!(ret));
            m.put("duration_ns", json!(duration_ns));
        }
    }
}

/// `{"Name": "value"}`; a header given twice has its values joined by ", ".
fn headers(list: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (name, value) in list {
        match m.get_mut(name) {
            Some(Value::String(s)) => {
                s.push_str(", ");
                s.push_str(value);
            }
            _ => {
                m.insert(name.clone(), json!(value));
            }
        }
    }
    Value::Object(m)
}

fn request(t: &RequestTimeline) -> Value {
    let i = &t.info;
    let phases: Map<String, Value> = t
        .phases
        .named()
        .iter()
        .map(|(name, d)| (name.to_string(), json!(d.map(|d| d / 1000))))
        .collect();
    json!({
        "type": "request",
        "request": i.number,
        "method": i.method,
        "url": i.url,
        "headers": headers(&i.headers),
        "status": i.status,
        "error": i.error,
        "local_addr": i.local_addr.map(|a| a.to_string()),
        "remote_addr": i.remote_addr.map(|a| a.to_string()),
        "socket_cookie": t.cookie,
        "reused": t.verdict.reused,
        "kernel_confirmed": t.verdict.kernel_confirmed,
        "client_reused": i.client_reused,
        "reused_from": t.verdict.reused_from,
        "disagreement": t.verdict.disagreement,
        "body_bytes": i.body_bytes,
        "phases_us": phases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_says_what_the_map_says() {
        let events = [
            KernelDetail::Send {
                bytes: 78,
                protocol: 6,
            },
            KernelDetail::DnsStart {
                host: "a\"b\\c\n".into(),
            },
            KernelDetail::Destroy,
        ];
        for k in &events {
            let (mut line, mut map) = (JsonLine::default(), Map::new());
            kernel_fields(&mut line, k, 7);
            kernel_fields(&mut map, k, 7);
            let parsed: Value = serde_json::from_str(&line.finish()).expect("valid JSON");
            assert_eq!(parsed, Value::Object(map));
        }
    }
}
