//! TCP state changes: `sock:inet_sock_set_state` as tp_btf. The same hook
//! also writes the connect and close events (see `connect`, `close`).

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_ebpf::{EventKind, StateEvent, tcp_state};

use crate::{
    common::{
        cookie_of, current, emit, family_of, header, is_inet, is_traced, owner_of, set_owner,
        tuple_of,
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
    let event = StateEvent {
        header: header(EventKind::State, tgid, tid, cookie),
        old_state: old,
        new_state: new,
        tuple: tuple_of(sk, family),
    };
    let ts_ns = event.header.ts_ns;
    if tid != 0 {
        // Before the state line, stamped alike: close(2) caused it.
        close::on_state_change(sk, tgid, tid, cookie, ts_ns);
    }
    if opens && tid != 0 {
        connect::started(cookie, tid, ts_ns);
    } else if old == tcp_state::SYN_SENT || old == tcp_state::SYN_RECV {
        // Before the state line: it carries the SYN_SENT's earlier stamp.
        connect::finished(sk, tgid, cookie, new, &event.tuple);
    }
    emit(&event);
    0
}
