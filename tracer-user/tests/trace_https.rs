//! `tracer trace https://...` end to end: the TLS phase is measured and the
//! reuse verdict holds over TLS, with real probes.
mod support;

use std::process::Command;

use std::time::Duration;

use serde_json::Value;
use support::tls::TestCa;

/// Runs the real `tracer` binary and parses its JSON lines.
async fn trace_json(args: Vec<String>) -> (Option<i32>, Vec<Value>, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tracer"))
            .args(args)
            .output()
    })
    .await
    .expect("join")
    .expect("tracer runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), lines, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_keep_alive_has_a_tls_phase_and_is_reused() {
    let report = tracer_user::preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
        return;
    }
    let ca = TestCa::new();
    let server = ca.server(&["http/1.1"]).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let ca_file = ca.ca_file.to_string_lossy().into_owned();
    let args = [
        "trace", &url, "-n", "2", "--cacert", &ca_file, "--format", "json", "--expect", "reuse",
    ];
    let (code, lines, text) = trace_json(args.map(String::from).to_vec()).await;
    assert_eq!(code, Some(0), "{text}");
    let requests: Vec<&Value> = lines.iter().filter(|v| v["type"] == "request").collect();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[0]["phases_us"]["tls"].as_u64().is_some(),
        "first request has a TLS phase: {}",
        requests[0]
    );
    assert!(
        requests[1]["phases_us"]["tls"].is_null(),
        "a reused connection has no handshake"
    );
    assert_eq!(requests[1]["reused"], true);
    assert_eq!(requests[1]["kernel_confirmed"], true);
    assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
    assert!(lines.iter().any(|v| v["name"] == "TLSHandshakeDone"));
    assert_eq!(server.accepted(), 1);
}

/// A TLS server that waits 50 ms before it answers: the wait is the server
/// phase of every request, the first (new connection, handshake, TLS 1.3
/// session tickets before the answer) as much as the reused one.
async fn server_wait_is_the_server_phase(alpn: &str, http_flag: &str) {
    let report = tracer_user::preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
        return;
    }
    let ca = TestCa::new();
    let server = ca.slow_server(&[alpn], Duration::from_millis(50)).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let ca_file = ca.ca_file.to_string_lossy().into_owned();
    let args = [
        "trace", &url, "-n", "2", "--cacert", &ca_file, "--format", "json", http_flag,
    ];
    let (code, lines, text) = trace_json(args.map(String::from).to_vec()).await;
    assert_eq!(code, Some(0), "{text}");
    let requests: Vec<&Value> = lines.iter().filter(|v| v["type"] == "request").collect();
    assert_eq!(requests.len(), 2, "{text}");
    for r in &requests {
        let n = &r["request"];
        let server_us = r["phases_us"]["server"].as_u64().expect("server phase");
        let transfer_us = r["phases_us"]["transfer"].as_u64().expect("transfer phase");
        println!("{alpn} request {n}: server {server_us} us, transfer {transfer_us} us");
        assert!(
            server_us >= 50_000,
            "request {n} server {server_us} us: {r}"
        );
        assert!(
            transfer_us < 50_000,
            "request {n} transfer {transfer_us} us: {r}"
        );
        let client_hook = |name: &str| {
            lines.iter().any(|v| {
                v["type"] == "event"
                    && &v["request"] == n
                    && v["source"] == "client"
                    && v["name"] == name
            })
        };
        for hook in ["WroteHeaders", "WroteRequest", "GotFirstResponseByte"] {
            assert!(
                client_hook(hook),
                "request {n} has no client {hook}: {text}"
            );
        }
    }
    let kernel_derived = lines
        .iter()
        .any(|v| v["source"] == "kernel" && v["name"] == "GotFirstResponseByte");
    assert!(
        !kernel_derived,
        "no first-byte guess from TLS records: {text}"
    );
    assert_eq!(requests[1]["reused"], true);
    assert_eq!(server.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_wait_is_the_server_phase_on_http1() {
    server_wait_is_the_server_phase("http/1.1", "--http1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_wait_is_the_server_phase_on_h2() {
    server_wait_is_the_server_phase("h2", "--http2").await;
}

/// A TLS server that writes head and body apart with Nagle on: the stall
/// behind the client's delayed ACK is named on the reused request, though
/// the kernel sees only TLS records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_head_and_body_in_two_writes_raise_delayed_ack_stall() {
    let report = tracer_user::preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
        return;
    }
    let ca = TestCa::new();
    let server = ca.split_server().await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let ca_file = ca.ca_file.to_string_lossy().into_owned();
    let args = [
        "trace", &url, "-n", "2", "--cacert", &ca_file, "--format", "json",
    ];
    let (code, lines, text) = trace_json(args.map(String::from).to_vec()).await;
    assert_eq!(code, Some(0), "{text}");
    let stalls: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "finding" && v["kind"] == "delayed-ack-stall")
        .collect();
    // Request 1 may stall too: the handshake used up TCP's quick ACKs.
    let stalled: Vec<&Value> = stalls.iter().map(|s| &s["request"]).collect();
    println!("stalled requests: {stalled:?}");
    assert!(stalled.contains(&&Value::from(2)), "{text}");
    for stall in &stalls {
        let stall_us = stall["evidence"]["stall_us"].as_i64().expect("stall_us");
        assert!((35_000..=250_000).contains(&stall_us), "{stall}");
        let request = lines
            .iter()
            .find(|v| v["type"] == "request" && v["request"] == stall["request"])
            .expect("its request line");
        let transfer_us = request["phases_us"]["transfer"].as_i64().expect("transfer");
        assert!(
            transfer_us >= stall_us,
            "the stall is in the transfer: {request}"
        );
    }
}

/// The command line says how to get past a certificate it cannot trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_with_how_to_trust_it() {
    let ca = TestCa::new();
    let server = ca.server(&["http/1.1"]).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let args = ["trace", &url, "--no-ebpf", "--format", "json"];
    let (code, lines, text) = trace_json(args.map(String::from).to_vec()).await;
    assert_eq!(code, Some(1), "{text}");
    let request = lines
        .iter()
        .find(|v| v["type"] == "request")
        .expect("the request line");
    let error = request["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("certificate")
            && error.contains("--cacert FILE")
            && error.contains("--insecure"),
        "{request}"
    );
}
