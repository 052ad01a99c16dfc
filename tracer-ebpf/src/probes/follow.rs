//! Following a traced process's children: `sched:sched_process_fork` (tp_btf,
//! in the parent's context, before the child runs its first instruction)
//! adds a new process's tgid to `TRACED_TGIDS` when its parent is traced with
//! `tgid_flags::FOLLOW`; `sched:sched_process_exit` (in the exiting task's
//! context) removes a process when its last thread exits, so that a reused
//! pid is never traced by mistake. Threads need nothing: the set is keyed by
//! tgid. In a PID namespace of the tracer's own, the child's tgid is the one
//! that namespace gives it (`tgid_in_parents_ns`), as in every other program.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_probe_read_kernel,
    },
    macros::{btf_tracepoint, map},
    maps::{Array, HashMap},
    programs::BtfTracePointContext,
};
use tracer_ebpf::{lost_slot, task_offset, tgid_flags};

use crate::common::{TRACED_ONE, TRACED_TGIDS, count_lost, current, in_pid_ns, traced_flags};

/// Deepest PID namespace level (`MAX_PID_NS_LEVEL`).
const MAX_PID_NS_LEVEL: u32 = 32;

/// `task_struct` member offsets (`task_offset` slots), from the kernel's BTF;
/// filled by userspace before these programs are attached.
#[map(name = "TASK_OFFSETS")]
static TASK_OFFSETS: Array<u32> = Array::with_max_entries(task_offset::SLOTS, 0);

/// Processes taken in by a fork (child tgid -> parent tgid), for userspace
/// to name them; it reads and deletes the entries as it goes.
#[map(name = "FOLLOWED")]
static FOLLOWED: HashMap<u32, u32> = HashMap::with_max_entries(4096, 0);

/// The `T` at `base + TASK_OFFSETS[slot]`; None when that offset is unknown.
/// A followed process's `comm` when it exited (tgid -> comm): the name
/// after its exec, for a process too short-lived for userspace to read it.
#[map(name = "EXIT_COMM")]
static EXIT_COMM: HashMap<u32, [u8; 16]> = HashMap::with_max_entries(4096, 0);

#[inline(always)]
fn read_at<T>(base: *const u8, slot: u32) -> Option<T> {
    let offset = *TASK_OFFSETS.get(slot)?;
    if offset == 0 || base.is_null() {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel(base.add(offset as usize) as *const T).ok() }
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn tracer_fork(ctx: BtfTracePointContext) -> i32 {
    let parent = current().tgid;
    let flags = traced_flags(parent);
    if flags & tgid_flags::FOLLOW == 0 {
        return 0;
    }
    let child: *const u8 = ctx.arg(1);
    let Some(host_tgid) = read_at::<u32>(child, task_offset::TGID) else {
        return 0;
    };
    // A new thread shares its parent's tgid: already traced.
    if host_tgid == (bpf_get_current_pid_tgid() >> 32) as u32 {
        return 0;
    }
    let child_tgid = if in_pid_ns() {
        match tgid_in_parents_ns(child) {
            Some(tgid) => tgid,
            None => return 0,
        }
    } else {
        host_tgid
    };
    if TRACED_TGIDS.insert(&child_tgid, &flags, 0).is_err() {
        count_lost(lost_slot::FOLLOW);
        return 0;
    }
    let _ = FOLLOWED.insert(&child_tgid, &parent, 0);
    // Two processes now: the one-slot fast path no longer describes them.
    if let Some(one) = TRACED_ONE.get_ptr_mut(0) {
        // SAFETY: an aligned u64 slot of an array map.
        unsafe { *one = 0 };
    }
    0
}

/// A new process's pid in the namespace of its parent (`current`, traced,
/// so in the tracer's namespace): `thread_pid->numbers[level].nr`, the pid
/// of a thread-group leader being its tgid. None for a child in a namespace
/// nested below (deeper level): the helper in `current` never sees it.
#[inline(always)]
fn tgid_in_parents_ns(child: *const u8) -> Option<u32> {
    // SAFETY: a helper without arguments.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let ours = read_at::<*const u8>(task, task_offset::THREAD_PID)?;
    let level = read_at::<u32>(ours, task_offset::PID_LEVEL)?;
    let theirs = read_at::<*const u8>(child, task_offset::THREAD_PID)?;
    let their_level = read_at::<u32>(theirs, task_offset::PID_LEVEL)?;
    if their_level > level {
        // Counted: userspace says how many children it could not follow.
        count_lost(lost_slot::FOLLOW_NESTED);
        return None;
    }
    if their_level != level || level > MAX_PID_NS_LEVEL {
        return None;
    }
    let numbers = *TASK_OFFSETS.get(task_offset::PID_NUMBERS)?;
    let stride = *TASK_OFFSETS.get(task_offset::UPID_SIZE)?;
    if numbers == 0 || stride == 0 {
        return None;
    }
    let at = numbers + level * stride;
    // SAFETY: bpf_probe_read_kernel validates the address; `upid.nr` is
    // the struct's first member.
    let nr = unsafe { bpf_probe_read_kernel(theirs.add(at as usize) as *const i32) }.ok()?;
    u32::try_from(nr).ok().filter(|&t| t != 0)
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn tracer_exit(_ctx: BtfTracePointContext) -> i32 {
    let tgid = current().tgid;
    if traced_flags(tgid) & tgid_flags::FOLLOW == 0 {
        return 0;
    }
    // do_exit() counts the thread out of `signal->live` before this
    // tracepoint: 0 means the whole process is gone (whichever thread left
    // last, and not a leader that de_thread() replaces at exec).
    // SAFETY: a helper without arguments.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let signal = read_at::<*const u8>(task, task_offset::SIGNAL);
    let live = signal.and_then(|s| read_at::<i32>(s, task_offset::SIGNAL_LIVE));
    if live != Some(0) {
        return 0;
    }
    let _ = TRACED_TGIDS.remove(&tgid);
    if let Ok(comm) = bpf_get_current_comm() {
        let _ = EXIT_COMM.insert(&tgid, &comm, 0);
    }
    if let Some(one) = TRACED_ONE.get_ptr_mut(0) {
        // SAFETY: an aligned u64 slot of an array map.
        unsafe {
            if *one as u32 == tgid {
                *one = 0;
            }
        }
    }
    0
}
