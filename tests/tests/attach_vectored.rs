//! attach: heads are read from vectored syscalls too. A client that writes
//! its requests with writev(2) and sendmsg(2) and reads the answers with
//! readv(2) and recvmsg(2) (as nginx, hyper and Go's runtime do for some
//! of their I/O) gets each request's method, target, status and bytes:
//! the kernel side finds the user buffer through the iovec, not the
//! syscall's second argument. Only the first iovec is read (README:
//! the head is the first 128 bytes of the first buffer).

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type, python_under_attach},
};

#[test]
fn writev_sendmsg_readv_recvmsg_requests_are_reconstructed() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // Request 1: writev of two pieces, answer read with readv. Request 2:
    // sendmsg of two pieces, answer read with recvmsg_into. Answers are 71 B.
    let code = format!(
        "import os, socket, sys\n\
         sys.stdin.readline()\n\
         s = socket.create_connection(('127.0.0.1', {}))\n\
         s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n\
         def head(p): return [b'GET ' + p + b' HTTP/1.1\\\\r\\\\nHost: x\\\\r\\\\n', b'Accept: */*\\\\r\\\\n\\\\r\\\\n']\n\
         os.writev(s.fileno(), head(b'/vectored'))\n\
         got = 0\n\
         while got < 71:\n    \
             buf = bytearray(4096); got += os.readv(s.fileno(), [buf])\n\
         s.sendmsg(head(b'/message'))\n\
         got = 0\n\
         while got < 71:\n    \
             buf = bytearray(4096); got += s.recvmsg_into([buf])[0]\n\
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
    let got: Vec<(&str, &str, u64, u64, u64)> = requests
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default(),
                r["url"].as_str().unwrap_or_default(),
                r["status"].as_u64().unwrap_or(0),
                r["bytes_sent"].as_u64().unwrap_or(0),
                r["bytes_received"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let read = server.request_bytes();
    println!("server read: {read:?}");
    assert_eq!(read.len(), 2, "the server saw both requests");
    assert_eq!(
        got,
        [
            ("GET", "http://x/vectored", 200, read[0] as u64, 71),
            ("GET", "http://x/message", 200, read[1] as u64, 71)
        ]
    );
}
