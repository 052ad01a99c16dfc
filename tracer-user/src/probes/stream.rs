//! The per-CPU ring buffers, polled and merged into one ordered stream.
use std::io;

use aya::maps::{MapData, RingBuf};

use std::collections::HashMap;

use super::{
    KernelEvent,
    decode::{cookie_alias, decode_into},
    merge::{Reorder, watermark},
};
use crate::clock::monotonic_ns;

/// How often the reader empties the rings. The programs never ask for a
/// wake-up: one per event costs more than the event.
const POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Records read from one ring per tick at most, so that one tick's batch,
/// which is sorted and held in memory, stays small: reading each ring
/// "until it is empty" let a reader that had fallen behind gather tens of
/// thousands of events in one batch (a 10 s ping-pong took the tracer from
/// 41 to 90 MB). A ring left with records is read again at once, without
/// the poll's sleep, so this bounds memory, not the rate.
const MAX_PER_RING: usize = 4_096;

/// Ticks of reading at the end of a run at most, when the rings keep
/// filling (the traced process goes on).
const MAX_FINAL_TICKS: usize = 64;

pub struct EventStream {
    rings: Vec<RingBuf<MapData>>,
    reorder: Reorder<KernelEvent>,
    /// Records that did not decode (a userspace/kernel ABI mismatch).
    pub undecodable: u64,
    /// A ring was left with records in it last tick: read again at once.
    backlog: bool,
    /// Tracer-made socket id -> the socket's cookie, where the kernel gave
    /// tracing programs no cookie (see tracer-ebpf's `sock_id`).
    aliases: HashMap<u64, u64>,
}

impl EventStream {
    pub(super) fn new(rings: Vec<RingBuf<MapData>>) -> Self {
        Self {
            rings,
            reorder: Reorder::default(),
            undecodable: 0,
            backlog: false,
            aliases: HashMap::new(),
        }
    }

    /// Waits [`POLL`] (not at all when the rings were left with a backlog):
    /// the programs never wake the reader. Never fails today; the `Result`
    /// is the caller's contract.
    pub async fn ready(&mut self) -> io::Result<()> {
        if self.backlog {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Hands to `f`, in timestamp order, the events that every ring has been
    /// read past (as [`EventStream::next_batch`], without waiting). attach
    /// uses this rather than a batch of its own: each event is lent to `f`
    /// straight from where it was read, never copied into a batch.
    pub fn for_each_ready(&mut self, mut f: impl FnMut(&KernelEvent)) {
        let mark = self.tick();
        self.reorder.release_with(mark, |ev| f(&ev));
    }

    /// As [`EventStream::for_each_ready`], but everything: the end of a run.
    pub fn for_each_remaining(&mut self, mut f: impl FnMut(&KernelEvent)) {
        for _ in 0..MAX_FINAL_TICKS {
            let mark = self.tick();
            self.reorder.release_with(mark, |ev| f(&ev));
            if !self.backlog {
                break;
            }
        }
        self.reorder.release_with(u64::MAX, |ev| f(&ev));
    }

    /// Waits [`POLL`], then appends, in timestamp order, the events that
    /// every ring has been read past (see `merge`); newer ones wait for the
    /// next call. Never fails today; the `Result` is the caller's contract.
    pub async fn next_batch(&mut self, out: &mut Vec<KernelEvent>) -> io::Result<()> {
        self.ready().await?;
        let mark = self.tick();
        self.reorder.release(mark, out);
        Ok(())
    }

    /// Appends everything in the rings and everything held back, in
    /// timestamp order, without waiting: the end of a trace.
    pub fn drain(&mut self, out: &mut Vec<KernelEvent>) {
        for _ in 0..MAX_FINAL_TICKS {
            let mark = self.tick();
            self.reorder.release(mark, out);
            if !self.backlog {
                break;
            }
        }
        self.reorder.release_all(out);
    }

    /// Gives every event of a socket known by a tracer-made id the cookie
    /// the kernel made for it later (trace joins its client's `SO_COOKIE`
    /// to the kernel's events). `events` must hold the whole run, as
    /// trace's does after [`EventStream::drain`]: a socket keeps one
    /// identity throughout.
    pub fn apply_aliases(&self, events: &mut [KernelEvent]) {
        if self.aliases.is_empty() {
            return;
        }
        for e in events {
            if let Some(&cookie) = self.aliases.get(&e.cookie) {
                e.cookie = cookie;
            }
        }
    }

    /// Reads every ring (at most [`MAX_PER_RING`] records each) and returns
    /// the watermark up to which what was read can be released in order:
    /// the tick's start minus the merge's margin, and no later than the
    /// last record read from a ring that was left with records in it (what
    /// it still holds is newer).
    fn tick(&mut self) -> u64 {
        let mut mark = watermark(monotonic_ns());
        self.backlog = false;
        for i in 0..self.rings.len() {
            if let Some(last) = self.read_ring(i) {
                mark = mark.min(last);
                self.backlog = true;
            }
        }
        mark
    }

    /// Events handed out after a newer one (their commit lagged their
    /// timestamp by more than the merge's margin).
    pub fn late(&self) -> u64 {
        self.reorder.late
    }

    /// Reads ring `i`; Some(timestamp of the last record read) when it
    /// stopped at [`MAX_PER_RING`] with records left.
    fn read_ring(&mut self, i: usize) -> Option<u64> {
        let ring = &mut self.rings[i];
        let mut last = 0;
        for _ in 0..MAX_PER_RING {
            // Empty: nothing is left behind in this ring.
            let item = ring.next()?;
            if let Some((id, cookie)) = cookie_alias(&item) {
                self.aliases.insert(id, cookie);
                continue;
            }
            let reorder = &mut self.reorder;
            // In record order: a segment's end, a head, then its I/O (the
            // sort keeps the order of equal timestamps). attach reads a
            // request line before it counts the bytes that carried it, so
            // the send belongs to that request.
            match decode_into(&item, |ev| {
                last = ev.ts_ns;
                reorder.push(ev);
            }) {
                Ok(()) => {}
                Err(_) => self.undecodable += 1,
            }
        }
        Some(last)
    }
}
