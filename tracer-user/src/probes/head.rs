//! The first bytes of one send or recv, held inline in the event.
use std::{fmt, ops::Deref};

use tracer_ebpf::PAYLOAD_HEAD;

/// Up to [`PAYLOAD_HEAD`] bytes. attach gets one with nearly every send and
/// recv; a `Vec` each was a malloc and a free per event.
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadHead {
    len: usize,
    bytes: [u8; PAYLOAD_HEAD],
}

impl PayloadHead {
    /// The first [`PAYLOAD_HEAD`] bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let len = bytes.len().min(PAYLOAD_HEAD);
        let mut head = Self {
            len,
            bytes: [0; PAYLOAD_HEAD],
        };
        head.bytes[..len].copy_from_slice(&bytes[..len]);
        head
    }
}

impl Deref for PayloadHead {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for PayloadHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_the_head() {
        assert_eq!(&*PayloadHead::new(b"GET / HTTP/1.1"), b"GET / HTTP/1.1");
        assert!(PayloadHead::new(b"").is_empty());
        let long = [7u8; PAYLOAD_HEAD + 5];
        assert_eq!(&*PayloadHead::new(&long), &long[..PAYLOAD_HEAD]);
    }
}
