//! Payload heads for attach mode, without a single syscall hook.
//!
//! `sock_send_length` / `sock_recv_length` run inside the syscall that moved
//! the bytes, so that syscall's own arguments are still in the task's saved
//! user registers (`bpf_task_pt_regs`, Linux 5.15+): which syscall it is,
//! and where its user buffer starts. The I/O hook copies at most 128 bytes
//! from there, into the same ring record as the I/O itself. Hooking the read/write syscalls instead would make every
//! process on the machine pay on every read and write. Only processes whose
//! `TRACED_TGIDS` value has `CAPTURE_HEADS` get here.
//!
//! The register offsets and syscall numbers are x86_64's (see `syscall`);
//! userspace asks for heads only there.

use aya_ebpf::helpers::{bpf_probe_read_user, generated};
use tracer_ebpf::{DIRECTION_RECV, DIRECTION_SEND, EventKind, PAYLOAD_HEAD, PayloadEvent};

use crate::common::{Ids, count_lost, header, ring, wakeup_flag};
use crate::probes::syscall::{
    SYS_READ, SYS_READV, SYS_RECVFROM, SYS_RECVMSG, SYS_SENDMSG, SYS_SENDTO, SYS_WRITE, SYS_WRITEV,
    nr_and_args12,
};

/// The first `struct iovec` at `iov`: { void *base; size_t len }, in one
/// user read (each `bpf_probe_read_user` costs about 100 ns here: writev
/// callers such as nginx and hyper pay it on every message).
#[inline(always)]
fn first_iovec(iov: u64) -> Option<(u64, u64)> {
    // SAFETY: bpf_probe_read_user validates the user pointer.
    let v = unsafe { bpf_probe_read_user(iov as *const [u64; 2]).ok()? };
    Some((v[0], v[1]))
}

/// Where an I/O's user buffer is known from.
#[derive(Clone, Copy)]
pub enum HeadSource {
    /// The syscall in progress, from the saved registers (the tracepoints:
    /// they see the socket and the byte count, not the buffer).
    Syscall,
    /// The buffer the socket function's `msghdr` iterator held at its entry
    /// (fentry/kprobe), start and size; `buf` 0 when it held none in user
    /// memory (a kernel buffer, sendfile's pages).
    User { buf: u64, cap: u64 },
}

impl HeadSource {
    #[inline(always)]
    fn buffer(self) -> Option<(u64, u64)> {
        match self {
            HeadSource::Syscall => user_buffer(),
            HeadSource::User { buf: 0, .. } => None,
            HeadSource::User { buf, cap } => Some((buf, cap)),
        }
    }
}

/// Start and size of the user buffer of the syscall in progress.
#[inline(always)]
fn user_buffer() -> Option<(u64, u64)> {
    let (nr, a1, a2) = nr_and_args12()?;
    match nr {
        SYS_READ | SYS_WRITE | SYS_SENDTO | SYS_RECVFROM => Some((a1, a2)),
        SYS_READV | SYS_WRITEV if a2 > 0 => first_iovec(a1),
        // `struct user_msghdr`: msg_iov at 16, msg_iovlen at 24, read as one.
        SYS_SENDMSG | SYS_RECVMSG => {
            // SAFETY: user reads checked by the helper.
            let [iov, vlen] = unsafe { bpf_probe_read_user((a1 + 16) as *const [u64; 2]).ok()? };
            if vlen > 0 { first_iovec(iov) } else { None }
        }
        _ => None,
    }
}

/// Copies the head (at most [`PAYLOAD_HEAD`] of `bytes`) of the I/O's
/// user buffer (from `src`) to `dst`; returns how many bytes it copied (0
/// when the read failed). None when no user buffer is known (splice,
/// io_uring, ...).
///
/// # Safety
/// `dst` points at [`PAYLOAD_HEAD`] writable bytes.
#[inline(always)]
pub unsafe fn copy_head(dst: *mut u8, bytes: i32, src: HeadSource) -> Option<u32> {
    let (buf, cap) = src.buffer()?;
    let mut n = bytes as u64;
    if cap < n {
        n = cap;
    }
    if n > PAYLOAD_HEAD as u64 {
        n = PAYLOAD_HEAD as u64;
    }
    // The mask gives the verifier a bound it can follow.
    let size = (n as u32) & (PAYLOAD_HEAD as u32 * 2 - 1);
    let size = if size > PAYLOAD_HEAD as u32 {
        PAYLOAD_HEAD as u32
    } else {
        size
    };
    // SAFETY: `dst` has PAYLOAD_HEAD bytes (the caller's promise), size is
    // at most that; the helper validates the user address.
    let rc = unsafe {
        generated::bpf_probe_read_user(dst.cast(), size, buf as *const core::ffi::c_void)
    };
    Some(if rc == 0 { size } else { 0 })
}

/// The direction field of a record for an I/O of `kind`.
#[inline(always)]
pub fn direction(kind: EventKind) -> u32 {
    if kind == EventKind::Send {
        DIRECTION_SEND
    } else {
        DIRECTION_RECV
    }
}

/// Called by the I/O hook after `bytes` (> 0) moved on `cookie` in a
/// process that captures heads: emits the I/O and the head of the syscall's
/// buffer as one record. False when it emitted nothing: no user buffer is
/// known (splice, io_uring, ...) or the record did not fit (counted as a
/// lost head); the caller then emits the plain I/O event.
#[inline(always)]
pub fn emit_with_head(
    ids: &Ids,
    cookie: u64,
    kind: EventKind,
    bytes: i32,
    protocol: u16,
    family: u16,
    src: HeadSource,
) -> bool {
    let Some(mut entry) = ring().and_then(|r| r.reserve_untyped::<PayloadEvent>(0)) else {
        count_lost(tracer_ebpf::lost_slot::HEADS);
        return false;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at reserved ring-buffer memory of the right size.
    let captured = unsafe { copy_head((*ev).data.as_mut_ptr(), bytes, src) };
    let Some(captured) = captured else {
        entry.discard(0);
        return false;
    };
    // SAFETY: as above.
    unsafe {
        (*ev).header = header(EventKind::Payload, ids.tgid, ids.tid, cookie);
        (*ev).len = bytes as u32;
        (*ev).direction = direction(kind);
        (*ev).protocol = protocol;
        (*ev).family = family;
        (*ev).captured = captured;
    }
    entry.submit(wakeup_flag());
    true
}
