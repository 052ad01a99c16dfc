//! The helpers `cargo xtask bench` measures with do what they report: the
//! ping-pong makes exactly the calls it was asked for (the tracer's event
//! count is checked against them), and the load loop gets answers from the
//! bench server. No timing is asserted; no privilege is needed.
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

const PINGPONG: &str = env!("CARGO_BIN_EXE_bench-pingpong");
const SERVER: &str = env!("CARGO_BIN_EXE_bench-server");
const LOAD: &str = env!("CARGO_BIN_EXE_bench-load");

fn json(out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn pingpong_makes_exactly_the_calls_asked_for() {
    let out = Command::new(PINGPONG)
        .args(["--pairs", "2", "--calls", "4000", "--secs", "30"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out.stdout);
    // 1000 round trips of 4 calls, plus each echo side's recv of the EOF.
    assert_eq!(v["send_calls"], 2000, "{v}");
    assert_eq!(v["recv_calls"], 2002, "{v}");
    assert_eq!(v["calls"], 4002, "{v}");
}

/// Runs bench-load with `args` after the address against a fresh
/// bench-server; its JSON line.
fn load(args: &[&str]) -> serde_json::Value {
    let mut server = Command::new(SERVER)
        .args(["--secs", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.strip_prefix("ready ").expect("ready ADDR").trim();
    let out = Command::new(LOAD).arg(addr).args(args).output().unwrap();
    drop(server.stdin.take()); // the server exits when its stdin closes
    let _ = server.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out.stdout)
}

#[test]
fn churn_opens_one_connection_per_request_and_stops_at_max() {
    let v = load(&["--conns", "2", "--secs", "30", "--churn", "--max", "50"]);
    assert_eq!(v["requests"], 50, "{v}");
    assert_eq!(v["connections"], 50, "{v}");
}

#[test]
fn paced_load_sends_no_more_than_its_rate() {
    // 2 connections at 100/s each for 0.5 s: each sends at 0, 10, .. 490 ms
    // and perhaps once more as the time runs out.
    let v = load(&["--conns", "2", "--secs", "0.5", "--rate", "200"]);
    let requests = v["requests"].as_u64().unwrap();
    assert!(requests > 0 && requests <= 102, "{v}");
    assert_eq!(v["connections"], 2, "{v}");
}

#[test]
fn load_loop_gets_answers_from_the_bench_server() {
    let v = load(&["--conns", "2", "--secs", "0.3"]);
    assert!(v["requests"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["p99_us"].as_f64().unwrap() >= v["p50_us"].as_f64().unwrap(),
        "{v}"
    );
}
