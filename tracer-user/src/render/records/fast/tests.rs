//! The hand-written line is serde's bytes for the same record, whatever
//! the kernel or the client reported.
#![allow(clippy::unwrap_used, reason = "test code")]
use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use tracer_ebpf::IPPROTO_UDP;

use super::super::{
    AttachOnly, AttachRequestLine, ClientFields, EventFields, EventLine, KernelFields, LineType,
    PhasesUs, Place, Shown, Url, write_line,
};
use crate::{
    client::Hook,
    probes::{KernelDetail, PayloadHead},
};

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    (any::<bool>(), any::<[u8; 16]>(), any::<u16>()).prop_map(|(v6, raw, port)| {
        let ip = if v6 {
            IpAddr::from(raw)
        } else {
            IpAddr::from([raw[0], raw[1], raw[2], raw[3]])
        };
        SocketAddr::new(ip, port)
    })
}

/// Any kernel event detail, with protocols and errnos near the real ones.
pub fn kernel_detail_strategy() -> impl Strategy<Value = KernelDetail> {
    let proto = prop_oneof![Just(6u16), Just(IPPROTO_UDP), any::<u16>()];
    let ret = prop_oneof![Just(0i32), Just(-115), Just(-111), any::<i32>()];
    prop_oneof![
        (any::<i32>(), ret.clone(), socket_addr(), any::<u64>()).prop_map(
            |(fd, ret, remote, duration_ns)| KernelDetail::Connect {
                fd,
                ret,
                remote,
                duration_ns
            }
        ),
        (0u32..16, any::<u32>(), socket_addr(), socket_addr()).prop_map(
            |(old, new, local, remote)| KernelDetail::State {
                old,
                new,
                local,
                remote
            }
        ),
        (any::<i32>(), proto.clone())
            .prop_map(|(bytes, protocol)| KernelDetail::Send { bytes, protocol }),
        (-200i32..200, proto.clone())
            .prop_map(|(bytes, protocol)| KernelDetail::Recv { bytes, protocol }),
        any::<i32>().prop_map(|fd| KernelDetail::Close { fd }),
        Just(KernelDetail::Destroy),
        (0u32..16).prop_map(|state| KernelDetail::Retransmit { state }),
        (any::<bool>(), 0u32..16).prop_map(|(sent, state)| KernelDetail::Reset { sent, state }),
        (
            any::<bool>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..140)
        )
            .prop_map(|(send, len, head)| KernelDetail::Payload {
                send,
                len,
                head: PayloadHead::new(&head)
            }),
        (socket_addr(), socket_addr(), proto).prop_map(|(local, remote, protocol)| {
            KernelDetail::Socket {
                local,
                remote,
                protocol,
            }
        }),
        any::<String>().prop_map(|host| KernelDetail::DnsStart { host }),
        (any::<String>(), ret, any::<u64>()).prop_map(|(host, ret, duration_ns)| {
            KernelDetail::DnsDone {
                host,
                ret,
                duration_ns,
            }
        }),
    ]
}

/// Client hooks with fields of their own, and one without.
fn hook_strategy() -> impl Strategy<Value = Hook> {
    let addr = || proptest::option::of(socket_addr());
    prop_oneof![
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(any::<u64>()),
            addr(),
            addr()
        )
            .prop_map(
                |(reused, was_idle, idle_time_ns, local_addr, remote_addr)| {
                    Hook::GotConn {
                        reused,
                        was_idle,
                        idle_time_ns,
                        local_addr,
                        remote_addr,
                    }
                }
            ),
        (any::<u16>(), any::<String>())
            .prop_map(|(status, version)| Hook::GotResponseHeaders { status, version }),
        any::<u64>().prop_map(|bytes| Hook::BodyDone { bytes }),
        proptest::option::of(any::<String>()).prop_map(|error| Hook::PutIdleConn { error }),
        any::<String>().prop_map(|host| Hook::DNSStart { host }),
        Just(Hook::WroteRequest),
    ]
}

fn both(line: &EventLine<'_>) -> (String, String) {
    let (mut fast, mut serde) = (b"x".to_vec(), b"x".to_vec());
    line.write_fast(&mut fast);
    write_line(&mut serde, line);
    (
        String::from_utf8(fast).unwrap(),
        String::from_utf8(serde).unwrap(),
    )
}

