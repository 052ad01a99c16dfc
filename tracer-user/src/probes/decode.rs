//! Ring-buffer records -> typed [`KernelEvent`]s. Never panics: a record
//! that is short or of an unknown kind is returned as an error.
use std::{
    mem::offset_of,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use super::head::PayloadHead;
use tracer_ebpf::{
    AF_INET6, CloseEvent, ConnectEvent, DIRECTION_SEND, DnsEvent, EventHeader, EventKind,
    FourTuple, IoEvent, PAYLOAD_HEAD, PayloadEvent, SegmentEvent, SegmentSummary, SocketEvent,
    StateEvent, TcpSignalEvent,
};

/// The kernel's socket identity (`bpf_get_socket_cookie`, `SO_COOKIE`).
pub type SocketCookie = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelEvent {
    pub ts_ns: u64,
    pub tgid: u32,
    /// 0 when the hook ran in softirq context.
    pub tid: u32,
    /// 0 when unknown.
    pub cookie: SocketCookie,
    pub what: KernelDetail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelDetail {
    /// A TCP handshake, stamped at its SYN_SENT (inside connect(2)) and
    /// reported when it ended.
    Connect {
        /// The fd connect(2) was called with; -1 when unknown (not x86_64).
        fd: i32,
        /// 0 established; `-errno` of the socket when the handshake failed;
        /// -115 (`CONNECT_ABANDONED`) when it was closed before it ended.
        ret: i32,
        remote: SocketAddr,
        /// SYN_SENT to ESTABLISHED (or to CLOSE).
        duration_ns: u64,
    },
    State {
        old: u32,
        new: u32,
        local: SocketAddr,
        remote: SocketAddr,
    },
    Send {
        bytes: i32,
        protocol: u16,
    },
    Recv {
        bytes: i32,
        protocol: u16,
    },
    /// close(2) of `fd` released the socket (its state changed in it).
    Close {
        fd: i32,
    },
    Destroy,
    /// TCP retransmitted a segment; `state` is the socket's then.
    Retransmit {
        state: u32,
    },
    /// A reset left (`sent`) or arrived on the socket.
    Reset {
        sent: bool,
        state: u32,
    },
    /// First sight of a socket we did not see connect.
    Socket {
        local: SocketAddr,
        remote: SocketAddr,
        protocol: u16,
    },
    /// The first bytes (at most 128) of one send or recv (attach mode).
    Payload {
        send: bool,
        /// Bytes the whole send or recv moved.
        len: u32,
        head: PayloadHead,
    },
    /// Plaintext of one TLS library call (OpenSSL `SSL_write`/`SSL_read`,
    /// attach): its first bytes (at most 128), on the socket of the
    /// send/recv the call made. No kernel I/O: the wire's encrypted bytes
    /// come as their own events.
    Plaintext {
        send: bool,
        /// Plaintext bytes the call wrote or read.
        len: u32,
        head: PayloadHead,
    },
    /// libc `getaddrinfo(host, ...)` was called.
    DnsStart {
        host: String,
    },
    /// libc `getaddrinfo` returned `ret` (0 or an `EAI_*` code).
    DnsDone {
        host: String,
        ret: i32,
        duration_ns: u64,
    },
    /// attach's segments: the end of a socket's run of I/O in one direction
    /// whose first I/O came as its own event (see tracer-ebpf's `segment`).
    /// Stamped when the next segment began; its own times are inside.
    SegmentEnd(SegmentSummary),
}

impl KernelDetail {
    /// The contract's name: connect, state, send, recv, close (and attach's
    /// payload and DNS events).
    pub fn name(&self) -> &'static str {
        match self {
            KernelDetail::Connect { .. } => "connect",
            KernelDetail::State { .. } => "state",
            KernelDetail::Send { .. } => "send",
            KernelDetail::Recv { .. } => "recv",
            KernelDetail::Close { .. } | KernelDetail::Destroy => "close",
            KernelDetail::Retransmit { .. } => "retransmit",
            KernelDetail::Reset { .. } => "reset",
            KernelDetail::Socket { .. } => "socket",
            KernelDetail::Payload { .. } => "payload",
            KernelDetail::Plaintext { .. } => "plaintext",
            KernelDetail::DnsStart { .. } => "dns_start",
            KernelDetail::DnsDone { .. } => "dns_done",
            KernelDetail::SegmentEnd(_) => "segment",
        }
    }
}

impl KernelEvent {
    pub fn name(&self) -> &'static str {
        self.what.name()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its kind needs")]
    Short(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
}

/// Copies a `T` out of the front of `bytes` (ring-buffer data is only
/// 8-byte aligned, and may be short).
fn read<T: aya::Pod>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: length checked; T is Pod, so any bytes are a valid T.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn addr(family: u16, raw: [u8; 16], port: u16) -> SocketAddr {
    let ip = if family == AF_INET6 {
        IpAddr::V6(Ipv6Addr::from(raw))
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    };
    SocketAddr::new(ip, port)
}

fn local(t: &FourTuple) -> SocketAddr {
    addr(t.family, t.saddr, t.sport)
}

fn remote(t: &FourTuple) -> SocketAddr {
    addr(t.family, t.daddr, t.dport)
}

/// An event of the record whose header is `h`.
fn at(h: &EventHeader, what: KernelDetail) -> KernelEvent {
    KernelEvent {
        ts_ns: h.ts_ns,
        tgid: h.tgid,
        tid: h.tid,
        cookie: h.cookie,
        what,
    }
}

/// (tracer-made id, socket cookie) when the record is a
/// [`tracer_ebpf::CookieAliasEvent`]; None for every other record.
pub fn cookie_alias(bytes: &[u8]) -> Option<(u64, u64)> {
    let h: EventHeader = read(bytes).ok()?;
    if h.kind != EventKind::CookieAlias as u32 {
        return None;
    }
    let e: tracer_ebpf::CookieAliasEvent = read(bytes).ok()?;
    Some((h.cookie, e.skc_cookie))
}

/// One record as the events it holds, in the order they happened: the end
/// of the previous segment (segment records), the payload head, the I/O
/// that carried it, or the one event of any other record.
pub fn decode_into(bytes: &[u8], mut out: impl FnMut(KernelEvent)) -> Result<(), DecodeError> {
    let h: EventHeader = read(bytes)?;
    if h.kind != EventKind::Segment as u32 {
        let (ev, head) = decode(bytes)?;
        if let Some(head) = head {
            out(head);
        }
        out(ev);
        return Ok(());
    }
    let e: SegmentEvent = read(bytes)?;
    let event = |what| at(&h, what);
    // A segment of one I/O came whole with its own record.
    if e.prev.ios > 1 {
        out(event(KernelDetail::SegmentEnd(e.prev)));
    }
    let send = e.direction == DIRECTION_SEND;
    let captured = (e.captured as usize).min(PAYLOAD_HEAD);
    // With no head (no user buffer) the I/O still counts.
    if captured > 0 {
        out(event(KernelDetail::Payload {
            send,
            len: e.len,
            head: PayloadHead::new(&e.data[..captured]),
        }));
    }
    let (bytes, protocol) = (e.len as i32, e.protocol);
    out(event(if send {
        KernelDetail::Send { bytes, protocol }
    } else {
        KernelDetail::Recv { bytes, protocol }
    }));
    Ok(())
}

/// One record: its kernel event and, for an I/O that carries its payload
/// head (attach mode), that head as a second event at the same time.
pub fn decode(bytes: &[u8]) -> Result<(KernelEvent, Option<KernelEvent>), DecodeError> {
    let h: EventHeader = read(bytes)?;
    let event = |what| at(&h, what);
    let kind = EventKind::from_u32(h.kind).ok_or(DecodeError::UnknownKind(h.kind))?;
    let what = match kind {
        EventKind::Connect => {
            let e: ConnectEvent = read(bytes)?;
            KernelDetail::Connect {
                fd: e.fd,
                ret: e.ret,
                remote: remote(&e.tuple),
                duration_ns: e.duration_ns,
            }
        }
        EventKind::State => {
            let e: StateEvent = read(bytes)?;
            KernelDetail::State {
                old: e.old_state,
                new: e.new_state,
                local: local(&e.tuple),
                remote: remote(&e.tuple),
            }
        }
        EventKind::Send | EventKind::Recv => {
            let e: IoEvent = read(bytes)?;
            let (bytes, protocol) = (e.bytes, e.protocol);
            if kind == EventKind::Send {
                KernelDetail::Send { bytes, protocol }
            } else {
                KernelDetail::Recv { bytes, protocol }
            }
        }
        EventKind::Close => KernelDetail::Close {
            fd: read::<CloseEvent>(bytes)?.fd,
        },
        EventKind::Destroy => KernelDetail::Destroy,
        EventKind::Retransmit => KernelDetail::Retransmit {
            state: read::<TcpSignalEvent>(bytes)?.state,
        },
        EventKind::ResetSent | EventKind::ResetReceived => KernelDetail::Reset {
            sent: kind == EventKind::ResetSent,
            state: read::<TcpSignalEvent>(bytes)?.state,
        },
        EventKind::Socket => {
            let e: SocketEvent = read(bytes)?;
            KernelDetail::Socket {
                local: local(&e.tuple),
                remote: remote(&e.tuple),
                protocol: e.tuple.protocol,
            }
        }
        EventKind::Payload => {
            // Only the captured bytes of the head are copied: the rest of
            // the record's 128 are not the payload's, and reading them cost
            // cache lines the kernel just wrote from another CPU.
            if bytes.len() < size_of::<PayloadEvent>() {
                return Err(DecodeError::Short(bytes.len()));
            }
            let field = |offset: usize| read::<u32>(&bytes[offset..]);
            let len = field(offset_of!(PayloadEvent, len))?;
            let send = field(offset_of!(PayloadEvent, direction))? == DIRECTION_SEND;
            let captured = (field(offset_of!(PayloadEvent, captured))? as usize).min(PAYLOAD_HEAD);
            let protocol: u16 = read(&bytes[offset_of!(PayloadEvent, protocol)..])?;
            let bytes_moved = len as i32;
            let io = if send {
                KernelDetail::Send {
                    bytes: bytes_moved,
                    protocol,
                }
            } else {
                KernelDetail::Recv {
                    bytes: bytes_moved,
                    protocol,
                }
            };
            let data = offset_of!(PayloadEvent, data);
            let head = KernelDetail::Payload {
                send,
                len,
                head: PayloadHead::new(&bytes[data..data + captured]),
            };
            return Ok((event(io), Some(event(head))));
        }
        EventKind::Plaintext => {
            if bytes.len() < size_of::<PayloadEvent>() {
                return Err(DecodeError::Short(bytes.len()));
            }
            let e: PayloadEvent = read(bytes)?;
            let captured = (e.captured as usize).min(PAYLOAD_HEAD);
            KernelDetail::Plaintext {
                send: e.direction == DIRECTION_SEND,
                len: e.len,
                head: PayloadHead::new(&e.data[..captured]),
            }
        }
        // Read by the stream itself (`cookie_alias`), never an event.
        EventKind::Segment | EventKind::CookieAlias => {
            return Err(DecodeError::UnknownKind(h.kind));
        }
        EventKind::DnsStart | EventKind::DnsDone => {
            let e: DnsEvent = read(bytes)?;
            let end = e.host.iter().position(|&b| b == 0).unwrap_or(e.host.len());
            let host = String::from_utf8_lossy(&e.host[..end]).into_owned();
            if kind == EventKind::DnsStart {
                KernelDetail::DnsStart { host }
            } else {
                KernelDetail::DnsDone {
                    host,
                    ret: e.ret,
                    duration_ns: e.duration_ns,
                }
            }
        }
    };
    Ok((event(what), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: aya::Pod>(v: &T) -> Vec<u8> {
        // SAFETY: Pod values are plain bytes.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    #[test]
    fn decodes_a_send() {
        let ev = IoEvent {
            header: EventHeader {
                kind: EventKind::Send as u32,
                ts_ns: 5,
                tgid: 7,
                tid: 8,
                cookie: 9,
                cpu: 0,
            },
            bytes: 100,
            protocol: 6,
            family: 2,
        };
        let (k, head) = decode(&bytes_of(&ev)).unwrap();
        assert_eq!(head, None);
        assert_eq!(
            k.what,
            KernelDetail::Send {
                bytes: 100,
                protocol: 6
            }
        );
        assert_eq!((k.ts_ns, k.tgid, k.tid, k.cookie), (5, 7, 8, 9));
    }

    #[test]
    fn an_io_with_its_head_is_the_io_then_the_head() {
        let mut data = [0u8; PAYLOAD_HEAD];
        data[..14].copy_from_slice(b"GET / HTTP/1.1");
        let ev = PayloadEvent {
            header: EventHeader {
                kind: EventKind::Payload as u32,
                ts_ns: 5,
                tgid: 7,
                tid: 8,
                cookie: 9,
                cpu: 0,
            },
            len: 300,
            direction: tracer_ebpf::DIRECTION_RECV,
            captured: 14,
            protocol: 6,
            family: 2,
            data,
        };
        let (io, head) = decode(&bytes_of(&ev)).unwrap();
        let at = |what| KernelEvent {
            ts_ns: 5,
            tgid: 7,
            tid: 8,
            cookie: 9,
            what,
        };
        assert_eq!(
            io,
            at(KernelDetail::Recv {
                bytes: 300,
                protocol: 6
            })
        );
        assert_eq!(
            head,
            Some(at(KernelDetail::Payload {
                send: false,
                len: 300,
                head: PayloadHead::new(b"GET / HTTP/1.1")
            }))
        );
    }

    #[test]
    fn every_prefix_of_every_kind_decodes_or_errs() {
        let mut buf = vec![0u8; 256];
        for kind in 0..12u32 {
            buf[..4].copy_from_slice(&kind.to_le_bytes());
            for len in 0..buf.len() {
                let _ = decode(&buf[..len]);
            }
        }
        assert_eq!(decode(&[1, 0, 0]), Err(DecodeError::Short(3)));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Whatever the ring buffer hands over, decode answers Ok or Err.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode(&bytes);
            }

            /// Any record with a known kind in front decodes or errs, at any length.
            #[test]
            fn known_kinds_with_arbitrary_bodies_never_panic(
                kind in 0u32..16,
                mut bytes in proptest::collection::vec(any::<u8>(), 4..512),
            ) {
                bytes[..4].copy_from_slice(&kind.to_le_bytes());
                let _ = decode(&bytes);
            }

            /// A send or recv the kernel wrote comes back field for field,
            /// with or without trailing bytes (records are 8-byte padded).
            #[test]
            fn io_events_round_trip(
                send in any::<bool>(),
                (ts_ns, tgid, tid, cookie, cpu) in (any::<u64>(), any::<u32>(), any::<u32>(), any::<u64>(), any::<u32>()),
                (bytes, protocol, family) in (any::<i32>(), any::<u16>(), any::<u16>()),
                tail in proptest::collection::vec(any::<u8>(), 0..16),
            ) {
                let kind = if send { EventKind::Send } else { EventKind::Recv };
                let ev = IoEvent {
                    header: EventHeader { kind: kind as u32, ts_ns, tgid, tid, cookie, cpu },
                    bytes,
                    protocol,
                    family,
                };
                let mut raw = bytes_of(&ev);
                raw.extend_from_slice(&tail);
                let (k, head) = decode(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(head, None);
                let what = if send {
                    KernelDetail::Send { bytes, protocol }
                } else {
                    KernelDetail::Recv { bytes, protocol }
                };
                prop_assert_eq!(k, KernelEvent { ts_ns, tgid, tid, cookie, what });
                // Cut short, it is an error, not a guess.
                prop_assert_eq!(
                    decode(&raw[..size_of::<IoEvent>() - 1]),
                    Err(DecodeError::Short(size_of::<IoEvent>() - 1))
                );
            }

            /// A payload head comes back as the bytes the kernel captured,
            /// never more than it says nor than the head holds.
            #[test]
            fn payload_heads_round_trip(
                send in any::<bool>(),
                len in any::<u32>(),
                captured in 0u32..300,
                data in proptest::collection::vec(any::<u8>(), PAYLOAD_HEAD),
            ) {
                let mut ev = PayloadEvent {
                    header: EventHeader { kind: EventKind::Payload as u32, ts_ns: 1, tgid: 2, tid: 3, cookie: 4, cpu: 0 },
                    len,
                    direction: if send { DIRECTION_SEND } else { tracer_ebpf::DIRECTION_RECV },
                    captured,
                    protocol: 6,
                    family: 2,
                    data: [0; PAYLOAD_HEAD],
                };
                ev.data.copy_from_slice(&data);
                let (io, k) = decode(&bytes_of(&ev)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(io.name(), if send { "send" } else { "recv" });
                let Some(KernelDetail::Payload { send: s, len: l, head }) = k.map(|k| k.what) else {
                    return Err(TestCaseError::fail("no payload"));
                };
                prop_assert_eq!((s, l), (send, len));
                prop_assert_eq!(&*head, &data[..(captured as usize).min(PAYLOAD_HEAD)]);
            }
        }
    }
}
