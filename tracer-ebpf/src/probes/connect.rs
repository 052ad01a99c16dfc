//! connect(2): `syscalls:sys_enter_connect` keeps the destination per thread,
//! `inet_sock_set_state` (CLOSE -> SYN_SENT, same thread) adds the cookie,
//! `syscalls:sys_exit_connect` emits the event with the result.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{map, tracepoint},
    maps::{HashMap, LruHashMap},
    programs::TracePointContext,
};
use tracer_ebpf::{AF_INET, AF_INET6, ConnectEvent, EventKind, FourTuple};

use crate::common::{current, emit, header, is_traced};

/// A connect in progress, keyed by thread id.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct PendingConnect {
    pub start_ns: u64,
    pub cookie: u64,
    pub fd: i64,
    pub tuple: FourTuple,
}

#[map(name = "PENDING_CONNECT")]
pub static PENDING_CONNECT: HashMap<u32, PendingConnect> = HashMap::with_max_entries(4096, 0);

/// (tgid << 32 | fd) -> cookie of sockets whose connect we saw, so that a
/// later close(fd) can name its socket.
#[map(name = "FD_COOKIES")]
pub static FD_COOKIES: LruHashMap<u64, u64> = LruHashMap::with_max_entries(65536, 0);

// Offsets in `struct syscall_trace_enter/exit`: 8 bytes of common fields,
// the syscall number, then the arguments (or `ret`) as longs from byte 16.
const ARG0: usize = 16;
const ARG1: usize = 24;

#[tracepoint]
pub fn tracer_connect_enter(ctx: TracePointContext) -> u32 {
    let ids = current();
    if !is_traced(ids.tgid) {
        return 0;
    }
    // SAFETY: the offsets of the syscall tracepoint layout above.
    let (Ok(fd), Ok(uaddr)) = (unsafe { ctx.read_at::<i64>(ARG0) }, unsafe {
        ctx.read_at::<u64>(ARG1)
    }) else {
        return 0;
    };
    if let Some(tuple) = read_sockaddr(uaddr as *const u8) {
        let pending = PendingConnect {
            // SAFETY: helper without arguments.
            start_ns: unsafe { bpf_ktime_get_ns() },
            cookie: 0,
            fd,
            tuple,
        };
        let _ = PENDING_CONNECT.insert(&ids.tid, &pending, 0);
    }
    0
}

/// Reads an IPv4 or IPv6 destination; other families are not traced.
fn read_sockaddr(uaddr: *const u8) -> Option<FourTuple> {
    // SAFETY: bpf_probe_read_user validates the user pointer.
    unsafe {
        let family = bpf_probe_read_user(uaddr as *const u16).ok()?;
        let port = u16::from_be(bpf_probe_read_user(uaddr.add(2) as *const u16).ok()?);
        let mut tuple = FourTuple {
            family,
            dport: port,
            ..FourTuple::default()
        };
        if family == AF_INET {
            let a = bpf_probe_read_user(uaddr.add(4) as *const [u8; 4]).ok()?;
            [
                tuple.daddr[0],
                tuple.daddr[1],
                tuple.daddr[2],
                tuple.daddr[3],
            ] = a;
        } else if family == AF_INET6 {
            tuple.daddr = bpf_probe_read_user(uaddr.add(8) as *const [u8; 16]).ok()?;
        } else {
            return None;
        }
        Some(tuple)
    }
}

/// Called from the state hook when CLOSE -> SYN_SENT runs inside connect.
#[inline(always)]
pub fn note_connect_cookie(tid: u32, cookie: u64) {
    if let Some(p) = PENDING_CONNECT.get_ptr_mut(&tid) {
        // SAFETY: per-thread entry; only this thread touches it.
        unsafe { (*p).cookie = cookie };
    }
}

#[tracepoint]
pub fn tracer_connect_exit(ctx: TracePointContext) -> u32 {
    let ids = current();
    // SAFETY: entry copied out before removal.
    let Some(pending) = (unsafe { PENDING_CONNECT.get(&ids.tid).copied() }) else {
        return 0;
    };
    let _ = PENDING_CONNECT.remove(&ids.tid);
    // SAFETY: `ret` of `struct syscall_trace_exit`.
    let ret = unsafe { ctx.read_at::<i64>(ARG0) }.unwrap_or(0);
    let mut event = ConnectEvent {
        header: header(EventKind::Connect, ids.tgid, ids.tid, pending.cookie),
        fd: pending.fd as i32,
        ret: ret as i32,
        duration_ns: 0,
        tuple: pending.tuple,
    };
    event.duration_ns = event.header.ts_ns.saturating_sub(pending.start_ns);
    event.header.ts_ns = pending.start_ns;
    if pending.cookie != 0 {
        let key = ((ids.tgid as u64) << 32) | (pending.fd as u32 as u64);
        let _ = FD_COOKIES.insert(&key, &pending.cookie, 0);
    }
    emit(&event);
    0
}
