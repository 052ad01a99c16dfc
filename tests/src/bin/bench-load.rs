//! The load generator of `cargo xtask bench`: N connections, each sending a
//! GET and reading the whole response before the next, for a fixed time.
//! Prints one JSON line: requests, connections, rate, p50 and p99.
//!
//! `bench-load ADDR [--conns N] [--secs S] [--rate R] [--churn] [--max M]`
//!
//! `--rate R` paces the whole load to R requests/s (each connection to
//! R/N), so a cost can be read at a fixed rate rather than flat out.
//! `--churn` opens a new connection for every request and closes it after
//! the response (the tracer's memory over many short connections); `--max M`
//! stops after M requests in all.
use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench-load\r\n\r\n";

/// How each connection runs, shared by all of them.
struct Plan {
    addr: SocketAddr,
    start: Instant,
    limit: Duration,
    /// Time between two requests of one connection, when paced.
    interval: Option<Duration>,
    churn: bool,
    max: u64,
    /// Requests started, across connections (for `--max`).
    started: AtomicU64,
    /// Connections opened.
    connections: AtomicU64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: Option<SocketAddr> = args.first().and_then(|a| a.parse().ok());
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let Some(addr) = addr else {
        eprintln!("usage: bench-load ADDR [--conns N] [--secs S] [--rate R] [--churn] [--max M]");
        std::process::exit(2);
    };
    let conns = flag("--conns").unwrap_or(4.0).max(1.0) as usize;
    let plan: &'static Plan = Box::leak(Box::new(Plan {
        addr,
        start: Instant::now(),
        limit: Duration::from_secs_f64(flag("--secs").unwrap_or(5.0)),
        interval: flag("--rate")
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(conns as f64 / r)),
        churn: args.iter().any(|a| a == "--churn"),
        max: flag("--max").map_or(u64::MAX, |m| m as u64),
        started: AtomicU64::new(0),
        connections: AtomicU64::new(0),
    }));
    let threads: Vec<_> = (0..conns)
        .map(|_| std::thread::spawn(move || client(plan)))
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
    let secs = plan.start.elapsed().as_secs_f64();
    latencies_ns.sort_unstable();
    let pct = |p: f64| {
        let i =
            ((latencies_ns.len() as f64 * p) as usize).min(latencies_ns.len().saturating_sub(1));
        latencies_ns.get(i).map_or(0.0, |&ns| ns as f64 / 1000.0)
    };
    println!(
        "{{\"requests\":{},\"connections\":{},\"secs\":{secs:.6},\"rps\":{:.1},\"p50_us\":{:.2},\"p99_us\":{:.2}}}",
        latencies_ns.len(),
        plan.connections.load(Ordering::Relaxed),
        latencies_ns.len() as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}

fn connect(plan: &Plan) -> std::io::Result<TcpStream> {
    // A churn can outrun the ephemeral ports while closed ones wait in
    // TIME_WAIT (loopback reuses them after a second): wait, then retry.
    let mut tries = 0;
    let conn = loop {
        match TcpStream::connect_timeout(&plan.addr, Duration::from_secs(5)) {
            Ok(c) => break c,
            Err(e) if e.kind() == ErrorKind::AddrNotAvailable && tries < 2000 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    };
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    plan.connections.fetch_add(1, Ordering::Relaxed);
    Ok(conn)
}

/// One connection's loop (one after another with `--churn`); returns each
/// request's latency.
fn client(plan: &Plan) -> std::io::Result<Vec<u64>> {
    let mut conn = if plan.churn {
        None
    } else {
        Some(connect(plan)?)
    };
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut buf = [0u8; 4096];
    let mut next = Instant::now();
    while plan.start.elapsed() < plan.limit
        && plan.started.fetch_add(1, Ordering::Relaxed) < plan.max
    {
        if let Some(interval) = plan.interval {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += interval;
        }
        let sent = Instant::now();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => conn.insert(connect(plan)?),
        };
        c.write_all(REQUEST)?;
        read_response(c, &mut buf)?;
        latencies.push(sent.elapsed().as_nanos() as u64);
        if plan.churn {
            conn = None; // closed here, by the client
        }
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
