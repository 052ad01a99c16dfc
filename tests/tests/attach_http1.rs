//! attach's HTTP/1 reconstruction against the client's and the server's
//! own view: a 100 Continue is not the final status, each send belongs to
//! the request it carries, a request on an idle keep-alive connection is
//! printed once its response is complete (Content-Length or chunked), and
//! a traced server's inbound requests get their timing.
use std::{process::Command, time::Duration};

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{
        Proc, attach, attach_with, can_trace_or_skip, json_lines, of_type, python_under_attach,
    },
};

fn curl_or_skip() -> bool {
    let ok = Command::new("curl").arg("--version").output().is_ok();
    if !ok {
        println!("skipped: curl not installed");
    }
    ok
}

/// `curl ARGS` that waits for a line first, so the tracer attaches before
/// it connects; returns (tracer JSON lines, curl's stdout).
fn curl_under_attach(args: &str, extra: &[&str]) -> (Vec<serde_json::Value>, String) {
    let script = format!("read go && exec curl -sS {args}");
    let mut curl = Proc::spawn(Command::new("sh").args(["-c", &script])).unwrap();
    let mut tracer = attach_with(curl.pid(), "json", extra);
    curl.go_and_succeed();
    let lines = json_lines(&tracer.exit_0_stdout());
    (lines, curl.stdout())
}

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn a_100_continue_is_not_the_final_status() {
    if !curl_or_skip() || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let file = std::env::temp_dir().join(format!("tracer-continue-{}", std::process::id()));
    std::fs::write(&file, vec![b'x'; 2048]).unwrap();
    // curl 8 sends `Expect: 100-continue` on its own only past 1 MiB.
    let (lines, curl) = curl_under_attach(
        &format!(
            "-o /dev/null -H 'Expect: 100-continue' \
         -w '%{{http_code}} %{{size_upload}} %{{size_header}} %{{size_download}}' \
         --data-binary @{} {}",
            file.display(),
            server.url()
        ),
        &[],
    );
    let _ = std::fs::remove_file(&file);
    println!("curl: {curl}");
    let [code, upload, headers, body] = numbers(&curl)[..] else {
        panic!("curl -w: {curl}")
    };
    assert_eq!(code, 200);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = requests[0];
    println!("tracer: {r}");
    assert_eq!(
        (r["method"].as_str(), r["status"].as_u64()),
        (Some("POST"), Some(200))
    );
    // Head and body, as the server read them, all in the one request;
    // the heads received are the 100's and the 200's, as curl counted them.
    assert_eq!(upload, 2048);
    let read = server.request_bytes();
    assert_eq!(read.len(), 1);
    assert_eq!(r["bytes_sent"].as_u64(), Some(read[0] as u64), "{r}");
    assert_eq!(r["bytes_received"].as_u64(), Some(headers + body), "{r}");
    assert!(headers > 25 + 17, "no 100 Continue came: {curl}");
}

#[test]
fn each_send_belongs_to_the_request_it_carries() {
    if !curl_or_skip() || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let (a, b) = (format!("{}a", server.url()), format!("{}b", server.url()));
    let (lines, curl) = curl_under_attach(
        &format!("-o /dev/null -o /dev/null -w '%{{size_request}}\\n' {a} {b}"),
        &["--events"],
    );
    let sizes = numbers(&curl);
    println!("curl request sizes: {sizes:?}");
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 2, "{requests:?}");
    let sends: Vec<(u64, Option<u64>)> = of_type(&lines, "event")
        .into_iter()
        .filter(|e| e["name"] == "send")
        .map(|e| (e["bytes"].as_u64().unwrap_or(0), e["request"].as_u64()))
        .collect();
    println!("sends (bytes, request): {sends:?}");
    for (i, r) in requests.iter().enumerate() {
        let n = r["request"].as_u64();
        let carried: u64 = sends.iter().filter(|s| s.1 == n).map(|s| s.0).sum();
        assert_eq!(Some(carried), r["bytes_sent"].as_u64(), "{r}");
        assert_eq!(carried, sizes[i], "request {n:?}: sends {sends:?}");
    }
    assert!(sends.iter().all(|s| s.1.is_some()), "{sends:?}");
}

/// A Python client makes one request, reads the response and keeps the
/// connection open: the request is printed while it is still open.
fn idle_keepalive(behaviour: Behaviour) {
    let server = TestServer::start("127.0.0.1:0", behaviour).unwrap();
    let code = format!(
        "import http.client, sys\n\
         sys.stdin.readline()\n\
         c = http.client.HTTPConnection('127.0.0.1', {})\n\
         c.request('GET', '/idle')\n\
         r = c.getresponse()\n\
         body = r.read()\n\
         print('done', r.status, len(body), flush=True)\n\
         sys.stdin.readline()\n",
        server.addr.port()
    );
    let (mut client, mut tracer) = python_under_attach(&code, "text");
    let printed = tracer.wait_for("request 1  GET", false, Duration::from_secs(3));
    let before_close = tracer.stdout();
    client.close_stdin();
    let _ = client.wait_exit(Duration::from_secs(10));
    let out = tracer.exit_0_stdout();
    println!("client: {}{}", client.stdout(), out);
    assert!(
        printed,
        "not printed while the connection was open: {before_close}"
    );
    assert!(!before_close.contains(" close "), "{before_close}");
    let line = out.lines().find(|l| l.starts_with("request 1 ")).unwrap();
    assert!(line.contains("/idle -> 200"), "{line}");
}

#[test]
fn idle_keepalive_request_printed_once_content_length_is_met() {
    if !can_trace_or_skip() {
        return;
    }
    idle_keepalive(Behaviour::KeepAlive);
}

#[test]
fn idle_keepalive_request_printed_once_the_last_chunk_is_read() {
    if !can_trace_or_skip() {
        return;
    }
    idle_keepalive(Behaviour::Chunked);
}

/// The tracer attaches to this test process, whose server answers curl
/// with half a 64 KiB body, sleeps 100 ms, then the other half.
#[test]
fn a_traced_server_times_its_inbound_requests() {
    if !curl_or_skip() || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::SlowChunks).unwrap();
    let mut tracer = attach(std::process::id(), "json");
    let curl = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{time_starttransfer} %{time_total}",
        ])
        .arg(server.url())
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&curl.stdout).to_string();
    let times: Vec<f64> = seen
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(tracer.wait_for("\"type\":\"request\"", false, Duration::from_secs(5)));
    let _ = tracer.child.kill();
    let lines = json_lines(&tracer.stdout());
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = requests[0];
    println!("curl (s): {seen}\ntracer: {r}");
    assert_eq!(r["direction"], "inbound", "{r}");
    assert_eq!(r["status"], 200, "{r}");
    let (server_us, total_us) = (
        r["phases_us"]["server"].as_u64().unwrap_or(0),
        r["phases_us"]["total"].as_u64().unwrap_or(0),
    );
    // The last byte left at least 100 ms after the first, and neither
    // later than curl saw it.
    assert!(total_us >= 100_000, "{r}");
    assert!(total_us >= server_us + 100_000, "{r}");
    assert!((total_us as f64) < times[1] * 1e6, "{r} vs curl {seen}");
    assert!((server_us as f64) < times[0] * 1e6, "{r} vs curl {seen}");
    assert_eq!(r["bytes_sent"].as_u64(), Some(42 + 64 * 1024), "{r}");
}
