//! The JSON output as it was written before the fast writers, through
//! `serde_json::json!`: the tests hold the new writers to the same bytes.
//! Fields are kept in the order they were put.
#![allow(clippy::unwrap_used, reason = "test code")]
use proptest::prelude::*;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use tracer_ebpf::IPPROTO_UDP;

use crate::probes::{KernelDetail, PayloadHead};

/// An object's fields in the order they were put.
#[derive(Default)]
pub struct Fields(pub Vec<(&'static str, Value)>);

impl Fields {
    pub fn put(&mut self, key: &'static str, value: Value) {
        self.0.push((key, value));
    }

    /// The line serde_json writes for these fields, in this order.
    pub fn line(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

pub fn kernel_fields(m: &mut Fields, k: &KernelDetail, tid: u32) {
    let proto = |p: u16| {
        json!(if p == tracer_ebpf::IPPROTO_UDP {
            "udp"
        } else {
            "tcp"
        })
    };
    // The detail text is the renderer's own: its wording has unit tests;
    // what is held to the old bytes here is how the JSON is written.
    m.put("detail", json!(super::kernel_detail(k)));
    m.put("tid", json!(tid));
    match k {
        KernelDetail::Connect {
            fd,
            ret,
            remote,
            duration_ns,
        } => {
            m.put("fd", if *fd >= 0 { json!(fd) } else { Value::Null });
            m.put("ret", json!(ret));
            m.put("remote_addr", json!(remote.to_string()));
            m.put("duration_ns", json!(duration_ns));
        }
        KernelDetail::State {
            old,
            new,
            local,
            remote,
        } => {
            m.put("old", json!(tracer_ebpf::tcp_state::name(*old)));
            m.put("new", json!(tracer_ebpf::tcp_state::name(*new)));
            m.put("local_addr", json!(local.to_string()));
            m.put("remote_addr", json!(remote.to_string()));
        }
        KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
            m.put("bytes", json!(bytes));
            m.put("protocol", proto(*protocol));
        }
        KernelDetail::Close { fd } => {
            m.put("fd", json!(fd));
        }
        KernelDetail::Destroy => {
            m.put("freed", json!(true));
        }
        KernelDetail::Retransmit { state } => {
            m.put("state", json!(tracer_ebpf::tcp_state::name(*state)));
        }
        KernelDetail::Reset { sent, state } => {
            m.put("direction", json!(if *sent { "sent" } else { "received" }));
            m.put("state", json!(tracer_ebpf::tcp_state::name(*state)));
        }
        KernelDetail::Socket {
            local,
            remote,
            protocol,
        } => {
            m.put("local_addr", json!(local.to_string()));
            m.put("remote_addr", json!(remote.to_string()));
            m.put("protocol", proto(*protocol));
        }
        KernelDetail::Payload { .. } | KernelDetail::SegmentEnd(_) => {}
        KernelDetail::DnsStart { host } => {
            m.put("host", json!(host));
        }
        KernelDetail::DnsDone {
            host,
            ret,
            duration_ns,
        } => {
            m.put("host", json!(host));
            m.put("ret", json!(ret));
            m.put("duration_ns", json!(duration_ns));
        }
    }
}

pub fn socket_addr() -> impl Strategy<Value = SocketAddr> {
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
