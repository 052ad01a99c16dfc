//! Segments: attach's default, one record per message-sized run of I/O
//! instead of one per send or recv.
//!
//! A busy server moves a request and its response in a few syscalls, and
//! a large body in many. Userspace needs a head only where a message can
//! begin, and for the rest the bytes and the times. So each socket keeps
//! its current segment in `SEGMENTS`: an I/O in the same direction, once
//! the segment holds at least a head's worth of bytes, only updates it (no
//! ring record, no user copy). An I/O that changes direction, or that
//! comes while the segment is still shorter than a head (a request line
//! written in pieces), begins a new segment: one [`SegmentEvent`] with its
//! head and the summary of the segment it ends. The last segment of a
//! socket is read from the map by userspace (at close, or when a request
//! waits), which then deletes the entry.
use aya_ebpf::{macros::map, maps::LruHashMap};
use tracer_ebpf::{EventKind, PAYLOAD_HEAD, SegmentEvent, SegmentSummary};

use crate::common::{Ids, count_lost, header_at, now_ns, ring, wakeup_flag};
use crate::probes::payload::{HeadSource, copy_head, direction};

/// Socket cookie -> its current segment. LRU: a socket whose end userspace
/// never saw (its events lost) cannot keep its slot forever.
#[map(name = "SEGMENTS")]
static SEGMENTS: LruHashMap<u64, SegmentSummary> = LruHashMap::with_max_entries(65536, 0);

/// The current segment of socket `cookie`; null when it has none.
#[inline(always)]
pub fn lookup(cookie: u64) -> *mut SegmentSummary {
    SEGMENTS
        .get_ptr_mut(&cookie)
        .unwrap_or(core::ptr::null_mut())
}

/// Adds an I/O of `bytes` in direction `kind` to segment `s` (not null)
/// when it
/// belongs there (true: nothing more to do); false when it begins a new
/// one, which the caller (which has the socket) emits with [`begin`].
#[inline(always)]
pub fn extend(s: *mut SegmentSummary, kind: EventKind, bytes: i32) -> bool {
    // SAFETY: a map value; concurrent I/O on one socket from two CPUs can
    // interleave these updates, which costs at most a miscount, no fault.
    unsafe {
        if (*s).ios == 0 || (*s).direction != direction(kind) || (*s).bytes < PAYLOAD_HEAD as u64 {
            return false;
        }
        let now = now_ns();
        let gap = now.saturating_sub((*s).end_ns);
        if gap > (*s).max_gap_ns {
            (*s).max_gap_ns = gap;
            (*s).gap_at = (*s).bytes;
        }
        if (*s).ios == 1 {
            (*s).second_ns = now;
            (*s).second_len = bytes as u32;
        }
        (*s).ios += 1;
        (*s).bytes += bytes as u64;
        (*s).end_ns = now;
    }
    true
}

/// Begins a segment with this I/O: one record with its head and the
/// summary of the socket's segment before it; the map then holds the new
/// one. A full ring loses the record (counted under `Segment`), never the
/// map's count of what follows.
#[inline(always)]
pub fn begin(
    seg: *mut SegmentSummary,
    ids: &Ids,
    cookie: u64,
    kind: EventKind,
    bytes: i32,
    protocol: u16,
    family: u16,
    src: HeadSource,
) {
    let now = now_ns();
    let dir = direction(kind);
    match ring().and_then(|r| r.reserve_untyped::<SegmentEvent>(0)) {
        Some(mut entry) => {
            let ev = entry.as_mut_ptr();
            // SAFETY: `ev` is reserved ring memory of the record's size;
            // the map value is copied field by field while it is valid.
            unsafe {
                (*ev).header = header_at(EventKind::Segment, ids.tgid, ids.tid, cookie, now);
                (*ev).len = bytes as u32;
                (*ev).direction = dir;
                (*ev).protocol = protocol;
                (*ev).family = family;
                (*ev).captured = copy_head((*ev).data.as_mut_ptr(), bytes, src).unwrap_or(0);
                (*ev).prev = if seg.is_null() {
                    SegmentSummary::default()
                } else {
                    *seg
                };
            }
            entry.submit(wakeup_flag());
        }
        None => count_lost(EventKind::Segment as u32),
    }
    if seg.is_null() {
        let mut s = core::mem::MaybeUninit::<SegmentSummary>::uninit();
        // SAFETY: `start` writes every field before the map copies it.
        unsafe {
            start(s.as_mut_ptr(), now, bytes, dir);
            let _ = SEGMENTS.insert(&cookie, &*s.as_ptr(), 0);
        }
    } else {
        // SAFETY: a map value, overwritten field by field in place (a
        // stack copy cost a memset call and 64 bytes copied).
        unsafe { start(seg, now, bytes, dir) };
    }
}

/// Makes `s` a segment that began with one I/O of `bytes` at `now`.
///
/// # Safety
/// `s` points at a writable `SegmentSummary`.
#[inline(always)]
unsafe fn start(s: *mut SegmentSummary, now: u64, bytes: i32, dir: u32) {
    // SAFETY: the caller's promise. Volatile stores: plain ones of zeros
    // next to each other are merged by LLVM into a `memset` subprogram call.
    unsafe {
        (*s).start_ns = now;
        (*s).end_ns = now;
        core::ptr::write_volatile(&raw mut (*s).second_ns, 0);
        core::ptr::write_volatile(&raw mut (*s).max_gap_ns, 0);
        core::ptr::write_volatile(&raw mut (*s).gap_at, 0);
        (*s).bytes = bytes as u64;
        (*s).ios = 1;
        (*s).direction = dir;
        (*s).first_len = bytes as u32;
        core::ptr::write_volatile(&raw mut (*s).second_len, 0);
    }
}
