//! The span shape on a hand-made keep-alive run: request 1 opens the
//! socket, request 2 rides it.
use opentelemetry_proto::tonic::{
    common::v1::{KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};

use super::{RunSpans, TraceIds};
use crate::timeline::{
    build,
    test_events::request,
    tests::{exchange, got_conn, new_socket},
};

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|KeyValue { key: k, .. }| k == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn spans() -> Vec<Span> {
    let mut k = new_socket(100, 7, "127.0.0.1:5000");
    k.extend(exchange(200, 7));
    k.extend(exchange(1200, 7));
    let reqs = vec![
        request(1, 0, "127.0.0.1:5000", false),
        request(2, 1000, "127.0.0.1:5000", true),
    ];
    let client = vec![got_conn(1, 180, false), got_conn(2, 1100, true)];
    let trace = build(reqs, client, k, true, 0);
    let run = RunSpans {
        ids: TraceIds::from_parts([9; 16], 42),
        unix_offset_ns: 1_000_000,
        start_ns: 0,
        end_ns: 2000,
        url: "http://127.0.0.1:8080/",
    };
    run.spans(&trace)
}

#[test]
fn a_root_a_client_span_per_request_and_phase_children_inside_them() {
    let spans = spans();
    let root = &spans[0];
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.start_time_unix_nano, 1_000_000);
    let requests: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    assert_eq!(requests.len(), 2);
    for s in &spans[1..] {
        assert_eq!(s.trace_id, root.trace_id);
        let parent = spans
            .iter()
            .find(|p| p.span_id == s.parent_span_id)
            .expect("a parent in the trace");
        assert!(
            parent.start_time_unix_nano <= s.start_time_unix_nano
                && s.end_time_unix_nano <= parent.end_time_unix_nano,
            "{} inside {}",
            s.name,
            parent.name
        );
    }
    let children = |r: &Span| -> Vec<String> {
        let kids = spans.iter().filter(|s| s.parent_span_id == r.span_id);
        kids.map(|s| s.name.clone()).collect()
    };
    assert!(children(requests[0]).contains(&"connect".to_string()));
    assert!(!children(requests[1]).contains(&"connect".to_string()));
    assert!(children(requests[1]).contains(&"server".to_string()));
}

#[test]
fn the_second_request_says_it_reused_the_first_ones_socket() {
    let spans = spans();
    let second = &spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .nth(1)
        .expect("two request spans");
    assert_eq!(
        attr(second, "tracer.connection.reused"),
        Some(&Value::BoolValue(true))
    );
    assert_eq!(
        attr(second, "tracer.connection.reused_from_request"),
        Some(&Value::IntValue(1))
    );
    assert_eq!(
        attr(second, "tracer.connection.kernel_confirmed"),
        Some(&Value::BoolValue(true))
    );
    assert_eq!(
        attr(second, "tracer.socket.cookie"),
        Some(&Value::IntValue(7))
    );
    assert_eq!(attr(second, "server.port"), Some(&Value::IntValue(8080)));
    assert_eq!(
        attr(second, "http.response.status_code"),
        Some(&Value::IntValue(200))
    );
    let sends: Vec<_> = second.events.iter().filter(|e| e.name == "send").collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].time_unix_nano, 1_000_000 + 1200);
}
