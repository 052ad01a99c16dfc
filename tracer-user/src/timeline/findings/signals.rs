//! `retransmit` and `reset`: what the kernel's TCP did on the request's
//! sockets (`tcp:tcp_retransmit_skb`, `tcp:tcp_send_reset`,
//! `tcp:tcp_receive_reset`), counted per socket.
use super::{
    Finding,
    catalogue::{self, Subject},
};
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
        let at = Subject {
            request: Some(t.info.number),
            cookie: Some(cookie),
        };
        let into = first_ns.saturating_sub(t.info.start_ns);
        out.push(catalogue::retransmit(
            at,
            seen.len() as i64,
            tcp_state::name(state),
            Some(into),
        ));
    }
    for e in &t.events {
        let EventBody::Kernel(KernelDetail::Reset { sent, state }) = &e.body else {
            continue;
        };
        let at = Subject {
            request: Some(t.info.number),
            cookie: e.cookie,
        };
        let into = e.ts_ns.saturating_sub(t.info.start_ns);
        out.push(catalogue::reset(
            at,
            *sent,
            tcp_state::name(*state),
            Some(into),
        ));
    }
    out
}
