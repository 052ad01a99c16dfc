//! `--cacert` with a self-signed server certificate (what `openssl req
//! -x509` makes): trusted as that exact certificate, as curl does, with its
//! name and dates still checked.

mod support;

use std::process::Command;
use std::time::Duration;

use support::tls::{SelfSigned, TestCa, tls_server};
use support::{Http1Mode, get, options};
use tracer_user::client::{ClientOptions, RequestOutcome, TracedClient};

async fn fetch(cacert: &std::path::Path, url: &str) -> RequestOutcome {
    let opts = ClientOptions {
        cacert: Some(cacert.to_path_buf()),
        ..options()
    };
    let client = TracedClient::new(&opts).expect("client");
    client.run(1, &get(url)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_in_cacert_is_trusted() {
    let cert = SelfSigned::new(&["localhost"], 2020, 2090);
    let server = cert.server(&["http/1.1"]).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let outcome = fetch(&cert.file, &url).await;
    println!(
        "saw: status {:?}, error {:?}",
        outcome.status, outcome.error
    );
    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (Some(200), None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_for_another_name_is_refused() {
    let cert = SelfSigned::new(&["other.example"], 2020, 2090);
    let error = refusal(&cert, &cert).await;
    assert!(error.contains("not valid for name"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_self_signed_certificate_is_refused() {
    let cert = SelfSigned::new(&["localhost"], 2000, 2001);
    let error = refusal(&cert, &cert).await;
    assert!(error.contains("expired"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_self_signed_certificate_is_not_trusted() {
    let trusted = SelfSigned::new(&["localhost"], 2020, 2090);
    let shown = SelfSigned::new(&["localhost"], 2020, 2090);
    let error = refusal(&trusted, &shown).await;
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_bundle_still_verifies_the_chain() {
    let ca = TestCa::new();
    let server = ca.server(&["http/1.1"]).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let outcome = fetch(&ca.ca_file, &url).await;
    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (Some(200), None)
    );
}

/// The certificate exactly as the user made it, with OpenSSL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_req_x509_certificate_is_trusted() {
    let dir = std::env::temp_dir().join(format!("tracer-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let Ok(made) = made else {
        println!("skipping test - no openssl binary to make the certificate");
        return;
    };
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key_der = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .expect("openssl pkcs8");
    let pem = std::fs::read(&cert).expect("read cert");
    let der: rustls::pki_types::CertificateDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(&pem).expect("cert PEM");
    let server = tls_server(
        der,
        key_der.stdout,
        &["http/1.1"],
        Http1Mode::KeepAlive,
        Duration::ZERO,
    )
    .await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let outcome = fetch(&cert, &url).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "saw: status {:?}, error {:?}",
        outcome.status, outcome.error
    );
    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (Some(200), None)
    );
}

/// The error of a request to a server showing `shown`, with `trusted` given
/// as `--cacert`; the request must have failed, with no status.
async fn refusal(trusted: &SelfSigned, shown: &SelfSigned) -> String {
    let server = shown.server(&["http/1.1"]).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let outcome = fetch(&trusted.file, &url).await;
    assert_eq!(outcome.status, None);
    let error = outcome.error.expect("must be refused");
    println!("saw: {error}");
    error
}
