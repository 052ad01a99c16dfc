//! What the rings could not take: the kernel counts lost records per CPU
//! and per event kind (`tracer_ebpf::lost_slot`); these add them up.
use tracer_ebpf::{EventKind, lost_slot, names};

use super::{ProbeError, Probes};

impl Probes {
    /// Events the kernel could not queue because the ring buffer was full.
    pub fn lost_events(&self) -> Result<u64, ProbeError> {
        Ok(self.lost_by_kind()?.iter().map(|(_, n)| n).sum())
    }

    /// The lost events by contract name (`send`, `recv`, `state`, ...),
    /// only the names that lost any.
    pub fn lost_by_kind(&self) -> Result<Vec<(&'static str, u64)>, ProbeError> {
        let mut by_name: Vec<(&'static str, u64)> = Vec::new();
        for slot in 1..lost_slot::SLOTS {
            let Some(name) = EventKind::from_u32(slot).map(kind_name) else {
                continue;
            };
            let n = self.lost_in(slot)?;
            match by_name.iter_mut().find(|(k, _)| *k == name) {
                Some((_, total)) => *total += n,
                None if n > 0 => by_name.push((name, n)),
                None => {}
            }
        }
        Ok(by_name)
    }

    /// Payload heads (attach) that found the ring buffer full.
    pub fn lost_heads(&self) -> Result<u64, ProbeError> {
        self.lost_in(lost_slot::HEADS)
    }

    pub(super) fn lost_in(&self, slot: u32) -> Result<u64, ProbeError> {
        let values = self.lost.get(&slot, 0).map_err(|source| ProbeError::Map {
            name: names::LOST,
            source,
        })?;
        Ok(values.iter().sum())
    }
}

/// The contract's event name of a ring-buffer record kind. A payload record
/// is lost as a head (its I/O is then tried alone), so it never shows here.
fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Connect => "connect",
        EventKind::State => "state",
        EventKind::Send => "send",
        EventKind::Recv => "recv",
        EventKind::Close | EventKind::Destroy => "close",
        EventKind::Socket | EventKind::CookieAlias => "socket",
        EventKind::Payload => "payload",
        EventKind::Segment => "segment",
        EventKind::Plaintext => "plaintext",
        EventKind::DnsStart => "dns_start",
        EventKind::DnsDone => "dns_done",
        EventKind::Retransmit => "retransmit",
        EventKind::ResetSent | EventKind::ResetReceived => "reset",
    }
}
