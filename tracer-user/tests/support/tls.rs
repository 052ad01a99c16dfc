//! A test CA, a certificate for `localhost` it signed, and a loopback
//! rustls server using them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use std::time::Duration;

use super::{Http1Mode, RequestLog, TestServer, serve_h2_after, serve_http1_after};

pub struct TestCa {
    /// The CA certificate in a PEM file, for `--cacert`.
    pub ca_file: PathBuf,
    leaf: CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let leaf_params = CertificateParams::new(names).expect("leaf params");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("leaf certificate");
        let n = FILES.fetch_add(1, Ordering::SeqCst);
        let ca_file =
            std::env::temp_dir().join(format!("tracer-test-ca-{}-{n}.pem", std::process::id()));
        std::fs::write(&ca_file, ca.pem()).expect("write CA PEM");
        TestCa {
            ca_file,
            leaf: leaf.der().clone(),
            leaf_key: leaf_key.serialize_der(),
        }
    }

    /// A TLS server offering `alpn`; h2 connections get an HTTP/2 server,
    /// the others the HTTP/1.1 keep-alive one.
    pub async fn server(&self, alpn: &[&str]) -> TestServer {
        self.slow_server(alpn, Duration::ZERO).await
    }

    /// [`TestCa::server`] that waits `delay` before each answer.
    pub async fn slow_server(&self, alpn: &[&str], delay: Duration) -> TestServer {
        let (cert, key) = (self.leaf.clone(), self.leaf_key.clone());
        tls_server(cert, key, alpn, Http1Mode::KeepAlive, delay).await
    }

    /// An HTTP/1.1 TLS server that writes head and body apart, Nagle on.
    pub async fn split_server(&self) -> TestServer {
        let (cert, key) = (self.leaf.clone(), self.leaf_key.clone());
        tls_server(
            cert,
            key,
            &["http/1.1"],
            Http1Mode::SplitHeadBody,
            Duration::ZERO,
        )
        .await
    }
}

/// A self-signed server certificate as `openssl req -x509` makes it: its
/// own issuer, marked CA (OpenSSL's default `v3_ca` extensions).
pub struct SelfSigned {
    /// The certificate in a PEM file, for `--cacert`.
    pub file: PathBuf,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

impl SelfSigned {
    /// Valid from `from` to `until` (years), for `names`.
    pub fn new(names: &[&str], from: i32, until: i32) -> SelfSigned {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        let n = FILES.fetch_add(1, Ordering::SeqCst);
        let file =
            std::env::temp_dir().join(format!("tracer-test-self-{}-{n}.pem", std::process::id()));
        std::fs::write(&file, cert.pem()).expect("write PEM");
        SelfSigned {
            file,
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    pub async fn server(&self, alpn: &[&str]) -> TestServer {
        tls_server(
            self.cert.clone(),
            self.key.clone(),
            alpn,
            Http1Mode::KeepAlive,
            Duration::ZERO,
        )
        .await
    }
}

/// A loopback TLS server showing `cert` (its key `key`, PKCS#8 DER).
pub async fn tls_server(
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    alpn: &[&str],
    mode: Http1Mode,
    delay: Duration,
) -> TestServer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    TestServer::start(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            // Python's http.server leaves Nagle on; the others answer in one write.
            let _ = tcp.set_nodelay(mode != Http1Mode::SplitHeadBody);
            // A client that refuses the certificate ends here.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                serve_h2_after(tls, delay).await;
            } else {
                let log = RequestLog::default();
                let _ = serve_http1_after(tls, mode, &log, delay).await;
            }
        }
    })
    .await
}
