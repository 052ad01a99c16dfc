//! attach's default: segments (see tracer-ebpf's `segment`) turned back
//! into the I/Os the [`super::Tracker`] counts.
//!
//! The kernel sends the first I/O of each segment, with its head, as it
//! sends every I/O with `--events`; the rest of the segment comes as a
//! summary when the socket's next segment begins, or, for the last one,
//! from the `SEGMENTS` map: read here when the socket closes, when a
//! request has waited for its answer a while (the last answer on an idle
//! keep-alive connection), and at the end. A summary becomes at most two
//! I/Os: the segment's second (a body read a delayed ACK after its head
//! keeps its own time) and all the others at the time of the last.
use std::{collections::HashMap, hash::BuildHasherDefault};

use tracer_ebpf::SegmentSummary;

use super::conns::CookieHasher;
use crate::probes::{KernelDetail, KernelEvent, Probes, SocketCookie};

/// Where the sockets' current segments are: the kernel's `SEGMENTS` map
/// ([`Probes`]), or a table in tests.
pub trait SegmentMap {
    fn segment(&self, cookie: SocketCookie) -> Option<SegmentSummary>;
    fn forget_segment(&mut self, cookie: SocketCookie);
}

impl SegmentMap for Probes {
    fn segment(&self, cookie: SocketCookie) -> Option<SegmentSummary> {
        Probes::segment(self, cookie)
    }
    fn forget_segment(&mut self, cookie: SocketCookie) {
        Probes::forget_segment(self, cookie);
    }
}

/// A request waiting this long for the rest of its answer has the socket's
/// segment read from the map.
pub const WAIT_NS: u64 = 50_000_000;

/// The segment of a socket as far as it was passed on.
#[derive(Clone, Copy, Debug)]
struct Open {
    send: bool,
    protocol: u16,
    tgid: u32,
    tid: u32,
    start_ns: u64,
    ios: u32,
    bytes: u64,
    /// When it was last passed on, or read from the map.
    looked_ns: u64,
}

/// How often the sockets with waiting requests are looked at.
const POLL_NS: u64 = 25_000_000;

#[derive(Default)]
pub struct Segments {
    open: HashMap<SocketCookie, Open, BuildHasherDefault<CookieHasher>>,
    polled_ns: u64,
}

impl Segments {
    /// Passes `ev` to `f`, a segment's end as the I/Os it stands for.
    pub fn feed(
        &mut self,
        ev: &KernelEvent,
        probes: &mut impl SegmentMap,
        mut f: impl FnMut(&KernelEvent),
    ) {
        match &ev.what {
            KernelDetail::SegmentEnd(s) => {
                if let Some(o) = self.open.get_mut(&ev.cookie) {
                    rest(o, s, ev.cookie, &mut f);
                }
            }
            KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol }
                if *bytes > 0 =>
            {
                f(ev);
                // Every I/O with bytes that reaches userspace begins a segment.
                let send = matches!(ev.what, KernelDetail::Send { .. });
                let open = Open {
                    send,
                    protocol: *protocol,
                    tgid: ev.tgid,
                    tid: ev.tid,
                    start_ns: ev.ts_ns,
                    ios: 1,
                    bytes: *bytes as u64,
                    looked_ns: ev.ts_ns,
                };
                self.open.insert(ev.cookie, open);
            }
            KernelDetail::Close { .. } | KernelDetail::Destroy => {
                // Its last segment first: no I/O comes after a close.
                self.look(ev.cookie, probes, ev.ts_ns, &mut f);
                f(ev);
                if matches!(ev.what, KernelDetail::Destroy)
                    && self.open.remove(&ev.cookie).is_some()
                {
                    probes.forget_segment(ev.cookie);
                }
            }
            _ => f(ev),
        }
    }

    /// Whether [`Segments::stale`] has something to do at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        !self.open.is_empty() && now_ns.saturating_sub(self.polled_ns) >= POLL_NS
    }

    /// The sockets whose segment to read from the map: those that
    /// `waiting` says have a request waiting for its answer and that have
    /// not moved for [`WAIT_NS`]; every one with `all` (the end of the run).
    /// Apart from [`Segments::look_at`], so that `waiting` and the reading's
    /// `f` may borrow the same tracker in turn.
    pub fn stale(
        &mut self,
        now_ns: u64,
        all: bool,
        waiting: impl Fn(SocketCookie) -> bool,
    ) -> Vec<SocketCookie> {
        self.polled_ns = now_ns;
        self.open
            .iter()
            .filter(|(c, o)| all || (now_ns.saturating_sub(o.looked_ns) >= WAIT_NS && waiting(**c)))
            .map(|(c, _)| *c)
            .collect()
    }

    /// Passes on what the map holds of the segments of `due`.
    pub fn look_at(
        &mut self,
        due: &[SocketCookie],
        probes: &impl SegmentMap,
        now_ns: u64,
        mut f: impl FnMut(&KernelEvent),
    ) {
        for &cookie in due {
            self.look(cookie, probes, now_ns, &mut f);
        }
    }

    /// Passes on what the map holds of `cookie`'s segment beyond what was
    /// passed on already.
    fn look(
        &mut self,
        cookie: SocketCookie,
        probes: &impl SegmentMap,
        now_ns: u64,
        f: &mut impl FnMut(&KernelEvent),
    ) {
        let Some(o) = self.open.get_mut(&cookie) else {
            return;
        };
        o.looked_ns = now_ns;
        if let Some(s) = probes.segment(cookie) {
            rest(o, &s, cookie, f);
        }
    }
}

/// The I/Os of segment `s` past those `o` passed on, when `s` is `o`'s (a
/// newer segment's summary means `o`'s end is on its way in a record).
fn rest(o: &mut Open, s: &SegmentSummary, cookie: SocketCookie, f: &mut impl FnMut(&KernelEvent)) {
    if s.start_ns != o.start_ns {
        return;
    }
    let io = |ts_ns, bytes: u64| KernelEvent {
        ts_ns,
        tgid: o.tgid,
        tid: o.tid,
        cookie,
        what: {
            let (bytes, protocol) = (bytes.min(i32::MAX as u64) as i32, o.protocol);
            if o.send {
                KernelDetail::Send { bytes, protocol }
            } else {
                KernelDetail::Recv { bytes, protocol }
            }
        },
    };
    if o.ios == 1 && s.ios >= 2 && s.second_len > 0 {
        f(&io(s.second_ns, u64::from(s.second_len)));
        o.bytes += u64::from(s.second_len);
        o.ios = 2;
    }
    if s.bytes > o.bytes {
        f(&io(s.end_ns, s.bytes - o.bytes));
    }
    o.bytes = o.bytes.max(s.bytes);
    o.ios = o.ios.max(s.ios);
}

#[cfg(test)]
mod tests;
