//! Plain HTTP/1.1 over std sockets, for attach tests: a loopback server that
//! honours keep-alive, and a client that writes raw request text.
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

/// Starts a loopback HTTP/1.1 server on `bind` that answers every request
/// with `200 OK` and the path as body, until the test process ends.
pub fn serve(bind: &str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve_connection(conn);
            });
        }
    });
    Ok(addr)
}

fn serve_connection(conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                break;
            }
            close |= header.eq_ignore_ascii_case("connection: close\r\n");
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{}\r\n",
            path.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        conn.write_all(head.as_bytes())?;
        conn.write_all(path.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

/// One request on `conn` (one write), then its response read whole.
/// Returns the status code.
pub fn request(
    conn: &mut TcpStream,
    host: SocketAddr,
    path: &str,
    close: bool,
) -> std::io::Result<u16> {
    let text = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: http-target\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    );
    conn.write_all(text.as_bytes())?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut len = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    status
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status:?}")))
}

pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(conn)
}
