//! Maps and helpers shared by every probe family.

use aya_ebpf::bindings::BPF_RB_NO_WAKEUP;
use aya_ebpf::{
    bindings::bpf_pidns_info,
    btf_maps::{ArrayOfMaps, RingBuf},
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_get_socket_cookie,
        bpf_ktime_get_ns, bpf_probe_read_kernel, generated,
    },
    macros::{btf_map, map},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ring_buf::RingBufEntry},
};
use tracer_ebpf::{
    AF_INET, AF_INET6, EventHeader, EventKind, FourTuple, KernelAbi, PidNs, SockOffsets, lost_slot,
    tgid_flags,
};

use crate::probes::sock_id;

/// A ring buffer of events; the size here only describes the template of
/// `RINGS`' entries: userspace creates the real rings at their own size.
pub type EventRing = RingBuf<u64, 4096>;

/// CPU id -> the ring buffer its events go to, filled by userspace before
/// any program is attached (one slot per possible CPU, set at load). A ring
/// per CPU keeps the ring's spinlock on one CPU: a single shared ring made
/// `__bpf_ringbuf_reserve` the largest cost of the send/recv hooks.
#[btf_map]
pub static RINGS: ArrayOfMaps<EventRing, 1> = ArrayOfMaps::new();

/// The ring of the CPU this program runs on (programs run with migration
/// disabled, so it stays the same until they return).
#[inline(always)]
pub fn ring() -> Option<&'static EventRing> {
    // SAFETY: a helper without arguments.
    RINGS.get(unsafe { bpf_get_smp_processor_id() })
}

/// Records that found their ring full, per CPU, by `lost_slot` (event kind).
#[map(name = "LOST")]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost_slot::SLOTS, 0);

/// The processes to trace (tgid -> `tgid_flags`), filled by userspace.
#[map(name = "TRACED_TGIDS")]
pub static TRACED_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(1024, 0);

/// `flags << 32 | tgid` when exactly one process is traced, else 0.
#[map(name = "TRACED_ONE")]
pub static TRACED_ONE: Array<u64> = Array::with_max_entries(1, 0);

/// Socket cookie -> owning tgid, for hooks that run in softirq context.
#[map(name = "COOKIE_OWNER")]
pub static COOKIE_OWNER: LruHashMap<u64, u32> = LruHashMap::with_max_entries(65536, 0);

/// Set by userspace from the kernel's BTF before load.
#[unsafe(no_mangle)]
static SOCK_OFFSETS: SockOffsets = SockOffsets::DEFAULT;

/// Helpers and layouts of this kernel, set by userspace before load; see
/// [`KernelAbi`].
#[unsafe(no_mangle)]
pub static KERNEL_ABI: KernelAbi = KernelAbi::DEFAULT;

/// One field of [`KERNEL_ABI`], e.g. `abi!(msg_iter)`: a load-time constant.
#[macro_export]
macro_rules! abi {
    ($field:ident) => {
        $crate::common::abi_field(&raw const $crate::common::KERNEL_ABI.$field)
    };
}

#[inline(always)]
pub fn abi_field(field: *const u32) -> u32 {
    // SAFETY: a read-only copy of a global that userspace set before load.
    unsafe { core::ptr::read_volatile(field) }
}

/// The tracer's PID namespace, set by userspace before load; see [`PidNs`].
/// A constant of the loaded object: in the initial namespace the verifier
/// drops the namespace branch, so no process pays for it.
#[unsafe(no_mangle)]
static PID_NS: PidNs = PidNs::INITIAL;

/// Whether the tracer runs in a PID namespace of its own.
#[inline(always)]
pub fn in_pid_ns() -> bool {
    // SAFETY: a read-only copy of a global that userspace set before load.
    unsafe { core::ptr::read_volatile(&PID_NS.ino) != 0 }
}

pub struct Ids {
    pub tgid: u32,
    pub tid: u32,
}

/// The current task's ids as the tracer numbers processes: the host's in
/// the initial namespace, else its own namespace's, and 0/0 (never traced)
/// for a task outside it. Every program takes ids from here only, so the
/// filter, `COOKIE_OWNER`, the events and userspace (/proc, getpid) agree.
#[inline(always)]
pub fn current() -> Ids {
    if in_pid_ns() {
        return current_in_ns();
    }
    let v = bpf_get_current_pid_tgid();
    Ids {
        tgid: (v >> 32) as u32,
        tid: v as u32,
    }
}

