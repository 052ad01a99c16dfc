//! The join and the verdict on hand-made event streams: cases the loopback
//! tests cannot provoke on purpose (a client that lies, a racing connect).
use super::{Verdict, build};
use crate::timeline::test_events::{SERVER, addr, kernel, request};
use crate::{
    client::{ClientEvent, Hook},
    probes::{KernelDetail, KernelEvent},
};
use tracer_ebpf::tcp_state::{CLOSE, ESTABLISHED, SYN_SENT};

/// SYN, connect (stamped at the SYN), ESTABLISHED for `cookie` at `ts`, as
/// the state hook writes them.
pub(crate) fn new_socket(ts: u64, cookie: u64, local: &str) -> Vec<KernelEvent> {
    let (local, remote) = (addr(local), addr(SERVER));
    vec![
        kernel(
            ts,
            cookie,
            KernelDetail::State {
                old: CLOSE,
                new: SYN_SENT,
                local: addr("0.0.0.0:0"),
                remote,
            },
        ),
        kernel(
            ts,
            cookie,
            KernelDetail::Connect {
                fd: 9,
                ret: 0,
                remote,
                duration_ns: 50,
            },
        ),
        kernel(
            ts + 50,
            cookie,
            KernelDetail::State {
                old: SYN_SENT,
                new: ESTABLISHED,
                local,
                remote,
            },
        ),
    ]
}

pub(crate) fn exchange(ts: u64, cookie: u64) -> Vec<KernelEvent> {
    vec![
        kernel(
            ts,
            cookie,
            KernelDetail::Send {
                bytes: 78,
                protocol: 6,
            },
        ),
        kernel(
            ts + 200,
            cookie,
            KernelDetail::Recv {
                bytes: 120,
                protocol: 6,
            },
        ),
    ]
}

pub(crate) fn got_conn(request: u32, ts_ns: u64, reused: bool) -> ClientEvent {
    ClientEvent {
        request,
        ts_ns,
        hook: Hook::GotConn {
            reused,
            was_idle: reused,
            idle_time_ns: None,
            local_addr: None,
            remote_addr: None,
        },
        derived: reused,
    }
}

#[test]
fn same_cookie_without_connect_is_reused_and_derived_steps_appear() {
    let mut k = new_socket(100, 7, "127.0.0.1:5000");
    k.extend(exchange(200, 7));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    let client = vec![got_conn(1, 180, false), got_conn(2, 1100, true)];
    let t = build(reqs, client, k, true, 0);
    assert_eq!(t.summary.verdict, Verdict::Reused);
    assert_eq!(t.summary.connections, 1);
    let second = &t.requests[1];
    assert!(second.verdict.reused && second.verdict.kernel_confirmed);
    assert_eq!(second.verdict.reused_from, Some(1));
    assert_eq!(second.verdict.disagreement, None);
    let names: Vec<&str> = second.events.iter().map(|e| e.name()).collect();
    assert!(
        names.contains(&"WroteRequest") && names.contains(&"GotFirstResponseByte"),
        "{names:?}"
    );
    assert_eq!(
        second.phases.server,
        Some(200),
        "first recv minus first send"
    );
    assert_eq!(
        t.requests[0].phases.connect,
        Some(50),
        "SYN_SENT to ESTABLISHED"
    );
}

#[test]
fn a_client_that_claims_reuse_over_a_new_socket_is_a_finding() {
    let mut k = new_socket(100, 7, "127.0.0.1:5000");
    k.extend(exchange(200, 7));
    k.extend(new_socket(1100, 8, "127.0.0.1:5001"));
    k.extend(exchange(1200, 8));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5001", true),
    ];
    let t = build(reqs, Vec::new(), k, true, 0);
    let second = &t.requests[1];
    assert!(!second.verdict.reused, "the kernel's word wins");
    let finding = second.verdict.disagreement.as_deref().expect("a finding");
    assert!(
        finding.contains("client says reused, kernel says new"),
        "{finding}"
    );
    assert_eq!(t.summary.verdict, Verdict::New);
    assert_eq!(t.summary.connections, 2);
}

#[test]
fn a_reconnect_on_the_same_cookie_is_not_reuse() {
    // Same cookie but a fresh connect in request 2's window: not reused.
    let mut k = new_socket(100, 7, "127.0.0.1:5000");
    k.extend(exchange(200, 7));
    k.extend(new_socket(1100, 7, "127.0.0.1:5000"));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", false),
    ];
    let t = build(reqs, Vec::new(), k, true, 0);
    assert!(!t.requests[1].verdict.reused);
}

#[test]
fn other_sockets_land_in_the_window_they_happen_in() {
    // A UDP socket (DNS) seen during request 2 belongs to request 2.
    let mut k = new_socket(100, 7, "127.0.0.1:5000");
    k.extend(exchange(200, 7));
    k.push(kernel(
        1010,
        99,
        KernelDetail::Send {
            bytes: 40,
            protocol: 17,
        },
    ));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    let t = build(reqs, Vec::new(), k, true, 0);
    assert!(t.requests[1].events.iter().any(|e| e.cookie == Some(99)));
    assert!(t.requests[0].events.iter().all(|e| e.cookie != Some(99)));
}

#[test]
fn without_the_kernel_the_client_decides_and_nothing_is_confirmed() {
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    let t = build(reqs, Vec::new(), Vec::new(), false, 0);
    assert!(t.requests[1].verdict.reused && !t.requests[1].verdict.kernel_confirmed);
    assert_eq!(t.summary.verdict, Verdict::Reused);
}

#[test]
fn a_derived_got_conn_stamped_after_the_first_send_is_shown_before_it() {
    let mut k = new_socket(100, 7, "127.0.0.1:5000");
    k.extend(exchange(200, 7));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    // The first poll ended 30 ns after hyper's task had already sent.
    let client = vec![got_conn(1, 180, false), got_conn(2, 1230, true)];
    let t = build(reqs, client, k, true, 0);
    let second: Vec<(&str, u64)> = t.requests[1]
        .events
        .iter()
        .map(|e| (e.name(), e.ts_ns))
        .take(2)
        .collect();
    assert_eq!(second, [("GotConn", 1199), ("send", 1200)]);
}
