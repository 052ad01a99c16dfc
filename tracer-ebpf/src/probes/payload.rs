//! Payload heads for attach mode. The socket-layer hooks (`sock_send_length`
//! / `sock_recv_length`) see the byte count but not the user buffer, so the
//! syscall entries that carry one (write, sendto, sendmsg, writev and their
//! read twins) stash its address per thread; the I/O hook, which runs inside
//! the same syscall after the bytes moved, copies at most 128 bytes from it.
//! Syscall exits drop the stash so a later I/O never reads a stale buffer.
//! Only processes whose `TRACED_TGIDS` value has `CAPTURE_HEADS` pay for this.

use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated},
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use tracer_ebpf::{DIRECTION_RECV, DIRECTION_SEND, EventKind, PAYLOAD_HEAD, PayloadEvent};

use crate::common::{EVENTS, Ids, captures_heads, current, header};

/// Where the user buffer of a syscall in progress starts, and its size.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct HeadSource {
    pub buf: u64,
    pub cap: u64,
}

/// Thread id -> the buffer of its socket syscall in progress.
#[map(name = "HEAD_SOURCES")]
pub static HEAD_SOURCES: HashMap<u32, HeadSource> = HashMap::with_max_entries(8192, 0);

// `struct syscall_trace_enter`: arguments as longs from byte 16.
const ARG1: usize = 24;
const ARG2: usize = 32;

/// The buffer is the second argument, its size the third (write, read,
/// sendto, recvfrom).
#[inline(always)]
fn stash_flat(ctx: &TracePointContext) {
    let ids = current();
    if !captures_heads(ids.tgid) {
        return;
    }
    // SAFETY: offsets of the syscall tracepoint layout.
    let (Ok(buf), Ok(cap)) = (unsafe { ctx.read_at::<u64>(ARG1) }, unsafe {
        ctx.read_at::<u64>(ARG2)
    }) else {
        return;
    };
    let _ = HEAD_SOURCES.insert(&ids.tid, &HeadSource { buf, cap }, 0);
}

/// The first `struct iovec` at `iov`: { void *base; size_t len }.
#[inline(always)]
fn stash_iovec(tid: u32, iov: u64) {
    // SAFETY: bpf_probe_read_user validates the user pointers.
    let (Ok(buf), Ok(cap)) = (unsafe { bpf_probe_read_user(iov as *const u64) }, unsafe {
        bpf_probe_read_user((iov + 8) as *const u64)
    }) else {
        return;
    };
    let _ = HEAD_SOURCES.insert(&tid, &HeadSource { buf, cap }, 0);
}

/// writev / readv: the second argument is the iovec array.
#[inline(always)]
fn stash_vec(ctx: &TracePointContext) {
    let ids = current();
    if !captures_heads(ids.tgid) {
        return;
    }
    // SAFETY: offsets of the syscall tracepoint layout.
    let (Ok(iov), Ok(vlen)) = (unsafe { ctx.read_at::<u64>(ARG1) }, unsafe {
        ctx.read_at::<u64>(ARG2)
    }) else {
        return;
    };
    if vlen > 0 {
        stash_iovec(ids.tid, iov);
    }
}

/// sendmsg / recvmsg: `struct user_msghdr` has msg_iov at 16, msg_iovlen at 24.
#[inline(always)]
fn stash_msg(ctx: &TracePointContext) {
    let ids = current();
    if !captures_heads(ids.tgid) {
        return;
    }
    // SAFETY: offset of the syscall tracepoint layout; user reads checked.
    let Ok(msg) = (unsafe { ctx.read_at::<u64>(ARG1) }) else {
        return;
    };
    let (Ok(iov), Ok(vlen)) = (
        unsafe { bpf_probe_read_user((msg + 16) as *const u64) },
        unsafe { bpf_probe_read_user((msg + 24) as *const u64) },
    ) else {
        return;
    };
    if vlen > 0 {
        stash_iovec(ids.tid, iov);
    }
}

/// Runs at every exit of these syscalls on the machine: only attach's
/// process has anything to drop.
#[inline(always)]
fn unstash() {
    let ids = current();
    if captures_heads(ids.tgid) {
        let _ = HEAD_SOURCES.remove(&ids.tid);
    }
}

macro_rules! enter {
    ($name:ident, $stash:ident) => {
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            $stash(&ctx);
            0
        }
    };
}

macro_rules! exit {
    ($name:ident) => {
        #[tracepoint]
        pub fn $name(_ctx: TracePointContext) -> u32 {
            unstash();
            0
        }
    };
}

enter!(tracer_head_write, stash_flat);
enter!(tracer_head_sendto, stash_flat);
enter!(tracer_head_sendmsg, stash_msg);
enter!(tracer_head_writev, stash_vec);
enter!(tracer_head_read, stash_flat);
enter!(tracer_head_recvfrom, stash_flat);
enter!(tracer_head_recvmsg, stash_msg);
enter!(tracer_head_readv, stash_vec);
exit!(tracer_head_write_exit);
exit!(tracer_head_sendto_exit);
exit!(tracer_head_sendmsg_exit);
exit!(tracer_head_writev_exit);
exit!(tracer_head_read_exit);
exit!(tracer_head_recvfrom_exit);
exit!(tracer_head_recvmsg_exit);
exit!(tracer_head_readv_exit);

/// Called by the I/O hook after `bytes` (> 0) moved on `cookie`: emits the
/// head of the stashed buffer, if this thread stashed one.
#[inline(always)]
pub fn emit_head(ids: &Ids, cookie: u64, send: bool, bytes: i32) {
    // SAFETY: plain values copied out at once.
    let Some(src) = (unsafe { HEAD_SOURCES.get(&ids.tid).copied() }) else {
        return;
    };
    // One I/O per syscall: the head is used once.
    let _ = HEAD_SOURCES.remove(&ids.tid);
    let mut n = bytes as u64;
    if src.cap < n {
        n = src.cap;
    }
    if n > PAYLOAD_HEAD as u64 {
        n = PAYLOAD_HEAD as u64;
    }
    let Some(mut entry) = EVENTS.reserve::<PayloadEvent>(0) else {
        crate::common::count_lost(tracer_ebpf::lost_slot::HEADS);
        return;
    };
    let kind = EventKind::Payload;
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at reserved ring-buffer memory of the right size;
    // the copy is bounded by `n <= PAYLOAD_HEAD`, the size of `data`.
    unsafe {
        (*ev).header = header(kind, ids.tgid, ids.tid, cookie);
        (*ev).len = bytes as u32;
        (*ev).direction = if send { DIRECTION_SEND } else { DIRECTION_RECV };
        (*ev)._pad = 0;
        let size = (n as u32) & (PAYLOAD_HEAD as u32 * 2 - 1);
        let size = if size > PAYLOAD_HEAD as u32 {
            PAYLOAD_HEAD as u32
        } else {
            size
        };
        let rc = generated::bpf_probe_read_user(
            (*ev).data.as_mut_ptr().cast(),
            size,
            src.buf as *const core::ffi::c_void,
        );
        (*ev).captured = if rc == 0 { size } else { 0 };
    }
    entry.submit(crate::common::wakeup_flag());
}
