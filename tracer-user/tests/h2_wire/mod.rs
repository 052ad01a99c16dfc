//! Real HTTP/2 bytes for the parser's tests: an `h2` client and server on
//! a loopback TCP connection, each read and write recorded as the kernel
//! would see it at either end.
#![allow(dead_code, reason = "each test file uses a part")]

pub mod capture;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::Reason;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracer_user::proto::http2::{Chunk, Direction, H2Request, Http2Connection, Role, Start};

/// The Authorization value every request carries: it must never show.
pub const SECRET: &str = "Bearer s3cret-h2-token";

/// One read or write, as a probe would report it.
#[derive(Clone, Debug)]
pub struct Io {
    pub dir: Direction,
    pub ts_ns: u64,
    pub bytes: Vec<u8>,
}

/// Orders the I/O of both ends on one clock.
static CLOCK: AtomicU64 = AtomicU64::new(1);

struct Recorded<T> {
    inner: T,
    log: Arc<Mutex<Vec<Io>>>,
}

impl<T> Recorded<T> {
    fn push(&self, dir: Direction, bytes: &[u8]) {
        let ts_ns = CLOCK.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut log) = self.log.lock() {
            log.push(Io {
                dir,
                ts_ns,
                bytes: bytes.to_vec(),
            });
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Recorded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            let got = buf.filled()[before..].to_vec();
            self.push(Direction::Ingress, &got);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recorded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, data))?;
        self.push(Direction::Egress, &data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the test server answers for a path.
pub enum Answer {
    /// Status and a body of this many bytes.
    Body(u16, usize),
    /// gRPC: 200, a message, and trailers with this status and message.
    Grpc(u32, &'static str),
    /// gRPC Trailers-Only: one HEADERS frame that ends the stream.
    GrpcTrailersOnly(u32, &'static str),
    /// RST_STREAM CANCEL instead of a response.
    Reset,
    /// 200 and exactly these bytes.
    Fixed(Vec<u8>),
}

/// The I/O each end recorded, and the requests the server saw.
pub struct Recording {
    pub client: Vec<Io>,
    pub server: Vec<Io>,
    pub server_paths: Vec<String>,
}

/// Requests sent at once: (method, path).
pub type Batch<'a> = &'a [(&'a str, &'a str)];

/// Runs the requests in `batches` on one connection: the requests of a
/// batch at once, batches one after another.
pub async fn record(
    batches: &[Batch<'_>],
    answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
) -> Recording {
    let server = serve(answer).await;
    let (addr, server_log, paths) = (server.addr, server.log.clone(), server.paths.clone());
    let server = server.task;
    let client_log = Arc::new(Mutex::new(Vec::new()));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let io = Recorded {
        inner: tcp,
        log: client_log.clone(),
    };
    let (client, conn) = h2::client::handshake(io).await.expect("client handshake");
    let driver = tokio::spawn(conn);
    for batch in batches {
        let mut calls = Vec::new();
        for (method, path) in batch.iter() {
            let mut client = client.clone().ready().await.expect("ready");
            let mut req = http::Request::builder()
                .method(*method)
                .uri(format!("http://{addr}{path}"))
                .header("authorization", SECRET)
                .header("user-agent", "h2-parser-test");
            if path.starts_with("/demo.") {
                req = req.header("content-type", "application/grpc");
            }
            let req = req.body(()).expect("request");
            let has_body = *method == "POST";
            let (response, mut body) = client.send_request(req, !has_body).expect("send");
            if has_body {
                body.send_data(Bytes::from_static(b"\0\0\0\0\x05hello"), true)
                    .expect("send data");
            }
            calls.push(tokio::spawn(async move { drain(response).await }));
        }
        for call in calls {
            let _ = call.await;
        }
    }
    drop(client);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), driver).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    Recording {
        client: taken(&client_log),
        server: taken(&server_log),
        server_paths: taken(&paths),
    }
}

/// An h2 server (prior knowledge) for one connection, recording its I/O.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub log: Arc<Mutex<Vec<Io>>>,
    pub paths: Arc<Mutex<Vec<String>>>,
    /// Ends when the connection does.
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn serve(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Server {
    serve_on(answer, None).await
}

/// [`serve`] over TLS (ALPN h2, a self-signed certificate): the log holds
/// the plaintext, as the TLS library's probes see it.
pub async fn serve_tls(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Server {
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let key = rcgen::generate_simple_self_signed(names).expect("certificate");
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![key.cert.der().clone()], der.into())
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    serve_on(
        answer,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
    )
    .await
}

async fn serve_on(
    answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let paths = Arc::new(Mutex::new(Vec::new()));
    let answer: Answerer = Arc::new(answer);
    let task = {
        let (log, paths) = (log.clone(), paths.clone());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        h2_server(Recorded { inner: stream, log }, paths, answer).await;
                    }
                }
                None => h2_server(Recorded { inner: tcp, log }, paths, answer).await,
            }
        })
    };
    Server {
        addr,
        log,
        paths,
        task,
    }
}

