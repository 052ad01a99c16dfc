//! Loopback servers and helpers for the client tests.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracer_user::client::{ClientEvent, ClientOptions, Hook, RequestOutcome, RequestSpec};

/// What every test server answers.
pub const BODY: &[u8] = b"hello from the tracer tests\n";

/// How the HTTP/1.1 server treats its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http1Mode {
    KeepAlive,
    /// Answers with `Connection: close` and closes.
    Close,
    /// Keep-alive, the head and the body in two writes (Python's
    /// `http.server` does this).
    SplitHeadBody,
}

/// A loopback server that counts the connections it accepted.
pub struct TestServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Each HTTP/1.1 request as received: head, blank line, body.
    requests: RequestLog,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }

    /// Accepts on 127.0.0.1 and hands each connection to `serve`.
    pub async fn start<F, Fut>(serve: F) -> TestServer
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                // Small responses must not wait for the client's delayed ACK.
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream));
            }
        });
        TestServer {
            addr,
            accepted,
            requests: RequestLog::default(),
            task,
        }
    }

    pub async fn http1(mode: Http1Mode) -> TestServer {
        let log = RequestLog::default();
        let sink = Arc::clone(&log);
        let mut server = TestServer::start(move |stream| {
            let log = Arc::clone(&sink);
            async move {
                let _ = serve_http1(stream, mode, &log).await;
            }
        })
        .await;
        server.requests = log;
        server
    }

    /// HTTP/2 with prior knowledge (h2c).
    pub async fn h2c() -> TestServer {
        TestServer::start(serve_h2).await
    }
}

pub type RequestLog = Arc<Mutex<Vec<String>>>;

/// A minimal HTTP/1.1 responder: one fixed response per request.
pub async fn serve_http1<S>(stream: S, mode: Http1Mode, log: &RequestLog) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    serve_http1_after(stream, mode, log, Duration::ZERO).await
}

/// [`serve_http1`] that waits `delay` between a request and its answer.
pub async fn serve_http1_after<S>(
    stream: S,
    mode: Http1Mode,
    log: &RequestLog,
    delay: Duration,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(stream);
    loop {
        let mut content_length = 0usize;
        let mut request = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(()); // client closed
            }
            request.push_str(&line);
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).await?;
        request.push_str(&String::from_utf8_lossy(&body));
        log.lock().expect("request log").push(request);
        tokio::time::sleep(delay).await;
        let close = match mode {
            Http1Mode::KeepAlive | Http1Mode::SplitHeadBody => "",
            Http1Mode::Close => "connection: close\r\n",
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{close}\r\n",
            BODY.len()
        );
        let stream = reader.get_mut();
        if mode == Http1Mode::SplitHeadBody {
            stream.write_all(head.as_bytes()).await?;
            stream.flush().await?;
            stream.write_all(BODY).await?;
        } else {
            stream.write_all(&[head.as_bytes(), BODY].concat()).await?;
        }
        stream.flush().await?;
        if mode == Http1Mode::Close {
            return stream.shutdown().await;
        }
    }
}

pub async fn serve_h2<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_h2_after(stream, Duration::ZERO).await
}

/// [`serve_h2`] that waits `delay` before each answer.
pub async fn serve_h2_after<S>(stream: S, delay: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |_request| async move {
        tokio::time::sleep(delay).await;
        let body = http_body_util::Full::new(Bytes::from_static(BODY));
        Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

pub fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

pub fn get(url: &str) -> RequestSpec {
    RequestSpec::get(url.parse().expect("test URL"))
}

/// A port nothing listens on: bound, then released.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    listener.local_addr().expect("bound address")
}

pub fn names(outcome: &RequestOutcome) -> Vec<&'static str> {
    outcome.events.iter().map(|e| e.hook.name()).collect()
}

/// The first event of hook `name`; the test fails if there is none.
pub fn event<'a>(outcome: &'a RequestOutcome, name: &str) -> &'a ClientEvent {
    outcome
        .events
        .iter()
        .find(|e| e.hook.name() == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", names(outcome)))
}

pub fn has(outcome: &RequestOutcome, name: &str) -> bool {
    outcome.events.iter().any(|e| e.hook.name() == name)
}

pub fn got_conn(outcome: &RequestOutcome) -> (bool, bool, Option<u64>) {
    match &event(outcome, "GotConn").hook {
        Hook::GotConn {
            reused,
            was_idle,
            idle_time_ns,
            ..
        } => (*reused, *was_idle, *idle_time_ns),
        other => unreachable!("GotConn event holds {other:?}"),
    }
}

/// Asserts the named hooks appear in this order (by timestamp).
pub fn assert_in_order(outcome: &RequestOutcome, order: &[&str]) {
    let stamps: Vec<u64> = order.iter().map(|n| event(outcome, n).ts_ns).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "hooks {order:?} out of order: {stamps:?} in {:?}",
        outcome.events
    );
}
