//! The per-CPU ring buffers, polled and merged into one ordered stream.
use std::io;

use aya::maps::{MapData, RingBuf};

use super::{
    KernelEvent,
    decode::decode,
    merge::{Reorder, watermark},
};
use crate::clock::monotonic_ns;

/// How often the reader empties the rings. The programs never ask for a
/// wake-up: one per event costs more than the event.
const POLL: std::time::Duration = std::time::Duration::from_millis(10);

pub struct EventStream {
    rings: Vec<RingBuf<MapData>>,
    reorder: Reorder<KernelEvent>,
    /// Events released to a `for_each_*` call; kept to reuse its memory.
    released: Vec<KernelEvent>,
    /// Records that did not decode (a userspace/kernel ABI mismatch).
    pub undecodable: u64,
}

impl EventStream {
    pub(super) fn new(rings: Vec<RingBuf<MapData>>) -> Self {
        Self {
            rings,
            reorder: Reorder::default(),
            released: Vec::new(),
            undecodable: 0,
        }
    }

    /// Waits [`POLL`]: the programs never wake the reader. Never fails
    /// today; the `Result` is the caller's contract.
    pub async fn ready(&mut self) -> io::Result<()> {
        tokio::time::sleep(POLL).await;
        Ok(())
    }

    /// Hands to `f`, in timestamp order, the events that every ring has been
    /// read past (as [`EventStream::next_batch`], without waiting). attach
    /// uses this rather than a batch of its own: the events are lent, and
    /// the buffer they are released into is reused from call to call.
    pub fn for_each_ready(&mut self, f: impl FnMut(&KernelEvent)) {
        let start = monotonic_ns();
        self.read_rings();
        self.reorder.release(watermark(start), &mut self.released);
        self.lend(f);
    }

    /// As [`EventStream::for_each_ready`], but everything: the end of a run.
    pub fn for_each_remaining(&mut self, f: impl FnMut(&KernelEvent)) {
        self.read_rings();
        self.reorder.release_all(&mut self.released);
        self.lend(f);
    }

    fn lend(&mut self, f: impl FnMut(&KernelEvent)) {
        self.released.iter().for_each(f);
        self.released.clear();
    }

    /// Waits [`POLL`], then appends, in timestamp order, the events that
    /// every ring has been read past (see `merge`); newer ones wait for the
    /// next call. Never fails today; the `Result` is the caller's contract.
    pub async fn next_batch(&mut self, out: &mut Vec<KernelEvent>) -> io::Result<()> {
        tokio::time::sleep(POLL).await;
        let start = monotonic_ns();
        self.read_rings();
        self.reorder.release(watermark(start), out);
        Ok(())
    }

    /// Appends everything in the rings and everything held back, in
    /// timestamp order, without waiting: the end of a trace.
    pub fn drain(&mut self, out: &mut Vec<KernelEvent>) {
        self.read_rings();
        self.reorder.release_all(out);
    }

    /// Events handed out after a newer one (their commit lagged their
    /// timestamp by more than the merge's margin).
    pub fn late(&self) -> u64 {
        self.reorder.late
    }

    fn read_rings(&mut self) {
        for ring in &mut self.rings {
            while let Some(item) = ring.next() {
                match decode(&item) {
                    Ok((ev, head)) => {
                        self.reorder.push(ev);
                        if let Some(head) = head {
                            self.reorder.push(head);
                        }
                    }
                    Err(_) => self.undecodable += 1,
                }
            }
        }
    }
}
