//! A server that answers as keep-alive and then closes at once: the next
//! request meets the close. Whichever way each run goes, the verdict says
//! what the kernel saw, and a request that was written on the closed
//! connection is named, not "got no connection".
use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type},
    tracer_bin::tracer,
};

const RUNS: usize = 30;

#[test]
fn requests_that_meet_an_unannounced_close_are_told_as_the_kernel_saw_them() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::CloseUnannounced).expect("server");
    let (mut failed, mut total) = (0, 0);
    for run in 0..RUNS {
        let before = server.accepted();
        let out = tracer(&["trace", &server.url(), "-n", "3", "--format", "json"]);
        let lines = json_lines(&out.stdout);
        let requests = of_type(&lines, "request");
        let summary = of_type(&lines, "summary")[0];
        assert_eq!(
            summary["connections_opened"].as_u64(),
            Some((server.accepted() - before) as u64),
            "run {run}: the kernel's connects are the server's accepts"
        );
        for r in &requests {
            total += 1;
            if r["status"].is_null() {
                failed += 1;
                assert_eq!(out.code, 1, "run {run}");
                assert_failed_on_the_closed_connection(r, &requests, &lines);
            } else {
                assert_eq!(r["status"], 200);
                assert_eq!(r["kernel_confirmed"], true, "run {run}: {r}");
            }
        }
    }
    println!(
        "{RUNS} runs, {total} requests, {failed} failed on a connection the server had closed"
    );
}

fn assert_failed_on_the_closed_connection(r: &Value, requests: &[&Value], lines: &[Value]) {
    let n = r["request"].as_u64().expect("number");
    let previous = requests
        .iter()
        .find(|p| p["request"].as_u64() == Some(n - 1))
        .expect("a failure follows a request");
    assert_eq!(
        r["socket_cookie"], previous["socket_cookie"],
        "rode its connection: {r}"
    );
    assert_eq!(r["reused"], true, "{r}");
    // The close may be reported as a `reset` too, when the request's bytes
    // reached the server's closed socket.
    let finding = lines
        .iter()
        .find(|f| f["type"] == "finding" && f["request"] == n && f["kind"] == "server-closed-idle")
        .unwrap_or_else(|| panic!("no server-closed-idle for request {n}: {lines:?}"));
    // FIN, or RST when the request reached the server's closed socket first.
    let close = finding["evidence"]["close"].as_str();
    assert!(matches!(close, Some("FIN" | "RST")), "{finding}");
}
