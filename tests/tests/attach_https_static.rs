//! attach on an HTTPS client that links OpenSSL in statically (built by
//! the test from tests/c/https_client.c with `cc` and Debian's libssl.a):
//! the uprobes find SSL_write/SSL_read by symbol in its executable. The
//! same program stripped has no symbols: it is named, not read.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tracer_tests::{
    process::{Proc, attach, json_lines, of_type, url_status_reused},
    tls_server::{TlsServer, can_run_or_skip},
};

/// Whether the compiler finds `libssl.a` (it answers a bare name when
/// not); prints why not.
fn static_libssl_or_skip() -> bool {
    let found = Command::new("cc")
        .arg("-print-file-name=libssl.a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !Path::new(&found).is_absolute() {
        println!("skipped: no libssl.a (apt-get install libssl-dev)");
        return false;
    }
    true
}

/// Builds the client into `dir`, OpenSSL linked in, libc shared.
fn build_client(dir: &Path, stripped: bool) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/https_client.c");
    let bin = dir.join(if stripped {
        "client-stripped"
    } else {
        "client"
    });
    let built = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&bin)
        .arg(&source)
        .args(["-l:libssl.a", "-l:libcrypto.a"])
        .output()
        .expect("cc runs");
    assert!(built.status.success(), "{built:?}");
    if stripped {
        let strip = Command::new("strip")
            .arg(&bin)
            .output()
            .expect("strip runs");
        assert!(strip.status.success(), "{strip:?}");
    }
    bin
}

fn ready_or_skip() -> bool {
    if !can_run_or_skip() {
        return false;
    }
    if Command::new("cc").arg("--version").output().is_err() {
        println!("skipped: no cc");
        return false;
    }
    static_libssl_or_skip()
}

#[test]
fn static_openssl_client_two_requests_on_one_connection() {
    if !ready_or_skip() {
        return;
    }
    let server = TlsServer::start("static");
    let client = build_client(&server.dir, false);
    let port = server.port.to_string();
    let mut proc = Proc::spawn_ready(Command::new(&client).args([&port, "/s1", "/s2"]));
    // check --pid names the executable as OpenSSL found by symbol.
    let check = Command::new(tracer_tests::tracer_bin::tracer_bin())
        .args(["check", "--pid", &proc.pid().to_string()])
        .output()
        .unwrap();
    let check = String::from_utf8_lossy(&check.stdout).to_string();
    println!("{check}");
    assert!(
        check
            .lines()
            .any(|l| l.contains("(linked in, found by symbol)")
                && l.contains("readable: SSL_read/SSL_write probed")),
        "{check}"
    );
    let mut tracer = attach(proc.pid(), "json");
    proc.go_and_succeed();
    let out = tracer.exit_0_stdout();
    let err = tracer.stderr();
    println!("{out}\n{err}\nclient: {}", proc.stdout());
    assert!(
        err.contains("(linked in, by symbol)") || out.contains("(linked in, by symbol)"),
        "{err}"
    );
    assert_eq!(server.log(), ["GET /s1", "GET /s2"]);
    let lines = json_lines(&out);
    let requests = of_type(&lines, "request");
    let base = format!("https://127.0.0.1:{port}");
    let got = url_status_reused(&requests);
    let (s1, s2) = (format!("{base}/s1"), format!("{base}/s2"));
    assert_eq!(
        got,
        [
            (s1.as_str(), Some(200), Some(false)),
            (s2.as_str(), Some(200), Some(true)),
        ]
    );
    assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
    // The client sends a bearer token; only request line, Host and status
    // are printed.
    assert!(!out.contains("s3cret") && !err.contains("s3cret"), "{out}");
}

#[test]
fn a_stripped_static_openssl_is_named_not_read() {
    if !ready_or_skip() {
        return;
    }
    let server = TlsServer::start("stripped");
    let client = build_client(&server.dir, true);
    let port = server.port.to_string();
    let mut proc = Proc::spawn_ready(Command::new(&client).args([&port, "/x1", "/x2"]));
    let mut tracer = attach(proc.pid(), "text");
    proc.go_and_succeed();
    let out = tracer.exit_0_stdout();
    println!("{out}");
    assert_eq!(server.log(), ["GET /x1", "GET /x2"]);
    assert!(
        out.contains("links OpenSSL in without symbols (stripped): no probe"),
        "{out}"
    );
    let conn = tracer_tests::process::first_conn_line(&out);
    assert!(
        conn.contains("0 requests")
            && conn.contains("encrypted: no probe for this TLS library, tls 1.3, handshake "),
        "{conn}"
    );
}
