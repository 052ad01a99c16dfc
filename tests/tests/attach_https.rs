//! attach on HTTPS clients that link OpenSSL 3 (Debian's curl, Python's
//! ssl): their requests, read from the plaintext by uprobes on
//! SSL_write/SSL_read, against a loopback TLS server's own request log.
use std::{process::Command, time::Duration};

use tracer_tests::{
    process::{Proc, attach, json_lines, of_type, python_under_attach, url_status_reused},
    tls_server::{TlsServer, can_run_or_skip},
};

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn curl_https_two_urls_on_one_connection() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("curl");
    let base = format!("https://127.0.0.1:{}", server.port);
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    // The shell waits for a line, then becomes curl: same pid, attached
    // before curl maps libssl (the probes sit on the file).
    let script = format!(
        "read go && exec curl -sSk -o /dev/null -o /dev/null \
         -w '%{{size_request}} %{{size_header}} %{{size_download}}\\n' {a} {b}"
    );
    let mut curl = Proc::spawn(Command::new("sh").args(["-c", &script])).unwrap();
    let mut tracer = attach(curl.pid(), "json");
    curl.go_and_succeed();
    let out = tracer.exit_0_stdout();
    println!("{out}\ncurl: {}", curl.stdout());
    let lines = json_lines(&out);
    assert_eq!(server.log(), ["GET /a", "GET /b"]);
    let requests = of_type(&lines, "request");
    let urls: Vec<&str> = requests.iter().filter_map(|r| r["url"].as_str()).collect();
    assert_eq!(urls, [a.as_str(), b.as_str()]);
    assert!(requests.iter().all(|r| r["status"] == 200));
    assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
    let reused: Vec<_> = requests.iter().map(|r| r["reused"].as_bool()).collect();
    assert_eq!(reused, [Some(false), Some(true)]);
    // A request's bytes are the plaintext HTTP's, as curl counts them.
    let sizes = numbers(&curl.stdout());
    for (i, r) in requests.iter().enumerate() {
        let [sent, headers, body] = sizes[3 * i..3 * i + 3] else {
            panic!("curl -w: {sizes:?}")
        };
        assert_eq!(r["bytes_sent"].as_u64(), Some(sent), "{r}");
        assert_eq!(r["bytes_received"].as_u64(), Some(headers + body), "{r}");
    }
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["connections"], 1, "{summary}");
    let conn = &summary["per_connection"][0];
    assert_eq!(
        (conn["encrypted"].as_bool(), conn["plaintext"].as_bool()),
        (Some(true), Some(true))
    );
    // The connection's bytes are the wire's: TLS records, more than the
    // plaintext (handshake, record headers, tags).
    let plain: u64 = requests
        .iter()
        .filter_map(|r| r["bytes_sent"].as_u64())
        .sum();
    assert!(conn["bytes_sent"].as_u64().unwrap() > plain, "{conn}");
}

#[test]
fn python_http_client_https_three_requests() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("python");
    // In double quotes for sh: no double quote or dollar inside.
    let code = format!(
        "import http.client, ssl, sys\n\
         sys.stdin.readline()\n\
         c = http.client.HTTPSConnection('127.0.0.1', {}, context=ssl._create_unverified_context())\n\
         for p in ['/one', '/two', '/three']:\n    \
             c.request('GET', p)\n    \
             r = c.getresponse()\n    \
             r.read()\n\
         print('done', flush=True)\n\
         c.close()\n\
         sys.stdin.readline()\n",
        server.port
    );
    let (mut client, mut tracer) = python_under_attach(&code, "json");
    client.close_stdin();
    let _ = client.wait_exit(Duration::from_secs(10));
    let out = tracer.exit_0_stdout();
    println!("{out}");
    let lines = json_lines(&out);
    assert_eq!(server.log(), ["GET /one", "GET /two", "GET /three"]);
    let requests = of_type(&lines, "request");
    let got = url_status_reused(&requests);
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", server.port);
    let (one, two, three) = (url("/one"), url("/two"), url("/three"));
    assert_eq!(
        got,
        [
            (one.as_str(), Some(200), Some(false)),
            (two.as_str(), Some(200), Some(true)),
            (three.as_str(), Some(200), Some(true)),
        ]
    );
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["connections"], 1, "{summary}");
    assert_eq!(summary["per_connection"][0]["plaintext"], true, "{summary}");
}

