//! The syscall a task is in, read from its saved user registers
//! (`bpf_task_pt_regs`, Linux 5.15+; before, where x86_64 keeps them: at
//! the top of the task's kernel stack) instead of hooking any syscall: an
//! enabled syscall tracepoint sends every syscall of every process on the
//! machine down the slow path, whoever it is for.
//!
//! The layout is x86_64's. Userspace sets `SYSCALL_REGS_X86_64` there
//! only; elsewhere every read answers None, so fds stay unknown.

use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_probe_read_kernel,
    generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
};

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

/// x86_64's `THREAD_SIZE` (16 KiB; 32 with KASAN, which distribution
/// kernels leave off) and `sizeof(struct pt_regs)`: `task_pt_regs(task)` is
/// `task->stack + THREAD_SIZE - sizeof(struct pt_regs)` there.
const THREAD_SIZE: u64 = 16384;
const PT_REGS_SIZE: u64 = 168;

/// 1 when the registers above may be read (set by userspace before load).
#[unsafe(no_mangle)]
static SYSCALL_REGS_X86_64: u32 = 0;

/// Where the saved registers are: a BTF-typed pointer from the helper
/// (plain loads), or an address read through `bpf_probe_read_kernel`.
#[derive(Clone, Copy)]
enum Regs {
    Btf(*const u8),
    Raw(u64),
}

#[inline(always)]
fn regs() -> Option<Regs> {
    // SAFETY: a read-only copy of a global that userspace set before load.
    if unsafe { core::ptr::read_volatile(&SYSCALL_REGS_X86_64) } != 1 {
        return None;
    }
    if crate::abi!(task_pt_regs_helper) == 1 {
        // SAFETY: helpers for the current task; the result is only read by `reg`.
        return Some(Regs::Btf(
            unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8,
        ));
    }
    let at = crate::abi!(task_stack);
    if at == 0 {
        return None;
    }
    // SAFETY: the helper validates the kernel address.
    let task = unsafe { bpf_get_current_task() };
    let stack = unsafe { bpf_probe_read_kernel((task + u64::from(at)) as *const u64).ok()? };
    if stack == 0 {
        return None;
    }
    Some(Regs::Raw(stack + THREAD_SIZE - PT_REGS_SIZE))
}

/// With the helper's pointer a plain load: the verifier checks it against
/// `struct pt_regs` and makes it fault-safe, saving a helper call per
/// register on the per-I/O path.
#[inline(always)]
fn reg(regs: Regs, offset: usize) -> Option<u64> {
    match regs {
        // SAFETY: the verifier checks the load against `struct pt_regs`.
        Regs::Btf(p) => Some(unsafe { core::ptr::read_volatile(p.add(offset) as *const u64) }),
        // SAFETY: the helper validates the kernel address.
        Regs::Raw(a) => unsafe { bpf_probe_read_kernel((a + offset as u64) as *const u64).ok() },
    }
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
