//! Kernel events as attach's JSON `event` lines (the fields come from render).
use serde_json::{Map, Value, json};

use super::conns::Connection;
use crate::{probes::KernelEvent, render::kernel_fields};

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
    m.insert("connection".into(), json!(conn.map(|c| c.number)));
    kernel_fields(&mut m, &ev.what, ev.tid);
    m
}
