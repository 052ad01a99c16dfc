//! `trace --otlp`: the spans a real OTLP receiver (PyPI's
//! opentelemetry-proto, tests/otlp_receiver.py) decodes.
use std::{net::TcpListener, process::Command, sync::mpsc, time::Duration};

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    otlp_receiver::OtlpReceiver,
    process::{Proc, can_trace_or_skip as kernel_or_skip, of_type},
    tracer_bin::{tracer, tracer_bin, tracer_env},
};

/// OTLP's SpanKind CLIENT.
const CLIENT: i64 = 3;

fn children<'a>(spans: &'a [Value], parent: &Value) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["parent_span_id"] == parent["span_id"])
        .collect()
}

fn names(spans: &[&Value]) -> Vec<String> {
    spans
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn keep_alive_run_is_one_trace_a_root_and_a_span_per_request() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let receiver = OtlpReceiver::start("keep-alive");
    let run = tracer_env(
        &[
            "trace",
            &server.url(),
            "-n",
            "3",
            "--format",
            "json",
            "--otlp",
            &receiver.endpoint(),
        ],
        &[("OTEL_SERVICE_NAME", "checkout")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "", "a successful export says nothing");
    let lines = run.json();
    // The export came after the detach: the trace saw one connection only.
    assert_eq!(of_type(&lines, "summary")[0]["connections_opened"], 1);
    assert_eq!(receiver.posts().len(), 1, "one POST for the run");

    let spans = receiver.spans();
    let trace_id = &spans[0]["trace_id"];
    assert!(
        spans.iter().all(|s| &s["trace_id"] == trace_id),
        "one trace"
    );
    let roots: Vec<&Value> = spans.iter().filter(|s| s["parent_span_id"] == "").collect();
    assert_eq!(roots.len(), 1, "one root span");
    let root = roots[0];
    let requests = children(&spans, root);
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r["kind"] == CLIENT));
    assert_eq!(spans[0]["resource"]["service.name"], "checkout");
    assert_eq!(spans[0]["resource"]["process.executable.name"], "tracer");

    let json_requests = of_type(&lines, "request");
    for (i, r) in requests.iter().enumerate() {
        let a = &r["attributes"];
        assert_eq!(a["tracer.request"], i + 1);
        assert_eq!(a["http.request.method"], "GET");
        assert_eq!(a["url.full"], server.url());
        assert_eq!(a["server.port"], server.addr.port());
        assert_eq!(a["http.response.status_code"], 200);
        assert_eq!(a["network.protocol.version"], "1.1");
        assert_eq!(a["tracer.connection.kernel_confirmed"], true);
        assert_eq!(a["tracer.socket.cookie"], json_requests[i]["socket_cookie"]);
        assert_eq!(a["tracer.connection.reused"], i > 0);
        match i {
            0 => assert!(a.get("tracer.connection.reused_from_request").is_none()),
            _ => assert_eq!(a["tracer.connection.reused_from_request"], 1),
        }
        assert!(root["start"].as_u64() <= r["start"].as_u64());
        assert!(r["end"].as_u64() <= root["end"].as_u64());
        let phases = children(&spans, r);
        for p in &phases {
            assert!(
                r["start"].as_u64() <= p["start"].as_u64()
                    && p["end"].as_u64() <= r["end"].as_u64(),
                "phase {} of request {} inside it",
                p["name"],
                i + 1
            );
        }
        let phase_names = names(&phases);
        assert_eq!(
            phase_names.contains(&"connect".to_string()),
            i == 0,
            "{phase_names:?}"
        );
        assert!(!phase_names.contains(&"dns".to_string()) || i == 0);
        assert!(
            phase_names.contains(&"server".to_string()),
            "{phase_names:?}"
        );
        let events: Vec<&str> = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert!(
            events.contains(&"GetConn") && events.contains(&"send"),
            "{events:?}"
        );
        assert_eq!(events.contains(&"connect"), i == 0, "{events:?}");
    }
}

#[test]
fn an_unreachable_collector_is_one_stderr_line_and_the_exit_code_stands() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // A port that was free a moment ago: nothing listens on it.
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{down}");
    let ok = tracer(&[
        "trace",
        &server.url(),
        "--format",
        "json",
        "--otlp",
        &endpoint,
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let said: Vec<&str> = ok.stderr.lines().collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("tracer: otlp: "), "{}", said[0]);
    assert!(
        said[0].contains(&format!("{endpoint}/v1/traces")),
        "{}",
        said[0]
    );
    assert_eq!(
        of_type(&ok.json(), "request").len(),
        1,
        "the trace is still printed"
    );

    // A run that fails its --expect keeps its exit 3, through the env.
    let failed = tracer_env(
        &["trace", &server.url(), "-n", "2", "--expect", "new"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    );
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert_eq!(
        failed.stderr.lines().filter(|l| l.contains("otlp")).count(),
        1,
        "{}",
        failed.stderr
    );
}

#[test]
fn propagate_names_each_request_span_in_its_traceparent() {
    if !kernel_or_skip() {
        return;
    }
    // The receiver answers GETs too: it is the traced server here.
    let receiver = OtlpReceiver::start("propagate");
    let url = format!("{}/hello", receiver.endpoint());
    let run = tracer(&[
        "trace",
        &url,
        "-n",
        "2",
        "--otlp",
        &receiver.endpoint(),
        "--propagate",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let spans = receiver.spans();
    let gets = receiver.gets();
    assert_eq!(gets.len(), 2);
    for (n, get) in gets.iter().enumerate() {
        let span = spans
            .iter()
            .find(|s| s["attributes"]["tracer.request"] == n + 1)
            .expect("the request's span");
        let want = format!(
            "00-{}-{}-01",
            span["trace_id"].as_str().unwrap(),
            span["span_id"].as_str().unwrap()
        );
        assert_eq!(get["headers"]["traceparent"], want.as_str());
    }
}

/// A server that accepts and never answers: the request hangs until Ctrl-C.
/// The receiver hears of each accepted connection.
fn silent_server() -> (std::net::SocketAddr, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept() {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    (addr, rx)
}

#[test]
fn ctrl_c_still_exports_what_was_traced_and_exits_130() {
    if !kernel_or_skip() {
        return;
    }
    let receiver = OtlpReceiver::start("ctrl-c");
    let (addr, accepted) = silent_server();
    let url = format!("http://{addr}/");
    let mut tracer = Proc::spawn(Command::new(tracer_bin()).args([
        "trace",
        &url,
        "--otlp",
        &receiver.endpoint(),
    ]))
    .unwrap();
    // Connected: the probes are on and the request waits for its answer.
    accepted
        .recv_timeout(Duration::from_secs(20))
        .expect("the tracer connects");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGINT) };
    let status = tracer.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "{}",
        tracer.stderr()
    );
    assert_eq!(receiver.posts().len(), 1, "exported before the exit");
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1, "the root only: no request finished");
    assert_eq!(spans[0]["name"], "tracer trace");
}
