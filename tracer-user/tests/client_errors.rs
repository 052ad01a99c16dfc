//! Failures are reported in the hooks and the outcome, never panicked on.

mod support;

use std::time::{Duration, Instant};

use support::{TestServer, closed_port, event, get, has, names, options};
use tracer_user::client::{ClientOptions, Hook, TracedClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_lands_in_connect_done_and_the_outcome() {
    let addr = closed_port().await;
    let client = TracedClient::new(&options()).expect("client");
    let outcome = client.run(1, &get(&format!("http://{addr}/"))).await;

    let error = outcome.error.as_deref().expect("refused");
    assert!(error.contains("Connection refused"), "{error}");
    assert_eq!(
        event(&outcome, "ConnectStart").hook,
        Hook::ConnectStart { addr }
    );
    let Hook::ConnectDone {
        addr: done_addr,
        error: connect_error,
        ..
    } = &event(&outcome, "ConnectDone").hook
    else {
        unreachable!("ConnectDone holds ConnectDone");
    };
    assert_eq!(done_addr, &addr);
    assert!(
        connect_error
            .as_deref()
            .is_some_and(|e| e.contains("Connection refused"))
    );
    assert_eq!(outcome.status, None);
    assert!(
        has(&outcome, "RequestError") && !has(&outcome, "GotConn"),
        "{:?}",
        names(&outcome)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure_lands_in_dns_done_and_the_outcome() {
    let client = TracedClient::new(&options()).expect("client");
    let outcome = client.run(1, &get("http://does-not-exist.invalid/")).await;

    assert!(outcome.error.is_some(), "{outcome:?}");
    let Hook::DNSDone { addrs, error } = &event(&outcome, "DNSDone").hook else {
        unreachable!("DNSDone holds DNSDone");
    };
    assert!(addrs.is_empty());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("does-not-exist.invalid")),
        "{error:?}"
    );
    assert!(
        !has(&outcome, "ConnectStart"),
        "no connect after a failed lookup"
    );
    assert_eq!(names(&outcome)[..3], ["GetConn", "DNSStart", "DNSDone"]);
    assert_eq!(names(&outcome).last(), Some(&"RequestError"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_hits_the_timeout() {
    let server = TestServer::start(|stream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    })
    .await;
    let opts = ClientOptions {
        timeout: Duration::from_millis(300),
        ..options()
    };
    let client = TracedClient::new(&opts).expect("client");
    let started = Instant::now();
    let outcome = client
        .run(1, &get(&format!("http://{}/", server.addr)))
        .await;

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let error = outcome.error.as_deref().expect("timed out");
    assert!(error.contains("timed out"), "{error}");
    assert_eq!(
        outcome.reused, None,
        "no response, so no connection was confirmed"
    );
    assert!(has(&outcome, "ConnectDone") && !has(&outcome, "GotResponseHeaders"));
}
