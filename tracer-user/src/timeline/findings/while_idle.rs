//! `new-connection-while-idle` in a trace: the process connected to a peer
//! while a connection of its own to that peer sat in the pool, its last
//! response read to the end (`PutIdleConn`), not closed by either side.
use super::{
    Finding,
    catalogue::{self, Subject, WhileIdle},
};
use crate::{
    probes::{KernelDetail, SocketCookie},
    timeline::{EventBody, OpenedConnection, RequestTimeline},
};

pub(super) fn new_while_idle(
    timelines: &[RequestTimeline],
    opened: &[OpenedConnection],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in opened.iter().filter(|c| c.ret == 0) {
        // The newest hand-back, before this connect, of another socket to
        // the same peer that was still open then.
        let idle = timelines
            .iter()
            .filter_map(|t| {
                let cookie = t.cookie.filter(|&k| k != c.cookie)?;
                if t.info.remote_addr != Some(c.remote) {
                    return None;
                }
                let back = client_ts(t, "PutIdleConn").filter(|&ts| ts <= c.ts_ns)?;
                (!closing_before(timelines, cookie, c.ts_ns)).then_some((t, cookie, back))
            })
            .filter(|(t, cookie, _)| !used_after(timelines, *cookie, t.info.number, c.ts_ns))
            .max_by_key(|(_, _, back)| *back);
        let Some((t, cookie, back)) = idle else {
            continue;
        };
        let at = Subject {
            request: c.ridden_by.first().copied().or(Some(c.during)),
            cookie: Some(c.cookie),
        };
        let w = WhileIdle {
            remote: c.remote,
            idle_cookie: cookie,
            idle_connection: None,
            idle_request: Some(t.info.number),
            idle_ns: c.ts_ns - back,
            new_connection: None,
        };
        out.push(catalogue::new_connection_while_idle(at, w));
    }
    out
}

/// A later request took the socket again before `ts`: it was not idle then.
fn used_after(timelines: &[RequestTimeline], cookie: SocketCookie, after: u32, ts: u64) -> bool {
    timelines
        .iter()
        .any(|r| r.cookie == Some(cookie) && r.info.number > after && r.info.start_ns <= ts)
}

/// The socket left ESTABLISHED (a FIN or RST either way), or was closed,
/// before `ts`.
fn closing_before(timelines: &[RequestTimeline], cookie: SocketCookie, ts: u64) -> bool {
    timelines.iter().flat_map(|t| &t.events).any(|e| {
        e.cookie == Some(cookie)
            && e.ts_ns <= ts
            && matches!(
                e.body,
                EventBody::Kernel(
                    KernelDetail::State { .. }
                        | KernelDetail::Close { .. }
                        | KernelDetail::Reset { .. }
                        | KernelDetail::Destroy
                )
            )
            && !is_open_state(&e.body)
    })
}

/// A state change into ESTABLISHED is its opening, not a close.
fn is_open_state(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::Kernel(KernelDetail::State { new, .. })
            if *new == tracer_ebpf::tcp_state::ESTABLISHED || *new == tracer_ebpf::tcp_state::SYN_SENT
    )
}

fn client_ts(t: &RequestTimeline, name: &str) -> Option<u64> {
    t.events
        .iter()
        .rev()
        .find(|e| matches!(&e.body, EventBody::Client(h) if h.name() == name))
        .map(|e| e.ts_ns)
}
