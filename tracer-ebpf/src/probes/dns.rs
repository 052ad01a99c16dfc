//! DNS of a traced process: uprobe + uretprobe on its libc `getaddrinfo`.
//! Userspace attaches them to the target's own libc (from /proc/PID/maps)
//! for that process only; a statically linked target gets none.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_user_str_bytes},
    macros::{map, uprobe, uretprobe},
    maps::HashMap,
    programs::{ProbeContext, RetProbeContext},
};
use tracer_ebpf::{DNS_HOST, DnsEvent, EventKind};

use crate::common::{current, emit, header, is_traced, reserve, wakeup_flag};

/// A `getaddrinfo` call in progress, keyed by thread id.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct PendingLookup {
    pub start_ns: u64,
    pub host: [u8; DNS_HOST],
}

#[map(name = "PENDING_LOOKUP")]
pub static PENDING_LOOKUP: HashMap<u32, PendingLookup> = HashMap::with_max_entries(4096, 0);

#[uprobe]
pub fn tracer_dns_enter(ctx: ProbeContext) -> u32 {
    let ids = current();
    if !is_traced(ids.tgid) {
        return 0;
    }
    let Some(node) = ctx.arg::<*const u8>(0) else {
        return 0;
    };
    // In place in the ring: the event and the pending lookup each hold the
    // host, and both on the stack took 224 of its 512 bytes.
    let Some(mut entry) = reserve::<DnsEvent>(EventKind::DnsStart) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    let mut pending = PendingLookup {
        start_ns: 0,
        host: [0; DNS_HOST],
    };
    // SAFETY: `ev` is reserved ring memory of the size of a DnsEvent; the
    // host read is bounded by `host` and the helper checks the user pointer.
    unsafe {
        (*ev).header = header(EventKind::DnsStart, ids.tgid, ids.tid, 0);
        (*ev).ret = 0;
        (*ev)._pad = 0;
        (*ev).duration_ns = 0;
        if !node.is_null() {
            let _ = bpf_probe_read_user_str_bytes(node, &mut pending.host);
        }
        (*ev).host = pending.host;
        pending.start_ns = (*ev).header.ts_ns;
    }
    entry.submit(wakeup_flag());
    let _ = PENDING_LOOKUP.insert(&ids.tid, &pending, 0);
    0
}

#[uretprobe]
pub fn tracer_dns_exit(ctx: RetProbeContext) -> u32 {
    let ids = current();
    // SAFETY: entry copied out before removal.
    let Some(pending) = (unsafe { PENDING_LOOKUP.get(&ids.tid).copied() }) else {
        return 0;
    };
    let _ = PENDING_LOOKUP.remove(&ids.tid);
    let ret: i32 = ctx.ret();
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    emit(&DnsEvent {
        header: header(EventKind::DnsDone, ids.tgid, ids.tid, 0),
        ret,
        _pad: 0,
        duration_ns: now.saturating_sub(pending.start_ns),
        host: pending.host,
    });
    0
}
