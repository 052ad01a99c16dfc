//! attach: a recv with MSG_PEEK leaves the bytes queued, so it is neither
//! counted nor parsed; the recv that takes the bytes is.

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type, python_under_attach_with},
};

#[test]
fn peeked_bytes_are_counted_once() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // The answer is 71 bytes (a 39-byte head and a 32-byte body).
    let code = format!(
        "import socket, sys\n\
         sys.stdin.readline()\n\
         s = socket.create_connection(('127.0.0.1', {}))\n\
         s.sendall(b'GET /peek HTTP/1.1\\\\r\\\\nHost: x\\\\r\\\\n\\\\r\\\\n')\n\
         peeked = s.recv(4096, socket.MSG_PEEK)\n\
         got, recvs = b'', 0\n\
         while len(got) < 71:\n    got += s.recv(4096); recvs += 1\n\
         print('done', len(peeked), len(got), recvs, flush=True)\n\
         sys.stdin.readline()\n",
        server.addr.port()
    );
    let (mut client, mut tracer) = python_under_attach_with(&code, "json", &["--events"]);
    client.close_stdin();
    let lines = json_lines(&tracer.exit_0_stdout());
    let said = client.stdout();
    println!("client: {said}");
    let n: Vec<u64> = said
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [peeked, got, recvs] = n[..] else {
        panic!("client said {said}")
    };
    assert!(peeked > 0);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = requests[0];
    println!("tracer: {r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["bytes_received"].as_u64(), Some(got), "{r}");
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(
        summary["per_connection"][0]["bytes_received"].as_u64(),
        Some(got),
        "{summary}"
    );
    let recv_events = of_type(&lines, "event")
        .iter()
        .filter(|e| e["name"] == "recv")
        .count();
    assert_eq!(
        recv_events as u64, recvs,
        "one event per recv that took bytes"
    );
}
