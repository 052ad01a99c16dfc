//! JSON Lines, the README's contract: `event`, `request`, `finding`, `summary`.
use serde_json::{Map, Value, json};

use super::{FieldSink, KernelDetailText};
use crate::{
    client::Hook,
    probes::KernelDetail,
    timeline::{EventBody, Evidence, Finding, RequestTimeline, TimelineEvent, Trace},
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
    for f in &trace.findings {
        line(finding(f));
    }
    let s = &trace.summary;
    let findings: Map<String, Value> = s
        .findings
        .iter()
        .map(|(k, n)| ((*k).to_string(), json!(n)))
        .collect();
    line(json!({
        "type": "summary",
        "requests": s.requests,
        "connections": s.connections,
        "connections_opened": s.connections_opened,
        "connections_unused": s.connections_unused,
        "findings": findings,
        "reused": s.reused,
        "failed": s.failed,
        "lost_events": s.lost_events,
        "kernel": trace.kernel,
        "verdict": s.verdict.as_str(),
    }));
    out
}

/// `{"type":"finding","kind":..,"request":..,"socket_cookie":..,"evidence":{..},"hint":..}`.
pub fn finding(f: &Finding) -> Value {
    let evidence: Map<String, Value> = f
        .evidence
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Evidence::Int(n) => json!(n),
                Evidence::Text(s) => json!(s),
            };
            ((*k).to_string(), v)
        })
        .collect();
    json!({
        "type": "finding",
        "kind": f.kind.as_str(),
        "request": f.request,
        "socket_cookie": f.cookie,
        "evidence": evidence,
        "detail": f.text,
        "hint": f.hint,
    })
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
        EventBody::Derived(_) => {}
    }
    if e.derived {
        m.insert("derived".into(), json!(true));
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
pub fn kernel_fields(m: &mut impl FieldSink, k: &KernelDetail, tid: u32) {
    let proto = |p: u16| {
        if p == tracer_ebpf::IPPROTO_UDP {
            "udp"
        } else {
            "tcp"
        }
    };
    m.display("detail", &KernelDetailText(k));
    m.u64("tid", tid.into());
    match k {
        KernelDetail::Connect {
            fd,
            ret,
            remote,
            duration_ns,
        } => {
            // -1: not known on this architecture.
            if *fd >= 0 {
                m.i64("fd", (*fd).into());
            } else {
                m.null("fd");
            }
            m.i64("ret", (*ret).into());
            m.display("remote_addr", remote);
            m.u64("duration_ns", *duration_ns);
        }
        KernelDetail::State {
            old,
            new,
            local,
            remote,
        } => {
            m.str("old", tracer_ebpf::tcp_state::name(*old));
            m.str("new", tracer_ebpf::tcp_state::name(*new));
            m.display("local_addr", local);
            m.display("remote_addr", remote);
        }
        KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
            m.i64("bytes", (*bytes).into());
            m.str("protocol", proto(*protocol));
        }
        KernelDetail::Close { fd } => m.i64("fd", (*fd).into()),
        KernelDetail::Destroy => m.bool("freed", true),
        KernelDetail::Retransmit { state } => m.str("state", tracer_ebpf::tcp_state::name(*state)),
        KernelDetail::Reset { sent, state } => {
            m.str("direction", if *sent { "sent" } else { "received" });
            m.str("state", tracer_ebpf::tcp_state::name(*state));
        }
        KernelDetail::Socket {
            local,
            remote,
            protocol,
        } => {
            m.display("local_addr", local);
            m.display("remote_addr", remote);
            m.str("protocol", proto(*protocol));
        }
        KernelDetail::Payload { .. } | KernelDetail::SegmentEnd(_) => {}
        KernelDetail::DnsStart { host } => m.str("host", host),
        KernelDetail::DnsDone {
            host,
            ret,
            duration_ns,
        } => {
            m.str("host", host);
            m.i64("ret", (*ret).into());
            m.u64("duration_ns", *duration_ns);
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
    use proptest::prelude::*;

    use super::{super::reference, *};
    use crate::render::JsonLine;

    proptest! {
        /// The kernel fields, written straight out, are the bytes the
        /// `json!` values made before; the map (trace mode) holds the same.
        #[test]
        fn kernel_fields_are_written_as_before(k in reference::kernel_detail_strategy(), tid in any::<u32>()) {
            let mut buf = Vec::new();
            let mut line = JsonLine::new(&mut buf);
            kernel_fields(&mut line, &k, tid);
            line.end();
            let mut before = reference::Fields::default();
            reference::kernel_fields(&mut before, &k, tid);
            let text = String::from_utf8(buf).unwrap_or_default();
            prop_assert_eq!(&text, &before.line());
            let mut map = Map::new();
            kernel_fields(&mut map, &k, tid);
            let parsed: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed, Value::Object(map));
        }
    }
}
