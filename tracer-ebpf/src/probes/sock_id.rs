//! Socket identity where tracing programs cannot ask for the socket cookie
//! (`bpf_get_socket_cookie` from tp_btf/fentry is Linux 5.12+).
//!
//! A socket's address alone is no identity: the kernel reuses a freed
//! socket's memory at once, and a record of the new socket would continue
//! the old one. So each socket gets an id of the tracer's own the first
//! time a program sees it, kept in `SOCK_IDS` by address until the kernel
//! frees the socket: `security_sk_free`, which `sk_prot_free` calls for
//! every socket (TCP, UDP, accepted children; `tcp_destroy_sock` is TCP
//! only), clears it. The id never changes while the socket lives, even
//! when a cookie is made later (trace's client asks for `SO_COOKIE` after
//! its connect); the first hook that then finds `skc_cookie` set on a
//! traced socket writes one [`CookieAliasEvent`], which trace uses to join
//! its client's cookie. Ids are unique for the tracer's run: a per-CPU
//! counter, the CPU in the middle bits, [`OWN_SOCKET_ID`] on top.
//!
//! The free hook is attached (fentry, or kprobe where trampolines cannot
//! attach) only on kernels that need it; userspace sets `cookie_helper`.
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::bpf_get_smp_processor_id,
    macros::{fentry, kprobe, map},
    maps::{HashMap, PerCpuArray},
    programs::{FEntryContext, ProbeContext},
};
use tracer_ebpf::{CookieAliasEvent, EventKind, OWN_SOCKET_ID};

use crate::common::{emit, header, owner_of, skc_cookie_raw};

/// A socket's id, and whether its cookie was announced.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockId {
    id: u64,
    /// The `skc_cookie` announced by a [`CookieAliasEvent`]; 0: not yet.
    cookie: u64,
}

/// Socket address -> its id. Not LRU: an evicted live socket would come
/// back with a second id. Full, a new socket gets id 0 and is not traced.
#[map(name = "SOCK_IDS")]
static SOCK_IDS: HashMap<u64, SockId> = HashMap::with_max_entries(65536, 0);

/// Ids handed out, per CPU.
#[map(name = "SOCK_ID_NEXT")]
static SOCK_ID_NEXT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The id of the socket at address `sk`, made on first sight; 0 when the
/// map is full (the caller then drops the record: no id, no record).
#[inline(always)]
pub fn own_id(sk: u64) -> u64 {
    if let Some(v) = SOCK_IDS.get_ptr_mut(&sk) {
        // SAFETY: a map value; a race of two CPUs here at worst announces
        // the same alias twice, which userspace takes as one.
        unsafe {
            if (*v).cookie == 0 {
                announce(v, sk);
            }
            return (*v).id;
        }
    }
    let Some(next) = SOCK_ID_NEXT.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: a per-CPU slot: no other program writes it concurrently.
    let n = unsafe {
        *next += 1;
        *next
    };
    // SAFETY: a helper without arguments.
    let cpu = u64::from(unsafe { bpf_get_smp_processor_id() });
    let id = OWN_SOCKET_ID | (cpu & 0x3fff) << 48 | (n & 0xffff_ffff_ffff);
    let v = SockId { id, cookie: 0 };
    if SOCK_IDS.insert(&sk, &v, BPF_NOEXIST as u64).is_ok() {
        return id;
    }
    // Another CPU named it first (or the map is full): its id stands.
    // SAFETY: a u64 copied out at once.
    unsafe { SOCK_IDS.get(&sk) }.map_or(0, |v| v.id)
}

/// Writes the alias of a traced socket once the kernel made its cookie.
///
/// # Safety
/// `v` is `sk`'s value in `SOCK_IDS`.
#[inline(always)]
unsafe fn announce(v: *mut SockId, sk: u64) {
    let cookie = skc_cookie_raw(sk as *const u8);
    if cookie == 0 {
        return;
    }
    // SAFETY: the caller's promise.
    let id = unsafe { (*v).id };
    // Only sockets a traced process owns: the record needs its tgid.
    let Some(tgid) = owner_of(id) else {
        return;
    };
    emit(&CookieAliasEvent {
        header: header(EventKind::CookieAlias, tgid, 0, id),
        skc_cookie: cookie,
    });
    // SAFETY: as above.
    unsafe { (*v).cookie = cookie };
}

#[inline(always)]
fn forget(sk: u64) {
    let _ = SOCK_IDS.remove(&sk);
}

#[fentry(function = "security_sk_free")]
pub fn tracer_sk_free(ctx: FEntryContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    forget(sk);
    0
}

#[kprobe]
pub fn tracer_sk_free_kprobe(ctx: ProbeContext) -> i32 {
    if let Some(sk) = ctx.arg::<u64>(0) {
        forget(sk);
    }
    0
}
