//! HTTP/1.1 keep-alive: the second request rides the first one's connection.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::{BODY, Http1Mode, TestServer, assert_in_order, event, get, got_conn, has, options};
use tracer_user::client::{Hook, TracedClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_request_reuses_the_idle_connection() {
    let server = TestServer::http1(Http1Mode::KeepAlive).await;
    let client = TracedClient::new(&options()).expect("client");
    let spec = get(&format!("http://localhost:{}/", server.addr.port()));

    let first = client.run(1, &spec).await;
    assert_eq!(first.error, None);
    assert_eq!(
        (first.status, first.body_bytes),
        (Some(200), BODY.len() as u64)
    );
    assert_eq!(first.reused, Some(false));
    assert_eq!(got_conn(&first), (false, false, None));
    assert_eq!(first.remote_addr, Some(server.addr));
    assert!(
        has(&first, "PutIdleConn"),
        "keep-alive body read: {first:?}"
    );

    // Give hyper time to put the connection back in its pool.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = client.run(2, &spec).await;
    assert_eq!((second.status, second.error.as_deref()), (Some(200), None));
    assert_eq!(second.reused, Some(true));
    assert_eq!(second.local_addr, first.local_addr, "same socket");
    let (reused, was_idle, idle) = got_conn(&second);
    assert!(reused && was_idle, "{:?}", second.events);
    let idle = Duration::from_nanos(idle.expect("idle time"));
    assert!(
        idle >= Duration::from_millis(50) && idle < Duration::from_secs(5),
        "{idle:?}"
    );
    for name in ["DNSStart", "ConnectStart", "ConnectDone"] {
        assert!(!has(&second, name), "reused connection yet {name}");
    }
    assert_eq!(server.accepted(), 1, "the server saw one connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_hooks_fire_for_localhost_with_the_resolved_addresses() {
    let server = TestServer::http1(Http1Mode::KeepAlive).await;
    let client = TracedClient::new(&options()).expect("client");
    let outcome = client
        .run(
            1,
            &get(&format!("http://localhost:{}/", server.addr.port())),
        )
        .await;

    assert_eq!(outcome.error, None);
    assert_eq!(
        event(&outcome, "DNSStart").hook,
        Hook::DNSStart {
            host: "localhost".into()
        }
    );
    let Hook::DNSDone { addrs, error } = &event(&outcome, "DNSDone").hook else {
        unreachable!("DNSDone holds DNSDone");
    };
    assert_eq!(error, &None);
    assert!(addrs.contains(&IpAddr::from([127, 0, 0, 1])), "{addrs:?}");
    let Hook::ConnectDone {
        addr,
        local_addr,
        error,
    } = &event(&outcome, "ConnectDone").hook
    else {
        unreachable!("ConnectDone holds ConnectDone");
    };
    assert_eq!((addr, error), (&server.addr, &None));
    assert_eq!(
        *local_addr, outcome.local_addr,
        "connect and response agree on the socket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_of_a_new_connection_come_in_go_order() {
    let server = TestServer::http1(Http1Mode::KeepAlive).await;
    let client = TracedClient::new(&options()).expect("client");
    let outcome = client
        .run(
            1,
            &get(&format!("http://localhost:{}/", server.addr.port())),
        )
        .await;

    assert_eq!(
        outcome.events[0].hook.name(),
        "GetConn",
        "{:?}",
        outcome.events
    );
    assert_eq!(outcome.events[0].ts_ns, outcome.start_ns);
    assert_in_order(
        &outcome,
        &[
            "GetConn",
            "DNSStart",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "GotConn",
            "GotResponseHeaders",
            "BodyDone",
        ],
    );
    assert!(event(&outcome, "DNSStart").ts_ns < event(&outcome, "DNSDone").ts_ns);
    assert!(event(&outcome, "DNSDone").ts_ns < event(&outcome, "ConnectDone").ts_ns);
    assert!(
        outcome
            .events
            .iter()
            .all(|e| e.request == 1 && e.ts_ns <= outcome.end_ns)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_literal_connects_without_dns() {
    let server = TestServer::http1(Http1Mode::KeepAlive).await;
    let client = TracedClient::new(&options()).expect("client");
    let outcome = client
        .run(1, &get(&format!("http://{}/", server.addr)))
        .await;

    assert_eq!(outcome.status, Some(200));
    assert!(!has(&outcome, "DNSStart"));
    assert_eq!(
        event(&outcome, "ConnectStart").hook,
        Hook::ConnectStart { addr: server.addr }
    );
    assert_in_order(
        &outcome,
        &["GetConn", "ConnectStart", "ConnectDone", "GotConn"],
    );
}
