//! A ring buffer too small for the traffic loses events, and the loss is
//! counted in the summary of every format, never silent. The reader is held
//! back by a test-only variable so the overflow does not depend on timing.
use std::process::Command;

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type},
    tracer_bin::tracer_bin,
};

fn overflowing_trace(format: &str) -> (i32, String, String) {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // 4096 bytes (one page, the smallest ring) hold about 100 events; 60
    // requests make several hundred while the reader waits.
    let out = Command::new(tracer_bin())
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
