//! Back-to-back requests ride one connection, and the client dials no other:
//! hyper races a new connect against the connection still on its way back
//! to its pool, and the tracer's client must not let that connect happen.
//! The server's own accept count is the ground truth, over many runs.

mod support;

use std::sync::Arc;

use support::{Http1Mode, RequestLog, TestServer, get, options, serve_http1};
use tracer_user::client::TracedClient;

const RUNS: usize = 200;

async fn race(server: &TestServer) {
    let spec = get(&format!("http://{}/", server.addr));
    let mut extra = Vec::new();
    for run in 0..RUNS {
        let before = server.accepted();
        let client = TracedClient::new(&options()).expect("client");
        let mut cookies = Vec::new();
        for n in 1..=3 {
            let outcome = client.run(n, &spec).await;
            assert_eq!(outcome.error, None, "run {run} request {n}");
            assert_eq!(outcome.reused, Some(n > 1), "run {run} request {n}");
            cookies.push(outcome.socket_cookie.expect("SO_COOKIE read"));
        }
        assert!(cookies.iter().all(|c| *c == cookies[0]), "{cookies:?}");
        let accepted = server.accepted() - before;
        if accepted != 1 {
            extra.push((run, accepted));
        }
    }
    println!("{RUNS} runs of 3 requests; runs with more than one connection: {extra:?}");
    assert!(
        extra.is_empty(),
        "connections accepted beyond one: {extra:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_requests_open_one_connection_when_the_server_writes_head_and_body_apart() {
    let log = RequestLog::default();
    let server = TestServer::start(move |stream| {
        let log = Arc::clone(&log);
        async move {
            // Nagle on, as in Python's http.server: the body waits for the
            // client's delayed ACK on every reused request.
            let _ = stream.set_nodelay(false);
            let _ = serve_http1(stream, Http1Mode::SplitHeadBody, &log).await;
        }
    })
    .await;
    race(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_requests_open_one_connection_on_a_plain_keep_alive_server() {
    race(&TestServer::http1(Http1Mode::KeepAlive).await).await;
}
