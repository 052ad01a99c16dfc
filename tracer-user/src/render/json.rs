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
pub fn kernel_fields(m: &mut Map<String, Value>, k: &KernelDetail, tid: u32) {
    let proto = |p: u16| {
        json!(if p == tracer_ebpf::IPPROTO_UDP {
            "udp"
        } else {
            "tcp"
        })
    };
    m.insert("detail".into(), json!(kernel_detail(k)));
    m.insert("tid".into(), json!(tid));
    match k {
        KernelDetail::Connect {
            fd,
            ret,
            remote,
            duration_ns,
        } => {
            m.insert("fd".into(), json!(fd));
            m.insert("ret".into(), json!(ret));
            m.insert("remote_addr".into(), json!(remote.to_string()));
            m.insert("duration_ns".into(), json!(duration_ns));
        }
        KernelDetail::State {
            old,
            new,
            local,
            remote,
        } => {
            m.insert("old".into(), json!(tracer_ebpf::tcp_state::name(*old)));
            m.insert("new".into(), json!(tracer_ebpf::tcp_state::name(*new)));
            m.insert("local_addr".into(), json!(local.to_string()));
            m.insert("remote_addr".into(), json!(remote.to_string()));
        }
        KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
            m.insert("bytes".into(), json!(bytes));
            m.insert("protocol".into(), proto(*protocol));
        }
        KernelDetail::Close { fd } => {
            m.insert("fd".into(), json!(fd));
        }
        KernelDetail::Destroy => {
            m.insert("freed".into(), json!(true));
        }
        KernelDetail::Socket {
            local,
            remote,
            protocol,
        } => {
            m.insert("local_addr".into(), json!(local.to_string()));
            m.insert("remote_addr".into(), json!(remote.to_string()));
            m.insert("protocol".into(), proto(*protocol));
        }
        KernelDetail::Payload { .. } => {}
        KernelDetail::DnsStart { host } => {
            m.insert("host".into(), json!(host));
        }
        KernelDetail::DnsDone {
            host,
            ret,
            duration_ns,
        } => {
            m.insert("host".into(), json!(host));
            m.insert("ret".into(), json!(ret));
            m.insert("duration_ns".into(), json!(duration_ns));
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
