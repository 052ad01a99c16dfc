use std::collections::HashMap;

use super::*;
use crate::attach::Tracker;

#[derive(Default)]
struct Map(HashMap<SocketCookie, SegmentSummary>);

impl SegmentMap for Map {
    fn segment(&self, cookie: SocketCookie) -> Option<SegmentSummary> {
        self.0.get(&cookie).copied()
    }
    fn forget_segment(&mut self, cookie: SocketCookie) {
        self.0.remove(&cookie);
    }
}

fn at(ts_ns: u64, what: KernelDetail) -> KernelEvent {
    KernelEvent {
        ts_ns,
        tgid: 1,
        tid: 2,
        cookie: 9,
        what,
    }
}

fn begin(ts_ns: u64, send: bool, head: &[u8], len: u32) -> [KernelEvent; 2] {
    let bytes = len as i32;
    let io = if send {
        KernelDetail::Send { bytes, protocol: 6 }
    } else {
        KernelDetail::Recv { bytes, protocol: 6 }
    };
    let head = KernelDetail::Payload {
        send,
        len,
        head: crate::probes::PayloadHead::new(head),
    };
    [at(ts_ns, head), at(ts_ns, io)]
}

fn summary(start_ns: u64, send: bool, lens: &[(u64, u32)]) -> SegmentSummary {
    SegmentSummary {
        start_ns,
        end_ns: lens.last().unwrap().0,
        second_ns: lens.get(1).map_or(0, |l| l.0),
        second_len: lens.get(1).map_or(0, |l| l.1),
        first_len: lens[0].1,
        bytes: lens.iter().map(|l| u64::from(l.1)).sum(),
        ios: lens.len() as u32,
        direction: u32::from(!send),
        ..SegmentSummary::default()
    }
}

const REQUEST: &[u8] = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";

/// A segments feed in front of a tracker, as attach's record loop has.
struct Rig {
    seg: Segments,
    map: Map,
    t: Tracker,
    /// Finished requests: (bytes received, last byte's time).
    finished: Vec<(u64, Option<u64>)>,
}

impl Rig {
    fn new() -> Self {
        Self {
            seg: Segments::default(),
            map: Map::default(),
            t: Tracker::new(Vec::new()),
            finished: Vec::new(),
        }
    }

    fn handle(t: &mut Tracker, finished: &mut Vec<(u64, Option<u64>)>, e: &KernelEvent) {
        for r in t.handle(e).finished {
            let q = t.request(r).unwrap();
            finished.push((q.bytes_received, q.last_byte_ns));
        }
    }

    fn feed(&mut self, evs: &[KernelEvent]) {
        let (t, finished) = (&mut self.t, &mut self.finished);
        for ev in evs {
            self.seg
                .feed(ev, &mut self.map, |e| Self::handle(t, finished, e));
        }
    }

    fn poll(&mut self, now_ns: u64, waiting: bool) {
        let (t, finished) = (&mut self.t, &mut self.finished);
        let due = self.seg.stale(now_ns, false, |_| waiting);
        self.seg
            .look_at(&due, &self.map, now_ns, |e| Self::handle(t, finished, e));
    }
}

const HEAD: u32 = RESPONSE.len() as u32;
/// The head read alone, then the 1000 bytes of body in three reads.
const PARTS: [(u64, u32); 4] = [(200, HEAD), (300, 400), (400, 300), (500, 300)];

fn request_and_head(rig: &mut Rig) {
    rig.feed(&begin(100, true, REQUEST, REQUEST.len() as u32));
    rig.feed(&begin(200, false, RESPONSE, HEAD));
    assert!(rig.finished.is_empty(), "the body is still to come");
}

/// The next segment's record carries the end of this one: the request
/// gets all its bytes and its last byte's time, and a second copy of the
/// same summary adds nothing.
#[test]
fn a_segment_end_counts_the_rest_of_the_answer_once() {
    let mut rig = Rig::new();
    request_and_head(&mut rig);
    let end = at(600, KernelDetail::SegmentEnd(summary(200, false, &PARTS)));
    rig.feed(&[end.clone(), end]);
    assert_eq!(rig.finished, vec![(u64::from(HEAD) + 1000, Some(500))]);
    assert_eq!(rig.t.connections[0].bytes_received, u64::from(HEAD) + 1000);
}

/// The last answer on an idle keep-alive connection: no next segment ever
/// comes, so the map is read once the request has waited [`WAIT_NS`];
/// before that, or when no request waits, it is not.
#[test]
fn a_waiting_request_is_answered_from_the_map() {
    let mut rig = Rig::new();
    request_and_head(&mut rig);
    rig.map.0.insert(9, summary(200, false, &PARTS));
    rig.poll(200 + WAIT_NS - 1, true);
    rig.poll(200 + WAIT_NS, false);
    assert!(rig.finished.is_empty(), "read too early or for nobody");
    rig.poll(200 + WAIT_NS, true);
    assert_eq!(rig.finished, vec![(u64::from(HEAD) + 1000, Some(500))]);
    // The record that ends the segment later adds nothing.
    rig.feed(&[at(
        900,
        KernelDetail::SegmentEnd(summary(200, false, &PARTS)),
    )]);
    assert_eq!(rig.t.connections[0].bytes_received, u64::from(HEAD) + 1000);
}

/// A summary of a segment whose first I/O never arrived (its record was
/// lost) is not taken for the one before it.
#[test]
fn a_summary_of_another_segment_is_ignored() {
    let mut rig = Rig::new();
    request_and_head(&mut rig);
    rig.feed(&[at(
        900,
        KernelDetail::SegmentEnd(summary(150, false, &PARTS)),
    )]);
    assert_eq!(rig.t.connections[0].bytes_received, u64::from(HEAD));
}

/// At close the map is read first: the bytes come before the close.
#[test]
fn a_close_reads_the_last_segment_first() {
    let mut rig = Rig::new();
    request_and_head(&mut rig);
    rig.map.0.insert(9, summary(200, false, &PARTS));
    rig.feed(&[at(700, KernelDetail::Destroy)]);
    assert_eq!(rig.finished, vec![(u64::from(HEAD) + 1000, Some(500))]);
    assert!(
        rig.map.0.is_empty(),
        "the map entry of a freed socket is dropped"
    );
}
