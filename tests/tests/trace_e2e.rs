//! `tracer trace URL` end to end: the real binary, real probes, loopback
//! servers that count what really happened.
use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip as kernel_or_skip, of_type},
    tracer_bin::tracer,
};

fn kernel_events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["type"] == "event" && v["source"] == "kernel" && v["name"] == name)
        .collect()
}

#[test]
fn keep_alive_three_requests_ride_one_socket() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&["trace", &server.url(), "-n", "3", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.json();
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["verdict"], "reused");
    assert_eq!(summary["connections"], 1);
    assert_eq!(summary["reused"], 2);
    assert_eq!(summary["lost_events"], 0);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 3);
    let cookie = &requests[0]["socket_cookie"];
    assert!(cookie.as_u64().is_some_and(|c| c > 0), "cookie {cookie}");
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(
            &r["socket_cookie"],
            cookie,
            "request {} on the same socket",
            i + 1
        );
        assert_eq!(r["kernel_confirmed"], true);
        assert_eq!(r["reused"], i > 0);
        assert_eq!(r["status"], 200);
    }
    assert_eq!(
        kernel_events(&lines, "connect").len(),
        1,
        "exactly one kernel connect"
    );
    assert_eq!(server.accepted(), 1, "the server saw one connection");

    // The kernel's send bytes of each request equal what the server read.
    let sent: Vec<i64> = (1..=3)
        .map(|n| {
            kernel_events(&lines, "send")
                .iter()
                .filter(|e| e["request"] == n && &e["socket_cookie"] == cookie)
                .map(|e| e["bytes"].as_i64().unwrap())
                .sum()
        })
        .collect();
    let read: Vec<i64> = server.request_bytes().iter().map(|&b| b as i64).collect();
    assert_eq!(sent, read);
}

