//! HTTP/2 with prior knowledge: one connection carries every request.

mod support;

use support::{BODY, TestServer, event, get, has, options};
use tracer_user::client::{ClientOptions, Hook, HttpVersionPref, TracedClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_share_one_h2c_connection() {
    let server = TestServer::h2c().await;
    let opts = ClientOptions {
        http: HttpVersionPref::Http2PriorKnowledge,
        ..options()
    };
    let client = TracedClient::new(&opts).expect("client");
    let spec = get(&format!("http://{}/", server.addr));

    let mut outcomes = Vec::new();
    for request in 1..=3 {
        outcomes.push(client.run(request, &spec).await);
    }
    // Two at once: HTTP/2 multiplexes them on the same connection.
    let (a, b) = tokio::join!(client.run(4, &spec), client.run(5, &spec));
    outcomes.extend([a, b]);

    for outcome in &outcomes {
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.body_bytes, BODY.len() as u64);
        assert_eq!(
            outcome.local_addr, outcomes[0].local_addr,
            "one socket for all"
        );
        assert_eq!(
            event(outcome, "GotResponseHeaders").hook,
            Hook::GotResponseHeaders {
                status: 200,
                version: "HTTP/2.0".into()
            }
        );
        assert!(has(outcome, "PutIdleConn"));
    }
    let reused: Vec<Option<bool>> = outcomes.iter().map(|o| o.reused).collect();
    assert_eq!(
        reused,
        [Some(false), Some(true), Some(true), Some(true), Some(true)]
    );
    assert_eq!(outcomes.iter().filter(|o| has(o, "ConnectDone")).count(), 1);
    assert_eq!(server.accepted(), 1);
}
