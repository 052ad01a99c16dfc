//! Every TCP connection the traced process opened, whether a request rode
//! it or not: a connect that no request used (a pool that dialled while an
//! idle connection was on its way back, a losing happy-eyeballs attempt) is
//! part of the truth about reuse.
use std::net::SocketAddr;

use super::{EventBody, RequestTimeline};
use crate::probes::{KernelDetail, SocketCookie};

/// A TCP connect the kernel saw from the traced process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedConnection {
    pub cookie: SocketCookie,
    /// Its SYN_SENT, inside connect(2).
    pub ts_ns: u64,
    pub local: Option<SocketAddr>,
    pub remote: SocketAddr,
    /// 0 established; `-errno` when the handshake failed (see KernelDetail).
    pub ret: i32,
    /// The request in whose timeline (time window) the connect happened.
    pub during: u32,
    /// The requests that rode it, in order; empty: unused.
    pub ridden_by: Vec<u32>,
    /// Opened after request 1 got its connection: a pool that should have
    /// reused dialled instead, so `--expect reuse` does not hold.
    pub after_first_conn: bool,
    pub when: OpenedWhen,
}

/// When, within the request whose window holds it, a connect happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenedWhen {
    BeforeStart,
    InGetConn,
    AfterGotConn,
}

impl OpenedWhen {
    /// "during its GetConn", for a line about that request.
    pub fn own(self) -> &'static str {
        match self {
            OpenedWhen::BeforeStart => "before it started",
            OpenedWhen::InGetConn => "during its GetConn",
            OpenedWhen::AfterGotConn => "after it got its connection",
        }
    }

    /// "during request 2's GetConn".
    pub fn of(self, request: u32) -> String {
        match self {
            OpenedWhen::BeforeStart => format!("before request {request} started"),
            OpenedWhen::InGetConn => format!("during request {request}'s GetConn"),
            OpenedWhen::AfterGotConn => format!("after request {request} got its connection"),
        }
    }
}

/// How a connect's handshake ended, for people.
pub fn handshake_text(ret: i32) -> String {
    match ret {
        0 => "established".into(),
        tracer_ebpf::CONNECT_ABANDONED => "closed before the handshake ended".into(),
        err => format!("failed: {}", std::io::Error::from_raw_os_error(-err)),
    }
}

impl OpenedConnection {
    pub fn unused(&self) -> bool {
        self.ridden_by.is_empty()
    }
}

fn client_ts(t: &RequestTimeline, name: &str) -> Option<u64> {
    t.events
        .iter()
        .find(|e| matches!(&e.body, EventBody::Client(h) if h.name() == name))
        .map(|e| e.ts_ns)
}

/// When request 1 had its connection: its GotConn; without one, the end of
/// its socket's handshake; without that, its start.
fn first_conn_ns(t: &RequestTimeline) -> u64 {
    if let Some(ts) = client_ts(t, "GotConn") {
        return ts;
    }
    t.events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Kernel(KernelDetail::Connect { duration_ns, .. })
                if e.cookie.is_some() && e.cookie == t.cookie =>
            {
                Some(e.ts_ns + duration_ns)
            }
            _ => None,
        })
        .unwrap_or(t.info.start_ns)
}

/// The local address the kernel reported for `cookie`.
fn local_of(timelines: &[RequestTimeline], cookie: SocketCookie) -> Option<SocketAddr> {
    timelines
        .iter()
        .flat_map(|t| &t.events)
        .filter(|e| e.cookie == Some(cookie))
        .find_map(|e| match &e.body {
            EventBody::Kernel(
                KernelDetail::State { local, .. } | KernelDetail::Socket { local, .. },
            ) if local.port() != 0 => Some(*local),
            _ => None,
        })
}

/// Every kernel `connect` in the timelines (TCP only: a UDP socket has
/// none), with the requests that rode each.
pub(super) fn opened(timelines: &[RequestTimeline]) -> Vec<OpenedConnection> {
    let first_conn = timelines.first().map(first_conn_ns).unwrap_or(0);
    let mut out = Vec::new();
    for t in timelines {
        for e in &t.events {
            let (EventBody::Kernel(KernelDetail::Connect { ret, remote, .. }), Some(cookie)) =
                (&e.body, e.cookie)
            else {
                continue;
            };
            let ridden_by = timelines
                .iter()
                .filter(|r| r.cookie == Some(cookie))
                .map(|r| r.info.number)
                .collect();
            let get_conn = client_ts(t, "GetConn").unwrap_or(t.info.start_ns);
            let got_conn = client_ts(t, "GotConn");
            let when = match got_conn {
                _ if e.ts_ns < t.info.start_ns => OpenedWhen::BeforeStart,
                Some(g) if e.ts_ns >= get_conn && e.ts_ns <= g => OpenedWhen::InGetConn,
                None if e.ts_ns >= get_conn => OpenedWhen::InGetConn,
                _ => OpenedWhen::AfterGotConn,
            };
            out.push(OpenedConnection {
                cookie,
                ts_ns: e.ts_ns,
                local: local_of(timelines, cookie),
                remote: *remote,
                ret: *ret,
                during: t.info.number,
                ridden_by,
                after_first_conn: e.ts_ns > first_conn,
                when,
            });
        }
    }
    out.sort_by_key(|c| c.ts_ns);
    out
}
