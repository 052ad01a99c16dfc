//! attach: three requests pipelined in one write, and their three answers
//! read in one recv. Every message that starts inside the 128-byte head is
//! found and framed by its Content-Length; the third answer starts past
//! the head and is counted as `unparsed`, not dropped in silence.

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type, python_under_attach},
};

#[test]
fn pipelined_requests_and_coalesced_responses() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // Each request is 29 B, each answer 71 B (a 39-byte head, 32-byte body).
    let code = format!(
        "import socket, sys, time\n\
         sys.stdin.readline()\n\
         s = socket.create_connection(('127.0.0.1', {}))\n\
         s.sendall(b''.join(b'GET /p%d HTTP/1.1\\\\r\\\\nHost: x\\\\r\\\\n\\\\r\\\\n' % i for i in (1, 2, 3)))\n\
         time.sleep(0.2)\n\
         got, recvs = b'', 0\n\
         while len(got) < 3 * 71:\n    got += s.recv(4096); recvs += 1\n\
         print('done', len(got), recvs, flush=True)\n\
         sys.stdin.readline()\n",
        server.addr.port()
    );
    let (mut client, mut tracer) = python_under_attach(&code, "json");
    client.close_stdin();
    let lines = json_lines(&tracer.exit_0_stdout());
    let said = client.stdout();
    println!("client: {said}server read: {:?}", server.request_bytes());
    assert!(
        said.contains("done 213 1"),
        "the answers came in one recv: {said}"
    );
    assert_eq!(server.request_bytes(), [29, 29, 29]);
    let requests = of_type(&lines, "request");
    for r in &requests {
        println!("tracer: {r}");
    }
    let got: Vec<(&str, Option<u64>, u64, u64)> = requests
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap_or_default(),
                r["status"].as_u64(),
                r["bytes_sent"].as_u64().unwrap_or(0),
                r["bytes_received"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("http://x/p1", Some(200), 29, 71),
            ("http://x/p2", Some(200), 29, 71),
            // Its answer starts at byte 142 of the recv: past the head.
            ("http://x/p3", None, 29, 0),
        ]
    );
    let summary = of_type(&lines, "summary")[0];
    println!("summary: {summary}");
    assert_eq!(summary["unparsed"], 1, "{summary}");
    assert_eq!(summary["per_connection"][0]["bytes_received"], 213);
}