type Answerer = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

async fn h2_server<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
    paths: Arc<Mutex<Vec<String>>>,
    answer: Answerer,
) {
    let Ok(mut conn) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(next) = conn.accept().await {
        let Ok((request, respond)) = next else { break };
        let path = request.uri().path().to_string();
        paths.lock().expect("paths").push(path.clone());
        let answer = answer.clone();
        tokio::spawn(async move { respond_to(&path, answer(&path), respond) });
    }
}

/// Takes what a log holds.
pub fn taken<T>(log: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *log.lock().expect("log"))
}

fn respond_to(path: &str, answer: Answer, mut respond: h2::server::SendResponse<Bytes>) {
    let head = |status: u16, grpc: bool| {
        let mut r = http::Response::builder().status(status);
        if grpc {
            r = r.header("content-type", "application/grpc");
        }
        r.header("set-cookie", "session=s3cret-cookie")
            .body(())
            .expect("response")
    };
    let _ = path;
    match answer {
        Answer::Body(status, len) => {
            let Ok(mut send) = respond.send_response(head(status, false), len == 0) else {
                return;
            };
            if len > 0 {
                let _ = send.send_data(Bytes::from(vec![b'x'; len]), true);
            }
        }
        Answer::Grpc(status, message) => {
            let Ok(mut send) = respond.send_response(head(200, true), false) else {
                return;
            };
            let _ = send.send_data(Bytes::from_static(b"\0\0\0\0\x02hi"), false);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", status.into());
            if !message.is_empty() {
                trailers.insert("grpc-message", message.parse().expect("message"));
            }
            let _ = send.send_trailers(trailers);
        }
        Answer::GrpcTrailersOnly(status, message) => {
            let mut r = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .header("grpc-status", status);
            if !message.is_empty() {
                r = r.header("grpc-message", message);
            }
            let _ = respond.send_response(r.body(()).expect("response"), true);
        }
        Answer::Reset => respond.send_reset(Reason::CANCEL),
        Answer::Fixed(body) => {
            if let Ok(mut send) = respond.send_response(head(200, false), false) {
                let _ = send.send_data(Bytes::from(body), true);
            }
        }
    }
}

async fn drain(response: h2::client::ResponseFuture) {
    let Ok(response) = response.await else { return };
    let mut body = response.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let _ = body.trailers().await;
}

/// Feeds recorded I/O to a parser: `cut` limits the bytes captured per
/// I/O, `skip` drops the first I/Os (a capture begun mid-way).
pub fn parse(log: &[Io], role: Role, start: Start, cut: usize) -> (Vec<H2Request>, Vec<String>) {
    let mut conn = Http2Connection::new(role, start);
    for io in log {
        let captured = &io.bytes[..io.bytes.len().min(cut)];
        conn.feed(
            io.dir,
            &Chunk {
                ts_ns: io.ts_ns,
                bytes: captured,
                total_len: io.bytes.len(),
                gap_before: false,
                later: &[],
            },
        );
    }
    let requests = conn.finish();
    (requests, conn.notes().to_vec())
}

/// A request's (stream id, method, path, status).
pub type Summary<'a> = (u32, Option<&'a str>, Option<&'a str>, Option<u16>);

/// Request fields in a comparable form, by stream id.
pub fn summary(requests: &[H2Request]) -> Vec<Summary<'_>> {
    let mut v: Vec<_> = requests
        .iter()
        .map(|r| {
            (
                r.stream_id,
                r.method.as_deref(),
                r.path.as_deref(),
                r.status,
            )
        })
        .collect();
    v.sort();
    v
}

/// Writes a log as a corpus file: per I/O, a direction byte (0 egress,
/// 1 ingress), a 4-byte big-endian length, the bytes.
pub fn to_corpus(log: &[Io]) -> Vec<u8> {
    let mut out = Vec::new();
    for io in log {
        out.push(u8::from(io.dir == Direction::Ingress));
        out.extend((io.bytes.len() as u32).to_be_bytes());
        out.extend(&io.bytes);
    }
    out
}

pub fn from_corpus(mut bytes: &[u8]) -> Vec<Io> {
    let mut log = Vec::new();
    while bytes.len() >= 5 {
        let dir = if bytes[0] == 0 {
            Direction::Egress
        } else {
            Direction::Ingress
        };
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let end = (5 + len).min(bytes.len());
        log.push(Io {
            dir,
            ts_ns: log.len() as u64 + 1,
            bytes: bytes[5..end].to_vec(),
        });
        bytes = &bytes[end..];
    }
    log
}
