//! `delayed-ack-stall`: the server wrote the response head and the body in
//! two writes with Nagle on. The head leaves at once; the body, smaller than
//! an MSS, waits for the ACK of the head, which this side delays (at least
//! 40 ms on Linux). Seen in the kernel as a recv that is exactly the head,
//! then the next recv 35-250 ms later, with the request sent in full before.
//! On TLS the client's own marks say where the head ended (see `tls_head`).
use super::{
    Finding,
    catalogue::{self, SMALL_PART, STALL_NS, Subject},
    transfers,
};
use crate::timeline::{EventBody, RequestTimeline};

pub(super) fn stall(t: &RequestTimeline) -> Option<Finding> {
    t.info.status?;
    let cookie = t.cookie?;
    let recvs: Vec<(u64, i64)> = transfers(t, cookie, false).collect();
    let head = if t.info.url.starts_with("http://") {
        plain_head(t, &recvs)?
    } else {
        tls_head(t, &recvs)?
    };
    let ((head_ns, first), (next_ns, next)) = (recvs[head], *recvs.get(head + 1)?);
    let gap = next_ns.checked_sub(head_ns)?;
    // The request was sent in full before the answer began: no send of its
    // own could carry the ACK that the server waits for.
    let sending = transfers(t, cookie, true).any(|(ts, _)| ts > head_ns && ts < next_ns);
    if first >= i64::from(SMALL_PART) || sending || !STALL_NS.contains(&gap) {
        return None;
    }
    let at = Subject {
        request: Some(t.info.number),
        cookie: Some(cookie),
    };
    Some(catalogue::delayed_ack_stall(at, first, next, gap))
}

/// Plain HTTP: the kernel counts the HTTP bytes themselves, so the head is
/// what came in minus the body, and it must be the first recv exactly.
fn plain_head(t: &RequestTimeline, recvs: &[(u64, i64)]) -> Option<usize> {
    let received: i64 = recvs.iter().map(|(_, b)| b).sum();
    let head = received - i64::try_from(t.info.body_bytes).ok()?;
    (recvs.first()?.1 == head).then_some(0)
}

/// TLS: the kernel sees records, not HTTP. The response began in the last
/// recv before the client decrypted its first byte; the head was whole in
/// it when the client had the headers before the next recv came, and the
/// body was not, when the body ended only after it.
fn tls_head(t: &RequestTimeline, recvs: &[(u64, i64)]) -> Option<usize> {
    let first_byte = client_ts(t, "GotFirstResponseByte")?;
    let headers = client_ts(t, "GotResponseHeaders")?;
    let body_done = client_ts(t, "BodyDone")?;
    let head = recvs.iter().rposition(|(ts, _)| *ts <= first_byte)?;
    let next_ns = recvs.get(head + 1)?.0;
    (headers < next_ns && body_done >= next_ns).then_some(head)
}

fn client_ts(t: &RequestTimeline, name: &str) -> Option<u64> {
    t.events
        .iter()
        .find(|e| matches!(&e.body, EventBody::Client(h) if h.name() == name))
        .map(|e| e.ts_ns)
}
