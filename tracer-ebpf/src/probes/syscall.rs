//! The syscall a task is in, read from its saved user registers
//! (`bpf_task_pt_regs`, Linux 5.15+) instead of hooking any syscall: an
//! enabled syscall tracepoint sends every syscall of every process on the
//! machine down the slow path, whoever it is for.
//!
//! The layout is x86_64's. Userspace sets `SYSCALL_REGS_X86_64` there
//! only; elsewhere every read answers None, so fds stay unknown.

use aya_ebpf::helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs};

// x86_64 syscall numbers.
pub const SYS_READ: u64 = 0;
pub const SYS_WRITE: u64 = 1;
pub const SYS_CLOSE: u64 = 3;
pub const SYS_READV: u64 = 19;
pub const SYS_WRITEV: u64 = 20;
pub const SYS_CONNECT: u64 = 42;
pub const SYS_SENDTO: u64 = 44;
pub const SYS_RECVFROM: u64 = 45;
pub const SYS_SENDMSG: u64 = 46;
pub const SYS_RECVMSG: u64 = 47;

// Offsets in x86_64 `struct pt_regs`: the first three syscall arguments,
// and the syscall number.
const PT_DX: usize = 96;
const PT_SI: usize = 104;
const PT_DI: usize = 112;
const PT_ORIG_AX: usize = 120;

/// 1 when the registers above may be read (set by userspace before load).
#[unsafe(no_mangle)]
static SYSCALL_REGS_X86_64: u32 = 0;

#[inline(always)]
fn regs() -> Option<*const u8> {
    // SAFETY: a read-only copy of a global that userspace set before load.
    if unsafe { core::ptr::read_volatile(&SYSCALL_REGS_X86_64) } != 1 {
        return None;
    }
    // SAFETY: helpers for the current task; the result is only read by `reg`.
    Some(unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8)
}

/// A plain load: `bpf_task_pt_regs` returns a BTF-typed pointer, which the
/// verifier lets programs read directly (fault-safe), saving a helper call
/// per register on the per-I/O path.
#[inline(always)]
fn reg(regs: *const u8, offset: usize) -> Option<u64> {
    // SAFETY: the verifier checks the load against `struct pt_regs`.
    Some(unsafe { core::ptr::read_volatile(regs.add(offset) as *const u64) })
}

/// The current syscall's number and first argument (an fd for connect,
/// close, sendto...).
#[inline(always)]
pub fn nr_and_arg0() -> Option<(u64, u64)> {
    let regs = regs()?;
    Some((reg(regs, PT_ORIG_AX)?, reg(regs, PT_DI)?))
}

/// The current syscall's number and its second and third arguments (a
/// buffer and its size for read, write, sendto...).
#[inline(always)]
pub fn nr_and_args12() -> Option<(u64, u64, u64)> {
    let regs = regs()?;
    Some((reg(regs, PT_ORIG_AX)?, reg(regs, PT_SI)?, reg(regs, PT_DX)?))
}
