//! The instrumented reqwest client: Go's `httptrace` hooks for Rust.
//!
//! Each hook, and where it is observed (a hook reqwest cannot show is left
//! out, never invented; the kernel side supplies the socket-level steps):
//!
//! | hook | observed by | timestamp |
//! |---|---|---|
//! | `GetConn` | [`TracedClient::run`] | just before the request is sent |
//! | `DNSStart` / `DNSDone` | our reqwest `dns_resolver` (getaddrinfo) | call / result |
//! | `ConnectStart` | connector layer | `DNSDone`, after which the TCP connect starts at once; the connector call for an IP literal |
//! | `ConnectDone` | connector layer, `HttpInfo` of the new connection | connector end; for https the TLS start (rustls needs a connected socket) |
//! | `TLSHandshakeStart` | rustls asking our session store for a ticket while building the ClientHello | that call |
//! | `TLSHandshakeDone` | connector end for https (reqwest awaits the handshake there) | connector end |
//! | `GotConn` | `HttpInfo` of the response, matched to connections this client opened | connector end for a new connection; for a pooled one the end of the request future's first poll, marked derived |
//! | `WroteHeaders` / `WroteRequest` | HTTPS: rustls encrypting the request's records (`tls_records`) | that record |
//! | `GotFirstResponseByte` | HTTPS: rustls decrypting the response's first record | that record |
//! | `GotResponseHeaders` | reqwest's response future resolved | then |
//! | `BodyDone` | last body chunk read | then |
//! | `PutIdleConn` | body read to the end and the protocol keeps the connection (HTTP/1.1 without `Connection: close` and with a framed body, or HTTP/2) | `BodyDone`, marked derived: hyper returns it from its own task |
//!
//! On plain HTTP, hyper writes and reads in its connection task and reports
//! none of it; the kernel's first send and recv of the request are the same
//! steps there, exactly. Left out: the connect attempts to addresses
//! tried before the one that answered (hyper-util walks the resolved list
//! internally). `ConnectStart` names the first address tried and
//! `ConnectDone` the one reached, so a fallback shows as two different
//! addresses.
//!
//! Connection-level hooks are attributed to the request whose future made
//! the connector run ([`with_request`]); a connect hyper finishes in the
//! background after the request took an idle connection still reports to
//! that request. The client sends through no proxy and follows no
//! redirect: the trace is of the one exchange asked for.

mod attempt;
mod builder;
mod cert_check;
mod connect;
mod dns;
mod errors;
mod event;
mod keepalive;
mod plain_io;
mod pool;
pub(crate) mod request_log;
mod run;
mod socket_cookie;
mod tls;
mod tls_records;
mod trace;

use std::path::PathBuf;
use std::time::Duration;

pub use errors::ClientError;
pub use event::{ClientEvent, Hook};
pub use run::{
    RequestOutcome, TracedClient, TracedClientBuilder, TracedResponse, instrumented_client,
};
pub use trace::{ClientTrace, with_request};

/// Which HTTP versions the client may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersionPref {
    /// HTTP/1.1 for http; ALPN (h2, then http/1.1) for https.
    #[default]
    Auto,
    Http1Only,
    /// HTTP/2 without upgrade or ALPN fallback (h2c for http).
    Http2PriorKnowledge,
}

/// The `trace` command's connection options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    pub http: HttpVersionPref,
    /// Accept any server certificate (`--insecure`).
    pub insecure: bool,
    /// A PEM file whose certificates are trusted besides the system's.
    pub cacert: Option<PathBuf>,
    /// For the whole exchange, body included.
    pub timeout: Duration,
    /// Start loading the system's root certificates when the client is
    /// built, so that the first TLS handshake does not wait for them. Off,
    /// they are loaded at the first certificate check, and a plain-http
    /// client never reads them (`trace` turns it on for https URLs only).
    pub preload_roots: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            http: HttpVersionPref::Auto,
            insecure: false,
            cacert: None,
            timeout: Duration::from_secs(30),
            preload_roots: true,
        }
    }
}

/// One request as the command line describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    /// Sent as given, e.g. from `-H 'K: V'`.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl RequestSpec {
    /// A GET of `url` without extra headers.
    pub fn get(url: reqwest::Url) -> Self {
        RequestSpec {
            method: reqwest::Method::GET,
            url,
            headers: Vec::new(),
            body: None,
        }
    }
}
