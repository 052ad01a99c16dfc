//! Trace Event Format JSON: loads in Perfetto and chrome://tracing. One
//! track for client hooks, one per socket for kernel events, one for phases.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::json::event as event_json;
use crate::timeline::{Source, Trace};

const PID: u32 = 1;
const PHASES_TID: u64 = 1;
const CLIENT_TID: u64 = 2;

pub fn chrome(trace: &Trace) -> String {
    let origin = trace.requests.first().map(|t| t.info.start_ns).unwrap_or(0);
    let us = |ns: u64| ns.saturating_sub(origin) as f64 / 1000.0;
    let mut events = vec![
        meta("process_name", 0, "tracer"),
        meta("thread_name", PHASES_TID, "phases"),
        meta("thread_name", CLIENT_TID, "client hooks"),
    ];
    let mut socket_tids: BTreeMap<u64, u64> = BTreeMap::new();
    for t in &trace.requests {
        let mut at = t.info.start_ns;
        for (name, d) in t.phases.named().into_iter().take(5) {
            let Some(d) = d else { continue };
            events.push(json!({
                "name": format!("{name} (request {})", t.info.number), "ph": "X", "pid": PID,
                "tid": PHASES_TID, "ts": us(at), "dur": d as f64 / 1000.0,
            }));
            at += d;
        }
        for e in &t.events {
            let tid = match (e.source, e.cookie) {
                (Source::Kernel, Some(c)) => {
                    let next = 10 + socket_tids.len() as u64;
                    *socket_tids.entry(c).or_insert(next)
                }
                _ => CLIENT_TID,
            };
            events.push(json!({
                "name": e.name(), "ph": "i", "s": "t", "pid": PID, "tid": tid,
                "ts": us(e.ts_ns), "args": event_json(t, e),
            }));
        }
    }
    for (cookie, tid) in &socket_tids {
        events.push(meta("thread_name", *tid, &format!("socket {cookie}")));
    }
    let doc = json!({ "traceEvents": events, "displayTimeUnit": "ms" });
    format!("{doc}\n")
}

fn meta(kind: &str, tid: u64, name: &str) -> Value {
    json!({ "name": kind, "ph": "M", "pid": PID, "tid": tid, "args": { "name": name } })
}