fn line<'a>(
    fields: EventFields<'a>,
    numbers: (u64, u64, Option<u64>, Option<u64>),
    place: Option<(u32, Option<u64>)>,
    derived: bool,
) -> EventLine<'a> {
    let (ts_ns, offset_us, socket_cookie, request) = numbers;
    EventLine {
        line: LineType::Event,
        source: "kernel",
        name: "send",
        ts_ns,
        offset_us,
        socket_cookie,
        place: place.map(|(pid, connection)| Place { pid, connection }),
        fields,
        derived,
        request,
    }
}

fn numbers() -> impl Strategy<Value = (u64, u64, Option<u64>, Option<u64>)> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
    )
}

proptest! {
    #[test]
    fn kernel_event_lines_are_serdes_bytes(
        k in kernel_detail_strategy(),
        tid in any::<u32>(),
        numbers in numbers(),
        place in proptest::option::of((any::<u32>(), proptest::option::of(any::<u64>()))),
        derived in any::<bool>(),
    ) {
        let (fast, serde) = both(&line(EventFields::Kernel(KernelFields::new(&k, tid)), numbers, place, derived));
        prop_assert_eq!(fast, serde);
    }

    #[test]
    fn client_event_lines_are_serdes_bytes(h in hook_strategy(), numbers in numbers(), derived in any::<bool>()) {
        let (fast, serde) = both(&line(EventFields::Client(ClientFields::new(&h)), numbers, None, derived));
        prop_assert_eq!(fast, serde);
        let (fast, serde) = both(&line(EventFields::None {}, numbers, None, derived));
        prop_assert_eq!(fast, serde);
    }
}

/// Any request line, with text that needs escaping now and then.
#[derive(Debug, Clone)]
struct RequestParts {
    numbers: [u64; 6],
    pid: u32,
    flags: [bool; 3],
    addrs: (Option<SocketAddr>, Option<SocketAddr>),
    status: Option<u16>,
    phases: [Option<u64>; 6],
    known: [Option<u64>; 2],
    text: [String; 4],
    host: Option<String>,
}

fn request_parts() -> impl Strategy<Value = RequestParts> {
    let text = prop_oneof![".*", "[A-Z]{1,7}", "/[a-z0-9/?=&%]{0,20}"];
    (
        any::<[u64; 6]>(),
        any::<u32>(),
        any::<[bool; 3]>(),
        (
            proptest::option::of(socket_addr()),
            proptest::option::of(socket_addr()),
        ),
        proptest::option::of(any::<u16>()),
        any::<[Option<u64>; 6]>(),
        any::<[Option<u64>; 2]>(),
        [text.clone(), text.clone(), text.clone(), text],
        proptest::option::of(".*"),
    )
        .prop_map(
            |(numbers, pid, flags, addrs, status, phases, known, text, host)| RequestParts {
                numbers,
                pid,
                flags,
                addrs,
                status,
                phases,
                known,
                text,
                host,
            },
        )
}

fn request_line(p: &RequestParts) -> AttachRequestLine<'_> {
    let n = p.numbers;
    let [connect, dns, server, tls, total, transfer] = p.phases;
    AttachRequestLine {
        bytes_received: p.known[0],
        bytes_sent: p.known[1],
        connection: Some(n[2]).filter(|_| p.flags[0]),
        error: p.flags[2].then_some(p.text[0].as_str()),
        http_version: (!p.flags[2]).then_some(p.text[0].as_str()),
        kernel_confirmed: p.flags[1],
        local_addr: p.addrs.0,
        method: &p.text[1],
        phases_us: PhasesUs {
            connect,
            dns,
            server,
            tls,
            total,
            transfer,
        },
        remote_addr: p.addrs.1,
        request: n[4],
        reused: p.flags[2],
        reused_from: Some(n[3]).filter(|_| p.flags[1]),
        socket_cookie: Some(n[5]).filter(|_| !p.flags[0]),
        status: p.status,
        line: LineType::Request,
        url: Shown(Url {
            host: p.host.as_deref(),
            target: &p.text[2],
            https: p.text[3].len().is_multiple_of(2),
        }),
        only: AttachOnly {
            direction: if p.flags[0] { "inbound" } else { "outbound" },
            pid: p.pid,
        },
    }
}

proptest! {
    #[test]
    fn request_lines_are_serdes_bytes(p in request_parts()) {
        let line = request_line(&p);
        let (mut fast, mut serde) = (b"x".to_vec(), b"x".to_vec());
        line.write_fast(&mut fast);
        write_line(&mut serde, &line);
        prop_assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(serde).unwrap());
    }
}
