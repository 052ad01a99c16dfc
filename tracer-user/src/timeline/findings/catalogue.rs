//! The findings catalogue: for each kind its thresholds, evidence keys,
//! sentence and hint. trace's detector (whole timelines) and attach's (event
//! by event) both build their findings here, so a kind's line has the same
//! keys whoever found it; a value a detector cannot know is null.
use std::{net::SocketAddr, ops::RangeInclusive};

use super::{Evidence, Finding, FindingKind};
use crate::probes::SocketCookie;

/// A part smaller than this is smaller than one MSS on any path (Ethernet
/// with TCP timestamps); loopback's MSS is far larger.
pub const SMALL_PART: u32 = 1448;
/// Linux's minimum delayed-ACK timeout is 40 ms, its maximum 200 ms; the
/// margins take the server's and the scheduler's slack.
pub const STALL_NS: RangeInclusive<u64> = 35_000_000..=250_000_000;
/// A server that closes right after its answer is not closing an idle
/// connection; nor is a connection handed back this recently idle.
pub const MIN_IDLE_NS: u64 = 1_000_000;

fn us(ns: u64) -> Evidence {
    Evidence::Int((ns / 1000) as i64)
}

fn opt_int(n: Option<impl Into<i64>>) -> Evidence {
    n.map_or(Evidence::Null, |n| Evidence::Int(n.into()))
}

/// Who is found: the request (when known) and its socket.
#[derive(Clone, Copy, Debug)]
pub struct Subject {
    pub request: Option<u32>,
    pub cookie: Option<SocketCookie>,
}

/// `delayed-ack-stall`: the response head came alone, the rest a delayed
/// ACK later. Keys: head_bytes, next_bytes, stall_us.
pub fn delayed_ack_stall(at: Subject, head_bytes: i64, next_bytes: i64, gap_ns: u64) -> Finding {
    let ms = gap_ns as f64 / 1e6;
    Finding {
        kind: FindingKind::DelayedAckStall,
        request: at.request,
        cookie: at.cookie,
        evidence: vec![
            ("head_bytes", Evidence::Int(head_bytes)),
            ("next_bytes", Evidence::Int(next_bytes)),
            ("stall_us", us(gap_ns)),
        ],
        text: format!(
            "recv {head_bytes} B (the response head, alone), then recv {next_bytes} B {ms:.1} ms \
             later: the server's second write waited for the ACK this side delayed"
        ),
        hint: "write the response head and body in one write, or set TCP_NODELAY on the server"
            .into(),
    }
}

/// How a `server-closed-idle` connection was met afterwards.
pub enum AfterClose {
    /// Nothing known of what came next (attach).
    Unknown,
    /// The next request, and whether it opened a new connection.
    Next { request: u32, new_connection: bool },
    /// No request followed.
    None,
    /// The request written on the closing connection, which failed; `from`
    /// is the request that had used the connection before.
    Failed { request: u32, from: u32 },
}

/// `server-closed-idle`: the peer closed a kept-alive connection. Keys:
/// idle_us, close, next_request, failed_request.
pub fn server_closed_idle(at: Subject, idle_ns: u64, rst: bool, after: AfterClose) -> Finding {
    let (ms, how) = (idle_ns as f64 / 1e6, if rst { "RST" } else { "FIN" });
    let (next, failed) = match after {
        AfterClose::Next { request, .. } => (Some(request), None),
        AfterClose::Failed { request, .. } => (None, Some(request)),
        AfterClose::Unknown | AfterClose::None => (None, None),
    };
    let (text, hint) = match after {
        AfterClose::Failed { request: n, from } => (
            format!(
                "the server closed the kept connection of request {from} ({how}) {ms:.1} ms \
                 after the last response ended, as request {n} was written on it; request {n} \
                 failed"
            ),
            "the server closes kept connections without `Connection: close`: have it say so, \
             or retry idempotent requests on a new connection"
                .to_string(),
        ),
        _ => {
            let then = match after {
                AfterClose::Next {
                    request,
                    new_connection: true,
                } => format!("; request {request} then opened a new connection"),
                _ => String::new(),
            };
            (
                format!(
                    "the server closed the pooled connection ({how}) {ms:.1} ms after the last \
                     response ended{then}"
                ),
                format!(
                    "keep the client pool's idle timeout below {ms:.0} ms, or raise the \
                     server's keep-alive timeout"
                ),
            )
        }
    };
    Finding {
        kind: FindingKind::ServerClosedIdle,
        request: at.request,
        cookie: at.cookie,
        evidence: vec![
            ("idle_us", us(idle_ns)),
            ("close", Evidence::Text(how.into())),
            ("next_request", opt_int(next)),
            ("failed_request", opt_int(failed)),
        ],
        text,
        hint,
    }
}

/// An opened connection that carried nothing.
pub struct Unused {
    pub local: Option<SocketAddr>,
    pub remote: SocketAddr,
    pub handshake: String,
    /// When, relative to a request (trace's client hooks); None in attach.
    pub when: Option<String>,
    pub sent: i64,
    pub received: i64,
}

