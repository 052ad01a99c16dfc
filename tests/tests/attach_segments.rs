//! attach's default (segments: one kernel record per message, the rest of
//! a message read from the kernel's map) against `--events` (a record per
//! I/O), on a server that writes each answer as a head and then its body
//! in many sends, the way servers with a write buffer do. Both must give
//! the same requests, with every byte the server wrote, and the last
//! answer on the idle keep-alive connection must be complete before the
//! client closes it (read from the map while the request waits).
use std::{process::Command, time::Duration};

use tracer_tests::process::{Proc, attach_with, can_trace_or_skip, json_lines, of_type};

/// Serves one connection: each request is answered with a head of its own
/// and a body of `/N` bytes in 1,000-byte sends; exits when the client
/// closes. Prints what it wrote per request.
const SERVER: &str = "import socket
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()
print('ready', s.getsockname()[1], flush=True)
c, _ = s.accept(); f = c.makefile('rb')
while True:
    line = f.readline()
    if not line: break
    while f.readline() not in (b'\\r\\n', b''): pass
    n = int(line.split()[1][1:])
    head = b'HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n' % n
    c.sendall(head)
    for i in range(0, n, 1000): c.sendall(b'x' * min(1000, n - i))
    print('wrote', len(head) + n, flush=True)
c.close()
";

/// Requests of growing size on one connection; then it says `done` and
/// keeps the connection open until its stdin closes.
const CLIENT: &str = "import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))
for i in range(20):
    c.request('GET', '/%d' % (500 + 1500 * i)); r = c.getresponse(); r.read()
    assert r.status == 200
print('done', flush=True)
sys.stdin.readline()
c.close()
";

/// One run: (requests as (url, status, bytes sent), the server's count of
/// bytes written per request, whether the last request was printed while
/// the client still held the connection open).
fn run(extra: &[&str]) -> (Vec<(String, u64, u64)>, Vec<u64>, bool) {
    let server = Proc::spawn_ready(Command::new("python3").args(["-c", SERVER]));
    let port = server
        .stdout()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let mut tracer = attach_with(server.pid(), "json", extra);
    let mut client = Proc::spawn(Command::new("python3").args(["-c", CLIENT, &port])).unwrap();
    assert!(
        client.wait_for("done", false, Duration::from_secs(20)),
        "{}",
        client.stderr()
    );
    // The connection stays open and idle: the answer's end is in the map.
    let in_time = tracer.wait_for("\"request\":20,", false, Duration::from_secs(2));
    client.close_stdin();
    assert!(
        client
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    let out = tracer.exit_0_stdout();
    assert!(server.wait_for("wrote", false, Duration::from_secs(1)));
    let wrote: Vec<u64> = server
        .stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("wrote ")?.parse().ok())
        .collect();
    let lines = json_lines(&out);
    let requests: Vec<(String, u64, u64)> = of_type(&lines, "request")
        .iter()
        .map(|r| {
            let url = r["url"].as_str().unwrap_or_default();
            // http://127.0.0.1:PORT/N -> /N
            let url = url
                .splitn(4, '/')
                .nth(3)
                .map_or(String::new(), |p| format!("/{p}"));
            (
                url,
                r["status"].as_u64().unwrap_or(0),
                r["bytes_sent"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["lost_events"], 0, "{summary}");
    let total: u64 = wrote.iter().sum();
    assert_eq!(
        summary["per_connection"][0]["bytes_sent"], total,
        "{summary}"
    );
    (requests, wrote, in_time)
}

#[test]
fn segments_give_every_byte_and_the_last_answer_before_the_close() {
    if !can_trace_or_skip() {
        return;
    }
    for round in 0..3 {
        let (segments, wrote, in_time) = run(&[]);
        let expected: Vec<(String, u64, u64)> = wrote
            .iter()
            .enumerate()
            .map(|(i, &w)| (format!("/{}", 500 + 1500 * i), 200, w))
            .collect();
        println!(
            "round {round}: {} requests, server wrote {wrote:?}",
            segments.len()
        );
        assert_eq!(wrote.len(), 20, "round {round}");
        assert_eq!(segments, expected, "round {round}: segments");
        assert!(
            in_time,
            "round {round}: the last answer waited for the close"
        );
        let (events, _, _) = run(&["--events"]);
        assert_eq!(events, expected, "round {round}: --events");
    }
}
