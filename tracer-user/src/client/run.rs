//! One traced exchange: send, take the response, read the body to its end.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::HttpInfo;
use reqwest::Response;

use super::errors::ClientError;
use super::errors::{error_chain, is_certificate_error};
use super::event::{ClientEvent, Hook};
use super::keepalive::keeps_connection;
use super::pool::ConnRegistry;
use super::trace::{Recorder, with_request};
use super::{ClientOptions, RequestSpec};
use crate::clock::monotonic_ns;

pub use super::builder::{TracedClientBuilder, instrumented_client};

/// What one request did, with its hook events in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    pub request: u32,
    pub events: Vec<ClientEvent>,
    pub status: Option<u16>,
    /// Of the connection that carried the response.
    pub local_addr: Option<SocketAddr>,
    pub remote_addr: Option<SocketAddr>,
    /// The kernel's cookie of that connection's socket (`SO_COOKIE`).
    pub socket_cookie: Option<u64>,
    pub reused: Option<bool>,
    pub body_bytes: u64,
    /// The whole error chain on one line, when the request failed.
    pub error: Option<String>,
    /// The failure was the server's certificate (a CLI can say how to trust it).
    pub certificate_error: bool,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl RequestOutcome {
    fn started(request: u32, start_ns: u64) -> Self {
        RequestOutcome {
            request,
            events: Vec::new(),
            status: None,
            local_addr: None,
            remote_addr: None,
            socket_cookie: None,
            reused: None,
            body_bytes: 0,
            error: None,
            certificate_error: false,
            start_ns,
            end_ns: 0,
        }
    }
}

/// A reqwest client that reports Go's httptrace hooks for every request it
/// sends: [`TracedClient::execute`] keeps the response for the caller,
/// [`TracedClient::run`] reads it and returns what happened.
pub struct TracedClient {
    client: reqwest::Client,
    recorder: Arc<Recorder>,
    registry: Arc<ConnRegistry>,
}

impl TracedClient {
    /// A client with `opts`; its hooks go to no [`ClientTrace`]
    /// (see [`TracedClientBuilder::trace`]), only to [`TracedClient::run`].
    ///
    /// [`ClientTrace`]: super::ClientTrace
    pub fn new(opts: &ClientOptions) -> Result<Self, ClientError> {
        TracedClientBuilder::new(opts).build()
    }

    pub(crate) fn from_parts(
        client: reqwest::Client,
        recorder: Arc<Recorder>,
        registry: Arc<ConnRegistry>,
    ) -> Self {
        TracedClient {
            client,
            recorder,
            registry,
        }
    }

