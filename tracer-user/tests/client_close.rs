//! A server answering `Connection: close`: every request opens its own.

mod support;

use support::{Http1Mode, TestServer, get, got_conn, has, options};
use tracer_user::client::TracedClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_gets_a_new_connection() {
    let server = TestServer::http1(Http1Mode::Close).await;
    let client = TracedClient::new(&options()).expect("client");
    let spec = get(&format!("http://{}/", server.addr));

    let first = client.run(1, &spec).await;
    let second = client.run(2, &spec).await;

    for outcome in [&first, &second] {
        assert_eq!(
            (outcome.status, outcome.error.as_deref()),
            (Some(200), None)
        );
        assert_eq!(outcome.reused, Some(false));
        assert_eq!(got_conn(outcome), (false, false, None));
        assert!(has(outcome, "ConnectDone") && has(outcome, "BodyDone"));
        assert!(
            !has(outcome, "PutIdleConn"),
            "closed yet put idle: {outcome:?}"
        );
    }
    let ports = (
        first.local_addr.map(|a| a.port()),
        second.local_addr.map(|a| a.port()),
    );
    assert_ne!(ports.0, ports.1, "two different local ports");
    assert_eq!(server.accepted(), 2);
}
