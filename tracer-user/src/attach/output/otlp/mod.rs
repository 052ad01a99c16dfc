//! attach's requests as OpenTelemetry spans: one trace per request, SERVER
//! for a request the traced process answered, CLIENT for one it made, a
//! resource per traced process, sent through the exporter's bounded queue.
//! A request's kernel events and findings are held while it is open and go
//! out as span events with it; a finding that no open request owns (a
//! reset or an idle close between requests, an unused connection) is a
//! span of its own.
use std::collections::HashMap;

use super::super::conns::{Effect, Request, Tracker};
use crate::{
    export::otlp::{SpanQueue, SpanSource},
    probes::{KernelDetail, KernelEvent, SocketCookie},
    timeline::Finding,
};

mod spans;

/// Kernel events kept per request, at most; the rest are counted in the
/// span's `dropped_events_count` (`--events` on a long body sends many).
const EVENTS_PER_REQUEST: usize = 32;
/// Events of a connection before its first request (connect, states).
const EVENTS_BEFORE_REQUEST: usize = 8;

/// What is held for one request until it ends.
#[derive(Default)]
struct Held {
    events: Vec<(u64, SocketCookie, KernelDetail)>,
    dropped: u32,
    /// Findings and when they were made.
    findings: Vec<(u64, Finding)>,
}

impl Held {
    fn push(&mut self, ev: &KernelEvent, cap: usize) {
        if self.events.len() < cap {
            self.events.push((ev.ts_ns, ev.cookie, ev.what.clone()));
        } else {
            self.dropped += 1;
        }
    }
}

pub struct AttachOtlp {
    queue: SpanQueue,
    unix_offset_ns: u64,
    /// Executable names by pid, read from /proc once each.
    names: HashMap<u32, String>,
    /// Open requests' events, by request index.
    open: HashMap<usize, Held>,
    /// Connections' events before their first request, by socket.
    early: HashMap<SocketCookie, Held>,
    /// (exported, dropped), once the queue is finished.
    pub counts: Option<(u64, u64)>,
}

impl AttachOtlp {
    pub fn new(queue: SpanQueue) -> Self {
        AttachOtlp {
            queue,
            unix_offset_ns: crate::clock::unix_offset_ns(),
            names: HashMap::new(),
            open: HashMap::new(),
            early: HashMap::new(),
            counts: None,
        }
    }

    fn source(&mut self, pid: u32) -> SpanSource {
        let executable = self
            .names
            .entry(pid)
            .or_insert_with(|| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_default()
            })
            .clone();
        SpanSource { pid, executable }
    }

    /// Holds a kernel event for the request it belongs to: the one the
    /// tracker named, else those it ended (a close), else, before the
    /// connection's first request, for that one (its connect).
    pub fn event(&mut self, ev: &KernelEvent, fx: &Effect, t: &Tracker) {
        if matches!(
            ev.what,
            // Payload heads are parsed, never exported (secrets).
            KernelDetail::Payload { .. } | KernelDetail::Plaintext { .. }
        ) {
            return;
        }
        let Some(c) = fx.connection else { return };
        // Only requests still held by the tracker: each one's entry is
        // taken when it is printed.
        let live = |r: &usize| t.request(*r).is_some();
        if let Some(r) = fx.request.filter(live) {
            self.open.entry(r).or_default().push(ev, EVENTS_PER_REQUEST);
        } else if !fx.finished.is_empty() {
            for &r in fx.finished.iter().filter(|r| live(r)) {
                self.open.entry(r).or_default().push(ev, EVENTS_PER_REQUEST);
            }
        } else if t.connections[c].requests == 0 && !t.connections[c].udp {
            self.early
                .entry(ev.cookie)
                .or_default()
                .push(ev, EVENTS_BEFORE_REQUEST);
        }
        if matches!(ev.what, KernelDetail::Destroy) {
            self.early.remove(&ev.cookie);
        }
    }

    /// Places findings just made (at `ts_ns`): on their request, or on the
    /// request under way on their socket (or ended by this event), else in
    /// a span of their own.
    pub fn findings(&mut self, found: &[Finding], ts_ns: u64, finished: &[usize], t: &Tracker) {
        for f in found {
            let on_request = f
                .request
                .and_then(|n| (n as usize).checked_sub(1))
                .filter(|&r| t.request(r).is_some());
            let on_socket = || {
                let cookie = f.cookie?;
                let ended = finished.iter().rev().copied();
                ended
                    .filter(|&r| t.request(r).is_some_and(|q| q.cookie == cookie))
                    .chain(t.open_request(cookie))
                    .next()
            };
            match on_request.or_else(on_socket) {
                Some(r) => self
                    .open
                    .entry(r)
                    .or_default()
                    .findings
                    .push((ts_ns, f.clone())),
                None => {
                    let conn = f.cookie.and_then(|c| t.connection_of(c));
                    let pid = conn.map_or(0, |c| c.pid);
                    let span = spans::finding_span(f, conn, ts_ns, self.unix_offset_ns);
                    let source = self.source(pid);
                    self.queue.push(source, vec![span]);
                }
            }
        }
    }

    /// A request ended: its span, phases, events and findings go out. They
    /// are built on the exporter's thread, off the loop that reads the
    /// kernel's events: only the request and what is held are moved.
    pub fn request(&mut self, r: &Request, t: &Tracker, pid: u32) {
        let mut held = self.open.remove(&(r.number - 1)).unwrap_or_default();
        if !r.reused
            && let Some(early) = self.early.remove(&r.cookie)
        {
            // The connect and states before it, in time order.
            held.dropped += early.dropped;
            held.events.splice(0..0, early.events);
        }
        let facts = spans::ConnFacts::from(&t.connections[r.connection]);
        let count = 1 + spans::phases(r).len();
        let (r, offset) = (r.clone(), self.unix_offset_ns);
        let source = self.source(pid);
        self.queue.push_later(
            source,
            count,
            Box::new(move || spans::request_spans(&r, &facts, pid, &held, offset)),
        );
    }

    pub async fn finish(&mut self) {
        self.counts = Some(self.queue.finish().await);
    }
}
