//! Findings: named diagnoses read off the kernel's events (byte counts,
//! timestamps, state changes), so that they hold however the client stamps
//! its hooks. Each carries its evidence and a one-line hint.
pub mod catalogue;
mod delayed_ack;
mod idle_close;
mod signals;
mod while_idle;

use std::fmt;

use super::connections::{OpenedConnection, handshake_text};
use super::{EventBody, RequestTimeline};
use crate::probes::{KernelDetail, SocketCookie};
use catalogue::Subject;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    DelayedAckStall,
    UnusedConnection,
    ServerClosedIdle,
    ReuseDisagreement,
    Retransmit,
    Reset,
    NewConnectionWhileIdle,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::DelayedAckStall => "delayed-ack-stall",
            FindingKind::UnusedConnection => "unused-connection",
            FindingKind::ServerClosedIdle => "server-closed-idle",
            FindingKind::ReuseDisagreement => "reuse-disagreement",
            FindingKind::Retransmit => "retransmit",
            FindingKind::Reset => "reset",
            FindingKind::NewConnectionWhileIdle => "new-connection-while-idle",
        }
    }
}

/// One value of a finding's evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    Int(i64),
    Text(String),
    /// Not known to the detector that found it (JSON null).
    Null,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Int(n) => write!(f, "{n}"),
            Evidence::Text(s) => f.write_str(s),
            Evidence::Null => f.write_str("null"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub request: Option<u32>,
    pub cookie: Option<SocketCookie>,
    pub evidence: Vec<(&'static str, Evidence)>,
    /// What the kernel saw, in one sentence for people.
    pub text: String,
    pub hint: String,
}

/// Data-carrying kernel events of `cookie` in `t`, as (ts, bytes).
pub(super) fn transfers(
    t: &RequestTimeline,
    cookie: SocketCookie,
    send: bool,
) -> impl Iterator<Item = (u64, i64)> + '_ {
    t.events.iter().filter_map(move |e| match &e.body {
        EventBody::Kernel(KernelDetail::Send { bytes, .. })
            if send && *bytes > 0 && e.cookie == Some(cookie) =>
        {
            Some((e.ts_ns, i64::from(*bytes)))
        }
        EventBody::Kernel(KernelDetail::Recv { bytes, .. })
            if !send && *bytes > 0 && e.cookie == Some(cookie) =>
        {
            Some((e.ts_ns, i64::from(*bytes)))
        }
        _ => None,
    })
}

/// Every finding of a trace, in request order.
pub(super) fn find(timelines: &[RequestTimeline], opened: &[OpenedConnection]) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in timelines {
        out.extend(delayed_ack::stall(t));
        out.extend(signals::signals(t));
        if let Some(d) = &t.verdict.disagreement {
            out.push(disagreement(t, d));
        }
    }
    for c in opened.iter().filter(|c| c.unused()) {
        out.push(unused(timelines, c));
    }
    out.extend(idle_close::closed_idle(timelines));
    out.extend(idle_close::closed_under_request(timelines));
    out.extend(while_idle::new_while_idle(timelines, opened));
    out.sort_by_key(|f| (f.request, f.kind));
    out
}

fn disagreement(t: &RequestTimeline, text: &str) -> Finding {
    let at = Subject {
        request: Some(t.info.number),
        cookie: t.cookie,
    };
    let client = t.info.client_reused.unwrap_or(false);
    catalogue::reuse_disagreement(at, client, t.verdict.reused, text)
}

fn unused(timelines: &[RequestTimeline], c: &OpenedConnection) -> Finding {
    let total = |send| -> i64 {
        timelines
            .iter()
            .flat_map(|t| transfers(t, c.cookie, send))
            .map(|(_, b)| b)
            .sum()
    };
    let at = Subject {
        request: Some(c.during),
        cookie: Some(c.cookie),
    };
    let unused = catalogue::Unused {
        local: c.local,
        remote: c.remote,
        handshake: handshake_text(c.ret),
        when: Some(c.when.of(c.during)),
        sent: total(true),
        received: total(false),
    };
    catalogue::unused_connection(at, unused)
}

#[cfg(test)]
mod tests;
