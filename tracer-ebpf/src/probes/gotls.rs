//! HTTPS plaintext of Go programs: uprobes on `crypto/tls.(*Conn).Write`
//! and `(*Conn).Read` (Go 1.17+ register ABI, x86_64: RAX = `*Conn`,
//! RBX = buffer, R14 = the goroutine's `g`), and on each RET instruction
//! of both, found by userspace by disassembly: a uretprobe rewrites the
//! return address on a stack that Go may move. At a RET, RAX = bytes moved.
//!
//! The call is keyed by its goroutine (`g` and tgid), which stays the same
//! from entry to return even when the goroutine changes thread. Its socket
//! comes from OpenSSL's join: the entry marks its thread as `openssl`
//! does, and the send/recv of that thread writes the socket into the mark.
//! A goroutine that parks (a Read waiting on the netpoller) lets its thread
//! run others, whose I/O could land in that mark; so a Write, which does
//! not park, teaches its `*Conn`'s socket (`GO_SOCKETS`), and a Read uses
//! what its `*Conn` learnt, and its mark only for a `*Conn` not yet seen.
use aya_ebpf::{
    macros::{map, uprobe},
    maps::LruHashMap,
    programs::ProbeContext,
};
use tracer_ebpf::tgid_flags;

use crate::common::{current, traced_flags};
use crate::probes::openssl::{self, SslCall, SslKey, WRITE};

/// A crypto/tls call in progress on a goroutine.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct GoCall {
    pub conn: u64,
    pub buf: u64,
    /// The thread the call began on, whose mark learns its socket.
    pub tid: u32,
    pub how: u32,
}

/// LRU: a goroutine that never returns (its program exits) leaves its call.
#[map(name = "GO_CALLS")]
static GO_CALLS: LruHashMap<SslKey, GoCall> = LruHashMap::with_max_entries(16384, 0);

/// The socket each `*tls.Conn` was last seen on. A `tls.Conn` wraps one
/// `net.Conn` for its life; an address reused after GC is corrected by the
/// first Write of the new one.
#[map(name = "GO_SOCKETS")]
static GO_SOCKETS: LruHashMap<SslKey, u64> = LruHashMap::with_max_entries(16384, 0);

/// Word indexes in x86_64's `struct pt_regs` (userspace probes Go on
/// x86_64 only; read by index so the object builds for any target).
const R14: usize = 1;
const RBX: usize = 5;
const RAX: usize = 10;

#[inline(always)]
fn reg(ctx: &ProbeContext, word: usize) -> u64 {
    // SAFETY: a constant offset inside the probe's context, the saved user
    // registers, which the verifier lets a program read.
    unsafe { *(ctx.regs as *const u64).add(word) }
}

#[inline(always)]
fn enter(ctx: &ProbeContext, how: u32) -> u32 {
    let ids = current();
    if traced_flags(ids.tgid) & tgid_flags::TLS_PLAINTEXT == 0 {
        return 0;
    }
    let (conn, buf, g) = (reg(ctx, RAX), reg(ctx, RBX), reg(ctx, R14));
    let call = GoCall {
        conn,
        buf,
        tid: ids.tid,
        how,
    };
    let key = SslKey {
        ssl: g,
        tgid: ids.tgid,
        _pad: 0,
    };
    let _ = GO_CALLS.insert(&key, &call, 0);
    openssl::mark(
        ids.tid,
        &SslCall {
            ssl: conn,
            buf,
            count_at: 0,
            cookie: 0,
            how,
            _pad: 0,
        },
    );
    0
}

#[uprobe]
pub fn tracer_go_tls_write(ctx: ProbeContext) -> u32 {
    enter(&ctx, WRITE)
}

#[uprobe]
pub fn tracer_go_tls_read(ctx: ProbeContext) -> u32 {
    enter(&ctx, 0)
}

/// On every RET of both functions.
#[uprobe]
pub fn tracer_go_tls_return(ctx: ProbeContext) -> u32 {
    let ids = current();
    let (n, g) = (reg(&ctx, RAX) as i64, reg(&ctx, R14));
    let key = SslKey {
        ssl: g,
        tgid: ids.tgid,
        _pad: 0,
    };
    // SAFETY: a value copied out before removal.
    let Some(call) = (unsafe { GO_CALLS.get(&key).copied() }) else {
        return 0;
    };
    let _ = GO_CALLS.remove(&key);
    // The entry thread's mark, if no other call has marked it since.
    let marked = match openssl::mark_of(call.tid) {
        Some(m) if m.ssl == call.conn && m.buf == call.buf && m.how == call.how => {
            openssl::unmark(call.tid);
            m.cookie
        }
        _ => 0,
    };
    if n <= 0 || n > i32::MAX as i64 {
        return 0;
    }
    let conn = SslKey {
        ssl: call.conn,
        tgid: ids.tgid,
        _pad: 0,
    };
    // SAFETY: a u64 copied out at once.
    let known = unsafe { GO_SOCKETS.get(&conn).copied() }.unwrap_or(0);
    let cookie = if call.how & WRITE != 0 && marked != 0 {
        marked
    } else if known != 0 {
        known
    } else {
        marked
    };
    if cookie == 0 {
        return 0;
    }
    if cookie != known {
        let _ = GO_SOCKETS.insert(&conn, &cookie, 0);
    }
    openssl::emit_plaintext(&ids, cookie, call.buf, n as u64, call.how & WRITE != 0);
    0
}
