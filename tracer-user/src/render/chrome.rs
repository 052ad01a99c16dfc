//! Trace Event Format JSON: loads in Perfetto and chrome://tracing. trace
//! draws one track for client hooks, one per socket for kernel events, one
//! for phases; attach one per connection. Both write through [`ChromeTrace`].
use std::collections::BTreeMap;

use serde::Serialize;

use super::{json::event as event_json, records::Shown};
use crate::timeline::{Source, Trace};

const PID: u32 = 1;
const PHASES_TID: u64 = 1;
const CLIENT_TID: u64 = 2;

/// One trace event: `ph` "X" (a span, with `dur`), "i" (an instant, with
/// `s`), "M" (metadata: a track's name). `T` is the time unit's type: trace
/// writes fractional µs from its first request, attach whole µs.
#[derive(Serialize)]
pub struct ChromeEvent<N, A, T = f64> {
    pub name: N,
    pub ph: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s: Option<&'static str>,
    pub pid: u32,
    pub tid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<A>,
}

/// `{"name": ..}`: a metadata event's args.
#[derive(Serialize)]
pub struct TrackName<N> {
    pub name: N,
}

/// A track's name (`ph` "M").
pub fn track_name<N: Serialize>(
    kind: &'static str,
    pid: u32,
    tid: u64,
    name: N,
) -> ChromeEvent<&'static str, TrackName<N>> {
    ChromeEvent {
        name: kind,
        ph: "M",
        s: None,
        pid,
        tid,
        ts: None,
        dur: None,
        args: Some(TrackName { name }),
    }
}

/// The document, events written into one buffer as they come.
pub struct ChromeTrace {
    buf: Vec<u8>,
    events: usize,
}

impl Default for ChromeTrace {
    fn default() -> Self {
        Self {
            buf: b"{\"traceEvents\":[".to_vec(),
            events: 0,
        }
    }
}

impl ChromeTrace {
    pub fn push(&mut self, event: &impl Serialize) {
        let at = self.buf.len();
        if self.events > 0 {
            self.buf.push(b',');
        }
        // Fails only for a map key that is not a string: none here.
        if serde_json::to_writer(&mut self.buf, event).is_err() {
            self.buf.truncate(at);
            return;
        }
        self.events += 1;
    }

    /// The document, closed with `key: value` after the events, and a newline.
    pub fn finish(mut self, key: &str, value: &impl Serialize) -> Vec<u8> {
        self.buf.extend_from_slice(b"],");
        let _ = serde_json::to_writer(&mut self.buf, key);
        self.buf.push(b':');
        let _ = serde_json::to_writer(&mut self.buf, value);
        self.buf.extend_from_slice(b"}\n");
        self.buf
    }
}

pub fn chrome(trace: &Trace) -> String {
    let origin = trace.requests.first().map(|t| t.info.start_ns).unwrap_or(0);
    let us = |ns: u64| ns.saturating_sub(origin) as f64 / 1000.0;
    let mut doc = ChromeTrace::default();
    doc.push(&track_name("process_name", PID, 0, "tracer"));
    doc.push(&track_name("thread_name", PID, PHASES_TID, "phases"));
    doc.push(&track_name("thread_name", PID, CLIENT_TID, "client hooks"));
    let mut socket_tids: BTreeMap<u64, u64> = BTreeMap::new();
    for t in &trace.requests {
        let mut at = t.info.start_ns;
        for (name, d) in t.phases.named().into_iter().take(5) {
            let Some(d) = d else { continue };
            doc.push(&ChromeEvent::<_, (), _> {
                name: Shown(format_args!("{name} (request {})", t.info.number)),
                ph: "X",
                s: None,
                pid: PID,
                tid: PHASES_TID,
                ts: Some(us(at)),
                dur: Some(d as f64 / 1000.0),
                args: None,
            });
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
            doc.push(&ChromeEvent {
                name: e.name(),
                ph: "i",
                s: Some("t"),
                pid: PID,
                tid,
                ts: Some(us(e.ts_ns)),
                dur: None,
                args: Some(event_json(t, e)),
            });
        }
    }
    for (cookie, tid) in &socket_tids {
        doc.push(&track_name(
            "thread_name",
            PID,
            *tid,
            Shown(format_args!("socket {cookie}")),
        ));
    }
    String::from_utf8(doc.finish("displayTimeUnit", &"ms")).unwrap_or_default()
}
