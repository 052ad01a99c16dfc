//! Foundation: the probes see connect, the TCP handshake, send, recv and
//! close of a loopback connection, all under one cookie, and nothing of
//! another process; and a refused connect as refused.
use std::{net::SocketAddr, process::Command, time::Duration};

use tracer_ebpf::tcp_state;
use tracer_tests::{collect_until, exchange};
use tracer_user::{
    preflight,
    probes::{KernelDetail, KernelEvent, ProbeOptions, Probes},
};

fn load_or_skip() -> Option<Probes> {
    let report = preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
        return None;
    }
    let opts = ProbeOptions {
        skip: report.skip_programs,
        ..Default::default()
    };
    Some(Probes::load(&opts).expect("probes load on a machine that passed preflight"))
}

async fn one_connection(bind: &'static str) {
    let Some(mut probes) = load_or_skip() else {
        return;
    };
    // Before Linux 6.3 there are no send/recv tracepoints: the lifecycle
    // (connect, states, close) is still checked whole, the bytes are not.
    let io = !probes
        .skipped
        .iter()
        .any(|(p, _)| *p == "tracer_send" || *p == "tracer_recv");
    let me = std::process::id();
    probes.trace_tgid(me).unwrap();
    let mut stream = probes.events().unwrap();

    // Another, untraced process makes the same traffic first.
    let other = Command::new(env!("CARGO_BIN_EXE_loopback-pair"))
        .arg(bind)
        .output()
        .unwrap();
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let other_cookie: u64 = String::from_utf8_lossy(&other.stdout)
        .split_whitespace()
        .nth(2)
        .and_then(|c| c.parse().ok())
        .expect("cookie from loopback-pair");

    let ex = tokio::task::spawn_blocking(move || exchange(bind, 100, 200))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(ex.cookie, 0);
    let cookie = ex.cookie;
    let closed = move |evs: &[KernelEvent]| {
        evs.iter()
            .any(|e| e.cookie == cookie && matches!(e.what, KernelDetail::Destroy))
    };
    let events = collect_until(&mut stream, Duration::from_secs(3), closed).await;
    let mine: Vec<&KernelEvent> = events.iter().filter(|e| e.cookie == ex.cookie).collect();

    let connects: Vec<_> = mine
        .iter()
        .filter_map(|e| match e.what {
            KernelDetail::Connect {
                fd,
                remote,
                ret,
                duration_ns,
            } => Some((fd, remote, ret, duration_ns)),
            _ => None,
        })
        .collect();
    assert_eq!(connects.len(), 1, "one connect: {connects:?}");
    let (fd, remote, ret, duration_ns) = connects[0];
    assert_eq!(remote, ex.remote, "connect to the listener");
    assert_eq!(ret, 0, "the handshake ended ESTABLISHED");
    assert!(duration_ns > 0, "SYN_SENT to ESTABLISHED takes time");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(fd, ex.fd, "the fd connect(2) was called with");
    }

    let established = mine.iter().find_map(|e| match e.what {
        KernelDetail::State {
            old,
            new,
            local,
            remote,
        } if old == tcp_state::SYN_SENT && new == tcp_state::ESTABLISHED => Some((local, remote)),
        _ => None,
    });
    assert_eq!(
        established,
        Some((ex.local, ex.remote)),
        "SYN_SENT -> ESTABLISHED with the 4-tuple"
    );

    let sum = |send: bool| -> i64 {
        mine.iter()
            .filter_map(|e| match e.what {
                KernelDetail::Send { bytes, .. } if send => Some(bytes as i64),
                KernelDetail::Recv { bytes, .. } if !send => Some(bytes as i64),
                _ => None,
            })
            .sum()
    };
    if io {
        assert_eq!(sum(true), 100, "bytes sent");
        assert_eq!(sum(false), 200, "bytes received");
    } else {
        assert_eq!((sum(true), sum(false)), (0, 0), "no send/recv hooks");
    }
    if cfg!(target_arch = "x86_64") {
        let closes: Vec<i32> = mine
            .iter()
            .filter_map(|e| match e.what {
                KernelDetail::Close { fd } => Some(fd),
                _ => None,
            })
            .collect();
        assert_eq!(closes, [ex.fd], "one close(fd), with the client's fd");
        // The client's FIN reaches the server socket (same process) in
        // softirq on the closing thread's stack: that is not its close.
        assert!(
            events.iter().all(
                |e| !matches!(e.what, KernelDetail::Close { fd } if fd == ex.fd && e.cookie != cookie)
            ),
            "close fd={} only on the client's socket: {events:?}",
            ex.fd
        );
    }
    assert!(
        mine.iter().any(|e| matches!(e.what, KernelDetail::Destroy)),
        "socket destroyed"
    );

    assert!(
        events.iter().all(|e| e.tgid == me),
        "only the traced process"
    );
    assert!(
        events.iter().all(|e| e.cookie != other_cookie),
        "nothing of the other process's socket"
    );
    assert_eq!(stream.undecodable, 0);
    assert_eq!(probes.lost_events().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_loopback_connection_is_seen_whole() {
    one_connection("127.0.0.1:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_connection_is_seen_whole() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        println!("skipped: no IPv6 loopback on this machine");
        return;
    }
    one_connection("[::1]:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connect_says_connection_refused() {
    let Some(mut probes) = load_or_skip() else {
        return;
    };
    probes.trace_tgid(std::process::id()).unwrap();
    let mut stream = probes.events().unwrap();
    // A port that was just listened on and is closed now.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = tokio::task::spawn_blocking(move || std::net::TcpStream::connect(closed))
        .await
        .unwrap()
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let refused = move |evs: &[KernelEvent]| {
        evs.iter()
            .any(|e| matches!(e.what, KernelDetail::Connect { remote, .. } if remote == closed))
    };
    let events = collect_until(&mut stream, Duration::from_secs(3), refused).await;
    let rets: Vec<i32> = events
        .iter()
        .filter_map(|e| match e.what {
            KernelDetail::Connect { remote, ret, .. } if remote == closed => Some(ret),
            _ => None,
        })
        .collect();
    assert_eq!(rets, [-111], "ECONNREFUSED, as connect(2) said: {events:?}");
}

#[test]
fn ports_are_not_reused_between_runs() {
    // Guards the test above: two exchanges give two distinct sockets.
    let a = exchange("127.0.0.1:0", 1, 1).unwrap();
    let b = exchange("127.0.0.1:0", 1, 1).unwrap();
    assert_ne!(a.cookie, b.cookie);
    let _: SocketAddr = a.local;
}
