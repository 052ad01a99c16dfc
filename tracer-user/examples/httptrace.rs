//! Go by Example's `net/http/httptrace` program, in Rust: two requests to
//! one server, every hook printed with the milliseconds since the first.
//! The second request rides the first one's connection (no DNS, no
//! connect), and both end with `PutIdleConn`.
//!
//! ```sh
//! cargo run -p tracer-user --no-default-features --example httptrace            # a loopback server of its own
//! cargo run -p tracer-user --no-default-features --example httptrace -- http://127.0.0.1:8080/
//! ```
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use tracer_user::{ClientEvent, ClientOptions, TracedClientBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => format!("http://localhost:{}/", serve_loopback()?),
    };
    let start = Instant::now();
    let client = TracedClientBuilder::new(&ClientOptions::default())
        .trace(Arc::new(move |e: &ClientEvent| {
            let ms = start.elapsed().as_millis();
            println!("{}({}) {ms} ms", e.hook.name(), e.hook.detail());
        }))
        .build()?;
    for request in 1..=2 {
        println!("-- request {request}");
        let req = client.reqwest().get(&url).build()?;
        let response = client.execute(request, req).await?;
        let status = response.status();
        let body = response.bytes().await?;
        println!("status {status}, {} bytes", body.len());
    }
    Ok(())
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that answers every request
/// with a short body; returns its port.
fn serve_loopback() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut writer = &stream;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n";
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                    line.clear();
                }
            });
        }
    });
    Ok(port)
}
