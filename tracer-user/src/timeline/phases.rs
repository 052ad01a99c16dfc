//! Where the time went, as httpstat shows it: DNS, TCP connect, TLS,
//! server processing, content transfer, total. The kernel's measurement is
//! used where it is the better one (connect, request written, first byte).
use super::{DerivedStep, EventBody, RequestTimeline};
use crate::{client::Hook, probes::KernelDetail};
use tracer_ebpf::tcp_state;

/// Durations in ns; None when the phase did not happen or was not observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    pub dns: Option<u64>,
    pub connect: Option<u64>,
    pub tls: Option<u64>,
    pub server: Option<u64>,
    pub transfer: Option<u64>,
    pub total: Option<u64>,
}

impl Phases {
    /// (name, duration) in the contract's order.
    pub fn named(&self) -> [(&'static str, Option<u64>); 6] {
        [
            ("dns", self.dns),
            ("connect", self.connect),
            ("tls", self.tls),
            ("server", self.server),
            ("transfer", self.transfer),
            ("total", self.total),
        ]
    }
}

fn first(t: &RequestTimeline, pred: impl Fn(&EventBody) -> bool) -> Option<u64> {
    t.events.iter().find(|e| pred(&e.body)).map(|e| e.ts_ns)
}

fn last(t: &RequestTimeline, pred: impl Fn(&EventBody) -> bool) -> Option<u64> {
    t.events
        .iter()
        .rev()
        .find(|e| pred(&e.body))
        .map(|e| e.ts_ns)
}

/// A phase's (start, end) in CLOCK_MONOTONIC ns; None when it did not
/// happen or was not observed, or ended before it started.
fn span(a: Option<u64>, b: Option<u64>) -> Option<(u64, u64)> {
    let (a, b) = (a?, b?);
    (b >= a).then_some((a, b))
}

/// When each phase of [`Phases`] began and ended, for exporters that draw
/// them as spans of their own (dns, connect, tls, server, transfer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhaseWindows {
    pub dns: Option<(u64, u64)>,
    pub connect: Option<(u64, u64)>,
    pub tls: Option<(u64, u64)>,
    pub server: Option<(u64, u64)>,
    pub transfer: Option<(u64, u64)>,
}

impl PhaseWindows {
    /// (name, window) in the contract's order, without `total`.
    pub fn named(&self) -> [(&'static str, Option<(u64, u64)>); 5] {
        [
            ("dns", self.dns),
            ("connect", self.connect),
            ("tls", self.tls),
            ("server", self.server),
            ("transfer", self.transfer),
        ]
    }
}

pub(super) fn measure(t: &RequestTimeline) -> Phases {
    let w = windows(t);
    let len = |w: Option<(u64, u64)>| w.map(|(a, b)| b - a);
    let total = len(span(Some(t.info.start_ns), Some(t.info.end_ns))).filter(|&d| d > 0);
    Phases {
        dns: len(w.dns),
        connect: len(w.connect),
        tls: len(w.tls),
        server: len(w.server),
        transfer: len(w.transfer),
        total,
    }
}

/// The windows [`measure`] takes its durations from.
pub fn windows(t: &RequestTimeline) -> PhaseWindows {
    let client = |name: &'static str| move |b: &EventBody| matches!(b, EventBody::Client(h) if h.name() == name);
    let dns = span(first(t, client("DNSStart")), first(t, client("DNSDone")));

    // The kernel's connect: from its SYN_SENT to SYN_SENT -> ESTABLISHED.
    let on_socket = |pred: fn(&KernelDetail) -> bool| {
        let cookie = t.cookie?;
        t.events
            .iter()
            .find(|e| {
                e.cookie == Some(cookie) && matches!(&e.body, EventBody::Kernel(k) if pred(k))
            })
            .map(|e| e.ts_ns)
    };
    let kernel_connect = on_socket(|k| matches!(k, KernelDetail::Connect { .. }));
    let established = on_socket(|k| {
        matches!(k, KernelDetail::State { old, new, .. }
            if *old == tcp_state::SYN_SENT && *new == tcp_state::ESTABLISHED)
    });
    let connect = span(kernel_connect, established).or_else(|| {
        span(
            first(t, client("ConnectStart")),
            last(t, client("ConnectDone")),
        )
    });
    let tls = span(
        first(t, client("TLSHandshakeStart")),
        last(t, client("TLSHandshakeDone")),
    );

    // The client's own plaintext marks (TLS) first, then the kernel's.
    let wrote = first(t, client("WroteRequest"))
        .or_else(|| {
            first(t, |b| {
                matches!(b, EventBody::Derived(DerivedStep::WroteRequest))
            })
        })
        .or_else(|| first(t, client("GotConn")));
    let first_byte = first(t, client("GotFirstResponseByte"))
        .or_else(|| {
            first(t, |b| {
                matches!(b, EventBody::Derived(DerivedStep::GotFirstResponseByte))
            })
        })
        .or_else(|| first(t, client("GotResponseHeaders")));
    let server = span(wrote, first_byte);
    let body_done = first(t, |b| matches!(b, EventBody::Client(Hook::BodyDone { .. })));
    let transfer = span(first_byte, body_done);
    PhaseWindows {
        dns,
        connect,
        tls,
        server,
        transfer,
    }
}
