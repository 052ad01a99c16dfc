//! `tracer demo`: a keep-alive HTTP/1.1 server on loopback, in a child
//! process so its sockets stay apart from the traced client's, and three
//! traced requests against it. No network, no URL needed. The demo asks for
//! the path that the server answers in two writes, so that the trace shows
//! what the tool explains: a delayed-ACK stall on each reused request.
use std::process::Stdio;

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::Command,
};

use crate::{cli::TraceArgs, exit, render::Format};

const BODY: &[u8] = b"hello from the tracer demo server\n";
/// The path answered with head and body in two writes, as Python's
/// `http.server` does; every other path gets one write.
const TWO_WRITES: &str = "/two-writes";

pub async fn run(format: Format, no_ebpf: bool) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tracer: cannot find my own executable for the demo server: {e}");
            return exit::FAILED;
        }
    };
    let mut child = match Command::new(exe)
        .arg("__demo-server")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tracer: cannot start the demo server: {e}");
            return exit::FAILED;
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return exit::FAILED;
    };
    let mut line = String::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await;
    let Some(addr) = line
        .trim()
        .strip_prefix("listening ")
        .filter(|_| matches!(read, Ok(Ok(n)) if n > 0))
    else {
        eprintln!("tracer: the demo server did not start");
        return exit::FAILED;
    };
    let args = TraceArgs {
        output: None,
        url: format!("http://{addr}{TWO_WRITES}"),
        count: 3,
        interval: 0,
        method: "GET".into(),
        headers: Vec::new(),
        data: None,
        http1: true,
        http2: false,
        insecure: false,
        cacert: None,
        timeout: 5.0,
        format,
        expect: None,
        no_ebpf,
        show_secrets: false,
        otlp: None,
        propagate: false,
        ring_bytes: None,
    };
    let code = crate::trace::run(&args).await;
    let _ = child.kill().await;
    code
}

/// The demo's server: answers every request on a connection with 200 and
/// keeps the connection open (HTTP/1.1 keep-alive); Nagle stays on.
pub async fn serve() -> i32 {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tracer demo server: cannot listen on 127.0.0.1: {e}");
            return exit::FAILED;
        }
    };
    let Ok(addr) = listener.local_addr() else {
        return exit::FAILED;
    };
    println!("listening {addr}");
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(keep_alive(conn));
    }
}

async fn keep_alive(conn: TcpStream) {
    let mut conn = BufReader::new(conn);
    loop {
        let mut content_length = 0usize;
        let mut line = String::new();
        if !matches!(conn.read_line(&mut line).await, Ok(n) if n > 0) {
            return;
        }
        let two_writes = line.split_whitespace().nth(1) == Some(TWO_WRITES);
        // Headers, up to the blank line.
        loop {
            line.clear();
            match conn.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => {
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        content_length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
        let mut body = vec![0u8; content_length.min(1 << 20)];
        if conn.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            BODY.len()
        )
        .into_bytes();
        // Two small writes meet Nagle here and the client's delayed ACK
        // there: about 40 ms per reused request, the delayed-ack-stall finding.
        if two_writes {
            if conn.get_mut().write_all(&response).await.is_err() {
                return;
            }
            response.clear();
        }
        response.extend_from_slice(BODY);
        if conn.get_mut().write_all(&response).await.is_err() {
            return;
        }
    }
}
