//! rustls's record layer, wrapped so that each TLS connection reports the
//! plaintext of its application-data records to its [`PlainIo`]: the
//! client's own reads and writes, which reqwest does not expose.
//!
//! The cipher suites are ring's, with each AEAD algorithm wrapped; the
//! encrypter and decrypter rustls makes during a handshake belong to the
//! connect that is running it (`ConnectAttempt`), whose task-local reaches
//! rustls inside the connector. Keys made outside a connect (a late
//! KeyUpdate) are left unwrapped: those records go unobserved, never
//! misattributed.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, KeyBlockShape, MessageDecrypter,
    MessageEncrypter, OutboundChunks, OutboundOpaqueMessage, OutboundPlainMessage,
    Tls12AeadAlgorithm, Tls13AeadAlgorithm, UnsupportedOperationError,
};
use rustls::{
    ConnectionTrafficSecrets, ContentType, Error, SupportedCipherSuite, Tls12CipherSuite,
    Tls13CipherSuite,
};

use super::attempt::ConnectAttempt;
use super::plain_io::PlainIo;

/// `provider` with every cipher suite's records observed.
pub(crate) fn observed(provider: CryptoProvider) -> CryptoProvider {
    let cipher_suites = provider
        .cipher_suites
        .iter()
        .map(|suite| {
            wrapped_suites()
                .iter()
                .find(|w| w.suite() == suite.suite())
                .copied()
                .unwrap_or(*suite)
        })
        .collect();
    CryptoProvider {
        cipher_suites,
        ..provider
    }
}

/// ring's suites with wrapped AEADs, made once: rustls wants `'static`.
fn wrapped_suites() -> &'static [SupportedCipherSuite] {
    static SUITES: OnceLock<Vec<SupportedCipherSuite>> = OnceLock::new();
    SUITES.get_or_init(|| {
        rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .map(|suite| match *suite {
                SupportedCipherSuite::Tls13(s) => {
                    let aead_alg: &'static dyn Tls13AeadAlgorithm =
                        Box::leak(Box::new(Observed13(s.aead_alg)));
                    SupportedCipherSuite::Tls13(Box::leak(Box::new(Tls13CipherSuite {
                        common: rustls::CipherSuiteCommon { ..s.common },
                        hkdf_provider: s.hkdf_provider,
                        aead_alg,
                        quic: s.quic,
                    })))
                }
                SupportedCipherSuite::Tls12(s) => {
                    let aead_alg: &'static dyn Tls12AeadAlgorithm =
                        Box::leak(Box::new(Observed12(s.aead_alg)));
                    SupportedCipherSuite::Tls12(Box::leak(Box::new(Tls12CipherSuite {
                        common: rustls::CipherSuiteCommon { ..s.common },
                        prf_provider: s.prf_provider,
                        kx: s.kx,
                        sign: s.sign,
                        aead_alg,
                    })))
                }
            })
            .collect()
    })
}

struct Observed13(&'static dyn Tls13AeadAlgorithm);

impl Tls13AeadAlgorithm for Observed13 {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        observe_writes(self.0.encrypter(key, iv))
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        observe_reads(self.0.decrypter(key, iv))
    }

    fn key_len(&self) -> usize {
        self.0.key_len()
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        self.0.extract_keys(key, iv)
    }

    fn fips(&self) -> bool {
        self.0.fips()
    }
}

struct Observed12(&'static dyn Tls12AeadAlgorithm);

impl Tls12AeadAlgorithm for Observed12 {
    fn encrypter(&self, key: AeadKey, iv: &[u8], extra: &[u8]) -> Box<dyn MessageEncrypter> {
        observe_writes(self.0.encrypter(key, iv, extra))
    }

    fn decrypter(&self, key: AeadKey, iv: &[u8]) -> Box<dyn MessageDecrypter> {
        observe_reads(self.0.decrypter(key, iv))
    }

    fn key_block_shape(&self) -> KeyBlockShape {
        self.0.key_block_shape()
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: &[u8],
        explicit: &[u8],
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        self.0.extract_keys(key, iv, explicit)
    }

    fn fips(&self) -> bool {
        self.0.fips()
    }
}

fn observe_writes(inner: Box<dyn MessageEncrypter>) -> Box<dyn MessageEncrypter> {
    match ConnectAttempt::current() {
        Some(attempt) => Box::new(ObservedEncrypter {
            inner,
            io: attempt.plain_io(),
        }),
        None => inner,
    }
}

fn observe_reads(inner: Box<dyn MessageDecrypter>) -> Box<dyn MessageDecrypter> {
    match ConnectAttempt::current() {
        Some(attempt) => Box::new(ObservedDecrypter {
            inner,
            io: attempt.plain_io(),
        }),
        None => inner,
    }
}

struct ObservedEncrypter {
    inner: Box<dyn MessageEncrypter>,
    io: Arc<PlainIo>,
}

impl MessageEncrypter for ObservedEncrypter {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        if msg.typ == ContentType::ApplicationData {
            match msg.payload {
                OutboundChunks::Single(bytes) => self.io.wrote(&[bytes]),
                OutboundChunks::Multiple { .. } => self.io.wrote(&[&msg.payload.to_vec()]),
            }
        }
        self.inner.encrypt(msg, seq)
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        self.inner.encrypted_payload_len(payload_len)
    }
}

struct ObservedDecrypter {
    inner: Box<dyn MessageDecrypter>,
    io: Arc<PlainIo>,
}

impl MessageDecrypter for ObservedDecrypter {
    fn decrypt<'a>(
        &mut self,
        msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let plain = self.inner.decrypt(msg, seq)?;
        if plain.typ == ContentType::ApplicationData {
            self.io.read(plain.payload);
        }
        Ok(plain)
    }
}