#[inline(always)]
fn current_in_ns() -> Ids {
    // SAFETY: as in `in_pid_ns`.
    let ns = unsafe { core::ptr::read_volatile(&PID_NS) };
    let mut info = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: `info` is writable and of the size passed; the helper clears
    // it when the task's active namespace is not `ns`.
    let ret = unsafe {
        generated::bpf_get_ns_current_pid_tgid(
            ns.dev,
            ns.ino,
            &mut info,
            core::mem::size_of::<bpf_pidns_info>() as u32,
        )
    };
    if ret != 0 {
        return Ids { tgid: 0, tid: 0 };
    }
    Ids {
        tgid: info.tgid,
        tid: info.pid,
    }
}

/// The `tgid_flags` of `tgid`; 0 when it is not traced. Every hook of every
/// process on the machine starts here, so the usual case is an array load.
#[inline(always)]
pub fn traced_flags(tgid: u32) -> u8 {
    // A task outside the tracer's PID namespace (see `current`).
    if tgid == 0 {
        return 0;
    }
    if let Some(&one) = TRACED_ONE.get(0)
        && one != 0
    {
        return if one as u32 == tgid {
            (one >> 32) as u8
        } else {
            0
        };
    }
    // SAFETY: a u8 value copied out at once.
    unsafe { TRACED_TGIDS.get(&tgid).copied() }.unwrap_or(0)
}

#[inline(always)]
pub fn is_traced(tgid: u32) -> bool {
    traced_flags(tgid) & tgid_flags::TRACED != 0
}

#[inline(always)]
pub fn owner_of(cookie: u64) -> Option<u32> {
    // SAFETY: u32 values, copied out at once.
    unsafe { COOKIE_OWNER.get(&cookie).copied() }
}

#[inline(always)]
pub fn set_owner(cookie: u64, tgid: u32) {
    let _ = COOKIE_OWNER.insert(&cookie, &tgid, 0);
}

#[inline(always)]
pub fn forget_owner(cookie: u64) {
    let _ = COOKIE_OWNER.remove(&cookie);
}

#[inline(always)]
pub fn header(kind: EventKind, tgid: u32, tid: u32, cookie: u64) -> EventHeader {
    header_at(kind, tgid, tid, cookie, now_ns())
}

/// CLOCK_MONOTONIC, as every event's `ts_ns`.
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_ns() }
}

/// A header stamped `ts_ns`: events that one state change causes share it.
#[inline(always)]
pub fn header_at(kind: EventKind, tgid: u32, tid: u32, cookie: u64, ts_ns: u64) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        // SAFETY: a helper without arguments.
        cpu: unsafe { bpf_get_smp_processor_id() },
        ts_ns,
        tgid,
        tid,
        cookie,
    }
}

/// Ring-buffer flags for every record: never wake the reader. A wake-up
/// per record costs more than the record, and even asking the ring how full
/// it is (`bpf_ringbuf_query`) cost 150 ns per record in the bench; the
/// reader polls every ring every 10 ms instead.
#[inline(always)]
pub fn wakeup_flag() -> u64 {
    BPF_RB_NO_WAKEUP as u64
}

/// Writes one event (an ABI struct, so it starts with its [`EventHeader`])
/// to this CPU's ring; counts it as lost, under its kind, when the ring is
/// full (or missing, which it is not: userspace fills every slot first).
#[inline(always)]
pub fn emit<T: 'static>(event: &T) {
    let written = match ring() {
        Some(ring) => ring.output_untyped::<T>(event, wakeup_flag()).is_ok(),
        None => false,
    };
    if !written {
        // SAFETY: every event struct is repr(C) with the header first.
        let kind = unsafe { (*(event as *const T).cast::<EventHeader>()).kind };
        count_lost(kind);
    }
}

