//! Retransmits and resets of traced sockets, for the `retransmit` and
//! `reset` findings: `tcp:tcp_retransmit_skb`, `tcp:tcp_send_reset` and
//! `tcp:tcp_receive_reset` as tp_btf. They run mostly in softirq or timer
//! context, where `current` is any task, so they are attributed by the
//! socket's owner (`COOKIE_OWNER`), like the destroy hook: a socket of any
//! other process costs one cookie lookup and returns.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use tracer_ebpf::{EventKind, TcpSignalEvent};

use crate::common::{cookie_of, current, emit, header, owner_of};

/// `sk->__sk_common.skc_state`: right after `skc_family` (16), unmoved
/// since 2.6.
const SKC_STATE: usize = 18;

#[inline(always)]
fn signal(sk: *const u8, kind: EventKind) -> i32 {
    // tcp_send_reset runs without a socket for a segment nobody owns.
    if sk.is_null() {
        return 0;
    }
    let cookie = cookie_of(sk);
    let Some(tgid) = owner_of(cookie) else {
        return 0;
    };
    // SAFETY: bpf_probe_read_kernel validates the address.
    let state = unsafe { bpf_probe_read_kernel(sk.add(SKC_STATE)) }.unwrap_or(0u8);
    let ids = current();
    let tid = if ids.tgid == tgid { ids.tid } else { 0 };
    emit(&TcpSignalEvent {
        header: header(kind, tgid, tid, cookie),
        state: state.into(),
        _pad: 0,
    });
    0
}

#[btf_tracepoint(function = "tcp_retransmit_skb")]
pub fn tracer_retransmit(ctx: BtfTracePointContext) -> i32 {
    signal(ctx.arg(0), EventKind::Retransmit)
}

#[btf_tracepoint(function = "tcp_send_reset")]
pub fn tracer_reset_sent(ctx: BtfTracePointContext) -> i32 {
    signal(ctx.arg(0), EventKind::ResetSent)
}

#[btf_tracepoint(function = "tcp_receive_reset")]
pub fn tracer_reset_received(ctx: BtfTracePointContext) -> i32 {
    signal(ctx.arg(0), EventKind::ResetReceived)
}
