//! A ring buffer too small for the traffic loses events, and the loss is
//! counted in the summary of every format, never silent. The reader is held
//! back by a test knob (`tracer-test-knobs`) so the overflow does not depend
//! on timing.
use std::process::Command;

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type, pingpong_under_attach},
    tracer_bin::tracer_test_knobs_bin,
};

const PINGPONG: &str = env!("CARGO_BIN_EXE_bench-pingpong");

fn overflowing_trace(format: &str) -> (i32, String, String) {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // 4096 bytes (one page, the smallest ring) hold about 100 events; 60
    // requests make several hundred while the reader waits.
    let out = Command::new(tracer_test_knobs_bin())
        .args([
            "trace",
            &server.url(),
            "-n",
            "60",
            "--ring-bytes",
            "4096",
            "--format",
            format,
        ])
        .env("NO_COLOR", "1")
        .env("TRACER_TEST_READER_DELAY_MS", "3000")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_full_ring_buffer_shows_lost_events_in_json_and_text() {
    if !can_trace_or_skip() {
        return;
    }
    let (code, out, err) = overflowing_trace("json");
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    let summary = of_type(&lines, "summary")[0];
    let lost = summary["lost_events"].as_u64().unwrap();
    assert!(lost > 0, "{summary}");
    assert_eq!(summary["requests"], 60);

    let (code, out, err) = overflowing_trace("text");
    assert_eq!(code, 0, "{err}");
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("summary: 60 requests")
            && summary.contains("lost events (ring buffer full: the timeline is incomplete)")
            && !summary.contains(" 0 lost events"),
        "{summary}"
    );
}

/// The lost counter is exact: with a one-page ring, far too small for a
/// ping-pong that counts its own calls, the send and recv events the summary
/// counts as lost are exactly the calls that have no event line.
#[test]
fn lost_send_and_recv_counters_equal_the_missing_lines() {
    if !can_trace_or_skip() {
        return;
    }
    let (made, lines) = pingpong_under_attach(
        PINGPONG,
        &["--pairs", "2", "--calls", "40000", "--secs", "30"],
        &["--ring-bytes", "4096", "--events"],
    );
    let seen = |name: &str| lines.iter().filter(|l| l["name"] == name).count() as u64;
    let summary = of_type(&lines, "summary")[0];
    let lost = |name: &str| summary["lost_by_kind"][name].as_u64().unwrap_or(0);
    let sends = made["send_calls"].as_u64().unwrap();
    let recvs = made["recv_calls"].as_u64().unwrap();
    assert!(lost("send") > 0 && lost("recv") > 0, "{summary}");
    assert_eq!(sends - seen("send"), lost("send"), "{summary}");
    assert_eq!(recvs - seen("recv"), lost("recv"), "{summary}");
    let total: u64 = summary["lost_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(summary["lost_events"], total, "{summary}");
}
