//! `attach --otlp` on a keep-alive server: the requests it answered are
//! SERVER spans, with the phases the kernel saw and no `connect` (the
//! client dialled), the second naming the first as `reused_from_request`.
use std::{net::SocketAddr, process::Command, time::Duration};

use serde_json::Value;
use tracer_tests::{
    http,
    otlp_receiver::OtlpReceiver,
    process::{Proc, attach_with, can_trace_or_skip, json_lines, of_type},
};

const SERVER: &str = env!("CARGO_BIN_EXE_bench-server");
/// OTLP's SpanKind SERVER.
const SERVER_KIND: i64 = 2;

#[test]
fn requests_a_server_answered_are_server_spans_with_phases_inside_them() {
    if !can_trace_or_skip() {
        return;
    }
    let receiver = OtlpReceiver::start("attach-server");
    let mut server = Proc::spawn(Command::new(SERVER).args(["--secs", "60"])).unwrap();
    assert!(server.wait_for("ready", false, Duration::from_secs(10)));
    let addr: SocketAddr = server
        .stdout()
        .split_whitespace()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("ready ADDR");
    let mut tracer = attach_with(server.pid(), "json", &["--otlp", &receiver.endpoint()]);
    let mut conn = http::connect(addr).unwrap();
    for path in ["/first", "/second"] {
        assert_eq!(http::request(&mut conn, addr, path, false).unwrap(), 200);
    }
    drop(conn);
    server.close_stdin(); // it exits; attach ends with it
    let lines = json_lines(&tracer.exit_0_stdout());
    assert_eq!(of_type(&lines, "request").len(), 2, "{lines:?}");

    let all = receiver.spans();
    let spans: Vec<&Value> = all.iter().filter(|s| s["parent_span_id"] == "").collect();
    assert_eq!(spans.len(), 2, "{all:?}");
    let first = spans
        .iter()
        .find(|s| s["attributes"]["url.path"] == "/first")
        .expect("a span for /first");
    for s in &spans {
        assert_eq!(s["kind"], SERVER_KIND);
        let a = &s["attributes"];
        assert_eq!(a["server.port"], addr.port(), "this end answered");
        let kids: Vec<&Value> = all
            .iter()
            .filter(|k| k["parent_span_id"] == s["span_id"])
            .collect();
        let names: Vec<&str> = kids.iter().map(|k| k["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["request", "server", "transfer"], "{a}");
        for k in kids {
            assert!(k["start"].as_u64() >= s["start"].as_u64(), "{k}");
            assert!(k["end"].as_u64() <= s["end"].as_u64(), "{k}");
        }
        if a["url.path"] == "/second" {
            assert_eq!(a["tracer.connection.reused"], true);
            let from = &a["tracer.connection.reused_from_request"];
            assert_eq!(from, &first["attributes"]["tracer.request"]);
        } else {
            assert_eq!(a["tracer.connection.reused"], false);
        }
    }
}
