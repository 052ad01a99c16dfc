//! attach's Chrome trace events: an instant per kernel event and a span
//! per request, one track per connection.
use serde::Serialize;

use super::{json::us, summary::Figures};
use crate::{
    attach::conns::{Connection, Request},
    probes::KernelEvent,
    render::{
        ChromeEvent, ChromeTrace,
        records::{EventLine, Shown},
        track_name,
    },
};

pub(super) fn instant<'a>(
    ev: &KernelEvent,
    conn: Option<&Connection>,
    line: EventLine<'a>,
) -> ChromeEvent<&'static str, EventLine<'a>, u64> {
    ChromeEvent {
        name: ev.name(),
        ph: "i",
        s: Some("t"),
        pid: ev.tgid,
        tid: conn.map_or(0, |c| c.number as u64),
        ts: Some(us(ev.ts_ns)),
        dur: None,
        args: Some(line),
    }
}

/// "GET /path".
pub(super) struct SpanName<'a>(&'a Request);

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0.method, self.0.target)
    }
}

#[derive(Serialize)]
pub(super) struct SpanArgs {
    request: usize,
    status: Option<u16>,
    reused: bool,
}

pub(super) fn span<'a>(
    r: &'a Request,
    c: &Connection,
) -> ChromeEvent<Shown<SpanName<'a>>, SpanArgs, u64> {
    let total = r.phases().total.unwrap_or(0);
    ChromeEvent {
        name: Shown(SpanName(r)),
        ph: "X",
        s: None,
        pid: c.pid,
        tid: c.number as u64,
        ts: Some(us(r.start_ns)),
        dur: Some(us(total).max(1)),
        args: Some(SpanArgs {
            request: r.number,
            status: r.status,
            reused: r.reused,
        }),
    }
}

#[derive(Serialize)]
struct OtherData<'a> {
    summary: ChromeSummary<'a>,
}

#[derive(Serialize)]
struct ChromeSummary<'a> {
    connections: usize,
    ended: &'a str,
    lost_events: u64,
    requests: Option<usize>,
    reused: Option<usize>,
    verdict: &'a str,
}

/// The document: the events so far, a track name per connection, and the
/// summary's figures.
pub(super) fn finish(mut doc: ChromeTrace, f: &Figures, pid: u32) -> Vec<u8> {
    for c in &f.listed {
        let name = Shown(format_args!("conn {} cookie {}", c.number, c.cookie));
        doc.push(&track_name("thread_name", pid, c.number as u64, name));
    }
    let summary = ChromeSummary {
        connections: f.connections,
        ended: f.ended,
        lost_events: f.lost_total,
        requests: f.requests,
        reused: f.reused,
        verdict: f.verdict,
    };
    doc.finish("otherData", &OtherData { summary })
}
