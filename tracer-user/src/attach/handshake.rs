//! The TLS handshake of one connection, from the kernel's own bytes: the
//! payload heads that come wherever a message can begin (each change of
//! direction, and each I/O while a segment is shorter than a head), so
//! for any client, its plaintext probed or not.
//!
//! A flight is a run of I/O in one direction; flight 1 carries the
//! ClientHello, the server's answer starts with its ServerHello (after a
//! HelloRetryRequest, the second one). The handshake is done when the last
//! Finished has crossed the socket: TLS 1.3, and TLS 1.2 resumed, at the
//! client's flight after the server's hello (its Finished); TLS 1.2 new,
//! at the server's flight after that (its ChangeCipherSpec and Finished).
//! Each flight begins with a change of direction, so its first I/O always
//! comes as an event: its time is seen even when its head was not.
use std::fmt;

pub use hello::starts_handshake;
use hello::{
    APPLICATION_DATA, AfterHello, CHANGE_CIPHER_SPEC, HANDSHAKE, Parsed, ServerHello, SessionId,
    TLS13, client_hello, server_hello,
};

#[cfg(test)]
mod captured;
mod hello;

/// Bytes of a flight kept for parsing: the hellos' fixed parts fit in a
/// head; a hello read in pieces (a record header, then its body) is put
/// back together from the heads of its I/Os.
const KEPT: usize = 512;
/// A handshake whose ServerHello has not come by this flight is not one.
const LAST_HELLO_FLIGHT: u8 = 6;

/// What the ClientHello's sender has to say, and the server's answer.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// This process sent the ClientHello (it is the client).
    pub client: bool,
    pub hello_ns: u64,
    /// The number of the current flight (1: the ClientHello's).
    flight: u8,
    /// The current flight's first I/O, and its first bytes as far as its
    /// I/Os were captured whole.
    send: bool,
    start_ns: u64,
    offset: u64,
    bytes: Vec<u8>,
    client_sid: Option<SessionId>,
    /// Flight 1 is not a ClientHello, or no ServerHello came: not TLS.
    not_tls: bool,
    /// The ServerHello that answered the ClientHello, its flight and time.
    server: Option<(u8, u64, ServerHello)>,
    /// The first flight after it from each side: start and first byte.
    client_after: Option<(u64, Option<u8>)>,
    server_after: Option<(u64, Option<u8>)>,
}

impl Handshake {
    /// Flight 1 begins with this I/O (its head starts a handshake record).
    pub fn new(send: bool, ts_ns: u64) -> Self {
        Self {
            client: send,
            hello_ns: ts_ns,
            flight: 1,
            send,
            start_ns: ts_ns,
            offset: 0,
            bytes: Vec::new(),
            client_sid: None,
            not_tls: false,
            server: None,
            client_after: None,
            server_after: None,
        }
    }

    /// Nothing more to learn: it is not TLS, or both flights after the
    /// ServerHello have begun.
    pub fn settled(&self) -> bool {
        self.not_tls || self.server_after.is_some()
    }

    /// An I/O in direction `send` at `ts_ns`, `offset` bytes into that
    /// direction's stream, with its `head` when one was captured.
    pub fn io(&mut self, send: bool, ts_ns: u64, offset: u64, head: Option<&[u8]>) {
        if self.settled() {
            return;
        }
        if send != self.send {
            self.flight += 1;
            (self.send, self.start_ns, self.offset) = (send, ts_ns, offset);
            self.bytes.clear();
            if self.flight > LAST_HELLO_FLIGHT && self.server.is_none() {
                self.not_tls = true;
                return;
            }
        } else if head.is_none() {
            return;
        }
        // Bytes join the flight's only where they continue it.
        if let Some(h) = head
            && self.offset + self.bytes.len() as u64 == offset
            && self.bytes.len() < KEPT
        {
            let take = h.len().min(KEPT - self.bytes.len());
            self.bytes.extend_from_slice(&h[..take]);
        }
        self.look();
        if self.settled() {
            self.bytes = Vec::new();
        }
    }

