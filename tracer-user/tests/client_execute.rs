//! A reqwest user's own requests, with Go's hooks, keeping the response:
//! `TracedClient::execute` and the body read through `TracedResponse`.

mod support;

use std::sync::{Arc, Mutex};

use support::tls::TestCa;
use support::{BODY, Http1Mode, TestServer, options};
use tracer_user::client::{ClientEvent, ClientOptions, TracedClientBuilder};

type Seen = Arc<Mutex<Vec<(u32, &'static str)>>>;

fn recording(opts: &ClientOptions) -> (tracer_user::client::TracedClient, Seen) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let client = TracedClientBuilder::new(opts)
        .trace(Arc::new(move |e: &ClientEvent| {
            sink.lock()
                .expect("not poisoned")
                .push((e.request, e.hook.name()));
        }))
        .build()
        .expect("client");
    (client, seen)
}

fn names_of(seen: &Seen, request: u32) -> Vec<&'static str> {
    let seen = seen.lock().expect("not poisoned");
    seen.iter()
        .filter(|(r, _)| *r == request)
        .map(|(_, n)| *n)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_requests_keep_their_response_and_report_every_hook() {
    let server = TestServer::http1(Http1Mode::KeepAlive).await;
    let (client, seen) = recording(&options());
    let url = format!("http://localhost:{}/", server.addr.port());
    for id in 1..=2 {
        let req = client
            .reqwest()
            .get(&url)
            .header("x-test", "1")
            .build()
            .expect("request");
        let response = client.execute(id, req).await.expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(response.reused(), Some(id == 2));
        assert!(response.response().headers().contains_key("content-length"));
        assert_eq!(response.bytes().await.expect("body"), BODY);
    }
    let first = names_of(&seen, 1);
    for hook in [
        "GetConn",
        "DNSStart",
        "DNSDone",
        "ConnectStart",
        "ConnectDone",
        "GotConn",
    ] {
        assert!(first.contains(&hook), "request 1 has no {hook}: {first:?}");
    }
    let second = names_of(&seen, 2);
    assert_eq!(
        second,
        [
            "GetConn",
            "GotConn",
            "GotResponseHeaders",
            "BodyDone",
            "PutIdleConn"
        ]
    );
    assert_eq!(server.accepted(), 1);
    assert!(
        server.requests()[0].contains("x-test: 1"),
        "{:?}",
        server.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requests_report_their_writes_and_first_byte() {
    let ca = TestCa::new();
    let server = ca.server(&["h2", "http/1.1"]).await;
    let mut opts = options();
    opts.cacert = Some(ca.ca_file.clone());
    let (client, seen) = recording(&opts);
    let url = format!("https://localhost:{}/", server.addr.port());
    let req = client.reqwest().get(&url).build().expect("request");
    let mut response = client.execute(7, req).await.expect("response");
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        body.extend_from_slice(&chunk);
    }
    assert_eq!(body, BODY);
    let hooks = names_of(&seen, 7);
    for hook in [
        "TLSHandshakeStart",
        "TLSHandshakeDone",
        "WroteHeaders",
        "WroteRequest",
        "GotFirstResponseByte",
        "BodyDone",
        "PutIdleConn",
    ] {
        assert!(hooks.contains(&hook), "no {hook}: {hooks:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_an_error_and_a_request_error_hook() {
    let port = support::closed_port().await.port();
    let (client, seen) = recording(&options());
    let req = client
        .reqwest()
        .get(format!("http://127.0.0.1:{port}/"))
        .build()
        .expect("request");
    let err = client.execute(3, req).await.err().expect("refused");
    assert!(err.is_connect(), "{err}");
    assert!(names_of(&seen, 3).contains(&"RequestError"));
}
