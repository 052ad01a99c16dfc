//! The busy server of `cargo xtask bench`: HTTP/1.1 keep-alive on loopback,
//! one thread per connection, a fixed 200 response written in one send.
//!
//! `bench-server [--secs LIMIT]` prints `ready ADDR`, then serves until its
//! stdin closes or LIMIT seconds (default 600) pass, so it never outlives
//! the bench.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    time::Duration,
};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n0123456789abcdef0123456789abcdef";

fn main() {
    let mut args = std::env::args().skip(1);
    let limit = match (args.next().as_deref(), args.next()) {
        (None, _) => 600.0,
        (Some("--secs"), Some(s)) => s.parse::<f64>().unwrap_or(600.0),
        _ => {
            eprintln!("usage: bench-server [--secs LIMIT]");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(limit) {
        eprintln!("bench-server: {e}");
        std::process::exit(1);
    }
}

fn run(limit: f64) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("ready {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    // Ends the process when the bench closes our stdin, or at the limit.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(limit));
        std::process::exit(0);
    });
    for conn in listener.incoming() {
        let conn = conn?;
        std::thread::spawn(move || serve(conn));
    }
    Ok(())
}

/// Answers every request head (`\r\n\r\n`) on the connection until it ends.
fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    loop {
        match conn.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        // Pipelined heads are answered in order; a partial one waits.
        let mut start = 0;
        while let Some(end) = find_head_end(&buf[start..filled]) {
            if conn.write_all(RESPONSE).is_err() {
                return;
            }
            start += end;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            return; // a head larger than 8 KiB: not ours
        }
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}
