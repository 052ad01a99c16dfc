//! The rustls configuration handed to reqwest, built here so that the
//! handshake start can be seen: rustls asks its session store for a ticket
//! and a key-share hint for the server name exactly when it builds the
//! ClientHello, and our store notes that moment for the running connect.

use std::path::Path;
use std::sync::Arc;

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, NamedGroup, RootCertStore};

use super::attempt::ConnectAttempt;
use super::cert_check::CertCheck;
use super::errors::ClientError;
use super::tls_records::observed;
use super::{ClientOptions, HttpVersionPref};

pub(crate) fn client_config(opts: &ClientOptions) -> Result<ClientConfig, ClientError> {
    let provider = Arc::new(observed(rustls::crypto::ring::default_provider()));
    let verifier = if opts.insecure {
        CertCheck::accept_any(Arc::clone(&provider))
    } else {
        let mut extra = RootCertStore::empty();
        let mut pinned = Vec::new();
        if let Some(path) = &opts.cacert {
            pinned = add_pem_roots(&mut extra, path)?;
        }
        let check = CertCheck::roots(extra, pinned, Arc::clone(&provider));
        if opts.preload_roots {
            check.preload();
        }
        check
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // reqwest leaves ALPN of a preconfigured config alone; offer what the
    // chosen HTTP versions can speak, as reqwest would.
    config.alpn_protocols = match opts.http {
        HttpVersionPref::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpVersionPref::Http1Only => vec![b"http/1.1".to_vec()],
        HttpVersionPref::Http2PriorKnowledge => vec![b"h2".to_vec()],
    };
    let store = ObservedSessionStore(Arc::new(ClientSessionMemoryCache::new(256)));
    config.resumption = Resumption::store(Arc::new(store));
    Ok(config)
}

/// Adds the file's certificates to `roots` and returns them as read.
fn add_pem_roots(
    roots: &mut RootCertStore,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = std::fs::read(path).map_err(|source| ClientError::CaCertRead {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| ClientError::CaCertInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut added = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        roots
            .add(cert.clone())
            .map_err(|e| invalid(e.to_string()))?;
        added.push(cert);
    }
    if added.is_empty() {
        return Err(ClientError::CaCertEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(added)
}

/// Passes everything to rustls's own cache; the getters rustls calls while
/// building the ClientHello mark the handshake start of the current connect.
#[derive(Debug)]
struct ObservedSessionStore(Arc<dyn ClientSessionStore>);

fn note_handshake_start(server_name: &ServerName<'_>) {
    if let Some(attempt) = ConnectAttempt::current() {
        attempt.note_tls_start(server_name.to_str().into_owned());
    }
}

impl ClientSessionStore for ObservedSessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.0.set_kx_hint(server_name, group)
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        note_handshake_start(server_name);
        self.0.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.0.set_tls12_session(server_name, value)
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        note_handshake_start(server_name);
        self.0.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.0.remove_tls12_session(server_name)
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(server_name, value)
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        note_handshake_start(server_name);
        self.0.take_tls13_ticket(server_name)
    }
}