    /// The reqwest client underneath, to build requests with; send them
    /// with [`TracedClient::execute`] to have their hooks reported.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `req` as request number `request` (the id its hooks carry):
    /// `GetConn`, DNS, connect, TLS, `GotConn`, the writes and first byte
    /// where they are seen (see the module docs), `GotResponseHeaders`.
    /// Reading the body through the [`TracedResponse`] reports `BodyDone`
    /// and `PutIdleConn`. A failure is also reported as `RequestError`.
    ///
    /// `GotConn` is stamped when the connector finished if this request
    /// opened the connection; otherwise at the end of the request future's
    /// first poll, where hyper takes a ready idle connection from its pool
    /// (marked derived).
    pub async fn execute(
        &self,
        request: u32,
        req: reqwest::Request,
    ) -> Result<TracedResponse<'_>, reqwest::Error> {
        let host_port = host_port(req.url());
        let method = req.method().clone();
        // Only `Connection` of the request's headers decides keep-alive.
        let connection: Vec<(String, String)> = req
            .headers()
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| ("connection".to_string(), v.to_string()))
            .collect();
        let start_ns = self.recorder.now(request, Hook::GetConn { host_port });
        let sent = with_request(request, FirstPoll::new(self.client.execute(req))).await;
        let (sent, first_poll_ns) = sent;
        let response = sent.inspect_err(|e| {
            self.failed(request, e);
            self.recorder.finished(|| RequestOutcome {
                error: Some(error_chain(e)),
                certificate_error: is_certificate_error(e),
                end_ns: monotonic_ns(),
                ..RequestOutcome::started(request, start_ns)
            });
        })?;
        let info = response.extensions().get::<HttpInfo>().cloned();
        let mut traced = TracedResponse {
            client: self,
            request,
            start_ns,
            local_addr: info.as_ref().map(HttpInfo::local_addr),
            remote_addr: info.as_ref().map(HttpInfo::remote_addr),
            socket_cookie: None,
            reused: None,
            keep: false,
            body_bytes: 0,
            done: false,
            response,
        };
        traced.got_conn(first_poll_ns);
        traced.keep = keeps_connection(
            &method,
            &connection,
            traced.response.version(),
            traced.response.status(),
            traced.response.headers(),
        );
        Ok(traced)
    }

    /// Sends `spec`, reads the whole body and returns what happened, with
    /// the request's hook events; a failure lands in `error`.
    pub async fn run(&self, request: u32, spec: &RequestSpec) -> RequestOutcome {
        self.recorder.open(request);
        let mut outcome = RequestOutcome::started(request, monotonic_ns());
        if let Err(e) = self.exchange(request, spec, &mut outcome).await {
            outcome.certificate_error = is_certificate_error(&e);
            outcome.error = Some(error_chain(&e));
        }
        outcome.end_ns = monotonic_ns();
        outcome.events = self.recorder.close(request);
        if let Some(first) = outcome.events.first() {
            outcome.start_ns = first.ts_ns;
        }
        outcome
    }

    async fn exchange(
        &self,
        request: u32,
        spec: &RequestSpec,
        outcome: &mut RequestOutcome,
    ) -> Result<(), reqwest::Error> {
        let mut builder = self.client.request(spec.method.clone(), spec.url.clone());
        for (name, value) in &spec.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &spec.body {
            builder = builder.body(body.clone());
        }
        let req = builder.build().inspect_err(|e| self.failed(request, e))?;
        let mut response = self.execute(request, req).await?;
        outcome.status = Some(response.status().as_u16());
        outcome.local_addr = response.local_addr;
        outcome.remote_addr = response.remote_addr;
        outcome.socket_cookie = response.socket_cookie;
        outcome.reused = response.reused;
        let read = response.read_to_end().await;
        outcome.body_bytes = response.body_bytes;
        read
    }

    fn failed(&self, request: u32, err: &reqwest::Error) {
        let message = error_chain(err);
        self.recorder.now(request, Hook::RequestError { message });
    }
}

/// A response whose hooks are still being reported: reading its body to
/// the end reports `BodyDone` and, when the protocol keeps the connection,
/// `PutIdleConn`.
pub struct TracedResponse<'a> {
    client: &'a TracedClient,
    request: u32,
    start_ns: u64,
    local_addr: Option<SocketAddr>,
    remote_addr: Option<SocketAddr>,
    socket_cookie: Option<u64>,
    reused: Option<bool>,
    keep: bool,
    body_bytes: u64,
    done: bool,
    response: Response,
}

