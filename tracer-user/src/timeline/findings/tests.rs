//! Connection accounting and findings on hand-made event streams: the
//! pool's race during GetConn and a happy-eyeballs loser, which loopback
//! tests cannot provoke on purpose.
use crate::timeline::test_events::{SERVER, addr, kernel, request};
use crate::{
    client::{ClientEvent, Hook},
    probes::{KernelDetail, KernelEvent},
    render::{TextStyle, text},
    timeline::{FindingKind, OpenedWhen, build},
};
use tracer_ebpf::tcp_state::{CLOSE, CLOSE_WAIT, ESTABLISHED, SYN_SENT};

/// A connect of `cookie` at `ts` that ended with `ret`.
fn connect(ts: u64, cookie: u64, local: &str, ret: i32) -> Vec<KernelEvent> {
    let remote = addr(SERVER);
    let end = if ret == 0 { ESTABLISHED } else { CLOSE };
    vec![
        kernel(
            ts,
            cookie,
            KernelDetail::Connect {
                fd: 9,
                ret,
                remote,
                duration_ns: 50,
            },
        ),
        kernel(
            ts + 50,
            cookie,
            KernelDetail::State {
                old: SYN_SENT,
                new: end,
                local: addr(local),
                remote,
            },
        ),
    ]
}

fn exchange(ts: u64, cookie: u64) -> Vec<KernelEvent> {
    let (bytes, protocol) = (78, 6);
    let send = KernelDetail::Send { bytes, protocol };
    let recv = KernelDetail::Recv {
        bytes: 120,
        protocol,
    };
    vec![kernel(ts, cookie, send), kernel(ts + 200, cookie, recv)]
}

fn hook(request: u32, ts_ns: u64, hook: Hook) -> ClientEvent {
    ClientEvent {
        request,
        ts_ns,
        hook,
        derived: false,
    }
}

fn got_conn(request: u32, ts_ns: u64, reused: bool) -> ClientEvent {
    let got = Hook::GotConn {
        reused,
        was_idle: reused,
        idle_time_ns: None,
        local_addr: None,
        remote_addr: None,
    };
    hook(request, ts_ns, got)
}

fn get_conn(request: u32, ts_ns: u64) -> ClientEvent {
    let host_port = SERVER.to_string();
    hook(request, ts_ns, Hook::GetConn { host_port })
}

#[test]
fn a_connect_during_get_conn_that_no_request_rode_is_counted_and_said() {
    let mut k = connect(100, 7, "127.0.0.1:5000", 0);
    k.extend(exchange(200, 7));
    // The pool dials while request 1's connection is on its way back.
    k.extend(connect(1050, 8, "127.0.0.1:5001", 0));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    let client = vec![
        get_conn(1, 0),
        got_conn(1, 180, false),
        get_conn(2, 1000),
        got_conn(2, 1100, true),
    ];
    let t = build(reqs, client, k, true, 0);
    assert!(
        t.requests[1].verdict.reused,
        "request 2 still rode cookie 7"
    );
    assert_eq!(t.summary.connections, 1);
    assert_eq!(t.summary.connections_opened, Some(2));
    assert_eq!(t.summary.connections_unused, Some(1));
    let spare = &t.connections[1];
    assert_eq!((spare.cookie, spare.during), (8, 2));
    assert_eq!(spare.when, OpenedWhen::InGetConn);
    assert!(spare.after_first_conn && spare.unused());
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].kind, FindingKind::UnusedConnection);
    assert_eq!(t.summary.findings, [("unused-connection", 1)]);

    let out = text(&t, TextStyle::default());
    let verdict = out
        .lines()
        .find(|l| l.starts_with("verdict: request 2 "))
        .expect("verdict 2");
    assert_eq!(
        verdict,
        "verdict: request 2 reused the connection of request 1 (cookie 7, 127.0.0.1:5000 -> \
         127.0.0.1:8080): its socket had no new handshake since, but another connect (cookie \
         8) happened in between; a new connection (cookie 8, 127.0.0.1:5001 -> 127.0.0.1:8080) \
         was also opened during its GetConn and never used"
    );
    assert!(out.contains("summary: 2 requests, 1 connection, 1 reused, 0 failed, 0 lost events, 2 connections opened (1 unused), 1 finding (unused-connection 1): reused"));
    assert!(out.contains("finding: unused-connection: request 2, cookie 8: "));
}

#[test]
fn a_losing_attempt_before_request_1_got_its_connection_is_not_late() {
    // Happy eyeballs: the first address refuses, the second one answers.
    let mut k = connect(20, 6, "127.0.0.1:4999", -111);
    k.extend(connect(100, 7, "127.0.0.1:5000", 0));
    k.extend(exchange(200, 7));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    let client = vec![got_conn(1, 180, false), got_conn(2, 1100, true)];
    let t = build(reqs, client, k, true, 0);
    let loser = &t.connections[0];
    assert_eq!((loser.cookie, loser.during, loser.ret), (6, 1, -111));
    assert!(!loser.after_first_conn, "it raced request 1's own connect");
    assert_eq!(t.summary.connections_unused, Some(1));
    assert_eq!(t.findings[0].kind, FindingKind::UnusedConnection);
    let out = text(&t, TextStyle::default());
    assert!(
        out.contains("; a connect (cookie 6, 127.0.0.1:4999 -> 127.0.0.1:8080) was also opened during its GetConn and failed: Connection refused"),
        "{out}"
    );
}

