//! HTTP/2 frame headers (RFC 9113 §4.1): the 9 bytes before every frame,
//! and the checks that tell a frame header from arbitrary bytes.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 9;
/// The largest length a frame header can carry (24 bits).
pub const MAX_FRAME_LEN: u32 = (1 << 24) - 1;

/// The frame types of RFC 9113 §6. Others are extensions a receiver
/// ignores (§5.5); they are kept so the frame chain stays in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl FrameKind {
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Data,
            1 => Self::Headers,
            2 => Self::Priority,
            3 => Self::RstStream,
            4 => Self::Settings,
            5 => Self::PushPromise,
            6 => Self::Ping,
            7 => Self::GoAway,
            8 => Self::WindowUpdate,
            9 => Self::Continuation,
            other => Self::Unknown(other),
        }
    }

    /// Flags this type defines: any other bit set is legal on the wire but
    /// no known implementation sends one, so a sync search rejects it.
    fn defined_flags(self) -> u8 {
        match self {
            Self::Data => flags::END_STREAM | flags::PADDED,
            Self::Headers => {
                flags::END_STREAM | flags::END_HEADERS | flags::PADDED | flags::PRIORITY
            }
            Self::PushPromise => flags::END_HEADERS | flags::PADDED,
            Self::Continuation => flags::END_HEADERS,
            Self::Settings | Self::Ping => flags::ACK,
            _ => 0,
        }
    }

    /// Whether userspace needs this frame's payload (header blocks and
    /// control frames); DATA and the rest are counted, never copied.
    pub fn wants_payload(self) -> bool {
        matches!(
            self,
            Self::Headers
                | Self::PushPromise
                | Self::Continuation
                | Self::Settings
                | Self::RstStream
                | Self::GoAway
        )
    }
}

/// Frame flag bits (RFC 9113 §6).
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length, padding included.
    pub len: u32,
    pub kind: FrameKind,
    pub flags: u8,
    pub stream_id: u32,
}

impl FrameHeader {
    /// Reads a header from the first 9 bytes; `None` when fewer are given.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Self {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: FrameKind::from_byte(b[3]),
            flags: b[4],
            // The reserved top bit is ignored on receipt (§4.1).
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn end_stream(&self) -> bool {
        matches!(self.kind, FrameKind::Data | FrameKind::Headers) && self.has(flags::END_STREAM)
    }

    /// Whether these 9 bytes look like a header a real peer would send:
    /// a known type, only its defined flags, the reserved bit clear, the
    /// stream id and length its type requires. Used only to find frames on
    /// a connection seen mid-way, where a false match costs wrong output.
    pub fn plausible(bytes: &[u8], max_len: u32) -> Option<Self> {
        let h = Self::parse(bytes)?;
        let reserved_clear = bytes[5] & 0x80 == 0;
        let flags_ok = h.flags & !h.kind.defined_flags() == 0;
        let on_stream = h.stream_id != 0;
        let shape_ok = match h.kind {
            FrameKind::Data | FrameKind::Headers | FrameKind::Continuation => on_stream,
            FrameKind::PushPromise => on_stream && h.len >= 4,
            FrameKind::Priority => on_stream && h.len == 5,
            FrameKind::RstStream => on_stream && h.len == 4,
            FrameKind::Settings => {
                !on_stream && h.len % 6 == 0 && (!h.has(flags::ACK) || h.len == 0)
            }
            FrameKind::Ping => !on_stream && h.len == 8,
            FrameKind::GoAway => !on_stream && h.len >= 8,
            FrameKind::WindowUpdate => h.len == 4,
            FrameKind::Unknown(_) => false,
        };
        (reserved_clear && flags_ok && shape_ok && h.len <= max_len).then_some(h)
    }
}

/// Error codes of RST_STREAM and GOAWAY (RFC 9113 §7), by name.
pub fn error_code_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_headers_frame_header() {
        let h = FrameHeader::parse(&[0, 0, 13, 1, 0x5, 0x80, 0, 0, 3]);
        assert_eq!(
            h,
            Some(FrameHeader {
                len: 13,
                kind: FrameKind::Headers,
                flags: 0x5,
                stream_id: 3
            })
        );
        assert!(h.is_some_and(|h| h.end_stream()));
        assert_eq!(FrameHeader::parse(&[0; 8]), None);
    }

    #[test]
    fn plausibility_rejects_what_peers_do_not_send() {
        let ok = [0, 0, 4, 3, 0, 0, 0, 0, 1];
        assert!(FrameHeader::plausible(&ok, 16384).is_some());
        // RST_STREAM on stream 0, wrong length, reserved bit, unknown type.
        assert!(FrameHeader::plausible(&[0, 0, 4, 3, 0, 0, 0, 0, 0], 16384).is_none());
        assert!(FrameHeader::plausible(&[0, 0, 5, 3, 0, 0, 0, 0, 1], 16384).is_none());
        assert!(FrameHeader::plausible(&[0, 0, 4, 3, 0, 0x80, 0, 0, 1], 16384).is_none());
        assert!(FrameHeader::plausible(&[0, 0, 4, 0x20, 0, 0, 0, 0, 1], 16384).is_none());
        // A DATA frame longer than the peer may send.
        assert!(FrameHeader::plausible(&[0, 0x40, 1, 0, 0, 0, 0, 0, 1], 16384).is_none());
    }
}
