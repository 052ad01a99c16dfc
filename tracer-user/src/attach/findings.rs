//! Findings in attach, where the kernel's events allow them: the same kinds
//! as `trace`, decided as the events stream by. attach has no client hooks
//! and sees only a 128-byte head of each read, so:
//! - `delayed-ack-stall` needs the whole response head inside that head (a
//!   read that is exactly a status line and headers, up to the blank line);
//! - `server-closed-idle` takes "pooled" from the last response's head
//!   (HTTP/1.1 without `Connection: close`) and from the process not having
//!   closed first;
//! - `unused-connection` is a connect whose socket moved no byte before it
//!   was freed or the trace ended.
use std::{collections::HashMap, hash::BuildHasherDefault, net::SocketAddr};

use super::conns::CookieHasher;
use crate::{
    probes::{KernelDetail, KernelEvent, SocketCookie},
    timeline::{Evidence, Finding, FindingKind, handshake_text},
};
use tracer_ebpf::tcp_state::{self, CLOSE, CLOSE_WAIT, ESTABLISHED, FIN_WAIT1};

/// As in `trace`: smaller than one MSS on any path; Linux's delayed ACK.
const SMALL_PART: u32 = 1448;
const STALL_NS: std::ops::RangeInclusive<u64> = 35_000_000..=250_000_000;
/// A server that closes right after its answer is not closing an idle
/// connection, even when its head did not say so within the 128 bytes.
const MIN_IDLE_NS: u64 = 1_000_000;

#[derive(Default)]
struct Sock {
    /// Its connect: (ts, ret, remote).
    connect: Option<(u64, i32, SocketAddr)>,
    local: Option<SocketAddr>,
    moved: bool,
    last_send_ns: Option<u64>,
    last_recv_ns: Option<u64>,
    /// A read that was exactly a response head: (ts, bytes, request).
    head_alone: Option<(u64, u32, usize)>,
    /// The last response keeps the connection (HTTP/1.1, no close).
    keep_alive: bool,
    closed_here: bool,
    reported: bool,
    /// Retransmits: (count, first ts, state then).
    retransmits: Option<(i64, u64, u32)>,
}

#[derive(Default)]
pub struct Detector {
    /// Every socket until it is freed: one lookup per event, as the tracker.
    socks: HashMap<SocketCookie, Sock, BuildHasherDefault<CookieHasher>>,
    /// Found since the last [`Detector::take`].
    fresh: Vec<Finding>,
    counts: Vec<(&'static str, usize)>,
}

impl Detector {
    /// One kernel event; `response` is the request whose status line this
    /// event's payload head carried (an answer to the traced process).
    pub fn observe(&mut self, ev: &KernelEvent, response: Option<usize>) {
        if ev.cookie == 0 {
            return;
        }
        let s = self.socks.entry(ev.cookie).or_default();
        let (mut found, mut extra) = (None, None);
        match &ev.what {
            KernelDetail::Connect { ret, remote, .. } => {
                s.connect = Some((ev.ts_ns, *ret, *remote))
            }
            KernelDetail::State {
                old, new, local, ..
            } => {
                if local.port() != 0 {
                    s.local = Some(*local);
                }
                if *old == ESTABLISHED && *new == FIN_WAIT1 {
                    s.closed_here = true;
                }
                let peer = *old == ESTABLISHED && (*new == CLOSE_WAIT || *new == CLOSE);
                if peer && !s.closed_here && s.keep_alive {
                    found = closed_idle(ev, s, *new == CLOSE);
                }
            }
            KernelDetail::Send { bytes, .. } if *bytes > 0 => {
                s.moved = true;
                s.last_send_ns = Some(ev.ts_ns);
            }
            KernelDetail::Recv { bytes, .. } if *bytes > 0 => {
                s.moved = true;
                // Not the read whose head this is (the head comes first).
                if let Some((head_ns, head, request)) = s.head_alone.take_if(|h| h.0 != ev.ts_ns) {
                    found = stall(ev, head_ns, head, *bytes, request);
                }
                s.last_recv_ns = Some(ev.ts_ns);
            }
            KernelDetail::Payload {
                send: false,
                len,
                head,
            } => {
                if let Some(request) = response {
                    s.keep_alive = head.starts_with(b"HTTP/1.1") && !says_close(head);
                    let whole = head.len() == *len as usize && head.ends_with(b"\r\n\r\n");
                    let sent_first = s.last_send_ns.is_some_and(|t| t < ev.ts_ns);
                    if whole && *len < SMALL_PART && sent_first {
                        s.head_alone = Some((ev.ts_ns, *len, request));
                    }
                }
            }
            KernelDetail::Retransmit { state } => {
                let r = s.retransmits.get_or_insert((0, ev.ts_ns, *state));
                r.0 += 1;
            }
            KernelDetail::Reset { sent, state } => found = Some(reset(ev, *sent, *state)),
            KernelDetail::Destroy => {
                found = unused(ev.cookie, s);
                extra = retransmitted(ev.cookie, s);
            }
            _ => {}
        }
        if matches!(ev.what, KernelDetail::Destroy) {
            self.socks.remove(&ev.cookie);
        }
        // Not an array of the two: that moved both (large) options on
        // every event, most of which find nothing.
        if let Some(f) = found {
            self.push(f);
        }
        if let Some(f) = extra {
            self.push(f);
        }
    }

    /// Connections still open at the end that never moved a byte.
    pub fn finish(&mut self) {
        let mut left: Vec<Finding> = self
            .socks
            .iter_mut()
            .flat_map(|(c, s)| [unused(*c, s), retransmitted(*c, s)])
            .flatten()
            .collect();
        left.sort_by_key(|f| f.cookie);
        for f in left {
            self.push(f);
        }
    }

