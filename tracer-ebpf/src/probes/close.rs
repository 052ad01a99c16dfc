//! The end of a socket: `syscalls:sys_enter_close` for fds whose connect we
//! saw, and `tcp:tcp_destroy_sock` (tp_btf) when the kernel frees it.

use aya_ebpf::{
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use tracer_ebpf::{CloseEvent, EventKind};

use crate::{
    common::{cookie_of, current, emit, forget_owner, header, is_traced, owner_of},
    probes::connect::FD_COOKIES,
};

#[tracepoint]
pub fn tracer_close(ctx: TracePointContext) -> u32 {
    let ids = current();
    if !is_traced(ids.tgid) {
        return 0;
    }
    // SAFETY: `fd`, first argument of `struct syscall_trace_enter`.
    let Ok(fd) = (unsafe { ctx.read_at::<i64>(16) }) else {
        return 0;
    };
    let key = ((ids.tgid as u64) << 32) | (fd as u32 as u64);
    // SAFETY: u64 value copied out at once.
    let Some(cookie) = (unsafe { FD_COOKIES.get(&key).copied() }) else {
        return 0;
    };
    let _ = FD_COOKIES.remove(&key);
    emit(&CloseEvent {
        header: header(EventKind::Close, ids.tgid, ids.tid, cookie),
        fd: fd as i32,
        _pad: 0,
    });
    0
}

#[btf_tracepoint(function = "tcp_destroy_sock")]
pub fn tracer_destroy(ctx: BtfTracePointContext) -> i32 {
    let sk: *const u8 = ctx.arg(0);
    let cookie = cookie_of(sk);
    let Some(tgid) = owner_of(cookie) else {
        return 0;
    };
    forget_owner(cookie);
    let ids = current();
    let tid = if ids.tgid == tgid { ids.tid } else { 0 };
    emit(&CloseEvent {
        header: header(EventKind::Destroy, tgid, tid, cookie),
        fd: -1,
        _pad: 0,
    });
    0
}
