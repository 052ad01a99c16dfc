//! Join client hooks and kernel events per request, on one clock, and
//! decide from the kernel's evidence whether each request reused a socket.
mod connections;
mod findings;
mod join;
mod phases;
mod verdict;

use std::net::SocketAddr;

#[cfg(test)]
pub use connections::OpenedWhen;
pub use connections::{OpenedConnection, handshake_text};
#[cfg(test)]
pub use findings::FindingKind;
pub use findings::{Evidence, Finding, catalogue};
pub use join::build;
pub use phases::{Phases, windows as phase_windows};
#[cfg(feature = "ebpf")]
pub(crate) use verdict::opened_socket;
pub use verdict::{ReuseVerdict, Summary, Verdict};

use crate::{
    client::{Hook, RequestOutcome},
    probes::{KernelDetail, SocketCookie},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Client,
    Kernel,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Client => "client",
            Source::Kernel => "kernel",
        }
    }
}

/// Steps the client cannot see, read off the kernel's events (Go's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerivedStep {
    /// First send on the request's socket after GetConn.
    WroteRequest,
    /// First recv with data after the request was written.
    GotFirstResponseByte,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    Client(Hook),
    Kernel(KernelDetail),
    Derived(DerivedStep),
}

/// One line of a request's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEvent {
    pub ts_ns: u64,
    pub source: Source,
    pub cookie: Option<SocketCookie>,
    /// Thread that ran the syscall (kernel events only; 0 in softirq).
    pub tid: u32,
    pub body: EventBody,
    /// The time was decided after the fact (see `ClientEvent::derived`), or
    /// read off the kernel for a step the client cannot see.
    pub derived: bool,
}

impl TimelineEvent {
    pub fn name(&self) -> &'static str {
        match &self.body {
            EventBody::Client(h) => h.name(),
            EventBody::Kernel(k) => k.name(),
            EventBody::Derived(DerivedStep::WroteRequest) => "WroteRequest",
            EventBody::Derived(DerivedStep::GotFirstResponseByte) => "GotFirstResponseByte",
        }
    }
}

/// What the request asked for, and how it ended on the client's side.
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    pub number: u32,
    pub method: String,
    pub url: String,
    /// Extra request headers (`-H`), secret values already redacted.
    pub headers: Vec<(String, String)>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub local_addr: Option<SocketAddr>,
    pub remote_addr: Option<SocketAddr>,
    /// The client's `SO_COOKIE` of the connection that carried the response.
    pub socket_cookie: Option<SocketCookie>,
    pub client_reused: Option<bool>,
    pub body_bytes: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl RequestInfo {
    /// What the join needs of a finished request. A library request has no
    /// spec, so method, URL and headers stay empty; `trace` fills them in.
    pub(crate) fn from_outcome(o: RequestOutcome) -> Self {
        RequestInfo {
            number: o.request,
            status: o.status,
            error: o.error,
            local_addr: o.local_addr,
            remote_addr: o.remote_addr,
            socket_cookie: o.socket_cookie,
            client_reused: o.reused,
            body_bytes: o.body_bytes,
            start_ns: o.start_ns,
            end_ns: o.end_ns,
            ..RequestInfo::default()
        }
    }
}

/// One request: its client and kernel events merged in time order.
#[derive(Clone, Debug)]
pub struct RequestTimeline {
    pub info: RequestInfo,
    /// The socket that carried the request, when the kernel saw it.
    pub cookie: Option<SocketCookie>,
    pub events: Vec<TimelineEvent>,
    pub verdict: ReuseVerdict,
    pub phases: Phases,
}

impl RequestTimeline {
    /// Bytes the kernel saw the request's socket send and receive within the
    /// request's window, (sent, received); (0, 0) without its socket.
    pub fn kernel_bytes(&self) -> (u64, u64) {
        let (mut sent, mut received) = (0u64, 0u64);
        let window = self.info.start_ns..=self.info.end_ns;
        for e in &self.events {
            if self.cookie.is_none() || e.cookie != self.cookie || !window.contains(&e.ts_ns) {
                continue;
            }
            match e.body {
                EventBody::Kernel(KernelDetail::Send { bytes, .. }) if bytes > 0 => {
                    sent += bytes as u64
                }
                EventBody::Kernel(KernelDetail::Recv { bytes, .. }) if bytes > 0 => {
                    received += bytes as u64
                }
                _ => {}
            }
        }
        (sent, received)
    }

    /// The response's HTTP version as the client read it ("HTTP/1.1").
    pub fn http_version(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match &e.body {
            EventBody::Client(Hook::GotResponseHeaders { version, .. }) => Some(version.as_str()),
            _ => None,
        })
    }
}

/// Everything a trace produced.
#[derive(Clone, Debug)]
pub struct Trace {
    pub requests: Vec<RequestTimeline>,
    pub summary: Summary,
    /// Every TCP connect the kernel saw from the process (empty without it).
    pub connections: Vec<OpenedConnection>,
    pub findings: Vec<Finding>,
    /// Whether kernel events were recorded at all (`--no-ebpf` or not).
    pub kernel: bool,
}

#[cfg(test)]
pub(crate) mod test_events;
#[cfg(test)]
pub(crate) mod tests;
