//! The end of a socket, without a syscall hook: close(2) that releases a
//! TCP socket changes its state (ESTABLISHED -> FIN_WAIT1, CLOSE_WAIT ->
//! LAST_ACK, -> CLOSE on abort, FIN_WAIT1 -> FIN_WAIT1 after a shutdown)
//! in the caller's thread, holding the socket, with close's fd in the saved
//! registers. A close that releases nothing (another fd or process still
//! holds the socket), or a socket already in CLOSE, makes no state change:
//! no close event then, only the Destroy when the kernel frees it.
//! `tcp:tcp_destroy_sock` (tp_btf) gives that moment.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    macros::{btf_tracepoint, map},
    maps::LruHashMap,
    programs::BtfTracePointContext,
};
use tracer_ebpf::{CloseEvent, EventKind};

use crate::{
    common::{cookie_of, current, emit, forget_owner, header, owned_by_task, owner_of},
    probes::syscall::{SYS_CLOSE, nr_and_arg0},
};

/// Cookies whose close was written: one close(2) can change the state
/// several times (FIN_WAIT1, then FIN_WAIT2 from the backlog, then CLOSE).
#[map(name = "CLOSED")]
static CLOSED: LruHashMap<u64, u8> = LruHashMap::with_max_entries(4096, 0);

/// A state change of a socket owned by the current process, in thread
/// `tid`, stamped `ts_ns`: writes the close event when close(2) made it.
#[inline(always)]
pub fn on_state_change(sk: *const u8, tgid: u32, tid: u32, cookie: u64, ts_ns: u64) {
    let Some((SYS_CLOSE, fd)) = nr_and_arg0() else {
        return;
    };
    // A FIN sent by this close can be processed on this stack, in softirq,
    // for another socket of the process (loopback): that socket is not held.
    if !owned_by_task(sk) || CLOSED.insert(&cookie, &1, BPF_NOEXIST as u64).is_err() {
        return;
    }
    let mut header = header(EventKind::Close, tgid, tid, cookie);
    header.ts_ns = ts_ns;
    emit(&CloseEvent {
        header,
        fd: fd as i32,
        _pad: 0,
    });
}

#[btf_tracepoint(function = "tcp_destroy_sock")]
pub fn tracer_destroy(ctx: BtfTracePointContext) -> i32 {
    let sk: *const u8 = ctx.arg(0);
    let cookie = cookie_of(sk);
    let Some(tgid) = owner_of(cookie) else {
        return 0;
    };
    forget_owner(cookie);
    let _ = CLOSED.remove(&cookie);
    let ids = current();
    let tid = if ids.tgid == tgid { ids.tid } else { 0 };
    emit(&CloseEvent {
        header: header(EventKind::Destroy, tgid, tid, cookie),
        fd: -1,
        _pad: 0,
    });
    0
}
