//! HTTPS against a certificate made in the test: TLS hooks, --cacert,
//! the default refusal and --insecure.

mod support;

use support::tls::TestCa;
use support::{assert_in_order, event, get, has, options};
use tracer_user::client::{ClientOptions, Hook, HttpVersionPref, TracedClient};

fn with_cacert(ca: &TestCa) -> ClientOptions {
    ClientOptions {
        cacert: Some(ca.ca_file.clone()),
        ..options()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacert_trusts_the_test_ca_and_tls_hooks_fire() {
    let ca = TestCa::new();
    let server = ca.server(&["http/1.1"]).await;
    let client = TracedClient::new(&with_cacert(&ca)).expect("client");
    let outcome = client
        .run(
            1,
            &get(&format!("https://localhost:{}/", server.addr.port())),
        )
        .await;

    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (Some(200), None)
    );
    assert_eq!(
        event(&outcome, "TLSHandshakeStart").hook,
        Hook::TLSHandshakeStart {
            server_name: "localhost".into()
        }
    );
    assert_eq!(
        event(&outcome, "TLSHandshakeDone").hook,
        Hook::TLSHandshakeDone {
            alpn: None,
            error: None
        }
    );
    assert_in_order(
        &outcome,
        &[
            "GetConn",
            "DNSDone",
            "ConnectStart",
            "ConnectDone",
            "TLSHandshakeStart",
        ],
    );
    assert!(event(&outcome, "TLSHandshakeStart").ts_ns < event(&outcome, "TLSHandshakeDone").ts_ns);
    assert_in_order(
        &outcome,
        &["TLSHandshakeDone", "GotConn", "GotResponseHeaders"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_trust_refuses_the_test_ca_with_a_clear_error() {
    let ca = TestCa::new();
    let server = ca.server(&["http/1.1"]).await;
    let client = TracedClient::new(&options()).expect("client");
    let outcome = client
        .run(
            1,
            &get(&format!("https://localhost:{}/", server.addr.port())),
        )
        .await;

    let error = outcome.error.as_deref().expect("refused");
    assert!(error.contains("certificate"), "{error}");
    assert!(outcome.certificate_error, "{error}");
    assert!(
        !error.contains("--cacert"),
        "no CLI text in the library: {error}"
    );
    assert_eq!(outcome.status, None);
    let Hook::TLSHandshakeDone {
        error: tls_error, ..
    } = &event(&outcome, "TLSHandshakeDone").hook
    else {
        unreachable!("TLSHandshakeDone holds TLSHandshakeDone");
    };
    assert!(
        tls_error
            .as_deref()
            .is_some_and(|e| e.contains("certificate")),
        "{tls_error:?}"
    );
    assert!(has(&outcome, "RequestError") && !has(&outcome, "GotConn"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_accepts_the_unknown_certificate() {
    let ca = TestCa::new();
    let server = ca.server(&["http/1.1"]).await;
    let opts = ClientOptions {
        insecure: true,
        ..options()
    };
    let client = TracedClient::new(&opts).expect("client");
    let outcome = client
        .run(
            1,
            &get(&format!("https://127.0.0.1:{}/", server.addr.port())),
        )
        .await;

    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (Some(200), None)
    );
    assert_eq!(
        event(&outcome, "TLSHandshakeStart").hook,
        Hook::TLSHandshakeStart {
            server_name: "127.0.0.1".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_h2_carries_several_requests_on_one_connection() {
    let ca = TestCa::new();
    let server = ca.server(&["h2", "http/1.1"]).await;
    let client = TracedClient::new(&with_cacert(&ca)).expect("client");
    let spec = get(&format!("https://localhost:{}/", server.addr.port()));

    let first = client.run(1, &spec).await;
    let second = client.run(2, &spec).await;

    assert_eq!(first.error, None);
    assert_eq!(
        event(&first, "TLSHandshakeDone").hook,
        Hook::TLSHandshakeDone {
            alpn: Some("h2".into()),
            error: None
        }
    );
    assert_eq!(
        event(&second, "GotResponseHeaders").hook,
        Hook::GotResponseHeaders {
            status: 200,
            version: "HTTP/2.0".into()
        }
    );
    assert_eq!((first.reused, second.reused), (Some(false), Some(true)));
    assert_eq!(first.local_addr, second.local_addr);
    assert!(!has(&second, "TLSHandshakeStart"));
    assert_eq!(server.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_only_keeps_https_on_http1_even_when_the_server_offers_h2() {
    let ca = TestCa::new();
    let server = ca.server(&["h2", "http/1.1"]).await;
    let opts = ClientOptions {
        http: HttpVersionPref::Http1Only,
        ..with_cacert(&ca)
    };
    let client = TracedClient::new(&opts).expect("client");
    let outcome = client
        .run(
            1,
            &get(&format!("https://localhost:{}/", server.addr.port())),
        )
        .await;

    assert_eq!(
        event(&outcome, "TLSHandshakeDone").hook,
        Hook::TLSHandshakeDone {
            alpn: None,
            error: None
        }
    );
    assert_eq!(
        event(&outcome, "GotResponseHeaders").hook,
        Hook::GotResponseHeaders {
            status: 200,
            version: "HTTP/1.1".into()
        }
    );
}

#[test]
fn unreadable_cacert_is_named_in_the_error() {
    let opts = ClientOptions {
        cacert: Some("/nonexistent/ca.pem".into()),
        ..options()
    };
    let error = TracedClient::new(&opts)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        error.starts_with("cannot read --cacert /nonexistent/ca.pem: ")
            && error.contains("No such file"),
        "{error}"
    );
}
