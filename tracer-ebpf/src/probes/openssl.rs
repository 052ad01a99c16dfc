//! HTTPS plaintext in attach: uprobes on OpenSSL's `SSL_write`,
//! `SSL_write_ex`, `SSL_read` and `SSL_read_ex` (1.1.1 and 3.x share these
//! signatures), and one uretprobe on all four.
//!
//! The plaintext is joined to its socket without reading the `SSL` struct
//! (its layout moves between versions): the entry marks the thread in
//! `SSL_CALLS`, the send/recv hook of the syscall that the same thread
//! makes inside the call writes that socket's cookie into the mark
//! ([`note_socket`]), and the return emits a head of the plaintext with
//! it. A read served from OpenSSL's buffer makes no syscall: the `SSL*`'s
//! last known socket (`SSL_SOCKETS`) answers for it.
use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated},
    macros::{map, uprobe, uretprobe},
    maps::LruHashMap,
    programs::{ProbeContext, RetProbeContext},
};
use tracer_ebpf::{
    DIRECTION_RECV, DIRECTION_SEND, EventKind, IPPROTO_TCP, PAYLOAD_HEAD, PayloadEvent, tgid_flags,
};

use crate::common::{Ids, current, header, reserve, traced_flags, wakeup_flag};

/// `SslCall::how` bits.
pub const WRITE: u32 = 1;
/// The `_ex` form: returns 1/0 and the byte count through its 4th argument.
const EX: u32 = 2;

/// An SSL read or write in progress on a thread.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct SslCall {
    pub ssl: u64,
    pub buf: u64,
    /// `size_t *readbytes` / `*written` of the `_ex` forms; 0 otherwise.
    pub count_at: u64,
    /// The socket of the first send/recv made inside the call; 0: none yet.
    pub cookie: u64,
    pub how: u32,
    pub _pad: u32,
}

/// One `SSL*` of one process.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct SslKey {
    pub ssl: u64,
    pub tgid: u32,
    pub _pad: u32,
}

/// LRU: a thread that dies inside a call never removes its mark.
#[map(name = "SSL_CALLS")]
static SSL_CALLS: LruHashMap<u32, SslCall> = LruHashMap::with_max_entries(16384, 0);

/// The socket each `SSL*` last did I/O on. LRU: freed `SSL`s are never
/// announced, and a reused address is corrected by its first syscall.
#[map(name = "SSL_SOCKETS")]
static SSL_SOCKETS: LruHashMap<SslKey, u64> = LruHashMap::with_max_entries(16384, 0);

#[inline(always)]
fn enter(ctx: &ProbeContext, how: u32) -> u32 {
    let ids = current();
    let flags = traced_flags(ids.tgid);
    if flags & tgid_flags::TLS_PLAINTEXT == 0 {
        return 0;
    }
    let (Some(ssl), Some(buf)) = (ctx.arg::<u64>(0), ctx.arg::<u64>(1)) else {
        return 0;
    };
    let count_at = if how & EX != 0 {
        ctx.arg::<u64>(3).unwrap_or(0)
    } else {
        0
    };
    let call = SslCall {
        ssl,
        buf,
        count_at,
        cookie: 0,
        how,
        _pad: 0,
    };
    let _ = SSL_CALLS.insert(&ids.tid, &call, 0);
    0
}

#[uprobe]
pub fn tracer_ssl_write(ctx: ProbeContext) -> u32 {
    enter(&ctx, WRITE)
}

#[uprobe]
pub fn tracer_ssl_write_ex(ctx: ProbeContext) -> u32 {
    enter(&ctx, WRITE | EX)
}

#[uprobe]
pub fn tracer_ssl_read(ctx: ProbeContext) -> u32 {
    enter(&ctx, 0)
}

#[uprobe]
pub fn tracer_ssl_read_ex(ctx: ProbeContext) -> u32 {
    enter(&ctx, EX)
}

/// Marks thread `tid` as inside a TLS call (Go's crypto/tls uses it too):
/// the thread's next send/recv writes its socket into the mark.
#[inline(always)]
pub fn mark(tid: u32, call: &SslCall) {
    let _ = SSL_CALLS.insert(&tid, call, 0);
}

