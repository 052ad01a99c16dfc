//! `--tls-plaintext off`: no uprobe reads TLS plaintext, so no request is
//! claimed from it; the connection, its bytes and its handshake stay, from
//! the send/recv hooks alone. `check --pid` says the probes are off.
use std::process::Command;

use tracer_tests::{
    process::{Proc, attach_with, first_conn_line},
    tls_server::{TlsServer, can_run_or_skip},
};

/// The number before `unit` in a conn line ("1234 B out").
fn figure(line: &str, unit: &str) -> u64 {
    let before = &line[..line.find(unit).unwrap_or_else(|| panic!("{unit}: {line}"))];
    before
        .split_whitespace()
        .last()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{unit}: {line}"))
}

#[test]
fn curl_https_under_the_switch_shows_bytes_and_handshake_but_no_request() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("switch");
    let base = format!("https://127.0.0.1:{}", server.port);
    let script = format!(
        "read go && exec curl -sSk -o /dev/null -o /dev/null \
         -w '%{{size_request}} %{{size_header}} %{{size_download}}\\n' {base}/s1 {base}/s2"
    );
    let mut curl = Proc::spawn(Command::new("sh").args(["-c", &script])).unwrap();
    let mut tracer = attach_with(curl.pid(), "text", &["--tls-plaintext", "off"]);
    curl.go_and_succeed();
    let out = tracer.exit_0_stdout();
    println!("{out}\ncurl: {}", curl.stdout());
    assert_eq!(server.log(), ["GET /s1", "GET /s2"]);
    assert!(
        out.contains("https: TLS plaintext probes off (--tls-plaintext off)"),
        "{out}"
    );
    assert!(
        !out.contains("https: OpenSSL") && !out.contains("probes cost"),
        "{out}"
    );
    // No request line: nothing is read from the plaintext.
    assert!(!out.contains("/s1") && !out.contains("/s2"), "{out}");
    let conn = first_conn_line(&out);
    assert!(conn.contains(" 0 requests, "), "{conn}");
    assert!(
        conn.contains("encrypted: TLS plaintext probes off, tls 1.3, handshake "),
        "{conn}"
    );
    // The wire's bytes: TLS records, more than the plaintext curl counts.
    let sizes: Vec<u64> = curl
        .stdout()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(sizes.len(), 6, "curl -w: {sizes:?}");
    let (sent, received) = (
        sizes[0] + sizes[3],
        sizes[1] + sizes[2] + sizes[4] + sizes[5],
    );
    assert!(figure(conn, " B out") > sent, "{conn} vs {sent}");
    assert!(figure(conn, " B in") > received, "{conn} vs {received}");
}

/// `check --pid` on a process that maps libssl: readable by default, and
/// said to be off, with nothing attached, under the switch.
#[test]
fn check_pid_says_the_plaintext_probes_are_off() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("switch-check");
    let pid = server.proc.pid().to_string();
    let check = |extra: &[&str]| {
        let out = Command::new(tracer_tests::tracer_bin::tracer_bin())
            .args(["check", "--pid", &pid])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        println!("{text}");
        assert_eq!(out.status.code(), Some(0), "{text}");
        let ssl: Vec<String> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("OpenSSL "))
            .map(str::to_string)
            .collect();
        assert!(!ssl.is_empty(), "{text}");
        ssl
    };
    let on = check(&[]);
    assert!(on.iter().any(|l| l.contains("  readable: ")), "{on:?}");
    let off = check(&["--tls-plaintext", "off"]);
    assert!(
        off.iter().all(|l| l.ends_with(
            "not read: TLS plaintext probes off (--tls-plaintext off); bytes, timing and handshakes only"
        )),
        "{off:?}"
    );
}