    /// What the current flight's bytes say, at its place in the handshake.
    fn look(&mut self) {
        let (n, first) = (self.flight, self.bytes.first().copied());
        let client_flight = !n.is_multiple_of(2);
        if n == 1 {
            match client_hello(&self.bytes) {
                Parsed::Is(sid) => self.client_sid = Some(sid),
                Parsed::Not => self.not_tls = true,
                Parsed::Short => {}
            }
            return;
        }
        match self.server {
            None | Some((_, _, ServerHello { retry: true, .. })) if !client_flight => {
                if let Parsed::Is(sh) = server_hello(&self.bytes) {
                    self.server = Some((n, self.start_ns, sh));
                }
            }
            Some((s, _, sh)) if !sh.retry && n == s => {
                // More of the hello's flight was captured: read it again.
                if let Parsed::Is(again) = server_hello(&self.bytes) {
                    self.server = Some((n, self.start_ns, again));
                }
            }
            Some((s, _, sh)) if !sh.retry && n == s + 1 => {
                self.client_after = Some((self.start_ns, first));
            }
            Some((s, _, sh)) if !sh.retry && n == s + 2 => {
                self.server_after = Some((self.start_ns, first));
            }
            _ => {}
        }
    }

    fn hello(&self) -> Option<&ServerHello> {
        self.server
            .as_ref()
            .map(|(_, _, sh)| sh)
            .filter(|sh| !sh.retry)
    }

    /// Whether a ClientHello was seen: a TLS connection.
    pub fn is_tls(&self) -> bool {
        !self.not_tls && self.client_sid.is_some()
    }

    /// The protocol version the server chose (0x0304 for TLS 1.3).
    pub fn version(&self) -> Option<u16> {
        self.hello()?.version
    }

    /// Whether the session was resumed; None when the bytes do not say.
    pub fn resumed(&self) -> Option<bool> {
        let sh = self.hello()?;
        if self.version()? >= TLS13 {
            return sh.psk;
        }
        // TLS 1.2 and older: three signs, each enough; any disagreement
        // and nothing is claimed.
        let after = match sh.after {
            AfterHello::Resumed => Some(true),
            AfterHello::Full => Some(false),
            AfterHello::Unseen => None,
        };
        // A resumed client answers with ChangeCipherSpec at once; a new
        // one first sends its key exchange (a handshake record).
        let client = match self.client_after.and_then(|(_, first)| first) {
            Some(CHANGE_CIPHER_SPEC) => Some(true),
            Some(HANDSHAKE) => Some(false),
            _ => None,
        };
        // The server echoes a session id it resumes.
        let echo = self
            .client_sid
            .filter(|s| !s.is_empty())
            .map(|s| s == sh.session_id);
        let mut signs = [after, client, echo].into_iter().flatten();
        let first = signs.next()?;
        signs.all(|s| s == first).then_some(first)
    }

    /// ClientHello to the server's first flight (its hello), in ns.
    pub fn server_flight_ns(&self) -> Option<u64> {
        self.hello()?;
        let (_, at, _) = self.server?;
        Some(at.saturating_sub(self.hello_ns))
    }

    /// ClientHello to the flight that carries the last Finished, in ns;
    /// None when that flight was not seen, or its first record is not
    /// what it must be (events were lost).
    pub fn handshake_ns(&self) -> Option<u64> {
        let version = self.version()?;
        let (end, first, fits): (_, _, &[u8]) = if version >= TLS13 || self.resumed()? {
            let (at, first) = self.client_after?;
            (at, first, &[CHANGE_CIPHER_SPEC, APPLICATION_DATA])
        } else {
            let (at, first) = self.server_after?;
            (at, first, &[CHANGE_CIPHER_SPEC, HANDSHAKE])
        };
        if first.is_some_and(|b| !fits.contains(&b)) {
            return None;
        }
        Some(end.saturating_sub(self.hello_ns))
    }
}

impl Handshake {
    /// "yes", "no" or "unknown".
    pub fn resumed_word(&self) -> &'static str {
        match self.resumed() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
    }

    pub fn version_name(&self) -> Option<&'static str> {
        self.version().and_then(version_name)
    }
}

/// `tls 1.3, handshake 2.104 ms, resumed: no`, for people.
impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version_name() {
            Some(v) => write!(f, "tls {v}, ")?,
            None => f.write_str("tls version unknown, ")?,
        }
        match self.handshake_ns() {
            Some(ns) => write!(f, "handshake {:.3} ms", ns as f64 / 1e6)?,
            None => f.write_str("handshake time unknown")?,
        }
        write!(f, ", resumed: {}", self.resumed_word())
    }
}

/// "1.3" for 0x0304, and so on.
fn version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0304 => "1.3",
        0x0303 => "1.2",
        0x0302 => "1.1",
        0x0301 => "1.0",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
