use super::*;
use crate::probes::PayloadHead;

fn io(ts_ns: u64, send: bool, head: &[u8]) -> [KernelEvent; 2] {
    let at = |what| KernelEvent {
        ts_ns,
        tgid: 1,
        tid: 2,
        cookie: 9,
        what,
    };
    let (bytes, protocol) = (head.len() as i32, 6);
    let moved = if send {
        KernelDetail::Send { bytes, protocol }
    } else {
        KernelDetail::Recv { bytes, protocol }
    };
    let head = KernelDetail::Payload {
        send,
        len: bytes as u32,
        head: PayloadHead::new(head),
    };
    [at(head), at(moved)]
}

fn plaintext(ts_ns: u64, send: bool, head: &[u8]) -> KernelEvent {
    KernelEvent {
        ts_ns,
        tgid: 1,
        tid: 2,
        cookie: 9,
        what: KernelDetail::Plaintext {
            send,
            len: head.len() as u32,
            head: PayloadHead::new(head),
        },
    }
}

/// On a TLS connection with its plaintext probed, the request comes
/// from the plaintext with the plaintext's bytes; the kernel's records
/// count to the connection only, and are never parsed, even where
/// they happen to read as HTTP.
#[test]
fn tls_records_count_to_the_connection_and_plaintext_to_requests() {
    let mut t = Tracker::new(Vec::new());
    let request = b"GET /s HTTP/1.1\r\nHost: h\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let feed = |t: &mut Tracker, evs: &[KernelEvent]| -> Vec<usize> {
        evs.iter().flat_map(|ev| t.handle(ev).finished).collect()
    };
    let mut finished = feed(&mut t, &io(1, true, &[0x16, 3, 1, 0, 3, 1, 2, 3]));
    finished.extend(feed(&mut t, &io(2, false, &[0x16, 3, 3, 0, 2, 9, 9])));
    finished.extend(feed(&mut t, &io(3, true, &[0x17; 90])));
    finished.extend(feed(&mut t, &[plaintext(4, true, request)]));
    // Ciphertext that reads as a status line: not this request's.
    let status = b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n";
    finished.extend(feed(&mut t, &io(5, false, status)));
    assert!(finished.is_empty(), "{finished:?}");
    assert_eq!(feed(&mut t, &[plaintext(6, false, response)]), [0]);
    let r = t.request(0).unwrap();
    assert_eq!((r.status, r.target.as_str()), (Some(200), "/s"));
    assert_eq!(
        (r.bytes_sent, r.bytes_received),
        (request.len() as u64, response.len() as u64)
    );
    assert_eq!((r.start_ns, r.first_byte_ns), (4, Some(6)));
    let c = &t.connections[0];
    assert!(c.encrypted && c.plaintext);
    assert_eq!((c.bytes_sent, c.bytes_received), (8 + 90, 7 + 37));
}

/// A long attach keeps the requests it has not printed, not all it saw:
/// attach forgets each one once printed, and the counts stay right.
#[test]
fn printed_requests_are_forgotten_and_still_counted() {
    let mut t = Tracker::new(Vec::new());
    let mut printed = 0;
    for i in 0..1000u64 {
        let request = io(4 * i, true, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
        let response = io(
            4 * i + 2,
            false,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        for ev in request.iter().chain(&response) {
            let fx = t.handle(ev);
            for r in fx.finished {
                assert!(t.request(r).is_some_and(|q| q.status == Some(200)));
                t.forget(r);
                printed += 1;
            }
        }
        assert!(t.requests.len() <= 2, "{} held", t.requests.len());
    }
    printed += t.finish_all().len();
    assert_eq!(
        (printed, t.request_count, t.reused_count),
        (1000, 1000, 999)
    );
    assert_eq!(t.connections[0].requests, 1000);
}

/// `io` on socket `cookie` of process 1.
fn on(cookie: u64, evs: [KernelEvent; 2]) -> [KernelEvent; 2] {
    evs.map(|e| KernelEvent { cookie, ..e })
}

fn connect(ts_ns: u64, cookie: u64, port: u16) -> KernelEvent {
    KernelEvent {
        ts_ns,
        tgid: 1,
        tid: 2,
        cookie,
        what: KernelDetail::Connect {
            fd: 3,
            ret: 0,
            remote: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            duration_ns: 10,
        },
    }
}

/// Connection 9 answered (or not) to 127.0.0.1:80, then socket 11 dials the
/// same peer at 5 ms: the kinds of finding that makes.
fn second_connect(response: &[u8], port: u16) -> Vec<&'static str> {
    let mut t = Tracker::new(Vec::new());
    let mut evs = vec![connect(1, 9, 80)];
    evs.extend(on(9, io(2, true, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")));
    if !response.is_empty() {
        evs.extend(on(9, io(3, false, response)));
    }
    evs.push(connect(5_000_000, 11, port));
    let mut kinds = Vec::new();
    for ev in &evs {
        t.handle(ev);
        kinds.extend(t.findings.take().into_iter().map(|f| f.kind.as_str()));
    }
    kinds
}

#[test]
fn a_connect_beside_an_idle_kept_alive_connection_is_found() {
    let done = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(second_connect(done, 80), ["new-connection-while-idle"]);
    // Another peer, a response not complete, none at all, or a response
    // that closes the connection: nothing.
    assert!(second_connect(done, 81).is_empty());
    let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nok";
    assert!(second_connect(partial, 80).is_empty());
    assert!(second_connect(b"", 80).is_empty());
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    assert!(second_connect(close, 80).is_empty());
}
