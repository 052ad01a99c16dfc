//! attach: heads that reach the kernel in pieces. A request head split
//! across two sends is still one request, with its whole target and every
//! byte of both sends. Heads are read from vectored syscalls too: a client
//! that writes with writev(2) and sendmsg(2) and reads with readv(2) and
//! recvmsg(2) (as nginx, hyper and Go's runtime do for some of their I/O)
//! gets each request's method, target, status and bytes. Only the first
//! iovec is read (README: a head is the first 128 bytes of the first
//! buffer).

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type, python_under_attach},
};

/// One request line: method, url, status, bytes sent, bytes received.
type Row = (String, String, u64, u64, u64);

/// Runs `body` (Python, with `s` connected to a keep-alive test server
/// whose answers are 71 B) under `tracer attach`; gives attach's request
/// lines as (method, url, status, bytes sent, bytes received) and the
/// sizes of the requests as the server read them.
fn requests_of(body: &str) -> (Vec<Row>, Vec<usize>) {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let code = format!(
        "import os, socket, sys, time\n\
         sys.stdin.readline()\n\
         s = socket.create_connection(('127.0.0.1', {}))\n\
         s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n\
         {body}\
         print('done', flush=True)\n\
         sys.stdin.readline()\n",
        server.addr.port()
    );
    let (mut client, mut tracer) = python_under_attach(&code, "json");
    client.close_stdin();
    let lines = json_lines(&tracer.exit_0_stdout());
    let requests = of_type(&lines, "request");
    for r in &requests {
        println!("tracer: {r}");
    }
    let text = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_string();
    let number = |r: &Value, k: &str| r[k].as_u64().unwrap_or(0);
    let got = requests
        .iter()
        .map(|r| {
            (
                text(r, "method"),
                text(r, "url"),
                number(r, "status"),
                number(r, "bytes_sent"),
                number(r, "bytes_received"),
            )
        })
        .collect();
    let read = server.request_bytes();
    println!("server read: {read:?}");
    (got, read)
}

fn row(url: &str, sent: usize) -> Row {
    ("GET".into(), url.into(), 200, sent as u64, 71)
}

#[test]
fn a_request_head_split_across_sends_is_reconstructed() {
    if !can_trace_or_skip() {
        return;
    }
    // Two requests on one connection, each written in two sends: "GE" |
    // "T /first ...", then "GET /sec" | "ond ...".
    let (got, read) = requests_of(
        "for a, b in ((b'GE', b'T /first HTTP/1.1'), (b'GET /sec', b'ond HTTP/1.1')):\n    \
             s.send(a); time.sleep(0.03); s.send(b + b'\\\\r\\\\nHost: x\\\\r\\\\n\\\\r\\\\n')\n    \
             got = b''\n    \
             while len(got) < 71: got += s.recv(4096)\n",
    );
    assert_eq!(read.len(), 2, "the server saw both requests");
    assert_eq!(
        got,
        [
            row("http://x/first", read[0]),
            row("http://x/second", read[1])
        ]
    );
}

#[test]
fn writev_sendmsg_readv_recvmsg_requests_are_reconstructed() {
    if !can_trace_or_skip() {
        return;
    }
    // Request 1: writev of two pieces, answer read with readv. Request 2:
    // sendmsg of two pieces, answer read with recvmsg_into.
    let (got, read) = requests_of(
        "def head(p): return [b'GET ' + p + b' HTTP/1.1\\\\r\\\\nHost: x\\\\r\\\\n', b'Accept: */*\\\\r\\\\n\\\\r\\\\n']\n\
         os.writev(s.fileno(), head(b'/vectored'))\n\
         got = 0\n\
         while got < 71:\n    \
             buf = bytearray(4096); got += os.readv(s.fileno(), [buf])\n\
         s.sendmsg(head(b'/message'))\n\
         got = 0\n\
         while got < 71:\n    \
             buf = bytearray(4096); got += s.recvmsg_into([buf])[0]\n",
    );
    assert_eq!(read.len(), 2, "the server saw both requests");
    assert_eq!(
        got,
        [
            row("http://x/vectored", read[0]),
            row("http://x/message", read[1])
        ]
    );
}
