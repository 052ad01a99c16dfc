//! The library's kernel-confirmed mode: a `KernelSession` on this very
//! process confirms, from the kernel's events, that three requests to a
//! keep-alive server rode one socket, with the bytes the server counted;
//! and it leaves the process's capabilities as they were.
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::can_trace_or_skip,
};
use tracer_user::{ClientOptions, KernelSession, KernelVerdict, TracedClientBuilder};

/// Runs `count` GETs of `url` through a client of `kernel`, each body read
/// to its end; returns each request's `SO_COOKIE` and the kernel's verdicts.
async fn requests(kernel: &KernelSession, url: &str, count: u32) -> (Vec<u64>, Vec<KernelVerdict>) {
    let client = TracedClientBuilder::new(&ClientOptions::default())
        .kernel(kernel)
        .build()
        .unwrap();
    let mut cookies = Vec::new();
    for n in 1..=count {
        let request = client.reqwest().get(url).build().unwrap();
        let response = client.execute(n, request).await.unwrap();
        cookies.push(response.socket_cookie().expect("the client read SO_COOKIE"));
        assert_eq!(response.bytes().await.unwrap().len(), 32);
    }
    let mut verdicts = Vec::new();
    for n in 1..=count {
        verdicts.push(kernel.verdict(n).await.unwrap());
    }
    (cookies, verdicts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_are_kernel_confirmed_on_one_socket() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let kernel = KernelSession::start().expect("probes load on a machine that can trace");
    let (cookies, verdicts) = requests(&kernel, &server.url(), 3).await;

    println!("{verdicts:?}");
    let first = &verdicts[0];
    let cookie = first
        .socket_cookie
        .expect("the kernel saw request 1's socket");
    assert_eq!(
        cookie, cookies[0],
        "the kernel's cookie is the client's SO_COOKIE"
    );
    assert!(first.connected && !first.reused, "{first:?}");
    for v in &verdicts[1..] {
        assert_eq!(v.socket_cookie, Some(cookie), "{v:?}");
        assert!(v.reused && !v.connected, "{v:?}");
        assert_eq!(v.reused_from, Some(1), "{v:?}");
        assert_eq!(v.disagreement, None);
    }
    let connects = verdicts.iter().filter(|v| v.connected).count();
    assert_eq!(connects, 1, "{verdicts:?}");
    assert_eq!(server.accepted(), 1, "the server saw one connection");

    // Before Linux 6.3 the kernel counts no bytes; the verdict says so.
    if first.bytes_sent.is_none() {
        println!("skipped (bytes only): no sock_send_length/sock_recv_length tracepoints");
        return;
    }
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n";
    for (v, sent) in verdicts.iter().zip(server.request_bytes()) {
        assert_eq!(v.bytes_sent, Some(sent as u64), "{v:?}");
        assert_eq!(v.bytes_received, Some((head.len() + 32) as u64), "{v:?}");
        let wrote = v
            .wrote_request_ns
            .expect("plain HTTP/1.1: WroteRequest from the kernel");
        let first_byte = v.got_first_response_byte_ns.expect("GotFirstResponseByte");
        assert!(wrote <= first_byte, "{v:?}");
    }
}

/// Effective, permitted and bounding capabilities and no_new_privs of every
/// thread of this process.
fn privileges() -> Vec<String> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // the thread ended
        };
        let fields: Vec<&str> = status
            .lines()
            .filter(|l| {
                ["CapEff:", "CapPrm:", "CapBnd:", "NoNewPrivs:"]
                    .iter()
                    .any(|f| l.starts_with(f))
            })
            .collect();
        threads.push(fields.join(" "));
    }
    threads.sort();
    threads.dedup();
    threads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_leaves_the_process_capabilities_alone() {
    if !can_trace_or_skip() {
        return;
    }
    let before = privileges();
    assert!(
        before
            .iter()
            .all(|t| !t.contains("CapEff:\t0000000000000000")),
        "the test runs with capabilities: {before:?}"
    );
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let kernel = KernelSession::start().unwrap();
    let (_, verdicts) = requests(&kernel, &server.url(), 1).await;
    assert!(verdicts[0].socket_cookie.is_some(), "{verdicts:?}");
    assert_eq!(privileges(), before, "while the probes are attached");
    drop(kernel);
    assert_eq!(privileges(), before, "after the session");
}
