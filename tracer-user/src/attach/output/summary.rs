//! The figures of attach's summary, counted once for every format.
use std::net::SocketAddr;

use crate::attach::conns::{Connection, Tracker};

pub(super) struct Figures<'a> {
    /// Lost events by name (only names that lost any).
    pub lost: &'a [(&'a str, u64)],
    pub lost_total: u64,
    /// Requests and reuse, None when no send/recv events could be seen.
    pub requests: Option<usize>,
    pub reused: Option<usize>,
    pub connections: usize,
    /// The connections listed by name: all, or on a long attach the 100
    /// busiest; and how many are not.
    pub listed: Vec<&'a Connection>,
    pub unlisted: usize,
    pub verdict: &'static str,
    pub ended: &'a str,
}

impl<'a> Figures<'a> {
    pub fn new(
        t: &'a Tracker,
        lost: &'a [(&'a str, u64)],
        ended: &'a str,
        io_unknown: bool,
    ) -> Self {
        let (requests, reused) = (t.request_count, t.reused_count);
        let connections = t.connections.tcp_count();
        let (listed, unlisted) = t.connections.listed();
        let verdict = match (reused, requests) {
            _ if io_unknown => "unknown",
            (0, _) => "new",
            (r, n) if r + 1 >= n && connections <= 1 => "reused",
            _ => "mixed",
        };
        let known = |n: usize| (!io_unknown).then_some(n);
        Self {
            lost,
            lost_total: lost.iter().map(|(_, n)| n).sum(),
            requests: known(requests),
            reused: known(reused),
            connections,
            listed,
            unlisted,
            verdict,
            ended,
        }
    }

    /// "send 12, recv 9", or "".
    pub fn lost_by_kind_text(&self) -> String {
        self.lost
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A connection's addresses for the summary lines.
pub(super) fn conn_addrs(local: Option<SocketAddr>, remote: Option<SocketAddr>) -> String {
    match (local, remote) {
        (Some(l), Some(r)) => format!("{l} -> {r}"),
        (_, Some(r)) => format!("-> {r}"),
        _ => "addresses unknown".to_string(),
    }
}
