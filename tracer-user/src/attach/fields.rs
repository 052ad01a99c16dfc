//! Kernel events as attach's JSON `event` lines (the fields come from render).
use serde_json::json;

use super::conns::Connection;
use crate::{
    probes::KernelEvent,
    render::{FieldSink, kernel_fields},
};

pub fn us(ns: u64) -> u64 {
    ns / 1000
}

/// The contract's `event` line for a kernel event (without `request`).
pub fn event_fields(
    m: &mut impl FieldSink,
    ev: &KernelEvent,
    conn: Option<&Connection>,
    start_ns: u64,
) {
    m.put("type", json!("event"));
    m.put("source", json!("kernel"));
    m.put("name", json!(ev.name()));
    m.put("ts_ns", json!(ev.ts_ns));
    m.put("offset_us", json!(us(ev.ts_ns.saturating_sub(start_ns))));
    m.put(
        "socket_cookie",
        json!((ev.cookie != 0).then_some(ev.cookie)),
    );
    m.put("pid", json!(ev.tgid));
    m.put("connection", json!(conn.map(|c| c.number)));
    kernel_fields(m, &ev.what, ev.tid);
}