impl TracedResponse<'_> {
    /// Status, headers, version and extensions of the response.
    pub fn response(&self) -> &Response {
        &self.response
    }

    pub fn status(&self) -> reqwest::StatusCode {
        self.response.status()
    }

    /// Whether the connection had carried an earlier response of this
    /// client (None when reqwest did not say which connection it was).
    pub fn reused(&self) -> Option<bool> {
        self.reused
    }

    /// The kernel's cookie of the connection's socket (`SO_COOKIE`).
    pub fn socket_cookie(&self) -> Option<u64> {
        self.socket_cookie
    }

    /// When `GetConn` fired (CLOCK_MONOTONIC ns).
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// The next chunk of the body; `None` at its end, after `BodyDone` and
    /// `PutIdleConn` were reported.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, reqwest::Error> {
        match self.response.chunk().await {
            Ok(Some(chunk)) => {
                self.body_bytes += chunk.len() as u64;
                Ok(Some(chunk))
            }
            Ok(None) => {
                self.finish(None);
                Ok(None)
            }
            Err(e) => {
                self.client.failed(self.request, &e);
                self.finish(Some(error_chain(&e)));
                Err(e)
            }
        }
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Vec<u8>, reqwest::Error> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The whole body as text (lossy UTF-8).
    pub async fn text(self) -> Result<String, reqwest::Error> {
        let body = self.bytes().await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The response itself, to read as reqwest does; `BodyDone` and
    /// `PutIdleConn` are then not reported.
    pub fn into_response(self) -> Response {
        self.response
    }

    async fn read_to_end(&mut self) -> Result<(), reqwest::Error> {
        while self.chunk().await?.is_some() {}
        Ok(())
    }

    fn got_conn(&mut self, first_poll_ns: u64) {
        let (client, request) = (self.client, self.request);
        let response = &self.response;
        if let Some(local) = self.local_addr {
            let claim = client.registry.claim(local, request, first_poll_ns);
            self.reused = Some(claim.reused);
            self.socket_cookie = claim.cookie;
            if let Some(plain) = &claim.plain {
                for (ts_ns, hook) in plain.take_request(self.start_ns) {
                    client.recorder.at(request, ts_ns, hook);
                }
            }
            let got_conn = Hook::GotConn {
                reused: claim.reused,
                was_idle: claim.was_idle,
                idle_time_ns: claim.idle_time_ns,
                local_addr: self.local_addr,
                remote_addr: self.remote_addr,
            };
            if claim.derived {
                client
                    .recorder
                    .derived(request, claim.got_conn_ns, got_conn);
            } else {
                client.recorder.at(request, claim.got_conn_ns, got_conn);
            }
        }
        let version = format!("{:?}", response.version());
        let status = response.status().as_u16();
        client
            .recorder
            .now(request, Hook::GotResponseHeaders { status, version });
    }

    /// The body ended: whole, or with `error`.
    fn finish(&mut self, error: Option<String>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let (client, request) = (self.client, self.request);
        let ts_ns = monotonic_ns();
        let whole = error.is_none();
        let kept = self.keep && whole;
        if let Some(local) = self.local_addr {
            client.registry.released(local, ts_ns, kept);
        }
        if whole {
            let bytes = self.body_bytes;
            client.recorder.at(request, ts_ns, Hook::BodyDone { bytes });
        }
        if kept {
            let hook = Hook::PutIdleConn { error: None };
            client.recorder.derived(request, ts_ns, hook);
        }
        client.recorder.finished(|| RequestOutcome {
            status: Some(self.response.status().as_u16()),
            local_addr: self.local_addr,
            remote_addr: self.remote_addr,
            socket_cookie: self.socket_cookie,
            reused: self.reused,
            body_bytes: self.body_bytes,
            error,
            end_ns: ts_ns,
            ..RequestOutcome::started(request, self.start_ns)
        });
    }
}

fn host_port(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Yields the inner output with the time its first poll returned.
struct FirstPoll<F> {
    inner: Pin<Box<F>>,
    first_poll_ns: Option<u64>,
}

impl<F: Future> FirstPoll<F> {
    fn new(inner: F) -> Self {
        FirstPoll {
            inner: Box::pin(inner),
            first_poll_ns: None,
        }
    }
}

impl<F: Future> Future for FirstPoll<F> {
    type Output = (F::Output, u64);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = self.inner.as_mut().poll(cx);
        let first = *self.first_poll_ns.get_or_insert_with(monotonic_ns);
        polled.map(|output| (output, first))
    }
}
