//! Bytes sent and received: `sock:sock_send_length` / `sock:sock_recv_length`
//! as tp_btf (Linux 6.3+), or, where those are missing, the socket
//! functions in `msg_io` (fentry/fexit or kprobes). Every mechanism feeds
//! [`on_io`], so records are alike whichever one saw the I/O. All run in
//! the calling thread, so `current` is the owner.
//! In attach mode an I/O that moved bytes is emitted with its payload head,
//! as one record (see `payload`); by default attach asks for segments
//! instead: a record only where a message can begin (see `segment`).

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_ebpf::{EventKind, IoEvent, SocketEvent, tgid_flags};

use crate::common::{
    cookie_btf, cookie_raw, current, emit, family_btf, family_of, fill_tuple, header, is_inet,
    owner_of, protocol_btf, protocol_of, reserve, set_owner, traced_flags, wakeup_flag,
};
use crate::probes::{
    openssl,
    payload::{HeadSource, emit_with_head},
    segment,
};

/// A `struct sock *` and how its fields may be read: the verifier lets a
/// BTF-typed pointer (tp_btf, fentry) be read with plain loads; a kprobe's
/// is a number, read through helpers.
pub trait SockRef: Copy {
    fn ptr(self) -> *const u8;
    fn cookie(self) -> u64;
    fn family(self) -> u16;
    fn protocol(self) -> u16;
}

#[derive(Clone, Copy)]
pub struct BtfSock(pub *const u8);

#[derive(Clone, Copy)]
pub struct RawSock(pub *const u8);

/// A `struct sock *` read from another BTF-typed pointer (fexit's
/// `sock->sk`): plain loads for its fields, but its cookie as a kprobe's,
/// because a walked pointer is not one that every kernel's verifier lets a
/// helper take.
#[derive(Clone, Copy)]
pub struct WalkedSock(pub *const u8);

impl SockRef for BtfSock {
    #[inline(always)]
    fn ptr(self) -> *const u8 {
        self.0
    }
    #[inline(always)]
    fn cookie(self) -> u64 {
        cookie_btf(self.0)
    }
    #[inline(always)]
    fn family(self) -> u16 {
        family_btf(self.0)
    }
    #[inline(always)]
    fn protocol(self) -> u16 {
        protocol_btf(self.0)
    }
}

impl SockRef for WalkedSock {
    #[inline(always)]
    fn ptr(self) -> *const u8 {
        self.0
    }
    #[inline(always)]
    fn cookie(self) -> u64 {
        cookie_raw(self.0)
    }
    #[inline(always)]
    fn family(self) -> u16 {
        family_btf(self.0)
    }
    #[inline(always)]
    fn protocol(self) -> u16 {
        protocol_btf(self.0)
    }
}

impl SockRef for RawSock {
    #[inline(always)]
    fn ptr(self) -> *const u8 {
        self.0
    }
    #[inline(always)]
    fn cookie(self) -> u64 {
        cookie_raw(self.0)
    }
    #[inline(always)]
    fn family(self) -> u16 {
        family_of(self.0)
    }
    #[inline(always)]
    fn protocol(self) -> u16 {
        protocol_of(self.0)
    }
}

/// -EAGAIN: a non-blocking read or write that moved nothing. tokio ends every
/// read burst with one; they carry no data and would double the event rate.
const EAGAIN: i32 = -11;

/// A recv with MSG_PEEK leaves the bytes queued: the recv that takes them
/// comes later and is the one counted, or every peeked byte counts twice.
const MSG_PEEK: i32 = 2;

/// 1 makes both I/O programs return at once (`TRACER_BENCH_FLOOR`, read by
/// `tracer-bench-knobs` only, set by userspace before load): the bench
/// measures what the kernel's dispatch of these tracepoints costs every
/// process, apart from what the programs do.
/// A constant of the loaded object, so the verifier drops the dead branch.
#[unsafe(no_mangle)]
static BENCH_FLOOR: u32 = 0;