fn one_connection_per_request(behaviour: Behaviour) {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", behaviour).unwrap();
    let run = tracer(&["trace", &server.url(), "-n", "2", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.json();
    assert_eq!(of_type(&lines, "summary")[0]["verdict"], "new");
    let requests = of_type(&lines, "request");
    assert_ne!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
    assert!(
        requests
            .iter()
            .all(|r| r["reused"] == false && r["kernel_confirmed"] == true)
    );
    assert_eq!(kernel_events(&lines, "connect").len(), 2);
    assert_eq!(server.accepted(), 2);
}

#[test]
fn connection_close_server_gets_a_new_socket_per_request() {
    one_connection_per_request(Behaviour::Close);
}

#[test]
fn http10_server_gets_a_new_socket_per_request() {
    one_connection_per_request(Behaviour::Http10);
}

#[test]
fn expect_exit_codes_follow_the_kernel_verdict() {
    if !kernel_or_skip() {
        return;
    }
    let close = TestServer::start("127.0.0.1:0", Behaviour::Close).unwrap();
    let run = tracer(&["trace", &close.url(), "-n", "2", "--expect", "reuse"]);
    assert_eq!(
        run.code, 3,
        "reuse expected from a close server: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--expect reuse did not hold"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("verdict: request 2 opened a new connection"),
        "timeline still printed"
    );
    assert_eq!(
        tracer(&["trace", &close.url(), "-n", "2", "--expect", "new"]).code,
        0
    );
    let keep = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&["trace", &keep.url(), "-n", "2", "--expect", "reuse"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("verdict: request 2 reused the connection of request 1"),
        "{}",
        run.stdout
    );
}

#[test]
fn ipv6_keep_alive_is_confirmed_too() {
    if !kernel_or_skip() {
        return;
    }
    let Ok(server) = TestServer::start("[::1]:0", Behaviour::KeepAlive) else {
        println!("skipped: no IPv6 loopback");
        return;
    };
    let run = tracer(&[
        "trace",
        &server.url(),
        "-n",
        "2",
        "--format",
        "json",
        "--expect",
        "reuse",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.json();
    let requests = of_type(&lines, "request");
    assert!(
        requests[1]["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("[::1]:")
    );
    assert_eq!(requests[1]["reused_from"], 1);
}

#[test]
fn json_and_chrome_carry_the_contract() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&["trace", &server.url(), "-n", "2", "--format", "json"]);
    let lines = run.json();
    for e in of_type(&lines, "event") {
        for key in [
            "request",
            "source",
            "name",
            "ts_ns",
            "offset_us",
            "socket_cookie",
        ] {
            assert!(e.get(key).is_some(), "event without {key}: {e}");
        }
    }
    let names: Vec<&str> = of_type(&lines, "event")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for n in [
        "GetConn",
        "ConnectStart",
        "ConnectDone",
        "GotConn",
        "WroteRequest",
        "GotFirstResponseByte",
        "PutIdleConn",
        "connect",
        "state",
        "send",
        "recv",
        "close",
    ] {
        assert!(names.contains(&n), "no {n} event in {names:?}");
    }
    for r in of_type(&lines, "request") {
        for key in [
            "method",
            "url",
            "status",
            "local_addr",
            "remote_addr",
            "socket_cookie",
            "reused",
            "kernel_confirmed",
            "phases_us",
        ] {
            assert!(r.get(key).is_some(), "request without {key}: {r}");
        }
        for p in ["dns", "connect", "tls", "server", "transfer", "total"] {
            assert!(r["phases_us"].get(p).is_some(), "phases_us without {p}");
        }
    }
    let chrome = tracer(&["trace", &server.url(), "-n", "2", "--format", "chrome"]);
    assert_eq!(chrome.code, 0);
    let doc: Value = serde_json::from_str(&chrome.stdout).expect("chrome output is JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents");
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "i" && e["name"] == "connect")
    );
    assert!(events.iter().any(|e| e["ph"] == "X"), "phase spans");
}

#[test]
fn refused_connection_prints_the_timeline_and_exits_1() {
    if !kernel_or_skip() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = tracer(&["trace", &format!("http://127.0.0.1:{port}/"), "-n", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("request 1"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("request 2"),
        "stops at the first failure"
    );
    assert!(run.stdout.contains("failed:"), "{}", run.stdout);
    assert!(
        run.stdout.contains("kernel  state SYN_SENT -> CLOSE"),
        "the RST shows: {}",
        run.stdout
    );
}

#[test]
fn reset_mid_response_prints_the_timeline_and_exits_1() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::ResetMidResponse).unwrap();
    let run = tracer(&["trace", &server.url(), "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = run.json();
    let request = of_type(&lines, "request")[0];
    assert!(request["error"].is_string(), "{request}");
    assert!(
        !kernel_events(&lines, "recv").is_empty(),
        "the partial response shows"
    );
}

#[test]
fn no_ebpf_says_what_it_cannot_see() {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&["trace", &server.url(), "-n", "2", "--no-ebpf"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("kernel: not observed (--no-ebpf)"));
    assert!(!run.stdout.contains(" kernel  "), "no kernel lines");
    assert!(
        run.stdout
            .contains("verdict: request 2 reused a connection"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &["trace", "ftp://127.0.0.1/"][..],
        &["trace", "http://127.0.0.1/", "-H", "bad"],
        &["trace", "http://127.0.0.1/", "--format", "xml"],
    ] {
        let run = tracer(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn demo_runs_three_requests_on_one_connection() {
    if !kernel_or_skip() {
        return;
    }
    let run = tracer(&["demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("summary: 3 requests, 1 connection, 2 reused"),
        "{}",
        run.stdout
    );
    // The demo's path is answered in two writes: each reused request stalls.
    for n in [2, 3] {
        let finding = format!("finding: delayed-ack-stall: request {n}, cookie ");
        assert!(run.stdout.contains(&finding), "{}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("2 findings (delayed-ack-stall 2): reused"),
        "{}",
        run.stdout
    );
}
