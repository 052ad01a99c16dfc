//! One call of reqwest's connector: what the resolver and rustls saw while
//! it ran, gathered so the connector layer can report the whole attempt.
//!
//! The resolver and rustls run inside the connector's future, so a
//! task-local set around that future reaches them even when hyper finishes
//! the connect in a background task.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::plain_io::PlainIo;
use crate::clock::monotonic_ns;

tokio::task_local! {
    static ATTEMPT: Arc<ConnectAttempt>;
}

/// Where reqwest asked the connector to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    /// reqwest seals the connector's `Uri` inside `Unnameable`; its `Debug`
    /// form, `Unnameable(https://host:port/)`, is the only view of it.
    pub(crate) fn from_debug(text: &str) -> Option<Target> {
        let inner = text.strip_prefix("Unnameable(")?.strip_suffix(')')?;
        let uri: http::Uri = inner.parse().ok()?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })?;
        Some(Target {
            host: host.to_string(),
            port,
        })
    }

    /// The socket address when the host is an IP literal (no DNS happens).
    pub(crate) fn literal_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

/// What one connector call went through, filled in as it happens.
#[derive(Debug, Default, Clone)]
pub(crate) struct AttemptState {
    pub(crate) dns_done_ns: Option<u64>,
    pub(crate) dns_failed: bool,
    /// The first resolved address, with the target's port: the connector
    /// tries it first.
    pub(crate) first_addr: Option<SocketAddr>,
    /// When rustls began building the ClientHello, and for which name.
    pub(crate) tls_start: Option<(u64, String)>,
}

#[derive(Debug)]
pub(crate) struct ConnectAttempt {
    pub(crate) request: u32,
    pub(crate) started_ns: u64,
    pub(crate) target: Option<Target>,
    state: Mutex<AttemptState>,
    /// The plaintext marks of the TLS connection this attempt set up.
    plain: OnceLock<Arc<PlainIo>>,
}

impl ConnectAttempt {
    pub(crate) fn new(request: u32, target: Option<Target>) -> Arc<Self> {
        Arc::new(ConnectAttempt {
            request,
            started_ns: monotonic_ns(),
            target,
            state: Mutex::default(),
            plain: OnceLock::new(),
        })
    }

    /// The attempt whose connector future is being polled, if any.
    pub(crate) fn current() -> Option<Arc<ConnectAttempt>> {
        ATTEMPT.try_with(Arc::clone).ok()
    }

    pub(crate) async fn scope<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        ATTEMPT.scope(self, fut).await
    }

    pub(crate) fn scope_sync<T>(self: Arc<Self>, f: impl FnOnce() -> T) -> T {
        ATTEMPT.sync_scope(self, f)
    }

    /// The plaintext marks of this attempt's TLS connection (made on first use).
    pub(crate) fn plain_io(&self) -> Arc<PlainIo> {
        Arc::clone(self.plain.get_or_init(Arc::default))
    }

    /// Set once rustls made a record wrapper: the connection speaks TLS.
    pub(crate) fn plain_io_if_tls(&self) -> Option<Arc<PlainIo>> {
        self.plain.get().cloned()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, AttemptState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn note_dns_done(&self, ts_ns: u64, result: Result<&[IpAddr], ()>) {
        let port = self.target.as_ref().map(|t| t.port);
        let mut state = self.state();
        state.dns_done_ns = Some(ts_ns);
        match result {
            Ok(addrs) => {
                state.first_addr = addrs
                    .first()
                    .zip(port)
                    .map(|(ip, port)| SocketAddr::new(*ip, port));
            }
            Err(()) => state.dns_failed = true,
        }
    }

    /// Only the first call counts: rustls consults its session store more
    /// than once while building one ClientHello.
    pub(crate) fn note_tls_start(&self, server_name: String) {
        let mut state = self.state();
        if state.tls_start.is_none() {
            state.tls_start = Some((monotonic_ns(), server_name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_comes_from_the_sealed_uri_debug_form() {
        let t = Target::from_debug("Unnameable(https://[::1]:8443/)").expect("parses");
        assert_eq!(t.literal_addr(), Some("[::1]:8443".parse().expect("addr")));
        let t = Target::from_debug("Unnameable(http://localhost/)").expect("parses");
        assert_eq!((t.host.as_str(), t.port), ("localhost", 80));
        assert_eq!(t.literal_addr(), None);
        assert_eq!(Target::from_debug("Something(else)"), None);
    }
}
