//! `delayed-ack-stall`: the server wrote the response head and the body in
//! two writes with Nagle on. The head leaves at once; the body, smaller than
//! an MSS, waits for the ACK of the head, which this side delays (at least
//! 40 ms on Linux). Seen in the kernel as a recv that is exactly the head,
//! then the next recv 35-250 ms later, with the request sent in full before.
use super::{Evidence, Finding, FindingKind, transfers};
use crate::timeline::RequestTimeline;

/// A part smaller than this is smaller than one MSS on any path (Ethernet
/// with TCP timestamps); loopback's MSS is far larger.
const SMALL_PART: i64 = 1448;
/// Linux's minimum delayed-ACK timeout is 40 ms, its maximum 200 ms; the
/// margins take the server's and the scheduler's slack.
const STALL_NS: std::ops::RangeInclusive<u64> = 35_000_000..=250_000_000;

pub(super) fn stall(t: &RequestTimeline) -> Option<Finding> {
    // The head's length is what came in minus the body: only in plaintext,
    // where the kernel counts the HTTP bytes themselves.
    if !t.info.url.starts_with("http://") || t.info.status.is_none() {
        return None;
    }
    let cookie = t.cookie?;
    let recvs: Vec<(u64, i64)> = transfers(t, cookie, false).collect();
    let received: i64 = recvs.iter().map(|(_, b)| b).sum();
    let head = received - i64::try_from(t.info.body_bytes).ok()?;
    let (&(head_ns, first), &(next_ns, next)) = (recvs.first()?, recvs.get(1)?);
    let last_send = transfers(t, cookie, true).map(|(ts, _)| ts).max()?;
    let gap = next_ns.checked_sub(head_ns)?;
    let holds = first == head && first < SMALL_PART && last_send < head_ns;
    if !holds || !STALL_NS.contains(&gap) {
        return None;
    }
    let ms = gap as f64 / 1e6;
    Some(Finding {
        kind: FindingKind::DelayedAckStall,
        request: Some(t.info.number),
        cookie: Some(cookie),
        evidence: vec![
            ("head_bytes", Evidence::Int(first)),
            ("next_bytes", Evidence::Int(next)),
            ("stall_us", Evidence::Int((gap / 1000) as i64)),
        ],
        text: format!(
            "recv {first} B (the response head, alone), then recv {next} B {ms:.1} ms later: \
             the server's second write waited for the ACK this side delayed"
        ),
        hint: "write the response head and body in one write, or set TCP_NODELAY on the server"
            .into(),
    })
}
