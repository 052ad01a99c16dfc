//! `run --otlp`: the command's requests as spans, as attach exports them,
//! decoded by a real OTLP receiver (tests/otlp_receiver.py).
use serde_json::Value;
use tracer_tests::{
    http,
    otlp_receiver::OtlpReceiver,
    process::{can_trace_or_skip, of_type},
    run_cmd::run_json,
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");
/// OTLP's SpanKind CLIENT.
const CLIENT: i64 = 3;

#[test]
fn run_exports_each_request_of_its_command_as_a_span_with_phases() {
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let receiver = OtlpReceiver::start("run");
    // http-target reads its go line from stdin: the tracer's is closed.
    let (run, lines) = run_json(
        "otlp",
        &[
            "--otlp",
            &receiver.endpoint(),
            "--",
            TARGET,
            "keepalive",
            &addr,
            "/run",
        ],
    );
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(of_type(&lines, "request").len(), 5);
    let summary = of_type(&lines, "summary")[0];
    // The exporter's own connection is the tracer's: never in the trace.
    assert_eq!(summary["connections"], 3, "{summary}");
    let all = receiver.spans();
    assert_eq!(summary["otlp_exported"], all.len(), "{summary}");
    assert_eq!(summary["otlp_dropped"], 0, "{summary}");
    let roots: Vec<&Value> = all.iter().filter(|s| s["parent_span_id"] == "").collect();
    assert_eq!(roots.len(), 5, "{all:?}");
    for s in &roots {
        assert_eq!(s["kind"], CLIENT);
        assert_eq!(s["resource"]["process.executable.name"], "http-target");
        let path = s["attributes"]["url.path"].as_str().unwrap();
        assert!(path.starts_with("/run/"), "{path}");
        let kids: Vec<&Value> = all
            .iter()
            .filter(|k| k["parent_span_id"] == s["span_id"])
            .collect();
        let connect = kids.iter().any(|k| k["name"] == "connect");
        assert_eq!(
            connect,
            s["attributes"]["tracer.connection.reused"] == false,
            "{path}"
        );
        for k in kids {
            assert!(k["start"].as_u64() >= s["start"].as_u64(), "{path}: {k}");
            assert!(k["end"].as_u64() <= s["end"].as_u64(), "{path}: {k}");
        }
    }
}
