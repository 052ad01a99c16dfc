//! One request record: `trace` and `run`, against the same server, write
//! request lines with every core key (null where unknown, never absent),
//! then what each alone knows; the kernel's bytes agree with curl's own
//! count of what it received.
use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, of_type},
    run_cmd::{have, run_json},
    tracer_bin::tracer,
};

const ROUNDS: usize = 50;

const CORE: [&str; 17] = [
    "type",
    "request",
    "connection",
    "method",
    "url",
    "status",
    "http_version",
    "reused",
    "reused_from",
    "socket_cookie",
    "local_addr",
    "remote_addr",
    "phases_us",
    "bytes_sent",
    "bytes_received",
    "kernel_confirmed",
    "error",
];

fn others(line: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| !CORE.contains(k))
        .collect();
    keys.sort_unstable();
    keys
}

fn has_core(line: &Value) {
    for key in CORE {
        assert!(line.get(key).is_some(), "no {key} in {line}");
    }
    for phase in ["dns", "connect", "tls", "server", "transfer", "total"] {
        assert!(
            line["phases_us"].get(phase).is_some(),
            "no {phase} in {line}"
        );
    }
}

#[test]
fn trace_and_run_request_lines_share_one_core() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let url = server.url();
    let traced = tracer(&["trace", &url, "-n", "2", "--format", "json"]);
    assert_eq!(traced.code, 0, "{}", traced.stderr);
    let lines = traced.json();
    let trace = of_type(&lines, "request");
    assert_eq!(trace.len(), 2);
    for r in &trace {
        has_core(r);
        assert_eq!(
            others(r),
            ["body_bytes", "client_reused", "disagreement", "headers"]
        );
        assert_eq!(r["http_version"], "HTTP/1.1");
        assert_eq!(r["connection"], 1);
    }
    assert_eq!(trace[1]["reused_from"], 1);

    // 50 requests on one connection, each checked against curl's count.
    let mut args = vec![
        "--",
        "curl",
        "-sS",
        "-w",
        "%{size_header} %{size_download}\n",
    ];
    for _ in 0..ROUNDS {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let (run, lines) = run_json("core", &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let attach = of_type(&lines, "request");
    assert_eq!(attach.len(), ROUNDS);
    assert_eq!(
        server.accepted(),
        2,
        "one connection for trace, one for curl"
    );
    let curl: Vec<u64> = run
        .stdout
        .lines()
        .map(|l| l.split(' ').filter_map(|n| n.parse::<u64>().ok()).sum())
        .collect();
    assert_eq!(curl.len(), ROUNDS, "{}", run.stdout);
    for (r, received) in attach.iter().zip(&curl) {
        has_core(r);
        assert_eq!(others(r), ["direction", "pid"]);
        assert_eq!(r["http_version"], "HTTP/1.1");
        assert_eq!(r["phases_us"]["dns"], Value::Null, "attach has no DNS hook");
        // The other side's view: what curl says it received.
        assert_eq!(r["bytes_received"].as_u64(), Some(*received), "{r}");
    }
    assert_eq!(attach[1]["reused_from"], 1);
}
