//! TCP state changes: `sock:inet_sock_set_state` as tp_btf.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_ebpf::{EventKind, StateEvent, tcp_state};

use crate::{
    common::{
        cookie_of, current, emit, family_of, header, is_inet, is_traced, owner_of, set_owner,
        tuple_of,
    },
    probes::connect::note_connect_cookie,
};

#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn tracer_state(ctx: BtfTracePointContext) -> i32 {
    let sk: *const u8 = ctx.arg(0);
    let old: i32 = ctx.arg(1);
    let new: i32 = ctx.arg(2);
    let family = family_of(sk);
    if !is_inet(family) {
        return 0;
    }
    let cookie = cookie_of(sk);
    let ids = current();
    let (tgid, tid) = match owner_of(cookie) {
        // Most changes run in softirq, where `current` is any task: trust
        // the owner recorded in process context, never `current`.
        Some(owner) => (owner, if owner == ids.tgid { ids.tid } else { 0 }),
        // CLOSE -> SYN_SENT runs inside connect(2), in the caller's thread.
        None if old as u32 == tcp_state::CLOSE && new as u32 == tcp_state::SYN_SENT => {
            if !is_traced(ids.tgid) {
                return 0;
            }
            set_owner(cookie, ids.tgid);
            note_connect_cookie(ids.tid, cookie);
            (ids.tgid, ids.tid)
        }
        None => return 0,
    };
    let event = StateEvent {
        header: header(EventKind::State, tgid, tid, cookie),
        old_state: old as u32,
        new_state: new as u32,
        tuple: tuple_of(sk, family),
    };
    emit(&event);
    0
}
