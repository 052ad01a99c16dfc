//! What the running kernel allows, checked with the real binary: the tests
//! that `cargo xtask test` runs inside each guest kernel of its matrix
//! (Linux 6.1 in a virtme-ng guest) and on the host. Each asserts what this
//! kernel must give: on a kernel without the send/recv byte tracepoints
//! (before 6.3), lifecycle events that still prove reuse, and one plain note
//! for what is missing; on a newer one, everything.
use std::{process::Command, time::Duration};

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{Proc, attach_with, can_trace_or_skip, json_lines, of_type},
    tracer_bin::tracer,
};

/// True when this kernel lacks the send/recv byte tracepoints.
fn lifecycle_only() -> bool {
    tracer_user::preflight::run()
        .skip_programs
        .contains(&"tracer_send")
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn check_exits_0_and_names_what_this_kernel_lacks() {
    if !can_trace_or_skip() {
        return;
    }
    let run = tracer(&["check"]);
    println!("kernel {}: tracer check\n{}", kernel_release(), run.stdout);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("probes load+attach"), "{}", run.stdout);
    if lifecycle_only() {
        assert!(
            run.stdout
                .contains("verdict: tracing works here, degraded: left out tracer_send"),
            "{}",
            run.stdout
        );
    } else {
        assert!(
            run.stdout
                .contains("verdict: tracing works here (all probes loaded and attached)"),
            "{}",
            run.stdout
        );
    }
}

/// `check --pid` on a Python that has imported `ssl`: its libssl is listed
/// as readable, which takes loading and attaching the OpenSSL uprobes on
/// this kernel (they load on 6.1 too, where attach cannot join them yet).
#[test]
fn check_pid_lists_libssl_and_loads_the_openssl_probes() {
    if !can_trace_or_skip() {
        return;
    }
    let code = "import ssl, sys; print('ready', flush=True); sys.stdin.readline()";
    let python = Proc::spawn_ready(Command::new("python3").args(["-c", code]));
    let run = tracer(&["check", "--pid", &python.pid().to_string()]);
    println!(
        "kernel {}: tracer check --pid\n{}",
        kernel_release(),
        run.stdout
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| {
            l.trim_start().starts_with("OpenSSL ")
                && l.contains("libssl.so.")
                && l.contains("(mapped)")
        })
        .unwrap_or_else(|| panic!("no mapped libssl listed: {}", run.stdout));
    assert!(
        line.ends_with("readable: SSL_read/SSL_write probed"),
        "{line}"
    );
}

#[test]
fn trace_three_requests_reuse_is_confirmed_by_the_kernel() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&[
        "trace",
        &server.url(),
        "-n",
        "3",
        "--expect",
        "reuse",
        "--format",
        "json",
    ]);
    println!(
        "kernel {}: tracer trace -n 3 exit {}\n{}",
        kernel_release(),
        run.code,
        run.stderr
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.accepted(), 1, "the server accepted one connection");
    let lines = json_lines(&run.stdout);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 3);
    for r in &requests[1..] {
        assert_eq!(r["reused"], true, "{r}");
        assert_eq!(r["kernel_confirmed"], true, "{r}");
        assert_eq!(r["socket_cookie"], requests[0]["socket_cookie"], "{r}");
    }
    let summary = of_type(&lines, "summary")[0];
    println!("summary: {summary}");
    assert_eq!(summary["verdict"], "reused", "{summary}");
    assert_eq!(summary["connections"], 1, "{summary}");
    assert_eq!(summary["lost_events"], 0, "{summary}");
    let kernel_names: Vec<&str> = of_type(&lines, "event")
        .iter()
        .filter(|e| e["source"] == "kernel")
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        kernel_names.iter().filter(|n| **n == "connect").count(),
        1,
        "one connect: {kernel_names:?}"
    );
    let io = kernel_names.iter().any(|n| *n == "send" || *n == "recv");
    if lifecycle_only() {
        assert!(!io, "no send/recv tracepoint, yet: {kernel_names:?}");
        for what in ["no send bytes", "no recv bytes"] {
            assert_eq!(
                run.stderr.matches(what).count(),
                1,
                "said once: {what}: {}",
                run.stderr
            );
        }
    } else {
        assert!(io, "send/recv events: {kernel_names:?}");
        assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    }
}

/// A Python client: waits for a line, then three GETs on one keep-alive
/// connection (http.client), each body read to its end.
const PYTHON_CLIENT: &str = "import http.client, sys
sys.stdin.readline()
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
for i in range(3):
    c.request('GET', '/py/%d' % i)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
c.close()
";

#[test]
fn attach_on_a_python_client_shows_its_connection_and_states() {
    if Command::new("python3").arg("--version").output().is_err() {
        println!("skipped: python3 not installed");
        return;
    }
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let (host, port) = (server.addr.ip().to_string(), server.addr.port().to_string());
    let mut client =
        Proc::spawn(Command::new("python3").args(["-c", PYTHON_CLIENT, &host, &port])).unwrap();
    // Python starts slowly under an emulated CPU: attach once it is up.
    std::thread::sleep(Duration::from_millis(300));
    let mut tracer = attach_with(client.pid(), "json", &["--events"]);
    client.go_and_succeed();
    let out = tracer.exit_0_stdout();
    let err = tracer.stderr();
    println!(
        "kernel {}: tracer attach on python3\n{err}",
        kernel_release()
    );
    assert_eq!(server.accepted(), 1, "one connection");
    let lines = json_lines(&out);
    let kernel: Vec<&serde_json::Value> = of_type(&lines, "event")
        .into_iter()
        .filter(|e| e["source"] == "kernel")
        .collect();
    let names: Vec<&str> = kernel.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "connect").count(),
        1,
        "{names:?}"
    );
    assert!(names.contains(&"state"), "{names:?}");
    assert!(names.contains(&"close"), "{names:?}");
    let summary = of_type(&lines, "summary")[0];
    println!("summary: {summary}");
    assert_eq!(summary["connections"], 1, "{summary}");
    let requests = of_type(&lines, "request");
    let conn = &summary["per_connection"][0];
    assert_eq!(conn["closed"], true, "{conn}");
    if lifecycle_only() {
        // Requests and bytes come from the send/recv hooks: without them
        // they are unknown (null), never 0, and a note says why once.
        assert!(requests.is_empty(), "{requests:?}");
        assert_eq!(summary["verdict"], "unknown", "{summary}");
        assert!(summary["requests"].is_null(), "{summary}");
        assert!(
            conn["bytes_sent"].is_null() && conn["requests"].is_null(),
            "{conn}"
        );
        assert_eq!(err.matches("no send bytes").count(), 1, "{err}");
        assert_eq!(err.matches("no recv bytes").count(), 1, "{err}");
    } else {
        assert_eq!(requests.len(), 3, "{requests:?}");
        assert!(requests.iter().all(|r| r["status"] == 200));
        assert_eq!(summary["verdict"], "reused", "{summary}");
        assert_eq!(conn["requests"], 3, "{conn}");
    }
}
