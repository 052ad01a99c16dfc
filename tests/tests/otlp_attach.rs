//! `attach --otlp`: a span per reconstructed request, each its own trace,
//! as a real OTLP receiver decodes them; a collector that is down costs
//! dropped spans, counted in the summary, and nothing else.
use std::{
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{
    http,
    otlp_receiver::OtlpReceiver,
    process::{Proc, attach_with, can_trace_or_skip, json_lines, of_type},
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");
/// OTLP's SpanKind CLIENT.
const CLIENT: i64 = 3;

/// Attaches to an http-target that makes 5 requests (3 keep-alive, 2 with
/// `Connection: close`); returns the tracer's JSON lines and stderr.
fn attach_run(otlp: &str) -> (u32, Vec<Value>, String) {
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let mut target = Proc::spawn_ready(Command::new(TARGET).args(["keepalive", &addr, "/otlp"]));
    let mut tracer = attach_with(target.pid(), "json", &["--otlp", otlp]);
    target.go_and_succeed();
    let status = tracer.wait_exit(Duration::from_secs(20));
    let (out, err) = (tracer.stdout(), tracer.stderr());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {err}");
    (target.pid(), json_lines(&out), err)
}

#[test]
fn every_request_is_a_span_of_its_own_trace_with_the_process_as_resource() {
    if !can_trace_or_skip() {
        return;
    }
    let receiver = OtlpReceiver::start("attach");
    let (pid, lines, _) = attach_run(&receiver.endpoint());
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 5);
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["otlp_exported"], 5, "{summary}");
    assert_eq!(summary["otlp_dropped"], 0, "{summary}");

    let spans = receiver.spans();
    assert_eq!(spans.len(), 5);
    let mut traces: Vec<&str> = spans
        .iter()
        .map(|s| s["trace_id"].as_str().unwrap())
        .collect();
    traces.sort_unstable();
    traces.dedup();
    assert_eq!(traces.len(), 5, "one trace per request");
    for s in &spans {
        assert_eq!(s["kind"], CLIENT, "the target made these requests");
        assert_eq!(s["parent_span_id"], "");
        assert_eq!(s["resource"]["process.pid"], pid);
        assert_eq!(s["resource"]["process.executable.name"], "http-target");
        let a = &s["attributes"];
        assert_eq!(a["tracer.process.pid"], pid);
        assert_eq!(a["tracer.connection.kernel_confirmed"], true);
        assert!(a["url.path"].as_str().unwrap().starts_with("/otlp"), "{a}");
        let json = requests
            .iter()
            .find(|r| r["request"] == a["tracer.request"])
            .expect("the JSON line of the span's request");
        assert_eq!(a["tracer.socket.cookie"], json["socket_cookie"]);
        assert_eq!(a["tracer.connection.reused"], json["reused"]);
        assert_eq!(a["http.response.status_code"], json["status"]);
        assert!(s["start"].as_u64() <= s["end"].as_u64());
    }
    let reused = spans
        .iter()
        .filter(|s| s["attributes"]["tracer.connection.reused"] == true)
        .count();
    assert_eq!(reused, 2);
}

#[test]
fn a_collector_that_is_down_costs_dropped_spans_counted_in_the_summary() {
    if !can_trace_or_skip() {
        return;
    }
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_, lines, err) = attach_run(&format!("http://{down}"));
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["otlp_exported"], 0, "{summary}");
    assert_eq!(summary["otlp_dropped"], 5, "{summary}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains("otlp")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].starts_with("tracer: otlp: "), "{}", said[0]);
}

#[test]
fn a_collector_that_never_answers_holds_attach_up_2_seconds_at_most() {
    if !can_trace_or_skip() {
        return;
    }
    // Accepts and never answers: every post waits for its deadline.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept() {
            held.push(conn);
        }
    });
    let started = Instant::now();
    let (_, lines, _) = attach_run(&format!("http://{silent}"));
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["otlp_exported"], 0, "{summary}");
    assert_eq!(summary["otlp_dropped"], 5, "{summary}");
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 5, "the trace itself is whole");
    // The target's run and the attach take well under the 10 s bound; the
    // export adds its 2 s deadline at most.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
