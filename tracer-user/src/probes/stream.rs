//! The ring buffer, read through tokio's `AsyncFd`.
use std::io;

use aya::maps::{Map, MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use super::{KernelEvent, ProbeError, decode::decode};
use tracer_ebpf::names;

/// How often the reader looks at the ring buffer without a wake-up.
const POLL: std::time::Duration = std::time::Duration::from_millis(10);

pub struct EventStream {
    ring: AsyncFd<RingBuf<MapData>>,
    /// Records that did not decode (a userspace/kernel ABI mismatch).
    pub undecodable: u64,
}

impl EventStream {
    pub(super) fn new(map: Map) -> Result<Self, ProbeError> {
        let ring = RingBuf::try_from(map).map_err(|source| ProbeError::Map {
            name: names::EVENTS,
            source,
        })?;
        // SAFETY: the RingBuf owns its map fd and keeps it open for as long
        // as the AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register(ring) }.map_err(|e| ProbeError::Ring(e.into()))?;
        Ok(Self {
            ring,
            undecodable: 0,
        })
    }

    /// Waits [`POLL`] (or less, if the kernel ever wakes us) for events to
    /// read. The programs never ask for a wake-up: one per event costs more
    /// than the event.
    pub async fn ready(&mut self) -> io::Result<()> {
        if let Ok(guard) = tokio::time::timeout(POLL, self.ring.readable_mut()).await {
            guard?.clear_ready();
        }
        Ok(())
    }

    /// Waits as [`EventStream::ready`] does, then appends every event that
    /// is there to `out`.
    pub async fn next_batch(&mut self, out: &mut Vec<KernelEvent>) -> io::Result<()> {
        self.ready().await?;
        self.drain(out);
        Ok(())
    }

    /// Appends whatever is in the ring buffer now, without waiting.
    pub fn drain(&mut self, out: &mut Vec<KernelEvent>) {
        self.for_each(|ev| out.push(ev.clone()));
    }

    /// Hands each event in the ring buffer now to `f` as it is decoded,
    /// without waiting. attach uses this rather than a batch: at its rates a
    /// batch is thousands of events, a megabyte written and read back.
    /// The event is lent, not moved: it is 170 bytes with its payload head.
    pub fn for_each(&mut self, mut f: impl FnMut(&KernelEvent)) {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            // Borrowed out of the Result: moving them out was a copy each.
            match &decode(&item) {
                Ok((ev, head)) => {
                    f(ev);
                    if let Some(head) = head {
                        f(head);
                    }
                }
                Err(_) => self.undecodable += 1,
            }
        }
    }
}
