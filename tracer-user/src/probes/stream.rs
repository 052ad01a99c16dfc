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

    /// Waits [`POLL`] (or less, if the kernel ever wakes us), then appends
    /// every event that is there to `out`. The programs never ask for a
    /// wake-up: one per event costs more than the event.
    pub async fn next_batch(&mut self, out: &mut Vec<KernelEvent>) -> io::Result<()> {
        match tokio::time::timeout(POLL, self.ring.readable_mut()).await {
            Ok(guard) => {
                let mut guard = guard?;
                guard.clear_ready();
                self.drain(out);
            }
            Err(_) => self.drain(out),
        }
        Ok(())
    }

    /// Appends whatever is in the ring buffer now, without waiting.
    pub fn drain(&mut self, out: &mut Vec<KernelEvent>) {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            match decode(&item) {
                Ok((ev, head)) => {
                    out.push(ev);
                    out.extend(head);
                }
                Err(_) => self.undecodable += 1,
            }
        }
    }
}