#[inline(always)]
pub fn floor() -> bool {
    // SAFETY: a read-only copy of a global that userspace set before load.
    unsafe { core::ptr::read_volatile(&BENCH_FLOOR) == 1 }
}

#[btf_tracepoint(function = "sock_send_length")]
pub fn tracer_send(ctx: BtfTracePointContext) -> i32 {
    if floor() {
        return 0;
    }
    on_tracepoint(&ctx, EventKind::Send);
    0
}

#[btf_tracepoint(function = "sock_recv_length")]
pub fn tracer_recv(ctx: BtfTracePointContext) -> i32 {
    if floor() {
        return 0;
    }
    on_tracepoint(&ctx, EventKind::Recv);
    0
}

#[inline(always)]
fn on_tracepoint(ctx: &BtfTracePointContext, kind: EventKind) {
    let sk: *const u8 = ctx.arg(0);
    on_io(
        BtfSock(sk),
        kind,
        ctx.arg(1),
        ctx.arg(2),
        HeadSource::Syscall,
    );
}

/// One send or recv of `bytes` (the function's result) on `sk`, with the
/// call's `msg_flags` and where its user buffer is known from: the one
/// path of every mechanism.
#[inline(always)]
pub fn on_io<S: SockRef>(sk: S, kind: EventKind, bytes: i32, msg_flags: i32, src: HeadSource) {
    let ids = current();
    let flags = traced_flags(ids.tgid);
    if flags & tgid_flags::TRACED == 0 {
        return;
    }
    if bytes == EAGAIN {
        return;
    }
    if kind == EventKind::Recv && msg_flags & MSG_PEEK != 0 {
        return;
    }
    let cookie = sk.cookie();
    if cookie == 0 {
        return;
    }
    // Inside an OpenSSL call of this thread: that call's socket.
    if flags & tgid_flags::TLS_PLAINTEXT != 0 && bytes > 0 {
        openssl::note_socket(ids.tid, cookie);
    }
    let segments = flags & tgid_flags::SEGMENTS != 0 && bytes > 0;
    // Segments (attach's default): a socket in the map is an inet socket
    // already seen, and an I/O inside its segment only moves the counts.
    // A null pointer, not an Option: every path must set the register
    // (Linux's verifier refused the Option's uninitialised payload).
    let seg = if segments {
        segment::lookup(cookie)
    } else {
        core::ptr::null_mut()
    };
    if !seg.is_null() && segment::extend(seg, kind, bytes) {
        return;
    }
    let family = sk.family();
    if !is_inet(family) {
        return;
    }
    if seg.is_null() && owner_of(cookie).is_none() {
        set_owner(cookie, ids.tgid);
        socket_seen(sk.ptr(), family, &ids, cookie);
    }
    let protocol = sk.protocol();
    if segments {
        segment::begin(seg, &ids, cookie, kind, bytes, protocol, family, src);
        return;
    }
    if bytes > 0
        && flags & tgid_flags::CAPTURE_HEADS != 0
        && emit_with_head(&ids, cookie, kind, bytes, protocol, family, src)
    {
        return;
    }
    emit(&IoEvent {
        header: header(kind, ids.tgid, ids.tid, cookie),
        bytes,
        protocol,
        family,
    });
}

/// A socket we did not see connect: one event with its addresses, built in
/// place in the ring (the I/O event itself is small enough for the stack).
#[inline(always)]
fn socket_seen(sk: *const u8, family: u16, ids: &crate::common::Ids, cookie: u64) {
    let Some(mut entry) = reserve::<SocketEvent>(EventKind::Socket) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is reserved ring memory of the size of a SocketEvent.
    unsafe {
        (*ev).header = header(EventKind::Socket, ids.tgid, ids.tid, cookie);
        fill_tuple(&raw mut (*ev).tuple, sk, family);
    }
    entry.submit(wakeup_flag());
}
