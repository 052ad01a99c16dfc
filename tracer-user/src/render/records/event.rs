//! The `event` line, trace's and attach's alike.
use std::net::SocketAddr;

use serde::Serialize;
use tracer_ebpf::{IPPROTO_UDP, tcp_state};

use super::{LineType, Shown};
use crate::{client::Hook, probes::KernelDetail, render::KernelDetailText};

/// `{"type":"event","source":..,"name":..,"ts_ns":..,"offset_us":..,
/// "socket_cookie":..,[pid, connection,] <fields>,["derived":true,]"request":..}`.
#[derive(Serialize)]
pub struct EventLine<'a> {
    #[serde(rename = "type")]
    pub line: LineType,
    pub source: &'static str,
    pub name: &'static str,
    pub ts_ns: u64,
    pub offset_us: u64,
    pub socket_cookie: Option<u64>,
    /// attach's: which process and connection.
    #[serde(flatten)]
    pub place: Option<Place>,
    #[serde(flatten)]
    pub fields: EventFields<'a>,
    /// Only on kernel-derived Go steps.
    #[serde(skip_serializing_if = "is_false")]
    pub derived: bool,
    pub request: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// Where an attached process's event happened.
#[derive(Serialize)]
pub struct Place {
    pub pid: u32,
    pub connection: Option<u64>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum EventFields<'a> {
    Client(ClientFields<'a>),
    Kernel(KernelFields<'a>),
    /// A step read off the kernel: its name says it all.
    None {},
}

/// A kernel event's own fields.
#[derive(Serialize)]
pub struct KernelFields<'a> {
    pub detail: Shown<KernelDetailText<'a>>,
    pub tid: u32,
    #[serde(flatten)]
    pub(super) what: KernelWhat<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum KernelWhat<'a> {
    Connect {
        /// null: not known on this architecture.
        fd: Option<i32>,
        ret: i32,
        remote_addr: SocketAddr,
        duration_ns: u64,
    },
    State {
        old: &'static str,
        new: &'static str,
        local_addr: SocketAddr,
        remote_addr: SocketAddr,
    },
    Io {
        bytes: i32,
        protocol: &'static str,
    },
    Close {
        fd: i32,
    },
    Destroy {
        freed: bool,
    },
    Retransmit {
        state: &'static str,
    },
    Reset {
        direction: &'static str,
        state: &'static str,
    },
    Socket {
        local_addr: SocketAddr,
        remote_addr: SocketAddr,
        protocol: &'static str,
    },
    Dns {
        host: &'a str,
    },
    DnsDone {
        host: &'a str,
        ret: i32,
        duration_ns: u64,
    },
    Payload {},
}

impl<'a> KernelFields<'a> {
    pub fn new(k: &'a KernelDetail, tid: u32) -> Self {
        let proto = |p: u16| if p == IPPROTO_UDP { "udp" } else { "tcp" };
        let what = match k {
            KernelDetail::Connect {
                fd,
                ret,
                remote,
                duration_ns,
            } => KernelWhat::Connect {
                fd: (*fd >= 0).then_some(*fd),
                ret: *ret,
                remote_addr: *remote,
                duration_ns: *duration_ns,
            },
            KernelDetail::State {
                old,
                new,
                local,
                remote,
            } => KernelWhat::State {
                old: tcp_state::name(*old),
                new: tcp_state::name(*new),
                local_addr: *local,
                remote_addr: *remote,
            },
            KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
                KernelWhat::Io {
                    bytes: *bytes,
                    protocol: proto(*protocol),
                }
            }
            KernelDetail::Close { fd } => KernelWhat::Close { fd: *fd },
            KernelDetail::Destroy => KernelWhat::Destroy { freed: true },
            KernelDetail::Retransmit { state } => KernelWhat::Retransmit {
                state: tcp_state::name(*state),
            },
            KernelDetail::Reset { sent, state } => KernelWhat::Reset {
                direction: if *sent { "sent" } else { "received" },
                state: tcp_state::name(*state),
            },
            KernelDetail::Socket {
                local,
                remote,
                protocol,
            } => KernelWhat::Socket {
                local_addr: *local,
                remote_addr: *remote,
                protocol: proto(*protocol),
            },
            KernelDetail::Payload { .. }
            | KernelDetail::Plaintext { .. }
            | KernelDetail::SegmentEnd(_) => KernelWhat::Payload {},
            KernelDetail::DnsStart { host } => KernelWhat::Dns { host },
            KernelDetail::DnsDone {
                host,
                ret,
                duration_ns,
            } => KernelWhat::DnsDone {
                host,
                ret: *ret,
                duration_ns: *duration_ns,
            },
        };
        Self {
            detail: Shown(KernelDetailText(k)),
            tid,
            what,
        }
    }
}

/// A client hook's fields (trace only: few lines, so `detail` is a String).
#[derive(Serialize)]
pub struct ClientFields<'a> {
    pub detail: String,
    #[serde(flatten)]
    pub(super) hook: HookFields<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum HookFields<'a> {
    GotConn {
        reused: bool,
        was_idle: bool,
        idle_time_ns: Option<u64>,
        local_addr: Option<SocketAddr>,
        remote_addr: Option<SocketAddr>,
    },
    Status {
        status: u16,
    },
    Body {
        bytes: u64,
    },
    Error {
        error: &'a str,
    },
    None {},
}

impl<'a> ClientFields<'a> {
    pub fn new(h: &'a Hook) -> Self {
        let hook = match h {
            Hook::GotConn {
                reused,
                was_idle,
                idle_time_ns,
                local_addr,
                remote_addr,
            } => HookFields::GotConn {
                reused: *reused,
                was_idle: *was_idle,
                idle_time_ns: *idle_time_ns,
                local_addr: *local_addr,
                remote_addr: *remote_addr,
            },
            Hook::GotResponseHeaders { status, .. } => HookFields::Status { status: *status },
            Hook::BodyDone { bytes } => HookFields::Body { bytes: *bytes },
            Hook::DNSDone { error: Some(e), .. }
            | Hook::ConnectDone { error: Some(e), .. }
            | Hook::TLSHandshakeDone { error: Some(e), .. }
            | Hook::PutIdleConn { error: Some(e) } => HookFields::Error { error: e },
            _ => HookFields::None {},
        };
        Self {
            detail: h.detail(),
            hook,
        }
    }
}