/// Room for one `T` in this CPU's ring, to build the record in place: its
/// bytes never touch the BPF stack, whose 512 bytes the caller and its
/// calls share (Linux before 6.13 has no private stack per program). When
/// the ring is full the record is counted lost under `kind`. The caller must
/// write every field and submit on every path (the verifier checks that).
#[inline(always)]
pub fn reserve<T: 'static>(kind: EventKind) -> Option<RingBufEntry<T>> {
    let entry = ring().and_then(|r| r.reserve_untyped::<T>(0));
    if entry.is_none() {
        count_lost(kind as u32);
    }
    entry
}

/// Counts one record that found the ring buffer full (a `lost_slot`).
#[inline(always)]
pub fn count_lost(slot: u32) {
    if let Some(lost) = LOST.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, so no other program writes it concurrently.
        unsafe { *lost += 1 };
    }
}

/// The socket's identity in every record: its cookie where tracing
/// programs may ask for one (Linux 5.12+), else an id the tracer made
/// (`sock_id`). The branch is a load-time constant: on 5.10 the verifier
/// never sees the helper call it would refuse.
#[inline(always)]
pub fn cookie_of(sk: *const u8) -> u64 {
    if abi!(cookie_helper) == 0 {
        return sock_id::own_id(sk as u64);
    }
    // SAFETY: `sk` is the BTF-typed `struct sock *` of a tp_btf program.
    unsafe { bpf_get_socket_cookie(sk as *mut core::ffi::c_void) }
}

/// `cookie_of` for a `struct sock *` the verifier knows only as a number
/// (a kprobe's): the cookie the kernel already made, read from
/// `skc_cookie`; 0 (skip) when it has none yet, as the helper cannot be
/// called from a kprobe. TCP sockets always have one by their first I/O:
/// the state hook's helper call made it.
#[inline(always)]
pub fn cookie_raw(sk: *const u8) -> u64 {
    if abi!(cookie_helper) == 0 {
        return sock_id::own_id(sk as u64);
    }
    skc_cookie_raw(sk)
}

/// `sk->skc_cookie` through the helper: 0 when none was made yet.
#[inline(always)]
pub fn skc_cookie_raw(sk: *const u8) -> u64 {
    // SAFETY: a read-only copy of a global that userspace set before load.
    let off = unsafe { core::ptr::read_volatile(&raw const SOCK_OFFSETS.skc_cookie) };
    if off == 0 {
        return 0;
    }
    // SAFETY: see `read`.
    unsafe { read::<u64>(sk, off) }.unwrap_or(0)
}

/// `cookie_of` for a BTF-typed `struct sock *` (a tp_btf argument): the
/// cookie the kernel already made for `sk` is a plain load of
/// `skc_cookie`, not a helper call; the helper makes one when it is 0.
#[inline(always)]
pub fn cookie_btf(sk: *const u8) -> u64 {
    if abi!(cookie_helper) == 0 {
        return sock_id::own_id(sk as u64);
    }
    // SAFETY: a read-only copy of a global that userspace set before load.
    let off = unsafe { core::ptr::read_volatile(&raw const SOCK_OFFSETS.skc_cookie) };
    if off != 0 {
        // SAFETY: as in `family_btf`; the offset is a load-time constant.
        let cookie = unsafe { core::ptr::read_volatile(sk.add(off as usize) as *const u64) };
        if cookie != 0 {
            return cookie;
        }
    }
    cookie_of(sk)
}

#[inline(always)]
unsafe fn read<T>(sk: *const u8, offset: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel(sk.add(offset as usize) as *const T).ok() }
}

/// `sk->__sk_common.skc_family`: its offset (16) has not moved since 2.6.
#[inline(always)]
pub fn family_of(sk: *const u8) -> u16 {
    // SAFETY: see `read`.
    unsafe { read::<u16>(sk, 16) }.unwrap_or(0)
}

/// `family_of` for a BTF-typed `struct sock *` (a tp_btf argument): a
/// plain load, which the verifier checks against the kernel's BTF and makes
/// fault-safe, instead of a helper call on the per-I/O path.
#[inline(always)]
pub fn family_btf(sk: *const u8) -> u16 {
    // SAFETY: `sk` is a tp_btf `struct sock *`; offset 16 is skc_family.
    unsafe { core::ptr::read_volatile(sk.add(16) as *const u16) }
}

