//! HTTPS through GnuTLS: Debian's wget (it links libgnutls30) under `run`,
//! its requests read from the plaintext by uprobes on
//! gnutls_record_send/gnutls_record_recv, against a loopback TLS server's
//! own request log; and `check --pid` naming GnuTLS as readable.
use std::process::Command;

use tracer_tests::{
    process::{json_lines_among, of_type, url_status_reused},
    tls_server::{TlsServer, can_run_or_skip},
    tracer_bin::tracer_bin,
};

fn have_wget_or_skip() -> bool {
    let ok = Command::new("wget").arg("--version").output().is_ok();
    if !ok {
        println!("skipped: wget not installed");
    }
    ok
}

#[test]
fn run_wget_https_two_urls_read_through_gnutls() {
    if !can_run_or_skip() || !have_wget_or_skip() {
        return;
    }
    let server = TlsServer::start("gnutls");
    // The certificate names localhost: wget checks it, as a user's would.
    let base = format!("https://localhost:{}", server.port);
    let (a, b) = (format!("{base}/g1"), format!("{base}/g2"));
    let ca = format!("--ca-certificate={}", server.dir.join("c.pem").display());
    let out = Command::new(tracer_bin())
        .args([
            "run",
            "--format",
            "json",
            "--",
            "wget",
            "-q",
            "-O",
            "/dev/null",
        ])
        .args([&ca, &a, &b])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(server.log(), ["GET /g1", "GET /g2"]);
    assert!(
        stderr.contains("https: GnuTLS gnutls_record_send/gnutls_record_recv probed in"),
        "{stderr}"
    );
    let lines = json_lines_among(&stderr);
    let requests = of_type(&lines, "request");
    assert_eq!(
        url_status_reused(&requests),
        [
            (a.as_str(), Some(200), Some(false)),
            (b.as_str(), Some(200), Some(true)),
        ]
    );
    // The body is "hello /g1": each response read holds it and a head.
    for r in &requests {
        assert!(r["bytes_received"].as_u64().unwrap() > 9, "{r}");
    }
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["connections"], 1, "{summary}");
    let conn = &summary["per_connection"][0];
    assert_eq!(
        (conn["encrypted"].as_bool(), conn["plaintext"].as_bool()),
        (Some(true), Some(true)),
        "{conn}"
    );
}

/// Any process with a libgnutls under its root: `check --pid` attaches
/// the GnuTLS probes to prove them, and says so.
#[test]
fn check_pid_lists_gnutls_as_readable() {
    if !can_run_or_skip() || !have_wget_or_skip() {
        return;
    }
    let server = TlsServer::start("gnutls-check");
    let out = Command::new(tracer_bin())
        .args(["check", "--pid", &server.proc.pid().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    let gnutls: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("GnuTLS "))
        .collect();
    assert!(!gnutls.is_empty(), "{text}");
    assert!(
        gnutls.iter().all(|l| l.contains("libgnutls.so.")
            && l.ends_with("readable: gnutls_record_send/gnutls_record_recv probed")),
        "{gnutls:?}"
    );
}
