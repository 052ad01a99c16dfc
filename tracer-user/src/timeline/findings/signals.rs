//! `retransmit` and `reset`: what the kernel's TCP did on the request's
//! sockets (`tcp:tcp_retransmit_skb`, `tcp:tcp_send_reset`,
//! `tcp:tcp_receive_reset`), counted per socket.
use super::{Evidence, Finding, FindingKind};
use crate::{
    probes::{KernelDetail, SocketCookie},
    timeline::{EventBody, RequestTimeline},
};
use tracer_ebpf::tcp_state;

pub(super) fn signals(t: &RequestTimeline) -> Vec<Finding> {
    let mut out = Vec::new();
    // Retransmits: one finding per socket, with the count and the first.
    let mut cookies: Vec<SocketCookie> = Vec::new();
    for e in &t.events {
        if let (EventBody::Kernel(KernelDetail::Retransmit { .. }), Some(c)) = (&e.body, e.cookie)
            && !cookies.contains(&c)
        {
            cookies.push(c);
        }
    }
    for cookie in cookies {
        let seen: Vec<(u64, u32)> = t
            .events
            .iter()
            .filter(|e| e.cookie == Some(cookie))
            .filter_map(|e| match &e.body {
                EventBody::Kernel(KernelDetail::Retransmit { state }) => Some((e.ts_ns, *state)),
                _ => None,
            })
            .collect();
        let (first_ns, state) = seen[0];
        let at = first_ns.saturating_sub(t.info.start_ns) as f64 / 1e6;
        let state = tcp_state::name(state);
        let count = seen.len();
        let segments = if count == 1 { "segment" } else { "segments" };
        out.push(Finding {
            kind: FindingKind::Retransmit,
            request: Some(t.info.number),
            cookie: Some(cookie),
            evidence: vec![
                ("count", Evidence::Int(count as i64)),
                ("first_state", Evidence::Text(state.into())),
                ("first_at_us", Evidence::Int((at * 1000.0) as i64)),
            ],
            text: format!(
                "TCP sent {count} {segments} again, the first {at:.1} ms into the request \
                 (in {state})"
            ),
            hint: "packets were lost on the way: each loss costs a retransmit timeout \
                   (200 ms or more; 1 s for a SYN); look at the path and at `ss -ti`'s retrans"
                .into(),
        });
    }
    for e in &t.events {
        let EventBody::Kernel(KernelDetail::Reset { sent, state }) = &e.body else {
            continue;
        };
        let way = if *sent { "sent" } else { "received" };
        let state = tcp_state::name(*state);
        let at = e.ts_ns.saturating_sub(t.info.start_ns) as f64 / 1e6;
        out.push(Finding {
            kind: FindingKind::Reset,
            request: Some(t.info.number),
            cookie: e.cookie,
            evidence: vec![
                ("direction", Evidence::Text(way.into())),
                ("state", Evidence::Text(state.into())),
                ("at_us", Evidence::Int((at * 1000.0) as i64)),
            ],
            text: format!(
                "the connection was reset ({way}, in {state}) {at:.1} ms into the request"
            ),
            hint: if *sent {
                "this side aborted the connection: it closed with unread data, or answered a \
                 segment for a socket that was gone"
            } else {
                "the peer aborted the connection (SO_LINGER 0, a crash, a proxy or firewall \
                 dropping its state): look at the server's logs around that time"
            }
            .into(),
        });
    }
    out
}
