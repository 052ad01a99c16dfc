//! Credentials stay out of every output: trace redacts the secret headers
//! it sent (and a URL password) unless --show-secrets, and attach prints
//! nothing of a payload beyond the request and status lines.
use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener},
    process::Command,
    time::Duration,
};

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{Proc, attach, can_trace_or_skip, json_lines, of_type},
    tracer_bin::{Run, tracer},
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");
const SECRET: &str = "s3cret";

/// `trace` with secret headers and a URL password, in `format`.
fn trace_with_secrets(server: &TestServer, format: &str, show: bool) -> Run {
    let url = format!("http://user:pw-{SECRET}@{}/", server.addr);
    let mut args = vec![
        "trace",
        &url,
        "--format",
        format,
        "-H",
        "Authorization: Bearer s3cret",
        "-H",
        "proxy-authorization: Basic s3cret",
        "-H",
        "Cookie: id=s3cret",
        "-H",
        "X-Visible: plain",
    ];
    if !can_trace_or_skip() {
        args.push("--no-ebpf");
    }
    if show {
        args.push("--show-secrets");
    }
    let run = tracer(&args);
    assert_eq!(run.code, 0, "{format}: {}", run.stderr);
    run
}

#[test]
fn trace_redacts_secrets_in_text_json_and_chrome() {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    for format in ["text", "json", "chrome"] {
        let run = trace_with_secrets(&server, format, false);
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "{format} leaked a secret: {}{}",
            run.stdout,
            run.stderr
        );
    }
    let text = trace_with_secrets(&server, "text", false).stdout;
    assert!(
        text.contains("  header   Authorization: <redacted>\n"),
        "{text}"
    );
    assert!(text.contains("  header   Cookie: <redacted>\n"), "{text}");
    assert!(text.contains("  header   X-Visible: plain\n"), "{text}");
    assert!(text.contains("http://user:redacted@"), "{text}");

    let json = json_lines(&trace_with_secrets(&server, "json", false).stdout);
    let request = of_type(&json, "request")[0];
    let headers = &request["headers"];
    assert_eq!(headers["Authorization"], "<redacted>", "{request}");
    assert_eq!(headers["proxy-authorization"], "<redacted>", "{request}");
    assert_eq!(headers["Cookie"], "<redacted>", "{request}");
    assert_eq!(headers["X-Visible"], "plain", "{request}");
}

#[test]
fn show_secrets_prints_them() {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let text = trace_with_secrets(&server, "text", true).stdout;
    assert!(
        text.contains("  header   Authorization: Bearer s3cret\n"),
        "{text}"
    );
    assert!(text.contains(&format!("user:pw-{SECRET}@")), "{text}");
    let json = json_lines(&trace_with_secrets(&server, "json", true).stdout);
    let request: &Value = of_type(&json, "request")[0];
    assert_eq!(request["headers"]["Cookie"], "id=s3cret", "{request}");
}

#[test]
fn a_request_without_extra_headers_prints_no_header_lines() {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&["trace", &server.url(), "--no-ebpf"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("  header "), "{}", run.stdout);
    let run = tracer(&["trace", &server.url(), "--no-ebpf", "--format", "json"]);
    let json = json_lines(&run.stdout);
    assert_eq!(
        of_type(&json, "request")[0]["headers"],
        serde_json::json!({})
    );
}

/// A server whose answer sets a cookie, then closes.
fn set_cookie_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut conn = conn;
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: id=s3cret\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            );
        }
    });
    addr
}

#[test]
fn attach_prints_no_header_of_a_plaintext_request_or_response() {
    if !can_trace_or_skip() {
        return;
    }
    let addr = set_cookie_server().to_string();
    for format in ["text", "json", "chrome"] {
        let mut target = Proc::spawn_ready(Command::new(TARGET).args(["secrets", &addr, "/p"]));
        let mut tracer = attach(target.pid(), format);
        target.go_and_succeed();
        let (out, err) = (tracer.exit_0_stdout(), tracer.stderr());
        // The request and its status were reconstructed from the same heads...
        assert!(out.contains("/p/secret"), "{format}: {out}");
        if format == "text" {
            assert!(out.contains("-> 200"), "{out}");
        }
        // ...and nothing else of them is printed.
        for leak in [SECRET, "Authorization", "Cookie"] {
            assert!(
                !out.contains(leak) && !err.contains(leak),
                "{format} leaked {leak}: {out}{err}"
            );
        }
    }
}