#[test]
fn a_client_kernel_disagreement_is_a_reuse_disagreement_finding() {
    let mut k = connect(100, 7, "127.0.0.1:5000", 0);
    k.extend(exchange(200, 7));
    k.extend(connect(1100, 8, "127.0.0.1:5001", 0));
    k.extend(exchange(1200, 8));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5001", true),
    ];
    let t = build(reqs, Vec::new(), k, true, 0);
    let kinds: Vec<FindingKind> = t.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::ReuseDisagreement]);
    assert_eq!(t.summary.connections_unused, Some(0));
    let out = text(&t, TextStyle::default());
    assert!(
        out.contains("finding: reuse-disagreement: request 2, cookie 8: client says reused, kernel says new (cookie 8)"),
        "{out}"
    );
}

#[test]
fn agreeing_client_and_kernel_raise_no_finding() {
    let mut k = connect(100, 7, "127.0.0.1:5000", 0);
    k.extend(exchange(200, 7));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    let t = build(reqs, Vec::new(), k, true, 0);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert_eq!(t.summary.connections_opened, Some(1));
}

/// A pooled connection that the server's FIN ends 700 ns after the
/// response, with the client's TLS close_notify in between or not.
fn pooled_then_fin(close_notify: bool) -> crate::timeline::Trace {
    let mut k = connect(100, 7, "127.0.0.1:5000", 0);
    k.extend(exchange(200, 7));
    if close_notify {
        let send = KernelDetail::Send {
            bytes: 24,
            protocol: 6,
        };
        k.push(kernel(600, 7, send));
    }
    let fin = KernelDetail::State {
        old: ESTABLISHED,
        new: CLOSE_WAIT,
        local: addr("127.0.0.1:5000"),
        remote: addr(SERVER),
    };
    k.push(kernel(900, 7, fin));
    let reqs = vec![request(1, 0, "127.0.0.1:5000", false)];
    let client = vec![
        get_conn(1, 0),
        got_conn(1, 180, false),
        hook(1, 450, Hook::PutIdleConn { error: None }),
    ];
    build(reqs, client, k, true, 0)
}

#[test]
fn a_fin_that_answers_the_clients_close_notify_is_not_server_closed_idle() {
    let kinds = |t: &crate::timeline::Trace| -> Vec<FindingKind> {
        t.findings.iter().map(|f| f.kind).collect()
    };
    assert_eq!(
        kinds(&pooled_then_fin(false)),
        [FindingKind::ServerClosedIdle]
    );
    assert_eq!(kinds(&pooled_then_fin(true)), []);
}

#[test]
fn a_request_written_on_a_connection_the_server_just_closed_rode_it_and_is_named() {
    let mut k = connect(100, 7, "127.0.0.1:5000", 0);
    k.extend(exchange(200, 7));
    // Request 2's bytes leave on cookie 7, then the server's FIN comes in.
    let send = KernelDetail::Send {
        bytes: 78,
        protocol: 6,
    };
    k.push(kernel(1020, 7, send));
    let fin = KernelDetail::State {
        old: ESTABLISHED,
        new: CLOSE_WAIT,
        local: addr("127.0.0.1:5000"),
        remote: addr(SERVER),
    };
    k.push(kernel(1050, 7, fin));
    let mut failed = request(2, 1000, "127.0.0.1:5000", false);
    (failed.local_addr, failed.remote_addr, failed.status) = (None, None, None);
    failed.client_reused = None; // reqwest said nothing: no response
    failed.error = Some("connection closed before message completed".into());
    let reqs = vec![request(1, 0, "127.0.0.1:5000", false), failed];
    let client = vec![
        get_conn(1, 0),
        got_conn(1, 180, false),
        hook(1, 450, Hook::PutIdleConn { error: None }),
        get_conn(2, 1000),
    ];
    let t = build(reqs, client, k, true, 0);
    let second = &t.requests[1];
    assert_eq!(second.cookie, Some(7), "its bytes left on cookie 7");
    assert_eq!(second.verdict.reused_from, Some(1));
    let found: Vec<(FindingKind, Option<u32>)> =
        t.findings.iter().map(|f| (f.kind, f.request)).collect();
    assert_eq!(found, [(FindingKind::ServerClosedIdle, Some(2))]);
    let out = text(&t, TextStyle::default());
    assert!(
        out.contains("verdict: request 2 reused the connection of request 1 (cookie 7, 127.0.0.1:5000 -> 127.0.0.1:8080)"),
        "{out}"
    );
}

/// Request 1's connection handed back to the pool at 950 ns (and, with
/// `fin`, closed by the server at 1000), then the client dials at 1050.
fn dial_beside_idle(fin: bool) -> Vec<FindingKind> {
    let mut k = connect(100, 7, "127.0.0.1:5000", 0);
    k.extend(exchange(200, 7));
    if fin {
        let (local, remote) = (addr("127.0.0.1:5000"), addr(SERVER));
        let close = KernelDetail::State {
            old: ESTABLISHED,
            new: CLOSE_WAIT,
            local,
            remote,
        };
        k.push(kernel(1000, 7, close));
    }
    k.extend(connect(1050, 8, "127.0.0.1:5001", 0));
    k.extend(exchange(1200, 8));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5001", false),
    ];
    let client = vec![
        got_conn(1, 180, false),
        hook(1, 950, Hook::PutIdleConn { error: None }),
        get_conn(2, 1000),
        got_conn(2, 1100, false),
    ];
    let t = build(reqs, client, k, true, 0);
    t.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn a_dial_beside_a_pooled_idle_connection_is_new_connection_while_idle() {
    assert_eq!(
        dial_beside_idle(false),
        [FindingKind::NewConnectionWhileIdle]
    );
    // The server had closed it: dialling anew was right.
    assert!(!dial_beside_idle(true).contains(&FindingKind::NewConnectionWhileIdle));
}
