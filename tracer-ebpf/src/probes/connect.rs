//! connect(2) without a syscall hook. CLOSE -> SYN_SENT runs inside the
//! connect, in the caller's thread: `started` notes when, which thread, and
//! the fd from the syscall's saved registers. The handshake's end
//! (-> ESTABLISHED, or -> CLOSE) writes the event, so that `ret` is what
//! the kernel saw happen, not a guess at what connect(2) would return.
//! TCP only: a UDP connect changes no state (its socket shows up through
//! a `Socket` event at its first send or recv).

use aya_ebpf::{macros::map, maps::LruHashMap};
use tracer_ebpf::{CONNECT_ABANDONED, ConnectEvent, EventKind, tcp_state};

use crate::{
    common::{fill_tuple, header_at, reserve, sk_err, wakeup_flag},
    probes::syscall::{SYS_CONNECT, SYS_SENDMSG, SYS_SENDTO, nr_and_arg0},
};

/// A handshake in progress, keyed by socket cookie.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct PendingConnect {
    pub start_ns: u64,
    pub tid: u32,
    pub fd: i32,
}

#[map(name = "PENDING_CONNECT")]
static PENDING_CONNECT: LruHashMap<u64, PendingConnect> = LruHashMap::with_max_entries(4096, 0);

/// CLOSE -> SYN_SENT of a traced socket, at `ts_ns`, in thread `tid`.
#[inline(always)]
pub fn started(cookie: u64, tid: u32, ts_ns: u64) {
    // connect(2), or sendto/sendmsg with MSG_FASTOPEN: the fd comes first.
    let fd = match nr_and_arg0() {
        Some((SYS_CONNECT | SYS_SENDTO | SYS_SENDMSG, fd)) => fd as i32,
        _ => -1,
    };
    let pending = PendingConnect {
        start_ns: ts_ns,
        tid,
        fd,
    };
    let _ = PENDING_CONNECT.insert(&cookie, &pending, 0);
}

/// A state change out of SYN_SENT or SYN_RECV of a socket owned by `tgid`,
/// at `ts_ns`: writes the connect event when it ends a handshake we saw
/// start, in place in the ring, with the socket's addresses at that moment.
#[inline(always)]
pub fn finished(sk: *const u8, family: u16, tgid: u32, cookie: u64, new: u32, ts_ns: u64) {
    let ret = match new {
        tcp_state::ESTABLISHED => 0,
        tcp_state::CLOSE => match sk_err(sk) {
            err if err > 0 => -err,
            _ => CONNECT_ABANDONED,
        },
        // SYN_SENT -> SYN_RECV (simultaneous open): not over yet.
        _ => return,
    };
    // SAFETY: entry copied out before removal.
    let Some(p) = (unsafe { PENDING_CONNECT.get(&cookie).copied() }) else {
        return;
    };
    let _ = PENDING_CONNECT.remove(&cookie);
    let Some(mut entry) = reserve::<ConnectEvent>(EventKind::Connect) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is reserved ring memory of the size of a ConnectEvent.
    unsafe {
        (*ev).header = header_at(EventKind::Connect, tgid, p.tid, cookie, p.start_ns);
        (*ev).fd = p.fd;
        (*ev).ret = ret;
        (*ev).duration_ns = ts_ns.saturating_sub(p.start_ns);
        fill_tuple(&raw mut (*ev).tuple, sk, family);
    }
    entry.submit(wakeup_flag());
}
