//! TLS records and hellos in the first bytes of one flight, as far as they
//! were captured (RFC 8446 4.1.2-4.1.4, RFC 5246 7.4.1). All that is read
//! is in the clear: record headers, the hellos, and the type of the
//! message that follows the ServerHello.

pub const CHANGE_CIPHER_SPEC: u8 = 0x14;
pub const HANDSHAKE: u8 = 0x16;
pub const APPLICATION_DATA: u8 = 0x17;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const NEW_SESSION_TICKET: u8 = 4;
const SUPPORTED_VERSIONS: u16 = 0x002b;
const PRE_SHARED_KEY: u16 = 0x0029;
/// pre_shared_key in a ServerHello: type, length, selected_identity.
const PSK_EXTENSION_LEN: usize = 6;
pub const TLS13: u16 = 0x0304;
/// The random of a HelloRetryRequest (SHA-256 of "HelloRetryRequest").
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
/// Record header, handshake header, legacy_version, random.
const SESSION_ID_AT: usize = 5 + 4 + 2 + 32;

/// What the captured bytes say about a message expected at their start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    Is(T),
    /// Cut short: the rest was not captured.
    Short,
    /// Something else.
    Not,
}

/// A session id (at most 32 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionId {
    len: u8,
    bytes: [u8; 32],
}

impl SessionId {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether `buf` starts like a TLS handshake record (type, major version).
pub fn starts_handshake(buf: &[u8]) -> bool {
    matches!(buf, [HANDSHAKE, 3, ..])
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// The handshake message type of the record at the start of `buf`.
fn handshake_type(buf: &[u8]) -> Parsed<u8> {
    match buf {
        [HANDSHAKE, 3, _, _, _, t, ..] => Parsed::Is(*t),
        [HANDSHAKE, 3, ..] | [HANDSHAKE] | [] => Parsed::Short,
        _ => Parsed::Not,
    }
}

/// The session id at [`SESSION_ID_AT`] of a hello.
fn session_id(buf: &[u8]) -> Parsed<SessionId> {
    let Some(&len) = buf.get(SESSION_ID_AT) else {
        return Parsed::Short;
    };
    if len > 32 {
        return Parsed::Not;
    }
    let Some(id) = buf.get(SESSION_ID_AT + 1..SESSION_ID_AT + 1 + usize::from(len)) else {
        return Parsed::Short;
    };
    let mut s = SessionId {
        len,
        bytes: [0; 32],
    };
    s.bytes[..id.len()].copy_from_slice(id);
    Parsed::Is(s)
}

/// The session id of the ClientHello at the start of `buf`.
pub fn client_hello(buf: &[u8]) -> Parsed<SessionId> {
    match handshake_type(buf) {
        Parsed::Is(CLIENT_HELLO) => session_id(buf),
        Parsed::Is(_) | Parsed::Not => Parsed::Not,
        Parsed::Short => Parsed::Short,
    }
}

/// What follows the ServerHello in the server's flight (TLS 1.2): a
/// resumed session goes on with NewSessionTicket or ChangeCipherSpec, a
/// new one with Certificate, ServerKeyExchange and the like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterHello {
    Resumed,
    Full,
    /// Encrypted records (TLS 1.3), or nothing captured.
    Unseen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHello {
    pub retry: bool,
    /// legacy_version, or supported_versions' choice when it was seen.
    pub version: Option<u16>,
    pub session_id: SessionId,
    /// TLS 1.3: whether the server accepted a pre-shared key (resumption),
    /// from its extensions as far as their headers were captured.
    pub psk: Option<bool>,
    pub after: AfterHello,
}

/// The ServerHello at the start of `buf`.
pub fn server_hello(buf: &[u8]) -> Parsed<ServerHello> {
    match handshake_type(buf) {
        Parsed::Is(SERVER_HELLO) => {}
        Parsed::Is(_) | Parsed::Not => return Parsed::Not,
        Parsed::Short => return Parsed::Short,
    }
    let (Some(legacy), Some(random)) = (u16_at(buf, 9), buf.get(11..SESSION_ID_AT)) else {
        return Parsed::Short;
    };
    let session_id = match session_id(buf) {
        Parsed::Is(s) => s,
        Parsed::Short => return Parsed::Short,
        Parsed::Not => return Parsed::Not,
    };
    // Session id, cipher suite (2), compression (1), extensions length (2).
    let ext_len_at = SESSION_ID_AT + 1 + usize::from(session_id.len) + 3;
    let Some(ext_len) = u16_at(buf, ext_len_at) else {
        return Parsed::Short;
    };
    let (start, end) = (ext_len_at + 2, ext_len_at + 2 + usize::from(ext_len));
    let (mut at, mut chosen, mut psk_seen) = (start, None, false);
    while at < end {
        let (Some(kind), Some(len)) = (u16_at(buf, at), u16_at(buf, at + 2)) else {
            break;
        };
        match kind {
            SUPPORTED_VERSIONS => chosen = u16_at(buf, at + 4).or(Some(0)),
            PRE_SHARED_KEY => psk_seen = true,
            _ => {}
        }
        at += 4 + usize::from(len);
    }
    // The extensions whose headers were not captured take the rest. A
    // TLS 1.3 ServerHello may carry only supported_versions, key_share
    // and pre_shared_key: with the first seen, 6 bytes left can only be
    // pre_shared_key, none left means there is none.
    let left = end.saturating_sub(at);
    let psk = match (psk_seen, left) {
        (true, _) => Some(true),
        (false, 0) => Some(false),
        (false, PSK_EXTENSION_LEN) if chosen.is_some() => Some(true),
        _ => None,
    };
    let version = match chosen {
        Some(v) if v != 0 => Some(v),
        Some(_) => None,
        // Every extension seen and none chose a version: the legacy one.
        None => (left == 0).then_some(legacy),
    };
    Parsed::Is(ServerHello {
        retry: random == HRR_RANDOM,
        version,
        session_id,
        psk,
        after: after_hello(buf),
    })
}

/// The message after the ServerHello at the start of `buf`: in the same
/// record when the hello does not fill it, else the next record.
fn after_hello(buf: &[u8]) -> AfterHello {
    let (Some(record), Some(&[a, b, c])) = (u16_at(buf, 3), buf.get(6..9)) else {
        return AfterHello::Unseen;
    };
    let hello_end = 9 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c));
    let record_end = 5 + usize::from(record);
    let kind = if hello_end < record_end {
        buf.get(hello_end).copied()
    } else {
        match buf.get(record_end..) {
            Some([CHANGE_CIPHER_SPEC, ..]) => return AfterHello::Resumed,
            Some(next) => match handshake_type(next) {
                Parsed::Is(t) => Some(t),
                _ => None,
            },
            None => None,
        }
    };
    match kind {
        Some(NEW_SESSION_TICKET) => AfterHello::Resumed,
        // Certificate, ServerKeyExchange, CertificateRequest, ServerHelloDone.
        Some(11..=14) => AfterHello::Full,
        _ => AfterHello::Unseen,
    }
}
