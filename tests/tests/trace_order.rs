//! A merged timeline never shows an effect before its cause: over 2,000
//! requests, no client hook sits on the wrong side of the kernel event it
//! causes or follows from.
use std::collections::BTreeMap;

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type},
    tracer_bin::tracer,
};

const REQUESTS: u64 = 2000;

fn ts(e: &Value) -> u64 {
    e["ts_ns"].as_u64().expect("ts_ns")
}

/// Earliest or latest time of the events of `source`/`name` that pass `keep`.
fn first(
    events: &[&Value],
    source: &str,
    name: &str,
    keep: impl Fn(&Value) -> bool,
) -> Option<u64> {
    events
        .iter()
        .filter(|e| e["source"] == source && e["name"] == name && keep(e))
        .map(|e| ts(e))
        .min()
}

/// The pairs (cause, effect) that each request's timeline must keep in order.
fn inversions(request: &Value, events: &[&Value]) -> Vec<String> {
    let cookie = &request["socket_cookie"];
    let mine = |e: &Value| &e["socket_cookie"] == cookie;
    let data = |e: &Value| mine(e) && e["bytes"].as_i64().unwrap_or(0) > 0;
    let established = |e: &Value| mine(e) && e["new"] == "ESTABLISHED";
    let pairs = [
        (
            "ConnectStart",
            first(events, "client", "ConnectStart", |_| true),
            "kernel connect",
            first(events, "kernel", "connect", mine),
        ),
        (
            "kernel ESTABLISHED",
            first(events, "kernel", "state", established),
            "ConnectDone",
            first(events, "client", "ConnectDone", |_| true),
        ),
        (
            "GotConn",
            first(events, "client", "GotConn", |_| true),
            "kernel send",
            first(events, "kernel", "send", data),
        ),
        (
            "kernel send",
            first(events, "kernel", "send", data),
            "kernel recv",
            first(events, "kernel", "recv", data),
        ),
        (
            "kernel recv",
            first(events, "kernel", "recv", data),
            "GotResponseHeaders",
            first(events, "client", "GotResponseHeaders", |_| true),
        ),
    ];
    pairs
        .into_iter()
        .filter_map(|(cause, a, effect, b)| match (a, b) {
            (Some(a), Some(b)) if a > b => Some(format!(
                "request {}: {effect} {} ns before {cause}",
                request["request"],
                a - b
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn two_thousand_requests_show_no_effect_before_its_cause() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).expect("server");
    let count = REQUESTS.to_string();
    let run = tracer(&["trace", &server.url(), "-n", &count, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let mut by_request: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in of_type(&lines, "event") {
        by_request
            .entry(e["request"].as_u64().expect("request"))
            .or_default()
            .push(e);
    }
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len() as u64, REQUESTS);
    let mut found = Vec::new();
    for r in &requests {
        assert_eq!(r["kernel_confirmed"], true, "{r}");
        let events = by_request
            .get(&r["request"].as_u64().expect("number"))
            .cloned()
            .unwrap_or_default();
        found.extend(inversions(r, &events));
    }
    println!("{REQUESTS} requests, {} inversions", found.len());
    assert!(
        found.is_empty(),
        "{} inversions, first: {:?}",
        found.len(),
        &found[..found.len().min(5)]
    );
    assert_eq!(server.accepted(), 1, "the server saw one connection");
}
