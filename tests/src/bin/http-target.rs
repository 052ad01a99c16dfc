//! A process for `tracer attach` to trace. It prints `ready`, waits for a
//! line on stdin (the test attaches in between), makes its requests, prints
//! `done` and exits.
//!
//! `http-target keepalive ADDR PREFIX`: three requests over one keep-alive
//! connection, then two with `Connection: close` (one connection each).
//! `http-target preopened ADDR PREFIX`: one request before `ready` on a
//! connection it keeps, two more on it after the go line.
//! `http-target secrets ADDR PREFIX`: one request carrying `Authorization`
//! and `Cookie` headers, the response read to its close.
use std::{
    io::{BufRead, Read, Write},
    net::SocketAddr,
};

use tracer_tests::http::{connect, request};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(addr), Some(prefix)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: http-target keepalive|preopened|secrets ADDR PREFIX");
        std::process::exit(2);
    };
    if let Err(e) = run(mode, addr.parse().expect("ADDR is ip:port"), prefix) {
        eprintln!("http-target: {e}");
        std::process::exit(1);
    }
}

fn run(mode: &str, addr: SocketAddr, prefix: &str) -> std::io::Result<()> {
    let go = || -> std::io::Result<()> {
        println!("ready");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(())
    };
    match mode {
        "keepalive" => {
            go()?;
            let mut conn = connect(addr)?;
            for i in 1..=3 {
                request(&mut conn, addr, &format!("{prefix}/keep/{i}"), false)?;
            }
            drop(conn);
            for i in 4..=5 {
                let mut conn = connect(addr)?;
                request(&mut conn, addr, &format!("{prefix}/close/{i}"), true)?;
            }
        }
        "preopened" => {
            let mut conn = connect(addr)?;
            request(&mut conn, addr, &format!("{prefix}/before"), false)?;
            go()?;
            for i in 1..=2 {
                request(&mut conn, addr, &format!("{prefix}/after/{i}"), false)?;
            }
        }
        "secrets" => {
            go()?;
            let mut conn = connect(addr)?;
            // The secrets first, so that they fall inside the kernel's head.
            let text = format!(
                "GET {prefix}/secret HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\
                 Cookie: id=s3cret\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(text.as_bytes())?;
            let mut response = Vec::new();
            conn.read_to_end(&mut response)?;
        }
        other => return Err(std::io::Error::other(format!("unknown mode {other}"))),
    }
    println!("done");
    Ok(())
}
