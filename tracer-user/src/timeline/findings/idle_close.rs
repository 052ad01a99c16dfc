//! `server-closed-idle`: the server closed (FIN or RST) a connection that
//! the client had pooled for reuse. The idle time the server allowed runs
//! from the last byte of the last response to the FIN, both kernel stamps.
use super::{
    Finding,
    catalogue::{self, AfterClose, Subject},
    transfers,
};
use crate::probes::SocketCookie;
use crate::{
    probes::KernelDetail,
    timeline::{EventBody, RequestTimeline},
};
use tracer_ebpf::tcp_state::{CLOSE, CLOSE_WAIT, ESTABLISHED};

pub(super) fn closed_idle(timelines: &[RequestTimeline]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, t) in timelines.iter().enumerate() {
        let Some(cookie) = t.cookie else { continue };
        // The last request on this socket holds its end (join gives a
        // socket's events to the latest request that used it).
        if timelines[i + 1..].iter().any(|r| r.cookie == Some(cookie)) {
            continue;
        }
        // Pooled: the client kept the connection for reuse (a response with
        // `Connection: close` or HTTP/1.0 is not pooled).
        let pooled = t
            .events
            .iter()
            .any(|e| matches!(&e.body, EventBody::Client(h) if h.name() == "PutIdleConn"));
        let peer_close = peer_close(t, cookie);
        let (Some((close_ns, how)), true) = (peer_close, pooled) else {
            continue;
        };
        let Some(last_ns) = transfers(t, cookie, false)
            .map(|(ts, _)| ts)
            .filter(|&ts| ts <= close_ns)
            .max()
        else {
            continue;
        };
        // The client spoke after the response (a TLS close_notify as it
        // shut the connection down): the server's FIN answered that, it did
        // not end an idle connection.
        if transfers(t, cookie, true).any(|(ts, _)| ts > last_ns && ts <= close_ns) {
            continue;
        }
        let idle = close_ns - last_ns;
        let after = match timelines.get(i + 1) {
            Some(n) => AfterClose::Next {
                request: n.info.number,
                new_connection: !n.verdict.reused,
            },
            None => AfterClose::None,
        };
        let at = Subject {
            request: Some(t.info.number),
            cookie: Some(cookie),
        };
        out.push(catalogue::server_closed_idle(at, idle, how == "RST", after));
    }
    out
}

/// When and how the peer ended the socket: ESTABLISHED -> CLOSE_WAIT is its
/// FIN, ESTABLISHED -> CLOSE its RST.
fn peer_close(t: &RequestTimeline, cookie: SocketCookie) -> Option<(u64, &'static str)> {
    t.events.iter().find_map(|e| match &e.body {
        EventBody::Kernel(KernelDetail::State { old, new, .. })
            if e.cookie == Some(cookie) && *old == ESTABLISHED =>
        {
            match *new {
                CLOSE_WAIT => Some((e.ts_ns, "FIN")),
                CLOSE => Some((e.ts_ns, "RST")),
                _ => None,
            }
        }
        _ => None,
    })
}

/// The same close, met by the next request: it was written on the kept
/// connection as the server's FIN was on its way, and failed. The server
/// closed a connection it had not said it would close.
pub(super) fn closed_under_request(timelines: &[RequestTimeline]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, t) in timelines.iter().enumerate() {
        let (Some(cookie), Some(from), Some(_)) = (t.cookie, t.verdict.reused_from, &t.info.error)
        else {
            continue;
        };
        let Some(prev) = timelines[..i]
            .iter()
            .rev()
            .find(|p| p.cookie == Some(cookie))
        else {
            continue;
        };
        let (Some((close_ns, how)), Some(last_ns)) = (
            peer_close(t, cookie),
            transfers(prev, cookie, false).map(|(ts, _)| ts).max(),
        ) else {
            continue;
        };
        let Some(idle) = close_ns.checked_sub(last_ns) else {
            continue;
        };
        let at = Subject {
            request: Some(t.info.number),
            cookie: Some(cookie),
        };
        let after = AfterClose::Failed {
            request: t.info.number,
            from,
        };
        out.push(catalogue::server_closed_idle(at, idle, how == "RST", after));
    }
    out
}