/// Thread `tid`'s mark, copied out.
#[inline(always)]
pub fn mark_of(tid: u32) -> Option<SslCall> {
    // SAFETY: a value copied out at once.
    unsafe { SSL_CALLS.get(&tid).copied() }
}

#[inline(always)]
pub fn unmark(tid: u32) {
    let _ = SSL_CALLS.remove(&tid);
}

/// Called by the send/recv hook of a process with `TLS_PLAINTEXT`: the
/// thread's SSL call in progress, if any, learns its socket.
#[inline(always)]
pub fn note_socket(tid: u32, cookie: u64) {
    if let Some(call) = SSL_CALLS.get_ptr_mut(&tid) {
        // SAFETY: a map value of this thread's; only this thread writes it.
        unsafe {
            if (*call).cookie == 0 {
                (*call).cookie = cookie;
            }
        }
    }
}

#[uretprobe]
pub fn tracer_ssl_return(ctx: RetProbeContext) -> u32 {
    let ids = current();
    // SAFETY: a value copied out before removal.
    let Some(call) = (unsafe { SSL_CALLS.get(&ids.tid).copied() }) else {
        return 0;
    };
    let _ = SSL_CALLS.remove(&ids.tid);
    let ret: i32 = ctx.ret();
    let moved: u64 = if call.how & EX != 0 {
        if ret != 1 || call.count_at == 0 {
            return 0;
        }
        // SAFETY: the helper checks the user pointer.
        unsafe { bpf_probe_read_user(call.count_at as *const u64) }.unwrap_or(0)
    } else if ret > 0 {
        ret as u64
    } else {
        return 0;
    };
    if moved == 0 || moved > i32::MAX as u64 {
        return 0;
    }
    let key = SslKey {
        ssl: call.ssl,
        tgid: ids.tgid,
        _pad: 0,
    };
    let cookie = if call.cookie != 0 {
        let _ = SSL_SOCKETS.insert(&key, &call.cookie, 0);
        call.cookie
    } else {
        // SAFETY: a u64 copied out at once.
        match unsafe { SSL_SOCKETS.get(&key).copied() } {
            Some(c) => c,
            None => return 0,
        }
    };
    emit_plaintext(&ids, cookie, call.buf, moved, call.how & WRITE != 0);
    0
}

/// One `Plaintext` record: the head (at most `PAYLOAD_HEAD` bytes) of the
/// `moved` bytes at user address `buf`, on socket `cookie`. Shared with
/// Go's crypto/tls (`gotls`).
#[inline(always)]
pub fn emit_plaintext(ids: &Ids, cookie: u64, buf: u64, moved: u64, write: bool) {
    let Some(mut entry) = reserve::<PayloadEvent>(EventKind::Plaintext) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    let n = if moved > PAYLOAD_HEAD as u64 {
        PAYLOAD_HEAD as u32
    } else {
        moved as u32
    };
    // The mask and the second bound give the verifier one it can follow.
    let size = n & (PAYLOAD_HEAD as u32 * 2 - 1);
    let size = if size > PAYLOAD_HEAD as u32 {
        PAYLOAD_HEAD as u32
    } else {
        size
    };
    // SAFETY: `ev` is reserved ring memory of a PayloadEvent's size; the
    // copy is bounded by its `data` and the helper checks the user address.
    unsafe {
        let rc = generated::bpf_probe_read_user(
            (*ev).data.as_mut_ptr().cast(),
            size,
            buf as *const core::ffi::c_void,
        );
        (*ev).header = header(EventKind::Plaintext, ids.tgid, ids.tid, cookie);
        (*ev).len = moved as u32;
        (*ev).direction = if write {
            DIRECTION_SEND
        } else {
            DIRECTION_RECV
        };
        (*ev).captured = if rc == 0 { size } else { 0 };
        (*ev).protocol = IPPROTO_TCP;
        (*ev).family = 0;
    }
    entry.submit(wakeup_flag());
}
