//! TCP state changes: `sock:inet_sock_set_state` as tp_btf. The same hook
//! also writes the connect and close events (see `connect`, `close`).
//!
//! Every record is built in place in the ring (`reserve`), never on the BPF
//! stack: Linux before 6.13 checks the 512 bytes of stack for a program and
//! its calls together, and 6.1 rejected this one at 576.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_ebpf::{EventKind, StateEvent, tcp_state};

use crate::{
    common::{
        cookie_of, current, family_of, fill_tuple, header_at, is_inet, is_traced, now_ns, owner_of,
        reserve, set_owner, wakeup_flag,
    },
    probes::{close, connect},
};

#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn tracer_state(ctx: BtfTracePointContext) -> i32 {
    let sk: *const u8 = ctx.arg(0);
    let old = ctx.arg::<i32>(1) as u32;
    let new = ctx.arg::<i32>(2) as u32;
    let family = family_of(sk);
    if !is_inet(family) {
        return 0;
    }
    let cookie = cookie_of(sk);
    let ids = current();
    // CLOSE -> SYN_SENT runs inside connect(2), in the caller's thread.
    let opens = old == tcp_state::CLOSE && new == tcp_state::SYN_SENT;
    let (tgid, tid) = match owner_of(cookie) {
        // Most changes run in softirq, where `current` is any task: trust
        // the owner recorded in process context, never `current`.
        Some(owner) => (owner, if owner == ids.tgid { ids.tid } else { 0 }),
        None if opens && is_traced(ids.tgid) => {
            set_owner(cookie, ids.tgid);
            (ids.tgid, ids.tid)
        }
        None => return 0,
    };
    let ts_ns = now_ns();
    // Close and connect go to the ring before the state line, stamped alike
    // (close) or earlier (connect, at its SYN_SENT): close(2) caused this
    // change, and a reader of one ring sees records in the order written.
    if tid != 0 {
        close::on_state_change(sk, tgid, tid, cookie, ts_ns);
    }
    if opens && tid != 0 {
        connect::started(cookie, tid, ts_ns);
    } else if old == tcp_state::SYN_SENT || old == tcp_state::SYN_RECV {
        connect::finished(sk, family, tgid, cookie, new, ts_ns);
    }
    let Some(mut entry) = reserve::<StateEvent>(EventKind::State) else {
        return 0;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is reserved ring memory of the size of a StateEvent.
    unsafe {
        (*ev).header = header_at(EventKind::State, tgid, tid, cookie, ts_ns);
        (*ev).old_state = old;
        (*ev).new_state = new;
        fill_tuple(&raw mut (*ev).tuple, sk, family);
    }
    entry.submit(wakeup_flag());
    0
}
