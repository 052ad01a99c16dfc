//! Kernel events as JSON fields and as short text.
use serde_json::{Map, Value, json};

use super::conns::Connection;
use crate::probes::{KernelDetail, KernelEvent};

pub fn us(ns: u64) -> u64 {
    ns / 1000
}

/// The contract's `event` line for a kernel event (without `request`).
pub fn event_fields(
    ev: &KernelEvent,
    conn: Option<&Connection>,
    start_ns: u64,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!("event"));
    m.insert("source".into(), json!("kernel"));
    m.insert("name".into(), json!(ev.name()));
    m.insert("ts_ns".into(), json!(ev.ts_ns));
    m.insert(
        "offset_us".into(),
        json!(us(ev.ts_ns.saturating_sub(start_ns))),
    );
    m.insert(
        "socket_cookie".into(),
        json!((ev.cookie != 0).then_some(ev.cookie)),
    );
    m.insert("pid".into(), json!(ev.tgid));
    m.insert("tid".into(), json!(ev.tid));
    m.insert("connection".into(), json!(conn.map(|c| c.number)));
    let f = |m: &mut Map<String, Value>, k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    match &ev.what {
        KernelDetail::Connect {
            fd,
            ret,
            remote,
            duration_ns,
        } => {
            f(&mut m, "fd", json!(fd));
            f(&mut m, "ret", json!(ret));
            f(&mut m, "remote_addr", json!(remote.to_string()));
            f(&mut m, "duration_ns", json!(duration_ns));
        }
        KernelDetail::State {
            old,
            new,
            local,
            remote,
        } => {
            f(&mut m, "old", json!(tracer_ebpf::tcp_state::name(*old)));
            f(&mut m, "new", json!(tracer_ebpf::tcp_state::name(*new)));
            f(&mut m, "local_addr", json!(local.to_string()));
            f(&mut m, "remote_addr", json!(remote.to_string()));
        }
        KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
            f(&mut m, "bytes", json!(bytes));
            f(
                &mut m,
                "protocol",
                json!(if *protocol == 17 { "udp" } else { "tcp" }),
            );
        }
        KernelDetail::Close { fd } => f(&mut m, "fd", json!(fd)),
        KernelDetail::Socket {
            local,
            remote,
            protocol,
        } => {
            f(&mut m, "local_addr", json!(local.to_string()));
            f(&mut m, "remote_addr", json!(remote.to_string()));
            f(
                &mut m,
                "protocol",
                json!(if *protocol == 17 { "udp" } else { "tcp" }),
            );
        }
        KernelDetail::DnsStart { host } => f(&mut m, "host", json!(host)),
        KernelDetail::DnsDone {
            host,
            ret,
            duration_ns,
        } => {
            f(&mut m, "host", json!(host));
            f(&mut m, "ret", json!(ret));
            f(&mut m, "duration_ns", json!(duration_ns));
        }
        _ => {}
    }
    m
}

/// A short text for a kernel event, without its cookie or thread.
pub fn detail_text(k: &KernelDetail) -> String {
    let proto = |p: &u16| if *p == 17 { " udp" } else { "" };
    match k {
        KernelDetail::Connect {
            fd,
            ret,
            remote,
            duration_ns,
        } => match *ret {
            0 | -115 => format!("fd={fd} -> {remote} ({:.3} ms)", *duration_ns as f64 / 1e6),
            err => format!("fd={fd} -> {remote} failed: errno {}", -err),
        },
        KernelDetail::State {
            old,
            new,
            local,
            remote,
        } => format!(
            "{} -> {}  {local} -> {remote}",
            tracer_ebpf::tcp_state::name(*old),
            tracer_ebpf::tcp_state::name(*new)
        ),
        KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
            if *bytes >= 0 {
                format!("{bytes} B{}", proto(protocol))
            } else {
                format!("failed: errno {}{}", -bytes, proto(protocol))
            }
        }
        KernelDetail::Close { fd } => format!("fd={fd}"),
        KernelDetail::Destroy => "socket freed".to_string(),
        KernelDetail::Socket {
            local,
            remote,
            protocol,
        } => format!(
            "first seen {local} -> {remote}{}",
            if *protocol == 17 { " udp" } else { " tcp" }
        ),
        KernelDetail::Payload { len, .. } => format!("{len} B"),
        KernelDetail::DnsStart { host } => format!("getaddrinfo {host}"),
        KernelDetail::DnsDone {
            host,
            ret,
            duration_ns,
        } => format!(
            "getaddrinfo {host} -> {} in {:.3} ms",
            if *ret == 0 {
                "ok".to_string()
            } else {
                format!("error {ret}")
            },
            *duration_ns as f64 / 1e6
        ),
    }
}
