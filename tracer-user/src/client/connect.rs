//! `ConnectStart` / `ConnectDone` and the TLS hooks: a tower layer around
//! reqwest's connector, reporting each connector call when it ends.
//!
//! The connector resolves, connects TCP and (for https) runs the rustls
//! handshake inside one future. Its steps are told apart by what happens
//! inside it: the resolver stamps `DNSDone`, after which the TCP connect
//! starts at once; rustls stamps the handshake start when it builds the
//! ClientHello, which needs a connected socket, so TCP was done by then.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use tower_layer::Layer;
use tower_service::Service;

use super::attempt::{ConnectAttempt, Target};
use super::errors::{BoxError, error_chain};
use super::event::Hook;
use super::pool::{ConnRegistry, Opened};
use super::socket_cookie::SocketId;
use super::trace::{Recorder, current_request};
use crate::clock::monotonic_ns;

#[derive(Clone)]
pub(crate) struct TraceConnectLayer {
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) registry: Option<Arc<ConnRegistry>>,
}

impl<S> Layer<S> for TraceConnectLayer {
    type Service = TraceConnect<S>;

    fn layer(&self, inner: S) -> TraceConnect<S> {
        TraceConnect {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct TraceConnect<S> {
    inner: S,
    layer: TraceConnectLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, R> Service<R> for TraceConnect<S>
where
    S: Service<R, Error = BoxError> + Clone + Send + 'static,
    S::Response: Connection,
    S::Future: Send + 'static,
    R: Debug + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let target = Target::from_debug(&format!("{req:?}"));
        let request = current_request();
        // The instance that was polled ready makes the call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        let returning = match (&layer.registry, &target) {
            (Some(registry), Some(t)) => registry.returning(t, monotonic_ns()),
            _ => None,
        };
        let task = tokio::task::try_id();
        Box::pin(async move {
            if let Some(returning) = returning {
                // hyper races this connect against its pool; when the kept
                // connection came back first, hyper moved this future into
                // a background task to finish unused. Dial nothing then.
                while returning.may_come(monotonic_ns()) {
                    tokio::time::sleep(POLL).await;
                    if tokio::task::try_id() != task {
                        return Err(SUPERSEDED.into());
                    }
                }
            }
            let attempt = ConnectAttempt::new(request, target);
            let mut report = AttemptReport {
                layer,
                attempt: Arc::clone(&attempt),
                finished: false,
            };
            let fut = attempt.clone().scope_sync(|| inner.call(req));
            let result = attempt.scope(fut).await;
            let end_ns = monotonic_ns();
            report.finished = true;
            match &result {
                Ok(conn) => report.connected(end_ns, conn),
                Err(err) => report.failed(end_ns, error_chain(err.as_ref())),
            }
            result
        })
    }
}

const SUPERSEDED: &str = "not dialled: a kept connection came back to the pool first";

/// How often a connect that waits for a returning connection looks again
/// (tokio's timer has millisecond steps; the request's task stays free to
/// take the pooled connection in between).
const POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Turns one attempt into events; if the connector future is dropped
/// unfinished (timeout, cancellation), reports that instead.
struct AttemptReport {
    layer: TraceConnectLayer,
    attempt: Arc<ConnectAttempt>,
    finished: bool,
}

impl AttemptReport {
    fn connected(&self, end_ns: u64, conn: &impl Connection) {
        let connected = conn.connected();
        let mut extras = http::Extensions::new();
        connected.get_extras(&mut extras);
        let info = extras.get::<HttpInfo>();
        let remote = info.map(HttpInfo::remote_addr);
        let local = info.map(HttpInfo::local_addr);
        let alpn = connected.is_negotiated_h2().then(|| "h2".to_string());
        self.emit(end_ns, remote, local, alpn, None);
        if let (Some(registry), Some(local)) = (&self.layer.registry, local) {
            registry.opened(Opened {
                local,
                request: self.attempt.request,
                ts_ns: end_ns,
                target: self.attempt.target.clone(),
                socket: remote.and_then(|remote| SocketId::find(local, remote)),
                plain: self.attempt.plain_io_if_tls(),
            });
        }
    }

    fn failed(&self, end_ns: u64, error: String) {
        self.emit(end_ns, None, None, None, Some(error));
    }

    fn emit(
        &self,
        end_ns: u64,
        remote: Option<std::net::SocketAddr>,
        local: Option<std::net::SocketAddr>,
        alpn: Option<String>,
        error: Option<String>,
    ) {
        let attempt = &self.attempt;
        let state = attempt.state().clone();
        let rec = &self.layer.recorder;
        let request = attempt.request;
        if state.dns_failed {
            return; // DNSDone carried the error; no connect was tried.
        }
        let literal = attempt.target.as_ref().and_then(Target::literal_addr);
        let Some(start_addr) = state.first_addr.or(literal).or(remote) else {
            return; // Nothing observable names the address.
        };
        let start_ns = state.dns_done_ns.unwrap_or(attempt.started_ns);
        rec.at(request, start_ns, Hook::ConnectStart { addr: start_addr });
        let addr = remote.unwrap_or(start_addr);
        match state.tls_start {
            Some((tls_ns, server_name)) => {
                let done = Hook::ConnectDone {
                    addr,
                    local_addr: local,
                    error: None,
                };
                rec.at(request, tls_ns, done);
                rec.at(request, tls_ns, Hook::TLSHandshakeStart { server_name });
                rec.at(request, end_ns, Hook::TLSHandshakeDone { alpn, error });
            }
            None => {
                let done = Hook::ConnectDone {
                    addr,
                    local_addr: local,
                    error,
                };
                rec.at(request, end_ns, done);
            }
        }
    }
}

impl Drop for AttemptReport {
    fn drop(&mut self) {
        if !self.finished {
            let error = "abandoned before it finished (request timed out or was cancelled)";
            self.failed(monotonic_ns(), error.to_string());
        }
    }
}
