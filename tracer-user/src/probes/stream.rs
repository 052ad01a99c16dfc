//! The ring buffer, read through tokio's `AsyncFd`.
use std::io;

use aya::maps::{Map, MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use super::{KernelEvent, ProbeError, decode::decode};
use tracer_ebpf::names;

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

    /// Waits until the kernel has written events, then appends all that are
    /// there to `out`.
    pub async fn next_batch(&mut self, out: &mut Vec<KernelEvent>) -> io::Result<()> {
        let mut guard = self.ring.readable_mut().await?;
        let ring = guard.get_inner_mut();
        while let Some(item) = ring.next() {
            match decode(&item) {
                Ok(ev) => out.push(ev),
                Err(_) => self.undecodable += 1,
            }
        }
        guard.clear_ready();
        Ok(())
    }

    /// Appends whatever is in the ring buffer now, without waiting.
    pub fn drain(&mut self, out: &mut Vec<KernelEvent>) {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            match decode(&item) {
                Ok(ev) => out.push(ev),
                Err(_) => self.undecodable += 1,
            }
        }
    }
}
