//! Send and recv where the byte tracepoints (Linux 6.3+) are missing: the
//! protocol-family functions every socket send and recv passes through.
//!
//! `inet_sendmsg`/`inet6_sendmsg` and `inet_recvmsg`/`inet6_recvmsg` are
//! what `sock_sendmsg`/`sock_recvmsg` call through the socket's ops, for
//! TCP and UDP alike, whichever syscall it was: write/read, send/recv,
//! sendto/recvfrom, sendmsg/recvmsg, sendmmsg/recvmmsg, writev/readv. They
//! live in another file than their callers, so the compiler never inlines
//! them away (Debian 6.1's `sock_sendmsg` is, for curl's send: a trampoline
//! on it saw nothing). sendfile and splice (`tcp_sendpage` before 6.5) do
//! not pass here: no bytes from them on these kernels.
//!
//! A recv's buffer is known at entry and its byte count at exit, and a
//! send's iterator is consumed by the time it returns: so each call is a
//! pair. The entry keeps the buffer (from the `msghdr`'s iterator, as the
//! kernel lays it out, see `KernelAbi`) per thread; the exit hands the
//! count and that buffer to `io::on_io`, the tracepoints' path.
//!
//! Two mechanisms, chosen by userspace by loading and attaching: BPF
//! trampolines (fentry/fexit), or kprobes/kretprobes where a trampoline
//! cannot attach (no `CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS`, arm64
//! before 6.0). A kprobe's pointers are plain numbers to the verifier, so
//! its socket is read through helpers (`io::RawSock`).
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::{fentry, fexit, kprobe, kretprobe, map},
    maps::HashMap,
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use tracer_ebpf::EventKind;

use crate::{
    abi,
    common::{current, is_traced},
    probes::{
        io::{RawSock, WalkedSock, floor, on_io},
        payload::HeadSource,
    },
};

/// A call between its entry and its exit.
#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    /// The `struct socket *` (for the kretprobe, which has no arguments).
    sock: u64,
    buf: u64,
    cap: u64,
    msg_flags: i32,
    kind: u32,
}

/// Thread (pid_tgid) -> its call in progress. An entry whose exit never
/// came (a kretprobe over its limit) is overwritten by the thread's next.
#[map(name = "IO_PENDING")]
static IO_PENDING: HashMap<u64, Pending> = HashMap::with_max_entries(16384, 0);

#[inline(always)]
unsafe fn read<T>(at: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel(at as *const T).ok() }
}

/// The user buffer `msg`'s iterator starts at, and its size; (0, 0) when
/// it is not in user memory or its layout is unknown here.
#[inline(always)]
fn iter_head(msg: u64) -> (u64, u64) {
    let base = abi!(msg_iter);
    if base == 0 || msg == 0 {
        return (0, 0);
    }
    let it = msg + u64::from(base);
    // SAFETY: kernel reads through the helper.
    let (Some(t), Some(count), Some(p)) = (unsafe {
        (
            read::<u8>(it + u64::from(abi!(iter_type))),
            read::<u64>(it + u64::from(abi!(iter_count))),
            read::<u64>(it + u64::from(abi!(iter_iov))),
        )
    }) else {
        return (0, 0);
    };
    let t = u32::from(t);
    let iovec = abi!(iter_iovec);
    let is_iovec = if abi!(iter_type_mask) == 1 {
        t & iovec != 0
    } else {
        t == iovec
    };
    if is_iovec {
        // The kernel's copy of the caller's `struct iovec`s; the first one.
        // SAFETY: as above.
        let Some([b, len]) = (unsafe { read::<[u64; 2]>(p) }) else {
            return (0, 0);
        };
        return (b, if len < count { len } else { count });
    }
    if t == abi!(iter_ubuf) {
        return (p, count);
    }
    (0, 0)
}

#[inline(always)]
fn enter(sock: u64, msg: u64, kind: EventKind, msg_flags: i32) {
    if floor() || !is_traced(current().tgid) {
        return;
    }
    let (buf, cap) = iter_head(msg);
    let p = Pending {
        sock,
        buf,
        cap,
        msg_flags,
        kind: kind as u32,
    };
    let _ = IO_PENDING.insert(&bpf_get_current_pid_tgid(), &p, 0);
}

/// The thread's pending call, removed.
#[inline(always)]
fn take() -> Option<Pending> {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: the value is copied out before the entry is removed.
    let p = unsafe { IO_PENDING.get(&key) }.copied()?;
    let _ = IO_PENDING.remove(&key);
    Some(p)
}

#[inline(always)]
fn kind_of(p: &Pending) -> EventKind {
    if p.kind == EventKind::Send as u32 {
        EventKind::Send
    } else {
        EventKind::Recv
    }
}

