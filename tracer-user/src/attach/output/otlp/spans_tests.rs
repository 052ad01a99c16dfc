#![allow(
    clippy::unwrap_used,
    reason = "a bad literal should fail the test loudly"
)]
use opentelemetry_proto::tonic::{common::v1::any_value::Value, trace::v1::status::StatusCode};

use super::*;

fn answered(status: u16) -> (Request, ConnFacts) {
    let r = Request {
        number: 1,
        connection: 0,
        cookie: 9,
        method: "POST",
        target: "/orders?id=1".into(),
        host: Some("shop:8080".into()),
        version: "HTTP/1.1".into(),
        outbound: false,
        status: Some(status),
        interim: None,
        start_ns: 1_000,
        request_end_ns: Some(1_100),
        first_byte_ns: Some(1_500),
        last_byte_ns: Some(1_800),
        bytes_sent: 120,
        bytes_received: 78,
        reused: false,
        reused_from: None,
        connect_ns: None,
    };
    let c = ConnFacts {
        number: 1,
        local: Some("10.0.0.1:8080".parse().unwrap()),
        remote: Some("10.0.0.2:40000".parse().unwrap()),
        plaintext: false,
    };
    (r, c)
}

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a Value> {
    let kv = s.attributes.iter().find(|kv| kv.key == key)?;
    kv.value.as_ref()?.value.as_ref()
}

fn spans(r: &Request, c: &ConnFacts) -> Vec<Span> {
    request_spans(r, c, 42, &Held::default(), 10)
}

#[test]
fn a_request_the_process_answered_is_a_server_span_on_its_own_address() {
    let (r, c) = answered(503);
    let s = &spans(&r, &c)[0];
    assert_eq!(s.kind, SpanKind::Server as i32);
    assert_eq!(
        (s.start_time_unix_nano, s.end_time_unix_nano),
        (1_010, 1_810)
    );
    let text = |v: &str| Some(Value::StringValue(v.into()));
    assert_eq!(attr(s, "server.address").cloned(), text("10.0.0.1"));
    assert_eq!(attr(s, "server.port"), Some(&Value::IntValue(8080)));
    assert_eq!(attr(s, "network.peer.address").cloned(), text("10.0.0.2"));
    assert_eq!(
        attr(s, "url.full").cloned(),
        text("http://shop:8080/orders?id=1")
    );
    assert_eq!(attr(s, "tracer.process.pid"), Some(&Value::IntValue(42)));
    assert_eq!(attr(s, "error.type").cloned(), text("503"));
    assert_eq!(
        s.status.as_ref().map(|st| st.code),
        Some(StatusCode::Error as i32)
    );
    // A 404 is the client's error, not the server's.
    let (r, c) = answered(404);
    assert_eq!(attr(&spans(&r, &c)[0], "error.type"), None);
}

/// The first request on a connection dialled for it starts at the connect
/// and has a `connect` child; each child lies inside its parent.
#[test]
fn a_new_connection_request_has_a_connect_child_and_a_reused_one_none() {
    let (mut r, c) = answered(200);
    r.outbound = true;
    r.connect_ns = Some((700, 900));
    let all = spans(&r, &c);
    let names: Vec<&str> = all[1..].iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["connect", "request", "server", "transfer"]);
    let parent = &all[0];
    assert_eq!(parent.start_time_unix_nano, 710);
    for child in &all[1..] {
        assert_eq!(child.parent_span_id, parent.span_id);
        assert_eq!(child.trace_id, parent.trace_id);
        assert!(child.start_time_unix_nano >= parent.start_time_unix_nano);
        assert!(child.end_time_unix_nano <= parent.end_time_unix_nano);
        assert!(child.start_time_unix_nano <= child.end_time_unix_nano);
    }
    let (mut r, c) = answered(200);
    (r.outbound, r.reused, r.reused_from) = (true, true, Some(1));
    let all = spans(&r, &c);
    let names: Vec<&str> = all[1..].iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["request", "server", "transfer"]);
    assert_eq!(
        attr(&all[0], "tracer.connection.reused_from_request"),
        Some(&Value::IntValue(1))
    );
}
