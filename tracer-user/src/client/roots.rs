//! The system's root certificates, loaded once, and only when a server
//! certificate is to be checked or the caller expects one (an https URL):
//! reading /etc/ssl/certs, a few hundred files, took half of a plain-http
//! `trace`'s start-up, and plain http never needs them.
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

const NO_ROOTS: &str = "no CA certificates found on this system: \
    install ca-certificates, or give one with --cacert FILE";

/// Verifies with WebPKI against `--cacert`'s roots and the system's, which
/// it loads the first time it is asked (or ahead, see [`LazyRoots::preload`]).
#[derive(Debug)]
pub(crate) struct LazyRoots {
    provider: Arc<CryptoProvider>,
    /// Roots given on the command line, read (and checked) up front.
    extra: RootCertStore,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl LazyRoots {
    pub(crate) fn new(extra: RootCertStore, provider: Arc<CryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            provider,
            extra,
            verifier: OnceLock::new(),
        })
    }

    /// Starts loading on a thread of its own, so that the first handshake
    /// does not wait for it (its TLS phase would include the load).
    pub(crate) fn preload(self: &Arc<Self>) {
        let me = Arc::clone(self);
        // If no thread can be started, the first check loads them instead.
        let _ = std::thread::Builder::new()
            .name("tracer-roots".into())
            .spawn(move || {
                let _ = me.verifier();
            });
    }

    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let mut roots = self.extra.clone();
                // Unreadable system certificates are skipped, as reqwest does.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                if roots.is_empty() {
                    return Err(rustls::Error::General(NO_ROOTS.to_string()));
                }
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&self.provider),
                )
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