    fn push(&mut self, f: Finding) {
        let kind = f.kind.as_str();
        match self.counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((kind, 1)),
        }
        self.fresh.push(f);
    }

    /// The findings made since the last call, to print.
    pub fn take(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.fresh)
    }

    /// Findings by kind, e.g. `[("delayed-ack-stall", 2)]`.
    pub fn counts(&self) -> &[(&'static str, usize)] {
        &self.counts
    }

    /// ", 2 findings (delayed-ack-stall 2)" for the text summary, or "".
    pub fn counts_text(&self) -> String {
        let found: usize = self.counts.iter().map(|(_, n)| n).sum();
        if found == 0 {
            return String::new();
        }
        let kinds: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(
            ", {} ({})",
            crate::render::count(found, "finding"),
            kinds.join(", ")
        )
    }
}

fn says_close(head: &[u8]) -> bool {
    const CLOSE: &[u8] = b"\r\nconnection: close";
    head.windows(CLOSE.len())
        .any(|w| w.eq_ignore_ascii_case(CLOSE))
}

fn stall(ev: &KernelEvent, head_ns: u64, head: u32, next: i32, request: usize) -> Option<Finding> {
    let gap = ev.ts_ns.checked_sub(head_ns)?;
    if !STALL_NS.contains(&gap) {
        return None;
    }
    let ms = gap as f64 / 1e6;
    Some(Finding {
        kind: FindingKind::DelayedAckStall,
        request: u32::try_from(request).ok(),
        cookie: Some(ev.cookie),
        evidence: vec![
            ("head_bytes", Evidence::Int(head.into())),
            ("next_bytes", Evidence::Int(next.into())),
            ("stall_us", Evidence::Int((gap / 1000) as i64)),
        ],
        text: format!(
            "recv {head} B (the response head, alone), then recv {next} B {ms:.1} ms later: \
             the server's second write waited for the ACK this side delayed"
        ),
        hint: "write the response head and body in one write, or set TCP_NODELAY on the server"
            .into(),
    })
}

fn closed_idle(ev: &KernelEvent, s: &Sock, reset: bool) -> Option<Finding> {
    let idle = ev.ts_ns.checked_sub(s.last_recv_ns?)?;
    if idle < MIN_IDLE_NS {
        return None;
    }
    let (ms, how) = (idle as f64 / 1e6, if reset { "RST" } else { "FIN" });
    Some(Finding {
        kind: FindingKind::ServerClosedIdle,
        request: None,
        cookie: Some(ev.cookie),
        evidence: vec![
            ("idle_us", Evidence::Int((idle / 1000) as i64)),
            ("close", Evidence::Text(how.into())),
        ],
        text: format!(
            "the server closed the kept-alive connection ({how}) {ms:.1} ms after the last \
             response ended"
        ),
        hint: format!(
            "keep the client pool's idle timeout below {ms:.0} ms, or raise the server's \
             keep-alive timeout"
        ),
    })
}

fn unused(cookie: SocketCookie, s: &mut Sock) -> Option<Finding> {
    let (_, ret, remote) = s.connect?;
    if s.moved || s.reported {
        return None;
    }
    s.reported = true;
    let local = s.local.map_or_else(|| "?".to_string(), |a| a.to_string());
    let handshake = handshake_text(ret);
    Some(Finding {
        kind: FindingKind::UnusedConnection,
        request: None,
        cookie: Some(cookie),
        evidence: vec![
            ("local_addr", Evidence::Text(local.clone())),
            ("remote_addr", Evidence::Text(remote.to_string())),
            ("handshake", Evidence::Text(handshake.clone())),
            ("sent_bytes", Evidence::Int(0)),
            ("received_bytes", Evidence::Int(0)),
        ],
        text: format!(
            "a connection {local} -> {remote} ({handshake}) was opened and moved no byte"
        ),
        hint: "the process dialled a connection it did not use (a pool racing its returning \
               idle connection, a speculative connect, a happy-eyeballs loser): the server \
               accepted it for nothing"
            .into(),
    })
}

fn reset(ev: &KernelEvent, sent: bool, state: u32) -> Finding {
    let (way, state) = (
        if sent { "sent" } else { "received" },
        tcp_state::name(state),
    );
    Finding {
        kind: FindingKind::Reset,
        request: None,
        cookie: Some(ev.cookie),
        evidence: vec![
            ("direction", Evidence::Text(way.into())),
            ("state", Evidence::Text(state.into())),
        ],
        text: format!("the connection was reset ({way}, in {state})"),
        hint: if sent {
            "this side aborted the connection: it closed with unread data, or answered a \
             segment for a socket that was gone"
        } else {
            "the peer aborted the connection (SO_LINGER 0, a crash, a proxy or firewall \
             dropping its state): look at the server's logs around that time"
        }
        .into(),
    }
}

fn retransmitted(cookie: SocketCookie, s: &mut Sock) -> Option<Finding> {
    let (count, _, state) = s.retransmits.take()?;
    let state = tcp_state::name(state);
    Some(Finding {
        kind: FindingKind::Retransmit,
        request: None,
        cookie: Some(cookie),
        evidence: vec![
            ("count", Evidence::Int(count)),
            ("first_state", Evidence::Text(state.into())),
        ],
        text: format!("TCP sent {count} segment(s) again, the first in {state}"),
        hint: "packets were lost on the way: each loss costs a retransmit timeout (200 ms or \
               more; 1 s for a SYN); look at the path and at `ss -ti`'s retrans"
            .into(),
    })
}
