//! attach hands events on in time order although every CPU writes its own
//! ring: under a ping-pong on two connection pairs (both CPUs write), no
//! event of a socket comes out before an earlier one, and none is missing.
//! Paced, so that the tests' unoptimised tracer keeps up.
use tracer_tests::process::{can_trace_or_skip, of_type, pingpong_under_attach};

const PINGPONG: &str = env!("CARGO_BIN_EXE_bench-pingpong");

#[test]
fn events_of_each_socket_come_out_in_time_order_and_complete() {
    if !can_trace_or_skip() {
        return;
    }
    let (made, lines) = pingpong_under_attach(
        PINGPONG,
        &[
            "--pairs", "2", "--calls", "60000", "--rate", "30000", "--secs", "30",
        ],
        &["--events"],
    );
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["lost_events"], 0, "{summary}");
    let events = of_type(&lines, "event");
    let io = |name: &str| events.iter().filter(|e| e["name"] == name).count() as u64;
    assert_eq!(io("send"), made["send_calls"].as_u64().unwrap());
    assert_eq!(io("recv"), made["recv_calls"].as_u64().unwrap());
    let mut last: std::collections::HashMap<u64, u64> = Default::default();
    let mut stream_order = 0u64;
    let mut inversions = 0;
    for e in &events {
        let ts = e["ts_ns"].as_u64().unwrap();
        if ts < stream_order {
            inversions += 1;
        }
        stream_order = stream_order.max(ts);
        if let Some(cookie) = e["socket_cookie"].as_u64() {
            let before = last.insert(cookie, ts).unwrap_or(0);
            assert!(ts >= before, "socket {cookie}: {ts} after {before}");
        }
    }
    assert_eq!(inversions, 0, "events out of time order across sockets");
}