/// The fexit's half: `sock` is the BTF-typed `struct socket *` argument,
/// so `sock->sk` is a plain, typed load.
#[inline(always)]
fn exit_btf(sock: *const u8, ret: i32) {
    let Some(p) = take() else {
        return;
    };
    // SAFETY: a BTF-typed pointer read at a load-time constant offset,
    // which the verifier checks against `struct socket`.
    let sk =
        unsafe { core::ptr::read_volatile(sock.add(abi!(socket_sk) as usize) as *const *const u8) };
    if sk.is_null() {
        return;
    }
    let src = HeadSource::User {
        buf: p.buf,
        cap: p.cap,
    };
    on_io(WalkedSock(sk), kind_of(&p), ret, p.msg_flags, src);
}

#[fentry(function = "inet_sendmsg")]
pub fn tracer_send_entry4(ctx: FEntryContext) -> i32 {
    enter(ctx.arg(0), ctx.arg(1), EventKind::Send, 0);
    0
}

#[fentry(function = "inet6_sendmsg")]
pub fn tracer_send_entry6(ctx: FEntryContext) -> i32 {
    enter(ctx.arg(0), ctx.arg(1), EventKind::Send, 0);
    0
}

#[fentry(function = "inet_recvmsg")]
pub fn tracer_recv_entry4(ctx: FEntryContext) -> i32 {
    enter(ctx.arg(0), ctx.arg(1), EventKind::Recv, ctx.arg(3));
    0
}

#[fentry(function = "inet6_recvmsg")]
pub fn tracer_recv_entry6(ctx: FEntryContext) -> i32 {
    enter(ctx.arg(0), ctx.arg(1), EventKind::Recv, ctx.arg(3));
    0
}

// fexit's context holds the arguments, then the return value:
// `inet*_sendmsg(sock, msg, size)`, `inet*_recvmsg(sock, msg, size, flags)`.

#[fexit(function = "inet_sendmsg")]
pub fn tracer_send_exit4(ctx: FExitContext) -> i32 {
    exit_btf(ctx.arg(0), ctx.arg(3));
    0
}

#[fexit(function = "inet6_sendmsg")]
pub fn tracer_send_exit6(ctx: FExitContext) -> i32 {
    exit_btf(ctx.arg(0), ctx.arg(3));
    0
}

#[fexit(function = "inet_recvmsg")]
pub fn tracer_recv_exit4(ctx: FExitContext) -> i32 {
    exit_btf(ctx.arg(0), ctx.arg(4));
    0
}

#[fexit(function = "inet6_recvmsg")]
pub fn tracer_recv_exit6(ctx: FExitContext) -> i32 {
    exit_btf(ctx.arg(0), ctx.arg(4));
    0
}

/// kprobe on `inet_sendmsg` and `inet6_sendmsg`.
#[kprobe]
pub fn tracer_send_kprobe(ctx: ProbeContext) -> i32 {
    if let (Some(sock), Some(msg)) = (ctx.arg::<u64>(0), ctx.arg::<u64>(1)) {
        enter(sock, msg, EventKind::Send, 0);
    }
    0
}

/// kprobe on `inet_recvmsg` and `inet6_recvmsg`.
#[kprobe]
pub fn tracer_recv_kprobe(ctx: ProbeContext) -> i32 {
    if let (Some(sock), Some(msg), Some(flags)) =
        (ctx.arg::<u64>(0), ctx.arg::<u64>(1), ctx.arg::<i32>(3))
    {
        enter(sock, msg, EventKind::Recv, flags);
    }
    0
}

/// kretprobe on `inet_sendmsg` and `inet6_sendmsg`.
#[kretprobe]
pub fn tracer_send_kretprobe(ctx: RetProbeContext) -> i32 {
    exit_raw(ctx.ret());
    0
}

/// kretprobe on `inet_recvmsg` and `inet6_recvmsg`.
#[kretprobe]
pub fn tracer_recv_kretprobe(ctx: RetProbeContext) -> i32 {
    exit_raw(ctx.ret());
    0
}

/// The kretprobe's half: the socket saved at entry, read through helpers.
#[inline(always)]
fn exit_raw(ret: i32) {
    let Some(p) = take() else {
        return;
    };
    // SAFETY: kernel read through the helper.
    let Some(sk) = (unsafe { read::<u64>(p.sock + u64::from(abi!(socket_sk))) }) else {
        return;
    };
    if sk == 0 {
        return;
    }
    let src = HeadSource::User {
        buf: p.buf,
        cap: p.cap,
    };
    on_io(RawSock(sk as *const u8), kind_of(&p), ret, p.msg_flags, src);
}
