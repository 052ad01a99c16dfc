//! The `retransmit` and `reset` findings from the kernel's own TCP
//! tracepoints, checked against what provoked them: a server that closes
//! with SO_LINGER 0, and an nftables rule that drops the first SYN inside a
//! network namespace made for the test (this kernel has no netem).
use std::process::Command;

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip as kernel_or_skip, json_lines as json},
    tracer_bin::{tracer, tracer_bin},
};

fn of<'a>(lines: &'a [Value], ty: &str, kind: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["type"] == ty && (v["kind"] == kind || v["name"] == kind))
        .collect()
}

#[test]
fn a_server_closing_with_linger_0_raises_reset_received() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::ResetMidResponse).unwrap();
    let run = tracer(&["trace", &server.url(), "--format", "json"]);
    assert_eq!(run.code, 1, "the request fails: {}", run.stderr);
    let lines = json(&run.stdout);
    let found = of(&lines, "finding", "reset");
    println!("saw: {found:?}");
    assert_eq!(found.len(), 1, "{}", run.stdout);
    assert_eq!(found[0]["request"], 1);
    assert_eq!(found[0]["evidence"]["direction"], "received");
    assert_eq!(found[0]["evidence"]["state"], "ESTABLISHED");
    let request = lines.iter().find(|v| v["type"] == "request").unwrap();
    assert_eq!(found[0]["socket_cookie"], request["socket_cookie"]);
}

#[test]
fn a_keep_alive_server_raises_neither_reset_nor_retransmit() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&["trace", &server.url(), "-n", "3", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json(&run.stdout);
    for kind in ["reset", "retransmit"] {
        assert!(of(&lines, "event", kind).is_empty(), "{}", run.stdout);
        assert!(of(&lines, "finding", kind).is_empty(), "{}", run.stdout);
    }
}

/// Drops the first SYN on the namespace's loopback, once.
const DROP_FIRST_SYN: &str = "table inet tracer_test {
  chain out {
    type filter hook output priority 0;
    tcp flags == syn quota until 100 bytes drop
  }
}";

#[test]
fn a_dropped_syn_raises_retransmit_as_the_kernel_counted_it() {
    if !kernel_or_skip() {
        return;
    }
    for tool in ["unshare", "ip", "nft", "nstat"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            println!("skipped: {tool} not installed (apt-get install nftables iproute2)");
            return;
        }
    }
    for round in 0..3 {
        // The demo's server and client both live in the new namespace.
        let script = format!(
            "ip link set lo up && echo '{DROP_FIRST_SYN}' | nft -f - && \
             {} demo --format json && nstat -az TcpExtTCPSynRetrans",
            tracer_bin().display()
        );
        let out = Command::new("unshare")
            .args(["--net", "sh", "-c", &script])
            .env("NO_COLOR", "1")
            .output()
            .expect("unshare runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let (trace, counters): (Vec<&str>, Vec<&str>) =
            stdout.lines().partition(|l| l.starts_with('{'));
        let kernel_count: i64 = counters
            .iter()
            .find_map(|l| l.strip_prefix("TcpExtTCPSynRetrans"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("nstat's SYN retransmit counter");
        let lines = json(&trace.join("\n"));
        let found = of(&lines, "finding", "retransmit");
        println!("round {round}: kernel counted {kernel_count} SYN retransmits; saw {found:?}");
        assert_eq!(kernel_count, 1, "the rule dropped one SYN");
        assert_eq!(found.len(), 1, "{stdout}");
        assert_eq!(found[0]["request"], 1);
        assert_eq!(found[0]["evidence"]["count"], kernel_count);
        assert_eq!(found[0]["evidence"]["first_state"], "SYN_SENT");
        let at = found[0]["evidence"]["first_at_us"].as_i64().unwrap();
        assert!(at >= 900_000, "a SYN is sent again after 1 s: {at} us");
    }
}
