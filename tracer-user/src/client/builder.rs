//! Building a reqwest client with the hooks installed.

use std::sync::Arc;

use super::connect::TraceConnectLayer;
use super::dns::TracedResolver;
use super::errors::ClientError;
use super::pool::ConnRegistry;
use super::request_log::RequestLog;
use super::run::TracedClient;
use super::tls::client_config;
use super::trace::{ClientTrace, Recorder};
use super::{ClientOptions, HttpVersionPref};

/// Builds an instrumented `reqwest::Client`, or a [`TracedClient`] that
/// also records `GetConn`, `GotConn` and the response hooks per request.
///
/// A plain `reqwest::Client` reports the connection-level hooks (DNS,
/// connect, TLS) to the [`ClientTrace`]; wrap each exchange in
/// [`with_request`](super::with_request) to give them a request id.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tracer_user::client::{ClientEvent, ClientOptions, TracedClientBuilder, with_request};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// // A one-shot HTTP/1.1 server on loopback.
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let port = listener.local_addr()?.port();
/// tokio::spawn(async move {
///     let (mut socket, _) = listener.accept().await?;
///     let mut request = [0u8; 1024];
///     let _ = socket.read(&mut request).await?;
///     socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await
/// });
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let client = TracedClientBuilder::new(&ClientOptions::default())
///     .trace(Arc::new(move |event: &ClientEvent| {
///         sink.lock().expect("not poisoned").push((event.request, event.hook.name()));
///     }))
///     .build_reqwest()?;
///
/// let url = format!("http://127.0.0.1:{port}/");
/// let body = with_request(7, async { client.get(url).send().await?.text().await }).await?;
///
/// assert_eq!(body, "ok");
/// let seen = seen.lock().expect("not poisoned").clone();
/// assert_eq!(seen, [(7, "ConnectStart"), (7, "ConnectDone")]);
/// # Ok(())
/// # }
/// ```
pub struct TracedClientBuilder {
    opts: ClientOptions,
    trace: Option<Arc<dyn ClientTrace>>,
    /// Set by `TracedClientBuilder::kernel` (the `ebpf` feature).
    pub(crate) log: Option<Arc<RequestLog>>,
}

impl TracedClientBuilder {
    pub fn new(opts: &ClientOptions) -> Self {
        TracedClientBuilder {
            opts: opts.clone(),
            trace: None,
            log: None,
        }
    }

    /// Every event goes to `trace` as well (live, from any tokio worker).
    pub fn trace(mut self, trace: Arc<dyn ClientTrace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// A `reqwest::ClientBuilder` with the hooks, TLS and HTTP options set,
    /// to add settings of one's own before `build()`.
    pub fn reqwest_builder(&self) -> Result<reqwest::ClientBuilder, ClientError> {
        // No TracedResponse ever finishes a request of a bare reqwest
        // client: a kernel session's log would only fill up.
        let recorder = Arc::new(Recorder::new(self.trace.clone(), None));
        hooked_builder(&self.opts, recorder, None)
    }

    pub fn build_reqwest(self) -> Result<reqwest::Client, ClientError> {
        Ok(self.reqwest_builder()?.build()?)
    }

    pub fn build(self) -> Result<TracedClient, ClientError> {
        let recorder = Arc::new(Recorder::new(self.trace, self.log));
        let registry = Arc::new(ConnRegistry::default());
        let builder = hooked_builder(
            &self.opts,
            Arc::clone(&recorder),
            Some(Arc::clone(&registry)),
        )?;
        Ok(TracedClient::from_parts(
            builder.build()?,
            recorder,
            registry,
        ))
    }
}

/// An instrumented `reqwest::Client` reporting to `trace`.
pub fn instrumented_client(
    opts: &ClientOptions,
    trace: Arc<dyn ClientTrace>,
) -> Result<reqwest::Client, ClientError> {
    TracedClientBuilder::new(opts).trace(trace).build_reqwest()
}

fn hooked_builder(
    opts: &ClientOptions,
    recorder: Arc<Recorder>,
    registry: Option<Arc<ConnRegistry>>,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(opts.timeout)
        .tls_backend_preconfigured(client_config(opts)?)
        .dns_resolver(TracedResolver {
            recorder: Arc::clone(&recorder),
        })
        .connector_layer(TraceConnectLayer { recorder, registry });
    Ok(match opts.http {
        HttpVersionPref::Auto => builder,
        HttpVersionPref::Http1Only => builder.http1_only(),
        HttpVersionPref::Http2PriorKnowledge => builder.http2_prior_knowledge(),
    })
}
