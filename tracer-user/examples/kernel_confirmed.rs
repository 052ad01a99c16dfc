//! The kernel's word on connection reuse, from a library user's own
//! process: three requests to one keep-alive server, and for each the
//! socket cookie the kernel saw, whether it connected or rode an earlier
//! request's socket, its bytes, and when the request left and the answer
//! began. Needs CAP_BPF and CAP_PERFMON (or root); the process keeps its
//! capabilities.
//!
//! ```sh
//! cargo build -p tracer-user --example kernel_confirmed
//! sudo target/debug/examples/kernel_confirmed                            # a loopback server of its own
//! sudo target/debug/examples/kernel_confirmed http://127.0.0.1:8080/
//! ```
mod common;

use tracer_user::{ClientOptions, KernelError, KernelSession, TracedClientBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => format!("http://127.0.0.1:{}/", common::serve_loopback()?),
    };
    let kernel = match KernelSession::start() {
        Ok(kernel) => kernel,
        Err(e @ KernelError::MissingCapabilities) => {
            eprintln!("{e}: run it as root, or with CAP_BPF and CAP_PERFMON");
            std::process::exit(4);
        }
        Err(e) => return Err(e.into()),
    };
    let client = TracedClientBuilder::new(&ClientOptions::default())
        .kernel(&kernel)
        .build()?;
    for n in 1..=3 {
        let request = client.reqwest().get(&url).build()?;
        let response = client.execute(n, request).await?;
        let start_ns = response.start_ns();
        let body = response.bytes().await?;
        let v = kernel.verdict(n).await?;
        let since = |ts: Option<u64>| match ts {
            Some(t) => format!("{:.3} ms", t.saturating_sub(start_ns) as f64 / 1e6),
            None => "-".to_string(),
        };
        let count = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        let how = match (v.socket_cookie, v.connected, v.reused_from) {
            (None, ..) => "not seen by the kernel".to_string(),
            (Some(_), true, _) => "new connection".to_string(),
            (Some(_), false, Some(from)) => format!("reused request {from}'s socket"),
            (Some(_), false, None) => "neither connected nor reused".to_string(),
        };
        println!(
            "request {n}: {} body bytes | kernel: socket {}, {how}, sent {} received {} bytes, \
             request written at {}, first response byte at {}",
            body.len(),
            count(v.socket_cookie),
            count(v.bytes_sent),
            count(v.bytes_received),
            since(v.wrote_request_ns),
            since(v.got_first_response_byte_ns),
        );
    }
    Ok(())
}
