//! How server certificates are checked: against `--cacert`'s roots and the
//! system's, or not at all (`--insecure`). The system's roots are loaded
//! once, and only when a certificate is to be checked or the caller expects
//! one (an https URL): reading /etc/ssl/certs, a few hundred files, took
//! half of a plain-http `trace`'s start-up, and plain http never needs them.
//! Handshake signatures are checked either way, so the peer holds the key
//! of the certificate it showed.
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

const NO_ROOTS: &str = "no CA certificates found on this system: \
    install ca-certificates, or give one with --cacert FILE";

/// Verifies with WebPKI against `--cacert`'s roots and the system's, which
/// it loads the first time it is asked (or ahead, see [`CertCheck::preload`]);
/// or accepts every certificate.
#[derive(Debug)]
pub(crate) struct CertCheck {
    provider: Arc<CryptoProvider>,
    /// Roots given on the command line, read (and checked) up front; None
    /// accepts any certificate (`--insecure`).
    extra: Option<RootCertStore>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl CertCheck {
    pub(crate) fn roots(extra: RootCertStore, provider: Arc<CryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            provider,
            extra: Some(extra),
            verifier: OnceLock::new(),
        })
    }

    pub(crate) fn accept_any(provider: Arc<CryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            provider,
            extra: None,
            verifier: OnceLock::new(),
        })
    }

    /// Starts loading on a thread of its own, so that the first handshake
    /// does not wait for it (its TLS phase would include the load).
    pub(crate) fn preload(self: &Arc<Self>) {
        if self.extra.is_none() {
            return;
        }
        let me = Arc::clone(self);
        // If no thread can be started, the first check loads them instead.
        let _ = std::thread::Builder::new()
            .name("tracer-roots".into())
            .spawn(move || {
                if let Some(extra) = &me.extra {
                    let _ = me.verifier(extra);
                }
            });
    }

    fn verifier(&self, extra: &RootCertStore) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let mut roots = extra.clone();
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

impl ServerCertVerifier for CertCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(extra) = &self.extra else {
            return Ok(ServerCertVerified::assertion());
        };
        self.verifier(extra)?.verify_server_cert(
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