/// `protocol_of` for a BTF-typed `struct sock *`, as `family_btf`.
/// `sk_protocol` is a u16 field since Linux 5.6; before, a bitfield the
/// verifier cannot load directly, read through the helper.
#[inline(always)]
pub fn protocol_btf(sk: *const u8) -> u16 {
    // SAFETY: read-only copies of a global that userspace set before load
    // (only the fields used: a copy of the whole struct is six loads).
    let (size, off) = unsafe {
        (
            core::ptr::read_volatile(&raw const SOCK_OFFSETS.sk_protocol_size),
            core::ptr::read_volatile(&raw const SOCK_OFFSETS.sk_protocol),
        )
    };
    if size != 2 {
        return protocol_of(sk);
    }
    // SAFETY: as in `family_btf`; the offset is a load-time constant.
    unsafe { core::ptr::read_volatile(sk.add(off as usize) as *const u16) }
}

#[inline(always)]
pub fn is_inet(family: u16) -> bool {
    family == AF_INET || family == AF_INET6
}

/// Writes the addresses, ports and protocol of `sk` into `t` (ring memory:
/// no copy of the tuple on the stack). The head of `sock_common` (daddr 0,
/// rcv_saddr 4, dport 12, num 14) is fixed; the rest comes from BTF.
///
/// # Safety
/// `t` points at writable memory for one `FourTuple`.
#[inline(always)]
pub unsafe fn fill_tuple(t: *mut FourTuple, sk: *const u8, family: u16) {
    // SAFETY: a read-only copy of a global that userspace set before load.
    let offs = unsafe { core::ptr::read_volatile(&SOCK_OFFSETS) };
    let (daddr, saddr, len) = if family == AF_INET6 {
        (offs.skc_v6_daddr, offs.skc_v6_rcv_saddr, 16)
    } else {
        (0, 4, 4)
    };
    // SAFETY: `t` is valid (the caller's promise); kernel reads go through
    // bpf_probe_read_kernel, which zeroes the destination when it fails.
    unsafe {
        (*t).family = family;
        (*t).dport = u16::from_be(read::<u16>(sk, 12).unwrap_or(0));
        (*t).sport = read::<u16>(sk, 14).unwrap_or(0);
        (*t).protocol = protocol_of(sk);
        (*t).saddr = [0; 16];
        (*t).daddr = [0; 16];
        generated::bpf_probe_read_kernel(
            (*t).daddr.as_mut_ptr().cast(),
            len,
            sk.add(daddr as usize).cast(),
        );
        generated::bpf_probe_read_kernel(
            (*t).saddr.as_mut_ptr().cast(),
            len,
            sk.add(saddr as usize).cast(),
        );
    }
}

/// `sk->sk_protocol` alone, for the per-I/O hot path.
#[inline(always)]
pub fn protocol_of(sk: *const u8) -> u16 {
    // SAFETY: as in `fill_tuple`.
    let offs = unsafe { core::ptr::read_volatile(&SOCK_OFFSETS) };
    unsafe {
        if offs.sk_protocol_size == 1 {
            read::<u8>(sk, offs.sk_protocol).unwrap_or(0) as u16
        } else {
            read::<u16>(sk, offs.sk_protocol).unwrap_or(0)
        }
    }
}

/// `sk->sk_err`: the error a failed handshake left (ECONNREFUSED...), or 0.
#[inline(always)]
pub fn sk_err(sk: *const u8) -> i32 {
    // SAFETY: as in `fill_tuple`.
    let offs = unsafe { core::ptr::read_volatile(&SOCK_OFFSETS) };
    unsafe { read::<i32>(sk, offs.sk_err) }.unwrap_or(0)
}

/// Whether a task holds `sk` (`lock_sock`): state changes then run in that
/// task's own process context, never in softirq processing that happens
/// to run on its stack (which would see the task's syscall, not the sock's).
#[inline(always)]
pub fn owned_by_task(sk: *const u8) -> bool {
    // SAFETY: as in `fill_tuple`.
    let offs = unsafe { core::ptr::read_volatile(&SOCK_OFFSETS) };
    unsafe { read::<i32>(sk, offs.sk_lock_owned) }.unwrap_or(0) != 0
}
