//! Go by Example's `net/http/httptrace` program, in Rust: two requests to
//! one server, every hook printed with the milliseconds since the first.
//! The second request rides the first one's connection (no DNS, no
//! connect), and both end with `PutIdleConn`.
//!
//! ```sh
//! cargo run -p tracer-user --no-default-features --example httptrace            # a loopback server of its own
//! cargo run -p tracer-user --no-default-features --example httptrace -- http://127.0.0.1:8080/
//! ```
mod common;

use std::sync::Arc;
use std::time::Instant;

use tracer_user::{ClientEvent, ClientOptions, TracedClientBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => format!("http://localhost:{}/", common::serve_loopback()?),
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
