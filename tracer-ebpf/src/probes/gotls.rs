//! HTTPS plaintext of Go programs: uprobes on `crypto/tls.(*Conn).Write`
//! and `(*Conn).Read` (Go 1.17+ register ABI, x86_64: RAX = `*Conn`,
//! RBX = buffer, R14 = the goroutine's `g`), and on each RET instruction
//! of both, found by userspace by disassembly: a uretprobe rewrites the
//! return address on a stack that Go may move. At a RET, RAX = bytes moved.
//!
//! The call is keyed by its goroutine (`g` and tgid), which stays the same
//! from entry to return even when the goroutine changes thread. Its socket
//! comes from OpenSSL's join: the thread is marked as `openssl` does, and
//! the send/recv of that thread writes the socket into the mark. A
//! goroutine that waits (a Read parked on the netpoller) may resume on
//! another thread, so the mark is set again on the thread of each
//! `syscall.read`/`syscall.write` entry of a goroutine inside a call
//! ([`tracer_go_syscall`]): nothing can park between there and the
//! syscall. `(*Conn).clientHandshake`/`serverHandshake` are followed the
//! same way, so that a
//! `*Conn`'s socket (`GO_SOCKETS`) is known before its first Write, which
//! is then emitted at its entry: at a RET it could come after the answer,
//! read on another thread.
use aya_ebpf::{
    macros::{map, uprobe},
    maps::LruHashMap,
    programs::ProbeContext,
};
use tracer_ebpf::tgid_flags;

use crate::common::{current, traced_flags};

/// `GoCall::how`: a handshake outside Read/Write (it only learns the socket).
const HANDSHAKE: u32 = 4;
/// `GoCall::how`: a Write already emitted at its entry.
const EMITTED: u32 = 8;
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
const RCX: usize = 11;
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
    let (conn, buf) = (reg(ctx, RAX), reg(ctx, RBX));
    let g = reg(ctx, R14);
    // SAFETY: a value copied out at once.
    let again = unsafe { GO_CALLS.get(&go_key(g, ids.tgid)).copied() };
    if again.is_some_and(|c| c.conn == conn && c.buf == buf && c.how & WRITE == how & WRITE) {
        // The same call entered again after its prologue grew the stack
        // (`morestack` restarts the function): already recorded, and a
        // Write already emitted.
        return 0;
    }
    let mut how = how;
    if how & WRITE != 0 {
        let known = socket_of(conn, ids.tgid);
        if known != 0 {
            let len = reg(ctx, RCX);
            if len > 0 && len <= i32::MAX as u64 {
                openssl::emit_plaintext(&ids, known, buf, len, true);
                how |= EMITTED;
            }
        }
    }
    begin(&ids, g, conn, buf, how);
    0
}

/// Records the goroutine's call and marks its thread.
#[inline(always)]
fn begin(ids: &crate::common::Ids, g: u64, conn: u64, buf: u64, how: u32) {
    let call = GoCall {
        conn,
        buf,
        tid: ids.tid,
        how,
    };
    let _ = GO_CALLS.insert(&go_key(g, ids.tgid), &call, 0);
    mark(ids.tid, &call);
}

#[inline(always)]
fn mark(tid: u32, call: &GoCall) {
    openssl::mark(
        tid,
        &SslCall {
            ssl: call.conn,
            buf: call.buf,
            count_at: 0,
            cookie: 0,
            how: call.how,
            _pad: 0,
        },
    );
}

#[inline(always)]
fn go_key(g: u64, tgid: u32) -> SslKey {
    SslKey {
        ssl: g,
        tgid,
        _pad: 0,
    }
}

/// The socket `*Conn` `conn` was last seen on; 0: none yet.
#[inline(always)]
fn socket_of(conn: u64, tgid: u32) -> u64 {
    // SAFETY: a u64 copied out at once.
    unsafe { GO_SOCKETS.get(&go_key(conn, tgid)).copied() }.unwrap_or(0)
}

/// The socket that the send/recv of `call`'s thread wrote into its mark, if
/// the mark is still the call's; the mark is removed.
#[inline(always)]
fn marked_socket(call: &GoCall) -> u64 {
    match openssl::mark_of(call.tid) {
        Some(m) if m.ssl == call.conn && m.buf == call.buf && m.how == call.how => {
            openssl::unmark(call.tid);
            m.cookie
        }
        _ => 0,
    }
}

/// `crypto/tls.(*Conn).clientHandshake` / `serverHandshake`: one inside a
/// Read or Write is that call's; only a handshake outside them is followed.
#[uprobe]
pub fn tracer_go_tls_handshake(ctx: ProbeContext) -> u32 {
    let ids = current();
    if traced_flags(ids.tgid) & tgid_flags::TLS_PLAINTEXT == 0 {
        return 0;
    }
    let g = reg(&ctx, R14);
    // SAFETY: only tested for presence.
    if unsafe { GO_CALLS.get(&go_key(g, ids.tgid)) }.is_some() {
        return 0;
    }
    begin(&ids, g, reg(&ctx, RAX), 0, HANDSHAKE);
    0
}

/// On every RET of both handshakes: the `*Conn` learns its socket.
#[uprobe]
pub fn tracer_go_tls_handshake_return(ctx: ProbeContext) -> u32 {
    let ids = current();
    let key = go_key(reg(&ctx, R14), ids.tgid);
    // SAFETY: a value copied out before removal.
    let Some(call) = (unsafe { GO_CALLS.get(&key).copied() }) else {
        return 0;
    };
    if call.how != HANDSHAKE {
        return 0;
    }
    let _ = GO_CALLS.remove(&key);
    let cookie = marked_socket(&call);
    if cookie != 0 {
        let _ = GO_SOCKETS.insert(&go_key(call.conn, ids.tgid), &cookie, 0);
    }
    0
}

/// `syscall.read` / `syscall.write` entry: a goroutine inside a call marks
/// the thread that makes the syscall, wherever it resumed.
#[uprobe]
pub fn tracer_go_syscall(ctx: ProbeContext) -> u32 {
    let ids = current();
    if traced_flags(ids.tgid) & tgid_flags::TLS_PLAINTEXT == 0 {
        return 0;
    }
    let Some(call) = GO_CALLS.get_ptr_mut(&go_key(reg(&ctx, R14), ids.tgid)) else {
        return 0;
    };
    // SAFETY: a map value of this goroutine's, which runs on this thread.
    let copy = unsafe {
        (*call).tid = ids.tid;
        *call
    };
    mark(ids.tid, &copy);
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

/// On every RET of Read and Write.
#[uprobe]
pub fn tracer_go_tls_return(ctx: ProbeContext) -> u32 {
    let ids = current();
    let (n, g) = (reg(&ctx, RAX) as i64, reg(&ctx, R14));
    let key = go_key(g, ids.tgid);
    // SAFETY: a value copied out before removal.
    let Some(call) = (unsafe { GO_CALLS.get(&key).copied() }) else {
        return 0;
    };
    if call.how == HANDSHAKE {
        return 0;
    }
    let _ = GO_CALLS.remove(&key);
    let marked = marked_socket(&call);
    let known = socket_of(call.conn, ids.tgid);
    if marked != 0 && marked != known {
        let _ = GO_SOCKETS.insert(&go_key(call.conn, ids.tgid), &marked, 0);
    }
    if n <= 0 || n > i32::MAX as i64 || call.how & EMITTED != 0 {
        return 0;
    }
    let cookie = if marked != 0 { marked } else { known };
    if cookie == 0 {
        return 0;
    }
    openssl::emit_plaintext(&ids, cookie, call.buf, n as u64, call.how & WRITE != 0);
    0
}
