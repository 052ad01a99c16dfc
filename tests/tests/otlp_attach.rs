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
    http_server::{Behaviour, TestServer},
    otlp_receiver::OtlpReceiver,
    process::{Proc, attach_with, can_trace_or_skip, json_lines, of_type},
    run_cmd::have,
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

/// Spans without a parent: one per request (and one per finding that no
/// request owns, named `tracer finding`).
fn request_spans(spans: &[Value]) -> Vec<&Value> {
    spans
        .iter()
        .filter(|s| s["parent_span_id"] == "" && s["name"] != "tracer finding")
        .collect()
}

fn children<'a>(spans: &'a [Value], parent: &Value) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["parent_span_id"] == parent["span_id"])
        .collect()
}

fn names<'a>(items: impl IntoIterator<Item = &'a Value>) -> Vec<&'a str> {
    items
        .into_iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
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
    let all = receiver.spans();
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["otlp_exported"], all.len(), "{summary}");
    assert_eq!(summary["otlp_dropped"], 0, "{summary}");

    let spans = request_spans(&all);
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

/// The keep-alive connection's first request has the connect as a child
/// and as a kernel event; the two that rode it have neither, and name the
/// first as `reused_from_request`. Every child lies inside its parent.
#[test]
fn request_spans_have_phase_children_inside_them_and_kernel_events() {
    if !can_trace_or_skip() {
        return;
    }
    let receiver = OtlpReceiver::start("attach-phases");
    let (_, _, _) = attach_run(&receiver.endpoint());
    let all = receiver.spans();
    let spans = request_spans(&all);
    let by_path = |path: &str| {
        *spans
            .iter()
            .find(|s| s["attributes"]["url.path"] == path)
            .unwrap_or_else(|| panic!("no span for {path}: {all:?}"))
    };
    let first = by_path("/otlp/keep/1");
    let first_number = &first["attributes"]["tracer.request"];
    for s in &spans {
        let kids = children(&all, s);
        let path = s["attributes"]["url.path"].as_str().unwrap();
        let new = path == "/otlp/keep/1" || path.starts_with("/otlp/close/");
        let want = if new {
            vec!["connect", "request", "server", "transfer"]
        } else {
            vec!["request", "server", "transfer"]
        };
        assert_eq!(names(kids.iter().copied()), want, "{path}");
        for k in &kids {
            assert_eq!(k["trace_id"], s["trace_id"]);
            assert!(k["start"].as_u64() >= s["start"].as_u64(), "{path}: {k}");
            assert!(k["end"].as_u64() <= s["end"].as_u64(), "{path}: {k}");
            assert!(k["start"].as_u64() <= k["end"].as_u64(), "{path}: {k}");
        }
        let events = s["events"].as_array().unwrap();
        let seen = names(events);
        assert!(
            seen.contains(&"send") && seen.contains(&"recv"),
            "{path}: {seen:?}"
        );
        assert_eq!(seen.contains(&"connect"), new, "{path}: {seen:?}");
        for e in events {
            assert!(e["time"].as_u64() >= s["start"].as_u64(), "{path}: {e}");
            assert!(e["time"].as_u64() <= s["end"].as_u64(), "{path}: {e}");
            // Kernel events, and findings (http::serve writes the head and
            // the body apart: a reused request may stall on a delayed ACK).
            let finding = e["attributes"]["tracer.finding.text"].is_string();
            assert!(
                finding || e["attributes"]["tracer.source"] == "kernel",
                "{e}"
            );
            let cookie = &s["attributes"]["tracer.socket.cookie"];
            assert_eq!(&e["attributes"]["tracer.socket.cookie"], cookie);
        }
        let from = &s["attributes"]["tracer.connection.reused_from_request"];
        if new {
            assert!(from.is_null(), "{path}: {from}");
        } else {
            assert_eq!(from, first_number, "{path}");
        }
    }
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
    // 5 requests: each a span and its phase children.
    assert!(summary["otlp_dropped"].as_u64() >= Some(5 * 4), "{summary}");
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
    // 5 requests: each a span and its phase children.
    assert!(summary["otlp_dropped"].as_u64() >= Some(5 * 4), "{summary}");
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

/// Runs `script` (it waits for a line, then execs the client) under
/// `tracer attach --format json --otlp`; returns the JSON lines.
fn script_under_attach(script: &str, otlp: &str) -> Vec<Value> {
    let mut client = Proc::spawn(Command::new("sh").args(["-c", script])).unwrap();
    let mut tracer = attach_with(client.pid(), "json", &["--otlp", otlp]);
    client.go_and_succeed();
    json_lines(&tracer.exit_0_stdout())
}

/// curl's reused requests to a server that writes head and body apart
/// stall on the delayed ACK: the finding is an event of their spans.
#[test]
fn a_finding_is_an_event_named_by_its_kind_on_its_request_span() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::SplitHeadBody).unwrap();
    let receiver = OtlpReceiver::start("attach-findings");
    let url = server.url();
    let outs = "-o /dev/null -o /dev/null -o /dev/null";
    let script = format!("read go && exec curl -sS {outs} {url} {url} {url}");
    let lines = script_under_attach(&script, &receiver.endpoint());
    let found: Vec<u64> = of_type(&lines, "finding")
        .iter()
        .filter(|f| f["kind"] == "delayed-ack-stall")
        .filter_map(|f| f["request"].as_u64())
        .collect();
    assert_eq!(found, [2, 3], "{lines:?}");
    let all = receiver.spans();
    for s in request_spans(&all) {
        let events = s["events"].as_array().unwrap();
        let stalls: Vec<&Value> = events
            .iter()
            .filter(|e| e["name"] == "delayed-ack-stall")
            .collect();
        let n = s["attributes"]["tracer.request"].as_u64().unwrap();
        assert_eq!(stalls.len(), usize::from(n != 1), "request {n}: {events:?}");
        for e in stalls {
            let stall = e["attributes"]["tracer.finding.stall_us"].as_i64().unwrap();
            assert!((35_000..=250_000).contains(&stall), "{stall}");
            assert!(e["time"].as_u64() <= s["end"].as_u64());
        }
    }
}

/// A connection that moves no byte has no request: its finding is a span
/// of its own.
#[test]
fn a_finding_without_a_request_is_a_span_of_its_own() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let receiver = OtlpReceiver::start("attach-unused");
    let (host, port) = (server.addr.ip(), server.addr.port());
    let script = format!("read go && exec bash -c 'exec 3<>/dev/tcp/{host}/{port}; exec 3>&-'");
    let lines = script_under_attach(&script, &receiver.endpoint());
    assert_eq!(of_type(&lines, "finding").len(), 1, "{lines:?}");
    let all = receiver.spans();
    assert_eq!(all.len(), 1, "{all:?}");
    let s = &all[0];
    assert_eq!(s["name"], "tracer finding");
    assert_eq!(s["parent_span_id"], "");
    assert_eq!(
        names(s["events"].as_array().unwrap()),
        ["unused-connection"]
    );
    assert_eq!(s["attributes"]["network.peer.port"], port);
}
