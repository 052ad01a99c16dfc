//! What the `trace` command's -X, -H and -d put on the wire.

mod support;

use support::{Http1Mode, TestServer, event, options};
use tracer_user::client::{Hook, RequestSpec, TracedClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_and_body_reach_the_server() {
    let server = TestServer::http1(Http1Mode::KeepAlive).await;
    let client = TracedClient::new(&options()).expect("client");
    let spec = RequestSpec {
        method: reqwest::Method::POST,
        url: format!("http://{}/submit", server.addr)
            .parse()
            .expect("URL"),
        headers: vec![("X-Trace".into(), "on".into())],
        body: Some(b"hello=1".to_vec()),
    };
    let outcome = client.run(1, &spec).await;

    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (Some(200), None)
    );
    let requests = server.requests();
    let [request] = requests.as_slice() else {
        panic!("one request expected, got {requests:?}");
    };
    assert!(
        request.starts_with("POST /submit HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.to_ascii_lowercase().contains("\r\nx-trace: on\r\n"),
        "{request}"
    );
    assert!(request.ends_with("\r\n\r\nhello=1"), "{request}");
    assert_eq!(
        event(&outcome, "GetConn").hook,
        Hook::GetConn {
            host_port: server.addr.to_string()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_connection_close_means_no_put_idle() {
    let server = TestServer::http1(Http1Mode::KeepAlive).await;
    let client = TracedClient::new(&options()).expect("client");
    let mut spec = RequestSpec::get(format!("http://{}/", server.addr).parse().expect("URL"));
    spec.headers.push(("Connection".into(), "close".into()));
    let first = client.run(1, &spec).await;
    let second = client.run(2, &spec).await;

    assert_eq!((first.status, second.status), (Some(200), Some(200)));
    assert!(first.events.iter().all(|e| e.hook.name() != "PutIdleConn"));
    assert_eq!(second.reused, Some(false));
    assert_ne!(first.local_addr, second.local_addr);
    assert_eq!(server.accepted(), 2);
}
