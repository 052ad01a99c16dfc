//! One traced exchange: send, take the response, read the body to its end.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::HttpInfo;
use reqwest::Response;

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
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A reqwest client that records every request's hooks.
pub struct TracedClient {
    client: reqwest::Client,
    recorder: Arc<Recorder>,
    registry: Arc<ConnRegistry>,
}

const CERT_HINT: &str = " (trust its CA with --cacert FILE, or skip the check with --insecure)";

impl TracedClient {
    /// Fails with a message for people, e.g. `cannot read --cacert FILE: ...`.
    pub fn new(opts: &ClientOptions) -> anyhow::Result<Self> {
        Ok(TracedClientBuilder::new(opts).build()?)
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

    /// Sends `spec`, reads the whole body and returns what happened; a
    /// failure lands in `error` and a `RequestError` event.
    ///
    /// `GotConn` is stamped when the connector finished if this request
    /// opened the connection; otherwise at the end of the request future's
    /// first poll, where hyper takes a ready idle connection from its pool.
    pub async fn run(&self, request: u32, spec: &RequestSpec) -> RequestOutcome {
        self.recorder.open(request);
        let host_port = host_port(&spec.url);
        let start_ns = self.recorder.now(request, Hook::GetConn { host_port });
        let mut outcome = RequestOutcome {
            request,
            events: Vec::new(),
            status: None,
            local_addr: None,
            remote_addr: None,
            socket_cookie: None,
            reused: None,
            body_bytes: 0,
            error: None,
            start_ns,
            end_ns: start_ns,
        };
        let exchange = with_request(request, self.exchange(request, spec, &mut outcome)).await;
        if let Err(message) = exchange {
            self.recorder.now(
                request,
                Hook::RequestError {
                    message: message.clone(),
                },
            );
            outcome.error = Some(message);
        }
        outcome.end_ns = monotonic_ns();
        outcome.events = self.recorder.close(request);
        outcome
    }

    async fn exchange(
        &self,
        request: u32,
        spec: &RequestSpec,
        outcome: &mut RequestOutcome,
    ) -> Result<(), String> {
        let mut builder = self.client.request(spec.method.clone(), spec.url.clone());
        for (name, value) in &spec.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &spec.body {
            builder = builder.body(body.clone());
        }
        let (sent, first_poll_ns) = FirstPoll::new(builder.send()).await;
        let mut response = sent.map_err(|e| describe(&e))?;
        let headers_ns = monotonic_ns();
        let info = response.extensions().get::<HttpInfo>().cloned();
        outcome.local_addr = info.as_ref().map(HttpInfo::local_addr);
        outcome.remote_addr = info.as_ref().map(HttpInfo::remote_addr);
        outcome.status = Some(response.status().as_u16());
        if let Some(local) = outcome.local_addr {
            let claim = self.registry.claim(local, request, first_poll_ns);
            outcome.reused = Some(claim.reused);
            outcome.socket_cookie = claim.cookie;
            if let Some(plain) = &claim.plain {
                for (ts_ns, hook) in plain.take_request(outcome.start_ns) {
                    self.recorder.at(request, ts_ns, hook);
                }
            }
            let got_conn = Hook::GotConn {
                reused: claim.reused,
                was_idle: claim.was_idle,
                idle_time_ns: claim.idle_time_ns,
                local_addr: outcome.local_addr,
                remote_addr: outcome.remote_addr,
            };
            if claim.derived {
                self.recorder.derived(request, claim.got_conn_ns, got_conn);
            } else {
                self.recorder.at(request, claim.got_conn_ns, got_conn);
            }
        }
        let version = format!("{:?}", response.version());
        let status = response.status().as_u16();
        let hook = Hook::GotResponseHeaders { status, version };
        self.recorder.at(request, headers_ns, hook);

        let keep = keeps_connection(
            &spec.method,
            &spec.headers,
            response.version(),
            response.status(),
            response.headers(),
        );
        let read = read_body(&mut response, &mut outcome.body_bytes).await;
        let ts_ns = monotonic_ns();
        if let Some(local) = outcome.local_addr {
            self.registry.released(local, ts_ns, keep && read.is_ok());
        }
        read.map_err(|e| describe(&e))?;
        let bytes = outcome.body_bytes;
        self.recorder.at(request, ts_ns, Hook::BodyDone { bytes });
        if keep {
            self.recorder
                .derived(request, ts_ns, Hook::PutIdleConn { error: None });
        }
        Ok(())
    }
}

async fn read_body(response: &mut Response, bytes: &mut u64) -> Result<(), reqwest::Error> {
    while let Some(chunk) = response.chunk().await? {
        *bytes += chunk.len() as u64;
    }
    Ok(())
}

fn describe(err: &reqwest::Error) -> String {
    let mut text = error_chain(err);
    if is_certificate_error(err) {
        text.push_str(CERT_HINT);
    }
    text
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
