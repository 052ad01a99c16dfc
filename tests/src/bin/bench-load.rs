//! The load generator of `cargo xtask bench`: N keep-alive connections, each
//! sending a GET and reading the whole response before the next, flat out
//! for a fixed time. Prints one JSON line: requests, rate, p50 and p99.
//!
//! `bench-load ADDR [--conns N] [--secs S]`
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench-load\r\n\r\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: Option<SocketAddr> = args.first().and_then(|a| a.parse().ok());
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let (Some(addr), conns, secs) = (
        addr,
        flag("--conns").unwrap_or(4.0),
        flag("--secs").unwrap_or(5.0),
    ) else {
        eprintln!("usage: bench-load ADDR [--conns N] [--secs S]");
        std::process::exit(2);
    };
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let threads: Vec<_> = (0..conns.max(1.0) as usize)
        .map(|_| std::thread::spawn(move || client(addr, start, limit)))
        .collect();
    let mut latencies_ns: Vec<u64> = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(mut l)) => latencies_ns.append(&mut l),
            Ok(Err(e)) => {
                eprintln!("bench-load: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    latencies_ns.sort_unstable();
    let pct = |p: f64| {
        let i =
            ((latencies_ns.len() as f64 * p) as usize).min(latencies_ns.len().saturating_sub(1));
        latencies_ns.get(i).map_or(0.0, |&ns| ns as f64 / 1000.0)
    };
    println!(
        "{{\"requests\":{},\"secs\":{secs:.6},\"rps\":{:.1},\"p50_us\":{:.2},\"p99_us\":{:.2}}}",
        latencies_ns.len(),
        latencies_ns.len() as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}

/// One connection's loop; returns each request's latency.
fn client(addr: SocketAddr, start: Instant, limit: Duration) -> std::io::Result<Vec<u64>> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut latencies = Vec::with_capacity(1 << 18);
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        let sent = Instant::now();
        conn.write_all(REQUEST)?;
        read_response(&mut conn, &mut buf)?;
        latencies.push(sent.elapsed().as_nanos() as u64);
    }
    Ok(latencies)
}

/// Reads one response: the head, then Content-Length bytes of body.
fn read_response(conn: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    loop {
        let n = conn.read(&mut buf[filled..])?;
        if n == 0 {
            return Err(std::io::Error::other("server closed the connection"));
        }
        filled += n;
        let head = &buf[..filled];
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = content_length(&head[..end]);
            if filled >= end + 4 + body {
                return Ok(());
            }
        }
        if filled == buf.len() {
            return Err(std::io::Error::other("response larger than 4 KiB"));
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}
