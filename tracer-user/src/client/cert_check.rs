//! How server certificates are checked: against `--cacert`'s roots and the
//! system's, or not at all (`--insecure`). The system's roots are loaded
//! once, and only when a certificate is to be checked or the caller expects
//! one (an https URL): reading /etc/ssl/certs, a few hundred files, took
//! half of a plain-http `trace`'s start-up, and plain http never needs them.
//! Handshake signatures are checked either way, so the peer holds the key
//! of the certificate it showed.
//!
//! A certificate in `--cacert` that the server shows as its own is trusted
//! as that exact certificate, as curl (OpenSSL) does: `openssl req -x509`
//! makes a self-signed server certificate marked CA, which WebPKI refuses
//! as an end entity (`CaUsedAsEndEntity`). Its name and dates are still
//! checked.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

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
    /// `--cacert`'s certificates as given, trusted as themselves.
    pinned: Vec<CertificateDer<'static>>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl CertCheck {
    pub(crate) fn roots(
        extra: RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Arc<Self> {
        Arc::new(Self {
            provider,
            extra: Some(extra),
            pinned,
            verifier: OnceLock::new(),
        })
    }

    pub(crate) fn accept_any(provider: Arc<CryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            provider,
            extra: None,
            pinned: Vec::new(),
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
        if self.pinned.iter().any(|c| c == end_entity) {
            return verify_pinned(end_entity, server_name, now);
        }
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

/// A `--cacert` certificate the server showed: trusted as itself, so only
/// its name and its validity dates are left to check.
fn verify_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    let (not_before, not_after) = validity(cert).ok_or(rustls::Error::InvalidCertificate(
        CertificateError::BadEncoding,
    ))?;
    let time = now.as_secs();
    if time < not_before {
        let not_before = UnixTime::since_unix_epoch(Duration::from_secs(not_before));
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before,
        }
        .into());
    }
    if time > not_after {
        let not_after = UnixTime::since_unix_epoch(Duration::from_secs(not_after));
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after,
        }
        .into());
    }
    Ok(ServerCertVerified::assertion())
}

/// notBefore and notAfter (Unix seconds) of a DER certificate:
/// Certificate = SEQ { tbs = SEQ { [0] version?, serial, sigAlg, issuer,
/// validity = SEQ { Time, Time }, .. }, .. }.
fn validity(cert: &[u8]) -> Option<(u64, u64)> {
    let (_, certificate, _) = der_item(cert)?;
    let (_, mut tbs, _) = der_item(certificate)?;
    let (tag, _, rest) = der_item(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for _ in 0..3 {
        tbs = der_item(tbs)?.2; // serial, signature algorithm, issuer
    }
    let (_, times, _) = der_item(tbs)?;
    let (tag, not_before, rest) = der_item(times)?;
    let not_before = der_time(tag, not_before)?;
    let (tag, not_after, _) = der_item(rest)?;
    Some((not_before, der_time(tag, not_after)?))
}

/// One DER item: (tag, contents, the bytes after it).
fn der_item(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes.iter().fold(0, |acc, &b| (acc << 8) | usize::from(b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (0x17, YYMMDDHHMMSSZ) or GeneralizedTime (0x18, YYYYMMDDHHMMSSZ).
fn der_time(tag: u8, text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day) = (field(0)?, field(2)?);
    let seconds = field(4)? * 3600 + field(6)? * 60 + field(8)?;
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::der_time;

    #[test]
    fn der_times_are_unix_seconds() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x17, b"261130200000Z"), Some(1_796_068_800));
        assert_eq!(der_time(0x18, b"20000301000000Z"), Some(951_868_800));
        assert_eq!(der_time(0x18, b"20000301000000"), None);
    }
}
