//! attach: a request head split across two sends is still one request,
//! with its whole target and every byte of both sends.

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type, python_under_attach},
};

#[test]
fn a_request_head_split_across_sends_is_reconstructed() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // Two requests on one connection, each written in two sends: "GE" |
    // "T /first ...", then "GET /sec" | "ond ...". The answers are 71 B.
    let code = format!(
        "import socket, sys, time\n\
         sys.stdin.readline()\n\
         s = socket.create_connection(('127.0.0.1', {}))\n\
         s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n\
         for a, b in ((b'GE', b'T /first HTTP/1.1'), (b'GET /sec', b'ond HTTP/1.1')):\n    \
             s.send(a); time.sleep(0.03); s.send(b + b'\\\\r\\\\nHost: x\\\\r\\\\n\\\\r\\\\n')\n    \
             got = b''\n    \
             while len(got) < 71: got += s.recv(4096)\n\
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
    let got: Vec<(&str, u64, u64)> = requests
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap_or_default(),
                r["status"].as_u64().unwrap_or(0),
                r["bytes_sent"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // What the server read, head by head: the sizes of the two requests.
    let read = server.request_bytes();
    println!("server read: {read:?}");
    assert_eq!(read.len(), 2);
    assert_eq!(
        got,
        [
            ("http://x/first", 200, read[0] as u64),
            ("http://x/second", 200, read[1] as u64)
        ]
    );
}
