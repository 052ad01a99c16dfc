//! Findings in attach, where the kernel's events allow them: the same kinds
//! as `trace`, decided as the events stream by. attach has no client hooks
//! and sees only a 128-byte head of each read, so:
//! - `delayed-ack-stall` needs the whole response head inside that head (a
//!   read that is exactly a status line and headers, up to the blank line);
//! - `server-closed-idle` takes "pooled" from the last response's head
//!   (HTTP/1.1 without `Connection: close`) and from the process not having
//!   closed first;
//! - `unused-connection` is a connect whose socket moved no byte before it
//!   was freed or the trace ended;
//! - `new-connection-while-idle` is a connect to a peer that another
//!   kept-alive connection of the same process was idle on: its last
//!   response complete by its framing, no request since, not closed.
use std::{collections::HashMap, hash::BuildHasherDefault, net::SocketAddr};

use super::conns::CookieHasher;
use crate::{
    probes::{KernelDetail, KernelEvent, SocketCookie},
    timeline::{
        Finding,
        catalogue::{self, AfterClose, MIN_IDLE_NS, SMALL_PART, STALL_NS, Subject},
        handshake_text,
    },
};
use tracer_ebpf::tcp_state::{self, CLOSE, CLOSE_WAIT, ESTABLISHED, FIN_WAIT1};

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
    /// The process that made the connect, and its peer.
    pid: u32,
    remote: Option<SocketAddr>,
    /// The tracker's number of the connection.
    number: usize,
    /// Since when no request has been open on it, its last response
    /// complete; and that request.
    idle_since: Option<(u64, Option<usize>)>,
    /// Either side began closing it.
    closing: bool,
}

/// What the tracker knows of the event's connection after the event.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnState {
    /// The request whose status line this event's payload head carried (an
    /// answer to the traced process).
    pub response: Option<usize>,
    /// The connection's number.
    pub number: usize,
    /// Some(true, n): this event completed request n, the last open one;
    /// Some(false, _): a request started on it.
    pub idle: Option<(bool, Option<usize>)>,
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
    /// One kernel event, and its connection as the tracker left it.
    pub fn observe(&mut self, ev: &KernelEvent, conn: ConnState) {
        if ev.cookie == 0 {
            return;
        }
        let response = conn.response;
        let while_idle = match &ev.what {
            KernelDetail::Connect { remote, .. } => self.idle_peer(ev, *remote, conn.number),
            _ => None,
        };
        let s = self.socks.entry(ev.cookie).or_default();
        s.number = conn.number;
        match conn.idle {
            Some((true, last)) => s.idle_since = Some((ev.ts_ns, last)),
            Some((false, _)) => s.idle_since = None,
            None => {}
        }
        let (mut found, mut extra) = (while_idle, None);
        match &ev.what {
            KernelDetail::Connect { ret, remote, .. } => {
                s.connect = Some((ev.ts_ns, *ret, *remote));
                (s.pid, s.remote) = (ev.tgid, Some(*remote));
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
                s.closing |= *old == ESTABLISHED;
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
            KernelDetail::Reset { sent, state } => {
                s.closing = true;
                found = Some(reset(ev, *sent, *state))
            }
            KernelDetail::Close { .. } => s.closing = true,
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

    /// Another connection of `ev`'s process to `remote`, kept alive and
    /// idle with its last response complete, as `ev` connects anew.
    fn idle_peer(&self, ev: &KernelEvent, remote: SocketAddr, number: usize) -> Option<Finding> {
        let (cookie, s, since, last) = self
            .socks
            .iter()
            .filter(|(c, s)| {
                **c != ev.cookie
                    && s.pid == ev.tgid
                    && s.remote == Some(remote)
                    && s.keep_alive
                    && !s.closing
            })
            .filter_map(|(c, s)| s.idle_since.map(|(since, last)| (*c, s, since, last)))
            .min_by_key(|(_, _, since, _)| *since)?;
        let at = Subject {
            request: None,
            cookie: Some(ev.cookie),
        };
        let idle = catalogue::WhileIdle {
            remote,
            idle_cookie: cookie,
            idle_connection: Some(s.number as u64),
            idle_request: last.and_then(|r| u32::try_from(r).ok()),
            idle_ns: ev.ts_ns.saturating_sub(since),
            new_connection: Some(number as u64),
        };
        Some(catalogue::new_connection_while_idle(at, idle))
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
    let at = Subject {
        request: u32::try_from(request).ok(),
        cookie: Some(ev.cookie),
    };
    Some(catalogue::delayed_ack_stall(
        at,
        head.into(),
        next.into(),
        gap,
    ))
}

fn closed_idle(ev: &KernelEvent, s: &Sock, reset: bool) -> Option<Finding> {
    let idle = ev.ts_ns.checked_sub(s.last_recv_ns?)?;
    if idle < MIN_IDLE_NS {
        return None;
    }
    let at = Subject {
        request: None,
        cookie: Some(ev.cookie),
    };
    Some(catalogue::server_closed_idle(
        at,
        idle,
        reset,
        AfterClose::Unknown,
    ))
}

fn unused(cookie: SocketCookie, s: &mut Sock) -> Option<Finding> {
    let (_, ret, remote) = s.connect?;
    if s.moved || s.reported {
        return None;
    }
    s.reported = true;
    let at = Subject {
        request: None,
        cookie: Some(cookie),
    };
    let unused = catalogue::Unused {
        local: s.local,
        remote,
        handshake: handshake_text(ret),
        when: None,
        sent: 0,
        received: 0,
    };
    Some(catalogue::unused_connection(at, unused))
}

fn reset(ev: &KernelEvent, sent: bool, state: u32) -> Finding {
    let at = Subject {
        request: None,
        cookie: Some(ev.cookie),
    };
    catalogue::reset(at, sent, tcp_state::name(state), None)
}

fn retransmitted(cookie: SocketCookie, s: &mut Sock) -> Option<Finding> {
    let (count, _, state) = s.retransmits.take()?;
    let at = Subject {
        request: None,
        cookie: Some(cookie),
    };
    Some(catalogue::retransmit(
        at,
        count,
        tcp_state::name(state),
        None,
    ))
}
