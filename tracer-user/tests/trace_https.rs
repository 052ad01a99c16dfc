//! `tracer trace https://...` end to end: the TLS phase is measured and the
//! reuse verdict holds over TLS, with real probes.
mod support;

use std::process::Command;

use serde_json::Value;
use support::tls::TestCa;

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
    let args: Vec<String> = [
        "trace", &url, "-n", "2", "--cacert", &ca_file, "--format", "json", "--expect", "reuse",
    ]
    .map(String::from)
    .to_vec();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tracer"))
            .args(args)
            .output()
    })
    .await
    .expect("join")
    .expect("tracer runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
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
