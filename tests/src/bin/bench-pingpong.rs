//! The event-throughput workload of `cargo xtask bench`: TCP ping-pong over
//! loopback, in one process, that counts its own send and recv calls so the
//! tracer's event count can be checked against it.
//!
//! `bench-pingpong [--pairs P] [--secs S] [--calls N] [--rate CALLS_PER_S] [--wait]`
//!
//! Each round trip is four calls (client send, server recv, server send,
//! client recv) of 16 bytes. It stops after `--secs` (default 5) or `--calls`,
//! whichever comes first; `--rate` paces it, else it runs flat out. With
//! `--wait` it prints `ready PID` and waits for a line on stdin first (the
//! bench attaches the tracer in between), and after its JSON line it waits
//! for stdin to close, so the bench can read the tracer's statistics while
//! the tracer is still attached.
use std::{
    io::{BufRead, Read, Write},
    net::{TcpListener, TcpStream},
    time::{Duration, Instant},
};

const MSG: usize = 16;

struct Options {
    pairs: usize,
    secs: f64,
    calls: u64,
    rate: Option<f64>,
    wait: bool,
}

/// Calls one side made; every recv call is counted, the final 0 too.
#[derive(Default)]
struct Calls {
    send: u64,
    recv: u64,
}

fn main() {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-pingpong: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("bench-pingpong: {e}");
        std::process::exit(1);
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        pairs: 1,
        secs: 5.0,
        calls: u64::MAX,
        rate: None,
        wait: false,
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--pairs" => o.pairs = value()?.parse().map_err(|e| format!("--pairs: {e}"))?,
            "--secs" => o.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--calls" => o.calls = value()?.parse().map_err(|e| format!("--calls: {e}"))?,
            "--rate" => o.rate = Some(value()?.parse().map_err(|e| format!("--rate: {e}"))?),
            "--wait" => o.wait = true,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if o.pairs == 0 || !positive(o.secs) || o.rate.is_some_and(|r| !positive(r)) {
        return Err("--pairs, --secs and --rate must be positive".into());
    }
    Ok(o)
}

fn run(o: &Options) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    if o.wait {
        println!("ready {}", std::process::id());
        std::io::stdout().flush()?;
        std::io::stdin().lock().read_line(&mut String::new())?;
    }
    let mut pairs = Vec::new();
    for _ in 0..o.pairs {
        let client = TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        for s in [&client, &server] {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
        }
        pairs.push((client, server));
    }
    // Each pair gets an equal share of the call budget and of the rate.
    let share = o.pairs as u64;
    let (calls, rate) = (o.calls / share, o.rate.map(|r| r / share as f64));
    let limit = Duration::from_secs_f64(o.secs);
    let start = Instant::now();
    let threads: Vec<_> = pairs
        .into_iter()
        .map(|(client, server)| {
            let s = std::thread::spawn(move || echo(server));
            let c = std::thread::spawn(move || ping(client, start, limit, calls, rate));
            (c, s)
        })
        .collect();
    let mut total = Calls::default();
    for (c, s) in threads {
        for side in [c.join(), s.join()] {
            let side = side.map_err(|_| std::io::Error::other("a thread panicked"))??;
            total.send += side.send;
            total.recv += side.recv;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let all = total.send + total.recv;
    println!(
        "{{\"pairs\":{},\"send_calls\":{},\"recv_calls\":{},\"calls\":{all},\"secs\":{secs:.6},\"calls_per_s\":{:.0}}}",
        o.pairs,
        total.send,
        total.recv,
        all as f64 / secs
    );
    if o.wait {
        std::io::stdout().flush()?;
        std::io::copy(&mut std::io::stdin(), &mut std::io::sink())?;
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes, counting every recv call; false at EOF.
fn recv_all(s: &mut TcpStream, buf: &mut [u8], calls: &mut Calls) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        calls.recv += 1;
        match s.read(&mut buf[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(true)
}

fn send_all(s: &mut TcpStream, buf: &[u8], calls: &mut Calls) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < buf.len() {
        calls.send += 1;
        sent += s.write(&buf[sent..])?;
    }
    Ok(())
}

fn echo(mut s: TcpStream) -> std::io::Result<Calls> {
    let (mut calls, mut buf) = (Calls::default(), [0u8; MSG]);
    while recv_all(&mut s, &mut buf, &mut calls)? {
        send_all(&mut s, &buf, &mut calls)?;
    }
    Ok(calls)
}

fn ping(
    mut s: TcpStream,
    start: Instant,
    limit: Duration,
    budget: u64,
    rate: Option<f64>,
) -> std::io::Result<Calls> {
    let (mut calls, mut buf) = (Calls::default(), [b'p'; MSG]);
    let mut round_trips: u64 = 0;
    // A round trip is 4 calls; the budget counts both sides.
    while (round_trips + 1) * 4 <= budget {
        if round_trips.is_multiple_of(64) {
            let elapsed = start.elapsed();
            if elapsed >= limit {
                break;
            }
            if let Some(rate) = rate {
                let due = Duration::from_secs_f64(round_trips as f64 * 4.0 / rate);
                if due > elapsed {
                    std::thread::sleep(due - elapsed);
                }
            }
        }
        send_all(&mut s, &buf, &mut calls)?;
        if !recv_all(&mut s, &mut buf, &mut calls)? {
            return Err(std::io::Error::other("echo side closed early"));
        }
        round_trips += 1;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    Ok(calls)
}