/// A TLS library without a probe (rustls, inside `tracer trace`): its
/// connection is shown as encrypted, per connection, and no request is
/// made up from its records; its handshake is timed all the same.
#[test]
fn a_tls_library_without_a_probe_is_named_per_connection() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("rustls");
    let bin = tracer_tests::tracer_bin::tracer_bin();
    let script = format!(
        "read go && exec {} trace --no-ebpf --insecure https://127.0.0.1:{}/rustls",
        bin.display(),
        server.port
    );
    let mut client = Proc::spawn(Command::new("sh").args(["-c", &script])).unwrap();
    let mut tracer = attach(client.pid(), "text");
    client.go_and_succeed();
    let out = tracer.exit_0_stdout();
    println!("{out}");
    assert_eq!(server.log(), ["GET /rustls"]);
    assert!(
        out.contains("https: OpenSSL SSL_read/SSL_write probed in"),
        "{out}"
    );
    let conn = tracer_tests::process::first_conn_line(&out);
    // Its handshake is still read from the kernel's bytes.
    assert!(
        conn.contains("0 requests")
            && conn.contains("encrypted: no probe for this TLS library, tls 1.3, handshake ")
            && conn.ends_with(" ms, resumed: no"),
        "{conn}"
    );
}

/// Traced on the server side: the requests the TLS server read, inbound,
/// with the paths its own log has.
#[test]
fn a_tls_server_shows_its_inbound_requests() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("server");
    let mut tracer = attach(server.proc.pid(), "json");
    let base = format!("https://127.0.0.1:{}", server.port);
    let curl = Command::new("curl")
        .args(["-sSk", "-o", "/dev/null", "-o", "/dev/null"])
        .args([format!("{base}/in1"), format!("{base}/in2")])
        .output()
        .unwrap();
    assert!(curl.status.success(), "{curl:?}");
    let found = tracer.wait_for("/in2\"", false, Duration::from_secs(5));
    let _ = tracer.child.kill();
    let lines = json_lines(&tracer.stdout());
    assert!(found, "{lines:?}");
    assert_eq!(server.log(), ["GET /in1", "GET /in2"]);
    let requests = of_type(&lines, "request");
    let got: Vec<(&str, &str, Option<u64>)> = requests
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap_or(""),
                r["url"].as_str().unwrap_or(""),
                r["status"].as_u64(),
            )
        })
        .collect();
    let (in1, in2) = (format!("{base}/in1"), format!("{base}/in2"));
    assert_eq!(
        got,
        [
            ("inbound", in1.as_str(), Some(200)),
            ("inbound", in2.as_str(), Some(200)),
        ]
    );
    assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
}

/// A client that reads 100 bytes per `SSL_read`: OpenSSL reads each
/// record (up to 16 KiB) from the socket once and serves the rest of it
/// from its buffer, without a syscall. Those reads still count, through
/// the `SSL*`'s last socket: the request has every byte the client read.
#[test]
fn reads_served_from_openssls_buffer_still_count() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("buffered");
    // In double quotes for sh: no double quote or dollar inside.
    let code = format!(
        "import socket, ssl, sys\n\
         sys.stdin.readline()\n\
         s = ssl._create_unverified_context().wrap_socket(socket.create_connection(('127.0.0.1', {})))\n\
         s.sendall(b'GET /big HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n\
         got = b''\n\
         while b'\\r\\n\\r\\n' not in got:\n    \
             got += s.recv(100)\n\
         head, _, body = got.partition(b'\\r\\n\\r\\n')\n\
         n = [int(l.split(b':')[1]) for l in head.split(b'\\r\\n') if l.lower().startswith(b'content-length')][0]\n\
         while len(body) < n:\n    \
             body += s.recv(100)\n\
         print('done', len(head) + 4 + len(body), flush=True)\n\
         s.close()\n\
         sys.stdin.readline()\n",
        server.port
    );
    let (mut client, mut tracer) = python_under_attach(&code, "json");
    client.close_stdin();
    let _ = client.wait_exit(Duration::from_secs(10));
    let out = tracer.exit_0_stdout();
    println!("{out}\nclient: {}", client.stdout());
    let read: u64 = numbers(&client.stdout())[0];
    assert!(read > 20000, "{read}");
    let lines = json_lines(&out);
    assert_eq!(server.log(), ["GET /big"]);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = requests[0];
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["bytes_received"].as_u64(), Some(read), "{r}");
}

/// `tracer run -- curl https://...`: the command is probed from its first
/// instruction, so its first (and only) connection's requests are read.
#[test]
fn run_curl_https_reads_its_requests() {
    if !can_run_or_skip() {
        return;
    }
    let server = TlsServer::start("run");
    let base = format!("https://127.0.0.1:{}", server.port);
    let (a, b) = (format!("{base}/r1"), format!("{base}/r2"));
    let bin = tracer_tests::tracer_bin::tracer_bin();
    let out = Command::new(bin)
        .args(["run", "--format", "json", "--", "curl", "-sSk"])
        .args(["-o", "/dev/null", "-o", "/dev/null", &a, &b])
        .output()
        .unwrap();
    // run's trace goes to stderr, apart from the command's own output.
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(server.log(), ["GET /r1", "GET /r2"]);
    let lines = tracer_tests::process::json_lines_among(&stderr);
    let requests = of_type(&lines, "request");
    let got = url_status_reused(&requests);
    assert_eq!(
        got,
        [
            (a.as_str(), Some(200), Some(false)),
            (b.as_str(), Some(200), Some(true)),
        ]
    );
}