/// `unused-connection`. Keys: local_addr, remote_addr, handshake, when,
/// sent_bytes, received_bytes.
pub fn unused_connection(at: Subject, u: Unused) -> Finding {
    let local = u.local.map_or_else(|| "?".to_string(), |a| a.to_string());
    let (remote, handshake) = (u.remote, &u.handshake);
    let text = match &u.when {
        Some(when) => format!(
            "a connection {local} -> {remote} ({handshake}) was opened {when} and no request \
             rode it: {} B sent, {} B received",
            u.sent, u.received
        ),
        None => {
            format!("a connection {local} -> {remote} ({handshake}) was opened and moved no byte")
        }
    };
    Finding {
        kind: FindingKind::UnusedConnection,
        request: at.request,
        cookie: at.cookie,
        evidence: vec![
            ("local_addr", Evidence::Text(local)),
            ("remote_addr", Evidence::Text(remote.to_string())),
            ("handshake", Evidence::Text(u.handshake)),
            ("when", u.when.map_or(Evidence::Null, Evidence::Text)),
            ("sent_bytes", Evidence::Int(u.sent)),
            ("received_bytes", Evidence::Int(u.received)),
        ],
        text,
        hint: "the client dialled a connection it did not need (a pool racing its returning \
               idle connection, a speculative connect, a happy-eyeballs loser): the server \
               accepted it for nothing"
            .into(),
    }
}

/// `retransmit`. Keys: count, first_state, first_at_us (µs into the
/// request, null when no request holds it).
pub fn retransmit(at: Subject, count: i64, first_state: &str, first_at_ns: Option<u64>) -> Finding {
    let segments = if count == 1 { "segment" } else { "segments" };
    let text = match first_at_ns {
        Some(ns) => format!(
            "TCP sent {count} {segments} again, the first {:.1} ms into the request (in \
             {first_state})",
            ns as f64 / 1e6
        ),
        None => format!("TCP sent {count} {segments} again, the first in {first_state}"),
    };
    Finding {
        kind: FindingKind::Retransmit,
        request: at.request,
        cookie: at.cookie,
        evidence: vec![
            ("count", Evidence::Int(count)),
            ("first_state", Evidence::Text(first_state.into())),
            ("first_at_us", first_at_ns.map_or(Evidence::Null, us)),
        ],
        text,
        hint: "packets were lost on the way: each loss costs a retransmit timeout (200 ms or \
               more; 1 s for a SYN); look at the path and at `ss -ti`'s retrans"
            .into(),
    }
}

/// `reset`. Keys: direction, state, at_us (µs into the request, or null).
pub fn reset(at: Subject, sent: bool, state: &str, at_ns: Option<u64>) -> Finding {
    let way = if sent { "sent" } else { "received" };
    let text = match at_ns {
        Some(ns) => format!(
            "the connection was reset ({way}, in {state}) {:.1} ms into the request",
            ns as f64 / 1e6
        ),
        None => format!("the connection was reset ({way}, in {state})"),
    };
    Finding {
        kind: FindingKind::Reset,
        request: at.request,
        cookie: at.cookie,
        evidence: vec![
            ("direction", Evidence::Text(way.into())),
            ("state", Evidence::Text(state.into())),
            ("at_us", at_ns.map_or(Evidence::Null, us)),
        ],
        text,
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

/// `reuse-disagreement` (trace only: attach has no client to disagree).
/// Keys: client, kernel.
pub fn reuse_disagreement(at: Subject, client: bool, kernel: bool, text: &str) -> Finding {
    let word = |r: bool| Evidence::Text(if r { "reused" } else { "new" }.into());
    Finding {
        kind: FindingKind::ReuseDisagreement,
        request: at.request,
        cookie: at.cookie,
        evidence: vec![("client", word(client)), ("kernel", word(kernel))],
        text: text.to_string(),
        hint: "the verdict follows the kernel's socket cookie; the client's pool reported \
               otherwise"
            .into(),
    }
}

/// A connection to a peer that another connection of the process was
/// idle on, with its last response complete.
pub struct WhileIdle {
    pub remote: SocketAddr,
    /// The idle connection: its socket, its number (attach) and the request
    /// it last carried.
    pub idle_cookie: SocketCookie,
    pub idle_connection: Option<u64>,
    pub idle_request: Option<u32>,
    pub idle_ns: u64,
    /// The new connection's number (attach).
    pub new_connection: Option<u64>,
}

/// `new-connection-while-idle`: `at` is the new connection (and the request
/// it carried, when known). Keys: remote_addr, connection,
/// idle_socket_cookie, idle_connection, idle_request, idle_us.
pub fn new_connection_while_idle(at: Subject, w: WhileIdle) -> Finding {
    let ms = w.idle_ns as f64 / 1e6;
    let idle = match w.idle_connection {
        Some(n) => format!("connection {n}"),
        None => format!("socket {}", w.idle_cookie),
    };
    Finding {
        kind: FindingKind::NewConnectionWhileIdle,
        request: at.request,
        cookie: at.cookie,
        evidence: vec![
            ("remote_addr", Evidence::Text(w.remote.to_string())),
            ("connection", opt_int(w.new_connection.map(|n| n as i64))),
            ("idle_socket_cookie", Evidence::Int(w.idle_cookie as i64)),
            (
                "idle_connection",
                opt_int(w.idle_connection.map(|n| n as i64)),
            ),
            ("idle_request", opt_int(w.idle_request)),
            ("idle_us", us(w.idle_ns)),
        ],
        text: format!(
            "a new connection to {} was opened while {idle} to the same peer had been idle \
             {ms:.1} ms with its last response complete",
            w.remote
        ),
        hint: "look at the client's pool: its HTTP/1.1 keep-alive pool size, and whether a \
               finished response is handed back to the pool before the next request asks"
            .into(),
    }
}
